// Command devenv is `make run`: a local kube-apiserver + etcd with Flux's CRDs and the webhook registered and
// serving the given policy, until Ctrl-C. It writes a kubeconfig so kubectl can talk to it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

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
	workdir := flag.String("workdir", "bin/devenv", "where to write the kubeconfig")
	mode := flag.String("mode", "enforce", "server mode: enforce or warn")
	flag.Parse()

	log := zap.New(zap.UseDevMode(true))
	ctrl.SetLogger(log)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	absPolicy, err := filepath.Abs(*policyFile)
	if err != nil {
		return err
	}
	env, err := harness.Start(ctx, harness.Options{PolicyFile: absPolicy, Mode: *mode, Log: log})
	if err != nil {
		return err
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "devenv: stop:", err)
		}
	}()

	if err := os.MkdirAll(*workdir, 0o700); err != nil {
		return err
	}
	kubeconfig, err := filepath.Abs(filepath.Join(*workdir, "kubeconfig"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		return err
	}
	fmt.Printf(`
flux-identity-webhook is serving %s against a local API server (mode %s).

  export KUBECONFIG=%s
  kubectl create namespace flux-system
  kubectl -n flux-system create serviceaccount source-controller
  kubectl -n flux-system get serviceaccount source-controller -o yaml

  metrics:  %s
  readiness: %s/readyz?verbose

Edit %s and save: the server reloads it. Ctrl-C stops everything.
`, absPolicy, *mode, kubeconfig, env.MetricsURL, env.HealthURL, absPolicy)
	<-ctx.Done()
	return nil
}
