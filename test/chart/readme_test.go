package chart

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The chart README's values table lists every value in values.yaml, with its default, and nothing else.
func TestReadmeDocumentsEveryValue(t *testing.T) {
	dir := chartDir(t)
	raw, err := os.ReadFile(filepath.Join(dir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatalf("values.yaml: %v", err)
	}
	want := map[string]string{}
	flatten("", values, want)

	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([^`]+)` \\| `([^`]*)` \\|")
	got := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		got[m[1]] = m[2]
	}
	for _, key := range sortedKeys(want) {
		def, ok := got[key]
		switch {
		case !ok:
			t.Errorf("README does not document %s (default %s)", key, want[key])
		case def != want[key]:
			t.Errorf("README says %s defaults to %s, values.yaml says %s", key, def, want[key])
		}
	}
	for _, key := range sortedKeys(got) {
		if _, ok := want[key]; !ok {
			t.Errorf("README documents %s, which values.yaml does not have", key)
		}
	}
}

// flatten maps dotted keys of leaves (scalars, lists, empty maps) to their compact JSON form.
func flatten(prefix string, v any, out map[string]string) {
	if m, ok := v.(map[string]any); ok && len(m) > 0 {
		for k, child := range m {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			flatten(key, child, out)
		}
		return
	}
	if s, ok := v.(string); ok && strings.Contains(s, "\n") {
		out[prefix] = "(multi-line, see values.yaml)"
		return
	}
	j, err := yaml.Marshal(v)
	if err != nil {
		panic(err)
	}
	js, err := yaml.YAMLToJSON(j)
	if err != nil {
		panic(err)
	}
	out[prefix] = string(js)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return slices.Compact(keys)
}
