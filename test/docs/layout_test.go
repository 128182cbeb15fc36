// Package docs holds the repository's documents to the tree they describe.
package docs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMELayoutMatchesTheTree holds README's layout table to the repository: every path it lists exists, and every
// directory (but testdata, bin and hidden ones other than .ci) has its own row, holds directories that have rows, or is
// named (as "name/") in the row of its nearest ancestor that has one.
func TestREADMELayoutMatchesTheTree(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := string(data)
	if i := strings.Index(section, "\n## Layout\n"); i >= 0 {
		section = section[i:]
	}
	if i := strings.Index(section[1:], "\n## "); i >= 0 {
		section = section[:i+1]
	}
	rows := map[string]string{} // path without trailing slash -> the row's text
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		path, rest, _ := strings.Cut(strings.TrimPrefix(line, "| `"), "`")
		path = strings.TrimSuffix(path, "/")
		rows[path] = rest
		if info, err := os.Stat(filepath.Join("..", "..", path)); err != nil || !info.IsDir() {
			t.Errorf("README's layout lists %s, which is not a directory of the tree", path)
		}
	}
	if len(rows) < 10 {
		t.Fatalf("found %d layout rows: is the section still called Layout?", len(rows))
	}
	hasRowBelow := func(dir string) bool {
		for p := range rows {
			if strings.HasPrefix(p, dir+"/") {
				return true
			}
		}
		return false
	}
	err = filepath.WalkDir(filepath.Join("..", ".."), func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() || p == filepath.Join("..", "..") {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, "../../"))
		name := d.Name()
		if name == "testdata" || name == "bin" || name == "node_modules" || (strings.HasPrefix(name, ".") && name != ".ci") {
			return filepath.SkipDir
		}
		if _, ok := rows[rel]; ok || hasRowBelow(rel) {
			return nil
		}
		for anc := filepath.ToSlash(filepath.Dir(rel)); anc != "."; anc = filepath.ToSlash(filepath.Dir(anc)) {
			if row, ok := rows[anc]; ok {
				if !strings.Contains(row, "`"+strings.TrimPrefix(rel, anc+"/")+"/") {
					t.Errorf("%s is not in README's layout: give it a row or name it in %s's", rel, anc)
				}
				return filepath.SkipDir
			}
		}
		t.Errorf("%s is not in README's layout", rel)
		return filepath.SkipDir
	})
	if err != nil {
		t.Fatal(err)
	}
}
