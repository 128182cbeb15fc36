// Package webhooktest sends admission requests through the server's HTTP front, as the API server would, for tests
// of the decisions behind it and of the tools built on it.
package webhooktest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook"
	"github.com/fluxidentity/flux-identity-webhook/webhook/internal/admissiontest"
)

// NewFront is a server answering with p in the server-wide mode, on the tests' clock (admissiontest.Now).
func NewFront(p *policy.Policy, mode policy.Mode) *webhook.Server {
	return webhook.NewServer(webhook.Options{Policy: webhook.Fixed{Policy: p}, Mode: mode,
		Now: func() time.Time { return admissiontest.Now }})
}

// ReviewOf wraps a request in an admission.k8s.io/v1 AdmissionReview body.
func ReviewOf(t testing.TB, req admissionv1.AdmissionRequest) []byte {
	t.Helper()
	r := admissionv1.AdmissionReview{Request: &req}
	r.SetGroupVersionKind(admissionv1.SchemeGroupVersion.WithKind("AdmissionReview"))
	body, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// Ask sends req to path through the front and returns the HTTP status and the response.
func Ask(t testing.TB, s *webhook.Server, path string, req admissionv1.AdmissionRequest) (int, *admissionv1.AdmissionResponse) {
	t.Helper()
	code, out, err := s.Answer(context.Background(), path, ReviewOf(t, req))
	if err != nil {
		t.Fatal(err)
	}
	if out.Response == nil {
		t.Fatalf("status %d: the answer has no response", code)
	}
	return code, out.Response
}

// Counter is the value of the server's counter name with exactly these labels, as its registry has it now (0 before
// the first increment): fluxidentity_violations_total, fluxidentity_admission_decisions_total.
func Counter(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			matched := 0
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v == l.GetValue() {
					matched++
				}
			}
			if matched == len(labels) && len(m.GetLabel()) == len(labels) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// Violations is fluxidentity_violations_total for one label set.
func Violations(t testing.TB, mode, kind, namespace, ruleType, rule string) float64 {
	t.Helper()
	return Counter(t, "fluxidentity_violations_total", map[string]string{"mode": mode, "kind": kind,
		"namespace": namespace, "rule_type": ruleType, "rule": rule})
}

// Decisions is fluxidentity_admission_decisions_total for one path and decision.
func Decisions(t testing.TB, path, decision string) float64 {
	t.Helper()
	return Counter(t, "fluxidentity_admission_decisions_total", map[string]string{"webhook": path, "decision": decision})
}
