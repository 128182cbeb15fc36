package webhook

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluxidentity/flux-identity-webhook/webhook/fluxauth"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite the credential table in README.md from the model")

// mandateSays is what a mandate makes of each class of use, as EvaluateSource decides it.
var mandateSays = map[fluxauth.Class]string{
	fluxauth.Ignored:            "—",
	fluxauth.StoredSecret:       "refused (an exception excuses it)",
	fluxauth.InlineCredential:   "refused (an exception excuses it)",
	fluxauth.PullSecrets:        "refused (an exception excuses it)",
	fluxauth.AppKey:             "refused unless `allowProviders: [github]`",
	fluxauth.TLSMaterial:        "refused with `cover: [tlsClientKeys]`",
	fluxauth.ProxyLogin:         "refused with `cover: [proxyCredentials]`",
	fluxauth.ObjectIdentity:     "the ServiceAccount must be mapped to this cloud",
	fluxauth.ControllerIdentity: "refused outside `flux.namespaces` unless `allowControllerIdentity`",
}

// credentialTable renders fluxauth.Model as the README's table.
func credentialTable() string {
	var b strings.Builder
	b.WriteString("| kind | variant | provider | field | what Flux does | a mandate |\n|---|---|---|---|---|---|\n")
	any := func(s string) string {
		if s == fluxauth.AnyProvider {
			return "any"
		}
		return s
	}
	for _, r := range fluxauth.Model {
		says := mandateSays[r.Class]
		switch {
		case r.Class == fluxauth.ControllerIdentity && r.Lockdown:
			says += "; with `flux.defaultServiceAccount` that ServiceAccount must be mapped"
		case r.Class == fluxauth.ObjectIdentity && r.PullSecretsWin:
			says += ", without imagePullSecrets"
		}
		b.WriteString("| " + strings.Join([]string{r.Kind, any(r.Variant), any(r.Provider), "`" + r.Field + "`",
			r.Reads, says}, " | ") + " |\n")
	}
	return b.String()
}

const (
	tableBegin = "<!-- credential-model:begin (generated from webhook/fluxauth/model.go: go test ./webhook -run TestREADME -update-readme) -->\n"
	tableEnd   = "<!-- credential-model:end -->"
)

// TestREADMECredentialTableMatchesTheModel keeps the README's credential table equal to the code's.
func TestREADMECredentialTableMatchesTheModel(t *testing.T) {
	path := filepath.Join("..", "README.md")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	begin, end := strings.Index(readme, tableBegin), strings.Index(readme, tableEnd)
	if begin < 0 || end < begin {
		t.Fatalf("README.md has no %q ... %q block", strings.TrimSpace(tableBegin), tableEnd)
	}
	want := credentialTable()
	got := readme[begin+len(tableBegin) : end]
	if got == want {
		return
	}
	if *updateREADME {
		if err := os.WriteFile(path, []byte(readme[:begin+len(tableBegin)]+want+readme[end:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's credential table differs from fluxauth.Model; run go test ./webhook -run TestREADME -update-readme\nwant:\n%s", want)
}

// TestREADMELayoutMatchesTheTree holds README's layout table to the repository: every path it lists exists, and every
// directory (but testdata, bin and hidden ones other than .ci) has its own row, holds directories that have rows, or is
// named (as "name/") in the row of its nearest ancestor that has one.
func TestREADMELayoutMatchesTheTree(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "README.md"))
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
		if info, err := os.Stat(filepath.Join("..", path)); err != nil || !info.IsDir() {
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
	err = filepath.WalkDir("..", func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() || p == ".." {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, "../"))
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
