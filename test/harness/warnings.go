package harness

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// WarningRecorder collects the admission warnings the API server relays in Warning headers, as kubectl prints them.
type WarningRecorder struct {
	mu   sync.Mutex
	msgs []string
}

// HandleWarningHeaderWithContext implements rest.WarningHandlerWithContext.
func (w *WarningRecorder) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

// Take returns the warnings recorded since the last call.
func (w *WarningRecorder) Take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

// WarningClient returns a client for scheme whose warnings land in the returned recorder.
func (e *Env) WarningClient(scheme *runtime.Scheme) (client.Client, *WarningRecorder, error) {
	rec := &WarningRecorder{}
	cfg := rest.CopyConfig(e.Config)
	cfg.WarningHandler, cfg.WarningHandlerWithContext = nil, rec
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	return c, rec, err
}
