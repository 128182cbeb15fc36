package integration

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/serviceaccounts"
)

// fluxPolicy gives each Flux controller a different cloud and injection mode, so one installation exercises them all.
const fluxPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: flux-installation
identities:
  - name: source
    namespaces: [flux-system]
    serviceAccounts: [source-controller]
    aws:
      roleARN: arn:aws:iam::111122223333:role/flux-{serviceAccount}
      region: eu-west-1
    injection: full
  - name: kustomize
    namespaces: [flux-system]
    serviceAccounts: [kustomize-controller]
    aws:
      roleARN: arn:aws:iam::111122223333:role/kustomize
  - name: helm
    namespaces: [flux-system]
    serviceAccounts: [helm-controller]
    azure:
      clientID: 00000000-0000-0000-0000-000000000001
      tenantID: 00000000-0000-0000-0000-0000000000aa
  - name: images
    namespaces: [flux-system]
    serviceAccounts: [image-reflector-controller]
    azure:
      clientID: 00000000-0000-0000-0000-000000000002
      tenantID: 00000000-0000-0000-0000-0000000000aa
    injection: full
  - name: notify
    namespaces: [flux-system]
    serviceAccounts: [notification-controller]
    gcp:
      serviceAccount: flux-notify@my-project.iam.gserviceaccount.com
  - name: automation
    namespaces: [flux-system]
    serviceAccounts: [image-automation-controller]
    gcp:
      serviceAccount: flux-images@my-project.iam.gserviceaccount.com
      workloadIdentityProvider: projects/123456789/locations/global/workloadIdentityPools/flux-pool/providers/flux-prov
    injection: full
`

var fluxControllers = []string{"source-controller", "kustomize-controller", "helm-controller",
	"notification-controller", "image-reflector-controller", "image-automation-controller"}

func fluxDeployment(name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "flux-system",
			Labels: map[string]string{"app.kubernetes.io/part-of": "flux", "app.kubernetes.io/component": name}},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: name,
					Containers: []corev1.Container{{
						Name: "manager", Image: "ghcr.io/fluxcd/" + name, Args: []string{"--log-level=info"},
						Env: []corev1.EnvVar{{Name: "RUNTIME_NAMESPACE", Value: "flux-system"}},
					}},
				},
			},
		},
	}
}

// podFromTemplate creates a pod the way the ReplicaSet controller would (envtest runs no controllers).
func podFromTemplate(ctx context.Context, d *appsv1.Deployment) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: d.Name + "-", Namespace: d.Namespace,
			Labels: d.Spec.Template.Labels, Annotations: d.Spec.Template.Annotations},
		Spec: *d.Spec.Template.Spec.DeepCopy(),
	}
	Expect(env.Client.Create(ctx, pod)).To(Succeed())
	return pod
}

func envOf(c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, e := range c.Env {
		out[e.Name] = e.Value
	}
	return out
}

var _ = Describe("Mutating a Flux installation through the API server", Ordered, func() {
	var p *policy.Policy

	BeforeAll(func(ctx SpecContext) {
		Expect(env.SetPolicy(ctx, fluxPolicy)).To(Succeed())
		var err error
		p, err = policy.Parse("flux", []byte(fluxPolicy), time.Now())
		Expect(err).NotTo(HaveOccurred())
		ensureNamespace(ctx, "flux-system")
		for _, name := range fluxControllers {
			sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "flux-system"}}
			Expect(client.IgnoreAlreadyExists(env.Client.Delete(ctx, sa))).To(Or(Succeed(), MatchError(ContainSubstring("not found"))))
			Expect(env.Client.Create(ctx, sa)).To(Succeed())
		}
	})

	It("stores every controller ServiceAccount with exactly its identity's annotations", func(ctx SpecContext) {
		for _, name := range fluxControllers {
			var sa corev1.ServiceAccount
			Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: "flux-system", Name: name}, &sa)).To(Succeed())
			m, ok := p.IdentityFor("flux-system", name)
			Expect(ok).To(BeTrue())
			annotations, labels := serviceaccounts.Metadata(m)
			Expect(sa.Annotations).To(Equal(annotations), name)
			for k, v := range labels {
				Expect(sa.Labels).To(HaveKeyWithValue(k, v), name)
			}
		}
		var src corev1.ServiceAccount
		Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: "flux-system", Name: "source-controller"}, &src)).To(Succeed())
		Expect(src.Annotations).To(HaveKeyWithValue(keys.AnnotationAWSRoleARN,
			"arn:aws:iam::111122223333:role/flux-source-controller"))
	})

	It("puts a stripped annotation back and replaces a spoofed one on the same update", func(ctx SpecContext) {
		var sa corev1.ServiceAccount
		key := client.ObjectKey{Namespace: "flux-system", Name: "kustomize-controller"}
		Expect(env.Client.Get(ctx, key, &sa)).To(Succeed())
		delete(sa.Annotations, keys.AnnotationAWSRoleARN)
		Expect(env.Client.Update(ctx, &sa)).To(Succeed())
		Expect(sa.Annotations).To(HaveKeyWithValue(keys.AnnotationAWSRoleARN, "arn:aws:iam::111122223333:role/kustomize"))

		sa.Annotations[keys.AnnotationAWSRoleARN] = "arn:aws:iam::999999999999:role/admin"
		Expect(env.Client.Update(ctx, &sa)).To(Succeed())
		Expect(env.Client.Get(ctx, key, &sa)).To(Succeed())
		Expect(sa.Annotations).To(HaveKeyWithValue(keys.AnnotationAWSRoleARN, "arn:aws:iam::111122223333:role/kustomize"))
	})

	It("denies an unmapped ServiceAccount that claims an identity, with the exact message", func(ctx SpecContext) {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "intruder", Namespace: "flux-system",
			Annotations: map[string]string{keys.AnnotationAWSRoleARN: "arn:aws:iam::111122223333:role/kustomize"}}}
		err := env.Client.Create(ctx, sa)
		Expect(err).To(MatchError(ContainSubstring(
			"[ownership] annotation eks.amazonaws.com/role-arn is reserved: remove it (no identity maps flux-system/intruder)")))
	})

	It("answers a dry-run request with the same patch", func(ctx SpecContext) {
		Expect(env.Client.Delete(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
			Name: "helm-controller", Namespace: "flux-system"}})).To(Succeed())
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "helm-controller", Namespace: "flux-system"}}
		Expect(env.Client.Create(ctx, sa, client.DryRunAll)).To(Succeed())
		Expect(sa.Annotations).To(HaveKeyWithValue(keys.AnnotationAzureClientID, "00000000-0000-0000-0000-000000000001"))
		Expect(sa.Labels).To(HaveKeyWithValue(keys.LabelAzureUse, "true"))
		Expect(env.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
			Name: "helm-controller", Namespace: "flux-system"}})).To(Succeed())
	})

	It("labels the Azure controller's pod template and its pods", func(ctx SpecContext) {
		d := fluxDeployment("helm-controller")
		Expect(env.Client.Create(ctx, d)).To(Succeed())
		Expect(d.Spec.Template.Labels).To(HaveKeyWithValue(keys.LabelAzureUse, "true"))
		Expect(d.Spec.Selector.MatchLabels).NotTo(HaveKey(keys.LabelAzureUse))
		pod := podFromTemplate(ctx, d)
		Expect(pod.Labels).To(HaveKeyWithValue(keys.LabelAzureUse, "true"))
		Expect(pod.Annotations).To(HaveKeyWithValue(keys.AnnotationIdentity, "helm"))
	})

	It("injects AWS IRSA fully into source-controller pods and keeps everything else", func(ctx SpecContext) {
		d := fluxDeployment("source-controller")
		Expect(env.Client.Create(ctx, d)).To(Succeed())
		Expect(d.Spec.Template.Labels).NotTo(HaveKey(keys.LabelAzureUse))
		pod := podFromTemplate(ctx, d)
		var stored corev1.Pod
		Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(pod), &stored)).To(Succeed())
		c := stored.Spec.Containers[0]
		Expect(envOf(c)).To(Equal(map[string]string{
			"RUNTIME_NAMESPACE":           "flux-system",
			"AWS_ROLE_ARN":                "arn:aws:iam::111122223333:role/flux-source-controller",
			"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
			"AWS_REGION":                  "eu-west-1",
			"AWS_DEFAULT_REGION":          "eu-west-1",
		}))
		Expect(c.Args).To(Equal([]string{"--log-level=info"}))
		Expect(c.VolumeMounts).To(ContainElement(corev1.VolumeMount{Name: "aws-iam-token",
			MountPath: "/var/run/secrets/eks.amazonaws.com/serviceaccount", ReadOnly: true}))
		var token *corev1.Volume
		for i := range stored.Spec.Volumes {
			if stored.Spec.Volumes[i].Name == "aws-iam-token" {
				token = &stored.Spec.Volumes[i]
			}
		}
		Expect(token).NotTo(BeNil())
		sat := token.Projected.Sources[0].ServiceAccountToken
		Expect(sat.Audience).To(Equal("sts.amazonaws.com"))
		Expect(*sat.ExpirationSeconds).To(BeEquivalentTo(86400))
		Expect(sat.Path).To(Equal("token"))
	})

	It("delivers the GCP credential configuration to image-automation-controller pods through the downward API", func(ctx SpecContext) {
		pod := podFromTemplate(ctx, fluxDeployment("image-automation-controller"))
		Expect(pod.Annotations).To(HaveKey(keys.AnnotationGCPCredentialConfig))
		Expect(pod.Annotations[keys.AnnotationGCPCredentialConfig]).To(ContainSubstring(
			`"audience":"//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/flux-pool/providers/flux-prov"`))
		Expect(envOf(pod.Spec.Containers[0])).To(HaveKeyWithValue("GOOGLE_APPLICATION_CREDENTIALS",
			"/var/run/secrets/fluxidentity.dev/gcp/credential-configuration.json"))
	})

	It("injects Azure fully into image-reflector-controller pods without the label the Azure webhook selects on", func(ctx SpecContext) {
		pod := podFromTemplate(ctx, fluxDeployment("image-reflector-controller"))
		Expect(pod.Labels).NotTo(HaveKey(keys.LabelAzureUse))
		Expect(envOf(pod.Spec.Containers[0])).To(HaveKeyWithValue("AZURE_FEDERATED_TOKEN_FILE",
			"/var/run/secrets/azure/wi/token/azure-identity-token"))
	})

	It("leaves pods of unmapped ServiceAccounts exactly as sent", func(ctx SpecContext) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "other-", Namespace: "flux-system"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
		}
		Expect(env.Client.Create(ctx, pod)).To(Succeed())
		Expect(pod.Annotations).To(BeEmpty())
		Expect(pod.Spec.Containers[0].Env).To(BeEmpty())
	})
})
