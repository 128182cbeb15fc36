// Package e2e measures what the webhook adds to pod creation through a real kube-apiserver (envtest): the same pods
// are created with the webhooks registered and without, in one run, and the added p50/p99 are reported.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/fluxidentity/flux-identity-webhook/cmd/flux-identity-webhook/app"
	"github.com/fluxidentity/flux-identity-webhook/test/harness"
)

const e2ePolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata: {name: e2e}
identities:
  - name: source
    namespaces: [flux-system]
    serviceAccounts: [source-controller]
    aws:
      roleARN: arn:aws:iam::111122223333:role/flux
      region: eu-west-1
    injection: full
`

// BenchmarkPodCreateLatency reports, per variant, the p50 and p99 of creating a pod through the API server.
func BenchmarkPodCreateLatency(b *testing.B) {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	ctx := b.Context()
	policyFile := filepath.Join(b.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(e2ePolicy), 0o600); err != nil {
		b.Fatal(err)
	}
	env, err := harness.Start(ctx, harness.Options{PolicyFile: policyFile, Log: ctrl.Log})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	for _, ns := range []string{"flux-system", "apps"} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
	}
	const pods = 300
	measure := func(name, ns, sa string) []time.Duration {
		lat := make([]time.Duration, 0, pods)
		for i := range pods + 20 { // 20 warm-up creations
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "p-", Namespace: ns, Labels: map[string]string{"app": "x"}},
				Spec: corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: "manager",
					Image: "ghcr.io/fluxcd/source-controller", Args: []string{"--log-level=info"}}}},
			}
			t0 := time.Now()
			if err := env.Client.Create(ctx, pod); err != nil {
				b.Fatal(err)
			}
			if i >= 20 {
				lat = append(lat, time.Since(t0))
			}
		}
		slices.Sort(lat)
		p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
		b.ReportMetric(float64(p50.Microseconds()), name+"-p50-µs")
		b.ReportMetric(float64(p99.Microseconds()), name+"-p99-µs")
		fmt.Fprintf(os.Stderr, "%-40s p50 %v p99 %v\n", name, p50, p99)
		return lat
	}
	for b.Loop() {
		withMapped := measure("webhook-mapped-full", "flux-system", "source-controller")
		withUnmapped := measure("webhook-unmapped", "apps", "default")

		conditioned, _ := app.NamespaceCondition([]string{"flux-system"})
		setPodConditions(ctx, b, env, []admissionv1.MatchCondition{{Name: "policy-namespaces", Expression: conditioned}})
		measure("webhook-unmapped-conditioned", "apps", "default")

		var cfg admissionv1.MutatingWebhookConfiguration
		if err := env.Client.Get(ctx, client.ObjectKey{Name: "flux-identity-webhook"}, &cfg); err != nil {
			b.Fatal(err)
		}
		if err := env.Client.Delete(ctx, &cfg); err != nil {
			b.Fatal(err)
		}
		waitUntilNotCalled(ctx, b, env, "flux-system")
		without := measure("no-webhook", "flux-system", "source-controller")

		added := func(with []time.Duration, q float64) time.Duration {
			i := int(q * float64(len(with)-1))
			return with[i] - without[i]
		}
		b.ReportMetric(float64(added(withMapped, 0.5).Microseconds()), "added-mapped-p50-µs")
		b.ReportMetric(float64(added(withMapped, 0.99).Microseconds()), "added-mapped-p99-µs")
		b.ReportMetric(float64(added(withUnmapped, 0.99).Microseconds()), "added-unmapped-p99-µs")
	}
}

func setPodConditions(ctx context.Context, b *testing.B, env *harness.Env, conditions []admissionv1.MatchCondition) {
	var cfg admissionv1.MutatingWebhookConfiguration
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "flux-identity-webhook"}, &cfg); err != nil {
		b.Fatal(err)
	}
	for i := range cfg.Webhooks {
		if cfg.Webhooks[i].Name == "pods.fluxidentity.dev" {
			cfg.Webhooks[i].MatchConditions = conditions
		}
	}
	if err := env.Client.Update(ctx, &cfg); err != nil {
		b.Fatal(err)
	}
	waitUntilNotCalled(ctx, b, env, "apps")
}

// waitUntilNotCalled returns once a dry-run pod in namespace no longer reaches the pod webhook.
func waitUntilNotCalled(ctx context.Context, b *testing.B, env *harness.Env, namespace string) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		before, _ := env.Counter(ctx, "fluxidentity_admission_decisions_total", map[string]string{"webhook": "/mutate-v1-pod"})
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-", Namespace: namespace},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		if err := env.Client.Create(ctx, pod, client.DryRunAll); err != nil {
			b.Fatal(err)
		}
		after, _ := env.Counter(ctx, "fluxidentity_admission_decisions_total", map[string]string{"webhook": "/mutate-v1-pod"})
		if after == before {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatal("the pod webhook is still called")
}
