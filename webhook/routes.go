package webhook

import (
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/fluxobjects"
	"github.com/fluxidentity/flux-identity-webhook/webhook/pods"
	"github.com/fluxidentity/flux-identity-webhook/webhook/serviceaccounts"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// decisions binds every path of the route table (internal/routes) to the decision that answers it: a request goes
// from route.ServeHTTP through its decider straight into the function named here.
var decisions = map[string]decider{
	routes.PathMutateServiceAccount:   decide(serviceaccounts.Admit),
	routes.PathMutatePod:              decide(pods.Admit),
	routes.PathMutateDeployment:       decide(pods.AdmitDeployment),
	routes.PathValidateFluxSources:    decide(fluxobjects.Admit),
	routes.PathValidateFluxObjects:    decide(fluxobjects.Admit),
	routes.PathValidateSecret:         decide(fluxobjects.AdmitSecret),
	routes.PathValidatePod:            decide(pods.AdmitMetadataChange),
	routes.PathValidateServiceAccount: decide(serviceaccounts.AdmitGenerated),
}

// decider decodes a review body once, into the view its decision reads, and decides. A *badRequest is a body that is
// no AdmissionReview (HTTP 400); a *verdict.BadObject a review whose object the decision cannot read (a 400 result);
// any other error an evaluation failure (a 500 result).
type decider func(p *policy.Policy, body []byte, now time.Time) (types.UID, verdict.Verdict, error)

// decide adapts a decision about requests of view O (and old view OO) to the front.
func decide[O, OO any](d func(*policy.Policy, *verdict.Request[O, OO], time.Time) (verdict.Verdict, error)) decider {
	return func(p *policy.Policy, body []byte, now time.Time) (types.UID, verdict.Verdict, error) {
		req, err := decodeReview[O, OO](body)
		if err != nil {
			return uidOf(req), verdict.Verdict{}, err
		}
		v, err := d(p, req, now)
		return req.UID, v, err
	}
}
