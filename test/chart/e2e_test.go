package chart

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/fluxidentity/flux-identity-webhook/test/harness"
)

// The end-to-end suite installs the chart's own webhook configurations (the optional Deployment one included) on a
// real API server, in a release namespace other than the default one and with one extra excluded namespace, so both
// the fixed and the configurable exclusions are exercised as rendered.
const (
	e2eNamespace = "platform-identity"
	e2eExcluded  = "legacy-tenant"
)

var env *harness.Env

func TestChartOnAPIServer(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Chart webhook configurations on a real kube-apiserver")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	log := zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true))
	ctrl.SetLogger(log)

	// The policy goes to the chart too: the webhooks' matchConditions are derived from it.
	manifest, err := render(GinkgoT(), e2eNamespace,
		"webhooks:\n  deployments:\n    enabled: true\nnamespaceSelector:\n  excludedNamespaces: [kube-node-lease, "+e2eExcluded+"]\n"+
			"policy: |\n"+indent(e2ePolicy, "  "))
	Expect(err).NotTo(HaveOccurred())
	objs, err := decode(manifest)
	Expect(err).NotTo(HaveOccurred())
	// Only the webhook configurations go to the API server; the harness points their clientConfig at the in-process
	// server and installs its own CA.
	var docs []string
	for _, doc := range strings.Split(manifest, "\n---") {
		if strings.Contains(doc, "kind: MutatingWebhookConfiguration") || strings.Contains(doc, "kind: ValidatingWebhookConfiguration") {
			docs = append(docs, doc)
		}
	}
	Expect(docs).To(HaveLen(objs.count("MutatingWebhookConfiguration") + objs.count("ValidatingWebhookConfiguration")))
	Expect(docs).To(HaveLen(3))
	dir := GinkgoT().TempDir()
	webhooks := filepath.Join(dir, "webhooks.yaml")
	Expect(os.WriteFile(webhooks, []byte(strings.Join(docs, "\n---")), 0o600)).To(Succeed())
	policyFile := filepath.Join(dir, "policy.yaml")
	Expect(os.WriteFile(policyFile, []byte(e2ePolicy), 0o600)).To(Succeed())

	env, err = harness.Start(ctx, harness.Options{PolicyFile: policyFile, WebhookManifests: webhooks, Log: log})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(env.Stop()).To(Succeed()) })
	for _, ns := range []string{e2eNamespace, e2eExcluded, "flux-system"} {
		Expect(client.IgnoreAlreadyExists(env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))).To(Succeed())
	}
}, NodeTimeout(3*time.Minute))

const e2ePolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: chart-e2e
identities:
  - name: everyone
    namespaces: ["*"]
    serviceAccounts: ["*"]
    aws:
      roleARN: arn:aws:iam::111122223333:role/{namespace}.{serviceAccount}
mandates:
  - name: everywhere
    namespaces: ["*"]
`

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n"+prefix) + "\n"
}

func decisions(ctx context.Context, path string) float64 {
	GinkgoHelper()
	v, err := env.Counter(ctx, "fluxidentity_admission_decisions_total", map[string]string{"webhook": path})
	Expect(err).NotTo(HaveOccurred())
	return v
}

// createAll creates a ServiceAccount, a pod, a Deployment and a GitRepository in ns and returns how many times each
// handler was called meanwhile.
func createAll(ctx context.Context, ns, name string) map[string]float64 {
	GinkgoHelper()
	paths := []string{pathSA, pathPod, pathDeployment, pathSources}
	before := map[string]float64{}
	for _, p := range paths {
		before[p] = decisions(ctx, p)
	}
	Expect(env.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}})).To(Succeed())
	Expect(env.Client.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "ghcr.io/fluxcd/source-controller"}}},
	})).To(Succeed())
	labels := map[string]string{"app": name}
	Expect(env.Client.Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "ghcr.io/fluxcd/source-controller"}}},
			},
		},
	})).To(Succeed())
	Expect(env.Client.Create(ctx, &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: sourcev1.GitRepositorySpec{
			URL:      "https://github.com/stefanprodan/podinfo",
			Interval: metav1.Duration{Duration: time.Minute},
		},
	})).To(Succeed())
	calls := map[string]float64{}
	for _, p := range paths {
		calls[p] = decisions(ctx, p) - before[p]
	}
	return calls
}

var _ = Describe("The chart's webhook configurations on a real API server", func() {
	none := map[string]float64{pathSA: 0, pathPod: 0, pathDeployment: 0, pathSources: 0}
	once := map[string]float64{pathSA: 1, pathPod: 1, pathDeployment: 1, pathSources: 1}

	DescribeTable("never intercept the namespaces the chart excludes",
		func(ctx SpecContext, ns string) {
			Expect(createAll(ctx, ns, "not-intercepted")).To(Equal(none))
		},
		Entry("kube-system", "kube-system"),
		Entry("the webhook's own (release) namespace", e2eNamespace),
		Entry("kube-node-lease", "kube-node-lease"),
		Entry("a namespace added through namespaceSelector.excludedNamespaces", e2eExcluded),
	)

	It("intercepts ServiceAccounts, pods, Deployments and Flux sources everywhere else, once each", func(ctx SpecContext) {
		Expect(createAll(ctx, "flux-system", "source-controller")).To(Equal(once))
	})

	It("intercepts a namespace whose name only resembles an excluded one", func(ctx SpecContext) {
		Expect(client.IgnoreAlreadyExists(env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system-tenant"}}))).To(Succeed())
		Expect(createAll(ctx, "kube-system-tenant", "lookalike")).To(Equal(once))
	})
})
