package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/internal/admissiontest"
)

// fuzzPaths are the handler paths, indexed by the fuzzer's path selector (the seeds name them by index).
var fuzzPaths = []string{routes.PathMutateServiceAccount, routes.PathMutatePod, routes.PathMutateDeployment,
	routes.PathValidateFluxSources}

// fuzzKinds are the kinds each path is registered for (the API server never sends another), from the route table.
var fuzzKinds = func() map[string][]metav1.GroupVersionKind {
	kinds := map[string][]metav1.GroupVersionKind{}
	for _, w := range routes.Webhooks {
		for _, r := range w.Rules {
			if r.Kind != "" && !slices.ContainsFunc(kinds[w.Path], func(k metav1.GroupVersionKind) bool { return k.Kind == r.Kind }) {
				kinds[w.Path] = append(kinds[w.Path], metav1.GroupVersionKind{Group: r.Group, Version: r.Versions[0], Kind: r.Kind})
			}
		}
	}
	return kinds
}()

// FuzzReviewHandler posts arbitrary bodies to the HTTP front of every handler. Whatever the body, the answer is an
// admission.k8s.io/v1 AdmissionReview with a response, the status is 200, 400 or 413, a 200 carries the request's
// uid, and a refused request is never allowed.
func FuzzReviewHandler(f *testing.F) {
	f.Add(uint8(0), []byte(validReview))
	f.Add(uint8(1), []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1",`+
		`"namespace":"flux-system","operation":"CREATE","object":{"spec":{"serviceAccountName":"source-controller",`+
		`"containers":[{"name":"c"}]}}}}`))
	f.Add(uint8(3), []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1",`+
		`"kind":{"group":"source.toolkit.fluxcd.io","version":"v1","kind":"GitRepository"},"namespace":"sealed",`+
		`"operation":"UPDATE","object":{"spec":{"secretRef":{"name":"s"}}},"oldObject":{"spec":{}}}}`))
	f.Add(uint8(0), []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}`))
	f.Add(uint8(2), []byte(`[`))
	f.Add(uint8(0), []byte(strings.Repeat(`{"a":`, 2000)))
	f.Add(uint8(0), bytes.Repeat([]byte("x"), admissiontest.FuzzLimit+1))

	front := NewServer(Options{Policy: Fixed{Policy: admissiontest.FixturePolicy(f)}, Mode: policy.ModeEnforce,
		MaxRequestBytes: admissiontest.FuzzLimit})
	f.Fuzz(func(t *testing.T, path uint8, body []byte) {
		p := fuzzPaths[int(path)%len(fuzzPaths)]
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, p, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		front.Handler(p).ServeHTTP(rec, req)

		var out admissionv1.AdmissionReview
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("answer is not JSON: %v: %q", err, rec.Body.String())
		}
		if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil {
			t.Fatalf("answer is not an AdmissionReview with a response: %q", rec.Body.String())
		}
		switch rec.Code {
		case http.StatusOK:
			var in admissionv1.AdmissionReview
			if err := json.Unmarshal(body, &in); err != nil || in.Request == nil {
				t.Fatalf("200 for a body that does not decode: %v", err)
			}
			if out.Response.UID != in.Request.UID {
				t.Errorf("uid %q answered for request %q", out.Response.UID, in.Request.UID)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if out.Response.Allowed {
				t.Errorf("HTTP %d with an allowed response", rec.Code)
			}
			if rec.Code == http.StatusRequestEntityTooLarge && len(body) <= admissiontest.FuzzLimit {
				t.Errorf("413 for %d bytes, under the %d byte cap", len(body), admissiontest.FuzzLimit)
			}
		default:
			t.Errorf("HTTP %d: want 200, 400 or 413", rec.Code)
		}
	})
}

// FuzzAdmissionRequest calls every handler directly, with no panic recovery in between, on arbitrary objects of the
// kinds it is registered for. No input makes a handler panic; a refusal always says why; an allowed answer's patch
// applies to the object it was computed from and leaves valid JSON.
func FuzzAdmissionRequest(f *testing.F) {
	add := func(path uint8, op, ns, obj, old string) { f.Add(path, uint8(0), op, ns, []byte(obj), []byte(old)) }
	add(0, "CREATE", "flux-system", `{"metadata":{"name":"source-controller","annotations":{"a/b":"c"}}}`, ``)
	add(0, "UPDATE", "team-a", `{"metadata":{"name":"flux-x","annotations":{"eks.amazonaws.com/role-arn":"arn:x"}}}`,
		`{"metadata":{"name":"flux-x"}}`)
	add(0, "CREATE", "team-b", `{"metadata":{"name":"other","annotations":{"azure.workload.identity/client-id":"x"}}}`,
		``)
	add(1, "CREATE", "flux-system", `{"metadata":{"name":"p"},"spec":{"serviceAccountName":"source-controller",`+
		`"initContainers":[{"name":"i"}],"containers":[{"name":"c","env":[{"name":"AWS_ROLE_ARN","value":"x"}],`+
		`"volumeMounts":[{"name":"v","mountPath":"/m"}]}],"volumes":[{"name":"v"}]}}`, ``)
	add(1, "CREATE", "flux-system", `{"metadata":{"name":"p"},"spec":{"serviceAccountName":"image-reflector-controller",`+
		`"containers":[{"name":"c"}]}}`, ``)
	add(1, "CREATE", "flux-system", `{"metadata":{"generateName":"p-"},"spec":{"serviceAccountName":`+
		`"image-automation-controller","containers":null}}`, ``)
	add(2, "CREATE", "flux-system", `{"spec":{"template":{"spec":{"serviceAccountName":"helm-controller"}}}}`, ``)
	add(3, "CREATE", "sealed", `{"metadata":{"name":"r"},"spec":{"secretRef":{"name":"s"},"provider":"github"}}`, ``)
	add(3, "UPDATE", "sealed", `{"metadata":{"name":"r"},"spec":{"secretRef":{"name":"t"}}}`,
		`{"metadata":{"name":"r"},"spec":{"secretRef":{"name":"s"}}}`)
	add(3, "DELETE", "sealed", ``, `{"spec":{"secretRef":{"name":"s"}}}`)
	add(1, "CREATE", "flux-system", `{"spec":{"serviceAccountName":7}}`, ``)
	add(0, "CREATE", "team-a", `null`, `[]`)

	front := NewServer(Options{Policy: Fixed{Policy: admissiontest.FixturePolicy(f)}, Mode: policy.ModeEnforce})
	f.Fuzz(func(t *testing.T, path, kind uint8, op, namespace string, object, old []byte) {
		p := fuzzPaths[int(path)%len(fuzzPaths)]
		kinds := fuzzKinds[p]
		k, _ := json.Marshal(kinds[int(kind)%len(kinds)])
		ns, _ := json.Marshal(namespace)
		operation, _ := json.Marshal(op)
		// Built by hand so that any bytes can stand for the objects: a body that is no JSON must be refused.
		body := []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"fuzz","kind":` +
			string(k) + `,"namespace":` + string(ns) + `,"name":"fuzz","operation":` + string(operation) +
			`,"dryRun":false` + rawField("object", object) + rawField("oldObject", old) + `}}`)
		r := front.routes[p]
		_, v, err := r.decide(front.opts.Policy.Current(), body, front.now())
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("refused without a reason")
			}
			return
		}
		resp, _ := respond(&v, policy.ModeEnforce, r.count)
		if !resp.Allowed {
			if resp.Result == nil || resp.Result.Message == "" {
				t.Fatalf("refused without a reason: %+v", resp)
			}
			return
		}
		if len(resp.Patch) == 0 {
			return
		}
		var shape map[string]any
		if err := json.Unmarshal(object, &shape); err != nil {
			t.Fatalf("patched an object that is not a JSON object: %q", object)
		}
		patchJSON := resp.Patch
		patch, err := jsonpatchapply.DecodePatch(patchJSON)
		if err != nil {
			t.Fatalf("invalid patch %s: %v", patchJSON, err)
		}
		patched, err := patch.Apply(object)
		if err != nil {
			t.Fatalf("the patch %s does not apply to %s: %v", patchJSON, object, err)
		}
		if !json.Valid(patched) {
			t.Fatalf("patching left invalid JSON: %s", patched)
		}
		var ops []jsonpatch.Operation
		if err := json.Unmarshal(patchJSON, &ops); err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(ops, func(o jsonpatch.Operation) bool { return o.Operation == "remove" }) {
			t.Errorf("a remove operation: the webhook only adds and replaces what it owns: %s", patchJSON)
		}
	})
}

// rawField is ,"name":raw for a non-empty raw.
func rawField(name string, raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	return `,"` + name + `":` + string(raw)
}
