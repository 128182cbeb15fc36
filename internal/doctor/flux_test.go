package doctor

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist"
	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist/pagingfake"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

func TestFlagValue(t *testing.T) {
	tests := []struct {
		args      []string
		name      string
		boolean   bool
		wantValue string
		wantSet   bool
	}{
		{[]string{"--events-addr=x", "--default-service-account=flux"}, flagDefaultServiceAccount, false, "flux", true},
		{[]string{"--default-service-account", "flux", "--log-level=info"}, flagDefaultServiceAccount, false, "flux", true},
		{[]string{"-default-service-account=a", "--default-service-account=b"}, flagDefaultServiceAccount, false, "b", true},
		{[]string{"--no-cross-namespace-refs"}, flagNoCrossNamespaceRefs, true, "true", true},
		{[]string{"--no-cross-namespace-refs", "false"}, flagNoCrossNamespaceRefs, true, "true", true}, // not its value
		{[]string{"--no-cross-namespace-refs=false"}, flagNoCrossNamespaceRefs, true, "false", true},
		{[]string{"--default-service-account-other=x"}, flagDefaultServiceAccount, false, "", false},
		{nil, flagDefaultServiceAccount, false, "", false},
	}
	for _, tc := range tests {
		if v, set := flagValue(tc.args, tc.name, tc.boolean); v != tc.wantValue || set != tc.wantSet {
			t.Errorf("flagValue(%q, %s) = %q %v, want %q %v", tc.args, tc.name, v, set, tc.wantValue, tc.wantSet)
		}
	}
}

func fluxController(name string, args ...string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "flux-system"},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "manager", Args: args}}}}}}
}

func TestCheckFluxLockdown(t *testing.T) {
	const tenantPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
flux:
  defaultServiceAccount: %s
mandates:
  - name: tenants
    namespaces: ["team-*"]
`
	tests := map[string]struct {
		policyDefault string
		objects       []client.Object
		wantProblems  []string // substrings, one per finding
		wantNotes     []string // substrings, one per note
	}{
		"a controller whose --default-service-account the policy does not know is a problem": {
			policyDefault: `""`,
			objects:       []client.Object{fluxController("source-controller", "--default-service-account=flux-source")},
			wantProblems:  []string{"runs with --default-service-account=flux-source but the policy says none"},
		},
		"a policy that expects a lockdown the controller does not run is a problem": {
			policyDefault: "flux-source",
			objects:       []client.Object{fluxController("source-controller", "--log-level=info")},
			wantProblems:  []string{"runs without --default-service-account but the policy says flux-source"},
		},
		"a lockdown the policy knows is a note": {
			policyDefault: "flux-source",
			objects: []client.Object{fluxController("source-controller", "--default-service-account=flux-source"),
				fluxController("kustomize-controller", "--no-cross-namespace-refs=true")},
			wantNotes: []string{"source-controller runs with --default-service-account=flux-source"},
		},
		"no lockdown where tenants are mandated is said, for both flags": {
			policyDefault: `""`,
			objects: []client.Object{fluxController("image-reflector-controller"),
				fluxController("helm-controller", "--no-cross-namespace-refs=false")},
			wantNotes: []string{"image-reflector-controller runs without --default-service-account: only the webhook",
				"helm-controller runs without --no-cross-namespace-refs=true"},
		},
		"no Flux controllers, nothing to say": {policyDefault: `""`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := policy.Parse("p.yaml", []byte(strings.Replace(tenantPolicy, "%s", tc.policyDefault, 1)), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			d := &diagnosis{p: p, l: &kubelist.Lister{Reader: pagingfake.New(scheme, tc.objects...)}}
			if err := d.checkFlux(t.Context()); err != nil {
				t.Fatal(err)
			}
			if len(d.findings) != len(tc.wantProblems) {
				t.Fatalf("findings = %+v, want %q", d.findings, tc.wantProblems)
			}
			for i, f := range d.findings {
				if !strings.Contains(f.Problem, tc.wantProblems[i]) || f.Fix == "" || f.Check != CheckFlux {
					t.Errorf("finding %+v, want problem containing %q and a fix", f, tc.wantProblems[i])
				}
			}
			if len(d.notes) != len(tc.wantNotes) {
				t.Fatalf("notes = %q, want %q", d.notes, tc.wantNotes)
			}
			for i, n := range d.notes {
				if !strings.Contains(n, tc.wantNotes[i]) {
					t.Errorf("note %q, want it to contain %q", n, tc.wantNotes[i])
				}
			}
		})
	}
}

func TestTenantMandates(t *testing.T) {
	p, err := policy.Parse("p.yaml", []byte(`apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
flux:
  namespaces: [flux-system]
mandates:
  - name: own
    namespaces: [flux-system]
  - name: tenants
    namespaces: [team-a]
  - name: glob
    namespaces: ["flux-*"]
`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tenantMandates(p), ","); got != "tenants,glob" {
		t.Errorf("tenant mandates %q, want tenants,glob (a glob might cover a tenant)", got)
	}
}
