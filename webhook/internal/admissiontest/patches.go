// Package admissiontest holds what the decisions' tests share: the fixture policy, patches applied as the API server
// applies them, and the generators and checks of the property tests. It is imported by tests only.
package admissiontest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	"gomodules.xyz/jsonpatch/v2"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// FixturePolicyFile is webhook/testdata/policy.yaml, the policy the handler tests share, found from the directory the
// test runs in (its package's) up to the module's root: a -trimpath build has no source path to start from.
func FixturePolicyFile() string {
	dir, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "webhook", "testdata", "policy.yaml")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			panic("webhook/testdata/policy.yaml: no go.mod above the test's directory")
		}
		dir = parent
	}
}

// FixturePolicy loads FixturePolicyFile.
func FixturePolicy(t testing.TB) *policy.Policy {
	t.Helper()
	data, err := os.ReadFile(FixturePolicyFile())
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse(FixturePolicyFile(), data, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ApplyPatch applies ops to raw JSON the way the API server does.
func ApplyPatch(t testing.TB, raw []byte, ops []jsonpatch.Operation) []byte {
	t.Helper()
	if len(ops) == 0 {
		return raw
	}
	patchJSON, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	return ApplyPatchBytes(t, raw, patchJSON)
}

// ApplyPatchBytes applies an encoded JSON patch, as the API server does.
func ApplyPatchBytes(t testing.TB, raw, patchJSON []byte) []byte {
	t.Helper()
	if len(patchJSON) == 0 {
		return raw
	}
	p, err := jsonpatchapply.DecodePatch(patchJSON)
	if err != nil {
		t.Fatalf("decode patch %s: %v", patchJSON, err)
	}
	out, err := p.Apply(raw)
	if err != nil {
		t.Fatalf("apply patch %s: %v", patchJSON, err)
	}
	return out
}

// AssertOnlyAddAndReplace fails unless every operation adds, or replaces a single annotation or label value.
func AssertOnlyAddAndReplace(t testing.TB, ops []jsonpatch.Operation) {
	t.Helper()
	for _, op := range ops {
		if op.Operation != "add" && op.Operation != "replace" {
			t.Errorf("operation %s %s: only add and replace are allowed", op.Operation, op.Path)
		}
		if op.Operation == "replace" && !strings.Contains(op.Path, "/annotations/") && !strings.Contains(op.Path, "/labels/") {
			t.Errorf("replace of %s: only single annotation or label values may be replaced", op.Path)
		}
	}
}

// Now is the clock of the decisions' tests: the exceptions of their policies expire around it.
var Now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
