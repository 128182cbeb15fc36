package webhook

import (
	"context"
	"encoding/json"
	"net/http"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// deploymentMutator puts the Azure use label on the pod template of Deployments whose ServiceAccount is mapped to an
// Azure identity. The Azure webhook selects pods by that label, and the API server never calls a webhook for the
// first time during reinvocation, so a label added to the pod by this webhook can come too late; on the template it
// is there before any pod exists, whatever the webhook order.
type deploymentMutator struct {
	opts  Options
	count countedHandler
}

var _ admission.Handler = &deploymentMutator{}

func (h *deploymentMutator) Handle(_ context.Context, req admission.Request) admission.Response {
	var d deploymentView
	if err := json.Unmarshal(req.Object.Raw, &d); err != nil {
		h.count.errored.Inc()
		return admission.Errored(http.StatusBadRequest, err)
	}
	return evaluateDeployment(h.opts.Policy.Current(), req.Namespace, &d).answer(h.opts.Mode, h.count)
}

func evaluateDeployment(p *policy.Policy, namespace string, d *deploymentView) verdict {
	tmpl := &d.Spec.Template
	m, mapped := p.IdentityFor(namespace, tmpl.Spec.serviceAccount())
	if !mapped || m.Cloud != policy.CloudAzure || m.Identity.Injection == policy.InjectionFull {
		return verdict{}
	}
	want := map[string]string{keys.LabelAzureUse: "true"}
	v := verdict{identity: m.Identity.Name}
	v.patch = setMetadata(nil, "/spec/template", tmpl.Metadata, nil, want)
	return v
}
