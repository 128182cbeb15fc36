package chart

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/policy/conditions"
	"github.com/fluxidentity/flux-identity-webhook/test/harness"
)

// config/webhook/ is what the integration suites register; the chart must register the same webhooks (names, rules,
// paths, failure policies, timeouts, selectors) when installed as flux-identity-webhook in flux-identity-system.
func TestChartRegistersTheWebhooksOfConfig(t *testing.T) {
	cases := []struct {
		name, values string
		files        []string
	}{
		{"the default values register config/webhook/manifests.yaml", "", []string{"manifests.yaml"}},
		{"enabling the deployment webhook adds config/webhook/deployments.yaml",
			"webhooks:\n  deployments:\n    enabled: true\n", []string{"manifests.yaml", "deployments.yaml"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var (
				wantM []*admissionv1.MutatingWebhookConfiguration
				wantV []*admissionv1.ValidatingWebhookConfiguration
			)
			for _, f := range c.files {
				m, v, err := harness.ReadWebhookConfigurations(filepath.Join(repoRoot(t), "config", "webhook", f))
				if err != nil {
					t.Fatal(err)
				}
				wantM, wantV = append(wantM, m...), append(wantV, v...)
			}
			compareWebhookConfigurations(t, mustRender(t, releaseNS, c.values), wantM, wantV)
		})
	}
}

func compareWebhookConfigurations(t *testing.T, o objects, wantM []*admissionv1.MutatingWebhookConfiguration,
	wantV []*admissionv1.ValidatingWebhookConfiguration,
) {
	t.Helper()
	for _, m := range wantM {
		got, ok := o.get("MutatingWebhookConfiguration", m.Name).(*admissionv1.MutatingWebhookConfiguration)
		if !ok {
			t.Errorf("the chart renders no MutatingWebhookConfiguration %s", m.Name)
			continue
		}
		if g, w := normalizeMutating(withoutPolicyDerived(got).Webhooks), normalizeMutating(m.Webhooks); !equality.Semantic.DeepEqual(g, w) {
			t.Errorf("MutatingWebhookConfiguration %s differs from config/:\nchart:\n%s\nconfig:\n%s", m.Name, toYAML(t, g), toYAML(t, w))
		}
	}
	for _, v := range wantV {
		got, ok := o.get("ValidatingWebhookConfiguration", v.Name).(*admissionv1.ValidatingWebhookConfiguration)
		if !ok {
			t.Errorf("the chart renders no ValidatingWebhookConfiguration %s", v.Name)
			continue
		}
		if g, w := normalizeValidating(withoutPolicyDerived(got).Webhooks), normalizeValidating(v.Webhooks); !equality.Semantic.DeepEqual(g, w) {
			t.Errorf("ValidatingWebhookConfiguration %s differs from config/:\nchart:\n%s\nconfig:\n%s", v.Name, toYAML(t, g), toYAML(t, w))
		}
	}
	if n, w := o.count("MutatingWebhookConfiguration")+o.count("ValidatingWebhookConfiguration"), len(wantM)+len(wantV); n != w {
		t.Errorf("the chart renders %d webhook configurations, config/ has %d", n, w)
	}
}

// config/default (kustomize) installs exactly what the chart installs with its default values: the same objects,
// with the same contents, apart from Helm's bookkeeping labels.
func TestKustomizeDefaultEqualsChartDefaults(t *testing.T) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(repoRoot(t), "config", "default"))
	if err != nil {
		t.Fatalf("kustomize build config/default: %v", err)
	}
	manifest, err := resMap.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	fromConfig, err := decode(string(manifest))
	if err != nil {
		t.Fatalf("decode config/default: %v", err)
	}
	fromChart := mustRender(t, releaseNS, "")

	index := func(o objects) map[string]client.Object {
		m := map[string]client.Object{}
		for _, obj := range o.all {
			stripHelmBookkeeping(obj)
			obj = withoutPolicyDerived(obj)
			m[obj.GetObjectKind().GroupVersionKind().Kind+" "+obj.GetNamespace()+"/"+obj.GetName()] = obj
		}
		return m
	}
	chart, config := index(fromChart), index(fromConfig)
	for _, key := range sortedObjKeys(chart) {
		c, ok := config[key]
		if !ok {
			t.Errorf("config/default lacks %s", key)
			continue
		}
		if !equality.Semantic.DeepEqual(chart[key], c) {
			t.Errorf("%s differs:\nchart:\n%s\nconfig/default:\n%s", key, toYAML(t, chart[key]), toYAML(t, c))
		}
	}
	for _, key := range sortedObjKeys(config) {
		if _, ok := chart[key]; !ok {
			t.Errorf("config/default has %s, which the chart does not install", key)
		}
	}
}

// withoutPolicyDerived returns a webhook configuration without what only the chart can derive from its policy value
// (config/ gets it from `policy match-conditions`): the policy's matchConditions, the fail-closed pod webhook of
// full-injection ServiceAccounts and the policy digest annotation. Other objects are returned as they are.
func withoutPolicyDerived[T client.Object](obj T) T {
	derived := func(mcs []admissionv1.MatchCondition) []admissionv1.MatchCondition {
		return slices.DeleteFunc(slices.Clone(mcs), func(c admissionv1.MatchCondition) bool {
			return c.Name == conditions.NamePolicyNamespaces || c.Name == conditions.NameFullInjection ||
				c.Name == conditions.NameNotFullInjection
		})
	}
	switch c := any(obj).(type) {
	case *admissionv1.MutatingWebhookConfiguration:
		c = c.DeepCopy()
		c.Webhooks = slices.DeleteFunc(c.Webhooks, func(w admissionv1.MutatingWebhook) bool {
			return w.Name == routes.WebhookPodsFullInjection
		})
		for i := range c.Webhooks {
			c.Webhooks[i].MatchConditions = derived(c.Webhooks[i].MatchConditions)
		}
		delete(c.Annotations, annotationPolicyDigest)
		return any(c).(T)
	case *admissionv1.ValidatingWebhookConfiguration:
		c = c.DeepCopy()
		for i := range c.Webhooks {
			c.Webhooks[i].MatchConditions = derived(c.Webhooks[i].MatchConditions)
		}
		delete(c.Annotations, annotationPolicyDigest)
		return any(c).(T)
	}
	return obj
}

// stripHelmBookkeeping removes the labels only Helm sets.
func stripHelmBookkeeping(obj client.Object) {
	l := obj.GetLabels()
	for _, k := range []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/version"} {
		delete(l, k)
	}
	obj.SetLabels(l)
}

// normalize* blank what legitimately differs: the caBundle (injected at install) and the Service port (443 is the
// API server's default when unset).
func normalizeMutating(in []admissionv1.MutatingWebhook) []admissionv1.MutatingWebhook {
	out := make([]admissionv1.MutatingWebhook, len(in))
	for i, w := range in {
		w = *w.DeepCopy()
		normalizeClientConfig(&w.ClientConfig)
		out[i] = w
	}
	return out
}

func normalizeValidating(in []admissionv1.ValidatingWebhook) []admissionv1.ValidatingWebhook {
	out := make([]admissionv1.ValidatingWebhook, len(in))
	for i, w := range in {
		w = *w.DeepCopy()
		normalizeClientConfig(&w.ClientConfig)
		out[i] = w
	}
	return out
}

func normalizeClientConfig(cc *admissionv1.WebhookClientConfig) {
	cc.CABundle = nil
	if cc.Service != nil && cc.Service.Port == nil {
		cc.Service.Port = ptr(int32(443))
	}
}

func toYAML(t *testing.T, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sortedObjKeys(m map[string]client.Object) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// config/samples is config/default with the sample policy in the ConfigMap the pods mount, under the same name.
func TestKustomizeSamplesServeTheSamplePolicy(t *testing.T) {
	root := repoRoot(t)
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(root, "config", "samples"))
	if err != nil {
		t.Fatalf("kustomize build config/samples: %v", err)
	}
	manifest, err := resMap.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	o, err := decode(string(manifest))
	if err != nil {
		t.Fatalf("decode config/samples: %v", err)
	}
	want, err := os.ReadFile(filepath.Join(root, "config", "samples", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cm, ok := o.get("ConfigMap", releaseName+"-policy").(*corev1.ConfigMap)
	if !ok {
		t.Fatalf("config/samples has no ConfigMap %s-policy (the name the Deployment mounts)", releaseName)
	}
	if cm.Data["policy.yaml"] != string(want) {
		t.Errorf("the ConfigMap's policy.yaml is not config/samples/policy.yaml:\n%s", cm.Data["policy.yaml"])
	}
	if n := o.count("ConfigMap"); n != 1 {
		t.Errorf("%d ConfigMaps: the sample policy must replace the default one, not sit beside it", n)
	}
	if o.get("Deployment", releaseName) == nil {
		t.Error("config/samples does not install the server")
	}
}
