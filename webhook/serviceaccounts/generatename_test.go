package serviceaccounts

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/internal/admissiontest"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// generatedPolicy maps team-*'s flux-* ServiceAccounts to one role, app-* to a role per ServiceAccount, a few mix-b*
// and mix-c* names (so that some names generated from mix- are mapped and others not), an exact name that flux- could
// generate, and in team-long long names of a's and names with a q; the mandate covers OCI kinds, so mapped
// ServiceAccounts carry no pull secrets.
var generatedPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
identities:
  - name: tenant
    namespaces: ["team-*"]
    serviceAccounts: ["flux-*"]
    aws: {roleARN: "arn:aws:iam::111122223333:role/tenant-{namespace}"}
  - name: per-sa
    namespaces: ["team-*"]
    serviceAccounts: ["app-*"]
    aws: {roleARN: "arn:aws:iam::111122223333:role/{namespace}.{serviceAccount}"}
  - name: mixed
    namespaces: ["team-*"]
    serviceAccounts: ["mix-b*", "mix-c*"]
    aws: {roleARN: "arn:aws:iam::111122223333:role/mixed"}
  - name: exact
    namespaces: [team-exact]
    serviceAccounts: [flux-bbbbb]
    aws: {roleARN: "arn:aws:iam::111122223333:role/exact"}
  - name: long
    namespaces: [team-long]
    serviceAccounts: ["` + strings.Repeat("a", 58) + `*", "*q*"]
    aws: {roleARN: "arn:aws:iam::111122223333:role/long"}
mandates:
  - name: registries
    namespaces: ["team-*"]
    kinds: [OCIRepository]
`

func TestGeneratedStandIn(t *testing.T) {
	p, err := policy.Parse("generated.yaml", []byte(generatedPolicy), admissiontest.Now)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		namespace, generateName string
		ok                      bool
		entry                   string // the entry the stand-in maps to; empty for none
	}{
		"every name flux- can give is mapped by flux-*":                       {"team-a", "flux-", true, "tenant"},
		"no name default-token- can give is mapped":                           {"team-a", "default-token-", true, ""},
		"flux without the dash never becomes flux-: the alphabet has no dash": {"team-a", "flux", true, ""},
		"names from mix- map to mix-b* and mix-c* for some suffixes only":     {"team-a", "mix-", false, ""},
		"an entry whose role names the ServiceAccount cannot be stamped before the name is known": {
			"team-a", "app-", false, ""},
		"an exact entry that one generated name would hit splits the names": {"team-exact", "flux-", false, ""},
		"outside the policy's namespaces nothing is mapped":                 {"other", "flux-", true, ""},
		"within 58 bytes, a q in the prefix maps every name":                {"team-long", "zq", true, "long"},
		"a prefix past 58 bytes is cut as the API server cuts it: a q past them is not in the name, so only names " +
			"with a q in the suffix are mapped": {"team-long", strings.Repeat("z", 58) + "q", false, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			standIn, ok := generatedStandIn(p, tc.namespace, tc.generateName)
			if ok != tc.ok {
				t.Fatalf("decided %v (stand-in %q), want %v", ok, standIn, tc.ok)
			}
			if !ok {
				return
			}
			m, mapped := p.IdentityFor(tc.namespace, standIn)
			got := ""
			if mapped {
				got = m.Identity.Name
			}
			if got != tc.entry {
				t.Errorf("stand-in %q maps to %q, want %q", standIn, got, tc.entry)
			}
		})
	}
}

func TestGeneratedServiceAccounts(t *testing.T) {
	p, err := policy.Parse("generated.yaml", []byte(generatedPolicy), admissiontest.Now)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		validating bool // the validating webhook, after the API server generated the name
		body       string
		wantRole   string // the role the mutating webhook stamps
		want       []string
	}{
		"the mutating webhook gives a generateName ServiceAccount the identity every generated name gets": {
			body: `{"metadata":{"generateName":"flux-"}}`, wantRole: "arn:aws:iam::111122223333:role/tenant-team-a"},
		"and holds it to the mapped rules: pull secrets under an OCI mandate are refused": {
			body:     `{"metadata":{"generateName":"flux-"},"imagePullSecrets":[{"name":"regcred"}]}`,
			wantRole: "arn:aws:iam::111122223333:role/tenant-team-a",
			want: []string{"[registries] imagePullSecrets on a mapped ServiceAccount win over its identity for OCI " +
				"sources: move them to the pods"}},
		"a prefix whose names map differently is left to the validating webhook": {
			body: `{"metadata":{"generateName":"mix-","annotations":{"eks.amazonaws.com/role-arn":"x"}}}`},
		"the validating webhook refuses a generated name that is mapped but lacks its identity": {validating: true,
			body: `{"metadata":{"name":"app-x2b4z","generateName":"app-"}}`,
			want: []string{"[per-sa] generated name app-x2b4z is mapped but lacks its identity: set metadata.name " +
				"instead of generateName"}},
		"it refuses pull secrets on a generated name the mutating webhook could not judge": {validating: true,
			body: `{"metadata":{"name":"mix-bcdfg","generateName":"mix-","annotations":{` +
				`"fluxidentity.dev/identity":"mixed","eks.amazonaws.com/role-arn":"arn:aws:iam::111122223333:role/mixed"}},` +
				`"imagePullSecrets":[{"name":"regcred"}]}`,
			want: []string{"[registries] imagePullSecrets on a mapped ServiceAccount win over its identity for OCI " +
				"sources: move them to the pods"}},
		"it admits a generated name that carries its identity": {validating: true,
			body: `{"metadata":{"name":"flux-x2b4z","generateName":"flux-","annotations":{` +
				`"fluxidentity.dev/identity":"tenant","eks.amazonaws.com/role-arn":"arn:aws:iam::111122223333:role/tenant-team-a"}}}`},
		"it refuses a claimed identity on a generated name nothing maps": {validating: true,
			body: `{"metadata":{"name":"mix-zzzzz","generateName":"mix-","annotations":{"eks.amazonaws.com/role-arn":"x"}}}`,
			want: []string{"[ownership] annotation " + keys.AnnotationAWSRoleARN + " is reserved: remove it " +
				"(no identity maps team-a/mix-zzzzz)"}},
		"it leaves a ServiceAccount created with its own name to the mutating webhook": {validating: true,
			body: `{"metadata":{"name":"app-named"}}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var view View
			if err := json.Unmarshal([]byte(tc.body), &view); err != nil {
				t.Fatal(err)
			}
			req := &verdict.Request[View, verdict.None]{Namespace: "team-a", Object: &view}
			admit := Admit
			if tc.validating {
				admit = AdmitGenerated
			}
			v, err := admit(p, req, admissiontest.Now)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, vi := range v.Violations {
				got = append(got, vi.Message)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("violations\n%q\nwant\n%q", got, tc.want)
			}
			if tc.validating && len(v.Patch) > 0 {
				t.Errorf("the validating webhook patches: %v", v.Patch)
			}
			role := ""
			for _, op := range v.Patch {
				if strings.HasSuffix(op.Path, "role-arn") {
					role, _ = op.Value.(string)
				}
				var m map[string]string
				if b, err := json.Marshal(op.Value); err == nil && json.Unmarshal(b, &m) == nil &&
					m[keys.AnnotationAWSRoleARN] != "" {
					role = m[keys.AnnotationAWSRoleARN]
				}
			}
			if role != tc.wantRole {
				t.Errorf("stamped role %q, want %q (patch %v)", role, tc.wantRole, v.Patch)
			}
		})
	}
}
