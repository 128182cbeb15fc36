// Package patch builds the JSON Patch operations of an admission answer against the raw request, on the paths the
// webhook owns only; the front (package webhook) encodes them.
package patch

import (
	"slices"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
)

// Patches are built against the raw request JSON, on the paths the webhook owns only: one "add" or "replace" per key
// or array element it sets, a whole map or array only where none exists yet. There is never a "remove" and never a
// re-serialised list, so fields this build of k8s.io/api does not know survive untouched.

// EscapeKey escapes a map key for a JSON Pointer (RFC 6901): '~' first, then '/'.
func EscapeKey(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

// SetMapEntries makes the map at path hold want's entries: the whole map when it is absent (have == nil), otherwise
// one operation per key that is missing or differs. Keys are visited in order so patches are deterministic.
func SetMapEntries(ops []jsonpatch.Operation, path string, have, want map[string]string) []jsonpatch.Operation {
	if len(want) == 0 {
		return ops
	}
	if have == nil {
		m := make(map[string]any, len(want))
		for k, v := range want {
			m[k] = v
		}
		return append(ops, jsonpatch.NewOperation("add", path, m))
	}
	for _, k := range sortedKeys(want) {
		v := want[k]
		old, ok := have[k]
		switch {
		case !ok:
			ops = append(ops, jsonpatch.NewOperation("add", path+"/"+EscapeKey(k), v))
		case old != v:
			ops = append(ops, jsonpatch.NewOperation("replace", path+"/"+EscapeKey(k), v))
		}
	}
	return ops
}

// SetMetadata makes the metadata at base+"/metadata" hold the annotations and labels: entry by entry when metadata
// exists, as one new object when it does not.
func SetMetadata(ops []jsonpatch.Operation, base string, m *Metadata, annotations, labels map[string]string) []jsonpatch.Operation {
	if m != nil {
		ops = SetMapEntries(ops, base+"/metadata/annotations", m.Annotations, annotations)
		return SetMapEntries(ops, base+"/metadata/labels", m.Labels, labels)
	}
	if len(annotations) == 0 && len(labels) == 0 {
		return ops
	}
	obj := map[string]any{}
	if len(annotations) > 0 {
		obj["annotations"] = annotations
	}
	if len(labels) > 0 {
		obj["labels"] = labels
	}
	return append(ops, jsonpatch.NewOperation("add", base+"/metadata", obj))
}

// AppendToArray adds items to the array at path: the whole array when absent, one "-" append per item otherwise.
func AppendToArray[T any](ops []jsonpatch.Operation, path string, exists bool, items []T) []jsonpatch.Operation {
	if len(items) == 0 {
		return ops
	}
	if !exists {
		return append(ops, jsonpatch.NewOperation("add", path, items))
	}
	end := path + "/-"
	for i := range items {
		// A pointer: boxing a value would copy every item to the heap; the patch encodes both alike.
		ops = append(ops, jsonpatch.NewOperation("add", end, &items[i]))
	}
	return ops
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
