package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/internal/admissiontest"
)

func benchReview(b *testing.B, ns string, obj any) []byte {
	b.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		b.Fatal(err)
	}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "705ab4f5-6393-11e8-b7cc-42010a800002", Namespace: ns,
			Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
			UserInfo: authenticationv1.UserInfo{Username: "system:serviceaccount:kube-system:replicaset-controller",
				Groups: []string{"system:serviceaccounts", "system:authenticated"}}},
	}
	body, err := json.Marshal(review)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkHandlers measures each handler's decision and patch on realistic requests, through the HTTP front the
// server uses (body read, one decode, decision, answer, encode), without TLS.
func BenchmarkHandlers(b *testing.B) {
	p := admissiontest.FixturePolicy(b)
	front := NewServer(Options{Policy: Fixed{Policy: p}, Mode: policy.ModeEnforce})
	cases := []struct {
		name, path, ns string
		obj            any
	}{
		{"pod mapped full injection", routes.PathMutatePod, "flux-system", admissiontest.FluxControllerPod("source-controller")},
		{"pod mapped annotate", routes.PathMutatePod, "flux-system", admissiontest.FluxControllerPod("helm-controller")},
		{"pod unmapped", routes.PathMutatePod, "apps", admissiontest.FluxControllerPod("default")},
		{"serviceaccount mapped", routes.PathMutateServiceAccount, "flux-system", &corev1.ServiceAccount{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: metav1.ObjectMeta{Name: "source-controller", Namespace: "flux-system"}}},
	}
	for _, c := range cases {
		body := benchReview(b, c.ns, c.obj)
		h := front.Handler(c.path)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, c.path, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
	b.Run("floor: decode and answer allowed", func(b *testing.B) {
		body := benchReview(b, "flux-system", admissiontest.FluxControllerPod("source-controller"))
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var review admissionv1.AdmissionReview
			if err := json.Unmarshal(body, &review); err != nil {
				b.Fatal(err)
			}
			out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta,
				Response: &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}}
			if _, err := json.Marshal(out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
