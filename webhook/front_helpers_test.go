package webhook

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// fixedPolicy is a PolicySource that never changes.
type fixedPolicy struct{ p *policy.Policy }

func (s fixedPolicy) Current() *policy.Policy { return s.p }

// newFront is the server the tests send requests through, with the clock of the source tests.
func newFront(p *policy.Policy, mode policy.Mode) *Server {
	return NewServer(Options{Policy: fixedPolicy{p}, Mode: mode, Now: func() time.Time { return sourceNow }})
}

// reviewOf wraps a request in an admission.k8s.io/v1 AdmissionReview body.
func reviewOf(t testing.TB, req admissionv1.AdmissionRequest) []byte {
	t.Helper()
	r := admissionv1.AdmissionReview{Request: &req}
	r.SetGroupVersionKind(admissionv1.SchemeGroupVersion.WithKind("AdmissionReview"))
	body, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// ask sends req to path through the front, as the API server would, and returns the HTTP status and the response.
func ask(t testing.TB, s *Server, path string, req admissionv1.AdmissionRequest) (int, *admissionv1.AdmissionResponse) {
	t.Helper()
	code, out, err := s.Answer(context.Background(), path, reviewOf(t, req))
	if err != nil {
		t.Fatal(err)
	}
	if out.Response == nil {
		t.Fatalf("status %d: the answer has no response", code)
	}
	return code, out.Response
}
