package webhook

import (
	"context"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"

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
	// ReadTimeout bounds how long a request body may take to arrive; 10 s when zero.
	ReadTimeout time.Duration
	// Log receives decisions worth a line (violations, errors); request-controlled strings are clipped.
	Log logr.Logger
	// Now is the clock deciding which exceptions have expired; time.Now when nil.
	Now func() time.Time
}

// deciders are the handlers, each a decode of the review into its view and a decision, keyed by path.
func (s *Server) deciders() map[string]func(context.Context, *policy.Policy, []byte) (types.UID, verdict, error) {
	return map[string]func(context.Context, *policy.Policy, []byte) (types.UID, verdict, error){
		PathMutateServiceAccount: s.serviceAccount,
		PathMutatePod:            s.pod,
		PathMutateDeployment:     s.deployment,
		PathValidateFluxSources:  s.source,
		PathValidatePod:          s.podMetadata,
	}
}

func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}
