// Package app holds the flux-identity-webhook command line: one binary with subcommands. Each subcommand parses its
// flags into an Options struct (BindFlags, Validate) and calls a run function, so tests can drive the same code.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code through cobra (lint findings exit 1 without being a usage error).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// NewCommand builds the root command.
func NewCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "flux-identity-webhook",
		Short: "Cloud workload identity for Flux, enforced at admission",
		Long: `flux-identity-webhook maps namespaces and ServiceAccounts to cloud identities (AWS IRSA, Azure Workload
Identity, GKE Workload Identity) from one policy file, stamps them on ServiceAccounts and pods at admission, and keeps
long-lived credentials off Flux sources where identity is mandated.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Build().Version,
	}
	root.SetVersionTemplate(Build().String())
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newServeCommand(), newPolicyCommand())
	root.AddCommand(newTrustCommand(), newDoctorCommand())
	root.AddCommand(newAuditCommand(), newVersionCommand())
	return root
}

// Execute runs the command line and returns the process exit code: 0 on success, 1 when a check found problems,
// 2 on usage or runtime errors.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := NewCommand(stdout, stderr)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	code := 2
	var ee *exitError
	if errors.As(err, &ee) {
		code, err = ee.code, ee.err
	}
	if err != nil {
		if msg := strings.TrimRight(err.Error(), "\n"); msg != "" {
			_, _ = fmt.Fprintf(stderr, "Error: %s\n", msg) // exactly one line ending, whatever the error holds
		}
	}
	return code
}
