package app

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

func newPolicyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Check and explain policy files",
	}
	cmd.AddCommand(newLintCommand(), newExplainCommand(), newMatchConditionsCommand())
	return cmd
}

func newLintCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "lint FILE...",
		Short: "Validate policy files",
		Long: `Validate policy files exactly as the server loads them. Problems print to stdout as FILE:LINE:COL: FIELD:
MESSAGE, followed by a summary line, and make the exit code 1; warnings (such as exceptions that expire within 14 days) print to stderr and do not fail.`,
		Example: `  flux-identity-webhook policy lint config/samples/*.yaml`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			return runLint(files, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
}

// runLint checks every file, printing all problems of all files before failing.
func runLint(files []string, stdout, stderr io.Writer) error {
	failed := 0
	for _, f := range files {
		p, err := policy.Load(f)
		var le *policy.LoadError
		switch {
		case errors.As(err, &le):
			failed++
			for _, pr := range le.Problems {
				_, _ = fmt.Fprintln(stdout, pr.String())
			}
			continue
		case err != nil:
			failed++
			_, _ = fmt.Fprintf(stdout, "%s: %v\n", f, err)
			continue
		}
		for _, w := range p.Warnings {
			_, _ = fmt.Fprintf(stderr, "warning: %s\n", w.String())
		}
	}
	if failed > 0 {
		// The summary closes the report on the same stream as the findings, so however stdout and stderr are joined
		// (a terminal, CI logs, a tool that captures them apart) it stands on its own line after the last finding.
		_, _ = fmt.Fprintf(stdout, "%d of %d policy files are invalid\n", failed, len(files))
		return &exitError{code: 1}
	}
	return nil
}
