package webhook

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// pod labels and injects the pods of mapped ServiceAccounts. A pod created from a template (generateName) may carry
// no namespace in its metadata: the request's is the truth.
func (s *Server) pod(_ context.Context, p *policy.Policy, body []byte) (types.UID, verdict, error) {
	req, err := decodeReview[podView, none](body)
	if err != nil {
		return uidOf(req), verdict{}, err
	}
	if req.Object == nil {
		return req.UID, verdict{}, &badObject{errNoObject}
	}
	v, err := evaluatePod(p, req.Namespace, req.Object)
	return req.UID, v, err
}

// maxInjectionPatchBytes bounds what full injection may add to one pod. A Flux controller's pod takes a few hundred
// bytes per container; a pod whose containers would need more is answered without injection and with a warning,
// never with a patch of megabytes.
const maxInjectionPatchBytes = 256 << 10

// evaluatePod decides about a pod in namespace. A pod whose ServiceAccount is mapped gets keys.AnnotationIdentity; with
// injection annotate, Azure pods get the label the Azure webhook selects on; with injection full, the cloud's token
// volume, mounts and environment (a GCP identity has full injection only with a workload identity provider: the
// policy refuses it otherwise). What a pod may use is decided on its ServiceAccount; with full injection a pod can
// only break its identity's rules with a token lifetime annotation the cloud's webhook would deny, and the response
// carries warnings about what injection ignored, changed or left untouched (see newInjection).
func evaluatePod(p *policy.Policy, namespace string, pod *podView) (verdict, error) {
	m, mapped := p.IdentityFor(namespace, pod.Spec.serviceAccount())
	if !mapped {
		return verdict{}, nil
	}
	v := verdict{identity: m.Identity.Name, kind: "Pod", namespace: namespace}
	annotations := map[string]string{keys.AnnotationIdentity: m.Identity.Name}
	var labels map[string]string
	var inj *injection
	switch {
	case m.Identity.Injection == policy.InjectionFull:
		var err error
		if inj, err = newInjection(m, pod); err != nil {
			return verdict{}, err
		}
		v.warnings, v.violations = inj.warnings, inj.violations
		// Counted before anything is decoded: the views of a pod over the bound are never built.
		n := countElements(pod.Spec.RawInitContainers) + countElements(pod.Spec.RawContainers)
		if size := inj.containerBytes(); n*size > maxInjectionPatchBytes {
			v.warnings = append(v.warnings, fitMessage(m.Identity.Name, fmt.Sprintf("pod has %d containers: injection "+
				"would add about %d KiB, over the %d KiB bound; nothing was injected", n, n*size>>10, maxInjectionPatchBytes>>10)))
			v.patch = setMetadata(nil, "", pod.Metadata, annotations, nil)
			return v, nil
		}
		if err := pod.Spec.decodeLists(); err != nil {
			return verdict{}, err
		}
		inj.plan(pod)
		v.warnings = inj.warnings
		for k, val := range inj.annotations {
			annotations[k] = val
		}
	case m.Cloud == policy.CloudAzure:
		// Only in annotate mode: with full injection the Azure webhook must not inject a second time.
		labels = map[string]string{keys.LabelAzureUse: "true"}
	}
	v.patch = setMetadata(nil, "", pod.Metadata, annotations, labels)
	if inj != nil {
		v.patch = inj.patch(v.patch, pod)
	}
	return v, nil
}
