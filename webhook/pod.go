package webhook

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// podMutator labels and injects the pods of mapped ServiceAccounts.
// For now it only admits; it already counts every request, which the integration suite uses to prove the API
// server reaches it.
type podMutator struct {
	opts  Options
	count countedHandler
}

var _ admission.Handler = &podMutator{}

func (h *podMutator) Handle(_ context.Context, _ admission.Request) admission.Response {
	h.count.allowed.Inc()
	return admission.Allowed("")
}
