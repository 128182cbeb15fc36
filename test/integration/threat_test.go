package integration

import (
	"strings"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
)

// threatPolicy mandates identity for GitRepositories in team-* and maps each tenant's flux-* ServiceAccounts to a
// role named after its namespace.
const threatPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: threats
identities:
  - name: tenants
    namespaces: ["team-*"]
    serviceAccounts: ["flux-*"]
    aws:
      roleARN: arn:aws:iam::111122223333:role/tenant-{namespace}
mandates:
  - name: no-static-git-credentials
    namespaces: ["team-*"]
    kinds: [GitRepository]
`

// The threats that need the API server itself; the rest of the threat suite is webhook/threat_test.go, through the
// same handlers without a server.
var _ = Describe("Threats that go through the API server", func() {
	BeforeEach(func(ctx SpecContext) {
		Expect(env.SetPolicy(ctx, threatPolicy)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(env.SetPolicy(ctx, testPolicy)).To(Succeed()) })
	})

	It("a tenant relabels its namespace as kube-system to leave the namespaceSelector: the label stays its name",
		func(ctx SpecContext) {
			ns := freshNamespace(ctx, "team-relabel")
			var namespace corev1.Namespace
			Expect(env.Client.Get(ctx, client.ObjectKey{Name: ns}, &namespace)).To(Succeed())
			namespace.Labels[corev1.LabelMetadataName] = "kube-system"
			err := env.Client.Update(ctx, &namespace)
			if err == nil {
				Expect(env.Client.Get(ctx, client.ObjectKey{Name: ns}, &namespace)).To(Succeed())
				Expect(namespace.Labels).To(HaveKeyWithValue(corev1.LabelMetadataName, ns),
					"the API server resets the immutable name label")
			}

			err = env.Client.Create(ctx, gitRepository(ns, "static", func(s *sourcev1.GitRepositorySpec) {
				s.SecretRef = secret("git-credentials")
			}))
			Expect(err).To(MatchError(ContainSubstring(`admission webhook "flux-sources.fluxidentity.dev" denied`)))
		})

	It("a dry-run GitRepository with a secretRef is denied exactly like a real one", func(ctx SpecContext) {
		ns := freshNamespace(ctx, "team-dryrun")
		err := env.Client.Create(ctx, gitRepository(ns, "static", func(s *sourcev1.GitRepositorySpec) {
			s.SecretRef = secret("git-credentials")
		}), client.DryRunAll)
		Expect(err).To(MatchError(ContainSubstring(`admission webhook "flux-sources.fluxidentity.dev" denied`)))
	})

	It("a dry-run ServiceAccount spoofing a role comes back with the policy's role", func(ctx SpecContext) {
		ns := freshNamespace(ctx, "team-dryrun-sa")
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "flux-source", Namespace: ns,
			Annotations: map[string]string{keys.AnnotationAWSRoleARN: "arn:aws:iam::999999999999:role/admin"}}}
		Expect(env.Client.Create(ctx, sa, client.DryRunAll)).To(Succeed())
		Expect(sa.Annotations).To(HaveKeyWithValue(keys.AnnotationAWSRoleARN,
			"arn:aws:iam::111122223333:role/tenant-"+ns))
		Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(sa), &corev1.ServiceAccount{})).
			To(MatchError(ContainSubstring("not found")), "a dry run stores nothing")
	})

	It("a v1beta2 GitRepository cannot slip past: the installed CRDs do not serve v1beta2", func(ctx SpecContext) {
		ns := freshNamespace(ctx, "team-beta")
		repo := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "source.toolkit.fluxcd.io/v1beta2", "kind": "GitRepository",
			"metadata": map[string]any{"name": "static", "namespace": ns},
			"spec": map[string]any{"url": "https://example.invalid/r.git", "interval": "1m",
				"secretRef": map[string]any{"name": "git-credentials"}},
		}}
		err := env.Client.Create(ctx, repo)
		Expect(err).To(HaveOccurred())
		Expect(apimeta.IsNoMatchError(err) || strings.Contains(err.Error(), "denied")).To(BeTrue(),
			"either not served or denied, never admitted: %v", err)
		var list sourcev1.GitRepositoryList
		Expect(env.Client.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
		Expect(list.Items).To(BeEmpty())
	})
})
