package oldcrd

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook"
)

const sourcesWebhook = "flux-sources.fluxidentity.dev"

var namespaceSeq atomic.Int64

func freshNamespace(ctx context.Context) string {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("legacy-%d", namespaceSeq.Add(1))}}
	Expect(env.Client.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func sourceDecisions(ctx context.Context) float64 {
	GinkgoHelper()
	v, err := env.Counter(ctx, "fluxidentity_admission_decisions_total",
		map[string]string{"webhook": routes.PathValidateFluxSources})
	Expect(err).NotTo(HaveOccurred())
	return v
}

// object builds s in its old version; with a secretRef when secret is set.
func (s oldSource) object(ns, name, secret string) *unstructured.Unstructured {
	spec := map[string]any{}
	for k, v := range s.spec {
		spec[k] = v
	}
	if secret != "" {
		spec["secretRef"] = map[string]any{"name": secret}
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetAPIVersion(s.gvr.GroupVersion().String())
	u.SetKind(s.kind)
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

// v1Answer is the webhook's answer, computed in-process, to the same object sent as v1: what an old-version request
// must get through the API server.
func v1Answer(ctx context.Context, s oldSource, op admissionv1.Operation, obj, old *unstructured.Unstructured) *admissionv1.AdmissionResponse {
	GinkgoHelper()
	p, err := policy.Parse("policy.yaml", []byte(oldPolicy), time.Now())
	Expect(err).NotTo(HaveOccurred())
	raw := func(u *unstructured.Unstructured) []byte {
		if u == nil {
			return nil
		}
		v1 := u.DeepCopy()
		v1.SetAPIVersion(s.gvr.Group + "/v1")
		b, err := v1.MarshalJSON()
		Expect(err).NotTo(HaveOccurred())
		return b
	}
	req := admissionv1.AdmissionRequest{
		UID: "in-process", Operation: op, Namespace: obj.GetNamespace(), Name: obj.GetName(),
		Kind:     metav1.GroupVersionKind{Group: s.gvr.Group, Version: "v1", Kind: s.kind},
		Resource: metav1.GroupVersionResource{Group: s.gvr.Group, Version: "v1", Resource: s.gvr.Resource},
	}
	req.Object.Raw, req.OldObject.Raw = raw(obj), raw(old)
	front := webhook.NewServer(webhook.Options{Policy: webhook.Fixed{Policy: p}, Mode: policy.ModeEnforce})
	resp, err := front.AnswerRequest(ctx, routes.PathValidateFluxSources, req)
	Expect(err).NotTo(HaveOccurred())
	return resp
}

func denial(resp *admissionv1.AdmissionResponse) string {
	return `admission webhook "` + sourcesWebhook + `" denied the request: ` + resp.Result.Message
}

func entries() []TableEntry {
	var out []TableEntry
	for _, s := range oldSources {
		out = append(out, Entry(s.kind+" "+s.gvr.Version, s))
	}
	return out
}

var _ = Describe("Flux sources through a CRD that serves only an old version", func() {
	var dyn dynamic.Interface
	BeforeEach(func() {
		var err error
		dyn, err = dynamic.NewForConfig(env.Config)
		Expect(err).NotTo(HaveOccurred())
	})

	DescribeTable("reach the webhook and are answered as their v1 equivalent",
		func(ctx SpecContext, s oldSource) {
			ns := freshNamespace(ctx)
			resources := dyn.Resource(s.gvr).Namespace(ns)
			// viaWebhook runs one request through the API server and checks that the webhook decided it. (The
			// in-process answers count on the same metric, so each request is measured on its own.)
			viaWebhook := func(request func() error) error {
				GinkgoHelper()
				before := sourceDecisions(ctx)
				err := request()
				Expect(sourceDecisions(ctx)).To(Equal(before+1), "the webhook decided the request")
				return err
			}

			By("a compliant object is admitted")
			compliant := s.object(ns, "compliant", "")
			Expect(v1Answer(ctx, s, admissionv1.Create, compliant, nil).Allowed).To(BeTrue())
			var stored *unstructured.Unstructured
			Expect(viaWebhook(func() (err error) {
				stored, err = resources.Create(ctx, compliant, metav1.CreateOptions{})
				return err
			})).To(Succeed())
			Expect(stored.GetAPIVersion()).To(Equal(s.gvr.GroupVersion().String()))

			By("an object with spec.secretRef is denied with the mandate's message")
			static := s.object(ns, "static", "static-credentials")
			want := v1Answer(ctx, s, admissionv1.Create, static, nil)
			Expect(want.Allowed).To(BeFalse())
			Expect(want.Result.Message).To(And(ContainSubstring("no-static-credentials"), ContainSubstring("spec.secretRef")))
			Expect(viaWebhook(func() error {
				_, err := resources.Create(ctx, static, metav1.CreateOptions{})
				return err
			})).To(MatchError(denial(want)))

			By("an update adding spec.secretRef is denied the same way")
			update := stored.DeepCopy()
			Expect(unstructured.SetNestedField(update.Object, "static-credentials", "spec", "secretRef", "name")).To(Succeed())
			want = v1Answer(ctx, s, admissionv1.Update, update, stored)
			Expect(want.Allowed).To(BeFalse())
			Expect(viaWebhook(func() error {
				_, err := resources.Update(ctx, update, metav1.UpdateOptions{})
				return err
			})).To(MatchError(denial(want)))
		},
		entries())
})

// The control: with rules naming only v1 (as before), the same requests never reach the webhook, so the specs above
// test the rules' versions and not something else.
var _ = Describe("Rules naming only v1", Ordered, func() {
	var original *admissionregistrationv1.ValidatingWebhookConfiguration

	type rule = admissionregistrationv1.RuleWithOperations
	setRules := func(ctx context.Context, rules func(i int, r rule) rule) {
		GinkgoHelper()
		var cfg admissionregistrationv1.ValidatingWebhookConfiguration
		Expect(env.Client.Get(ctx, client.ObjectKey{Name: "flux-identity-webhook"}, &cfg)).To(Succeed())
		for i := range cfg.Webhooks {
			if cfg.Webhooks[i].Name != sourcesWebhook {
				continue
			}
			for j, r := range cfg.Webhooks[i].Rules {
				cfg.Webhooks[i].Rules[j] = rules(j, r)
			}
		}
		Expect(env.Client.Update(ctx, &cfg)).To(Succeed())
	}

	BeforeAll(func(ctx SpecContext) {
		original = &admissionregistrationv1.ValidatingWebhookConfiguration{}
		Expect(env.Client.Get(ctx, client.ObjectKey{Name: "flux-identity-webhook"}, original)).To(Succeed())
		var narrowed []string
		setRules(ctx, func(_ int, r rule) rule {
			r.APIVersions = []string{"v1"}
			narrowed = append(narrowed, r.Resources...)
			return r
		})
		Expect(narrowed).To(ContainElements("gitrepositories", "imagerepositories"))
		DeferCleanup(func(ctx SpecContext) {
			var restored []rule
			for _, w := range original.Webhooks {
				if w.Name == sourcesWebhook {
					restored = w.Rules
				}
			}
			setRules(ctx, func(i int, _ rule) rule {
				return restored[i]
			})
			dyn, err := dynamic.NewForConfig(env.Config)
			Expect(err).NotTo(HaveOccurred())
			s, ns := oldSources[0], freshNamespace(ctx)
			Eventually(func(ctx context.Context) error {
				_, err := dyn.Resource(s.gvr).Namespace(ns).Create(ctx, s.object(ns, "static", "static-credentials"),
					metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
				return err
			}).WithContext(ctx).Should(MatchError(ContainSubstring(sourcesWebhook)), "the restored rules are in force")
		})
	})

	It("admits every old-version object with spec.secretRef without calling the webhook", func(ctx SpecContext) {
		dyn, err := dynamic.NewForConfig(env.Config)
		Expect(err).NotTo(HaveOccurred())
		ns := freshNamespace(ctx)
		create := func(ctx context.Context, s oldSource) error {
			_, err := dyn.Resource(s.gvr).Namespace(ns).Create(ctx, s.object(ns, "static", "static-credentials"),
				metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}
		Eventually(create).WithContext(ctx).WithArguments(oldSources[0]).Should(Succeed(),
			"the narrowed rules reach the API server's admission chain")
		before := sourceDecisions(ctx)
		for _, s := range oldSources {
			Expect(create(ctx, s)).To(Succeed(), "%s %s", s.kind, s.gvr.Version)
		}
		Expect(sourceDecisions(ctx)).To(Equal(before), "no request reached the webhook")
	})
})
