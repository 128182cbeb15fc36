package doctor

import (
	"strings"
	"testing"
	"time"

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
		{[]string{"--events-addr=x", "--default-service-account=flux"}, "default-service-account", false, "flux", true},
		{[]string{"--default-service-account", "flux", "--log-level=info"}, "default-service-account", false, "flux", true},
		{[]string{"-default-service-account=a", "--default-service-account=b"}, "default-service-account", false, "b", true},
		{[]string{"--no-cross-namespace-refs"}, flagNoCrossNamespaceRefs, true, "true", true},
		{[]string{"--no-cross-namespace-refs", "false"}, flagNoCrossNamespaceRefs, true, "true", true}, // not its value
		{[]string{"--no-cross-namespace-refs=false"}, flagNoCrossNamespaceRefs, true, "false", true},
		{[]string{"--default-service-account-other=x"}, "default-service-account", false, "", false},
		{nil, "default-service-account", false, "", false},
	}
	for _, tc := range tests {
		if v, set := flagValue(tc.args, tc.name, tc.boolean); v != tc.wantValue || set != tc.wantSet {
			t.Errorf("flagValue(%q, %s) = %q %v, want %q %v", tc.args, tc.name, v, set, tc.wantValue, tc.wantSet)
		}
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
