package pods

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gomodules.xyz/jsonpatch/v2"
	"sigs.k8s.io/yaml"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/internal/admissiontest"
	"github.com/fluxidentity/flux-identity-webhook/webhook/patch"
)

type podFixture struct {
	Description string         `json:"description"`
	Namespace   string         `json:"namespace"`
	Input       map[string]any `json:"input"`
	Output      map[string]any `json:"output"`
	// Warnings are the response's warnings, exactly.
	Warnings []string `json:"warnings"`
}

func TestPodFixtures(t *testing.T) {
	p := admissiontest.FixturePolicy(t)
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
			var view View
			if err := json.Unmarshal(raw, &view); err != nil {
				t.Fatal(err)
			}
			v, err := evaluatePod(p, fx.Namespace, &view)
			if err != nil {
				t.Fatal(err)
			}
			if len(v.Violations) > 0 {
				t.Fatalf("violations %v: fixtures hold admitted pods", v.Violations)
			}
			if !slices.Equal(v.Warnings, fx.Warnings) {
				t.Errorf("warnings:\n got %q\nwant %q", v.Warnings, fx.Warnings)
			}
			got := mutatePodJSON(t, p, fx.Namespace, raw)
			// The token invariant holds on the patched pod, for the token the documented rules give.
			if m, ok := p.IdentityFor(fx.Namespace, view.Spec.serviceAccount()); ok && m.Identity.Injection == policy.InjectionFull {
				want, _ := expectedToken(m, patch.MetaOf(view.Metadata).Annotations)
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
	var pod View
	if err := json.Unmarshal(raw, &pod); err != nil {
		t.Fatal(err)
	}
	v, err := evaluatePod(p, ns, &pod)
	if err != nil {
		t.Fatal(err)
	}
	admissiontest.AssertOnlyAddAndReplace(t, v.Patch)
	return v.Patch
}

func mutatePodJSON(t testing.TB, p *policy.Policy, ns string, raw []byte) []byte {
	t.Helper()
	return admissiontest.ApplyPatch(t, raw, mutatePodOps(t, p, ns, raw))
}

func TestDeploymentTemplateLabel(t *testing.T) {
	p := admissiontest.FixturePolicy(t)
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
			var d DeploymentView
			if err := json.Unmarshal([]byte(tc.input), &d); err != nil {
				t.Fatal(err)
			}
			v := evaluateDeployment(p, tc.namespace, &d)
			admissiontest.AssertOnlyAddAndReplace(t, v.Patch)
			out := admissiontest.ApplyPatch(t, []byte(tc.input), v.Patch)
			var got DeploymentView
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
			var again DeploymentView
			_ = json.Unmarshal(out, &again)
			if v2 := evaluateDeployment(p, tc.namespace, &again); len(v2.Patch) != 0 {
				t.Errorf("second pass patched again: %v", v2.Patch)
			}
		})
	}
}
