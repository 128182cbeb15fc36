package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/test/harness"
)

const podMetadataWebhook = "pod-metadata.fluxidentity.dev"

// attackerConfig is what an attacker with pod update rights would write: the same credential configuration, with
// the token exchange pointed elsewhere. No message or log may show it.
const attackerConfig = `{"type":"external_account","token_url":"https://sts.attacker.invalid/v1/token"}`

// podMetadataCase is one entry of webhook/pods/testdata/podmetadata/cases.yaml, which the webhook's unit tests check
// against the Go decision.
type podMetadataCase struct {
	Name    string `json:"name"`
	Binding bool   `json:"binding"`
	Old     struct {
		Annotations map[string]string `json:"annotations"`
		Labels      map[string]string `json:"labels"`
	} `json:"old"`
	New struct {
		Annotations map[string]string `json:"annotations"`
		Labels      map[string]string `json:"labels"`
	} `json:"new"`
	Owned []string `json:"owned"`
}

// podMetadataCases are read while the spec tree is built, so each becomes its own entry.
var podMetadataCases = func() []podMetadataCase {
	root, err := harness.RepoRoot()
	if err != nil {
		panic(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "webhook", "pods", "testdata", "podmetadata", "cases.yaml"))
	if err != nil {
		panic(err)
	}
	var cases []podMetadataCase
	if err := yaml.UnmarshalStrict(data, &cases); err != nil {
		panic(fmt.Sprintf("cases.yaml: %v", err))
	}
	return cases
}()

func podMetadataEntries(binding bool) []TableEntry {
	var entries []TableEntry
	for _, c := range podMetadataCases {
		if c.Binding == binding {
			entries = append(entries, Entry(c.Name, c))
		}
	}
	return entries
}

// plainPod is a pod of an unmapped ServiceAccount: the pod mutating webhook leaves its metadata as sent.
func plainPod(ns string, annotations, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "meta-", Namespace: ns, Annotations: annotations, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
}

// equalMap matches a map with exactly m's entries; nil and empty are alike.
func equalMap(m map[string]string) OmegaMatcher {
	if len(m) == 0 {
		return BeEmpty()
	}
	return Equal(m)
}

// expectOwnedChangeDenied checks a refusal by the webhook that names every changed owned key.
func expectOwnedChangeDenied(err error, keys []string) {
	GinkgoHelper()
	Expect(err).To(MatchError(ContainSubstring(`admission webhook "` + podMetadataWebhook + `" denied the request`)))
	for _, k := range keys {
		Expect(err.Error()).To(ContainSubstring("annotation " + k + " is set by the webhook at pod creation"))
	}
	Expect(err.Error()).NotTo(ContainSubstring("attacker"), "a denial must not show the annotation's value")
}

// expectCaseOutcome sends one request of case c and returns its error: a refusal by the webhook naming every owned
// key the case changes (the matchCondition sent it exactly once), or, when the case changes none, nil with no call
// to the webhook at all.
func expectCaseOutcome(ctx context.Context, c podMetadataCase, how string, request func() error) error {
	GinkgoHelper()
	before := decisions(ctx, routes.PathValidatePod)
	err := request()
	calls := decisions(ctx, routes.PathValidatePod) - before
	if len(c.Owned) > 0 {
		expectOwnedChangeDenied(err, c.Owned)
		Expect(calls).To(BeNumerically("==", 1), "%s: the webhook decided it", how)
		return err
	}
	Expect(err).NotTo(HaveOccurred(), how)
	Expect(calls).To(BeZero(), "%s: the matchCondition must keep it from the webhook", how)
	return nil
}

var _ = Describe("Owned pod annotations are immutable through the API server", Ordered, func() {
	var ns string

	BeforeAll(func(ctx SpecContext) {
		Expect(env.SetPolicy(ctx, fluxPolicy)).To(Succeed())
		ensureNamespace(ctx, "flux-system")
		ns = freshNamespace(ctx, "podmeta")
		DeferCleanup(func(ctx SpecContext) { Expect(env.SetPolicy(ctx, testPolicy)).To(Succeed()) })
	})

	// injectedPod creates an image-automation-controller pod, which full GCP injection gives the credential
	// configuration annotation that the downward API projects into its containers.
	injectedPod := func(ctx context.Context) *corev1.Pod {
		pod := podFromTemplate(ctx, fluxDeployment("image-automation-controller"))
		Expect(pod.Annotations).To(HaveKey(keys.AnnotationGCPCredentialConfig))
		Expect(pod.Annotations).To(HaveKeyWithValue(keys.AnnotationIdentity, "automation"))
		return pod
	}

	It("denies an update that rewrites the GCP credential configuration of a fully injected pod", func(ctx SpecContext) {
		pod := injectedPod(ctx)
		stored := pod.Annotations[keys.AnnotationGCPCredentialConfig]
		before := decisions(ctx, routes.PathValidatePod)

		rewrite := pod.DeepCopy()
		rewrite.Annotations[keys.AnnotationGCPCredentialConfig] = attackerConfig
		err := env.Client.Update(ctx, rewrite)
		Expect(err).To(MatchError(`admission webhook "` + podMetadataWebhook + `" denied the request: [ownership] ` +
			`annotation fluxidentity.dev/gcp-credential-config is set by the webhook at pod creation: recreate the pod`))
		expectOwnedChangeDenied(err, []string{keys.AnnotationGCPCredentialConfig})

		By("through pods/status, whose strategy would keep the metadata change")
		Expect(env.Client.Status().Update(ctx, rewrite)).To(MatchError(ContainSubstring(podMetadataWebhook)))

		By("through a merge patch that removes it")
		patch := client.RawPatch("application/merge-patch+json",
			[]byte(`{"metadata":{"annotations":{"`+keys.AnnotationGCPCredentialConfig+`":null}}}`))
		Expect(env.Client.Patch(ctx, pod.DeepCopy(), patch)).To(MatchError(ContainSubstring(podMetadataWebhook)))

		Expect(decisions(ctx, routes.PathValidatePod)).To(Equal(before+3), "each attempt was decided by the webhook")
		var got corev1.Pod
		Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(pod), &got)).To(Succeed())
		Expect(got.Annotations).To(HaveKeyWithValue(keys.AnnotationGCPCredentialConfig, stored))
	})

	It("admits an update of the same pod that changes an unrelated label, without calling the webhook", func(ctx SpecContext) {
		pod := injectedPod(ctx)
		before := decisions(ctx, routes.PathValidatePod)
		pod.Labels["rollout"] = "canary"
		Expect(env.Client.Update(ctx, pod)).To(Succeed())
		pod.Annotations["team"] = "a"
		Expect(env.Client.Update(ctx, pod)).To(Succeed())
		Expect(decisions(ctx, routes.PathValidatePod)).To(Equal(before), "the matchCondition kept both away")
	})

	// Every shared case, made through the API server: the CEL matchCondition must send the webhook exactly the
	// changes the Go decision calls owned (counted on the webhook's decisions), and exactly those are refused.
	DescribeTable("pod and pods/status updates from the shared cases",
		func(ctx SpecContext, c podMetadataCase) {
			for _, status := range []bool{false, true} {
				pod := plainPod(ns, c.Old.Annotations, c.Old.Labels)
				Expect(env.Client.Create(ctx, pod)).To(Succeed())
				Expect(pod.Annotations).To(equalMap(c.Old.Annotations), "created as sent")

				pod.Annotations, pod.Labels = c.New.Annotations, c.New.Labels
				if err := expectCaseOutcome(ctx, c, fmt.Sprintf("status update %v", status), func() error {
					if status {
						return env.Client.Status().Update(ctx, pod)
					}
					return env.Client.Update(ctx, pod)
				}); err != nil {
					continue
				}
				var got corev1.Pod
				Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(pod), &got)).To(Succeed())
				Expect(got.Annotations).To(equalMap(c.New.Annotations), "status update %v stored the new metadata", status)
				Expect(got.Labels).To(equalMap(c.New.Labels), "status update %v stored the new metadata", status)
			}
		},
		podMetadataEntries(false))

	DescribeTable("bindings from the shared cases, through pods/binding and the legacy bindings resource",
		func(ctx SpecContext, c podMetadataCase) {
			for _, legacy := range []bool{false, true} {
				pod := plainPod(ns, nil, nil)
				Expect(env.Client.Create(ctx, pod)).To(Succeed())
				binding := &corev1.Binding{
					ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: ns, Annotations: c.New.Annotations},
					Target:     corev1.ObjectReference{Kind: "Node", Name: "node-a"},
				}
				if err := expectCaseOutcome(ctx, c, fmt.Sprintf("legacy bindings %v", legacy), func() error {
					if legacy {
						return env.Client.Create(ctx, binding)
					}
					return env.Client.SubResource("binding").Create(ctx, pod, binding)
				}); err != nil {
					Expect(err.Error()).To(ContainSubstring("not by a binding"))
					continue
				}
				var got corev1.Pod
				Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(pod), &got)).To(Succeed())
				Expect(got.Spec.NodeName).To(Equal("node-a"))
				for k, v := range c.New.Annotations {
					Expect(got.Annotations).To(HaveKeyWithValue(k, v), "the binding's annotations were merged")
				}
			}
		},
		podMetadataEntries(true))

	It("with the webhook stopped, admits unrelated pod updates and still refuses owned changes", func(ctx SpecContext) {
		pod := injectedPod(ctx)
		Expect(env.StopServer()).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(env.StartServer(ctx)).To(Succeed()) })

		start := time.Now()
		pod.Labels["rollout"] = "canary"
		Expect(env.Client.Update(ctx, pod)).To(Succeed(), "an ordinary update never waits on the webhook")
		pod.Annotations["team"] = "a"
		Expect(env.Client.Status().Update(ctx, pod)).To(Succeed(), "nor does a status update")
		admitted := time.Since(start)

		rewrite := pod.DeepCopy()
		rewrite.Annotations[keys.AnnotationGCPCredentialConfig] = attackerConfig
		err := env.Client.Update(ctx, rewrite)
		Expect(err).To(MatchError(ContainSubstring(`failed calling webhook "` + podMetadataWebhook + `"`)))
		Expect(err.Error()).NotTo(ContainSubstring("attacker"))
		delete(rewrite.Annotations, keys.AnnotationIdentity)
		Expect(env.Client.Status().Update(ctx, rewrite)).To(MatchError(ContainSubstring(podMetadataWebhook)))

		var got corev1.Pod
		Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(pod), &got)).To(Succeed())
		Expect(got.Labels).To(HaveKeyWithValue("rollout", "canary"))
		Expect(got.Annotations).To(HaveKeyWithValue(keys.AnnotationIdentity, "automation"))
		Expect(got.Annotations[keys.AnnotationGCPCredentialConfig]).NotTo(ContainSubstring("attacker"))
		AddReportEntry("webhook down", fmt.Sprintf("two unrelated updates admitted in %s; two owned changes refused",
			admitted.Round(time.Millisecond)))
	})
})
