package warnmode

import (
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/test/harness"
	"github.com/fluxidentity/flux-identity-webhook/webhook"
)

var _ = Describe("An audit-only installation (serve --mode=warn)", func() {
	It("admits what an enforce mandate would deny, with the denial's text as a warning", func(ctx SpecContext) {
		const msg = "[no-static-git-credentials] drop spec.secretRef, set spec.provider: azure, " +
			"spec.serviceAccountName: flux-source"
		Expect(client.IgnoreAlreadyExists(env.Client.Create(ctx,
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}))).To(Succeed())
		c, rec, err := env.WarningClient(harness.Scheme)
		Expect(err).NotTo(HaveOccurred())
		labels := map[string]string{"mode": "warn", "kind": "GitRepository", "namespace": "team-a",
			"rule_type": "mandate", "rule": "no-static-git-credentials"}
		before, err := env.Counter(ctx, "fluxidentity_violations_total", labels)
		Expect(err).NotTo(HaveOccurred())
		denied, err := env.Counter(ctx, "fluxidentity_admission_decisions_total",
			map[string]string{"webhook": routes.PathValidateFluxSources, "decision": webhook.DecisionDenied})
		Expect(err).NotTo(HaveOccurred())

		Expect(c.Create(ctx, &sourcev1.GitRepository{
			ObjectMeta: metav1.ObjectMeta{Name: "static", Namespace: "team-a"},
			Spec: sourcev1.GitRepositorySpec{URL: "https://dev.azure.com/org/p/_git/app",
				Interval: metav1.Duration{Duration: time.Minute}, SecretRef: &meta.LocalObjectReference{Name: "git"}},
		})).To(Succeed())
		Expect(rec.Take()).To(Equal([]string{msg}))
		Expect(env.Counter(ctx, "fluxidentity_violations_total", labels)).To(Equal(before + 1))
		Expect(env.Counter(ctx, "fluxidentity_admission_decisions_total",
			map[string]string{"webhook": routes.PathValidateFluxSources, "decision": webhook.DecisionDenied})).To(Equal(denied))
	})
})
