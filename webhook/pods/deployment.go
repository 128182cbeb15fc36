package pods

import (
	"time"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/patch"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// AdmitDeployment puts the Azure use label on the pod template of Deployments whose ServiceAccount is mapped to an
// Azure identity. The Azure webhook selects pods by that label, and the API server never calls a webhook for the
// first time during reinvocation, so a label added to the pod by this webhook can come too late; on the template it
// is there before any pod exists, whatever the webhook order.
func AdmitDeployment(p *policy.Policy, req *verdict.Request[DeploymentView, verdict.None], _ time.Time) (verdict.Verdict, error) {
	if req.Object == nil {
		return verdict.Verdict{}, &verdict.BadObject{Err: verdict.ErrNoObject}
	}
	return evaluateDeployment(p, req.Namespace, req.Object), nil
}

func evaluateDeployment(p *policy.Policy, namespace string, d *DeploymentView) verdict.Verdict {
	tmpl := &d.Spec.Template
	m, mapped := p.IdentityFor(namespace, tmpl.Spec.serviceAccount())
	want := PodTemplateLabels(m)
	if !mapped || want == nil {
		return verdict.Verdict{}
	}
	v := verdict.Verdict{Identity: m.Identity.Name, Kind: "Deployment", Namespace: namespace}
	v.Patch = patch.SetMetadata(nil, "/spec/template", tmpl.Metadata, nil, want)
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
