package webhook

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

func reviewBody(t testing.TB, ns string, obj any) []byte {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{"uid": "u-1", "namespace": ns, "operation": "CREATE", "object": json.RawMessage(raw),
			"userInfo": map[string]any{"username": "someone"}}})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func serveBody(t testing.TB, h http.Handler, body []byte) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// The lean path must answer every request byte for byte like admission.Webhook around the same handler.
func TestLeanPathAnswersLikeTheGenericPath(t *testing.T) {
	p := loadFixturePolicy(t)
	for _, mode := range []policy.Mode{policy.ModeEnforce, policy.ModeWarn} {
		o := Options{Policy: staticSource{p}, Mode: mode}
		handlers, lean := Handlers(o), leanHandlers(o)
		r := rand.New(rand.NewPCG(5, 6))
		for _, path := range []string{PathMutatePod, PathMutateServiceAccount} {
			generic := &ReviewHandler{Webhook: &admission.Webhook{Handler: handlers[path]}}
			fast := &ReviewHandler{Webhook: generic.Webhook, lean: lean[path]}
			for i := range 2000 {
				var obj any
				if path == PathMutatePod {
					obj = genPod(r)
				} else {
					meta := map[string]any{"name": pick(r, propSAs[:len(propSAs)-1])}
					maybeMap(r, meta, "annotations", func() map[string]any { return genAnnotations(r) })
					obj = map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}
				}
				body := reviewBody(t, pick(r, propNamespaces), obj)
				gc, gb := serveBody(t, generic, body)
				fc, fb := serveBody(t, fast, body)
				if gc != fc || !bytes.Equal(gb, fb) {
					t.Fatalf("%s case %d (%s): generic %d %s\nlean    %d %s\nbody %s", path, i, mode, gc, gb, fc, fb, body)
				}
			}
		}
	}
}

// Requests the lean views cannot decode go the generic way, so even broken input gets the generic answer.
func TestLeanPathFallsBackOnWhatItCannotDecode(t *testing.T) {
	p := loadFixturePolicy(t)
	o := Options{Policy: staticSource{p}, Mode: policy.ModeEnforce}
	handlers, lean := Handlers(o), leanHandlers(o)
	for name, body := range map[string]string{
		"malformed JSON":         `{"apiVersion":`,
		"another review version": `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"1"}}`,
		"no request":             `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`,
		"no uid":                 `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"namespace":"x"}}`,
		"no object":              `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1"}}`,
		"object of wrong shape": `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1",` +
			`"namespace":"flux-system","object":{"metadata":{"name":"source-controller","annotations":"x"},"spec":[]}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			for _, path := range []string{PathMutatePod, PathMutateServiceAccount} {
				generic := &ReviewHandler{Webhook: &admission.Webhook{Handler: handlers[path]}}
				fast := &ReviewHandler{Webhook: generic.Webhook, lean: lean[path]}
				gc, gb := serveBody(t, generic, []byte(body))
				fc, fb := serveBody(t, fast, []byte(body))
				if gc != fc || !bytes.Equal(gb, fb) {
					t.Errorf("%s: generic %d %s, lean %d %s", path, gc, gb, fc, fb)
				}
			}
		})
	}
}
