package serviceaccounts

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/internal/admissiontest"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// pullPolicy maps a tenant ServiceAccount in three namespaces: registries mandated in enforce, in warn, and Git only.
const pullPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
identities:
  - name: tenant
    namespaces: [registries, quiet-registries, git-only, free]
    serviceAccounts: [flux-source]
    aws: {roleARN: "arn:aws:iam::111122223333:role/tenant"}
mandates:
  - name: registries
    namespaces: [registries]
    kinds: [OCIRepository, Bucket]
  - name: quiet-registries
    namespaces: [quiet-registries]
    kinds: [ImageRepository]
    mode: warn
  - name: git-only
    namespaces: [git-only]
    kinds: [GitRepository, HelmRepository, Bucket]
`

func TestMappedServiceAccountsCarryNoPullSecretsWhereIdentityIsMandated(t *testing.T) {
	p, err := policy.Parse("pull.yaml", []byte(pullPolicy), admissiontest.Now)
	if err != nil {
		t.Fatal(err)
	}
	const msg = "[registries] imagePullSecrets on a mapped ServiceAccount win over its identity for OCI sources: " +
		"move them to the pods"
	tests := map[string]struct {
		namespace, body string
		wantMode        policy.Mode
		want            []string
	}{
		"pull secrets on a mapped ServiceAccount under an OCIRepository mandate are a violation in its mode": {
			namespace: "registries",
			body:      `{"metadata":{"name":"flux-source"},"imagePullSecrets":[{"name":"regcred"}]}`,
			wantMode:  policy.ModeEnforce, want: []string{msg},
		},
		"an ImageRepository mandate in warn mode answers in warn": {
			namespace: "quiet-registries",
			body:      `{"metadata":{"name":"flux-source"},"imagePullSecrets":[{"name":"regcred"}]}`,
			wantMode:  policy.ModeWarn,
			want: []string{"[quiet-registries] imagePullSecrets here win over the identity of OCI sources: move them " +
				"to the pods"},
		},
		"a mandate over kinds that never read a ServiceAccount's pull secrets does not care": {
			namespace: "git-only",
			body:      `{"metadata":{"name":"flux-source"},"imagePullSecrets":[{"name":"regcred"}]}`,
		},
		"a namespace without a mandate does not care": {
			namespace: "free",
			body:      `{"metadata":{"name":"flux-source"},"imagePullSecrets":[{"name":"regcred"}]}`,
		},
		"an empty list is no pull secret": {
			namespace: "registries",
			body:      `{"metadata":{"name":"flux-source"},"imagePullSecrets":[]}`,
		},
		"an unmapped ServiceAccount is left alone: a source naming it is refused instead": {
			namespace: "registries",
			body:      `{"metadata":{"name":"builder"},"imagePullSecrets":[{"name":"regcred"}]}`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var sa View
			if err := json.Unmarshal([]byte(tc.body), &sa); err != nil {
				t.Fatal(err)
			}
			v := evaluate(p, tc.namespace, &sa)
			var got []string
			for _, vi := range v.Violations {
				got = append(got, vi.Message)
				if vi.Mode != tc.wantMode || vi.RuleType != verdict.RuleMandate {
					t.Errorf("mode %s rule type %s, want %s for a mandate", vi.Mode, vi.RuleType, tc.wantMode)
				}
				if len(vi.Message) > verdict.MaxMessageLength {
					t.Errorf("message over %d bytes: %q", verdict.MaxMessageLength, vi.Message)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("violations = %q, want %q", got, tc.want)
			}
		})
	}
}
