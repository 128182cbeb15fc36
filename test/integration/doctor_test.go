package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxidentity/flux-identity-webhook/cmd/flux-identity-webhook/app"
)

// The doctor specs seed installations in namespaces the served policy does not name (doctor-*), so the webhook
// leaves every object exactly as written, broken ones included; doctor gets its own policy file mapping them. The
// objects a kube-controller-manager would create (ReplicaSets, pods) are created by hand with their owner references,
// since envtest runs no controllers.

const doctorClientID = "00000000-0000-0000-0000-000000000001"

func doctorPolicy(namespace string, extra string) string {
	return `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: doctor
flux:
  namespaces: [doctor-no-flux] # Flux's controllers of other specs (flux-system) are not these specs' business
identities:
  - name: controllers
    namespaces: [` + namespace + `]
    serviceAccounts: [source-controller` + extra + `]
    aws:
      roleARN: arn:aws:iam::111122223333:role/flux-{namespace}
  - name: image-automation
    namespaces: [` + namespace + `]
    serviceAccounts: [image-automation-controller]
    azure:
      clientID: ` + doctorClientID + `
      tenantID: 00000000-0000-0000-0000-0000000000aa
mandates:
  - name: no-static-git-credentials
    namespaces: [` + namespace + `]
    kinds: [GitRepository]
`
}

// runDoctor runs the real command against the envtest API server and decodes its JSON report.
func runDoctor(ctx SpecContext, policyContent string) (int, []map[string]string, string) {
	dir := GinkgoT().TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	Expect(os.WriteFile(kubeconfig, env.KubeConfig, 0o600)).To(Succeed())
	policyPath := filepath.Join(dir, "policy.yaml")
	Expect(os.WriteFile(policyPath, []byte(policyContent), 0o600)).To(Succeed())
	var stdout, stderr bytes.Buffer
	code := app.Execute(ctx, []string{"doctor", "--kubeconfig", kubeconfig, "--policy", policyPath, "-o", "json"},
		&stdout, &stderr)
	var report struct {
		Findings []map[string]string `json:"findings"`
	}
	Expect(json.Unmarshal(stdout.Bytes(), &report)).To(Succeed(), "stdout: %s\nstderr: %s", stdout.String(), stderr.String())
	return code, report.Findings, stderr.String()
}

func awsAnnotations(namespace string) map[string]string {
	return map[string]string{
		"fluxidentity.dev/identity":  "controllers",
		"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/flux-" + namespace,
	}
}

func azureServiceAccount(namespace string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
		Name: "image-automation-controller", Namespace: namespace,
		Labels: map[string]string{"azure.workload.identity/use": "true"},
		Annotations: map[string]string{
			"fluxidentity.dev/identity":         "image-automation",
			"azure.workload.identity/client-id": doctorClientID,
			"azure.workload.identity/tenant-id": "00000000-0000-0000-0000-0000000000aa",
		},
	}}
}

func deployment(namespace, name, serviceAccount string, labels map[string]string) *appsv1.Deployment {
	selector := map[string]string{"app": name}
	podLabels := map[string]string{"app": name}
	for k, v := range labels {
		podLabels[k] = v
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{ServiceAccountName: serviceAccount,
					Containers: []corev1.Container{{Name: "manager", Image: "ghcr.io/fluxcd/" + name}}},
			},
		},
	}
}

// replicaSetPods creates the ReplicaSet of a Deployment and n pods it owns, with the env the cloud webhook injected
// (nil: nothing injected).
func replicaSetPods(ctx SpecContext, d *appsv1.Deployment, n int, injected []corev1.EnvVar) {
	isController := true
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: d.Name + "-5d8f7", Namespace: d.Namespace,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name,
				UID: d.UID, Controller: &isController}}},
		Spec: appsv1.ReplicaSetSpec{Selector: d.Spec.Selector, Template: d.Spec.Template},
	}
	Expect(env.Client.Create(ctx, rs)).To(Succeed())
	for i := range n {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: rs.Name + "-" + string(rune('a'+i)), Namespace: d.Namespace,
				Labels: d.Spec.Template.Labels,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name,
					UID: rs.UID, Controller: &isController}}},
			Spec: *d.Spec.Template.Spec.DeepCopy(),
		}
		pod.Spec.Containers[0].Env = injected
		Expect(env.Client.Create(ctx, pod)).To(Succeed())
	}
}

func awsEnv(namespace string) []corev1.EnvVar {
	return []corev1.EnvVar{
		{Name: "AWS_ROLE_ARN", Value: "arn:aws:iam::111122223333:role/flux-" + namespace},
		{Name: "AWS_WEB_IDENTITY_TOKEN_FILE", Value: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"},
	}
}

var _ = Describe("doctor against a live API server", func() {
	It("finds every class of broken installation and prints the fix for each", func(ctx SpecContext) {
		const ns = "doctor-broken"
		ensureNamespace(ctx, ns)

		By("creating source-controller's ServiceAccount bare, starting its pods, and only then annotating it")
		source := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "source-controller", Namespace: ns}}
		Expect(env.Client.Create(ctx, source)).To(Succeed())
		sourceDeployment := deployment(ns, "source-controller", "source-controller", nil)
		Expect(env.Client.Create(ctx, sourceDeployment)).To(Succeed())
		replicaSetPods(ctx, sourceDeployment, 2, nil)
		source.Annotations = awsAnnotations(ns)
		Expect(env.Client.Update(ctx, source)).To(Succeed())
		By("and one pod of it that the cloud webhook did inject, which is fine")
		injected := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "source-controller-injected", Namespace: ns},
			Spec: corev1.PodSpec{ServiceAccountName: "source-controller", Containers: []corev1.Container{
				{Name: "manager", Image: "ghcr.io/fluxcd/source-controller", Env: awsEnv(ns)}}},
		}
		Expect(env.Client.Create(ctx, injected)).To(Succeed())

		By("leaving kustomize-controller's ServiceAccount without any annotation")
		Expect(env.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
			Name: "kustomize-controller", Namespace: ns}})).To(Succeed())

		By("giving helm-controller's ServiceAccount another role and an Azure key, and a pod running with that role")
		Expect(env.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
			Name: "helm-controller", Namespace: ns, Annotations: map[string]string{
				"fluxidentity.dev/identity":         "controllers",
				"eks.amazonaws.com/role-arn":        "arn:aws:iam::111122223333:role/old",
				"azure.workload.identity/client-id": doctorClientID,
			}}})).To(Succeed())
		Expect(env.Client.Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "helm-controller-x", Namespace: ns},
			Spec: corev1.PodSpec{ServiceAccountName: "helm-controller", Containers: []corev1.Container{
				{Name: "manager", Image: "ghcr.io/fluxcd/helm-controller", Env: []corev1.EnvVar{
					{Name: "AWS_ROLE_ARN", Value: "arn:aws:iam::111122223333:role/old"},
					{Name: "AWS_WEB_IDENTITY_TOKEN_FILE", Value: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"},
				}}}},
		})).To(Succeed())

		By("mapping notification-controller, which does not exist")
		By("running the Azure-mapped image-automation-controller from a template without the Azure label")
		Expect(env.Client.Create(ctx, azureServiceAccount(ns))).To(Succeed())
		Expect(env.Client.Create(ctx, deployment(ns, "image-automation-controller", "image-automation-controller", nil))).To(Succeed())
		By("and an AWS-mapped Deployment without it, which does not need it")
		Expect(env.Client.Create(ctx, deployment(ns, "kustomize-controller", "kustomize-controller", nil))).To(Succeed())

		By("keeping a Git credential on a GitRepository where the doctor's policy mandates identity")
		Expect(env.Client.Create(ctx, &sourcev1.GitRepository{
			ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
			Spec: sourcev1.GitRepositorySpec{URL: "https://github.com/stefanprodan/podinfo",
				Interval: metav1.Duration{Duration: time.Minute}, SecretRef: &meta.LocalObjectReference{Name: "git-creds"}},
		})).To(Succeed())

		code, findings, stderr := runDoctor(ctx, doctorPolicy(ns, ", kustomize-controller, helm-controller, notification-controller"))
		Expect(code).To(Equal(1), stderr)
		Expect(stderr).To(ContainSubstring("7 problems found"))

		type key struct{ check, name string }
		got := map[key]map[string]string{}
		for _, f := range findings {
			Expect(f["namespace"]).To(Equal(ns))
			got[key{f["check"], f["name"]}] = f
		}
		Expect(got).To(HaveLen(7), "findings: %v", findings)

		f := got[key{"serviceaccount", "kustomize-controller"}]
		Expect(f["problem"]).To(And(ContainSubstring("annotation eks.amazonaws.com/role-arn is missing"),
			ContainSubstring("annotation fluxidentity.dev/identity is missing")))
		Expect(f["fix"]).To(Equal("kubectl -n doctor-broken annotate serviceaccount kustomize-controller --overwrite " +
			"'eks.amazonaws.com/role-arn=arn:aws:iam::111122223333:role/flux-doctor-broken' 'fluxidentity.dev/identity=controllers'"))

		f = got[key{"serviceaccount", "helm-controller"}]
		Expect(f["problem"]).To(And(
			ContainSubstring(`annotation eks.amazonaws.com/role-arn is "arn:aws:iam::111122223333:role/old", want "arn:aws:iam::111122223333:role/flux-doctor-broken"`),
			ContainSubstring("annotation azure.workload.identity/client-id is set but the policy does not grant it")))
		Expect(f["fix"]).To(ContainSubstring("'azure.workload.identity/client-id-'"))

		f = got[key{"serviceaccount", "notification-controller"}]
		Expect(f["problem"]).To(Equal("mapped by the policy but does not exist"))

		f = got[key{"pod", "source-controller-5d8f7-a"}]
		Expect(f["problem"]).To(HavePrefix("pods of deployment/source-controller run without AWS_ROLE_ARN in container manager"))
		Expect(f["fix"]).To(Equal("kubectl -n doctor-broken rollout restart deployment/source-controller"))

		f = got[key{"pod", "helm-controller-x"}]
		Expect(f["problem"]).To(ContainSubstring(`runs with AWS_ROLE_ARN="arn:aws:iam::111122223333:role/old" in container manager, want arn:aws:iam::111122223333:role/flux-doctor-broken`))
		Expect(f["fix"]).To(HavePrefix("kubectl -n doctor-broken delete pod helm-controller-x"))

		f = got[key{"deployment", "image-automation-controller"}]
		Expect(f["problem"]).To(ContainSubstring(`lacks label azure.workload.identity/use: "true"`))
		Expect(f["fix"]).To(ContainSubstring(`kubectl -n doctor-broken patch deployment image-automation-controller --type merge`))

		f = got[key{"audit", "GitRepository/podinfo"}]
		Expect(f["problem"]).To(Equal("spec.secretRef violates mandate no-static-git-credentials (enforce)"))
		Expect(f["fix"]).To(And(ContainSubstring("no-static-git-credentials"), ContainSubstring("spec.secretRef")))
	})

	It("reports nothing and exits 0 on a healthy installation", func(ctx SpecContext) {
		const ns = "doctor-healthy"
		ensureNamespace(ctx, ns)
		source := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "source-controller", Namespace: ns,
			Annotations: awsAnnotations(ns)}}
		Expect(env.Client.Create(ctx, source)).To(Succeed())
		d := deployment(ns, "source-controller", "source-controller", nil)
		Expect(env.Client.Create(ctx, d)).To(Succeed())
		replicaSetPods(ctx, d, 1, awsEnv(ns))
		Expect(env.Client.Create(ctx, azureServiceAccount(ns))).To(Succeed())
		azure := deployment(ns, "image-automation-controller", "image-automation-controller",
			map[string]string{"azure.workload.identity/use": "true"})
		Expect(env.Client.Create(ctx, azure)).To(Succeed())
		replicaSetPods(ctx, azure, 1, []corev1.EnvVar{
			{Name: "AZURE_CLIENT_ID", Value: doctorClientID},
			{Name: "AZURE_FEDERATED_TOKEN_FILE", Value: "/var/run/secrets/azure/wi/token/azure-identity-token"},
		})
		By("ignoring a finished pod that ran before the ServiceAccount was annotated")
		done := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "finished", Namespace: ns},
			Spec: corev1.PodSpec{ServiceAccountName: "source-controller", RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: "job", Image: "busybox"}}}}
		Expect(env.Client.Create(ctx, done)).To(Succeed())
		done.Status.Phase = corev1.PodSucceeded
		Expect(env.Client.Status().Update(ctx, done)).To(Succeed())

		By("and a public GitRepository, which needs no credential")
		Expect(env.Client.Create(ctx, &sourcev1.GitRepository{
			ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
			Spec: sourcev1.GitRepositorySpec{URL: "https://github.com/stefanprodan/podinfo",
				Interval: metav1.Duration{Duration: time.Minute}},
		})).To(Succeed())

		code, findings, stderr := runDoctor(ctx, doctorPolicy(ns, ""))
		Expect(findings).To(BeEmpty())
		Expect(code).To(Equal(0), stderr)
	})

	It("fails with exit code 2 when the cluster cannot be reached", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		policyPath := filepath.Join(dir, "policy.yaml")
		Expect(os.WriteFile(policyPath, []byte(doctorPolicy("doctor-x", "")), 0o600)).To(Succeed())
		var stdout, stderr bytes.Buffer
		code := app.Execute(ctx, []string{"doctor", "--kubeconfig", filepath.Join(dir, "absent"), "--policy", policyPath},
			&stdout, &stderr)
		Expect(code).To(Equal(2))
		Expect(stderr.String()).To(ContainSubstring("load kubeconfig"))
	})
})
