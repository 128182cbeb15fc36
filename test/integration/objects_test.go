package integration

import (
	"fmt"

	fluxcdv1 "github.com/controlplaneio-fluxcd/flux-operator/api/v1"
	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	iacv1 "github.com/fluxcd/image-automation-controller/api/v1"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	"github.com/fluxcd/pkg/apis/meta"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
)

// objectsPolicy maps one ServiceAccount per cloud in every obj-* namespace and mandates identity there for every
// kind, in the mode given, with Receiver tokens covered.
const objectsPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: objects-%[1]s
identities:
  - name: tenant-aws
    namespaces: ["obj-*"]
    serviceAccounts: [tenant-aws]
    aws: {roleARN: "arn:aws:iam::111122223333:role/tenant"}
  - name: tenant-azure
    namespaces: ["obj-*"]
    serviceAccounts: [tenant-azure]
    azure: {clientID: 00000000-0000-0000-0000-000000000001, tenantID: 00000000-0000-0000-0000-0000000000aa}
  - name: tenant-gcp
    namespaces: ["obj-*"]
    serviceAccounts: [tenant-gcp]
    gcp: {serviceAccount: tenant@project-1.iam.gserviceaccount.com}
mandates:
  - name: tenants
    namespaces: ["obj-*"]
    mode: %[1]s
    cover: [receiverTokens]
`

// credentialCase is a Flux object that would make Flux use a long-lived credential, the webhook that answers it, the
// message, and the object the message's fix leads to.
type credentialCase struct {
	webhook    string
	bad, fixed func(ns string) client.Object
	message    string
}

func kustomization(ns string, mutate func(*kustomizev1.KustomizationSpec)) *kustomizev1.Kustomization {
	k := &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "apps", Namespace: ns},
		Spec: kustomizev1.KustomizationSpec{Interval: interval(), Prune: true,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "fleet"}}}
	mutate(&k.Spec)
	return k
}

func helmRelease(ns string, kubeConfig *meta.KubeConfigReference) *helmv2.HelmRelease {
	return &helmv2.HelmRelease{ObjectMeta: metav1.ObjectMeta{Name: "remote", Namespace: ns},
		Spec: helmv2.HelmReleaseSpec{Interval: interval(), KubeConfig: kubeConfig,
			ChartRef: &helmv2.CrossNamespaceSourceReference{Kind: "OCIRepository", Name: "chart"}}}
}

func notificationProvider(ns string, spec notificationv1beta3.ProviderSpec) *notificationv1beta3.Provider {
	return &notificationv1beta3.Provider{ObjectMeta: metav1.ObjectMeta{Name: "notify", Namespace: ns}, Spec: spec}
}

func inputProvider(ns string, spec fluxcdv1.ResourceSetInputProviderSpec) *fluxcdv1.ResourceSetInputProvider {
	return &fluxcdv1.ResourceSetInputProvider{ObjectMeta: metav1.ObjectMeta{Name: "prs", Namespace: ns}, Spec: spec}
}

func automation(ns, sourceNamespace string) *iacv1.ImageUpdateAutomation {
	return &iacv1.ImageUpdateAutomation{ObjectMeta: metav1.ObjectMeta{Name: "bump", Namespace: ns},
		Spec: iacv1.ImageUpdateAutomationSpec{Interval: interval(),
			SourceRef: iacv1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "fleet", Namespace: sourceNamespace}}}
}

func sopsSecret(ns string, entries map[string]string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sops-keys", Namespace: ns}, StringData: entries}
}

var credentialCases = map[string]credentialCase{
	"a Kustomization decrypting as kustomize-controller": {
		webhook: routes.WebhookFluxObjects,
		bad: func(ns string) client.Object {
			return kustomization(ns, func(s *kustomizev1.KustomizationSpec) {
				s.Decryption = &kustomizev1.Decryption{Provider: "sops", SecretRef: secret("sops-age")}
			})
		},
		message: "[tenants] spec.decryption.serviceAccountName unset: KMS keys decrypt as kustomize-controller: set it to tenant-aws",
		fixed: func(ns string) client.Object {
			return kustomization(ns, func(s *kustomizev1.KustomizationSpec) {
				s.Decryption = &kustomizev1.Decryption{Provider: "sops", SecretRef: secret("sops-age"),
					ServiceAccountName: "tenant-aws"}
			})
		},
	},
	"a HelmRelease deploying through a static kubeconfig": {
		webhook: routes.WebhookFluxObjects,
		bad: func(ns string) client.Object {
			return helmRelease(ns, &meta.KubeConfigReference{SecretRef: &meta.SecretKeyReference{Name: "prod-kubeconfig"}})
		},
		message: "[tenants] drop spec.kubeConfig.secretRef, use spec.kubeConfig.configMapRef with a cloud provider",
		fixed: func(ns string) client.Object {
			return helmRelease(ns, &meta.KubeConfigReference{ConfigMapRef: &meta.LocalObjectReference{Name: "eks"}})
		},
	},
	"a Pub/Sub Provider with a JSON key": {
		webhook: routes.WebhookFluxObjects,
		bad: func(ns string) client.Object {
			return notificationProvider(ns, notificationv1beta3.ProviderSpec{Type: "googlepubsub", Address: "project-1",
				Channel: "flux", SecretRef: secret("gcp-key")})
		},
		message: "[tenants] drop spec.secretRef, set spec.serviceAccountName: tenant-gcp (identity tenant-gcp)",
		fixed: func(ns string) client.Object {
			return notificationProvider(ns, notificationv1beta3.ProviderSpec{Type: "googlepubsub", Address: "project-1",
				Channel: "flux", ServiceAccountName: "tenant-gcp"})
		},
	},
	"a Receiver with a shared token where the mandate covers them": {
		webhook: routes.WebhookFluxObjects,
		bad: func(ns string) client.Object {
			return &notificationv1.Receiver{ObjectMeta: metav1.ObjectMeta{Name: "hook", Namespace: ns},
				Spec: notificationv1.ReceiverSpec{Type: "github", SecretRef: secret("token"),
					Resources: []notificationv1.ReceiverResource{{CrossNamespaceObjectReference: notificationv1.CrossNamespaceObjectReference{Kind: "GitRepository", Name: "fleet"}}}}}
		},
		message: "[tenants] spec.secretRef holds a shared token: remove it, use type: generic-oidc, which verifies the " +
			"sender's own token",
		fixed: func(ns string) client.Object {
			return &notificationv1.Receiver{ObjectMeta: metav1.ObjectMeta{Name: "hook", Namespace: ns},
				Spec: notificationv1.ReceiverSpec{Type: "generic-oidc",
					Resources: []notificationv1.ReceiverResource{{CrossNamespaceObjectReference: notificationv1.CrossNamespaceObjectReference{Kind: "GitRepository", Name: "fleet"}}},
					OIDCProviders: []notificationv1.OIDCProvider{{IssuerURL: "https://token.actions.githubusercontent.com",
						Validations: []notificationv1.OIDCValidation{{Expression: "claims.sub == 'repo:org/app:ref:refs/heads/main'",
							Message: "only main"}}}}}}
		},
	},
	"an ImageUpdateAutomation pushing with flux-system's GitRepository": {
		webhook: routes.WebhookFluxObjects,
		bad:     func(ns string) client.Object { return automation(ns, "flux-system") },
		message: "[tenants] drop spec.sourceRef.namespace, point spec.sourceRef at a GitRepository of %s",
		fixed:   func(ns string) client.Object { return automation(ns, "") },
	},
	"a ResourceSetInputProvider with an Azure DevOps token": {
		webhook: routes.WebhookFluxObjects,
		bad: func(ns string) client.Object {
			return inputProvider(ns, fluxcdv1.ResourceSetInputProviderSpec{Type: "AzureDevOpsPullRequest",
				URL: "https://dev.azure.com/org/project/_git/app", SecretRef: secret("pat")})
		},
		message: "[tenants] drop spec.secretRef, set spec.serviceAccountName: tenant-azure (identity tenant-azure)",
		fixed: func(ns string) client.Object {
			return inputProvider(ns, fluxcdv1.ResourceSetInputProviderSpec{Type: "AzureDevOpsPullRequest",
				URL: "https://dev.azure.com/org/project/_git/app", ServiceAccountName: "tenant-azure"})
		},
	},
	"a SOPS decryption Secret with static AWS keys": {
		webhook: routes.WebhookSOPSSecrets,
		bad: func(ns string) client.Object {
			return sopsSecret(ns, map[string]string{"sops.aws-kms": "aws_access_key_id: AKIAEXAMPLE\naws_secret_access_key: c2VjcmV0\n"})
		},
		message: "[tenants] drop data[sops.aws-kms], set spec.decryption.serviceAccountName: tenant-aws (identity tenant-aws)",
		fixed: func(ns string) client.Object {
			return sopsSecret(ns, map[string]string{"identity.agekey": "AGE-SECRET-KEY-1X"})
		},
	},
}

func credentialEntries() []TableEntry {
	var entries []TableEntry
	for name := range credentialCases {
		entries = append(entries, Entry(name+" is denied in enforce", name, "enforce"),
			Entry(name+" is admitted in warn with the same message", name, "warn"),
			Entry(name+" is admitted silently where no mandate applies", name, "none"))
	}
	return entries
}

var _ = Describe("Mandates over every Flux object that reads credentials", func() {
	BeforeEach(func() {
		DeferCleanup(func(ctx SpecContext) { Expect(env.SetPolicy(ctx, testPolicy)).To(Succeed()) })
	})

	DescribeTable("a Flux object using a long-lived credential", func(ctx SpecContext, name, mode string) {
		tc := credentialCases[name]
		policyMode, prefix := mode, "obj-"+mode
		if mode == "none" {
			policyMode, prefix = "enforce", "free"
		}
		Expect(env.SetPolicy(ctx, fmt.Sprintf(objectsPolicy, policyMode))).To(Succeed())
		ns := freshNamespace(ctx, prefix)
		c, warnings := warningClient()
		message := tc.message
		if len(message) > 0 && message[len(message)-2:] == "%s" {
			message = fmt.Sprintf(message, ns)
		}

		bad := tc.bad(ns)
		err := c.Create(ctx, bad)
		switch mode {
		case "enforce":
			Expect(err).To(MatchError(fmt.Sprintf("admission webhook %q denied the request: %s", tc.webhook, message)))
			Expect(warnings.Take()).To(BeEmpty())
		case "warn":
			Expect(err).NotTo(HaveOccurred())
			Expect(warnings.Take()).To(Equal([]string{message}))
			Expect(c.Delete(ctx, bad)).To(Succeed())
		default:
			Expect(err).NotTo(HaveOccurred())
			Expect(warnings.Take()).To(BeEmpty())
			return
		}

		By("admitting the object the message's fix leads to, without a word")
		Expect(c.Create(ctx, tc.fixed(ns))).To(Succeed())
		Expect(warnings.Take()).To(BeEmpty())
	}, credentialEntries())

	It("never sends the webhook a Secret that is no SOPS decryption Secret", func(ctx SpecContext) {
		Expect(env.SetPolicy(ctx, fmt.Sprintf(objectsPolicy, "enforce"))).To(Succeed())
		ns := freshNamespace(ctx, "obj-secrets")
		sent := func() float64 {
			n, err := env.Counter(ctx, "fluxidentity_admission_decisions_total",
				map[string]string{"webhook": routes.PathValidateSecret})
			Expect(err).NotTo(HaveOccurred())
			return n
		}
		before := sent()
		for i, data := range []map[string]string{
			{"tls.crt": "cert", "tls.key": "key"}, {"identity.agekey": "AGE-SECRET-KEY-1X"}, {"password": "hunter2"},
			{"sops.aws-kms.example": "not the key ImportKeys reads"},
		} {
			Expect(env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("plain-%d", i), Namespace: ns}, StringData: data})).To(Succeed())
		}
		Expect(sent()).To(Equal(before), "a Secret without a SOPS credential key reached the webhook")

		By("sending, and refusing, the one that is")
		Expect(env.Client.Create(ctx, sopsSecret(ns, map[string]string{"sops.vault-token": "hvs.example"}))).To(
			MatchError(ContainSubstring(`admission webhook "sops-secrets.fluxidentity.dev" denied the request`)))
		Expect(sent()).To(Equal(before + 1))
	})
})
