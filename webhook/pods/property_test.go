package pods

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/fluxidentity/flux-identity-webhook/webhook/internal/admissiontest"
)

func TestPodPatchProperties(t *testing.T) {
	p := admissiontest.FixturePolicy(t)
	r := rand.New(rand.NewPCG(1, 2))
	patched := 0
	for i := range admissiontest.PropertyCases {
		obj := admissiontest.GenPod(r)
		ns := admissiontest.Pick(r, admissiontest.Namespaces)
		raw, _ := json.Marshal(obj)
		ops := mutatePodOps(t, p, ns, raw)
		out := admissiontest.ApplyPatch(t, raw, ops)
		var outObj any
		if err := json.Unmarshal(out, &outObj); err != nil {
			t.Fatal(err)
		}
		var inObj any
		_ = json.Unmarshal(raw, &inObj)
		if err := admissiontest.OnlyOwnedChanges(inObj, outObj, ""); err != nil {
			t.Fatalf("case %d (%s): %v\ninput: %s\npatch: %v", i, ns, err, raw, ops)
		}
		if again := mutatePodOps(t, p, ns, out); len(again) != 0 {
			t.Fatalf("case %d (%s): not idempotent, second patch %v\ninput: %s", i, ns, again, raw)
		}
		if len(ops) > 0 {
			patched++
		}
	}
	// The generator must exercise the interesting paths, not only no-ops.
	if patched < admissiontest.PropertyCases/4 {
		t.Errorf("only %d of %d generated pods were patched: the generator is too narrow", patched, admissiontest.PropertyCases)
	}
}
