package webhook

import (
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// maxMessageLength keeps each violation short enough to read in kubectl's one-line error output.
const maxMessageLength = 120

// verdict is what a mutating handler decided about one object, before the mode chooses how to answer: evaluate once,
// then pick the sink.
type verdict struct {
	patch      []jsonpatch.Operation
	violations []string
	// mode answers the violations: enforce denies, warn admits with warnings, off admits silently.
	mode policy.Mode
	// identity names the policy entry that applied, if any.
	identity string
	// kind, namespace and rule label the violations in fluxidentity_violations_total and the audit log; rule is the
	// identity entry, or "ownership" when no entry maps the object.
	kind, namespace, rule string
}

// effectiveMode applies the server-wide mode: an audit-only installation (--mode=warn) never denies.
func effectiveMode(m, server policy.Mode) policy.Mode {
	if m == policy.ModeEnforce && server == policy.ModeWarn {
		return policy.ModeWarn
	}
	return m
}

// answer turns a verdict into the admission response and counts it. The entry that applied travels as the audit
// annotation "identity" (the API server records it as <webhook name>/identity), which is also how `policy explain`
// names it.
// Violations are counted, and named in the audit annotations decision and mandate, in every mode, off included.
func (v verdict) answer(server policy.Mode, count countedHandler) admission.Response {
	resp := v.response(server, count)
	if v.identity != "" {
		resp.AuditAnnotations = map[string]string{keys.AuditIdentity: v.identity}
	}
	if len(v.violations) > 0 {
		mode := effectiveMode(v.mode, server)
		sourceViolations.WithLabelValues(string(mode), v.kind, v.namespace, v.rule).Add(float64(len(v.violations)))
		if resp.AuditAnnotations == nil {
			resp.AuditAnnotations = map[string]string{}
		}
		resp.AuditAnnotations[AuditKeyDecision] = map[policy.Mode]string{
			policy.ModeEnforce: SourceDenied, policy.ModeWarn: SourceWarned, policy.ModeOff: SourceIgnored}[mode]
		resp.AuditAnnotations[AuditKeyMandate] = v.rule
	}
	return resp
}

func (v verdict) response(server policy.Mode, count countedHandler) admission.Response {
	if len(v.violations) > 0 {
		switch effectiveMode(v.mode, server) {
		case policy.ModeEnforce:
			count.denied.Inc()
			return admission.Denied(strings.Join(v.violations, "; "))
		case policy.ModeWarn:
			count.warned.Inc()
			resp := admission.Patched("", v.patch...)
			resp.Warnings = v.violations
			return resp
		}
	}
	if len(v.patch) == 0 {
		count.allowed.Inc()
		return admission.Allowed("")
	}
	count.patched.Inc()
	return admission.Patched("", v.patch...)
}

// message formats a violation "[prefix] rule: fix", shortening it to maxMessageLength bytes by dropping the optional
// detail first and then truncating (names and keys are ASCII, so cutting bytes cuts no character).
func message(prefix, rule, detail string) string {
	m := "[" + prefix + "] " + rule
	if detail != "" && len(m)+len(detail)+3 <= maxMessageLength {
		m += " (" + detail + ")"
	}
	if len(m) > maxMessageLength {
		m = m[:maxMessageLength-3] + "..."
	}
	return m
}
