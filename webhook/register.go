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

// Register serves the admission handlers on srv at their fixed paths.
func Register(srv ctrlwebhook.Server, o Options) {
	for path, h := range map[string]admission.Handler{
		PathMutateServiceAccount: &serviceAccountMutator{opts: o, count: newCountedHandler(PathMutateServiceAccount)},
		PathMutatePod:            &podMutator{opts: o, count: newCountedHandler(PathMutatePod)},
		PathValidateFluxSources:  &sourceValidator{opts: o, count: newCountedHandler(PathValidateFluxSources)},
	} {
		srv.Register(path, &ReviewHandler{Webhook: &admission.Webhook{Handler: h}, MaxRequestBytes: o.MaxRequestBytes})
	}
}
