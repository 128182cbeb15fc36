package webhook

import (
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
)

// Every label value comes from a bounded set: webhook paths, decisions, modes, kinds and rule types are fixed; rule
// names are the policy's; a namespace is a label value only when it is a valid namespace name and one of the first
// maxNamespaceLabels seen. The webhook port is reachable from every pod, so a request can name any namespace, and an
// unbounded label would let a caller grow /metrics and the process without limit.

var (
	admissionDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fluxidentity_admission_decisions_total",
		Help: "Admission requests answered, by webhook path and decision (allowed, patched, warned, denied, " +
			"unenforced, excepted, skipped, errored).",
	}, []string{"webhook", "decision"})
	violations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fluxidentity_violations_total",
		Help: "Violations found at admission, by the mode they were answered in (after --mode=warn and the " +
			"unchanged-update rule), the object's kind and namespace, and the rule broken: rule_type mandate, " +
			"identity or ownership, rule the mandate's or identity entry's name (empty for ownership).",
	}, []string{"mode", "kind", "namespace", "rule_type", "rule"})
)

func init() {
	metrics.Registry.MustRegister(admissionDecisions, violations)
}

func countViolation(mode, kind, namespace, ruleType, rule string) {
	violations.WithLabelValues(mode, boundedKind(kind), namespaceLabel(namespace), ruleType, rule).Inc()
}

// Label values for what cannot be a label.
const (
	labelOther   = "_other"   // a namespace past the cardinality cap
	labelInvalid = "_invalid" // a string that is no namespace name or kind
)

// maxNamespaceLabels caps the namespaces that become label values: enough for the namespaces a policy names in a
// large cluster, small enough that /metrics stays small whatever callers send.
const maxNamespaceLabels = 1000

var namespaceLabels = struct {
	sync.Mutex
	seen map[string]struct{}
}{seen: map[string]struct{}{}}

func namespaceLabel(ns string) string {
	if !isDNSLabel(ns) {
		return labelInvalid
	}
	namespaceLabels.Lock()
	defer namespaceLabels.Unlock()
	if _, ok := namespaceLabels.seen[ns]; ok {
		return ns
	}
	if len(namespaceLabels.seen) >= maxNamespaceLabels {
		return labelOther
	}
	namespaceLabels.seen[ns] = struct{}{}
	return ns
}

// boundedKind keeps the kinds the webhook answers for; anything else (a request can claim any kind) is invalid.
func boundedKind(kind string) string {
	switch kind {
	case "ServiceAccount", "Pod", "Deployment", "Binding":
		return kind
	}
	if slices.Contains(fluxauth.Kinds, kind) {
		return kind
	}
	return labelInvalid
}

// isDNSLabel reports whether s is a valid namespace name (RFC 1123 label).
func isDNSLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
		if !alnum && (c != '-' || i == 0 || i == len(s)-1) {
			return false
		}
	}
	return true
}
