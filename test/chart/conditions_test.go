package chart

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/fluxidentity/flux-identity-webhook/cmd/flux-identity-webhook/app"
	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/policy/conditions"
	"github.com/fluxidentity/flux-identity-webhook/test/harness"
)

const annotationPolicyDigest = "fluxidentity.dev/policy-sha256"

// cliConditions runs `flux-identity-webhook policy match-conditions` on a policy file and decodes its output.
func cliConditions(t *testing.T, file string) map[string][]admissionv1.MatchCondition {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := app.Execute(t.Context(), []string{"policy", "match-conditions", "--policy", file}, &stdout, &stderr); code != 0 {
		t.Fatalf("policy match-conditions %s: exit %d: %s", file, code, stderr.String())
	}
	out := map[string][]admissionv1.MatchCondition{}
	if err := yaml.UnmarshalStrict(stdout.Bytes(), &out); err != nil {
		t.Fatalf("decode match-conditions output: %v\n%s", err, stdout.String())
	}
	return out
}

// chartConditions renders the chart with the policy file and returns every webhook's matchConditions by webhook
// name, with the conditions the chart does not derive from the policy (the pod metadata check's, the SOPS Secrets'
// key condition, the generated ServiceAccounts' generated-name) left out.
func chartConditions(t *testing.T, file, extraValues string) (map[string][]admissionv1.MatchCondition, objects) {
	t.Helper()
	content, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	values, err := yaml.Marshal(map[string]string{"policy": string(content)})
	if err != nil {
		t.Fatal(err)
	}
	o := mustRender(t, releaseNS, string(values)+extraValues)
	out := map[string][]admissionv1.MatchCondition{}
	add := func(name string, mcs []admissionv1.MatchCondition) {
		mcs = slices.DeleteFunc(slices.Clone(mcs), func(c admissionv1.MatchCondition) bool {
			return c.Name != conditions.NamePolicyNamespaces && c.Name != conditions.NameFullInjection &&
				c.Name != conditions.NameNotFullInjection
		})
		if len(mcs) > 0 {
			out[name] = mcs
		}
	}
	for _, obj := range o.all {
		switch c := obj.(type) {
		case *admissionv1.MutatingWebhookConfiguration:
			for _, w := range c.Webhooks {
				add(w.Name, w.MatchConditions)
			}
		case *admissionv1.ValidatingWebhookConfiguration:
			for _, w := range c.Webhooks {
				add(w.Name, w.MatchConditions)
			}
		}
	}
	return out, o
}

// samplePolicies are the policies the project ships and tests with, plus shapes that exercise every rule of the
// derivation: precedence carve-outs, ServiceAccount globs with a '.', names YAML reads as numbers, and patterns past
// the limits.
func samplePolicies(t *testing.T) []string {
	t.Helper()
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "config", "samples", "policy*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample policies: %v", err)
	}
	files = append(files, filepath.Join(root, "webhook", "testdata", "policy.yaml"))
	dir := t.TempDir()
	write := func(name, doc string) {
		if _, err := policy.Parse(name, []byte(doc), time.Now()); err != nil {
			t.Fatalf("synthetic policy %s is invalid: %v", name, err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	write("precedence.yaml", policyHeader+
		identity("tenants", `"team-*"`, `"flux-*", "flux.ctl-?"`, "full")+
		identity("special", "team-a", "flux-special", "annotate")+
		identity("team-b", "team-b", `"*"`, "annotate")+
		identity("numbers", `"1234"`, `"0x10"`, "full")+
		identity("sources", `"src-*"`, "source-controller", "full")+
		"mandates:\n  - name: m\n    namespaces: [\"team-*\", apps, \"1234\"]\n")
	write("no-full.yaml", policyHeader+identity("a", "flux-system", "source-controller", "annotate"))
	// One mandate per kind, each in a namespace of its own: the chart's lists of kinds per registration must be the
	// credential model's.
	var kinds strings.Builder
	kinds.WriteString(policyHeader + identity("a", "flux-system", "source-controller", "annotate") + "mandates:\n")
	for i, kind := range fluxauth.Kinds {
		fmt.Fprintf(&kinds, "  - name: m%d\n    namespaces: [ns-%d]\n    kinds: [%s]\n", i, i, kind)
	}
	kinds.WriteString("  - name: all\n    namespaces: [every-kind]\n")
	write("kind-per-mandate.yaml", kinds.String())
	var many strings.Builder
	many.WriteString(policyHeader)
	for i := range conditions.MaxGlobs + 1 {
		many.WriteString(identity(fmt.Sprintf("e%d", i), fmt.Sprintf(`"ns%d-*"`, i), "flux", "full"))
	}
	write("too-many-globs.yaml", many.String())
	var pairs strings.Builder
	pairs.WriteString(policyHeader)
	for i := range conditions.MaxGlobs/2 + 1 {
		pairs.WriteString(identity(fmt.Sprintf("e%d", i), fmt.Sprintf(`"ns%d-*"`, i), `flux, "flux-*"`, "full"))
	}
	write("too-many-pairs.yaml", pairs.String())
	// Random valid policies over a small alphabet, so patterns collide and every rank is used.
	rng := rand.New(rand.NewPCG(14, 1))
	nsPatterns := []string{"flux-system", "team-a", "team-*", "t*", "team-?", "*", "apps"}
	saPatterns := []string{"source-controller", "flux-source", "default", "flux-*", "*", "s?", "flux.x-*"}
	pick := func(from []string) string {
		a, b := from[rng.IntN(len(from))], from[rng.IntN(len(from))]
		if a == b {
			return fmt.Sprintf("%q", a)
		}
		return fmt.Sprintf("%q, %q", a, b)
	}
	for n, attempt := 0, 0; n < 12 && attempt < 5000; attempt++ {
		var b strings.Builder
		b.WriteString(policyHeader)
		for i := range 1 + rng.IntN(4) {
			b.WriteString(identity(fmt.Sprintf("e%d", i), pick(nsPatterns), pick(saPatterns), []string{"annotate", "full"}[rng.IntN(2)]))
		}
		if _, err := policy.Parse("random", []byte(b.String()), time.Now()); err == nil {
			write(fmt.Sprintf("random-%d.yaml", n), b.String())
			n++
		}
	}
	return files
}

const policyHeader = "apiVersion: fluxidentity.dev/v1alpha1\nkind: IdentityPolicy\nmetadata:\n  name: t\nidentities:\n"

func identity(name, ns, sa, injection string) string {
	return fmt.Sprintf("  - name: %s\n    namespaces: [%s]\n    serviceAccounts: [%s]\n    aws:\n"+
		"      roleARN: arn:aws:iam::111122223333:role/%s\n    injection: %s\n", name, ns, sa, name, injection)
}

// The chart renders, from the policy it is given, exactly the matchConditions `policy match-conditions` prints for
// that policy: the same webhooks, the same condition names, the same CEL, character for character.
func TestChartConditionsEqualPolicyMatchConditions(t *testing.T) {
	for _, file := range samplePolicies(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			want := cliConditions(t, file)
			// The Deployment webhook is optional; enabled here so its condition is compared too.
			got, _ := chartConditions(t, file, "webhooks:\n  deployments:\n    enabled: true\n")
			for _, name := range conditionWebhooks(want, got) {
				if !slices.Equal(got[name], want[name]) {
					t.Errorf("%s:\nchart: %v\nCLI:   %v", name, got[name], want[name])
				}
			}
		})
	}
}

func conditionWebhooks(maps ...map[string][]admissionv1.MatchCondition) []string {
	var keys []string
	for _, m := range maps {
		for k := range m {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// The fail-closed pod webhook exists only for a policy with full injection, with exactly the settings of a pod path
// that may block: Fail, its condition, the same handler.
func TestFullInjectionPodWebhook(t *testing.T) {
	root := repoRoot(t)
	_, o := chartConditions(t, filepath.Join(root, "webhook", "testdata", "policy.yaml"), "")
	m := o.get("MutatingWebhookConfiguration", releaseName).(*admissionv1.MutatingWebhookConfiguration)
	i := slices.IndexFunc(m.Webhooks, func(w admissionv1.MutatingWebhook) bool { return w.Name == routes.WebhookPodsFullInjection })
	if i < 0 {
		t.Fatalf("a policy with full injection renders no %s", routes.WebhookPodsFullInjection)
	}
	w := m.Webhooks[i]
	if *w.FailurePolicy != admissionv1.Fail || *w.ClientConfig.Service.Path != pathPod ||
		len(w.MatchConditions) != 1 || w.MatchConditions[0].Name != conditions.NameFullInjection {
		t.Errorf("%s: failurePolicy %s, path %s, conditions %v", w.Name, *w.FailurePolicy, *w.ClientConfig.Service.Path, w.MatchConditions)
	}
	for _, values := range []string{"", "webhooks:\n  scopeToPolicy: false\n"} {
		_, o := chartConditions(t, filepath.Join(root, "config", "samples", "policy-minimal.yaml"), values)
		m := o.get("MutatingWebhookConfiguration", releaseName).(*admissionv1.MutatingWebhookConfiguration)
		for _, w := range m.Webhooks {
			if w.Name == routes.WebhookPodsFullInjection {
				t.Errorf("values %q: %s is rendered for a policy without full injection", values, w.Name)
			}
		}
	}
}

// With scopeToPolicy off, or on a Kubernetes that may drop matchConditions, no webhook is scoped (and no fail-closed
// pod webhook exists): every request the selectors admit reaches the webhook, as before the option existed.
func TestUnscopedWebhooks(t *testing.T) {
	file := filepath.Join(repoRoot(t), "webhook", "testdata", "policy.yaml")
	got, _ := chartConditions(t, file, "webhooks:\n  scopeToPolicy: false\n")
	if len(got) != 0 {
		t.Errorf("scopeToPolicy: false still renders conditions: %v", got)
	}
	content, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	values, err := yaml.Marshal(map[string]string{"policy": string(content)})
	if err != nil {
		t.Fatal(err)
	}
	f := valuesFile(t, string(values))
	t.Cleanup(func() { _ = os.Remove(f) })
	out, errOut, err := runHelm(t, "template", releaseName, chartDir(t), "--namespace", releaseNS, "--values", f, "--kube-version", "1.29.0")
	if err != nil {
		t.Fatalf("helm template: %v: %s", err, errOut)
	}
	o, err := decode(out)
	if err != nil {
		t.Fatal(err)
	}
	forEachWebhook(o, func(_, name string, _ admissionv1.WebhookClientConfig, _ *metav1.ObjectMeta) {
		if name == routes.WebhookPodsFullInjection {
			t.Errorf("Kubernetes 1.29 gets %s, which would see every pod if matchConditions were dropped", name)
		}
	})
	if strings.Contains(out, conditions.NamePolicyNamespaces) {
		t.Error("Kubernetes 1.29 gets policy-derived matchConditions")
	}
}

// Every webhook configuration names the policy its conditions came from: the sha256 of the policy file the pods read
// from the ConfigMap, whose first 12 characters the server exports as fluxidentity_policy_info{digest}.
func TestWebhookConfigurationsCarryThePolicyDigest(t *testing.T) {
	for _, file := range samplePolicies(t)[:3] {
		_, o := chartConditions(t, file, "")
		cm, ok := o.get("ConfigMap", releaseName+"-policy").(*corev1.ConfigMap)
		if !ok {
			t.Fatal("no policy ConfigMap")
		}
		sum := sha256.Sum256([]byte(cm.Data["policy.yaml"]))
		want := hex.EncodeToString(sum[:])
		p, err := policy.Parse("cm", []byte(cm.Data["policy.yaml"]), time.Now())
		if err != nil {
			t.Fatalf("the ConfigMap's policy does not load: %v", err)
		}
		if p.Digest != want {
			t.Fatalf("the server's digest %s is not the sha256 of the file %s", p.Digest, want)
		}
		for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
			if got := o.get(kind, releaseName).GetAnnotations()[annotationPolicyDigest]; got != want {
				t.Errorf("%s: %s = %q, want %q (the ConfigMap's policy)", filepath.Base(file), kind, got, want)
			}
		}
	}
}

// The SOPS Secret registration carries, in config/webhook and in the chart whatever the values, the static condition
// that sends it only Secrets with a SOPS credential entry (conditions.SOPSKeys), first, before any policy-derived one.
func TestSOPSSecretsAreScopedToSOPSKeysEverywhere(t *testing.T) {
	want := conditions.SOPSKeys()
	check := func(where string, mcs []admissionv1.MatchCondition) {
		t.Helper()
		if len(mcs) == 0 || mcs[0].Name != want.Name || mcs[0].Expression != want.Expression {
			t.Errorf("%s: %s's first condition is %+v, want %+v", where, routes.WebhookSOPSSecrets, mcs, want)
		}
	}
	_, validating, err := harness.ReadWebhookConfigurations(filepath.Join(repoRoot(t), "config", "webhook", "manifests.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range validating {
		for _, w := range c.Webhooks {
			if w.Name == routes.WebhookSOPSSecrets {
				check("config/webhook", w.MatchConditions)
			}
		}
	}
	for _, values := range []string{"", "webhooks:\n  scopeToPolicy: false\n"} {
		forEachValidating(mustRender(t, releaseNS, values), func(w admissionv1.ValidatingWebhook) {
			if w.Name == routes.WebhookSOPSSecrets {
				check("the chart with values "+strconv.Quote(values), w.MatchConditions)
			}
		})
	}
}

func forEachValidating(o objects, f func(admissionv1.ValidatingWebhook)) {
	for _, obj := range o.all {
		if c, ok := obj.(*admissionv1.ValidatingWebhookConfiguration); ok {
			for _, w := range c.Webhooks {
				f(w)
			}
		}
	}
}
