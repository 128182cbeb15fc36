package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/cmd/flux-identity-webhook/app"
	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/test/harness"
	"github.com/fluxidentity/flux-identity-webhook/webhook/fluxobjects"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// validationPolicy mandates identity for Git sources and for registries and buckets in val-* and flux-system, each
// in the mode given, and maps the tenants' flux-source ServiceAccount to Azure and Flux's controllers to AWS.
const validationPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: validation-%[1]s
identities:
  - name: flux-controllers
    namespaces: [flux-system]
    serviceAccounts: [source-controller, image-reflector-controller]
    aws:
      roleARN: arn:aws:iam::111122223333:role/flux-{namespace}
  - name: tenants
    namespaces: ["val-*"]
    serviceAccounts: [flux-source]
    azure:
      clientID: 00000000-0000-0000-0000-000000000001
      tenantID: 00000000-0000-0000-0000-0000000000aa
mandates:
  - name: no-static-git-credentials
    namespaces: ["val-*"]
    mode: %[1]s
    kinds: [GitRepository]
  - name: no-static-registry-credentials
    namespaces: ["val-*"]
    mode: %[1]s
    kinds: [OCIRepository, HelmRepository, Bucket, ImageRepository]
`

// gitDenial is the exact message for a GitRepository with spec.secretRef in a val-* namespace.
const gitDenial = "[no-static-git-credentials] drop spec.secretRef, set spec.provider: azure, " +
	"spec.serviceAccountName: flux-source"

// validationScheme knows every Flux source kind the webhook validates, ImageRepository included.
// validationScheme is the harness scheme: every Flux kind the credential model knows, and the built-in types.
var validationScheme = harness.Scheme

// warningClient is a client whose warnings land in the returned recorder.
func warningClient() (client.Client, *harness.WarningRecorder) {
	c, rec, err := env.WarningClient(validationScheme)
	Expect(err).NotTo(HaveOccurred())
	return c, rec
}

var namespaceSeq atomic.Int64

// freshNamespace creates a namespace matching prefix-* that no other spec uses.
func freshNamespace(ctx context.Context, prefix string) string {
	name := fmt.Sprintf("%s-%d-%d", prefix, GinkgoParallelProcess(), namespaceSeq.Add(1))
	ensureNamespace(ctx, name)
	return name
}

func interval() metav1.Duration { return metav1.Duration{Duration: time.Minute} }

func secret(name string) *meta.LocalObjectReference { return &meta.LocalObjectReference{Name: name} }

func gitRepository(ns, name string, mutate func(*sourcev1.GitRepositorySpec)) *sourcev1.GitRepository {
	r := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       sourcev1.GitRepositorySpec{URL: "https://dev.azure.com/org/project/_git/app", Interval: interval()},
	}
	if mutate != nil {
		mutate(&r.Spec)
	}
	return r
}

func violationsCounter(ctx context.Context, mode, kind, ns, mandate string) float64 {
	v, err := env.Counter(ctx, "fluxidentity_violations_total",
		map[string]string{"mode": mode, "kind": kind, "namespace": ns, "rule_type": "mandate", "rule": mandate})
	Expect(err).NotTo(HaveOccurred())
	return v
}

func setValidationPolicy(ctx context.Context, mode string) {
	Expect(env.SetPolicy(ctx, fmt.Sprintf(validationPolicy, mode))).To(Succeed())
}

var _ = Describe("Validating Flux sources through the API server", func() {
	BeforeEach(func() {
		DeferCleanup(func(ctx SpecContext) { Expect(env.SetPolicy(ctx, testPolicy)).To(Succeed()) })
	})

	DescribeTable("a GitRepository with spec.secretRef under a mandate",
		func(ctx SpecContext, mode string, wantDenied bool, wantWarnings []string) {
			setValidationPolicy(ctx, mode)
			ns := freshNamespace(ctx, "val-"+mode)
			c, warnings := warningClient()
			before := violationsCounter(ctx, mode, "GitRepository", ns, "no-static-git-credentials")

			err := c.Create(ctx, gitRepository(ns, "static", func(s *sourcev1.GitRepositorySpec) {
				s.SecretRef = secret("git-credentials")
			}))
			if wantDenied {
				Expect(err).To(MatchError(`admission webhook "flux-sources.fluxidentity.dev" denied the request: ` +
					gitDenial))
			} else {
				Expect(err).NotTo(HaveOccurred())
			}
			Expect(warnings.Take()).To(Equal(wantWarnings))
			Expect(violationsCounter(ctx, mode, "GitRepository", ns, "no-static-git-credentials")).To(Equal(before + 1))

			By("admitting a compliant object silently: provider azure with the mapped ServiceAccount")
			Expect(c.Create(ctx, gitRepository(ns, "azure-devops", func(s *sourcev1.GitRepositorySpec) {
				s.Provider, s.ServiceAccountName = sourcev1.GitProviderAzure, "flux-source"
			}))).To(Succeed())
			Expect(warnings.Take()).To(BeEmpty())
			Expect(violationsCounter(ctx, mode, "GitRepository", ns, "no-static-git-credentials")).To(Equal(before + 1))
		},
		Entry("is denied in enforce with the exact message", "enforce", true, nil),
		Entry("is admitted in warn with the same text as a warning header", "warn", false, []string{gitDenial}),
		Entry("is admitted silently in off, and still counted", "off", false, nil),
	)

	It("denies an ImageRepository with spec.secretRef through the generated image-reflector CRD", func(ctx SpecContext) {
		setValidationPolicy(ctx, "enforce")
		ns := freshNamespace(ctx, "val-image")
		c, _ := warningClient()
		err := c.Create(ctx, &imagev1.ImageRepository{
			ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
			Spec: imagev1.ImageRepositorySpec{Image: "example.azurecr.io/app", Interval: interval(),
				SecretRef: secret("regcred")},
		})
		Expect(err).To(MatchError(ContainSubstring("[no-static-registry-credentials] drop spec.secretRef, " +
			"set spec.provider: azure, spec.serviceAccountName: flux-source")))
		Expect(c.Create(ctx, &imagev1.ImageRepository{
			ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
			Spec: imagev1.ImageRepositorySpec{Image: "example.azurecr.io/app", Interval: interval(), Provider: "azure",
				ServiceAccountName: "flux-source"},
		})).To(Succeed())
	})

	It("tells an https HelmRepository it needs an exception, and denies an OCIRepository with an unmapped ServiceAccount",
		func(ctx SpecContext) {
			setValidationPolicy(ctx, "enforce")
			ns := freshNamespace(ctx, "val-registries")
			c, _ := warningClient()
			Expect(c.Create(ctx, &sourcev1.HelmRepository{
				ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: ns},
				Spec:       sourcev1.HelmRepositorySpec{URL: "https://charts.example.com", SecretRef: secret("basic-auth")},
			})).To(MatchError(ContainSubstring("[no-static-registry-credentials] spec.secretRef: add an exception " +
				"(no cloud identity for charts.example.com)")))
			Expect(c.Create(ctx, &sourcev1.OCIRepository{
				ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
				Spec: sourcev1.OCIRepositorySpec{URL: "oci://example.azurecr.io/app", Interval: interval(),
					Provider: "azure", ServiceAccountName: "ci-bot"},
			})).To(MatchError(ContainSubstring("[no-static-registry-credentials] spec.serviceAccountName ci-bot " +
				"has no identity here: use flux-source (identity tenants)")))
		})

	It("reports an existing violation when it is touched, but denies changing its credentials", func(ctx SpecContext) {
		setValidationPolicy(ctx, "warn")
		ns := freshNamespace(ctx, "val-existing")
		c, warnings := warningClient()
		repo := gitRepository(ns, "legacy", func(s *sourcev1.GitRepositorySpec) { s.SecretRef = secret("git-credentials") })
		Expect(c.Create(ctx, repo)).To(Succeed())
		Expect(warnings.Take()).To(Equal([]string{gitDenial}))

		setValidationPolicy(ctx, "enforce")
		By("admitting a label change with a warning: the credentials did not change")
		repo.Labels = map[string]string{"touched": "yes"}
		Expect(c.Update(ctx, repo)).To(Succeed())
		Expect(warnings.Take()).To(Equal([]string{gitDenial}))

		By("denying a switch to another Secret")
		repo.Spec.SecretRef = secret("other-credentials")
		Expect(c.Update(ctx, repo)).To(MatchError(ContainSubstring(gitDenial)))

		By("never blocking the deletion")
		Expect(c.Delete(ctx, repo)).To(Succeed())
	})

	It("audit lists exactly the violating sources seeded in the API server", func(ctx SpecContext) {
		ns := freshNamespace(ctx, "audit")
		other := freshNamespace(ctx, "audit")
		c, _ := warningClient()
		// The served policy (testPolicy) mandates nothing in audit-*, so all of these are admitted as they are.
		seed := []client.Object{
			gitRepository(ns, "static", func(s *sourcev1.GitRepositorySpec) { s.SecretRef = secret("git") }),
			gitRepository(ns, "compliant", func(s *sourcev1.GitRepositorySpec) {
				s.Provider, s.ServiceAccountName = sourcev1.GitProviderAzure, "flux-source"
			}),
			gitRepository(ns, "legacy-monorepo", func(s *sourcev1.GitRepositorySpec) { s.SecretRef = secret("pat") }),
			gitRepository(other, "github-app", func(s *sourcev1.GitRepositorySpec) {
				s.Provider, s.SecretRef = sourcev1.GitProviderGitHub, secret("app-key")
			}),
			&sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Name: "regcred", Namespace: ns},
				Spec: sourcev1.OCIRepositorySpec{URL: "oci://ghcr.io/org/app", Interval: interval(), SecretRef: secret("regcred")}},
			&sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Name: "verify-only", Namespace: ns},
				Spec: sourcev1.OCIRepositorySpec{URL: "oci://example.azurecr.io/app", Interval: interval(), Provider: "azure",
					ServiceAccountName: "flux-source", CertSecretRef: secret("ca"), ProxySecretRef: secret("proxy"),
					Verify: &sourcev1.OCIRepositoryVerification{Provider: "cosign", SecretRef: secret("keys")}}},
			&sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Name: "unmapped", Namespace: other},
				Spec: sourcev1.OCIRepositorySpec{URL: "oci://example.azurecr.io/app", Interval: interval(), Provider: "azure",
					ServiceAccountName: "ci-bot"}},
			&sourcev1.HelmRepository{ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: ns},
				Spec: sourcev1.HelmRepositorySpec{URL: "https://charts.example.com", SecretRef: secret("basic")}},
			&sourcev1.Bucket{ObjectMeta: metav1.ObjectMeta{Name: "minio", Namespace: ns},
				Spec: sourcev1.BucketSpec{BucketName: "b", Endpoint: "minio.example.com", Interval: interval(),
					SecretRef: secret("minio")}},
			&imagev1.ImageRepository{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: other},
				Spec: imagev1.ImageRepositorySpec{Image: "ghcr.io/org/app", Interval: interval(), SecretRef: secret("regcred")}},
		}
		for _, obj := range seed {
			Expect(c.Create(ctx, obj)).To(Succeed(), "seed %s", obj.GetName())
		}

		dir := GinkgoT().TempDir()
		kubeconfig, policyPath := filepath.Join(dir, "kubeconfig"), filepath.Join(dir, "policy.yaml")
		Expect(os.WriteFile(kubeconfig, env.KubeConfig, 0o600)).To(Succeed())
		Expect(os.WriteFile(policyPath, []byte(`apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: audit
identities:
  - name: tenants
    namespaces: ["audit-*"]
    serviceAccounts: [flux-source]
    azure:
      clientID: 00000000-0000-0000-0000-000000000001
      tenantID: 00000000-0000-0000-0000-0000000000aa
mandates:
  - name: no-static-credentials
    namespaces: ["audit-*"]
    mode: warn
    allowProviders: [github]
exceptions:
  - namespace: `+ns+`
    kind: GitRepository
    name: legacy-*
    reason: migration
    expires: "2999-12-31"
`), 0o600)).To(Succeed())

		var stdout, stderr bytes.Buffer
		code := app.Execute(ctx, []string{"audit", "--policy", policyPath, "--kubeconfig", kubeconfig, "-o", "json"},
			&stdout, &stderr)
		Expect(code).To(Equal(1), "stderr: %s", stderr.String())
		var res struct {
			Findings []struct {
				Kind, Namespace, Name string
				Violations            []fluxobjects.Violation
			}
		}
		Expect(json.Unmarshal(stdout.Bytes(), &res)).To(Succeed(), stdout.String())
		var found []string
		for _, f := range res.Findings {
			for _, v := range f.Violations {
				found = append(found, strings.Join([]string{f.Namespace, f.Kind, f.Name, v.Field}, " "))
				Expect(len(v.Message)).To(BeNumerically("<=", verdict.MaxMessageLength))
			}
		}
		Expect(found).To(ConsistOf(
			ns+" GitRepository static spec.secretRef",
			ns+" OCIRepository regcred spec.secretRef",
			ns+" HelmRepository charts spec.secretRef",
			ns+" Bucket minio spec.secretRef",
			other+" OCIRepository unmapped spec.serviceAccountName",
			other+" ImageRepository app spec.secretRef",
		))
		Expect(stdout.String()).NotTo(ContainSubstring(`"git"`), "secret names never appear")
	})

	It("never calls the webhook for a status update", func(ctx SpecContext) {
		setValidationPolicy(ctx, "enforce")
		ns := freshNamespace(ctx, "val-status")
		c, _ := warningClient()
		repo := gitRepository(ns, "app", func(s *sourcev1.GitRepositorySpec) {
			s.Provider, s.ServiceAccountName = sourcev1.GitProviderAzure, "flux-source"
		})
		Expect(c.Create(ctx, repo)).To(Succeed())
		before := decisions(ctx, routes.PathValidateFluxSources)
		repo.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Succeeded",
			Message: "ok", LastTransitionTime: metav1.Now()}}
		Expect(c.Status().Update(ctx, repo)).To(Succeed())
		Expect(decisions(ctx, routes.PathValidateFluxSources)).To(Equal(before))
	})
})
