package pods

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"sigs.k8s.io/yaml"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/patch"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// podMetadataCase is one entry of testdata/podmetadata/cases.yaml, which the integration suite replays through a real
// API server.
type podMetadataCase struct {
	Name    string         `json:"name"`
	Binding bool           `json:"binding"`
	Old     patch.Metadata `json:"old"`
	New     patch.Metadata `json:"new"`
	Owned   []string       `json:"owned"`
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

// AttackerGCPConfig rewrites the credential configuration to a token exchange of an attacker.
const AttackerGCPConfig = `{"type":"external_account","token_url":"https://sts.attacker.invalid/v1/token"}`

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
			injected, with(injected, keys.AnnotationGCPCredentialConfig, AttackerGCPConfig),
			[]string{"[ownership] annotation fluxidentity.dev/gcp-credential-config is set by the webhook at pod creation: recreate the pod"}},
		{"every changed owned key is a violation, in key order", false,
			injected, nil, []string{
				"[ownership] annotation fluxidentity.dev/gcp-credential-config is set by the webhook at pod creation: recreate the pod",
				"[ownership] annotation fluxidentity.dev/identity is set by the webhook at pod creation: recreate the pod"}},
		{"a binding carrying an owned key is told that bindings may not set it", true,
			nil, map[string]string{keys.AnnotationGCPCredentialConfig: AttackerGCPConfig},
			[]string{"[ownership] annotation fluxidentity.dev/gcp-credential-config is set by the webhook at pod creation, not by a binding"}},
		{"an unrelated change is no violation", false,
			injected, with(injected, "team", "b"), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := evaluatePodMetadata("apps", c.binding, &patch.Metadata{Annotations: c.old}, &patch.Metadata{Annotations: c.new})
			var messages []string
			for _, vi := range v.Violations {
				messages = append(messages, vi.Message)
				if vi.Mode != policy.ModeEnforce || vi.RuleType != verdict.RuleOwnership {
					t.Errorf("violation mode %q rule type %q", vi.Mode, vi.RuleType)
				}
			}
			if !slices.Equal(messages, c.want) {
				t.Fatalf("violations %q, want %q", messages, c.want)
			}
			if len(c.want) == 0 {
				return
			}
			if v.Kind != "Pod" || v.Namespace != "apps" {
				t.Errorf("verdict kind %q namespace %q", v.Kind, v.Namespace)
			}
			for _, m := range messages {
				if len(m) > verdict.MaxMessageLength {
					t.Errorf("message of %d bytes: %s", len(m), m)
				}
				if strings.Contains(m, "external_account") {
					t.Errorf("message shows an annotation value: %s", m)
				}
			}
		})
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
	v := evaluatePodMetadata("team-a", false, &patch.Metadata{}, &patch.Metadata{Annotations: annotations})
	if len(v.Violations) != maxContainerWarnings+1 ||
		!strings.Contains(v.Violations[maxContainerWarnings].Message, "15 more") {
		t.Errorf("changed owned keys: %d violations, last %q; want %d named and one counting 15 more",
			len(v.Violations), v.Violations[len(v.Violations)-1].Message, maxContainerWarnings)
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
		if got := verdict.CutUTF8("aé€😀bc", n); !utf8.ValidString(got) || len(got) > n {
			t.Errorf("verdict.CutUTF8(%d) = %q", n, got)
		}
	}
	long := strings.Repeat("€", 100)
	for _, m := range []string{verdict.FitMessage("flux", long), verdict.Short(long)} {
		if !utf8.ValidString(m) || len(m) > verdict.MaxMessageLength {
			t.Errorf("%q: %d bytes, valid UTF-8 %v", m, len(m), utf8.ValidString(m))
		}
	}
}
