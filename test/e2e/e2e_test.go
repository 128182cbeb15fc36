package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/test/promql"
)

const (
	release   = "flux-identity-webhook"
	releaseNS = "flux-identity-system"
	// The chart's fullname for this release; the Service the API server calls is <fullname>.<namespace>.svc.
	fullname = release

	sourceRole = "arn:aws:iam::111122223333:role/flux-source-controller"
)

// The policy installed first: Flux's source-controller with full AWS injection (no EKS webhook in this cluster),
// kustomize-controller on Azure Workload Identity (the Azure webhook does the injecting), tenants on AWS by
// namespace, and a mandate against static Git credentials in Flux's and the tenants' namespaces.
const policyV1 = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: e2e
identities:
  - name: source-controller
    namespaces: [flux-system]
    serviceAccounts: [source-controller]
    aws:
      roleARN: ` + sourceRole + `
      region: eu-west-1
    injection: full
  - name: kustomize-controller
    namespaces: [flux-system]
    serviceAccounts: [kustomize-controller]
    azure:
      clientID: 00000000-0000-0000-0000-000000000001
      tenantID: 00000000-0000-0000-0000-0000000000aa
  - name: tenants
    namespaces: ["team-*"]
    serviceAccounts: ["flux-*"]
    aws:
      roleARN: arn:aws:iam::111122223333:role/tenant-{namespace}
mandates:
  - name: no-static-git-credentials
    namespaces: [flux-system, "team-*"]
    mode: enforce
`

// policyV2 adds the payments namespace (through helm upgrade); policyV3 the ledger namespace (edited outside Helm).
var (
	policyV2 = withIdentity(policyV1, "payments")
	policyV3 = withIdentity(policyV2, "ledger")
)

// withIdentity adds an identity for the flux-* ServiceAccounts of namespace, with a role named after it.
func withIdentity(policy, namespace string) string {
	return strings.Replace(policy, "mandates:\n", fmt.Sprintf(`  - name: %[1]s
    namespaces: [%[1]s]
    serviceAccounts: ["flux-*"]
    aws:
      roleARN: arn:aws:iam::111122223333:role/%[1]s
mandates:
`, namespace), 1)
}

func TestEndToEnd(t *testing.T) {
	RegisterFailHandler(Fail)
	// No wait is open-ended: every Eventually gives up after 30 s unless it says otherwise, context or not.
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	EnforceDefaultTimeoutsWhenUsingContexts()
	RunSpecs(t, "flux-identity-webhook installed with helm on kube-apiserver and kube-controller-manager")
}

// specTimeout bounds each spec; the outage spec has its own.
var specTimeout = NodeTimeout(2 * time.Minute)

var (
	p       paths
	c       *cluster
	img     *builtImage
	webhook *pod
	workdir string
	started time.Time
	// apiServerClient is the client certificate kube-apiserver presents to the release's Service.
	apiServerClient *clientIdentity
)

var _ = BeforeSuite(func(ctx SpecContext) {
	started = time.Now()
	var err error
	p, err = inputs()
	Expect(err).NotTo(HaveOccurred())
	// World-readable, so the replica (running as the image's user) can reach its volumes and binary.
	workdir, err = os.MkdirTemp("", "fiw-e2e-")
	Expect(err).NotTo(HaveOccurred())
	Expect(os.Chmod(workdir, 0o755)).To(Succeed())
	DeferCleanup(func() { _ = os.RemoveAll(workdir) })
	img, err = loadImage(p, workdir)
	Expect(err).NotTo(HaveOccurred())
	apiServerClient, err = newClientIdentity("kube-apiserver")
	Expect(err).NotTo(HaveOccurred())
	admissionConfig, err := writeAdmissionConfiguration(workdir, apiServerClient)
	Expect(err).NotTo(HaveOccurred())
	c, err = startCluster(ctx, p, workdir, admissionConfig)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) {
		if webhook != nil { // a spec failed while it ran
			_, _ = webhook.stop(ctx)
		}
		Expect(c.stop()).To(Succeed())
		GinkgoWriter.Printf("suite wall time %s\n", time.Since(started).Round(time.Millisecond))
	}, NodeTimeout(time.Minute))
	GinkgoWriter.Printf("control plane up after %s\n", time.Since(started).Round(time.Millisecond))
}, NodeTimeout(3*time.Minute))

// writePolicy writes a policy to a file for --set-file.
func writePolicy(name, content string) string {
	GinkgoHelper()
	f := filepath.Join(workdir, name)
	Expect(os.WriteFile(f, []byte(content), 0o600)).To(Succeed())
	return f
}

func install(ctx context.Context, policyFile string, extra ...string) string {
	GinkgoHelper()
	args := append([]string{"install", release, filepath.Join(p.root, "charts", "flux-identity-webhook"),
		"--namespace", releaseNS, "--create-namespace",
		"--set", "tls.certManager.enabled=false", "--set-file", "policy=" + policyFile,
		// The monitoring objects too: the API server validates them against the Prometheus operator's CRDs.
		"--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.prometheusRule.enabled=true",
		"--set", "metrics.grafanaDashboard.enabled=true"}, extra...)
	out, err := c.helm(ctx, args...)
	Expect(err).NotTo(HaveOccurred())
	return out
}

func startWebhook(ctx context.Context) {
	GinkgoHelper()
	var err error
	webhook, err = startPod(ctx, c, img, releaseNS, fullname, filepath.Join(workdir, fmt.Sprintf("pod-%d", time.Now().UnixNano())))
	Expect(err).NotTo(HaveOccurred())
}

func stopWebhook(ctx context.Context) {
	GinkgoHelper()
	code, err := webhook.stop(ctx)
	Expect(err).NotTo(HaveOccurred())
	Expect(code).To(BeZero(), "the server exits 0 on SIGTERM")
	webhook = nil
}

func decisions(ctx context.Context, path string) float64 {
	GinkgoHelper()
	v, err := metricValue(ctx, "fluxidentity_admission_decisions_total", map[string]string{"webhook": path})
	Expect(err).NotTo(HaveOccurred())
	return v
}

func allDecisions(ctx context.Context) float64 {
	GinkgoHelper()
	v, err := metricValue(ctx, "fluxidentity_admission_decisions_total", nil)
	Expect(err).NotTo(HaveOccurred())
	return v
}

func createServiceAccount(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: objectMeta(namespace, name)}
	return sa, c.client.Create(ctx, sa)
}

func gitRepository(namespace, name string, secret bool) *sourcev1.GitRepository {
	g := &sourcev1.GitRepository{
		ObjectMeta: objectMeta(namespace, name),
		Spec: sourcev1.GitRepositorySpec{
			URL:      "https://github.com/stefanprodan/podinfo",
			Interval: metav1.Duration{Duration: time.Minute},
		},
	}
	if secret {
		g.Spec.SecretRef = &meta.LocalObjectReference{Name: "git-credentials"}
	}
	return g
}

// webhookConfigurations returns every caBundle of the release's webhook configurations, by webhook name, and the
// configurations' policy digest annotations.
func webhookConfigurations(ctx context.Context) (caBundles map[string][]byte, digests []string) {
	GinkgoHelper()
	caBundles = map[string][]byte{}
	sel := client.MatchingLabels{"app.kubernetes.io/instance": release}
	var m admissionv1.MutatingWebhookConfigurationList
	Expect(c.client.List(ctx, &m, sel)).To(Succeed())
	var v admissionv1.ValidatingWebhookConfigurationList
	Expect(c.client.List(ctx, &v, sel)).To(Succeed())
	for _, cfg := range m.Items {
		digests = append(digests, cfg.Annotations["fluxidentity.dev/policy-sha256"])
		for _, w := range cfg.Webhooks {
			caBundles[cfg.Name+"/"+w.Name] = w.ClientConfig.CABundle
		}
	}
	for _, cfg := range v.Items {
		digests = append(digests, cfg.Annotations["fluxidentity.dev/policy-sha256"])
		for _, w := range cfg.Webhooks {
			caBundles[cfg.Name+"/"+w.Name] = w.ClientConfig.CABundle
		}
	}
	return caBundles, digests
}

func tlsSecret(ctx context.Context) map[string][]byte {
	GinkgoHelper()
	var s corev1.Secret
	Expect(c.client.Get(ctx, client.ObjectKey{Namespace: releaseNS, Name: fullname + "-tls"}, &s)).To(Succeed())
	return s.Data
}

func policyConfigMap(ctx context.Context) *corev1.ConfigMap {
	GinkgoHelper()
	var cm corev1.ConfigMap
	Expect(c.client.Get(ctx, client.ObjectKey{Namespace: releaseNS, Name: fullname + "-policy"}, &cm)).To(Succeed())
	return &cm
}

// eventuallyPods waits until the Deployment has a pod that passes check, created by the controllers.
func eventuallyPod(ctx context.Context, d *appsv1.Deployment, check func(corev1.Pod) bool) corev1.Pod {
	GinkgoHelper()
	var found corev1.Pod
	Eventually(func(g Gomega) {
		pods, err := podsOf(ctx, c, d)
		g.Expect(err).NotTo(HaveOccurred())
		i := slices.IndexFunc(pods, func(p corev1.Pod) bool { return p.DeletionTimestamp == nil && check(p) })
		g.Expect(i).To(BeNumerically(">=", 0), "no pod of %s/%s yet", d.Namespace, d.Name)
		found = pods[i]
	}).WithContext(ctx).WithTimeout(time.Minute).WithPolling(100 * time.Millisecond).Should(Succeed())
	return found
}

var _ = Describe("Installed with helm, run from the image, reached through the Service", Ordered, func() {
	var (
		source, kustomize *appsv1.Deployment
		firstCA           []byte
	)

	It("installs the chart unmodified, with the certificates it generates, and the controllers roll out its Deployment", func(ctx SpecContext) {
		notes := install(ctx, writePolicy("policy-v1.yaml", policyV1))
		Expect(notes).To(ContainSubstring("only the namespaces the policy names are sent to the webhook"),
			"the NOTES say how the policy and the webhooks' conditions change together")
		var d appsv1.Deployment
		Expect(c.client.Get(ctx, client.ObjectKey{Namespace: releaseNS, Name: fullname}, &d)).To(Succeed())
		// kube-controller-manager turns the chart's Deployment into a ReplicaSet and two pods the API server
		// admitted as they are (the release namespace is never intercepted; nothing schedules them here).
		pods := func(g Gomega) []corev1.Pod {
			ps, err := podsOf(ctx, c, &d)
			g.Expect(err).NotTo(HaveOccurred())
			return ps
		}
		Eventually(func(g Gomega) { g.Expect(pods(g)).To(HaveLen(2)) }).WithContext(ctx).Should(Succeed())
		for _, pod := range pods(Default) {
			Expect(pod.OwnerReferences).To(ContainElement(HaveField("Kind", "ReplicaSet")))
			Expect(*pod.Spec.SecurityContext.RunAsUser).To(BeEquivalentTo(65532))
			Expect(pod.Spec.AutomountServiceAccountToken).To(HaveValue(BeFalse()))
		}
		firstCA = tlsSecret(ctx)["ca.crt"]
		Expect(firstCA).NotTo(BeEmpty())
		bundles, _ := webhookConfigurations(ctx)
		// Every registration but the Deployments webhook, which is off unless values turn it on (this policy maps
		// Azure identities, so pods-full-injection is among them).
		var want []string
		for _, w := range routes.Webhooks {
			if w.Name != routes.WebhookDeployments {
				want = append(want, w.Name)
			}
		}
		var got []string
		for key := range bundles {
			_, name, _ := strings.Cut(key, "/")
			got = append(got, name)
		}
		Expect(got).To(ConsistOf(want))
		for name, b := range bundles {
			Expect(b).To(Equal(firstCA), "%s trusts the chart's generated CA", name)
		}
	}, specTimeout)

	It("runs the image's binary as the chart's pod would: its args, user, certificate Secret and policy ConfigMap", func(ctx SpecContext) {
		startWebhook(ctx)
		// The process runs as the image's and the chart's non-root user, with the chart's arguments.
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", webhook.proc.cmd.Process.Pid))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(status)).To(MatchRegexp(`(?m)^Uid:\s+65532\s`))
		Expect(webhook.args).To(ContainElements("serve", "--mode=enforce", "--port=9443"))
		Expect(webhook.args).To(ContainElement(HavePrefix("--policy=" + webhook.mounts["/etc/flux-identity-webhook"])))
		// It announces the build the image was stamped with, in its log and as a metric.
		Expect(webhook.proc.out.String()).To(ContainSubstring(`"version":"` + img.version + `"`))
		Expect(metricValue(ctx, "fluxidentity_build_info", map[string]string{"version": img.version, "commit": img.commit})).
			To(BeEquivalentTo(1))
		// It serves the chart's certificate, which the webhook configurations' caBundle verifies for the Service name.
		bundles, _ := webhookConfigurations(ctx)
		cert, err := tlsDial(bundles[fullname+"/serviceaccounts.fluxidentity.dev"], fullname+"."+releaseNS+".svc")
		Expect(err).NotTo(HaveOccurred())
		Expect(cert.DNSNames).To(ContainElement(fullname + "." + releaseNS + ".svc"))
	}, specTimeout)

	It("gives Flux's own controllers their identity: the pods kube-controller-manager creates from Flux's manifests", func(ctx SpecContext) {
		before := decisions(ctx, "/mutate-v1-pod")
		Expect(c.ensureNamespace(ctx, "flux-system")).To(Succeed())
		for _, name := range []string{"source-controller", "kustomize-controller"} {
			sa, err := createServiceAccount(ctx, "flux-system", name)
			Expect(err).NotTo(HaveOccurred())
			Expect(sa.Annotations).To(HaveKeyWithValue(keys.AnnotationIdentity, name), "the ServiceAccount webhook mapped %s", name)
		}
		var err error
		source, err = fluxDeployment(p, "source-controller")
		Expect(err).NotTo(HaveOccurred())
		kustomize, err = fluxDeployment(p, "kustomize-controller")
		Expect(err).NotTo(HaveOccurred())
		Expect(source.Spec.Template.Spec.Containers[0].Image).To(HavePrefix("fluxcd/source-controller:v"))
		Expect(c.client.Create(ctx, source)).To(Succeed())
		Expect(c.client.Create(ctx, kustomize)).To(Succeed())

		pod := eventuallyPod(ctx, source, func(corev1.Pod) bool { return true })
		Expect(pod.OwnerReferences).To(ContainElement(HaveField("Kind", "ReplicaSet")), "created by kube-controller-manager")
		Expect(pod.Annotations).To(HaveKeyWithValue(keys.AnnotationIdentity, "source-controller"))
		manager := pod.Spec.Containers[0]
		Expect(envValue(manager, keys.EnvAWSRoleARN)).To(Equal(sourceRole))
		Expect(envValue(manager, keys.EnvAWSRegion)).To(Equal("eu-west-1"))
		Expect(envValue(manager, keys.EnvAWSWebIdentityTokenFile)).To(Equal(keys.AWSTokenMountPath + "/" + keys.AWSTokenPath))
		Expect(manager.VolumeMounts).To(ContainElement(HaveField("MountPath", keys.AWSTokenMountPath)))
		Expect(pod.Spec.Volumes).To(ContainElement(HaveField("Name", keys.AWSTokenVolume)))
		// Flux's own settings survive the patch.
		Expect(manager.Args).To(ContainElement("--watch-all-namespaces"))
		Expect(envValue(manager, "TUF_ROOT")).To(Equal("/tmp/.sigstore"))

		pod = eventuallyPod(ctx, kustomize, func(corev1.Pod) bool { return true })
		Expect(pod.Annotations).To(HaveKeyWithValue(keys.AnnotationIdentity, "kustomize-controller"))
		Expect(pod.Labels).To(HaveKeyWithValue(keys.LabelAzureUse, "true"), "the Azure webhook selects the pod by this label")

		Expect(decisions(ctx, "/mutate-v1-pod")-before).To(BeNumerically(">=", 2),
			"the pods were admitted by the webhook process, through the Service")
	}, specTimeout)

	It("denies Flux sources with a secretRef through the chart's own webhook configuration", func(ctx SpecContext) {
		Expect(c.ensureNamespace(ctx, "team-a")).To(Succeed())
		err := c.client.Create(ctx, gitRepository("team-a", "app", true))
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring(`admission webhook "flux-sources.fluxidentity.dev" denied the request`))
		Expect(err.Error()).To(ContainSubstring("[no-static-git-credentials] spec.secretRef"))
		Expect(c.client.Create(ctx, gitRepository("team-a", "app", false))).To(Succeed())
		sa, err := createServiceAccount(ctx, "team-a", "flux-source")
		Expect(err).NotTo(HaveOccurred())
		Expect(sa.Annotations).To(HaveKeyWithValue(keys.AnnotationAWSRoleARN, "arn:aws:iam::111122223333:role/tenant-team-a"))
	}, specTimeout)

	It("never sends the webhook a request from a namespace the policy does not name", func(ctx SpecContext) {
		Expect(c.ensureNamespace(ctx, "apps")).To(Succeed())
		// The earlier specs' namespaces get their default ServiceAccounts asynchronously, through the webhook.
		Expect(c.settle(ctx, "flux-system", "team-a", "apps")).To(Succeed())
		before := allDecisions(ctx)
		_, err := createServiceAccount(ctx, "apps", "flux-source")
		Expect(err).NotTo(HaveOccurred())
		Expect(c.client.Create(ctx, &corev1.Pod{ObjectMeta: objectMeta("apps", "probe"),
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}})).To(Succeed())
		Expect(c.client.Create(ctx, gitRepository("apps", "with-secret", true))).To(Succeed(), "no mandate covers apps")
		Expect(allDecisions(ctx)).To(Equal(before))
	}, specTimeout)

	It("keeps the serving certificate and every caBundle byte for byte through a helm upgrade that changes values", func(ctx SpecContext) {
		secretBefore := tlsSecret(ctx)
		bundlesBefore, _ := webhookConfigurations(ctx)
		_, err := c.helm(ctx, "upgrade", release, filepath.Join(p.root, "charts", "flux-identity-webhook"),
			"--namespace", releaseNS, "--reuse-values", "--set", "shutdownDelay=2s", "--set", "replicas=3")
		Expect(err).NotTo(HaveOccurred())
		Expect(tlsSecret(ctx)).To(Equal(secretBefore))
		bundlesAfter, _ := webhookConfigurations(ctx)
		Expect(bundlesAfter).To(Equal(bundlesBefore))
		var d appsv1.Deployment
		Expect(c.client.Get(ctx, client.ObjectKey{Namespace: releaseNS, Name: fullname}, &d)).To(Succeed())
		Expect(d.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--shutdown-delay=2s"))
		// The rollout: the replica restarts with the new arguments and serves the same certificate.
		stopWebhook(ctx)
		startWebhook(ctx)
		Expect(webhook.args).To(ContainElement("--shutdown-delay=2s"))
		cert, err := tlsDial(bundlesAfter[fullname+"/serviceaccounts.fluxidentity.dev"], fullname+"."+releaseNS+".svc")
		Expect(err).NotTo(HaveOccurred())
		Expect(cert.Raw).To(Equal(pemBlock(secretBefore["tls.crt"])))
	}, specTimeout)

	It("brings a policy change made with helm upgrade to the running webhook, without a restart or a rollout", func(ctx SpecContext) {
		Expect(c.ensureNamespace(ctx, "payments")).To(Succeed())
		sa, err := createServiceAccount(ctx, "payments", "flux-source")
		Expect(err).NotTo(HaveOccurred())
		Expect(sa.Annotations).NotTo(HaveKey(keys.AnnotationIdentity), "payments is not in the policy yet")

		var d appsv1.Deployment
		Expect(c.client.Get(ctx, client.ObjectKey{Namespace: releaseNS, Name: fullname}, &d)).To(Succeed())
		pid, generation := webhook.proc.cmd.Process.Pid, d.Generation
		reloads, err := metricValue(ctx, "fluxidentity_policy_reloads_total", nil)
		Expect(err).NotTo(HaveOccurred())

		changed := time.Now()
		_, err = c.helm(ctx, "upgrade", release, filepath.Join(p.root, "charts", "flux-identity-webhook"),
			"--namespace", releaseNS, "--reuse-values", "--set-file", "policy="+writePolicy("policy-v2.yaml", policyV2))
		Expect(err).NotTo(HaveOccurred())
		want := sha256Hex(policyConfigMap(ctx).Data["policy.yaml"])
		Eventually(servedDigest).WithContext(ctx).Should(Equal(want[:12]), "the server reloads the mounted ConfigMap")
		GinkgoWriter.Printf("policy change: helm upgrade to served in %s\n", time.Since(changed).Round(time.Millisecond))
		_, digests := webhookConfigurations(ctx)
		Expect(digests).To(HaveEach(want), "the webhook configurations name the policy their conditions came from")

		eventuallyMapped(ctx, "payments", keys.AnnotationAWSRoleARN, "arn:aws:iam::111122223333:role/payments")

		Expect(webhook.proc.cmd.Process.Pid).To(Equal(pid))
		Expect(webhook.proc.running()).To(BeTrue())
		Expect(metricValue(ctx, "fluxidentity_policy_reloads_total", nil)).To(Equal(reloads + 1))
		Expect(c.client.Get(ctx, client.ObjectKey{Namespace: releaseNS, Name: fullname}, &d)).To(Succeed())
		Expect(d.Generation).To(Equal(generation), "a policy change does not roll the Deployment")
	}, specTimeout)

	It("shows that a policy edited outside Helm reaches the server but not the webhook configurations", func(ctx SpecContext) {
		Expect(c.ensureNamespace(ctx, "ledger")).To(Succeed())
		cm := policyConfigMap(ctx)
		cm.Data["policy.yaml"] = policyV3
		Expect(c.client.Update(ctx, cm)).To(Succeed())
		edited := sha256Hex(policyV3)
		Eventually(servedDigest).WithContext(ctx).Should(Equal(edited[:12]))

		sa, err := createServiceAccount(ctx, "ledger", "flux-source")
		Expect(err).NotTo(HaveOccurred())
		Expect(sa.Annotations).NotTo(HaveKey(keys.AnnotationIdentity),
			"the conditions still come from the policy Helm rendered: ledger is never sent to the webhook")
		_, digests := webhookConfigurations(ctx)
		Expect(digests).NotTo(ContainElement(edited), "the drift is visible: the annotation is not the served digest")

		_, err = c.helm(ctx, "upgrade", release, filepath.Join(p.root, "charts", "flux-identity-webhook"),
			"--namespace", releaseNS, "--reuse-values", "--set-file", "policy="+writePolicy("policy-v3.yaml", policyV3))
		Expect(err).NotTo(HaveOccurred())
		_, digests = webhookConfigurations(ctx)
		Expect(digests).To(HaveEach(edited))
		eventuallyMapped(ctx, "ledger", keys.AnnotationIdentity, "ledger")
	}, specTimeout)

	It("during an outage blocks only what the policy covers, and recovers without intervention", func(ctx SpecContext) {
		stopWebhook(ctx)
		outage := time.Now()

		By("a namespace the policy never names gets its default ServiceAccount and its pods")
		Expect(c.ensureNamespace(ctx, "outside")).To(Succeed())
		Eventually(func() error {
			return c.client.Get(ctx, client.ObjectKey{Namespace: "outside", Name: "default"}, &corev1.ServiceAccount{})
		}).WithContext(ctx).Should(Succeed())
		web := webDeployment("outside")
		Expect(c.client.Create(ctx, web)).To(Succeed())
		eventuallyPod(ctx, web, func(corev1.Pod) bool { return true })
		_, err := createServiceAccount(ctx, "outside", "release-sa")
		Expect(err).NotTo(HaveOccurred(), "a Helm release creating a ServiceAccount there is not blocked")
		Expect(c.client.Create(ctx, gitRepository("outside", "during-outage", true))).To(Succeed(),
			"a Flux source there is never sent to the webhook")

		By("a policy namespace fails closed, naming the webhook")
		Expect(c.ensureNamespace(ctx, "team-outage")).To(Succeed())
		_, err = createServiceAccount(ctx, "team-outage", "flux-source")
		Expect(err).To(MatchError(ContainSubstring(`failed calling webhook "serviceaccounts.fluxidentity.dev"`)))
		err = c.client.Create(ctx, gitRepository("team-a", "during-outage", false))
		Expect(err).To(MatchError(ContainSubstring(`failed calling webhook "flux-sources.fluxidentity.dev"`)))
		Consistently(func() bool {
			err := c.client.Get(ctx, client.ObjectKey{Namespace: "team-outage", Name: "default"}, &corev1.ServiceAccount{})
			return apierrors.IsNotFound(err)
		}).WithContext(ctx).WithTimeout(3*time.Second).Should(BeTrue(), "no ServiceAccount is created unmapped in a policy namespace")

		By("a restarted full-injection controller waits for the webhook instead of starting without credentials")
		restart(ctx, source)
		restart(ctx, kustomize)
		Eventually(func(g Gomega) {
			rs := replicaSetOf(ctx, g, source)
			g.Expect(rs.Status.Conditions).To(ContainElement(And(
				HaveField("Type", appsv1.ReplicaSetReplicaFailure),
				HaveField("Message", ContainSubstring(`failed calling webhook "pods-full-injection.fluxidentity.dev"`)))))
		}).WithContext(ctx).Should(Succeed())
		Consistently(func(g Gomega) {
			pods, err := podsOf(ctx, c, source)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(pods).To(BeEmpty())
		}).WithContext(ctx).WithTimeout(2 * time.Second).Should(Succeed())

		By("a controller the fail-open webhook serves starts unmutated: the limit the README states for annotate mode")
		pod := eventuallyPod(ctx, kustomize, func(corev1.Pod) bool { return true })
		Expect(pod.Labels).NotTo(HaveKey(keys.LabelAzureUse))

		By("the webhook comes back: the waiting controller gets its identity and the namespace its ServiceAccount")
		startWebhook(ctx)
		back := time.Now()
		pod = eventuallyPod(ctx, source, func(corev1.Pod) bool { return true })
		Expect(envValue(pod.Spec.Containers[0], keys.EnvAWSRoleARN)).To(Equal(sourceRole))
		recovered := time.Since(back)
		Eventually(func() error {
			return c.client.Get(ctx, client.ObjectKey{Namespace: "team-outage", Name: "default"}, &corev1.ServiceAccount{})
		}).WithContext(ctx).WithTimeout(2 * time.Minute).Should(Succeed())
		GinkgoWriter.Printf("outage %s; source-controller pod created %s after the webhook came back, team-outage/default after %s\n",
			back.Sub(outage).Round(time.Millisecond), recovered.Round(time.Millisecond), time.Since(back).Round(time.Millisecond))
	}, NodeTimeout(4*time.Minute))

	It("serves only the API server once client authentication is on: kube-apiserver presents its certificate through its admission configuration", func(ctx SpecContext) {
		caFile := filepath.Join(workdir, "client-ca.crt")
		Expect(os.WriteFile(caFile, apiServerClient.caPEM, 0o600)).To(Succeed())
		_, err := c.helm(ctx, "upgrade", release, filepath.Join(p.root, "charts", "flux-identity-webhook"),
			"--namespace", releaseNS, "--reuse-values", "--set-file", "clientAuth.caBundle="+caFile)
		Expect(err).NotTo(HaveOccurred())
		stopWebhook(ctx) // the rollout: the new pod mounts the CA and asks callers for a certificate
		startWebhook(ctx)
		Expect(webhook.args).To(ContainElements(MatchRegexp(`^--client-ca-file=.*/client-ca/ca\.crt$`),
			"--client-cn-name=kube-apiserver"), "the CA ConfigMap is mounted where the flag names it")

		By("the API server's requests are served: it presents the certificate the admission configuration names")
		Expect(c.ensureNamespace(ctx, "team-client-auth")).To(Succeed())
		sa, err := createServiceAccount(ctx, "team-client-auth", "flux-source")
		Expect(err).NotTo(HaveOccurred())
		Expect(sa.Annotations).To(HaveKeyWithValue(keys.AnnotationIdentity, "tenants"))
		Expect(c.client.Create(ctx, gitRepository("team-client-auth", "with-secret", true))).To(
			MatchError(ContainSubstring("no-static-git-credentials")), "the validating webhook is served too")

		By("a caller without the certificate, or with one from another CA, is refused")
		caBundles, _ := webhookConfigurations(ctx)
		serving := caBundles[fullname+"/serviceaccounts.fluxidentity.dev"]
		status, err := postDirect(serving, nil)
		Expect(err).To(HaveOccurred(), "served without a client certificate (HTTP %d)", status)
		stranger, err := newClientIdentity("kube-apiserver")
		Expect(err).NotTo(HaveOccurred())
		status, err = postDirect(serving, &stranger.cert)
		Expect(err).To(HaveOccurred(), "served with another CA's certificate (HTTP %d)", status)
		status, err = postDirect(serving, &apiServerClient.cert)
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(http.StatusOK), "the API server's own certificate is served directly too")

		By("turned off again, any caller is served")
		_, err = c.helm(ctx, "upgrade", release, filepath.Join(p.root, "charts", "flux-identity-webhook"),
			"--namespace", releaseNS, "--reuse-values", "--set", "clientAuth.caBundle=")
		Expect(err).NotTo(HaveOccurred())
		stopWebhook(ctx)
		startWebhook(ctx)
		Expect(webhook.args).NotTo(ContainElement(ContainSubstring("--client-ca-file")))
		status, err = postDirect(serving, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(http.StatusOK))
	}, specTimeout)

	It("has alerts and a dashboard that query only metrics, labels and values the server and the API server export", func(ctx SpecContext) {
		// Traffic after the restart: a denial in enforce mode, so the violation series exists.
		Expect(c.client.Create(ctx, gitRepository("team-a", "denied-again", true))).NotTo(Succeed())
		Expect(c.client.Get(ctx, client.ObjectKey{Namespace: releaseNS, Name: fullname}, newUnstructured("monitoring.coreos.com/v1", "ServiceMonitor"))).
			To(Succeed(), "the ServiceMonitor passed the Prometheus operator's CRD")
		families := scrapeAsPrometheus(ctx)

		pr := newUnstructured("monitoring.coreos.com/v1", "PrometheusRule")
		Expect(c.client.Get(ctx, client.ObjectKey{Namespace: releaseNS, Name: fullname}, pr)).To(Succeed())
		groups, _, _ := unstructured.NestedSlice(pr.Object, "spec", "groups")
		queries := map[string]string{}
		for _, g := range groups {
			for _, r := range g.(map[string]any)["rules"].([]any) {
				rule := r.(map[string]any)
				queries["alert "+rule["alert"].(string)] = rule["expr"].(string)
			}
		}
		var cm corev1.ConfigMap
		Expect(c.client.Get(ctx, client.ObjectKey{Namespace: releaseNS, Name: fullname + "-dashboard"}, &cm)).To(Succeed())
		panels := dashboardTargets(cm.Data["flux-identity-webhook.json"])
		Expect(len(panels)).To(BeNumerically(">=", 10))
		for name, q := range panels {
			queries["panel "+name] = q
		}
		Expect(len(queries)).To(BeNumerically(">=", 18))
		for name, q := range queries {
			e, err := promql.Parse(q)
			Expect(err).NotTo(HaveOccurred(), name)
			Expect(promql.Check(e, families)).To(BeEmpty(), "%s: %s", name, q)
		}
	}, specTimeout)

	It("uninstalls without leaving a webhook configuration behind, and the controllers clean up the rest", func(ctx SpecContext) {
		_, err := c.helm(ctx, "uninstall", release, "--namespace", releaseNS, "--wait", "--timeout", "60s")
		Expect(err).NotTo(HaveOccurred())
		stopWebhook(ctx)
		bundles, _ := webhookConfigurations(ctx)
		Expect(bundles).To(BeEmpty())
		var all admissionv1.MutatingWebhookConfigurationList
		Expect(c.client.List(ctx, &all)).To(Succeed())
		for _, cfg := range all.Items {
			Expect(cfg.Name).NotTo(ContainSubstring("flux-identity"))
		}
		// A fail-closed leftover would refuse this; nothing intercepts it any more.
		sa, err := createServiceAccount(ctx, "team-outage", "after-uninstall")
		Expect(err).NotTo(HaveOccurred())
		Expect(sa.Annotations).NotTo(HaveKey(keys.AnnotationIdentity))
		// The garbage collector removes the chart's ReplicaSets and pods with their Deployment.
		Eventually(func(g Gomega) {
			var pods corev1.PodList
			g.Expect(c.client.List(ctx, &pods, client.InNamespace(releaseNS))).To(Succeed())
			g.Expect(pods.Items).To(BeEmpty())
			var rs appsv1.ReplicaSetList
			g.Expect(c.client.List(ctx, &rs, client.InNamespace(releaseNS))).To(Succeed())
			g.Expect(rs.Items).To(BeEmpty())
			var slices discoveryv1.EndpointSliceList
			g.Expect(c.client.List(ctx, &slices, client.InNamespace(releaseNS))).To(Succeed())
			g.Expect(slices.Items).To(BeEmpty())
		}).WithContext(ctx).Should(Succeed())
	}, specTimeout)

	It("installs again after an uninstall, with a new certificate, and mutates through the Service again", func(ctx SpecContext) {
		install(ctx, writePolicy("policy-v1-again.yaml", policyV1))
		Expect(tlsSecret(ctx)["ca.crt"]).NotTo(Equal(firstCA), "the uninstall removed the old CA; the chart made a new one")
		startWebhook(ctx)
		eventuallyMapped(ctx, "team-a", keys.AnnotationIdentity, "tenants")
		_, err := c.helm(ctx, "uninstall", release, "--namespace", releaseNS, "--wait", "--timeout", "60s")
		Expect(err).NotTo(HaveOccurred())
		stopWebhook(ctx)
	}, specTimeout)

	It("installs in cert-manager mode: cert-manager issues the chart's certificates and injects every caBundle", func(ctx SpecContext) {
		const (
			ns       = "fiw-cert-manager"
			cmName   = "fiw-cm"
			cmFull   = cmName + "-flux-identity-webhook"
			tenantNS = "cm-tenant"
		)
		// cert-manager's own controllers and CA injector (hack/cert-manager-bins.sh builds them from its module).
		for _, component := range []string{"controller", "cainjector"} {
			proc, err := startProcess(p.certManager, []string{component, "--kubeconfig=" + c.kubeconfig}, nil,
				filepath.Join(p.artifacts, "cert-manager-"+component+".log"), nil)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func() { _, _ = proc.stop(10 * time.Second) })
		}
		policy := `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: cert-manager-mode
identities:
  - name: tenants
    namespaces: [` + tenantNS + `]
    serviceAccounts: ["flux-*"]
    aws:
      roleARN: arn:aws:iam::111122223333:role/tenant-{namespace}
`
		installed := time.Now()
		_, err := c.helm(ctx, "install", cmName, filepath.Join(p.root, "charts", "flux-identity-webhook"),
			"--namespace", ns, "--create-namespace", "--set-file", "policy="+writePolicy("policy-cm.yaml", policy))
		Expect(err).NotTo(HaveOccurred(), "the API server accepted every Issuer and Certificate the chart renders")
		var issuers cmapi.IssuerList
		Expect(c.client.List(ctx, &issuers, client.InNamespace(ns))).To(Succeed())
		Expect(issuers.Items).To(HaveLen(2))
		var serving cmapi.Certificate
		Expect(c.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: cmFull + "-serving"}, &serving)).To(Succeed())
		// The schemas are really enforced: a Certificate the CRD does not allow is refused.
		bad := serving.DeepCopy()
		bad.ObjectMeta = objectMeta(ns, "bad")
		bad.Spec.PrivateKey.Algorithm = "DSA"
		Expect(c.client.Create(ctx, bad)).To(MatchError(ContainSubstring("spec.privateKey.algorithm")))

		Eventually(func(g Gomega) {
			var cert cmapi.Certificate
			g.Expect(c.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: serving.Name}, &cert)).To(Succeed())
			g.Expect(cert.Status.Conditions).To(ContainElement(And(
				HaveField("Type", cmapi.CertificateConditionReady), HaveField("Status", cmmeta.ConditionTrue))))
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed(), "cert-manager issues the chart's CA chain and serving certificate")
		var secret corev1.Secret
		Expect(c.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: cmFull + "-tls"}, &secret)).To(Succeed())
		roots := x509.NewCertPool()
		Expect(roots.AppendCertsFromPEM(secret.Data["ca.crt"])).To(BeTrue())
		leaf, err := x509.ParseCertificate(pemBlock(secret.Data["tls.crt"]))
		Expect(err).NotTo(HaveOccurred())
		_, err = leaf.Verify(x509.VerifyOptions{DNSName: cmFull + "." + ns + ".svc", Roots: roots,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		Expect(err).NotTo(HaveOccurred(), "the serving certificate is signed by the chart's CA for the Service's name")
		Eventually(func(g Gomega) {
			sel := client.MatchingLabels{"app.kubernetes.io/instance": cmName}
			var m admissionv1.MutatingWebhookConfigurationList
			g.Expect(c.client.List(ctx, &m, sel)).To(Succeed())
			var v admissionv1.ValidatingWebhookConfigurationList
			g.Expect(c.client.List(ctx, &v, sel)).To(Succeed())
			g.Expect(m.Items).To(HaveLen(1))
			g.Expect(v.Items).To(HaveLen(1))
			for _, w := range m.Items[0].Webhooks {
				g.Expect(w.ClientConfig.CABundle).To(Equal(secret.Data["ca.crt"]), w.Name)
			}
			for _, w := range v.Items[0].Webhooks {
				g.Expect(w.ClientConfig.CABundle).To(Equal(secret.Data["ca.crt"]), w.Name)
			}
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed(), "cert-manager's CA injector fills every caBundle")
		GinkgoWriter.Printf("cert-manager: certificate issued and caBundles injected %s after helm install\n",
			time.Since(installed).Round(time.Millisecond))

		// The API server trusts the injected CA: a replica serving cert-manager's certificate mutates through the Service.
		Expect(c.ensureNamespace(ctx, tenantNS)).To(Succeed())
		cmWebhook, err := startPod(ctx, c, img, ns, cmFull, filepath.Join(workdir, "pod-cert-manager"))
		Expect(err).NotTo(HaveOccurred())
		eventuallyMapped(ctx, tenantNS, keys.AnnotationIdentity, "tenants")
		code, err := cmWebhook.stop(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(BeZero())
		_, err = c.helm(ctx, "uninstall", cmName, "--namespace", ns, "--wait", "--timeout", "60s")
		Expect(err).NotTo(HaveOccurred())
	}, specTimeout)
})

// eventuallyMapped creates flux-source-N ServiceAccounts in namespace until one comes back with the annotation: the
// API server applies a changed webhook configuration once its informer has it, a moment after the write.
func eventuallyMapped(ctx context.Context, namespace, key, value string) {
	GinkgoHelper()
	n := 0
	Eventually(func(g Gomega) {
		n++
		sa, err := createServiceAccount(ctx, namespace, fmt.Sprintf("flux-source-%d", n))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(sa.Annotations).To(HaveKeyWithValue(key, value))
	}).WithContext(ctx).Should(Succeed())
}

func webDeployment(namespace string) *appsv1.Deployment {
	labels := map[string]string{"app": "web"}
	return &appsv1.Deployment{
		ObjectMeta: objectMeta(namespace, "web"),
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
			},
		},
	}
}

// restart deletes the Deployment's pods, as a node failure or an eviction would; the ReplicaSet replaces them.
func restart(ctx context.Context, d *appsv1.Deployment) {
	GinkgoHelper()
	pods, err := podsOf(ctx, c, d)
	Expect(err).NotTo(HaveOccurred())
	Expect(pods).NotTo(BeEmpty())
	for i := range pods {
		Expect(c.client.Delete(ctx, &pods[i], client.GracePeriodSeconds(0))).To(Succeed())
	}
	Eventually(func(g Gomega) {
		now, err := podsOf(ctx, c, d)
		g.Expect(err).NotTo(HaveOccurred())
		for _, p := range now {
			for _, old := range pods {
				g.Expect(p.UID).NotTo(Equal(old.UID))
			}
		}
	}).WithContext(ctx).Should(Succeed())
}

func replicaSetOf(ctx context.Context, g Gomega, d *appsv1.Deployment) appsv1.ReplicaSet {
	var list appsv1.ReplicaSetList
	g.Expect(c.client.List(ctx, &list, client.InNamespace(d.Namespace), client.MatchingLabels(d.Spec.Selector.MatchLabels))).To(Succeed())
	g.Expect(list.Items).To(HaveLen(1))
	return list.Items[0]
}

// pemBlock returns the DER bytes of the first certificate in PEM data.
func pemBlock(data []byte) []byte {
	GinkgoHelper()
	block, _ := pem.Decode(data)
	Expect(block).NotTo(BeNil(), "no PEM block")
	return block.Bytes
}
