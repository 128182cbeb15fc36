package app

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	"sigs.k8s.io/controller-runtime/pkg/healthz"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// healthHandler serves /healthz (the process answers) and /readyz (the webhook accepts TLS, a policy is loaded and
// the server is not shutting down). A rejected policy reload shows in the /readyz body but does not make the pod
// unready: the last good policy is still answering, and flapping readiness would only add an outage to a typo.
type healthHandler struct {
	started  healthz.Checker
	policy   *policy.Reloader
	stopping *atomic.Bool
}

func newHealthHandler(started healthz.Checker, p *policy.Reloader, stopping *atomic.Bool) http.Handler {
	h := &healthHandler{started: started, policy: p, stopping: stopping}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", h.readyz)
	return mux
}

func (h *healthHandler) readyz(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	ready := true
	check := func(name string, err error) {
		if err != nil {
			ready = false
			fmt.Fprintf(&b, "[-]%s failed: %v\n", name, err)
			return
		}
		fmt.Fprintf(&b, "[+]%s ok\n", name)
	}
	if h.stopping.Load() {
		check("shutdown", fmt.Errorf("shutting down"))
	}
	check("webhook", h.started(r))
	p := h.policy.Current()
	fmt.Fprintf(&b, "[+]policy ok: %q digest %s\n", p.Name, shortDigest(p.Digest))
	if err := h.policy.Status().LastError; err != nil {
		// Informational: the last good policy keeps answering.
		fmt.Fprintf(&b, "[!]policy-reload rejected, keeping digest %s: %s\n", shortDigest(p.Digest),
			strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
		b.WriteString("readyz check failed\n")
	} else {
		b.WriteString("readyz check passed\n")
	}
	_, _ = fmt.Fprint(w, b.String())
}

func shortDigest(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	return d
}
