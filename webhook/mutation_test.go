package webhook

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"gomodules.xyz/jsonpatch/v2"
	"sigs.k8s.io/yaml"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

func loadFixturePolicy(t testing.TB) *policy.Policy {
	t.Helper()
	data, err := os.ReadFile("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse("testdata/policy.yaml", data, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// applyPatch applies ops to raw JSON the way the API server does.
func applyPatch(t testing.TB, raw []byte, ops []jsonpatch.Operation) []byte {
	t.Helper()
	if len(ops) == 0 {
		return raw
	}
	patchJSON, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	return applyPatchBytes(t, raw, patchJSON)
}

// applyPatchBytes applies an encoded JSON patch, as the API server does.
func applyPatchBytes(t testing.TB, raw, patchJSON []byte) []byte {
	t.Helper()
	if len(patchJSON) == 0 {
		return raw
	}
	p, err := jsonpatchapply.DecodePatch(patchJSON)
	if err != nil {
		t.Fatalf("decode patch %s: %v", patchJSON, err)
	}
	out, err := p.Apply(raw)
	if err != nil {
		t.Fatalf("apply patch %s: %v", patchJSON, err)
	}
	return out
}

func assertNoRemoveOrWholeListReplace(t testing.TB, ops []jsonpatch.Operation) {
	t.Helper()
	for _, op := range ops {
		if op.Operation != "add" && op.Operation != "replace" {
			t.Errorf("operation %s %s: only add and replace are allowed", op.Operation, op.Path)
		}
		if op.Operation == "replace" && !strings.Contains(op.Path, "/annotations/") && !strings.Contains(op.Path, "/labels/") {
			t.Errorf("replace of %s: only single annotation or label values may be replaced", op.Path)
		}
	}
}

type podFixture struct {
	Description string         `json:"description"`
	Namespace   string         `json:"namespace"`
	Input       map[string]any `json:"input"`
	Output      map[string]any `json:"output"`
	// Warnings are the response's warnings, exactly.
	Warnings []string `json:"warnings"`
}

func TestPodFixtures(t *testing.T) {
	p := loadFixturePolicy(t)
	files, err := filepath.Glob("testdata/pods/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var fx podFixture
			if err := yaml.UnmarshalStrict(data, &fx); err != nil {
				t.Fatalf("fixture: %v", err)
			}
			raw, _ := json.Marshal(fx.Input)
			var view podView
			if err := json.Unmarshal(raw, &view); err != nil {
				t.Fatal(err)
			}
			v, err := evaluatePod(p, fx.Namespace, &view)
			if err != nil {
				t.Fatal(err)
			}
			if len(v.violations) > 0 {
				t.Fatalf("violations %v: fixtures hold admitted pods", v.violations)
			}
			if !slices.Equal(v.warnings, fx.Warnings) {
				t.Errorf("warnings:\n got %q\nwant %q", v.warnings, fx.Warnings)
			}
			got := mutatePodJSON(t, p, fx.Namespace, raw)
			// The token invariant holds on the patched pod, for the token the documented rules give.
			if m, ok := p.IdentityFor(fx.Namespace, view.Spec.serviceAccount()); ok && m.Identity.Injection == policy.InjectionFull {
				want, _ := expectedToken(m, metaOf(view.Metadata).Annotations)
				problems, err := CheckTokenInvariant(raw, got, want)
				if err != nil || len(problems) > 0 {
					t.Errorf("token invariant: %v %v", problems, err)
				}
			}
			var gotObj map[string]any
			if err := json.Unmarshal(got, &gotObj); err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(fx.Output)
			var wantObj map[string]any
			_ = json.Unmarshal(want, &wantObj)
			if !reflect.DeepEqual(gotObj, wantObj) {
				gy, _ := yaml.Marshal(gotObj)
				t.Fatalf("%s\ngot:\n%s", fx.Description, gy)
			}
			// Reinvocation: the webhook applied to its own output changes nothing.
			if again := mutatePodOps(t, p, fx.Namespace, got); len(again) != 0 {
				t.Errorf("second pass patched again: %v", again)
			}
		})
	}
}

func mutatePodOps(t testing.TB, p *policy.Policy, ns string, raw []byte) []jsonpatch.Operation {
	t.Helper()
	var pod podView
	if err := json.Unmarshal(raw, &pod); err != nil {
		t.Fatal(err)
	}
	v, err := evaluatePod(p, ns, &pod)
	if err != nil {
		t.Fatal(err)
	}
	assertNoRemoveOrWholeListReplace(t, v.patch)
	return v.patch
}

func mutatePodJSON(t testing.TB, p *policy.Policy, ns string, raw []byte) []byte {
	t.Helper()
	return applyPatch(t, raw, mutatePodOps(t, p, ns, raw))
}

func TestServiceAccountMutation(t *testing.T) {
	p := loadFixturePolicy(t)
	tests := map[string]struct {
		namespace       string
		input           string
		wantAnnotations map[string]string // exact annotations after the patch
		wantLabels      map[string]string
		wantViolations  []string
		wantMode        policy.Mode
	}{
		"a mapped AWS ServiceAccount gets the expanded role and its identity name": {
			namespace: "flux-system",
			input:     `{"metadata":{"name":"source-controller"}}`,
			wantAnnotations: map[string]string{
				keys.AnnotationAWSRoleARN:              "arn:aws:iam::111122223333:role/flux-flux-system.source-controller",
				keys.AnnotationAWSSTSRegionalEndpoints: "true",
				keys.AnnotationAWSTokenExpiration:      "3600",
				keys.AnnotationIdentity:                "aws-full",
			},
		},
		"a custom audience is written, and unrelated annotations and labels are kept": {
			namespace: "flux-system",
			input:     `{"metadata":{"name":"kustomize-controller","annotations":{"team":"a"},"labels":{"x":"y"}}}`,
			wantAnnotations: map[string]string{
				"team": "a", keys.AnnotationAWSRoleARN: "arn:aws:iam::111122223333:role/kustomize",
				keys.AnnotationAWSAudience: "sts.example.com", keys.AnnotationIdentity: "aws-annotate",
			},
			wantLabels: map[string]string{"x": "y"},
		},
		"a spoofed role ARN on a mapped ServiceAccount is replaced": {
			namespace: "flux-system",
			input:     `{"metadata":{"name":"kustomize-controller","annotations":{"eks.amazonaws.com/role-arn":"arn:aws:iam::999999999999:role/admin"}}}`,
			wantAnnotations: map[string]string{
				keys.AnnotationAWSRoleARN: "arn:aws:iam::111122223333:role/kustomize", keys.AnnotationAWSAudience: "sts.example.com",
				keys.AnnotationIdentity: "aws-annotate",
			},
		},
		"a mapped Azure ServiceAccount gets both IDs and the use label": {
			namespace: "flux-system",
			input:     `{"metadata":{"name":"helm-controller","labels":{}}}`,
			wantAnnotations: map[string]string{
				keys.AnnotationAzureClientID: "00000000-0000-0000-0000-000000000001",
				keys.AnnotationAzureTenantID: "00000000-0000-0000-0000-0000000000aa", keys.AnnotationIdentity: "azure-annotate",
			},
			wantLabels: map[string]string{keys.LabelAzureUse: "true"},
		},
		"an Azure token lifetime from the policy is written": {
			namespace: "flux-system",
			input:     `{"metadata":{"name":"image-reflector-controller"}}`,
			wantAnnotations: map[string]string{
				keys.AnnotationAzureClientID: "00000000-0000-0000-0000-000000000002",
				keys.AnnotationAzureTenantID: "00000000-0000-0000-0000-0000000000aa", keys.AnnotationAzureTokenExpiration: "7200",
				keys.AnnotationIdentity: "azure-full",
			},
			wantLabels: map[string]string{keys.LabelAzureUse: "true"},
		},
		"a mapped GCP ServiceAccount gets the Google service account and the provider": {
			namespace: "flux-system",
			input:     `{"metadata":{"name":"image-automation-controller"}}`,
			wantAnnotations: map[string]string{
				keys.AnnotationGCPServiceAccount: "flux-images@my-project.iam.gserviceaccount.com",
				keys.AnnotationGCPWorkloadIdentityProvider: "projects/123456789/locations/global/workloadIdentityPools/" +
					"flux-pool/providers/flux-prov",
				keys.AnnotationIdentity: "gcp-full",
			},
		},
		"a cloud key the identity does not grant is a violation in the namespace's mode": {
			namespace: "flux-system",
			input:     `{"metadata":{"name":"helm-controller","annotations":{"iam.gke.io/gcp-service-account":"x@y.iam.gserviceaccount.com"}}}`,
			wantAnnotations: map[string]string{
				keys.AnnotationGCPServiceAccount: "x@y.iam.gserviceaccount.com",
				keys.AnnotationAzureClientID:     "00000000-0000-0000-0000-000000000001",
				keys.AnnotationAzureTenantID:     "00000000-0000-0000-0000-0000000000aa", keys.AnnotationIdentity: "azure-annotate",
			},
			wantLabels:     map[string]string{keys.LabelAzureUse: "true"},
			wantViolations: []string{"[azure-annotate] annotation iam.gke.io/gcp-service-account is not granted by this identity: remove it (azure identity)"},
			wantMode:       policy.ModeEnforce,
		},
		"the default STS audience is tolerated on an AWS ServiceAccount": {
			namespace: "flux-system",
			input:     `{"metadata":{"name":"source-controller","annotations":{"eks.amazonaws.com/audience":"sts.amazonaws.com"}}}`,
			wantAnnotations: map[string]string{
				keys.AnnotationAWSAudience:             "sts.amazonaws.com",
				keys.AnnotationAWSRoleARN:              "arn:aws:iam::111122223333:role/flux-flux-system.source-controller",
				keys.AnnotationAWSSTSRegionalEndpoints: "true", keys.AnnotationAWSTokenExpiration: "3600",
				keys.AnnotationIdentity: "aws-full",
			},
		},
		"an unmapped ServiceAccount setting a role ARN in a policy namespace is a violation": {
			namespace:       "flux-system",
			input:           `{"metadata":{"name":"intruder","annotations":{"eks.amazonaws.com/role-arn":"arn:aws:iam::111122223333:role/kustomize"}}}`,
			wantAnnotations: map[string]string{keys.AnnotationAWSRoleARN: "arn:aws:iam::111122223333:role/kustomize"},
			wantViolations:  []string{"[ownership] annotation eks.amazonaws.com/role-arn is reserved: remove it (no identity maps flux-system/intruder)"},
			wantMode:        policy.ModeEnforce,
		},
		"glob namespaces own in the mode of their entry (warn)": {
			namespace:       "team-b",
			input:           `{"metadata":{"name":"app","annotations":{"azure.workload.identity/client-id":"00000000-0000-0000-0000-000000000003"}}}`,
			wantAnnotations: map[string]string{keys.AnnotationAzureClientID: "00000000-0000-0000-0000-000000000003"},
			wantViolations:  []string{"[ownership] annotation azure.workload.identity/client-id is reserved: remove it (no identity maps team-b/app)"},
			wantMode:        policy.ModeWarn,
		},
		"a glob entry maps a tenant ServiceAccount with the namespace expanded": {
			namespace: "team-b",
			input:     `{"metadata":{"name":"flux-source"}}`,
			wantAnnotations: map[string]string{
				keys.AnnotationAWSRoleARN: "arn:aws:iam::111122223333:role/tenant-team-b", keys.AnnotationIdentity: "tenants",
			},
		},
		"a namespace named only by a mandate is owned in enforce mode": {
			namespace:       "sealed",
			input:           `{"metadata":{"name":"x","annotations":{"fluxidentity.dev/identity":"aws-full"}}}`,
			wantAnnotations: map[string]string{keys.AnnotationIdentity: "aws-full"},
			wantViolations:  []string{"[ownership] annotation fluxidentity.dev/identity is reserved: remove it (no identity maps sealed/x)"},
			wantMode:        policy.ModeEnforce,
		},
		"namespaces the policy does not name are left alone": {
			namespace:       "elsewhere",
			input:           `{"metadata":{"name":"source-controller","annotations":{"eks.amazonaws.com/role-arn":"arn:aws:iam::999999999999:role/x"}}}`,
			wantAnnotations: map[string]string{keys.AnnotationAWSRoleARN: "arn:aws:iam::999999999999:role/x"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var sa serviceAccountView
			if err := json.Unmarshal([]byte(tc.input), &sa); err != nil {
				t.Fatal(err)
			}
			v := evaluateServiceAccount(p, tc.namespace, &sa)
			assertNoRemoveOrWholeListReplace(t, v.patch)
			var messages []string
			for _, vi := range v.violations {
				messages = append(messages, vi.message)
				if vi.mode != tc.wantMode {
					t.Errorf("mode %s, want %s", vi.mode, tc.wantMode)
				}
			}
			if !reflect.DeepEqual(messages, tc.wantViolations) {
				t.Errorf("violations %q, want %q", messages, tc.wantViolations)
			}
			out := applyPatch(t, []byte(tc.input), v.patch)
			var got serviceAccountView
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Metadata.Annotations, tc.wantAnnotations) {
				t.Errorf("annotations %v, want %v", got.Metadata.Annotations, tc.wantAnnotations)
			}
			if len(got.Metadata.Labels) != 0 || len(tc.wantLabels) != 0 {
				if !reflect.DeepEqual(got.Metadata.Labels, tc.wantLabels) {
					t.Errorf("labels %v, want %v", got.Metadata.Labels, tc.wantLabels)
				}
			}
			var again serviceAccountView
			_ = json.Unmarshal(out, &again)
			if v2 := evaluateServiceAccount(p, tc.namespace, &again); len(v2.patch) != 0 {
				t.Errorf("second pass patched again: %v", v2.patch)
			}
		})
	}
}

func TestDeploymentTemplateLabel(t *testing.T) {
	p := loadFixturePolicy(t)
	tests := map[string]struct {
		namespace, input string
		wantLabels       map[string]string
	}{
		"an Azure annotate Deployment gets the use label on its pod template": {
			namespace:  "flux-system",
			input:      `{"spec":{"selector":{"matchLabels":{"app":"helm"}},"template":{"metadata":{"labels":{"app":"helm"}},"spec":{"serviceAccountName":"helm-controller"}}}}`,
			wantLabels: map[string]string{"app": "helm", keys.LabelAzureUse: "true"},
		},
		"a template without metadata gets it": {
			namespace:  "team-a",
			input:      `{"spec":{"template":{"spec":{"serviceAccountName":"flux-source"}}}}`,
			wantLabels: map[string]string{keys.LabelAzureUse: "true"},
		},
		"an AWS Deployment is left alone": {
			namespace:  "flux-system",
			input:      `{"spec":{"template":{"metadata":{"labels":{"app":"src"}},"spec":{"serviceAccountName":"source-controller"}}}}`,
			wantLabels: map[string]string{"app": "src"},
		},
		"an Azure full-injection Deployment is left alone so the Azure webhook stays out": {
			namespace:  "flux-system",
			input:      `{"spec":{"template":{"metadata":{"labels":{"app":"irc"}},"spec":{"serviceAccountName":"image-reflector-controller"}}}}`,
			wantLabels: map[string]string{"app": "irc"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var d deploymentView
			if err := json.Unmarshal([]byte(tc.input), &d); err != nil {
				t.Fatal(err)
			}
			v := evaluateDeployment(p, tc.namespace, &d)
			assertNoRemoveOrWholeListReplace(t, v.patch)
			out := applyPatch(t, []byte(tc.input), v.patch)
			var got deploymentView
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			var labels map[string]string
			if got.Spec.Template.Metadata != nil {
				labels = got.Spec.Template.Metadata.Labels
			}
			if !reflect.DeepEqual(labels, tc.wantLabels) {
				t.Errorf("template labels %v, want %v", labels, tc.wantLabels)
			}
			var again deploymentView
			_ = json.Unmarshal(out, &again)
			if v2 := evaluateDeployment(p, tc.namespace, &again); len(v2.patch) != 0 {
				t.Errorf("second pass patched again: %v", v2.patch)
			}
		})
	}
}

func TestEscapeKey(t *testing.T) {
	for in, want := range map[string]string{
		"eks.amazonaws.com/role-arn": "eks.amazonaws.com~1role-arn",
		"a~b/c":                      "a~0b~1c",
		"plain":                      "plain",
	} {
		if got := escapeKey(in); got != want {
			t.Errorf("escapeKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestServiceAccountViolationsAreCountedAndAudited(t *testing.T) {
	p := loadFixturePolicy(t)
	intruder := `{"metadata":{"name":"intruder-audit","annotations":{"eks.amazonaws.com/role-arn":"arn:aws:iam::1:role/x"}}}`
	tests := map[string]struct {
		namespace    string
		server       policy.Mode
		wantMode     string
		wantDecision string
		wantAllowed  bool
	}{
		"enforce denies and counts as enforce":          {"flux-system", policy.ModeEnforce, "enforce", "denied", false},
		"an audit-only server warns and counts as warn": {"flux-system", policy.ModeWarn, "warn", "warned", true},
		"a warn namespace warns whatever the server":    {"team-b", policy.ModeEnforce, "warn", "warned", true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var sa serviceAccountView
			if err := json.Unmarshal([]byte(intruder), &sa); err != nil {
				t.Fatal(err)
			}
			counter := violations.WithLabelValues(tc.wantMode, "ServiceAccount", tc.namespace, RuleOwnership, "")
			before := testutil.ToFloat64(counter)
			v := evaluateServiceAccount(p, tc.namespace, &sa)
			resp, _ := v.respond(tc.server, newCountedHandler("test"))
			if resp.Allowed != tc.wantAllowed {
				t.Errorf("allowed %v, want %v", resp.Allowed, tc.wantAllowed)
			}
			if got := testutil.ToFloat64(counter) - before; got != 1 {
				t.Errorf("fluxidentity_violations_total{mode=%s} grew by %v, want 1", tc.wantMode, got)
			}
			if resp.AuditAnnotations[keys.AuditDecision] != tc.wantDecision || resp.AuditAnnotations[keys.AuditRules] != RuleOwnership {
				t.Errorf("audit annotations %v, want decision %s and rules ownership", resp.AuditAnnotations, tc.wantDecision)
			}
		})
	}
}
