package app

import (
	"runtime/debug"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

var (
	policyInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fluxidentity_policy_info",
		Help: "The policy in force: 1 for its name and content digest.",
	}, []string{"name", "digest"})
	policyReloads = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fluxidentity_policy_reloads_total",
		Help: "Policy versions swapped in, the initial load included.",
	})
	policyReloadErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fluxidentity_policy_reload_errors_total",
		Help: "Policy reloads rejected (unreadable or invalid file); the last good policy stayed in force.",
	})
	policyLastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "fluxidentity_policy_last_reload_success_timestamp_seconds",
		Help: "When the policy in force was loaded.",
	})
	policyLastReloadFailed = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "fluxidentity_policy_last_reload_failed",
		Help: "1 when the latest reload attempt was rejected, 0 after a successful one.",
	})
)

func init() {
	metrics.Registry.MustRegister(policyInfo, policyReloads, policyReloadErrors, policyLastSuccess,
		policyLastReloadFailed)
}

// observeReload records a reload attempt in the log and the metrics. A policy file holds identifiers (role ARNs,
// client IDs), never secrets, so its problems are logged as they are, with file, line and field.
func observeReload(log logr.Logger, e policy.ReloadEvent) {
	if e.Err != nil {
		policyReloadErrors.Inc()
		policyLastReloadFailed.Set(1)
		log.Error(e.Err, "policy reload rejected; the last good policy stays in force",
			"digest", shortDigest(e.Policy.Digest))
		return
	}
	policyLastReloadFailed.Set(0)
	if !e.Changed {
		return // the file went back to the policy in force: nothing new to load, but no error either
	}
	// Loading a large policy briefly holds its whole YAML node tree; hand that memory back to the OS now rather than
	// keep it as idle heap for the life of the process (reloads are rare, a forced GC here is cheap).
	debug.FreeOSMemory()
	p := e.Policy
	policyInfo.Reset()
	policyInfo.WithLabelValues(p.Name, shortDigest(p.Digest)).Set(1)
	policyReloads.Inc()
	policyLastSuccess.SetToCurrentTime()
	log.Info("policy loaded", "name", p.Name, "digest", shortDigest(p.Digest),
		"identities", len(p.Spec.Identities), "mandates", len(p.Spec.Mandates), "exceptions", len(p.Spec.Exceptions))
	for _, w := range p.Warnings {
		log.Info("policy warning", "problem", w.String())
	}
}
