package chart

import (
	"slices"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
)

const (
	pathPodMetadata    = "/validate-v1-pod"
	podMetadataWebhook = "pod-metadata.fluxidentity.dev"
)

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
	if *w.ClientConfig.Service.Path != pathPodMetadata || pathPodMetadata != routes.PathValidatePod {
		t.Errorf("path %s, want %s", *w.ClientConfig.Service.Path, routes.PathValidatePod)
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
