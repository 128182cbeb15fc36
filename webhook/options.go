package webhook

import (
	"time"

	"github.com/go-logr/logr"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// PolicySource gives the policy in force; *policy.Reloader is one.
type PolicySource interface {
	Current() *policy.Policy
}

// Options configure the front and the decisions behind it.
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

func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// Fixed is a PolicySource that never changes: `policy explain` and the tests answer with one policy.
type Fixed struct{ Policy *policy.Policy }

// Current is the policy.
func (f Fixed) Current() *policy.Policy { return f.Policy }
