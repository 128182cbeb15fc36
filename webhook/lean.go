package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	admissionmetrics "sigs.k8s.io/controller-runtime/pkg/webhook/admission/metrics"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// The pod and ServiceAccount paths see every pod and ServiceAccount created in the selected namespaces, so their cost
// is the product's cost. Their lean path decodes the request body once, straight into the handler's view of the
// object, instead of decoding the whole AdmissionReview (the object kept as raw bytes, then validated and decoded a
// second time) and building admission.Webhook's per-request logger. The decision is the same function as the generic
// path's and the answer goes through the same Response.Complete, so both paths answer byte for byte the same
// (TestLeanPathAnswersLikeTheGenericPath).

// leanHandler answers a whole request body. ok is false when the body does not decode cleanly into the lean views
// (a broken review, an object of the wrong shape): the generic path then answers it, with its own status codes and
// messages, so the two paths never disagree.
type leanHandler interface {
	handleBody(ctx context.Context, body []byte) (resp admission.Response, ok bool)
}

// leanReview is an admission.k8s.io/v1 AdmissionReview reduced to what a handler reads, with the object decoded into
// the handler's view T.
type leanReview[T any] struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Request    *struct {
		UID       types.UID `json:"uid"`
		Namespace string    `json:"namespace"`
		Object    *T        `json:"object"`
	} `json:"request"`
}

// leanPath serves one handler's decision function. When route is set, the body is first decoded into the small
// routing view R (for pods: the ServiceAccount name), and only requests route selects are decoded into the full view
// T: most pods in a cluster map to no identity, and their answer needs nothing else.
type leanPath[T, R any] struct {
	opts     Options
	count    countedHandler
	evaluate func(p *policy.Policy, namespace string, obj *T) (verdict, error)
	route    func(p *policy.Policy, namespace string, obj *R) bool
}

func decodeLean[T any](body []byte) (*leanReview[T], error) {
	var review leanReview[T]
	if err := json.Unmarshal(body, &review); err != nil {
		return nil, fmt.Errorf("decode AdmissionReview: %w", err)
	}
	if review.APIVersion != admissionv1.SchemeGroupVersion.String() || review.Kind != "AdmissionReview" {
		return nil, fmt.Errorf("expected admission.k8s.io/v1 AdmissionReview, got %q %q", review.APIVersion, review.Kind)
	}
	if review.Request == nil || review.Request.UID == "" {
		return nil, errors.New("AdmissionReview has no request or no request uid")
	}
	return &review, nil
}

func (l *leanPath[T, R]) handleBody(_ context.Context, body []byte) (resp admission.Response, ok bool) {
	p := l.opts.Policy.Current() // one policy version answers the whole request
	if l.route != nil {
		routing, err := decodeLean[R](body)
		if err != nil {
			return resp, false
		}
		if routing.Request.Object != nil && !l.route(p, routing.Request.Namespace, routing.Request.Object) {
			return complete(verdict{}.answer(l.opts.Mode, l.count), routing.Request.UID), true
		}
	}
	review, err := decodeLean[T](body)
	if err != nil || review.Request.Object == nil {
		return resp, false
	}
	uid := review.Request.UID
	defer func() {
		// The same recovery admission.Webhook.Handle performs: a panic is an error answer, never a crash.
		if r := recover(); r != nil {
			admissionmetrics.WebhookPanics.WithLabelValues().Inc()
			resp = admission.Errored(http.StatusInternalServerError, fmt.Errorf("panic: %v [recovered]", r))
			resp.UID = uid
		}
	}()
	return complete(l.answer(p, review.Request.Namespace, review.Request.Object), uid), true
}

// complete finishes a response exactly as admission.Webhook.Handle does.
func complete(resp admission.Response, uid types.UID) admission.Response {
	if err := resp.Complete(admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{UID: uid}}); err != nil {
		resp = admission.Errored(http.StatusInternalServerError, errors.New("unable to encode response"))
		resp.UID = uid
	}
	return resp
}

func (l *leanPath[T, R]) answer(p *policy.Policy, namespace string, obj *T) admission.Response {
	v, err := l.evaluate(p, namespace, obj)
	if err != nil {
		l.count.errored.Inc()
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return v.answer(l.opts.Mode, l.count)
}
