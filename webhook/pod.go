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
		if err := pod.Spec.decodeLists(); err != nil {
			return verdict{}, err
		}
		var err error
		if inj, err = podInjection(m, pod); err != nil {
			return verdict{}, err
		}
		if n, size := len(pod.Spec.InitContainers)+len(pod.Spec.Containers), inj.containerBytes(); n*size > maxInjectionPatchBytes {
			v := verdict{identity: m.Identity.Name, kind: "Pod", namespace: namespace,
				warnings: []string{fitMessage(m.Identity.Name, fmt.Sprintf("pod has %d containers: injection would add "+
					"about %d KiB, over the %d KiB bound; nothing was injected", n, n*size>>10, maxInjectionPatchBytes>>10))}}
			v.patch = setMetadata(nil, "", pod.Metadata, annotations, nil)
			return v, nil
		}
		for k, v := range inj.annotations {
			annotations[k] = v
		}
	case m.Cloud == policy.CloudAzure:
		// Only in annotate mode: with full injection the Azure webhook must not inject a second time.
		labels = map[string]string{keys.LabelAzureUse: "true"}
	}
	v := verdict{identity: m.Identity.Name, kind: "Pod", namespace: namespace}
	v.patch = setMetadata(nil, "", pod.Metadata, annotations, labels)
	if inj.env != nil {
		v.patch = inj.patch(v.patch, pod)
	}
	return v, nil
}
