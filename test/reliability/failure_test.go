package reliability

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

const failurePolicyDoc = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: failure
identities:
  - name: tenant-a
    namespaces: [team-a]
    serviceAccounts: [flux-source]
    aws:
      roleARN: arn:aws:iam::111122223333:role/tenant-a
mandates:
  - name: no-static-git-credentials
    namespaces: [team-a]
`

// TestFailureBehaviourOnARealAPIServer stops the webhook server while the API server keeps the configurations of
// config/webhook/manifests.yaml (what the chart installs too) and checks each path against its documented
// failurePolicy: system namespaces and the webhook's own are never intercepted, pods fail open, ServiceAccounts and
// Flux sources fail closed with an error naming the webhook. After StartServer everything is admitted and mutated
// again, with no other step.
func TestFailureBehaviourOnARealAPIServer(t *testing.T) {
	ctx := t.Context()
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(failurePolicyDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	env, err := harness.Start(ctx, harness.Options{PolicyFile: policyFile, Log: ctrl.Log.WithName("harness")})
	if err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	for _, ns := range []string{"team-a", "flux-identity-system"} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatalf("create namespace %s: %v", ns, err)
		}
	}

	n := 0
	pod := func(ns string) client.Object {
		n++
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%d", n), Namespace: ns},
			Spec: corev1.PodSpec{ServiceAccountName: "flux-source", // mapped in team-a
				Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}
	}
	// mutated reports whether the webhook stamped the identity on a stored object (only mapped ones in team-a get it).
	mutated := func(obj client.Object) bool {
		return obj.GetAnnotations()[keys.AnnotationIdentity] == "tenant-a"
	}
	mutable := func(obj client.Object) bool {
		_, source := obj.(*sourcev1.GitRepository)
		return !source
	}
	serviceAccount := func(ns string) client.Object {
		n++
		name := fmt.Sprintf("sa-%d", n)
		if ns == "team-a" {
			name = "flux-source" // mapped; refused while down, so created once, after the restart
		}
		return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	}
	gitRepository := func(ns string) client.Object {
		n++
		return &sourcev1.GitRepository{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("repo-%d", n), Namespace: ns},
			Spec: sourcev1.GitRepositorySpec{URL: "https://example.invalid/repo.git",
				Interval: metav1.Duration{Duration: time.Minute}, Provider: sourcev1.GitProviderGeneric},
		}
	}

	type attempt struct {
		name    string
		obj     func(ns string) client.Object
		ns      string
		webhook string // the webhook that refuses it while down; empty: admitted while down
	}
	attempts := []attempt{
		{"a pod in kube-system is never intercepted", pod, "kube-system", ""},
		{"a pod in the webhook's own namespace is never intercepted", pod, "flux-identity-system", ""},
		{"a pod in a policy namespace fails open (failurePolicy Ignore)", pod, "team-a", ""},
		{"a pod elsewhere fails open (failurePolicy Ignore)", pod, "default", ""},
		{"a ServiceAccount in kube-system is never intercepted", serviceAccount, "kube-system", ""},
		{"a ServiceAccount in the webhook's own namespace is never intercepted", serviceAccount,
			"flux-identity-system", ""},
		{"a ServiceAccount in a policy namespace fails closed (failurePolicy Fail)", serviceAccount, "team-a",
			"serviceaccounts.fluxidentity.dev"},
		{"a ServiceAccount elsewhere fails closed too (the webhook cannot tell which namespaces matter)",
			serviceAccount, "default", "serviceaccounts.fluxidentity.dev"},
		{"a GitRepository in a mandated namespace fails closed (failurePolicy Fail)", gitRepository, "team-a",
			"flux-sources.fluxidentity.dev"},
		{"a GitRepository in the webhook's own namespace is never intercepted", gitRepository,
			"flux-identity-system", ""},
	}

	if err := env.StopServer(); err != nil {
		t.Fatalf("stop the webhook server: %v", err)
	}
	for _, a := range attempts {
		t.Run("webhook down: "+a.name, func(t *testing.T) {
			obj := a.obj(a.ns)
			err := env.Client.Create(ctx, obj)
			switch {
			case a.webhook == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case a.webhook == "" && mutated(obj):
				t.Fatal("mutated while the webhook was down")
			case a.webhook != "" && err == nil:
				t.Fatal("admitted while the webhook was down")
			case a.webhook != "" && !strings.Contains(err.Error(), `failed calling webhook "`+a.webhook+`"`):
				t.Fatalf("refused without naming the webhook %s: %v", a.webhook, err)
			}
		})
	}

	restarted := time.Now()
	if err := env.StartServer(ctx); err != nil {
		t.Fatalf("restart the webhook server: %v", err)
	}
	var firstOK time.Duration
	for _, a := range attempts {
		t.Run("webhook up again: "+a.name, func(t *testing.T) {
			obj := a.obj(a.ns)
			if err := env.Client.Create(ctx, obj); err != nil {
				t.Fatalf("refused after restart: %v", err)
			}
			if firstOK == 0 {
				firstOK = time.Since(restarted)
			}
			if a.ns == "team-a" && mutable(obj) && !mutated(obj) {
				t.Fatalf("not mutated after restart: annotations %v", obj.GetAnnotations())
			}
			if a.ns != "team-a" && mutated(obj) {
				t.Fatalf("mutated outside the policy's namespaces: annotations %v", obj.GetAnnotations())
			}
			if sa, ok := obj.(*corev1.ServiceAccount); ok && a.ns == "team-a" {
				want := "arn:aws:iam::111122223333:role/tenant-a"
				if got := sa.Annotations[keys.AnnotationAWSRoleARN]; got != want {
					t.Fatalf("not mutated after restart: role ARN %q, want %q", got, want)
				}
			}
		})
	}
	t.Run("webhook up again: a GitRepository with a secretRef in a mandated namespace is denied by the mandate",
		func(t *testing.T) {
			repo := gitRepository("team-a").(*sourcev1.GitRepository)
			repo.Spec.Provider = ""
			repo.Spec.SecretRef = &meta.LocalObjectReference{Name: "git-credentials"}
			err := env.Client.Create(ctx, repo)
			if err == nil || !strings.Contains(err.Error(), "no-static-git-credentials") {
				t.Fatalf("want a denial naming the mandate, got %v", err)
			}
		})
	t.Logf("RESULT failure: %d paths checked with the webhook down and up; first request admitted %s after restart",
		len(attempts), firstOK.Round(time.Millisecond))
}
