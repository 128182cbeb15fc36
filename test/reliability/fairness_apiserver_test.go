package reliability

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/test/harness"
)

// TestOneClientCannotShutAdmissionOffThroughTheAPIServer is TestOneClientCannotShutAdmissionOff with the real
// kube-apiserver as the API server: the binary serves the registrations of config/webhook/manifests.yaml, and while
// each attack runs, eight paced workers create ServiceAccounts, pods and GitRepositories in the policy namespace
// through the API server. Each create must come back answered by the webhook within its timeout (a ServiceAccount
// with its role, a pod with its identity, a GitRepository with a secretRef denied by the mandate).
//
// Before each attack the webhook restarts (as in a rollout), is warmed up by another client, and the attacker
// connects first: the API server, which connects lazily, then has to open its connections while the attack holds
// what it can, as it does after every rollout or when its load grows.
func TestOneClientCannotShutAdmissionOffThroughTheAPIServer(t *testing.T) {
	ctx := t.Context()
	bin := serverBinary(t)
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(fairnessPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	env, err := harness.Start(ctx, harness.Options{PolicyFile: policyFile, Binary: bin,
		Log: ctrl.Log.WithName("harness")})
	if err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}); err != nil {
		t.Fatal(err)
	}
	caData, err := os.ReadFile(filepath.Join(env.CertDir, "tls.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caData) // envtest's serving certificate is self-signed
	tlsConfig := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	warm := newReviewClient("https://"+env.WebhookAddr, tlsConfig, net.IPv4(127, 0, 0, 3))

	c := &apiServerClient{client: env.Client}
	var idle, worst int64 // KiB: the restarted server's footprint, and the largest growth over it
	restart := func(string) {
		if err := env.StopServer(); err != nil {
			t.Fatalf("stop the webhook: %v", err)
		}
		if err := env.StartServer(ctx); err != nil {
			t.Fatalf("start the webhook: %v", err)
		}
		for n := range 30 { // every path, from a client that is not the API server
			if err := warm.review(ctx, 0, n); err != nil {
				t.Fatalf("warm-up: %v", err)
			}
		}
		warm.keepAlive.CloseIdleConnections()
		idle = procStatusKiB(t, env.Process.Pid, "VmRSS")
	}
	loads := underAttack(t, env.WebhookAddr, tlsConfig, 10*time.Second, restart,
		func(ctx context.Context, l *apiServerLoad) {
			var wg sync.WaitGroup
			for w := 1; w <= 8; w++ {
				wg.Go(func() {
					paced(ctx, func(n int) {
						start := time.Now()
						err := c.create(context.WithoutCancel(ctx), w, n)
						l.record(time.Since(start), err)
					})
				})
			}
			wg.Wait()
		}, func(name string) {
			peak := procStatusKiB(t, env.Process.Pid, "VmHWM")
			worst = max(worst, peak-idle)
			t.Logf("after %s: peak %d MiB (idle %d MiB)", name, peak>>10, idle>>10)
		})
	for name, l := range loads {
		if n, answered, _, _, _ := l.summary(); n == 0 || answered < 1 {
			t.Errorf("%s: the API server's requests were not all answered: %s", name, l)
		}
	}
	t.Logf("RESULT memory through the API server: at most %d MiB above idle", worst>>10)
	if worst<<10 > maxGrowth {
		t.Errorf("peak resident memory was %d MiB above idle; the bound is %d MiB", worst>>10, maxGrowth>>20)
	}
}

// apiServerClient creates, through the API server, what a cluster creates in a policy namespace.
type apiServerClient struct {
	client client.Client
	serial atomic.Int64 // names every object apart, across attacks
}

// create makes object n of worker w: a mapped ServiceAccount, a pod of one, or a GitRepository with a secretRef, in
// turn, and checks that the webhook answered it. The API server's own timeout for the call is the registration's.
func (c *apiServerClient) create(ctx context.Context, w, n int) error {
	ctx, cancel := context.WithTimeout(ctx, webhookTimeout+5*time.Second) // the API server answers past a webhook timeout
	defer cancel()
	name := fmt.Sprintf("flux-%d-%d", w, c.serial.Add(1))
	switch n % 3 {
	case 0:
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team-a"}}
		if err := c.client.Create(ctx, sa); err != nil {
			return fmt.Errorf("ServiceAccount %s: %w", name, err)
		}
		if sa.Annotations[keys.AnnotationAWSRoleARN] == "" {
			return fmt.Errorf("ServiceAccount %s was admitted without its role", name)
		}
	case 1:
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team-a"},
			Spec: corev1.PodSpec{ServiceAccountName: "flux-source",
				Containers: []corev1.Container{{Name: "manager", Image: "ghcr.io/fluxcd/source-controller:v1.9.6"}}}}
		if err := c.client.Create(ctx, pod); err != nil {
			return fmt.Errorf("pod %s: %w", name, err)
		}
		if pod.Annotations[keys.AnnotationIdentity] != "tenant" {
			// The pod webhook fails open: a pod admitted without its identity is a request the webhook missed.
			return fmt.Errorf("pod %s was admitted without its identity (the webhook did not answer)", name)
		}
	default:
		repo := &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team-a"},
			Spec: sourcev1.GitRepositorySpec{URL: "https://example.invalid/repo.git",
				Interval: metav1.Duration{Duration: time.Minute}, SecretRef: &meta.LocalObjectReference{Name: "git"}}}
		err := c.client.Create(ctx, repo)
		switch {
		case err == nil:
			return fmt.Errorf("GitRepository %s with a secretRef was admitted", name)
		case !strings.Contains(err.Error(), "no-static-git-credentials"):
			return fmt.Errorf("GitRepository %s: %w", name, err)
		}
	}
	return nil
}
