package webhook

import (
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// PolicySource gives the policy in force; *policy.Reloader is one.
type PolicySource interface {
	Current() *policy.Policy
}

// Options configure the admission handlers.
type Options struct {
	Policy PolicySource
	// Mode is the server-wide mode: ModeWarn turns every denial into a warning (audit-only installation).
	Mode policy.Mode
	// MaxRequestBytes caps request bodies; DefaultMaxRequestBytes when zero.
	MaxRequestBytes int64
}

// Handlers builds the admission handlers keyed by path. Register serves them; `policy explain` calls them directly, so
// the CLI and the server answer from one code path.
func Handlers(o Options) map[string]admission.Handler {
	return map[string]admission.Handler{
		PathMutateServiceAccount: &serviceAccountMutator{opts: o, count: newCountedHandler(PathMutateServiceAccount)},
		PathMutatePod:            &podMutator{opts: o, count: newCountedHandler(PathMutatePod)},
		PathMutateDeployment:     &deploymentMutator{opts: o, count: newCountedHandler(PathMutateDeployment)},
		PathValidateFluxSources:  &sourceValidator{opts: o, count: newCountedHandler(PathValidateFluxSources)},
		PathValidatePod:          &podMetadataValidator{opts: o, count: newCountedHandler(PathValidatePod)},
	}
}

// leanHandlers are the single-decode paths of the two hot handlers (see lean.go). PathValidatePod has none: its
// matchCondition sends it only the rare updates it refuses, so it is not hot.
func leanHandlers(o Options) map[string]leanHandler {
	return map[string]leanHandler{
		PathMutatePod: &leanPath[podView, podRouting]{opts: o, count: newCountedHandler(PathMutatePod),
			evaluate: evaluatePod, route: podIsMapped},
		PathMutateServiceAccount: &leanPath[serviceAccountView, struct{}]{opts: o, count: newCountedHandler(PathMutateServiceAccount),
			evaluate: func(p *policy.Policy, ns string, sa *serviceAccountView) (verdict, error) {
				return evaluateServiceAccount(p, ns, sa), nil
			}},
	}
}

// Register serves the admission handlers on srv at their fixed paths; controller-runtime's Register adds its request
// metrics to each.
func Register(srv ctrlwebhook.Server, o Options) {
	lean := leanHandlers(o)
	for path, h := range Handlers(o) {
		srv.Register(path, &ReviewHandler{Webhook: &admission.Webhook{Handler: h}, lean: lean[path],
			MaxRequestBytes: o.MaxRequestBytes})
	}
}
