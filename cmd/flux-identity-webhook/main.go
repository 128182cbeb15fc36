// Command flux-identity-webhook runs the admission webhook that gives Flux cloud workload identity instead of
// long-lived Git credentials, and the CLI around its policy file.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/fluxidentity/flux-identity-webhook/cmd/flux-identity-webhook/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if code != 0 {
		os.Exit(code)
	}
}
