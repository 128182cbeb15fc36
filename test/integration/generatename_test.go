package integration

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
)

// generatedPolicy maps team-gen's flux-* ServiceAccounts to one role and its app-* ServiceAccounts to a role named
// after each, and mandates identity for OCI sources there, so mapped ServiceAccounts may carry no pull secrets.
const generatedPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: generated-names
identities:
  - name: tenant
    namespaces: [team-gen]
    serviceAccounts: ["flux-*"]
    aws:
      roleARN: arn:aws:iam::111122223333:role/tenant
  - name: per-sa
    namespaces: [team-gen]
    serviceAccounts: ["app-*"]
    aws:
      roleARN: arn:aws:iam::111122223333:role/{namespace}.{serviceAccount}
mandates:
  - name: registries
    namespaces: [team-gen]
    kinds: [OCIRepository]
`

// The API server names a ServiceAccount created with metadata.generateName after mutating admission and before
// validating admission (k8s.io/apiserver registry.Store.create); these specs create them through it.
var _ = Describe("ServiceAccounts named by the API server (generateName)", Ordered, func() {
	BeforeAll(func(ctx SpecContext) {
		Expect(env.SetPolicy(ctx, generatedPolicy)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(env.SetPolicy(ctx, testPolicy)).To(Succeed()) })
		Expect(env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-gen"}})).To(Succeed())
	})

	generated := func(prefix string, pullSecret bool) *corev1.ServiceAccount {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix, Namespace: "team-gen"}}
		if pullSecret {
			sa.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
		}
		return sa
	}

	It("gives one its identity when every name the API server can generate is mapped alike", func(ctx SpecContext) {
		sa := generated("flux-", false)
		Expect(env.Client.Create(ctx, sa)).To(Succeed())
		Expect(sa.Name).To(HavePrefix("flux-"))
		Expect(sa.Name).To(HaveLen(len("flux-") + 5))
		Expect(sa.Annotations).To(HaveKeyWithValue(keys.AnnotationAWSRoleARN, "arn:aws:iam::111122223333:role/tenant"))
		Expect(sa.Annotations).To(HaveKeyWithValue(keys.AnnotationIdentity, "tenant"))
	})

	It("refuses one that ends up mapped with pull secrets, as it refuses a named one", func(ctx SpecContext) {
		err := env.Client.Create(ctx, generated("flux-", true))
		Expect(err).To(MatchError(ContainSubstring("[registries] imagePullSecrets")))
		// The same through a dry run of a named one: both answers come from the same rule.
		named := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "flux-named", Namespace: "team-gen"},
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}}}
		Expect(env.Client.Create(ctx, named, client.DryRunAll)).To(MatchError(ContainSubstring("[registries] imagePullSecrets")))
	})

	It("refuses, under the generated name, one whose identity depends on that name", func(ctx SpecContext) {
		err := env.Client.Create(ctx, generated("app-", false))
		Expect(err).To(HaveOccurred(), "admitted without the role its generated name maps to")
		Expect(err.Error()).To(MatchRegexp(`\[per-sa\] generated name app-[bcdfghjklmnpqrstvwxz2456789]{5} is mapped but lacks its identity`))
		Expect(err.Error()).To(ContainSubstring(`admission webhook "serviceaccounts-generated.fluxidentity.dev" denied`),
			"the validating webhook, which sees the generated name, answers")
	})

	It("admits unmapped names as they are, and a named one of that entry with its identity", func(ctx SpecContext) {
		sa := generated("builder-", true)
		Expect(env.Client.Create(ctx, sa)).To(Succeed())
		Expect(sa.Annotations).NotTo(HaveKey(keys.AnnotationIdentity))
		named := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app-web", Namespace: "team-gen"}}
		Expect(env.Client.Create(ctx, named)).To(Succeed())
		Expect(named.Annotations).To(HaveKeyWithValue(keys.AnnotationAWSRoleARN,
			"arn:aws:iam::111122223333:role/team-gen.app-web"))
	})

	It("holds a generated name to the rules on every attempt the API server makes", func(ctx SpecContext) {
		// Each create is a new draw of the five characters; none may slip through.
		for range 20 {
			err := env.Client.Create(ctx, generated("app-", false))
			Expect(err).To(HaveOccurred())
			Expect(strings.Count(err.Error(), "lacks its identity")).To(Equal(1))
		}
	})
})
