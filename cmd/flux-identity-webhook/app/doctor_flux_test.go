package app

import (
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

func TestFlagValue(t *testing.T) {
	tests := []struct {
		args      []string
		value     string
		wantValue string
		wantSet   bool
	}{
		{[]string{"--events-addr=x", "--default-service-account=flux"}, "", "flux", true},
		{[]string{"--default-service-account", "flux", "--log-level=info"}, "", "flux", true},
		{[]string{"-default-service-account=a", "--default-service-account=b"}, "", "b", true},
		{[]string{"--no-cross-namespace-refs"}, "", "true", true},
		{[]string{"--no-cross-namespace-refs=false"}, "", "false", true},
		{[]string{"--default-service-account-other=x"}, "", "", false},
		{nil, "", "", false},
	}
	for _, tc := range tests {
		name := flagDefaultServiceAccount
		if strings.Contains(strings.Join(tc.args, " "), "cross") {
			name = flagNoCrossNamespaceRefs
		}
		if v, set := flagValue(tc.args, name); v != tc.wantValue || set != tc.wantSet {
			t.Errorf("flagValue(%q, %s) = %q %v, want %q %v", tc.args, name, v, set, tc.wantValue, tc.wantSet)
		}
	}
}

func fluxController(name string, args ...string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "flux-system"},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "manager", Args: args}}}}}}
}

func TestDiagnoseFluxLockdown(t *testing.T) {
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
			wantNotes:     nil,
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
			c := fake.NewClientBuilder().WithScheme(doctorScheme).WithObjects(tc.objects...).Build()
			found, notes, err := diagnoseFlux(t.Context(), c, p)
			if err != nil {
				t.Fatal(err)
			}
			if len(found) != len(tc.wantProblems) {
				t.Fatalf("findings = %+v, want %q", found, tc.wantProblems)
			}
			for i, f := range found {
				if !strings.Contains(f.Problem, tc.wantProblems[i]) || f.Fix == "" || f.Check != checkFlux {
					t.Errorf("finding %+v, want problem containing %q and a fix", f, tc.wantProblems[i])
				}
			}
			if len(notes) != len(tc.wantNotes) {
				t.Fatalf("notes = %q, want %q", notes, tc.wantNotes)
			}
			for i, n := range notes {
				if !strings.Contains(n, tc.wantNotes[i]) {
					t.Errorf("note %q, want it to contain %q", n, tc.wantNotes[i])
				}
			}
		})
	}
}

func TestCheckPullSecrets(t *testing.T) {
	p, err := policy.Parse("p.yaml", []byte(`apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
identities:
  - name: tenant
    namespaces: [team-a, team-b]
    serviceAccounts: [flux-source]
    aws: {roleARN: "arn:aws:iam::111122223333:role/tenant"}
mandates:
  - name: registries
    namespaces: [team-a]
    kinds: [OCIRepository]
`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sa := func(ns string, secrets ...string) *corev1.ServiceAccount {
		s := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "flux-source", Namespace: ns}}
		for _, name := range secrets {
			s.ImagePullSecrets = append(s.ImagePullSecrets, corev1.LocalObjectReference{Name: name})
		}
		return s
	}
	m, _ := p.IdentityFor("team-a", "flux-source")
	f, bad := checkPullSecrets(p, sa("team-a", "regcred", "other"), m)
	if !bad || !strings.Contains(f.Problem, "carries 2 imagePullSecrets") || !strings.Contains(f.Fix, `"/imagePullSecrets"`) {
		t.Errorf("finding = %+v, %v", f, bad)
	}
	if strings.Contains(f.Problem+f.Fix, "regcred") {
		t.Errorf("the finding names a Secret: %+v", f)
	}
	for _, s := range []*corev1.ServiceAccount{sa("team-a"), sa("team-b", "regcred")} {
		if f, bad := checkPullSecrets(p, s, m); bad {
			t.Errorf("%s/%v: unexpected finding %+v", s.Namespace, s.ImagePullSecrets, f)
		}
	}
	if !slices.Contains(tenantMandates(p), "registries") {
		t.Error("team-a is a tenant namespace")
	}
}
