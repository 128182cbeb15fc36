package webhook

import (
	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// PodTemplateLabels are the labels the Deployment webhook puts on the pod template of a Deployment whose
// ServiceAccount is mapped to m: the Azure use label, which the Azure webhook selects pods by, when m is an Azure
// identity the Azure webhook injects (not injection: full); none otherwise. doctor reports Deployments that lack them.
func PodTemplateLabels(m policy.Match) map[string]string {
	if m.Cloud != policy.CloudAzure || m.Identity.Injection == policy.InjectionFull {
		return nil
	}
	return map[string]string{keys.LabelAzureUse: "true"}
}
