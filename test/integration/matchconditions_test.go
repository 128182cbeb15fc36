package integration

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/cmd/flux-identity-webhook/app"
)

// setPodConditions replaces the pod webhook's matchConditions in the registered configuration.
func setPodConditions(ctx context.Context, conditions []admissionv1.MatchCondition) {
	var cfg admissionv1.MutatingWebhookConfiguration
	Expect(env.Client.Get(ctx, client.ObjectKey{Name: "flux-identity-webhook"}, &cfg)).To(Succeed())
	for i := range cfg.Webhooks {
		if cfg.Webhooks[i].Name == "pods.fluxidentity.dev" {
			cfg.Webhooks[i].MatchConditions = conditions
		}
	}
	Expect(env.Client.Update(ctx, &cfg)).To(Succeed())
}

// podCalls creates a dry-run pod in namespace and returns how many times that called the pod webhook.
func podCalls(ctx context.Context, namespace string) float64 {
	before := decisions(ctx, "/mutate-v1-pod")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-", Namespace: namespace},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	Expect(env.Client.Create(ctx, pod, client.DryRunAll)).To(Succeed())
	return decisions(ctx, "/mutate-v1-pod") - before
}

var _ = Describe("matchConditions derived from the policy", Ordered, func() {
	BeforeAll(func(ctx SpecContext) {
		Expect(env.SetPolicy(ctx, fluxPolicy)).To(Succeed())
		ensureNamespace(ctx, "flux-system")
		ensureNamespace(ctx, "apps")
		expr, ok := app.NamespaceCondition([]string{"flux-system"})
		Expect(ok).To(BeTrue())
		setPodConditions(ctx, []admissionv1.MatchCondition{{Name: "policy-namespaces", Expression: expr}})
		DeferCleanup(func(ctx SpecContext) {
			setPodConditions(ctx, nil)
			Eventually(func(ctx context.Context) float64 { return podCalls(ctx, "apps") }).WithContext(ctx).
				Should(BeNumerically("==", 1), "the pod webhook sees every namespace again")
		})
	})

	It("keeps pods in namespaces no identity names away from the webhook", func(ctx SpecContext) {
		Eventually(func(ctx context.Context) float64 { return podCalls(ctx, "apps") }).WithContext(ctx).
			Should(BeZero(), "the API server applies the condition once its informer has it")
		for range 5 {
			Expect(podCalls(ctx, "apps")).To(BeZero())
		}
	})

	It("still sends pods in policy namespaces, which are still mutated", func(ctx SpecContext) {
		Expect(podCalls(ctx, "flux-system")).To(BeNumerically("==", 1))
		pod := podFromTemplate(ctx, fluxDeployment("source-controller"))
		Expect(pod.Annotations).To(HaveKey("fluxidentity.dev/identity"))
	})
})
