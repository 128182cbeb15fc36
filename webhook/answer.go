package webhook

import (
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// Every handler decides into a verdict, and this file alone turns a verdict into the answer: the mode each violation
// is answered in, the response, the audit annotations, the metrics and the one message shape.

// MaxMessageLength bounds every message, so that a denial or warning reads on one terminal line.
const MaxMessageLength = 120

// Decisions: the outcome of a request, in the decision audit annotation and in
// fluxidentity_admission_decisions_total. One set for every handler.
const (
	DecisionAllowed    = "allowed"    // admitted unchanged: nothing applied, or covered and compliant
	DecisionPatched    = "patched"    // admitted with a patch
	DecisionWarned     = "warned"     // admitted with warnings
	DecisionDenied     = "denied"     // refused: a violation answered in enforce mode
	DecisionUnenforced = "unenforced" // violations of rules in mode off only: admitted silently, still counted
	DecisionExcepted   = "excepted"   // credentials excused by an unexpired exception, nothing else wrong
	DecisionSkipped    = "skipped"    // never evaluated: a deletion, a status update, an object being deleted
	DecisionErrored    = "errored"    // the request could not be evaluated
)

// Rule types: what a violation broke.
const (
	RuleMandate   = "mandate"   // a mandate of the policy (Flux sources; ServiceAccounts carrying pull secrets)
	RuleIdentity  = "identity"  // an identity entry's ownership of a mapped ServiceAccount
	RuleOwnership = "ownership" // the policy's ownership of keys no entry grants (unmapped ServiceAccounts, pods)
)

// violation is one broken rule.
type violation struct {
	ruleType, rule string // rule is the mandate's or entry's name; empty for RuleOwnership
	// mode is the rule's own mode, before the server-wide mode or the update rule can soften it.
	mode    policy.Mode
	message string
}

// verdict is what a handler decided about one request, before the answer is chosen: evaluate once, then pick the
// sink.
type verdict struct {
	patch      []jsonpatch.Operation
	violations []violation
	// warnings are advisories that are not violations (the response carries them in every mode).
	warnings []string
	// identity names the policy entry that applied; mandates the mandates covering a Flux source.
	identity string
	mandates []string
	excepted bool // an exception excused the object's credentials
	skipped  bool // the request was not evaluated
	// unchanged softens enforce to warn: an update that brings no violation the object did not already have is
	// reported as it is touched (finalizers, reconcile requests) instead of being locked.
	unchanged bool
	// kind and namespace label the violations in the metrics.
	kind, namespace string
}

// answeredMode is the mode a violation is answered in: the server-wide --mode=warn (an audit-only installation) and
// an unchanged update turn enforce into warn.
func answeredMode(m, server policy.Mode, unchanged bool) policy.Mode {
	if m == policy.ModeEnforce && (server == policy.ModeWarn || unchanged) {
		return policy.ModeWarn
	}
	return m
}

// respond turns the verdict into the admission response and counts it; the patch, when there is one, is encoded here
// once.
func (v *verdict) respond(server policy.Mode, count countedHandler) (*admissionv1.AdmissionResponse, string) {
	resp := &admissionv1.AdmissionResponse{Allowed: true}
	var denials []string
	warnings := v.warnings
	off := 0
	for _, vi := range v.violations {
		mode := answeredMode(vi.mode, server, v.unchanged)
		countViolation(string(mode), v.kind, v.namespace, vi.ruleType, vi.rule)
		switch mode {
		case policy.ModeEnforce:
			denials = append(denials, vi.message)
		case policy.ModeWarn:
			warnings = append(warnings, vi.message)
		default:
			off++
		}
	}
	decision := DecisionAllowed
	switch {
	case len(denials) > 0:
		decision = DecisionDenied
		resp.Allowed = false
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: 403, Reason: metav1.StatusReasonForbidden,
			Message: strings.Join(denials, "; ")}
	case len(warnings) > 0:
		decision = DecisionWarned
	case off > 0:
		decision = DecisionUnenforced
	case v.skipped:
		decision = DecisionSkipped
	case v.excepted:
		decision = DecisionExcepted
	case len(v.patch) > 0:
		decision = DecisionPatched
	}
	if resp.Allowed && len(v.patch) > 0 {
		// The front recycles the patch's buffer once the answer is written.
		patch, err := appendPatch(*buffers.get(256 * len(v.patch)), v.patch)
		if err != nil { // operations hold strings, maps and API types only: cannot happen
			return errorResponse(500, "encode patch: "+err.Error()), DecisionErrored
		}
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = patch, &pt
		if decision == DecisionAllowed {
			decision = DecisionPatched
		}
	}
	if len(warnings) > 0 {
		resp.Warnings = warnings
	}
	resp.AuditAnnotations = v.auditAnnotations(decision)
	count.inc(decision)
	return resp, decision
}

// auditAnnotations name the decision, the entry that applied, the mandates covering a source and the rules broken.
// The API server prefixes each key with the webhook's name (flux-sources.fluxidentity.dev/decision) and refuses keys
// that then hold a second '/', so the keys have none.
func (v *verdict) auditAnnotations(decision string) map[string]string {
	a := map[string]string{keys.AuditDecision: decision}
	if v.identity != "" {
		a[keys.AuditIdentity] = v.identity
	}
	if len(v.mandates) > 0 {
		a[keys.AuditMandate] = strings.Join(v.mandates, ",")
	}
	if len(v.violations) > 0 {
		rules := make([]string, 0, len(v.violations))
		for _, vi := range v.violations {
			r := vi.ruleType
			if vi.rule != "" {
				r += ":" + vi.rule
			}
			if len(rules) == 0 || rules[len(rules)-1] != r {
				rules = append(rules, r)
			}
		}
		a[keys.AuditRules] = strings.Join(rules, ",")
	}
	return a
}

func errorResponse(code int32, message string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Result: &metav1.Status{Status: metav1.StatusFailure, Code: code,
		Message: message}}
}

// fitMessage is the one message shape: "[rule] text", the first candidate that fits MaxMessageLength bytes, from the
// most detailed; the last one is cut, between characters, when even it does not fit. rule is a mandate's or an
// identity entry's name, or "ownership".
func fitMessage(rule string, candidates ...string) string {
	prefix := "[" + rule + "] "
	for _, c := range candidates {
		if len(prefix)+len(c) <= MaxMessageLength {
			return prefix + c
		}
	}
	s := prefix + candidates[len(candidates)-1]
	return cutUTF8(s, MaxMessageLength-3) + "..."
}

// withDetail is a message with an optional detail in parentheses, dropped first when it does not fit.
func withDetail(text, detail string) []string {
	if detail == "" {
		return []string{text}
	}
	return []string{text + " (" + detail + ")", text}
}
