package webhook

import (
	"slices"
	"strings"
	"time"

	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// MaxMessageLength bounds every violation message, so that a denial or warning reads on one terminal line.
const MaxMessageLength = 120

// Values of the decision audit annotation (AuditKeyDecision) and of SourceAnswer.Decision.
const (
	SourceDenied      = "denied"       // an enforce violation: the request is refused
	SourceWarned      = "warned"       // warn violations only: admitted with warnings
	SourceIgnored     = "ignored"      // off violations only: admitted silently, still counted
	SourceExcepted    = "excepted"     // spec.secretRef excused by an unexpired exception, nothing else wrong
	SourceCompliant   = "compliant"    // covered by a mandate and nothing wrong
	SourceNotMandated = "not-mandated" // no mandate covers this kind in this namespace
	SourceSkipped     = "skipped"      // deletions, status updates and objects being deleted are never evaluated
)

// Audit annotation keys of the validating webhook. The API server prefixes them with the webhook's name and requires
// the result to be a qualified name, so they carry no '/' of their own: the audit log shows
// flux-sources.fluxidentity.dev/decision and flux-sources.fluxidentity.dev/mandate.
const (
	AuditKeyDecision = "decision"
	AuditKeyMandate  = "mandate"
)

// The ServiceAccounts of Flux's controllers that read sources: the controller-level identity when an object names no
// ServiceAccount of its own.
const (
	fluxNamespace                   = "flux-system"
	sourceControllerAccount         = "source-controller"
	imageReflectorControllerAccount = "image-reflector-controller"
)

// SourceViolation is one broken rule of one mandate.
type SourceViolation struct {
	Mandate string `json:"mandate"`
	// Mode is the mandate's mode, before the server-wide mode or the update rule can soften it.
	Mode policy.Mode `json:"mode"`
	// Field is the offending field, e.g. spec.secretRef.
	Field string `json:"field"`
	// Message names the mandate and the fix, in at most MaxMessageLength bytes; it never holds secret names.
	Message string `json:"message"`
}

// SourceDecision is what the policy says about one Flux source. The admission handler, the audit command and explain
// all compute it with EvaluateSource.
type SourceDecision struct {
	Kind, Namespace, Name string
	// Mandates are the names of the mandates covering the object, in file order.
	Mandates []string
	// Violations are every broken rule, in mandate order.
	Violations []SourceViolation
	// Exception is the unexpired exception that excused spec.secretRef, if one did.
	Exception *policy.Exception
}

// EvaluateSource applies the policy's mandates to a Flux source:
//   - spec.secretRef is a violation of each covering mandate unless spec.provider is in its allowProviders or an
//     unexpired exception names the object (spec.verify.secretRef, spec.proxySecretRef and spec.certSecretRef are
//     never looked at);
//   - spec.serviceAccountName naming a ServiceAccount the policy does not map in the namespace is a violation (Flux
//     would fail to get a token at reconcile time), and so is a spec.provider that is not the cloud of the identity
//     mapped to it. These two are reported once, under the strictest covering mandate.
//
// Exceptions excuse spec.secretRef only: a ServiceAccount without identity fails whatever the exception says.
func EvaluateSource(p *policy.Policy, obj SourceObject, now time.Time) SourceDecision {
	d := SourceDecision{Kind: obj.Kind, Namespace: obj.Namespace, Name: obj.Name}
	mandates := p.MandatesFor(obj.Namespace, obj.Kind)
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
	hint := hintFor(p, obj)
	spec := field.NewPath("spec")
	for _, m := range mandates {
		if obj.HasSecretRef() && !slices.Contains(m.AllowProviders, obj.provider()) {
			if e, ok := p.ExceptionFor(obj.Namespace, obj.Kind, obj.Name, now); ok {
				d.Exception = e
			} else {
				d.Violations = append(d.Violations, SourceViolation{
					Mandate: m.Name, Mode: m.Mode, Field: spec.Child("secretRef").String(),
					Message: sourceMessage(m.Name, secretRefFixes(obj, hint)...),
				})
			}
		}
		if m != strictest || obj.ServiceAccountName == "" {
			continue
		}
		match, mapped := p.IdentityFor(obj.Namespace, obj.ServiceAccountName)
		switch {
		case !mapped:
			d.Violations = append(d.Violations, SourceViolation{
				Mandate: m.Name, Mode: m.Mode, Field: spec.Child("serviceAccountName").String(),
				Message: sourceMessage(m.Name, unmappedAccountFixes(obj, hint)...),
			})
		case obj.provider() != string(match.Cloud):
			d.Violations = append(d.Violations, SourceViolation{
				Mandate: m.Name, Mode: m.Mode, Field: spec.Child("provider").String(),
				Message: sourceMessage(m.Name, providerFixes(obj, match)...),
			})
		}
	}
	return d
}

// SourceAnswer is how a decision is answered at admission.
type SourceAnswer struct {
	// Decision is one of the Source* values.
	Decision string
	// Denials are the messages of violations answered in enforce mode; the request is refused when there are any.
	Denials []string
	// Warnings are the messages of violations answered in warn mode.
	Warnings []string
	// Modes holds, for each violation of the decision in order, the mode it was answered in.
	Modes []policy.Mode
}

// Answer decides how to answer: each violation in its mandate's mode, except that the server-wide ModeWarn
// (audit-only installation) turns enforce into warn, and so does unchanged, when an update leaves the object's
// credentials as they were: an object that already violates is reported as it is touched (finalizers, reconcile
// requests, other spec changes) instead of being locked.
func (d SourceDecision) Answer(serverMode policy.Mode, unchanged bool) SourceAnswer {
	a := SourceAnswer{Decision: SourceNotMandated}
	if len(d.Mandates) > 0 {
		a.Decision = SourceCompliant
		if d.Exception != nil {
			a.Decision = SourceExcepted
		}
	}
	for _, v := range d.Violations {
		mode := v.Mode
		if mode == policy.ModeEnforce && (serverMode == policy.ModeWarn || unchanged) {
			mode = policy.ModeWarn
		}
		a.Modes = append(a.Modes, mode)
		switch mode {
		case policy.ModeEnforce:
			a.Denials = append(a.Denials, v.Message)
		case policy.ModeWarn:
			a.Warnings = append(a.Warnings, v.Message)
		}
	}
	switch {
	case len(a.Denials) > 0:
		a.Decision = SourceDenied
	case len(a.Warnings) > 0:
		a.Decision = SourceWarned
	case len(d.Violations) > 0:
		a.Decision = SourceIgnored
	}
	return a
}

// identityHint is the identity a fix message points at.
type identityHint struct {
	match policy.Match
	// account is the ServiceAccount in the object's namespace carrying the identity; empty for the controller's own.
	account string
}

// usable says whether the kind can authenticate with the hinted identity's cloud.
func (h identityHint) usable(obj SourceObject) bool { return supportsCloud(obj, h.match.Cloud) }

// hintFor finds the identity a violating object should use: the one mapped to its spec.serviceAccountName, else one
// mapped to a ServiceAccount named literally in the policy for its namespace (object-level identity; not in
// flux-system itself), else the Flux controller's own in flux-system. An identity the kind can use is preferred over one it cannot.
func hintFor(p *policy.Policy, obj SourceObject) *identityHint {
	if obj.ServiceAccountName != "" {
		if m, ok := p.IdentityFor(obj.Namespace, obj.ServiceAccountName); ok {
			return &identityHint{match: m, account: obj.ServiceAccountName}
		}
	}
	var candidates []identityHint
	// In Flux's own namespace the controllers' identity is the one to use, not object-level identity.
	if objectLevelIdentity(obj) && obj.Namespace != fluxNamespace {
		for i := range p.Spec.Identities {
			id := &p.Spec.Identities[i]
			for _, sa := range id.ServiceAccounts {
				if strings.ContainsAny(sa, "*?") {
					continue
				}
				if m, ok := p.IdentityFor(obj.Namespace, sa); ok && m.Identity == id {
					candidates = append(candidates, identityHint{match: m, account: sa})
				}
			}
		}
	}
	controller := sourceControllerAccount
	if obj.Kind == imagev1.ImageRepositoryKind {
		controller = imageReflectorControllerAccount
	}
	if m, ok := p.IdentityFor(fluxNamespace, controller); ok {
		candidates = append(candidates, identityHint{match: m})
	}
	for i := range candidates {
		if candidates[i].usable(obj) {
			return &candidates[i]
		}
	}
	if len(candidates) > 0 {
		return &candidates[0]
	}
	return nil
}

// objectLevelIdentity says whether the kind has spec.serviceAccountName for workload identity.
func objectLevelIdentity(obj SourceObject) bool { return obj.Kind != sourcev1.HelmRepositoryKind }

// hasProvider says whether spec.provider can select workload identity for this object.
func hasProvider(obj SourceObject) bool {
	return obj.Kind != sourcev1.HelmRepositoryKind || obj.HelmType == sourcev1.HelmRepositoryTypeOCI
}

// supportsCloud says whether spec.provider of this kind accepts the cloud: Git has aws (CodeCommit) and azure (Azure
// DevOps) only; OCI, Bucket, ImageRepository and OCI HelmRepository have all three.
func supportsCloud(obj SourceObject, c policy.Cloud) bool {
	if obj.Kind == sourcev1.GitRepositoryKind {
		return c == policy.CloudAWS || c == policy.CloudAzure
	}
	return true
}

// sourceMessage prefixes the first fix that fits MaxMessageLength with the mandate; the last fix is the short form and is
// cut if even it does not fit (it always does for names within the policy's 63-character limit).
func sourceMessage(mandate string, fixes ...string) string {
	prefix := "mandate " + mandate + ": "
	for _, f := range fixes {
		if len(prefix)+len(f) <= MaxMessageLength {
			return prefix + f
		}
	}
	s := prefix + fixes[len(fixes)-1]
	return s[:MaxMessageLength-3] + "..."
}

func identitySuffix(h *identityHint) string { return " (identity " + h.match.Identity.Name + ")" }

// secretRefFixes are the fixes for a spec.secretRef, longest first.
func secretRefFixes(obj SourceObject, h *identityHint) []string {
	const remove = "remove spec.secretRef"
	if !hasProvider(obj) {
		const https = remove + ": https has no provider, use type: oci"
		if h != nil {
			set := https + " + spec.provider: " + string(h.match.Cloud)
			return []string{set + identitySuffix(h), set, https, "use type: oci + spec.provider, not secretRef"}
		}
		return []string{https + " with a mapped identity", https, "use type: oci + spec.provider, not secretRef"}
	}
	if h == nil {
		return []string{remove + " and map a workload identity for this namespace in the policy",
			remove + ", use a workload identity"}
	}
	cloud := string(h.match.Cloud)
	if !h.usable(obj) {
		return []string{remove + ": " + obj.Kind + " has no " + cloud + " provider" + identitySuffix(h) + ", add an exception",
			remove + ": " + obj.Kind + " has no " + cloud + " provider, add an exception",
			remove + " or add an exception"}
	}
	set := remove + ", set spec.provider: " + cloud
	var fixes []string
	if h.account != "" && obj.ServiceAccountName == "" {
		withSA := set + ", spec.serviceAccountName: " + h.account
		fixes = append(fixes, withSA+identitySuffix(h), withSA)
	}
	return append(fixes, set+identitySuffix(h), set)
}

// unmappedAccountFixes are the fixes for a spec.serviceAccountName the policy does not map.
func unmappedAccountFixes(obj SourceObject, h *identityHint) []string {
	const last = "map spec.serviceAccountName in the policy"
	if h != nil && h.account != "" && h.usable(obj) {
		use := " is not mapped: use " + h.account
		return []string{
			"spec.serviceAccountName " + obj.ServiceAccountName + use + identitySuffix(h),
			"spec.serviceAccountName" + use + identitySuffix(h),
			"spec.serviceAccountName" + use,
			last,
		}
	}
	const fix = " has no identity in the policy: map it or remove it"
	return []string{"spec.serviceAccountName " + obj.ServiceAccountName + fix, "spec.serviceAccountName" + fix, last}
}

// providerFixes are the fixes for a spec.provider that is not the cloud of the ServiceAccount's identity.
func providerFixes(obj SourceObject, m policy.Match) []string {
	cloud := string(m.Cloud)
	if !supportsCloud(obj, m.Cloud) {
		return []string{"identity " + m.Identity.Name + " of spec.serviceAccountName is " + cloud + ", which " +
			obj.Kind + " cannot use", obj.Kind + " cannot use a " + cloud + " identity"}
	}
	set := "set spec.provider: " + cloud
	return []string{
		"spec.provider: " + obj.provider() + " does not fit identity " + m.Identity.Name + ": " + set,
		"spec.provider: " + obj.provider() + " does not fit the identity: " + set,
		set,
	}
}
