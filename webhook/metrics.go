package webhook

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Decisions, the values of the decision label.
const (
	DecisionAllowed = "allowed" // admitted unchanged
	DecisionPatched = "patched" // admitted with a patch
	DecisionWarned  = "warned"  // admitted with warnings
	DecisionDenied  = "denied"
	DecisionErrored = "errored" // the request could not be evaluated
)

var admissionDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "fluxidentity_admission_decisions_total",
	Help: "Admission requests answered, by webhook path and decision.",
}, []string{"webhook", "decision"})

func init() {
	metrics.Registry.MustRegister(admissionDecisions)
}

// countedHandler is the per-path view of the counter, resolved once so the hot path does no label lookup.
type countedHandler struct {
	allowed, patched, warned, denied, errored prometheus.Counter
}

func newCountedHandler(path string) countedHandler {
	c := func(d string) prometheus.Counter { return admissionDecisions.WithLabelValues(path, d) }
	return countedHandler{
		allowed: c(DecisionAllowed), patched: c(DecisionPatched), warned: c(DecisionWarned),
		denied: c(DecisionDenied), errored: c(DecisionErrored),
	}
}
