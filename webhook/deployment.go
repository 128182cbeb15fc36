package webhook

import (
	"context"

	"k8s.io/apimachinery/pkg/types"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// deployment puts the Azure use label on the pod template of Deployments whose ServiceAccount is mapped to an
// Azure identity. The Azure webhook selects pods by that label, and the API server never calls a webhook for the
// first time during reinvocation, so a label added to the pod by this webhook can come too late; on the template it
// is there before any pod exists, whatever the webhook order.
func (s *Server) deployment(_ context.Context, p *policy.Policy, body []byte) (types.UID, verdict, error) {
	req, err := decodeReview[deploymentView, none](body)
	if err != nil {
		return uidOf(req), verdict{}, err
	}
	if req.Object == nil {
		return req.UID, verdict{}, &badObject{errNoObject}
	}
	return req.UID, evaluateDeployment(p, req.Namespace, req.Object), nil
}

func evaluateDeployment(p *policy.Policy, namespace string, d *deploymentView) verdict {
	tmpl := &d.Spec.Template
	m, mapped := p.IdentityFor(namespace, tmpl.Spec.serviceAccount())
	want := PodTemplateLabels(m)
	if !mapped || want == nil {
		return verdict{}
	}
	v := verdict{identity: m.Identity.Name, kind: "Deployment", namespace: namespace}
	v.patch = setMetadata(nil, "/spec/template", tmpl.Metadata, nil, want)
	return v
}

// PodTemplateLabels are the labels the Deployment webhook puts on the pod template of a Deployment whose
// ServiceAccount is mapped to m: the Azure use label, which the Azure webhook selects pods by, when m is an Azure
// identity the Azure webhook injects (not injection: full); none otherwise. evaluateDeployment sets them;
// doctor reports Deployments that lack them.
func PodTemplateLabels(m policy.Match) map[string]string {
	if m.Cloud != policy.CloudAzure || m.Identity.Injection == policy.InjectionFull {
		return nil
	}
	return map[string]string{keys.LabelAzureUse: "true"}
}
