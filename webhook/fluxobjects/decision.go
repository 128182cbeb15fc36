package fluxobjects

import (
	"slices"
	"time"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// Violation is one broken rule of one mandate.
type Violation struct {
	Mandate string `json:"mandate"`
	// Mode is the mandate's mode, before the server-wide mode or the update rule can soften it.
	Mode policy.Mode `json:"mode"`
	// Field is the offending field's JSON path, e.g. spec.secretRef or data[sops.aws-kms].
	Field string `json:"field"`
	// Class is what the credential model makes of the field (fluxauth.Class), e.g. "stored secret".
	Class string `json:"class"`
	// Message names the mandate and the fix, in at most verdict.MaxMessageLength bytes; it never holds a Secret's
	// name or value.
	Message string `json:"message"`
	// key identifies the violation and what it uses (a Secret's name, the URL's user info, a digest of a value), so
	// that an update can be told apart from one that brings a new credential. Never printed.
	key string
}

// Decision is what the policy says about one Flux object. The admission handler, the audit command and explain all
// compute it with Evaluate (EvaluateSecret for a SOPS decryption Secret).
type Decision struct {
	Kind, Namespace, Name string
	// Mandates are the names of the mandates covering the object, in file order.
	Mandates []string
	// Violations are every broken rule, in mandate order.
	Violations []Violation
	// Warnings are advisories that break no rule (a decryption ServiceAccount without a cloud identity: a Vault role
	// needs none).
	Warnings []string
	// Exception is the unexpired exception that excused the object's credentials, if one did.
	Exception *policy.Exception
}

// Evaluate applies the policy's mandates to a Flux object, using the credential model (fluxauth) to learn how Flux
// would authenticate it:
//   - a stored secret, a credential written in the object, the pull secrets of a ServiceAccount with provider generic,
//     or another namespace's credentials violate every covering mandate; so does a GitHub App key unless the
//     mandate's allowProviders accepts github, TLS material only when the mandate covers tlsClientKeys, a proxy login
//     only when it covers proxyCredentials, SOPS private keys only with sopsPrivateKeys, a Receiver's token only with
//     receiverTokens. An unexpired exception for the object excuses these;
//   - a credential configuration that borrows an identity the namespace does not own (fluxauth.BorrowedIdentity)
//     violates every covering mandate, and nothing excuses it;
//   - a cloud identity asked for without a ServiceAccount authenticates as the Flux controller itself: outside Flux's
//     own namespaces a violation of every covering mandate that does not allowControllerIdentity (with the controller's
//     lockdown flag declared in the policy, that ServiceAccount is checked instead);
//   - a ServiceAccount the policy does not map in the namespace, or mapped to another cloud than the object's, is a
//     violation reported once, under the strictest covering mandate. Exceptions never excuse identity problems;
//   - credentials Flux offers no identity alternative for are never violations (audit lists them).
func Evaluate(p *policy.Policy, o fluxauth.Object, now time.Time) Decision {
	return evaluate(p, o, fluxauth.Uses(o), now)
}

// EvaluateSecret applies the policy's mandates covering kind Secret to a SOPS decryption Secret's entries (data, with
// stringData merged over it as the API server does).
func EvaluateSecret(p *policy.Policy, namespace, name string, data map[string][]byte, now time.Time) Decision {
	o := fluxauth.Object{Kind: fluxauth.SecretKind, Namespace: namespace, Name: name}
	return evaluate(p, o, fluxauth.SecretUses(data), now)
}

func evaluate(p *policy.Policy, o fluxauth.Object, uses []fluxauth.Use, now time.Time) Decision {
	d := Decision{Kind: o.Kind, Namespace: o.Namespace, Name: o.Name}
	mandates := p.MandatesFor(o.Namespace, o.Kind)
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
	fx := newFixer(p, o)
	exception, excepted := p.ExceptionFor(o.Namespace, o.Kind, o.Name, now)
	violate := func(m *policy.Mandate, u fluxauth.Use, field, key string, messages []string) {
		d.Violations = append(d.Violations, Violation{Mandate: m.Name, Mode: m.Mode, Field: field,
			Class: string(u.Class), Message: verdict.FitMessage(m.Name, messages...),
			key: m.Name + "\x00" + field + "\x00" + key})
	}
	for _, m := range mandates {
		for _, u := range uses {
			switch {
			case refusesCredential(m, u.Class):
				if excepted {
					d.Exception = exception
					continue
				}
				violate(m, u, fluxauth.Path(u.Field), string(u.Class)+"\x00"+u.Ref, fx.credential(u))
			case u.Class == fluxauth.BorrowedIdentity:
				violate(m, u, fluxauth.Path(u.Field), "borrowed\x00"+u.Ref, fx.borrowedIdentity(u))
			case u.Class == fluxauth.ControllerIdentity:
				if account := LockdownAccount(p, u.Row.Lockdown); account != "" {
					if m == strictest {
						fx.checkLockdownAccount(m, u, account, violate, &d.Warnings)
					}
				} else if !p.FluxNamespace(o.Namespace) && !m.AllowControllerIdentity {
					field := fluxauth.Path(u.Field)
					if o.Kind == sourcev1.HelmRepositoryKind { // it has no serviceAccountName: the provider is the fault
						field = fluxauth.FieldProvider
					}
					violate(m, u, field, "controller", fx.controllerIdentity(u))
				}
			case u.Class == fluxauth.ObjectIdentity && m == strictest:
				fx.checkAccount(m, u, o.ServiceAccountName, violate)
			case u.Class == fluxauth.KMSIdentity && m == strictest:
				if w := fx.kmsIdentity(m, o.DecryptionServiceAccountName, false); w != "" {
					d.Warnings = append(d.Warnings, w)
				}
			}
		}
	}
	return d
}

// LockdownAccount is the ServiceAccount the policy says the controller's lockdown flag names, "" when it names none.
func LockdownAccount(p *policy.Policy, l fluxauth.Lockdown) string {
	switch l {
	case fluxauth.LockdownServiceAccount:
		return p.Spec.Flux.DefaultServiceAccount
	case fluxauth.LockdownDecryption:
		return p.Spec.Flux.DefaultDecryptionServiceAccount
	case fluxauth.LockdownKubeConfig:
		return p.Spec.Flux.DefaultKubeConfigServiceAccount
	}
	return ""
}

// refusesCredential says whether a mandate refuses a use of this class as a long-lived credential.
func refusesCredential(m *policy.Mandate, c fluxauth.Class) bool {
	switch c {
	case fluxauth.StoredSecret, fluxauth.InlineCredential, fluxauth.PullSecrets, fluxauth.BorrowedCredentials:
		return true
	case fluxauth.AppKey:
		return !slices.Contains(m.AllowProviders, policy.ProviderGitHub)
	case fluxauth.TLSMaterial:
		return m.Covers(policy.CoverTLSClientKeys)
	case fluxauth.ProxyLogin:
		return m.Covers(policy.CoverProxyCredentials)
	case fluxauth.SOPSKeys:
		return m.Covers(policy.CoverSOPSPrivateKeys)
	case fluxauth.ReceiverToken:
		return m.Covers(policy.CoverReceiverTokens)
	}
	return false
}

// Verdict hands the decision to the answer.
func (d Decision) Verdict() verdict.Verdict {
	v := verdict.Verdict{Mandates: d.Mandates, Excepted: d.Exception != nil, Kind: d.Kind, Namespace: d.Namespace,
		Warnings: d.Warnings}
	for _, sv := range d.Violations {
		v.Violations = append(v.Violations, verdict.Violation{RuleType: verdict.RuleMandate, Rule: sv.Mandate,
			Mode: sv.Mode, Message: sv.Message})
	}
	return v
}

// BringsNothingNew says whether every violation of d was already a violation of old, with the same credential: an
// update that changes other fields of an object that already violates is reported, not denied.
// A set, not a search of the list: a Secret can hold as many decryption keys as its body can carry, one violation each.
func (d Decision) BringsNothingNew(old Decision) bool {
	before := make(map[string]struct{}, len(old.Violations))
	for _, o := range old.Violations {
		before[o.key] = struct{}{}
	}
	for _, v := range d.Violations {
		if _, ok := before[v.key]; !ok {
			return false
		}
	}
	return true
}
