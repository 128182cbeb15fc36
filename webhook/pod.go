package webhook

import (
	"context"
	"encoding/json"
	"net/http"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// podMutator labels and injects the pods of mapped ServiceAccounts.
type podMutator struct {
	opts  Options
	count countedHandler
}

var _ admission.Handler = &podMutator{}

func (h *podMutator) Handle(_ context.Context, req admission.Request) admission.Response {
	var pod podView
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		h.count.errored.Inc()
		return admission.Errored(http.StatusBadRequest, err)
	}
	// A pod created from a template (generateName) may carry no namespace in its metadata: the request's is the truth.
	v, err := evaluatePod(h.opts.Policy.Current(), req.Namespace, &pod)
	if err != nil {
		h.count.errored.Inc()
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return v.answer(h.opts.Mode, h.count)
}

// podIsMapped tells from the routing view alone whether evaluatePod could do anything.
func podIsMapped(p *policy.Policy, namespace string, r *podRouting) bool {
	spec := podSpecView{ServiceAccountName: r.Spec.ServiceAccountName, ServiceAccount: r.Spec.ServiceAccount}
	_, mapped := p.IdentityFor(namespace, spec.serviceAccount())
	return mapped
}

// evaluatePod decides about a pod in namespace. A pod whose ServiceAccount is mapped gets keys.AnnotationIdentity; with
// injection annotate, Azure pods get the label the Azure webhook selects on; with injection full, the cloud's token
// volume, mounts and environment (a GCP identity has full injection only with a workload identity provider: the
// policy refuses it otherwise). Pods never violate anything: what they may use is decided on their ServiceAccount.
func evaluatePod(p *policy.Policy, namespace string, pod *podView) (verdict, error) {
	m, mapped := p.IdentityFor(namespace, pod.Spec.serviceAccount())
	if !mapped {
		return verdict{}, nil
	}
	annotations := map[string]string{keys.AnnotationIdentity: m.Identity.Name}
	var labels map[string]string
	var inj injection
	switch {
	case m.Identity.Injection == policy.InjectionFull:
		var err error
		if inj, err = podInjection(m, pod); err != nil {
			return verdict{}, err
		}
		for k, v := range inj.annotations {
			annotations[k] = v
		}
	case m.Cloud == policy.CloudAzure:
		// Only in annotate mode: with full injection the Azure webhook must not inject a second time.
		labels = map[string]string{keys.LabelAzureUse: "true"}
	}
	v := verdict{identity: m.Identity.Name}
	v.patch = setMetadata(nil, "", pod.Metadata, annotations, labels)
	if inj.env != nil {
		v.patch = inj.patch(v.patch, pod)
	}
	return v, nil
}
