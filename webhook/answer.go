package webhook

import (
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

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
func (v verdict) answer(server policy.Mode, count countedHandler) admission.Response {
	resp := v.response(server, count)
	if v.identity != "" {
		resp.AuditAnnotations = map[string]string{AuditIdentity: v.identity}
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

// message formats a violation "[prefix] rule: fix", shortening it to maxMessageLength by dropping the optional
// detail first and then truncating.
func message(prefix, rule, detail string) string {
	m := "[" + prefix + "] " + rule
	if detail != "" && len(m)+len(detail)+3 <= maxMessageLength {
		m += " (" + detail + ")"
	}
	if len(m) > maxMessageLength {
		m = m[:maxMessageLength-1] + "…"
	}
	return m
}
