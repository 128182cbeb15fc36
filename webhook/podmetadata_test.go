package webhook

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// podMetadataCase is one entry of testdata/podmetadata/cases.yaml, which the integration suite replays through a real
// API server.
type podMetadataCase struct {
	Name    string     `json:"name"`
	Binding bool       `json:"binding"`
	Old     objectMeta `json:"old"`
	New     objectMeta `json:"new"`
	Owned   []string   `json:"owned"`
}

func loadPodMetadataCases(t *testing.T) []podMetadataCase {
	t.Helper()
	data, err := os.ReadFile("testdata/podmetadata/cases.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cases []podMetadataCase
	if err := yaml.UnmarshalStrict(data, &cases); err != nil {
		t.Fatalf("cases.yaml: %v", err)
	}
	if len(cases) < 10 {
		t.Fatalf("only %d cases in cases.yaml", len(cases))
	}
	return cases
}

func TestChangedOwnedAnnotationsOnTheSharedCases(t *testing.T) {
	for _, c := range loadPodMetadataCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			if c.Binding && (c.Old.Annotations != nil || c.Old.Labels != nil) {
				t.Fatal("a binding case has no old metadata")
			}
			got := changedOwnedAnnotations(c.Old.Annotations, c.New.Annotations)
			if !slices.Equal(got, c.Owned) {
				t.Errorf("owned keys changed %v, want %v", got, c.Owned)
			}
		})
	}
}

const gcpConfigValue = `{"type":"external_account","token_url":"https://sts.attacker.invalid/v1/token"}`

func TestEvaluatePodMetadata(t *testing.T) {
	injected := map[string]string{keys.AnnotationIdentity: "automation", keys.AnnotationGCPCredentialConfig: `{"type":"external_account"}`}
	with := func(m map[string]string, k, v string) map[string]string {
		out := map[string]string{}
		for key, val := range m {
			out[key] = val
		}
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}
	cases := []struct {
		name     string
		binding  bool
		old, new map[string]string
		want     []string
	}{
		{"a rewritten GCP credential configuration is denied, naming the key and not the value", false,
			injected, with(injected, keys.AnnotationGCPCredentialConfig, gcpConfigValue),
			[]string{"[ownership] annotation fluxidentity.dev/gcp-credential-config is set by the webhook at pod creation: recreate the pod"}},
		{"every changed owned key is a violation, in key order", false,
			injected, nil, []string{
				"[ownership] annotation fluxidentity.dev/gcp-credential-config is set by the webhook at pod creation: recreate the pod",
				"[ownership] annotation fluxidentity.dev/identity is set by the webhook at pod creation: recreate the pod"}},
		{"a binding carrying an owned key is told that bindings may not set it", true,
			nil, map[string]string{keys.AnnotationGCPCredentialConfig: gcpConfigValue},
			[]string{"[ownership] annotation fluxidentity.dev/gcp-credential-config is set by the webhook at pod creation, not by a binding"}},
		{"an unrelated change is no violation", false,
			injected, with(injected, "team", "b"), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := evaluatePodMetadata("apps", c.binding, &objectMeta{Annotations: c.old}, &objectMeta{Annotations: c.new})
			var messages []string
			for _, vi := range v.violations {
				messages = append(messages, vi.message)
				if vi.mode != policy.ModeEnforce || vi.ruleType != RuleOwnership {
					t.Errorf("violation mode %q rule type %q", vi.mode, vi.ruleType)
				}
			}
			if !slices.Equal(messages, c.want) {
				t.Fatalf("violations %q, want %q", messages, c.want)
			}
			if len(c.want) == 0 {
				return
			}
			if v.kind != "Pod" || v.namespace != "apps" {
				t.Errorf("verdict kind %q namespace %q", v.kind, v.namespace)
			}
			for _, m := range messages {
				if len(m) > MaxMessageLength {
					t.Errorf("message of %d bytes: %s", len(m), m)
				}
				if strings.Contains(m, "external_account") {
					t.Errorf("message shows an annotation value: %s", m)
				}
			}
		})
	}
}

// podMetadataRequest builds what the API server sends for a change of a pod's annotations.
func podMetadataRequest(t *testing.T, op admissionv1.Operation, kind, subResource string, old, new map[string]string) admissionv1.AdmissionRequest {
	t.Helper()
	raw := func(a map[string]string) []byte {
		b, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": kind,
			"metadata": map[string]any{"name": "p", "namespace": "apps", "annotations": a}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	req := admissionv1.AdmissionRequest{UID: "u-1", Operation: op, Namespace: "apps",
		Name: "p", Kind: metav1.GroupVersionKind{Version: "v1", Kind: kind}, SubResource: subResource}
	req.Object.Raw = raw(new)
	if op == admissionv1.Update {
		req.OldObject.Raw = raw(old)
	}
	return req
}

func TestPodMetadataValidatorAnswers(t *testing.T) {
	owned := map[string]string{keys.AnnotationIdentity: "automation", keys.AnnotationGCPCredentialConfig: `{"type":"external_account"}`}
	rewritten := map[string]string{keys.AnnotationIdentity: "automation", keys.AnnotationGCPCredentialConfig: gcpConfigValue}
	cases := []struct {
		name        string
		mode        policy.Mode
		op          admissionv1.Operation
		kind, sub   string
		old, new    map[string]string
		allowed     bool
		warnings    int
		code        int32
		decisionKey string
	}{
		{"a pod update rewriting an owned annotation is denied", policy.ModeEnforce, admissionv1.Update, "Pod", "",
			owned, rewritten, false, 0, http.StatusForbidden, DecisionDenied},
		{"a pods/status update rewriting an owned annotation is denied", policy.ModeEnforce, admissionv1.Update, "Pod",
			"status", owned, rewritten, false, 0, http.StatusForbidden, DecisionDenied},
		{"a binding setting an owned annotation is denied", policy.ModeEnforce, admissionv1.Create, "Binding", "binding",
			nil, rewritten, false, 0, http.StatusForbidden, DecisionDenied},
		{"a legacy bindings request setting an owned annotation is denied", policy.ModeEnforce, admissionv1.Create,
			"Binding", "", nil, rewritten, false, 0, http.StatusForbidden, DecisionDenied},
		{"an audit-only server (--mode=warn) admits the change with a warning", policy.ModeWarn, admissionv1.Update, "Pod",
			"", owned, rewritten, true, 1, http.StatusOK, DecisionWarned},
		{"an update keeping the owned annotations is admitted", policy.ModeEnforce, admissionv1.Update, "Pod", "",
			owned, owned, true, 0, http.StatusOK, DecisionAllowed},
		{"an ephemeralcontainers update is not evaluated (its strategy keeps the old metadata)", policy.ModeEnforce,
			admissionv1.Update, "Pod", "ephemeralcontainers", owned, rewritten, true, 0, http.StatusOK, DecisionAllowed},
		{"a pod creation is not evaluated here (the mutating path owns it)", policy.ModeEnforce, admissionv1.Create, "Pod",
			"", nil, rewritten, true, 0, http.StatusOK, DecisionAllowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			front := NewServer(Options{Policy: fixedPolicy{&policy.Policy{}}, Mode: c.mode})
			counter := admissionDecisions.WithLabelValues(PathValidatePod, c.decisionKey)
			before := testutil.ToFloat64(counter)
			_, resp := ask(t, front, PathValidatePod, podMetadataRequest(t, c.op, c.kind, c.sub, c.old, c.new))
			code := int32(http.StatusOK)
			if resp.Result != nil {
				code = resp.Result.Code
			}
			if resp.Allowed != c.allowed || len(resp.Warnings) != c.warnings || code != c.code {
				t.Fatalf("allowed %v warnings %q code %d (%v), want %v, %d warnings, code %d",
					resp.Allowed, resp.Warnings, code, resp.Result, c.allowed, c.warnings, c.code)
			}
			if resp.Patch != nil {
				t.Errorf("a validating answer carries a patch: %s", resp.Patch)
			}
			if got := testutil.ToFloat64(counter) - before; got != 1 {
				t.Errorf("%s decisions counted %v times, want once", c.decisionKey, got)
			}
			body, err := json.Marshal(resp)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(body), "attacker") {
				t.Errorf("the answer shows the annotation's value: %s", body)
			}
			if !c.allowed && !strings.Contains(resp.Result.Message, keys.AnnotationGCPCredentialConfig) {
				t.Errorf("the denial does not name the key: %s", resp.Result.Message)
			}
		})
	}
}

func TestPodMetadataValidatorRefusesRequestsWithoutObjects(t *testing.T) {
	front := NewServer(Options{Policy: fixedPolicy{&policy.Policy{}}, Mode: policy.ModeEnforce})
	req := podMetadataRequest(t, admissionv1.Update, "Pod", "", nil, map[string]string{keys.AnnotationIdentity: "x"})
	req.OldObject.Raw = nil
	if code, resp := ask(t, front, PathValidatePod, req); resp.Allowed || code != http.StatusOK || resp.Result.Code != http.StatusBadRequest {
		t.Errorf("an update without its old object: allowed %v status %d, want a 400 result", resp.Allowed, code)
	}
	req = podMetadataRequest(t, admissionv1.Update, "Pod", "", nil, nil)
	req.Object.Raw = []byte(`{"metadata":{"annotations":["not","a","map"]}}`)
	if code, resp := ask(t, front, PathValidatePod, req); resp.Allowed || code != http.StatusOK || resp.Result.Code != http.StatusBadRequest {
		t.Errorf("metadata of the wrong shape: allowed %v status %d, want a 400 result", resp.Allowed, code)
	}
}

// changedOwnedAnnotations on random maps: nothing changes against itself, the result does not depend on the direction
// of the change, and it holds exactly the owned keys that are missing on one side or differ.
func TestChangedOwnedAnnotationsProperties(t *testing.T) {
	names := []string{keys.AnnotationIdentity, keys.AnnotationGCPCredentialConfig, "fluxidentity.dev/other", "team",
		"x.fluxidentity.dev/identity", "fluxidentity.dev.example/a", keys.LabelAzureUse}
	values := []string{"", "a", "b"}
	r := rand.New(rand.NewPCG(11, 12))
	gen := func() map[string]string {
		if r.IntN(5) == 0 {
			return nil
		}
		m := map[string]string{}
		for _, k := range names {
			if r.IntN(2) == 0 {
				m[k] = values[r.IntN(len(values))]
			}
		}
		return m
	}
	for i := range 5000 {
		a, b := gen(), gen()
		if got := changedOwnedAnnotations(a, a); len(got) != 0 {
			t.Fatalf("case %d: %v changed against itself: %v", i, a, got)
		}
		ab, ba := changedOwnedAnnotations(a, b), changedOwnedAnnotations(b, a)
		if !slices.Equal(ab, ba) {
			t.Fatalf("case %d: %v -> %v gives %v, the reverse %v", i, a, b, ab, ba)
		}
		var want []string
		for _, k := range names {
			va, ina := a[k]
			vb, inb := b[k]
			if strings.HasPrefix(k, keys.OwnedPodAnnotationPrefix) && (ina != inb || va != vb) {
				want = append(want, k)
			}
		}
		slices.Sort(want)
		if !slices.Equal(ab, want) {
			t.Fatalf("case %d: %v -> %v gives %v, want %v", i, a, b, ab, want)
		}
	}
}

// A request can change any number of owned keys, or list any number of bad skip-containers entries: the answer names
// maxContainerWarnings of them and counts the rest, and every message stays valid UTF-8 of bounded length.
func TestAnswersNameAFewAndCountTheRest(t *testing.T) {
	annotations := map[string]string{}
	for i := range 20 {
		annotations[fmt.Sprintf("%sk%02d", keys.OwnedPodAnnotationPrefix, i)] = "x"
	}
	v := evaluatePodMetadata("team-a", false, &objectMeta{}, &objectMeta{Annotations: annotations})
	if len(v.violations) != maxContainerWarnings+1 ||
		!strings.Contains(v.violations[maxContainerWarnings].message, "15 more") {
		t.Errorf("changed owned keys: %d violations, last %q; want %d named and one counting 15 more",
			len(v.violations), v.violations[len(v.violations)-1].message, maxContainerWarnings)
	}

	bad := strings.Repeat("a b;", 20) + "é" + strings.Repeat("é", 200) + " x"
	for _, cloud := range []policy.Cloud{policy.CloudAWS, policy.CloudAzure} {
		key := keys.AnnotationAWSSkipContainers
		if cloud == policy.CloudAzure {
			key = keys.AnnotationAzureSkipContainers
		}
		value := strings.ReplaceAll(bad, ";", map[policy.Cloud]string{policy.CloudAWS: ",", policy.CloudAzure: ";"}[cloud])
		warnings := skipWarnings("flux", cloud, map[string]string{key: value})
		if len(warnings) != maxContainerWarnings+1 || !strings.Contains(warnings[maxContainerWarnings], "16 more") {
			t.Errorf("%s: %d warnings %q; want %d named and one counting 16 more", cloud, len(warnings), warnings,
				maxContainerWarnings)
		}
	}
}

func TestMessagesAreCutBetweenCharacters(t *testing.T) {
	for n := range 12 {
		if got := cutUTF8("aé€😀bc", n); !utf8.ValidString(got) || len(got) > n {
			t.Errorf("cutUTF8(%d) = %q", n, got)
		}
	}
	long := strings.Repeat("€", 100)
	for _, m := range []string{fitMessage("flux", long), short(long)} {
		if !utf8.ValidString(m) || len(m) > MaxMessageLength {
			t.Errorf("%q: %d bytes, valid UTF-8 %v", m, len(m), utf8.ValidString(m))
		}
	}
}
