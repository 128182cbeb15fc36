package webhook

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// sourcePolicy maps Flux's controllers (AWS), tenants (Azure) and a data team (GCP), and mandates identity for Git in
// flux-system and team-*, for registries and buckets in team-* and data, for everything in team-b, and in audit-only
// mode in quiet.
const sourcePolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: unit
identities:
  - name: flux-controllers
    namespaces: [flux-system]
    serviceAccounts: [source-controller, image-reflector-controller]
    aws:
      roleARN: arn:aws:iam::111122223333:role/flux
  - name: tenants
    namespaces: ["team-*"]
    serviceAccounts: [flux-source]
    azure:
      clientID: 00000000-0000-0000-0000-000000000001
      tenantID: 00000000-0000-0000-0000-0000000000aa
  - name: data
    namespaces: [data]
    serviceAccounts: [flux-data]
    gcp:
      serviceAccount: flux-data@data-prod.iam.gserviceaccount.com
mandates:
  - name: no-static-git-credentials
    namespaces: [flux-system, "team-*", data]
    mode: enforce
    kinds: [GitRepository]
    allowProviders: [github]
  - name: no-static-registry-credentials
    namespaces: ["team-*", data]
    mode: warn
    kinds: [OCIRepository, HelmRepository, Bucket, ImageRepository]
  - name: team-b-everything
    namespaces: [team-b]
    mode: enforce
  - name: quiet-audit
    namespaces: [quiet]
    mode: off
exceptions:
  - namespace: team-a
    kind: GitRepository
    name: legacy-*
    reason: ADO migration, ticket PLAT-123
    expires: "2027-01-31"
  - namespace: team-a
    kind: OCIRepository
    name: old-registry
    reason: expired on purpose
    expires: "2026-01-01"
`

// sourceNow is the clock of these tests: the first exception is active, the second expired.
var sourceNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func loadSourcePolicy(t testing.TB) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("source-policy.yaml", []byte(sourcePolicy), sourceNow)
	if err != nil {
		t.Fatalf("parse policy: %v", err)
	}
	return p
}

func TestEvaluateSource(t *testing.T) {
	p := loadSourcePolicy(t)
	type want struct {
		mandates   []string
		fields     []string // "mandate field" per violation, in order
		messages   []string // exact messages, when given
		excepted   bool
		enforceAns string // the decision answered with the server in enforce mode
	}
	tests := map[string]struct {
		obj  SourceObject
		want want
	}{
		"a GitRepository without credentials in a mandated namespace is compliant": {
			obj:  SourceObject{Kind: "GitRepository", Namespace: "team-a", Name: "app"},
			want: want{mandates: []string{"no-static-git-credentials"}, enforceAns: SourceCompliant},
		},
		"a GitRepository in a namespace no mandate names is not mandated, even with a secretRef": {
			obj:  SourceObject{Kind: "GitRepository", Namespace: "elsewhere", Name: "app", SecretRefName: "git-auth"},
			want: want{enforceAns: SourceNotMandated},
		},
		"a kind the mandates of the namespace do not list is not mandated": {
			obj:  SourceObject{Kind: "OCIRepository", Namespace: "flux-system", Name: "app", SecretRefName: "regcred"},
			want: want{enforceAns: SourceNotMandated},
		},
		"spec.secretRef on a tenant's GitRepository is denied, pointing at the tenant's identity and ServiceAccount": {
			obj: SourceObject{Kind: "GitRepository", Namespace: "team-a", Name: "app", SecretRefName: "git-auth"},
			want: want{
				mandates: []string{"no-static-git-credentials"},
				fields:   []string{"no-static-git-credentials spec.secretRef"},
				messages: []string{"mandate no-static-git-credentials: remove spec.secretRef, set spec.provider: azure, " +
					"spec.serviceAccountName: flux-source"},
				enforceAns: SourceDenied,
			},
		},
		"spec.secretRef in flux-system points at the controllers' identity, not an object-level one": {
			obj: SourceObject{Kind: "GitRepository", Namespace: "flux-system", Name: "fleet", SecretRefName: "git-auth"},
			want: want{
				mandates: []string{"no-static-git-credentials"},
				fields:   []string{"no-static-git-credentials spec.secretRef"},
				messages: []string{"mandate no-static-git-credentials: remove spec.secretRef, set spec.provider: aws " +
					"(identity flux-controllers)"},
				enforceAns: SourceDenied,
			},
		},
		"spec.secretRef with a provider the mandate allows is tolerated": {
			obj: SourceObject{Kind: "GitRepository", Namespace: "team-a", Name: "app", SecretRefName: "github-app",
				Provider: "github"},
			want: want{mandates: []string{"no-static-git-credentials"}, enforceAns: SourceCompliant},
		},
		"a provider allowed by one mandate is no excuse under another that does not allow it": {
			obj: SourceObject{Kind: "GitRepository", Namespace: "team-b", Name: "app", SecretRefName: "github-app",
				Provider: "github"},
			want: want{
				mandates:   []string{"no-static-git-credentials", "team-b-everything"},
				fields:     []string{"team-b-everything spec.secretRef"},
				enforceAns: SourceDenied,
				excepted:   false,
				messages:   []string{"mandate team-b-everything: remove spec.secretRef, set spec.provider: azure, spec.serviceAccountName: flux-source"},
			},
		},
		"an unexpired exception whose glob matches the name excuses spec.secretRef": {
			obj:  SourceObject{Kind: "GitRepository", Namespace: "team-a", Name: "legacy-monorepo", SecretRefName: "ado-pat"},
			want: want{mandates: []string{"no-static-git-credentials"}, excepted: true, enforceAns: SourceExcepted},
		},
		"an exception for another kind excuses nothing": {
			obj: SourceObject{Kind: "ImageRepository", Namespace: "team-a", Name: "legacy-monorepo", SecretRefName: "regcred"},
			want: want{
				mandates:   []string{"no-static-registry-credentials"},
				fields:     []string{"no-static-registry-credentials spec.secretRef"},
				enforceAns: SourceWarned,
			},
		},
		"an expired exception excuses nothing": {
			obj: SourceObject{Kind: "OCIRepository", Namespace: "team-a", Name: "old-registry", SecretRefName: "regcred"},
			want: want{
				mandates: []string{"no-static-registry-credentials"},
				fields:   []string{"no-static-registry-credentials spec.secretRef"},
				messages: []string{"mandate no-static-registry-credentials: remove spec.secretRef, set spec.provider: azure " +
					"(identity tenants)"},
				enforceAns: SourceWarned,
			},
		},
		"an exception excuses spec.secretRef but not a ServiceAccount the policy does not map": {
			obj: SourceObject{Kind: "GitRepository", Namespace: "team-a", Name: "legacy-x", SecretRefName: "ado-pat",
				Provider: "azure", ServiceAccountName: "deployer"},
			want: want{
				mandates: []string{"no-static-git-credentials"},
				fields:   []string{"no-static-git-credentials spec.serviceAccountName"},
				messages: []string{"mandate no-static-git-credentials: spec.serviceAccountName deployer is not mapped: " +
					"use flux-source (identity tenants)"},
				excepted:   true,
				enforceAns: SourceDenied,
			},
		},
		"provider azure with the tenant's mapped ServiceAccount is compliant": {
			obj: SourceObject{Kind: "GitRepository", Namespace: "team-a", Name: "app", Provider: "azure",
				ServiceAccountName: "flux-source"},
			want: want{mandates: []string{"no-static-git-credentials"}, enforceAns: SourceCompliant},
		},
		"provider aws without a ServiceAccount (CodeCommit through the controller) is compliant": {
			obj:  SourceObject{Kind: "GitRepository", Namespace: "flux-system", Name: "codecommit", Provider: "aws"},
			want: want{mandates: []string{"no-static-git-credentials"}, enforceAns: SourceCompliant},
		},
		"spec.provider contradicting the cloud of the ServiceAccount's identity is denied": {
			obj: SourceObject{Kind: "GitRepository", Namespace: "team-a", Name: "app", Provider: "aws",
				ServiceAccountName: "flux-source"},
			want: want{
				mandates: []string{"no-static-git-credentials"},
				fields:   []string{"no-static-git-credentials spec.provider"},
				messages: []string{"mandate no-static-git-credentials: spec.provider: aws does not fit identity tenants: " +
					"set spec.provider: azure"},
				enforceAns: SourceDenied,
			},
		},
		"a generic OCIRepository reading pull secrets through a mapped ServiceAccount must use the identity's provider": {
			obj: SourceObject{Kind: "OCIRepository", Namespace: "team-a", Name: "app", ServiceAccountName: "flux-source"},
			want: want{
				mandates: []string{"no-static-registry-credentials"},
				fields:   []string{"no-static-registry-credentials spec.provider"},
				messages: []string{"mandate no-static-registry-credentials: spec.provider: generic does not fit " +
					"identity tenants: set spec.provider: azure"},
				enforceAns: SourceWarned,
			},
		},
		"a GitRepository skips the namespace's gcp identity, which Git cannot use, for the controllers' aws one": {
			obj: SourceObject{Kind: "GitRepository", Namespace: "data", Name: "app", SecretRefName: "git-auth"},
			want: want{
				mandates: []string{"no-static-git-credentials"},
				fields:   []string{"no-static-git-credentials spec.secretRef"},
				messages: []string{"mandate no-static-git-credentials: remove spec.secretRef, set spec.provider: aws " +
					"(identity flux-controllers)"},
				enforceAns: SourceDenied,
			},
		},
		"a gcp identity serves an OCIRepository through spec.provider: gcp": {
			obj: SourceObject{Kind: "OCIRepository", Namespace: "data", Name: "charts", SecretRefName: "regcred"},
			want: want{
				mandates: []string{"no-static-registry-credentials"},
				fields:   []string{"no-static-registry-credentials spec.secretRef"},
				messages: []string{"mandate no-static-registry-credentials: remove spec.secretRef, set spec.provider: gcp " +
					"(identity data)"},
				enforceAns: SourceWarned,
			},
		},
		"an https HelmRepository has no provider: the fix is to move to OCI": {
			obj: SourceObject{Kind: "HelmRepository", Namespace: "team-a", Name: "charts", SecretRefName: "basic",
				HelmType: "default"},
			want: want{
				mandates: []string{"no-static-registry-credentials"},
				fields:   []string{"no-static-registry-credentials spec.secretRef"},
				messages: []string{"mandate no-static-registry-credentials: remove spec.secretRef: https has no provider, " +
					"use type: oci + spec.provider: aws"},
				enforceAns: SourceWarned,
			},
		},
		"an OCI HelmRepository is told to set spec.provider (it has no serviceAccountName)": {
			obj: SourceObject{Kind: "HelmRepository", Namespace: "team-a", Name: "charts", SecretRefName: "regcred",
				HelmType: "oci"},
			want: want{
				mandates: []string{"no-static-registry-credentials"},
				fields:   []string{"no-static-registry-credentials spec.secretRef"},
				messages: []string{"mandate no-static-registry-credentials: remove spec.secretRef, set spec.provider: aws " +
					"(identity flux-controllers)"},
				enforceAns: SourceWarned,
			},
		},
		"a Bucket with spec.secretRef is a violation": {
			obj: SourceObject{Kind: "Bucket", Namespace: "team-a", Name: "artifacts", SecretRefName: "minio"},
			want: want{
				mandates:   []string{"no-static-registry-credentials"},
				fields:     []string{"no-static-registry-credentials spec.secretRef"},
				enforceAns: SourceWarned,
			},
		},
		"an ImageRepository with spec.secretRef is a violation": {
			obj: SourceObject{Kind: "ImageRepository", Namespace: "team-a", Name: "app", SecretRefName: "regcred"},
			want: want{
				mandates:   []string{"no-static-registry-credentials"},
				fields:     []string{"no-static-registry-credentials spec.secretRef"},
				enforceAns: SourceWarned,
			},
		},
		"every covering mandate reports spec.secretRef; the ServiceAccount is reported once, under the strictest": {
			obj: SourceObject{Kind: "OCIRepository", Namespace: "team-b", Name: "app", SecretRefName: "regcred",
				Provider: "azure", ServiceAccountName: "deployer"},
			want: want{
				mandates: []string{"no-static-registry-credentials", "team-b-everything"},
				fields: []string{"no-static-registry-credentials spec.secretRef", "team-b-everything spec.secretRef",
					"team-b-everything spec.serviceAccountName"},
				enforceAns: SourceDenied,
			},
		},
		"an off mandate still finds the violation (fixed by the controllers' identity), and the answer ignores it": {
			obj: SourceObject{Kind: "Bucket", Namespace: "quiet", Name: "b", SecretRefName: "minio"},
			want: want{
				mandates:   []string{"quiet-audit"},
				fields:     []string{"quiet-audit spec.secretRef"},
				messages:   []string{"mandate quiet-audit: remove spec.secretRef, set spec.provider: aws (identity flux-controllers)"},
				enforceAns: SourceIgnored,
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := EvaluateSource(p, tc.obj, sourceNow)
			if !slices.Equal(d.Mandates, tc.want.mandates) {
				t.Errorf("mandates = %q, want %q", d.Mandates, tc.want.mandates)
			}
			var fields, messages []string
			for _, v := range d.Violations {
				fields = append(fields, v.Mandate+" "+v.Field)
				messages = append(messages, v.Message)
				if len(v.Message) > MaxMessageLength {
					t.Errorf("message over %d bytes: %q", MaxMessageLength, v.Message)
				}
				if !strings.HasPrefix(v.Message, "mandate "+v.Mandate+": ") {
					t.Errorf("message does not name its mandate first: %q", v.Message)
				}
				if tc.obj.SecretRefName != "" && strings.Contains(v.Message, tc.obj.SecretRefName) {
					t.Errorf("message prints the secret's name: %q", v.Message)
				}
			}
			if !slices.Equal(fields, tc.want.fields) {
				t.Errorf("violations = %q, want %q", fields, tc.want.fields)
			}
			if tc.want.messages != nil && !slices.Equal(messages, tc.want.messages) {
				t.Errorf("messages =\n  %q\nwant\n  %q", messages, tc.want.messages)
			}
			if (d.Exception != nil) != tc.want.excepted {
				t.Errorf("exception = %v, want excepted %v", d.Exception, tc.want.excepted)
			}
			if got := d.Answer(policy.ModeEnforce, false).Decision; got != tc.want.enforceAns {
				t.Errorf("decision = %s, want %s", got, tc.want.enforceAns)
			}
		})
	}
}

func TestSourceAnswerModes(t *testing.T) {
	violation := func(mode policy.Mode, msg string) SourceViolation {
		return SourceViolation{Mandate: "m", Mode: mode, Field: "spec.secretRef", Message: msg}
	}
	mixed := SourceDecision{Mandates: []string{"m"}, Violations: []SourceViolation{
		violation(policy.ModeEnforce, "e"), violation(policy.ModeWarn, "w"), violation(policy.ModeOff, "o"),
	}}
	tests := map[string]struct {
		d         SourceDecision
		server    policy.Mode
		unchanged bool
		want      SourceAnswer
	}{
		"enforce denies with its messages; warn messages still come back as warnings; off says nothing": {
			d: mixed, server: policy.ModeEnforce,
			want: SourceAnswer{Decision: SourceDenied, Denials: []string{"e"}, Warnings: []string{"w"},
				Modes: []policy.Mode{policy.ModeEnforce, policy.ModeWarn, policy.ModeOff}},
		},
		"the server-wide warn mode turns every denial into a warning with the same text": {
			d: mixed, server: policy.ModeWarn,
			want: SourceAnswer{Decision: SourceWarned, Warnings: []string{"e", "w"},
				Modes: []policy.Mode{policy.ModeWarn, policy.ModeWarn, policy.ModeOff}},
		},
		"an update leaving the credentials unchanged is reported as a warning, not denied": {
			d: mixed, server: policy.ModeEnforce, unchanged: true,
			want: SourceAnswer{Decision: SourceWarned, Warnings: []string{"e", "w"},
				Modes: []policy.Mode{policy.ModeWarn, policy.ModeWarn, policy.ModeOff}},
		},
		"off violations alone admit silently but are still a decision of their own": {
			d:      SourceDecision{Mandates: []string{"m"}, Violations: []SourceViolation{violation(policy.ModeOff, "o")}},
			server: policy.ModeEnforce,
			want:   SourceAnswer{Decision: SourceIgnored, Modes: []policy.Mode{policy.ModeOff}},
		},
		"no mandate means not mandated": {
			d: SourceDecision{}, server: policy.ModeEnforce, want: SourceAnswer{Decision: SourceNotMandated},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := tc.d.Answer(tc.server, tc.unchanged)
			if got.Decision != tc.want.Decision || !slices.Equal(got.Denials, tc.want.Denials) ||
				!slices.Equal(got.Warnings, tc.want.Warnings) || !slices.Equal(got.Modes, tc.want.Modes) {
				t.Errorf("answer = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestSourceMessagesFitWithLongestNames drives every message shape with names at the policy's 63-character limit and a
// 253-character ServiceAccount name: no message may pass MaxMessageLength, and each still names its mandate.
func TestSourceMessagesFitWithLongestNames(t *testing.T) {
	long := func(c string) string { return strings.Repeat(c, 63) }
	mandate, identity := long("m"), long("i")
	doc := fmt.Sprintf(`apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: long
identities:
  - name: %[2]s
    namespaces: ["%[3]s"]
    serviceAccounts: ["%[4]s"]
    gcp:
      serviceAccount: flux-gcp@p-project.iam.gserviceaccount.com
  - name: %[2]s-2
    namespaces: ["%[5]s"]
    serviceAccounts: ["%[4]s"]
    azure:
      clientID: 00000000-0000-0000-0000-000000000001
      tenantID: 00000000-0000-0000-0000-0000000000aa
mandates:
  - name: %[1]s
    namespaces: ["%[3]s", "%[5]s", nothing]
`, mandate, identity[:61], long("n"), long("s"), long("a"))
	p, err := policy.Parse("long.yaml", []byte(doc), sourceNow)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	count := 0
	for _, ns := range []string{long("n"), long("a"), "nothing"} {
		for _, kind := range policy.SourceKinds {
			for _, provider := range []string{"", "generic", "aws", "azure", "gcp", "github"} {
				for _, sa := range []string{"", long("s"), strings.Repeat("x", 253)} {
					for _, helmType := range []string{"default", "oci"} {
						obj := SourceObject{Kind: kind, Namespace: ns, Name: "o", SecretRefName: "s", Provider: provider,
							ServiceAccountName: sa, HelmType: helmType}
						for _, v := range EvaluateSource(p, obj, sourceNow).Violations {
							count++
							if len(v.Message) > MaxMessageLength || !strings.HasPrefix(v.Message, "mandate "+mandate+": ") {
								t.Errorf("%+v: message %d bytes: %q", obj, len(v.Message), v.Message)
							}
						}
					}
				}
			}
		}
	}
	if count == 0 {
		t.Fatal("no violations were produced: the test checks nothing")
	}
}

func TestSourceMessagesWithoutAUsableIdentity(t *testing.T) {
	p, err := policy.Parse("gcp-only.yaml", []byte(`apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: gcp-only
identities:
  - name: data
    namespaces: [data]
    serviceAccounts: [flux-data]
    gcp:
      serviceAccount: flux-data@data-prod.iam.gserviceaccount.com
mandates:
  - name: no-secrets
    namespaces: [data, other]
`), sourceNow)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	tests := map[string]struct {
		obj  SourceObject
		want []string
	}{
		"a GitRepository whose only identity is gcp is told Git has no gcp provider": {
			obj:  SourceObject{Kind: "GitRepository", Namespace: "data", Name: "app", SecretRefName: "s"},
			want: []string{"mandate no-secrets: remove spec.secretRef: GitRepository has no gcp provider (identity data), add an exception"},
		},
		"a GitRepository naming a gcp ServiceAccount is told Git cannot use it": {
			obj: SourceObject{Kind: "GitRepository", Namespace: "data", Name: "app", Provider: "azure",
				ServiceAccountName: "flux-data"},
			want: []string{"mandate no-secrets: identity data of spec.serviceAccountName is gcp, which GitRepository cannot use"},
		},
		"without any identity in reach the fix is to map one": {
			obj:  SourceObject{Kind: "Bucket", Namespace: "other", Name: "b", SecretRefName: "s"},
			want: []string{"mandate no-secrets: remove spec.secretRef and map a workload identity for this namespace in the policy"},
		},
		"an unmapped ServiceAccount with nothing to suggest is to be mapped or removed": {
			obj:  SourceObject{Kind: "OCIRepository", Namespace: "other", Name: "o", Provider: "aws", ServiceAccountName: "ci"},
			want: []string{"mandate no-secrets: spec.serviceAccountName ci has no identity in the policy: map it or remove it"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got []string
			for _, v := range EvaluateSource(p, tc.obj, sourceNow).Violations {
				got = append(got, v.Message)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("messages =\n  %q\nwant\n  %q", got, tc.want)
			}
		})
	}
}
