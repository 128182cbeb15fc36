package serviceaccounts

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/fluxidentity/flux-identity-webhook/webhook/internal/admissiontest"
)

func TestServiceAccountPatchProperties(t *testing.T) {
	p := admissiontest.FixturePolicy(t)
	r := rand.New(rand.NewPCG(3, 4))
	patched, violating := 0, 0
	for i := range admissiontest.PropertyCases {
		meta := map[string]any{"name": admissiontest.Pick(r, admissiontest.ServiceAccounts[:len(admissiontest.ServiceAccounts)-1])}
		admissiontest.MaybeMap(r, meta, "annotations", func() map[string]any { return admissiontest.GenAnnotations(r) })
		admissiontest.MaybeMap(r, meta, "labels", func() map[string]any { return map[string]any{"team": "x"} })
		if r.IntN(5) == 0 {
			meta["futureMetaField"] = "keep"
		}
		obj := map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta,
			"secrets": []any{map[string]any{"name": "s"}}}
		ns := admissiontest.Pick(r, admissiontest.Namespaces)
		raw, _ := json.Marshal(obj)
		var sa View
		if err := json.Unmarshal(raw, &sa); err != nil {
			t.Fatal(err)
		}
		v := evaluate(p, ns, &sa)
		admissiontest.AssertOnlyAddAndReplace(t, v.Patch)
		out := admissiontest.ApplyPatch(t, raw, v.Patch)
		var inObj, outObj any
		_ = json.Unmarshal(raw, &inObj)
		_ = json.Unmarshal(out, &outObj)
		if err := admissiontest.OnlyOwnedChanges(inObj, outObj, ""); err != nil {
			t.Fatalf("case %d (%s): %v\ninput: %s", i, ns, err, raw)
		}
		var again View
		_ = json.Unmarshal(out, &again)
		v2 := evaluate(p, ns, &again)
		if len(v2.Patch) != 0 {
			t.Fatalf("case %d (%s): not idempotent: %v\ninput: %s", i, ns, v2.Patch, raw)
		}
		if !reflect.DeepEqual(v.Violations, v2.Violations) {
			t.Fatalf("case %d: the patch changed the violations: %q then %q", i, v.Violations, v2.Violations)
		}
		if m, ok := p.IdentityFor(ns, sa.Metadata.Name); ok {
			want, _ := Metadata(m)
			for k, val := range want {
				if again.Metadata.Annotations[k] != val {
					t.Fatalf("case %d: mapped ServiceAccount ends with %s=%q, want %q", i, k, again.Metadata.Annotations[k], val)
				}
			}
		}
		if len(v.Patch) > 0 {
			patched++
		}
		if len(v.Violations) > 0 {
			violating++
		}
	}
	if patched < admissiontest.PropertyCases/10 || violating < admissiontest.PropertyCases/20 {
		t.Errorf("generator too narrow: %d patched, %d violating of %d", patched, violating, admissiontest.PropertyCases)
	}
}
