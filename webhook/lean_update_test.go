package webhook

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// updateReviewBody is an UPDATE review of obj, replacing old.
func updateReviewBody(t testing.TB, ns string, old, obj any) []byte {
	t.Helper()
	raw := func(v any) json.RawMessage {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	body, err := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{"uid": "u-2", "namespace": ns, "operation": "UPDATE", "object": raw(obj),
			"oldObject": raw(old), "userInfo": map[string]any{"username": "someone"}}})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// Only pod CREATE is registered on the mutating paths, but whatever reaches them, the lean path must answer an UPDATE
// byte for byte like the generic one; and the pod metadata path, which decides on UPDATEs, has no lean path at all.
func TestLeanPathAnswersUpdatesLikeTheGenericPath(t *testing.T) {
	p := loadFixturePolicy(t)
	o := Options{Policy: staticSource{p}, Mode: policy.ModeEnforce}
	handlers, lean := Handlers(o), leanHandlers(o)
	if _, ok := lean[PathValidatePod]; ok {
		t.Fatalf("%s has a lean path: UPDATEs would be answered by two implementations", PathValidatePod)
	}
	r := rand.New(rand.NewPCG(7, 8))
	for _, path := range []string{PathMutatePod, PathMutateServiceAccount} {
		generic := &ReviewHandler{Webhook: &admission.Webhook{Handler: handlers[path]}}
		fast := &ReviewHandler{Webhook: generic.Webhook, lean: lean[path]}
		for i := range 1000 {
			gen := func() any {
				if path == PathMutatePod {
					return genPod(r)
				}
				meta := map[string]any{"name": pick(r, propSAs[:len(propSAs)-1])}
				maybeMap(r, meta, "annotations", func() map[string]any { return genAnnotations(r) })
				return map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}
			}
			body := updateReviewBody(t, pick(r, propNamespaces), gen(), gen())
			gc, gb := serveBody(t, generic, body)
			fc, fb := serveBody(t, fast, body)
			if gc != fc || !bytes.Equal(gb, fb) {
				t.Fatalf("%s case %d: generic %d %s\nlean    %d %s\nbody %s", path, i, gc, gb, fc, fb, body)
			}
		}
	}
}

// Over generated pod pairs, the pod metadata path denies an UPDATE exactly when changedOwnedAnnotations finds a key.
func TestPodMetadataPathDeniesExactlyOwnedChanges(t *testing.T) {
	o := Options{Policy: staticSource{&policy.Policy{}}, Mode: policy.ModeEnforce}
	h := &ReviewHandler{Webhook: &admission.Webhook{Handler: Handlers(o)[PathValidatePod]}}
	annotations := func(pod map[string]any) map[string]string {
		out := map[string]string{}
		m, _ := pod["metadata"].(map[string]any)["annotations"].(map[string]any)
		for k, v := range m {
			out[k] = v.(string)
		}
		return out
	}
	r := rand.New(rand.NewPCG(9, 10))
	denied := 0
	for i := range 3000 {
		old, obj := genPod(r), genPod(r)
		if r.IntN(3) == 0 {
			obj = old // unchanged metadata: always admitted
		}
		code, body := serveBody(t, h, updateReviewBody(t, "apps", old, obj))
		var review struct {
			Response struct {
				Allowed bool `json:"allowed"`
			} `json:"response"`
		}
		if err := json.Unmarshal(body, &review); code != 200 || err != nil {
			t.Fatalf("case %d: status %d %s", i, code, body)
		}
		want := len(changedOwnedAnnotations(annotations(old), annotations(obj))) == 0
		if review.Response.Allowed != want {
			t.Fatalf("case %d: allowed %v, want %v\nold %v\nnew %v", i, review.Response.Allowed, want, old, obj)
		}
		if !want {
			denied++
		}
	}
	if denied < 100 {
		t.Fatalf("only %d of 3000 generated updates changed an owned key: the generator proves little", denied)
	}
}
