// Package pods decides about pods and their templates: the identity label and annotation of a mapped pod, full
// injection of the cloud's token volume, mounts and SDK environment (with the token invariant that every injected
// container reads a working token), the Azure label on Deployment templates, and the check that refuses later changes
// to the pod annotations the webhook owns.
package pods

import (
	"fmt"
	"time"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/patch"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// Admit labels and injects the pods of mapped ServiceAccounts at creation. A pod created from a template
// (generateName) may carry no namespace in its metadata: the request's is the truth.
func Admit(p *policy.Policy, req *verdict.Request[View, verdict.None], _ time.Time) (verdict.Verdict, error) {
	if req.Object == nil {
		return verdict.Verdict{}, &verdict.BadObject{Err: verdict.ErrNoObject}
	}
	return evaluatePod(p, req.Namespace, req.Object)
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
func evaluatePod(p *policy.Policy, namespace string, pod *View) (verdict.Verdict, error) {
	m, mapped := p.IdentityFor(namespace, pod.Spec.serviceAccount())
	if !mapped {
		return verdict.Verdict{}, nil
	}
	v := verdict.Verdict{Identity: m.Identity.Name, Kind: "Pod", Namespace: namespace}
	annotations := map[string]string{keys.AnnotationIdentity: m.Identity.Name}
	var labels map[string]string
	var inj *injection
	switch {
	case m.Identity.Injection == policy.InjectionFull:
		var err error
		if inj, err = newInjection(m, pod); err != nil {
			return verdict.Verdict{}, err
		}
		v.Warnings, v.Violations = inj.warnings, inj.violations
		// Counted before anything is decoded: the views of a pod over the bound are never built.
		n := countElements(pod.Spec.RawInitContainers) + countElements(pod.Spec.RawContainers)
		if size := inj.containerBytes(); n*size > maxInjectionPatchBytes {
			v.Warnings = append(v.Warnings, verdict.FitMessage(m.Identity.Name, fmt.Sprintf("pod has %d containers: injection "+
				"would add about %d KiB, over the %d KiB bound; nothing was injected", n, n*size>>10, maxInjectionPatchBytes>>10)))
			v.Patch = patch.SetMetadata(nil, "", pod.Metadata, annotations, nil)
			return v, nil
		}
		if err := pod.Spec.decodeLists(); err != nil {
			return verdict.Verdict{}, err
		}
		inj.plan(pod)
		v.Warnings = inj.warnings
		for k, val := range inj.annotations {
			annotations[k] = val
		}
	case m.Cloud == policy.CloudAzure:
		// Only in annotate Mode: with full injection the Azure webhook must not inject a second time.
		labels = map[string]string{keys.LabelAzureUse: "true"}
	}
	v.Patch = patch.SetMetadata(nil, "", pod.Metadata, annotations, labels)
	if inj != nil {
		v.Patch = inj.patch(v.Patch, pod)
	}
	return v, nil
}
