package chart

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	imagev1beta1 "github.com/fluxcd/image-reflector-controller/api/v1beta1"
	imagev1beta2 "github.com/fluxcd/image-reflector-controller/api/v1beta2"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	sourcev1beta1 "github.com/fluxcd/source-controller/api/v1beta1"
	sourcev1beta2 "github.com/fluxcd/source-controller/api/v1beta2"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/test/harness"
	"github.com/fluxidentity/flux-identity-webhook/webhook"
	"github.com/fluxidentity/flux-identity-webhook/webhook/fluxauth"
)

const (
	pathPodMetadata    = "/validate-v1-pod"
	podMetadataWebhook = "pod-metadata.fluxidentity.dev"
)

// fluxSourceResources are the resources of the Flux kinds the validating webhook decodes (fluxauth.Kinds).
var fluxSourceResources = map[string]string{
	sourcev1.GitRepositoryKind:  "gitrepositories",
	sourcev1.OCIRepositoryKind:  "ocirepositories",
	sourcev1.HelmRepositoryKind: "helmrepositories",
	sourcev1.BucketKind:         "buckets",
	imagev1.ImageRepositoryKind: "imagerepositories",
}

// A cluster whose CRD serves only an old version sends requests for it only if a rule names that version (matchPolicy
// Equivalent converts only between versions the cluster serves). Every version of each kind that Flux's API modules
// still carry (the versions in go.mod) must be named, for CREATE and UPDATE, and nothing else.
func TestFluxSourceRulesNameEveryVersionOfFluxAPIModules(t *testing.T) {
	for _, k := range fluxauth.Kinds {
		if _, ok := fluxSourceResources[k]; !ok {
			t.Fatalf("the webhook validates %s, which this test does not know", k)
		}
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{sourcev1.AddToScheme, sourcev1beta2.AddToScheme,
		sourcev1beta1.AddToScheme, imagev1.AddToScheme, imagev1beta2.AddToScheme, imagev1beta1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for gvk := range scheme.AllKnownTypes() {
		if resource, ok := fluxSourceResources[gvk.Kind]; ok {
			want = append(want, gvk.Group+"/"+gvk.Version+"/"+resource)
		}
	}
	slices.Sort(want)
	if len(want) < 14 { // 3 versions of four kinds, OCIRepository from v1beta2 on
		t.Fatalf("the API modules define only %v", want)
	}

	_, validating, err := harness.ReadWebhookConfigurations(filepath.Join(repoRoot(t), "config", "webhook", "manifests.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, cfg := range validating {
		for _, w := range cfg.Webhooks {
			if w.Name != "flux-sources.fluxidentity.dev" {
				continue
			}
			for _, r := range w.Rules {
				if !slices.Equal(r.Operations, []admissionv1.OperationType{admissionv1.Create, admissionv1.Update}) {
					t.Errorf("rule %v: operations %v, want CREATE and UPDATE", r.Resources, r.Operations)
				}
				for _, g := range r.APIGroups {
					for _, v := range r.APIVersions {
						for _, res := range r.Resources {
							got = append(got, g+"/"+v+"/"+res)
						}
					}
				}
			}
			if w.MatchPolicy == nil || *w.MatchPolicy != admissionv1.Equivalent {
				t.Error("matchPolicy is not Equivalent: a version served later would not be sent")
			}
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("the rules name\n  %s\nFlux's API modules define\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// The pod metadata check fails closed, so what reaches it must be narrow: UPDATEs of pods and their status and
// bindings (never pod CREATE, which stays on the fail-open mutating path), filtered by a matchCondition.
func checkPodMetadataWebhook(t *testing.T, o objects) {
	t.Helper()
	v, ok := o.get("ValidatingWebhookConfiguration", releaseName).(*admissionv1.ValidatingWebhookConfiguration)
	if !ok {
		t.Fatal("no ValidatingWebhookConfiguration")
	}
	i := slices.IndexFunc(v.Webhooks, func(w admissionv1.ValidatingWebhook) bool { return w.Name == podMetadataWebhook })
	if i < 0 {
		t.Fatalf("no webhook %s", podMetadataWebhook)
	}
	w := v.Webhooks[i]
	if *w.ClientConfig.Service.Path != pathPodMetadata || pathPodMetadata != webhook.PathValidatePod {
		t.Errorf("path %s, want %s", *w.ClientConfig.Service.Path, webhook.PathValidatePod)
	}
	if w.FailurePolicy == nil || *w.FailurePolicy != admissionv1.Fail {
		t.Error("failurePolicy is not Fail: stopping the webhook would let an owned annotation change through")
	}
	core := func(ops []admissionv1.OperationType, resources ...string) admissionv1.RuleWithOperations {
		return admissionv1.RuleWithOperations{Operations: ops, Rule: admissionv1.Rule{APIGroups: []string{""},
			APIVersions: []string{"v1"}, Resources: resources, Scope: ptr(admissionv1.NamespacedScope)}}
	}
	want := []admissionv1.RuleWithOperations{
		core([]admissionv1.OperationType{admissionv1.Update}, "pods", "pods/status"),
		core([]admissionv1.OperationType{admissionv1.Create}, "pods/binding", "bindings"),
	}
	if !rulesEqual(w.Rules, want) {
		t.Errorf("rules %+v, want %+v", w.Rules, want)
	}
	if len(w.MatchConditions) != 1 || !strings.Contains(w.MatchConditions[0].Expression, keys.OwnedPodAnnotationPrefix) {
		t.Errorf("matchConditions %+v: want one on the %s annotations, or every pod update waits on a fail-closed call",
			w.MatchConditions, keys.OwnedPodAnnotationPrefix)
	}
}

func TestPodMetadataWebhookIsInstalledWhereMatchConditionsAreGA(t *testing.T) {
	for _, c := range []struct {
		kubeVersion string
		installed   bool
	}{{"1.29.9", false}, {"1.30.0", true}, {"1.37.2", true}} {
		t.Run(c.kubeVersion, func(t *testing.T) {
			out, errOut, err := runHelm(t, "template", releaseName, chartDir(t), "--namespace", releaseNS,
				"--kube-version", c.kubeVersion)
			if err != nil {
				t.Fatalf("helm template: %v: %s", err, errOut)
			}
			o, err := decode(out)
			if err != nil {
				t.Fatal(err)
			}
			if c.installed {
				checkPodMetadataWebhook(t, o)
				return
			}
			if slices.Contains(webhookPaths(o), pathPodMetadata) {
				t.Errorf("Kubernetes %s may drop matchConditions, yet %s is installed", c.kubeVersion, pathPodMetadata)
			}
			if !slices.Contains(webhookPaths(o), pathSources) {
				t.Errorf("the Flux sources webhook is missing on %s", c.kubeVersion)
			}
		})
	}
}
