// Package verdict is what every admission decision hands to the HTTP front: the decoded request it reads, the verdict
// it returns (a patch, violations, warnings, what applied), and the one message shape. It is the floor of the
// admission packages: the front (package webhook) and the decisions (serviceaccounts, pods, fluxobjects) import it,
// and it imports none of them. Decisions are pure: no HTTP, no metrics, no logging; what they want logged they say in
// the verdict, and the front writes it.
package verdict

import (
	"gomodules.xyz/jsonpatch/v2"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// Rule types: what a violation broke.
const (
	RuleMandate   = "mandate"   // a mandate of the policy (Flux objects; ServiceAccounts carrying pull secrets)
	RuleIdentity  = "identity"  // an identity entry's ownership of a mapped ServiceAccount
	RuleOwnership = "ownership" // the policy's ownership of keys no entry grants (unmapped ServiceAccounts, pods)
)

// Violation is one broken rule.
type Violation struct {
	RuleType, Rule string // Rule is the mandate's or entry's name; empty for RuleOwnership
	// Mode is the rule's own mode, before the server-wide mode or the update rule can soften it.
	Mode    policy.Mode
	Message string
}

// Verdict is what a decision concluded about one request, before the answer is chosen: evaluate once, then the front
// picks the sink.
type Verdict struct {
	Patch      []jsonpatch.Operation
	Violations []Violation
	// Warnings are advisories that are not violations (the response carries them in every mode).
	Warnings []string
	// Identity names the policy entry that applied; Mandates the mandates covering a Flux object.
	Identity string
	Mandates []string
	Excepted bool // an exception excused the object's credentials
	Skipped  bool // the request was not evaluated
	// Unchanged softens enforce to warn: an update that brings no violation the object did not already have is
	// reported as it is touched (finalizers, reconcile requests) instead of being locked.
	Unchanged bool
	// Kind and Namespace label the violations in the metrics.
	Kind, Namespace string
	// Log is a line the decision wants written (a decision about a Flux object, an owned annotation change); nil
	// for none. Its values are bounded by the decision (Clip) and never hold an object body or a Secret's value.
	Log *LogLine
}

// LogLine is a structured log line: a constant message and key/value pairs.
type LogLine struct {
	Message       string
	KeysAndValues []any
}
