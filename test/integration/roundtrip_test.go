package integration

import (
	"context"
	"net/http"
	"time"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func decisions(ctx context.Context, path string) float64 {
	v, err := env.Counter(ctx, "fluxidentity_admission_decisions_total", map[string]string{"webhook": path})
	Expect(err).NotTo(HaveOccurred())
	return v
}

func ensureNamespace(ctx context.Context, name string) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	Expect(client.IgnoreAlreadyExists(env.Client.Create(ctx, ns))).To(Succeed())
}

var _ = Describe("Admission round trip through the API server", func() {
	BeforeEach(func(ctx SpecContext) {
		Expect(env.SetPolicy(ctx, testPolicy)).To(Succeed())
		ensureNamespace(ctx, "flux-system")
	})

	It("calls the ServiceAccount handler when a ServiceAccount is created", func(ctx SpecContext) {
		before := decisions(ctx, "/mutate-v1-serviceaccount")
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "roundtrip", Namespace: "flux-system"}}
		Expect(env.Client.Create(ctx, sa)).To(Succeed())
		Expect(decisions(ctx, "/mutate-v1-serviceaccount")).To(Equal(before + 1))
	})

	It("calls the pod handler when a pod is created", func(ctx SpecContext) {
		before := decisions(ctx, "/mutate-v1-pod")
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "source-controller-", Namespace: "flux-system"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "manager", Image: "ghcr.io/fluxcd/source-controller"}}},
		}
		Expect(env.Client.Create(ctx, pod)).To(Succeed())
		Expect(decisions(ctx, "/mutate-v1-pod")).To(Equal(before + 1))
	})

	It("calls the Flux source handler when a GitRepository is created, after the CRD's own validation", func(ctx SpecContext) {
		before := decisions(ctx, "/validate-flux-sources")
		repo := &sourcev1.GitRepository{
			ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "flux-system"},
			Spec: sourcev1.GitRepositorySpec{
				URL:      "https://github.com/stefanprodan/podinfo",
				Interval: metav1.Duration{Duration: time.Minute},
			},
		}
		Expect(env.Client.Create(ctx, repo)).To(Succeed())
		Expect(decisions(ctx, "/validate-flux-sources")).To(Equal(before + 1))

		By("letting the real CRD reject serviceAccountName without an aws or azure provider before any webhook runs")
		bad := repo.DeepCopy()
		bad.ObjectMeta = metav1.ObjectMeta{Name: "bad", Namespace: "flux-system"}
		bad.Spec.ServiceAccountName = "source-controller"
		err := env.Client.Create(ctx, bad)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("serviceAccountName"))
		Expect(decisions(ctx, "/validate-flux-sources")).To(Equal(before + 1))
	})

	It("never calls the webhooks for kube-system", func(ctx SpecContext) {
		before := decisions(ctx, "/mutate-v1-serviceaccount")
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "not-ours", Namespace: "kube-system"}}
		Expect(env.Client.Create(ctx, sa)).To(Succeed())
		Expect(decisions(ctx, "/mutate-v1-serviceaccount")).To(Equal(before))
	})

	It("reports ready with the loaded policy's name", func(ctx SpecContext) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, env.HealthURL+"/readyz", nil)
		Expect(err).NotTo(HaveOccurred())
		resp, err := http.DefaultClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		defer func() { _ = resp.Body.Close() }()
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		info, err := env.Counter(ctx, "fluxidentity_policy_info", map[string]string{"name": "integration"})
		Expect(err).NotTo(HaveOccurred())
		Expect(info).To(Equal(1.0))
	})
})
