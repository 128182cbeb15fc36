package fluxobjects

import (
	"slices"
	"time"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// SourceViolation is one broken rule of one mandate.
type SourceViolation struct {
	Mandate string `json:"mandate"`
	// Mode is the mandate's mode, before the server-wide mode or the update rule can soften it.
	Mode policy.Mode `json:"mode"`
	// Field is the offending field's JSON path, e.g. spec.secretRef.
	Field string `json:"field"`
	// Message names the mandate and the fix, in at most verdict.MaxMessageLength bytes; it never holds secret names.
	Message string `json:"message"`
	// key identifies the violation and what it uses (a Secret's name, the URL's user info), so that an update can
	// be told apart from one that brings a new credential. Never printed.
	key string
}

// SourceDecision is what the policy says about one Flux source. The admission handler, the audit command and explain
// all compute it with Evaluate.
type SourceDecision struct {
	Kind, Namespace, Name string
	// Mandates are the names of the mandates covering the object, in file order.
	Mandates []string
	// Violations are every broken rule, in mandate order.
	Violations []SourceViolation
	// Exception is the unexpired exception that excused the object's credentials, if one did.
	Exception *policy.Exception
}

// Evaluate applies the policy's mandates to a Flux source, using the credential model (fluxauth) to learn how
// Flux would authenticate it:
//   - a stored secret, a credential written in the object, or the pull secrets of a ServiceAccount with provider
//     generic violate every covering mandate; so does a GitHub App key unless the mandate's allowProviders accepts
//     github, TLS material only when the mandate covers tlsClientKeys, a proxy login only when it covers
//     proxyCredentials. An unexpired exception for the object excuses these;
//   - a cloud provider without spec.serviceAccountName authenticates as the Flux controller itself: outside Flux's own
//     namespaces a violation of every covering mandate that does not allowControllerIdentity (with Flux's
//     --default-service-account lockdown declared in the policy, that ServiceAccount is checked instead);
//   - a ServiceAccount the policy does not map in the namespace, or mapped to another cloud than spec.provider, is a
//     violation reported once, under the strictest covering mandate. Exceptions never excuse identity problems.
func Evaluate(p *policy.Policy, s fluxauth.Source, now time.Time) SourceDecision {
	d := SourceDecision{Kind: s.Kind, Namespace: s.Namespace, Name: s.Name}
	mandates := p.MandatesFor(s.Namespace, s.Kind)
	if len(mandates) == 0 {
		return d
	}
	strictest := mandates[0]
	for _, m := range mandates {
		d.Mandates = append(d.Mandates, m.Name)
		if policy.Stricter(strictest.Mode, m.Mode) != strictest.Mode {
			strictest = m
		}
	}
	fx := newFixer(p, s)
	exception, excepted := p.ExceptionFor(s.Namespace, s.Kind, s.Name, now)
	violate := func(m *policy.Mandate, field, key string, messages []string) {
		d.Violations = append(d.Violations, SourceViolation{Mandate: m.Name, Mode: m.Mode, Field: field,
			Message: verdict.FitMessage(m.Name, messages...), key: m.Name + "\x00" + field + "\x00" + key})
	}
	uses := fluxauth.Uses(s)
	for _, m := range mandates {
		for _, u := range uses {
			switch {
			case refusesCredential(m, u.Class):
				if excepted {
					d.Exception = exception
					continue
				}
				violate(m, fluxauth.Path(u.Field), string(u.Class)+"\x00"+u.Ref, fx.credential(u))
			case u.Class == fluxauth.ControllerIdentity:
				if account := p.Spec.Flux.DefaultServiceAccount; account != "" && u.Row.Lockdown {
					if m == strictest {
						fx.checkAccount(m, account, true, violate)
					}
				} else if !p.FluxNamespace(s.Namespace) && !m.AllowControllerIdentity {
					field := fluxauth.FieldServiceAccountName
					if s.Kind == sourcev1.HelmRepositoryKind { // it has no serviceAccountName: the provider is the fault
						field = fluxauth.FieldProvider
					}
					violate(m, field, "controller", fx.controllerIdentity())
				}
			case u.Class == fluxauth.ObjectIdentity && m == strictest:
				fx.checkAccount(m, s.ServiceAccountName, false, violate)
			}
		}
	}
	return d
}

// refusesCredential says whether a mandate refuses a use of this class as a long-lived credential.
func refusesCredential(m *policy.Mandate, c fluxauth.Class) bool {
	switch c {
	case fluxauth.StoredSecret, fluxauth.InlineCredential, fluxauth.PullSecrets:
		return true
	case fluxauth.AppKey:
		return !slices.Contains(m.AllowProviders, policy.ProviderGitHub)
	case fluxauth.TLSMaterial:
		return m.Covers(policy.CoverTLSClientKeys)
	case fluxauth.ProxyLogin:
		return m.Covers(policy.CoverProxyCredentials)
	}
	return false
}

// Verdict hands the decision to the answer.
func (d SourceDecision) Verdict() verdict.Verdict {
	v := verdict.Verdict{Mandates: d.Mandates, Excepted: d.Exception != nil, Kind: d.Kind, Namespace: d.Namespace}
	for _, sv := range d.Violations {
		v.Violations = append(v.Violations, verdict.Violation{RuleType: verdict.RuleMandate, Rule: sv.Mandate,
			Mode: sv.Mode, Message: sv.Message})
	}
	return v
}

// BringsNothingNew says whether every violation of d was already a violation of old, with the same credential: an
// update that changes other fields of an object that already violates is reported, not denied.
func (d SourceDecision) BringsNothingNew(old SourceDecision) bool {
	for _, v := range d.Violations {
		if !slices.ContainsFunc(old.Violations, func(o SourceViolation) bool { return o.key == v.key }) {
			return false
		}
	}
	return true
}
