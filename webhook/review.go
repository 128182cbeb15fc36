package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// DefaultMaxRequestBytes caps an AdmissionReview body. The API server sends at most two objects of 3 MiB each
// (old and new) plus the request envelope, so 7 MiB is the same bound controller-runtime uses.
const DefaultMaxRequestBytes = 7 << 20

// ReviewHandler is the HTTP front of an admission handler. Unlike admission.Webhook's own ServeHTTP, which answers
// every broken request with HTTP 200 and an error inside the review, it answers with real status codes: 400 for a
// body that is not an admission.k8s.io/v1 AdmissionReview, 413 for a body over the cap (refused from Content-Length
// before reading it), 415 for another content type. The decision itself, panic recovery included, is delegated to
// admission.Webhook.Handle.
type ReviewHandler struct {
	Webhook *admission.Webhook
	// lean, when set, answers every request it can decode cleanly from a single decode of the body (see lean.go);
	// anything else goes the generic way through Webhook, so both paths answer alike.
	lean            leanHandler
	MaxRequestBytes int64
}

var _ http.Handler = &ReviewHandler{}

func (h *ReviewHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	limit := h.MaxRequestBytes
	if limit <= 0 {
		limit = DefaultMaxRequestBytes
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, errors.New("admission reviews are POSTed"))
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, fmt.Errorf("content type %q: expected application/json",
			r.Header.Get("Content-Type")))
		return
	}
	if r.ContentLength > limit {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body of %d bytes is over the %d byte limit",
			r.ContentLength, limit))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body is over the %d byte limit", limit))
			return
		}
		writeError(w, http.StatusBadRequest, fmt.Errorf("read request body: %w", err))
		return
	}

	if h.lean != nil {
		if resp, ok := h.lean.handleBody(r.Context(), body); ok {
			writeReview(w, http.StatusOK, &resp.AdmissionResponse)
			return
		}
	}
	review, err := decodeReview(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	resp := h.Webhook.Handle(r.Context(), admission.Request{AdmissionRequest: *review.Request})
	writeReview(w, http.StatusOK, &resp.AdmissionResponse)
}

// decodeReview accepts only what the webhook configurations ask for: admission.k8s.io/v1 AdmissionReview with a
// request carrying a UID.
func decodeReview(body []byte) (*admissionv1.AdmissionReview, error) {
	var review admissionv1.AdmissionReview
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

func writeError(w http.ResponseWriter, code int, err error) {
	resp := admission.Errored(int32(code), err)
	writeReview(w, code, &resp.AdmissionResponse)
}

func writeReview(w http.ResponseWriter, code int, resp *admissionv1.AdmissionResponse) {
	out := admissionv1.AdmissionReview{Response: resp}
	out.SetGroupVersionKind(admissionv1.SchemeGroupVersion.WithKind("AdmissionReview"))
	body, err := json.Marshal(out)
	if err != nil { // cannot happen for this type; answer something the API server understands anyway
		code, body = http.StatusInternalServerError, []byte(`{"error":"encode AdmissionReview"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}
