// Command devenv is `make run` and `make demo`: a local kube-apiserver + etcd with Flux's CRDs and the webhook
// registered and serving the given policy. It writes a kubeconfig and the walkthrough's manifests, then either prints
// the kubectl commands to try and runs until Ctrl-C (make run), or applies the walkthrough itself and exits 0 only if
// every step behaved as expected (make demo, part of make test).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/test/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devenv:", err)
		os.Exit(1)
	}
}

func run() error {
	policyFile := flag.String("policy", "config/samples/policy.yaml", "policy file to serve")
	workdir := flag.String("workdir", "bin/devenv", "where to write the kubeconfig and the walkthrough's manifests")
	mode := flag.String("mode", string(policy.ModeEnforce), "server mode: enforce or warn")
	demo := flag.Bool("demo", false, "apply the walkthrough, check every step, and exit (non-zero if any step misbehaved)")
	verbose := flag.Bool("v", false, "with --demo: show the server's and the control plane's logs")
	flag.Parse()

	// The server logs every request; in demo mode they would bury the step report unless asked for.
	var log logr.Logger
	if *demo && !*verbose {
		log = zap.New(zap.WriteTo(io.Discard))
	} else {
		log = zap.New(zap.UseDevMode(true))
	}
	ctrl.SetLogger(log)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	absPolicy, err := filepath.Abs(*policyFile)
	if err != nil {
		return err
	}
	pol, err := policy.Load(absPolicy)
	if err != nil {
		return err
	}
	steps, err := walkthrough(pol, policy.Mode(*mode))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(*workdir, "walkthrough"), 0o700); err != nil {
		return err
	}
	absWork, err := filepath.Abs(*workdir)
	if err != nil {
		return err
	}
	for _, s := range steps {
		if err := os.WriteFile(filepath.Join(absWork, "walkthrough", s.File), []byte(s.Manifest), 0o600); err != nil {
			return fmt.Errorf("write walkthrough manifest: %w", err)
		}
	}

	fmt.Fprintln(os.Stderr, "devenv: starting kube-apiserver, etcd and the webhook ...")
	env, err := harness.Start(ctx, harness.Options{PolicyFile: absPolicy, Mode: *mode, Log: log})
	if err != nil {
		return err
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "devenv: stop:", err)
		}
	}()
	kubeconfig := filepath.Join(absWork, "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}

	if *demo {
		return runDemo(ctx, os.Stdout, env, steps)
	}
	printWalkthrough(os.Stdout, steps, walkthroughInfo{
		Policy: absPolicy, Mode: *mode, Kubeconfig: kubeconfig, Dir: filepath.Join(absWork, "walkthrough"),
		MetricsURL: env.MetricsURL, HealthURL: env.HealthURL,
	})
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "devenv: stopping")
	if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
