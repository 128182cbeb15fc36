package webhook

import (
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/patch"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// Every decision returns a verdict (package verdict), and this file alone turns a verdict into the answer: the mode
// each violation is answered in, the response, the audit annotations and the metrics.

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

// countedHandler is the per-path view of the decisions counter, resolved once so a request does no label lookup.
type countedHandler map[string]prometheus.Counter

func newCountedHandler(path string) countedHandler {
	c := countedHandler{}
	for _, d := range []string{DecisionAllowed, DecisionPatched, DecisionWarned, DecisionDenied, DecisionUnenforced,
		DecisionExcepted, DecisionSkipped, DecisionErrored} {
		c[d] = admissionDecisions.WithLabelValues(path, d)
	}
	return c
}

func (c countedHandler) inc(decision string) { c[decision].Inc() }

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
func respond(v *verdict.Verdict, server policy.Mode, count countedHandler) (*admissionv1.AdmissionResponse, string) {
	resp := &admissionv1.AdmissionResponse{Allowed: true}
	var denials []string
	warnings := v.Warnings
	off := 0
	for _, vi := range v.Violations {
		mode := answeredMode(vi.Mode, server, v.Unchanged)
		countViolation(string(mode), v.Kind, v.Namespace, vi.RuleType, vi.Rule)
		// Each message once: violations of one row by many entries (a Secret's decryption keys) read the same.
		switch mode {
		case policy.ModeEnforce:
			denials = appendNew(denials, vi.Message)
		case policy.ModeWarn:
			warnings = appendNew(warnings, vi.Message)
		default:
			off++
		}
	}
	decision := decisionOf(v, len(denials) > 0, len(warnings) > 0, off > 0)
	if decision == DecisionDenied {
		resp.Allowed = false
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: 403, Reason: metav1.StatusReasonForbidden,
			Message: strings.Join(denials, "; ")}
	}
	if resp.Allowed && len(v.Patch) > 0 {
		// The front recycles the patch's buffer once the answer is written.
		patch, err := patch.Append(*buffers.get(256 * len(v.Patch)), v.Patch)
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
	resp.AuditAnnotations = auditAnnotations(v, decision)
	count.inc(decision)
	return resp, decision
}

// Outcome is the decision a verdict comes to when the server runs in mode server, as respond decides it: what the
// answer's decision audit annotation and fluxidentity_admission_decisions_total say. Nothing is counted.
func Outcome(v *verdict.Verdict, server policy.Mode) string {
	denied, warned, off := false, len(v.Warnings) > 0, false
	for _, vi := range v.Violations {
		switch answeredMode(vi.Mode, server, v.Unchanged) {
		case policy.ModeEnforce:
			denied = true
		case policy.ModeWarn:
			warned = true
		default:
			off = true
		}
	}
	return decisionOf(v, denied, warned, off)
}

// decisionOf names the outcome of a verdict whose violations, in the modes they are answered in, deny, warn or are
// off.
func decisionOf(v *verdict.Verdict, denied, warned, off bool) string {
	switch {
	case denied:
		return DecisionDenied
	case warned:
		return DecisionWarned
	case off:
		return DecisionUnenforced
	case v.Skipped:
		return DecisionSkipped
	case v.Excepted:
		return DecisionExcepted
	case len(v.Patch) > 0:
		return DecisionPatched
	}
	return DecisionAllowed
}

// auditAnnotations name the decision, the entry that applied, the mandates covering a source and the rules broken.
// The API server prefixes each key with the webhook's name (flux-sources.fluxidentity.dev/decision) and refuses keys
// that then hold a second '/', so the keys have none.
func auditAnnotations(v *verdict.Verdict, decision string) map[string]string {
	a := map[string]string{keys.AuditDecision: decision}
	if v.Identity != "" {
		a[keys.AuditIdentity] = v.Identity
	}
	if len(v.Mandates) > 0 {
		a[keys.AuditMandate] = strings.Join(v.Mandates, ",")
	}
	if len(v.Violations) > 0 {
		rules := make([]string, 0, len(v.Violations))
		for _, vi := range v.Violations {
			r := vi.RuleType
			if vi.Rule != "" {
				r += ":" + vi.Rule
			}
			if len(rules) == 0 || rules[len(rules)-1] != r {
				rules = append(rules, r)
			}
		}
		a[keys.AuditRules] = strings.Join(rules, ",")
	}
	return a
}

// appendNew appends m unless list holds it. The lists are short (distinct messages are bounded by the mandates times
// the model's rows), so a search costs less than a set.
func appendNew(list []string, m string) []string {
	if slices.Contains(list, m) {
		return list
	}
	return append(list, m)
}

func errorResponse(code int32, message string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Result: &metav1.Status{Status: metav1.StatusFailure, Code: code,
		Message: message}}
}
