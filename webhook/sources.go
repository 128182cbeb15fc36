package webhook

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/fluxidentity/flux-identity-webhook/webhook/fluxauth"
)

var sourceViolations = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "fluxidentity_violations_total",
	Help: "Violations found at admission, by the mode they were answered in (after --mode=warn and the " +
		"unchanged-update rule), kind, namespace and mandate: a Flux source mandate, or for ServiceAccounts the " +
		"identity entry (ownership when none maps it).",
}, []string{"mode", "kind", "namespace", "mandate"})

func init() {
	metrics.Registry.MustRegister(sourceViolations)
}

// sourceValidator keeps long-lived credentials off Flux sources where identity is mandated: it decodes the source,
// asks EvaluateSource, and answers each violation in its mode (enforce denies, warn admits with warnings, off admits).
type sourceValidator struct {
	opts  Options
	count countedHandler
	// now is the clock deciding which exceptions have expired; time.Now when nil.
	now func() time.Time
}

var _ admission.Handler = &sourceValidator{}

func (h *sourceValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	// Built only when something is logged: most requests are compliant and log nothing.
	log := func() logr.Logger {
		return logf.FromContext(ctx).WithValues("kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name,
			"operation", req.Operation)
	}
	// Deletions, status updates and anything but CREATE/UPDATE of the object itself are never blocked.
	if (req.Operation != admissionv1.Create && req.Operation != admissionv1.Update) || req.SubResource != "" {
		h.count.allowed.Inc()
		return withAudit(admission.Allowed(""), SourceSkipped, nil)
	}
	gvk := schema.GroupVersionKind{Group: req.Kind.Group, Version: req.Kind.Version, Kind: req.Kind.Kind}
	obj, err := fluxauth.Decode(gvk, req.Object.Raw)
	if err != nil {
		h.count.errored.Inc()
		log().Error(err, "cannot evaluate Flux source")
		return admission.Errored(http.StatusBadRequest, err)
	}
	if obj.Namespace == "" {
		obj.Namespace = req.Namespace
	}
	if obj.Name == "" {
		obj.Name = req.Name
	}
	if obj.Deleting { // removing the last finalizer of an object being deleted is part of deleting it
		h.count.allowed.Inc()
		return withAudit(admission.Allowed(""), SourceSkipped, nil)
	}
	now := time.Now
	if h.now != nil {
		now = h.now
	}
	p, at := h.opts.Policy.Current(), now()
	d := EvaluateSource(p, obj, at)
	// An update that brings no violation the object did not already have is reported, not denied: Flux's own
	// finalizer and status-adjacent updates must not lock an object that predates the mandate.
	unchanged := false
	if req.Operation == admissionv1.Update && len(d.Violations) > 0 {
		if old, err := fluxauth.Decode(gvk, req.OldObject.Raw); err == nil {
			old.Namespace, old.Name = obj.Namespace, obj.Name
			unchanged = d.BringsNothingNew(EvaluateSource(p, old, at))
		}
	}
	a := d.Answer(h.opts.Mode, unchanged)
	for i, v := range d.Violations {
		sourceViolations.WithLabelValues(string(a.Modes[i]), d.Kind, d.Namespace, v.Mandate).Inc()
	}
	if len(d.Violations) > 0 || d.Exception != nil {
		fields := make([]string, len(d.Violations))
		for i, v := range d.Violations {
			fields[i] = v.Mandate + " " + v.Field
		}
		log().Info("Flux source decision", "decision", a.Decision, "violations", fields, "excepted", d.Exception != nil,
			"dryRun", req.DryRun != nil && *req.DryRun)
	}

	var resp admission.Response
	switch a.Decision {
	case SourceDenied:
		h.count.denied.Inc()
		resp = admission.Denied(strings.Join(a.Denials, "; ")).WithWarnings(a.Warnings...)
	case SourceWarned:
		h.count.warned.Inc()
		resp = admission.Allowed("").WithWarnings(a.Warnings...)
	default:
		h.count.allowed.Inc()
		resp = admission.Allowed("")
	}
	return withAudit(resp, a.Decision, d.Mandates)
}

// withAudit sets the audit annotations every answer carries.
func withAudit(resp admission.Response, decision string, mandates []string) admission.Response {
	resp.AuditAnnotations = map[string]string{AuditKeyDecision: decision}
	if len(mandates) > 0 {
		resp.AuditAnnotations[AuditKeyMandate] = strings.Join(mandates, ",")
	}
	return resp
}
