package integration

import (
	"fmt"

	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// mandatePolicy maps one ServiceAccount per cloud in every mand-* namespace and mandates identity for every Flux source
// kind there, in the mode given.
const mandatePolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: mandates-%[1]s
identities:
  - name: flux-controllers
    namespaces: [flux-system]
    serviceAccounts: [source-controller, image-reflector-controller]
    aws: {roleARN: "arn:aws:iam::111122223333:role/flux"}
  - name: tenant-aws
    namespaces: ["mand-*"]
    serviceAccounts: [tenant-aws]
    aws: {roleARN: "arn:aws:iam::111122223333:role/tenant"}
  - name: tenant-azure
    namespaces: ["mand-*"]
    serviceAccounts: [tenant-azure]
    azure: {clientID: 00000000-0000-0000-0000-000000000001, tenantID: 00000000-0000-0000-0000-0000000000aa}
  - name: tenant-gcp
    namespaces: ["mand-*"]
    serviceAccounts: [tenant-gcp]
    gcp: {serviceAccount: tenant@project-1.iam.gserviceaccount.com}
mandates:
  - name: tenants
    namespaces: ["mand-*"]
    mode: %[1]s
`

// talkedAround is one way a tenant could talk a mandate around (the opening table of the mandate issue): the object
// that tries, the message it must get, and the object the message's fix leads to, which must be admitted.
type talkedAround struct {
	bad, fixed func(ns string) client.Object
	message    string
}

var talkedAroundCases = map[string]talkedAround{
	"a Bucket with provider aws and static keys": {
		bad: func(ns string) client.Object {
			return bucket(ns, func(s *sourcev1.BucketSpec) { s.Provider, s.SecretRef = "aws", secret("iam-keys") })
		},
		message: "[tenants] spec.secretRef holds static IAM keys: remove it, set spec.serviceAccountName: tenant-aws " +
			"(identity tenant-aws)",
		fixed: func(ns string) client.Object {
			return bucket(ns, func(s *sourcev1.BucketSpec) { s.Provider, s.ServiceAccountName = "aws", "tenant-aws" })
		},
	},
	"an https HelmRepository whose provider aws Flux ignores": {
		bad: func(ns string) client.Object {
			return &sourcev1.HelmRepository{ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: ns},
				Spec: sourcev1.HelmRepositorySpec{URL: "https://111122223333.dkr.ecr.eu-west-1.amazonaws.com/charts",
					Provider: "aws", SecretRef: secret("basic-auth")}}
		},
		message: "[tenants] spec.secretRef: use an OCIRepository with spec.provider: aws, " +
			"spec.serviceAccountName: tenant-aws",
		fixed: func(ns string) client.Object {
			return &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: ns},
				Spec: sourcev1.OCIRepositorySpec{URL: "oci://111122223333.dkr.ecr.eu-west-1.amazonaws.com/charts",
					Interval: interval(), Provider: "aws", ServiceAccountName: "tenant-aws"}}
		},
	},
	"a GitRepository with a token in its URL": {
		bad: func(ns string) client.Object {
			return gitRepository(ns, "app", func(s *sourcev1.GitRepositorySpec) {
				s.URL = "https://x-access-token:ghp_0123456789@dev.azure.com/org/project/_git/app"
			})
		},
		message: "[tenants] drop the user info from spec.url, set spec.provider: azure, " +
			"spec.serviceAccountName: tenant-azure",
		fixed: func(ns string) client.Object {
			return gitRepository(ns, "app", func(s *sourcev1.GitRepositorySpec) {
				s.Provider, s.ServiceAccountName = sourcev1.GitProviderAzure, "tenant-azure"
			})
		},
	},
	"a Bucket logging in to an LDAP STS": {
		bad: func(ns string) client.Object {
			return bucket(ns, func(s *sourcev1.BucketSpec) {
				s.Endpoint = "s3.eu-west-1.amazonaws.com"
				s.STS = &sourcev1.BucketSTSSpec{Provider: "ldap", Endpoint: "https://sts.example.com",
					SecretRef: secret("ldap-login")}
			})
		},
		message: "[tenants] drop spec.sts.secretRef, set spec.provider: aws, spec.serviceAccountName: tenant-aws " +
			"(identity tenant-aws)",
		fixed: func(ns string) client.Object {
			return bucket(ns, func(s *sourcev1.BucketSpec) { s.Provider, s.ServiceAccountName = "aws", "tenant-aws" })
		},
	},
	"an OCIRepository borrowing source-controller's identity": {
		bad: func(ns string) client.Object {
			return &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
				Spec: sourcev1.OCIRepositorySpec{URL: "oci://111122223333.dkr.ecr.eu-west-1.amazonaws.com/app",
					Interval: interval(), Provider: "aws"}}
		},
		message: "[tenants] spec.serviceAccountName unset: provider aws borrows source-controller's identity: " +
			"set it to tenant-aws",
		fixed: func(ns string) client.Object {
			return &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
				Spec: sourcev1.OCIRepositorySpec{URL: "oci://111122223333.dkr.ecr.eu-west-1.amazonaws.com/app",
					Interval: interval(), Provider: "aws", ServiceAccountName: "tenant-aws"}}
		},
	},
	"a Bucket on Azure borrowing source-controller's identity": {
		bad: func(ns string) client.Object {
			return bucket(ns, func(s *sourcev1.BucketSpec) {
				s.Provider, s.Endpoint = "azure", "https://tenants.blob.core.windows.net"
			})
		},
		message: "[tenants] spec.serviceAccountName unset: provider azure borrows source-controller's identity: " +
			"set it to tenant-azure",
		fixed: func(ns string) client.Object {
			return bucket(ns, func(s *sourcev1.BucketSpec) {
				s.Provider, s.Endpoint, s.ServiceAccountName = "azure", "https://tenants.blob.core.windows.net", "tenant-azure"
			})
		},
	},
	"an ImageRepository borrowing image-reflector-controller's identity": {
		bad: func(ns string) client.Object {
			return &imagev1.ImageRepository{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
				Spec: imagev1.ImageRepositorySpec{Image: "europe-docker.pkg.dev/p/app", Interval: interval(), Provider: "gcp"}}
		},
		message: "[tenants] spec.serviceAccountName unset borrows the controller's identity: set it to tenant-gcp",
		fixed: func(ns string) client.Object {
			return &imagev1.ImageRepository{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
				Spec: imagev1.ImageRepositorySpec{Image: "europe-docker.pkg.dev/p/app", Interval: interval(),
					Provider: "gcp", ServiceAccountName: "tenant-gcp"}}
		},
	},
}

func bucket(ns string, mutate func(*sourcev1.BucketSpec)) *sourcev1.Bucket {
	b := &sourcev1.Bucket{ObjectMeta: metav1.ObjectMeta{Name: "artifacts", Namespace: ns},
		Spec: sourcev1.BucketSpec{BucketName: "artifacts", Endpoint: "s3.eu-west-1.amazonaws.com", Region: "eu-west-1",
			Interval: interval()}}
	mutate(&b.Spec)
	return b
}

func talkedAroundEntries() []TableEntry {
	var entries []TableEntry
	for name := range talkedAroundCases {
		entries = append(entries, Entry(name+" is denied in enforce", name, "enforce"),
			Entry(name+" is admitted in warn with the same message", name, "warn"))
	}
	return entries
}

var _ = Describe("Mandates that hold against every way Flux authenticates", func() {
	BeforeEach(func() {
		DeferCleanup(func(ctx SpecContext) { Expect(env.SetPolicy(ctx, testPolicy)).To(Succeed()) })
	})

	DescribeTable("a tenant talking a mandate around", func(ctx SpecContext, name, mode string) {
		tc := talkedAroundCases[name]
		Expect(env.SetPolicy(ctx, fmt.Sprintf(mandatePolicy, mode))).To(Succeed())
		ns := freshNamespace(ctx, "mand-"+mode)
		c, warnings := warningClient()

		bad := tc.bad(ns)
		err := c.Create(ctx, bad)
		if mode == "enforce" {
			Expect(err).To(MatchError(`admission webhook "flux-sources.fluxidentity.dev" denied the request: ` + tc.message))
			Expect(warnings.Take()).To(BeEmpty())
		} else {
			Expect(err).NotTo(HaveOccurred())
			Expect(warnings.Take()).To(Equal([]string{tc.message}))
			Expect(c.Delete(ctx, bad)).To(Succeed())
		}

		By("admitting the object the message's fix leads to, without a word")
		Expect(c.Create(ctx, tc.fixed(ns))).To(Succeed())
		Expect(warnings.Take()).To(BeEmpty())
	}, talkedAroundEntries())

	It("lets Flux's own namespace use the controllers' identity", func(ctx SpecContext) {
		Expect(env.SetPolicy(ctx, `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
identities:
  - name: flux-controllers
    namespaces: [flux-system]
    serviceAccounts: [source-controller]
    aws: {roleARN: "arn:aws:iam::111122223333:role/flux"}
mandates:
  - name: everything
    namespaces: [flux-system]
`)).To(Succeed())
		ensureNamespace(ctx, "flux-system")
		c, warnings := warningClient()
		Expect(c.Create(ctx, &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Name: "platform-ecr", Namespace: "flux-system"},
			Spec: sourcev1.OCIRepositorySpec{URL: "oci://111122223333.dkr.ecr.eu-west-1.amazonaws.com/platform",
				Interval: interval(), Provider: "aws"}})).To(Succeed())
		Expect(warnings.Take()).To(BeEmpty())
	})

	It("refuses a mapped ServiceAccount that carries imagePullSecrets, so no source can fall back to them",
		func(ctx SpecContext) {
			Expect(env.SetPolicy(ctx, fmt.Sprintf(mandatePolicy, "enforce"))).To(Succeed())
			ns := freshNamespace(ctx, "mand-pull")
			c, _ := warningClient()
			const message = `admission webhook "serviceaccounts.fluxidentity.dev" denied the request: ` +
				"[tenants] imagePullSecrets on a mapped ServiceAccount win over its identity for OCI sources: " +
				"move them to the pods"

			withPullSecret := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "tenant-aws", Namespace: ns},
				ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}}}
			Expect(c.Create(ctx, withPullSecret)).To(MatchError(message))

			By("denying an update that adds one to the mapped ServiceAccount")
			sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "tenant-aws", Namespace: ns}}
			Expect(c.Create(ctx, sa)).To(Succeed())
			sa.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
			Expect(c.Update(ctx, sa)).To(MatchError(message))

			By("leaving unmapped ServiceAccounts alone: a source naming one is refused instead")
			Expect(c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder", Namespace: ns},
				ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}}})).To(Succeed())
			Expect(c.Create(ctx, &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
				Spec: sourcev1.OCIRepositorySpec{URL: "oci://111122223333.dkr.ecr.eu-west-1.amazonaws.com/app",
					Interval: interval(), Provider: "aws", ServiceAccountName: "builder"}})).To(MatchError(ContainSubstring(
				"[tenants] spec.serviceAccountName builder has no identity here: use tenant-aws")))
		})
})
