package fluxcompat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/fluxidentity/flux-identity-webhook/cmd/flux-identity-webhook/app"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// sourceControllerModule is the source-controller release whose documentation is the corpus; the webhook's model
// mirrors its code.
const sourceControllerModule = "github.com/fluxcd/source-controller@v1.9.6"

// corpusPolicy mandates everything everywhere, TLS and proxy secrets included, and maps a handful of ServiceAccounts
// so that the documentation's object-level identity examples meet both mapped and unmapped names.
const corpusPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: corpus
identities:
  - name: tenant-aws
    namespaces: ["*"]
    serviceAccounts: [my-tenant]
    aws: {roleARN: "arn:aws:iam::111122223333:role/tenant"}
  - name: tenant-azure
    namespaces: ["*"]
    serviceAccounts: [my-sa]
    azure: {clientID: 00000000-0000-0000-0000-000000000001, tenantID: 00000000-0000-0000-0000-0000000000aa}
mandates:
  - name: everything
    namespaces: ["*"]
    cover: [tlsClientKeys, proxyCredentials]
`

// readmeRow is a row of the README's credential table.
type readmeRow struct{ kind, variant, provider, field, mandate string }

// readmeTable parses the credential table the README documents (the model rendered, kept equal by a test).
func readmeTable(t *testing.T) []readmeRow {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "<!-- credential-model:begin")
	table, _, ok2 := strings.Cut(rest, "<!-- credential-model:end -->")
	if !ok || !ok2 {
		t.Fatal("README.md has no credential table")
	}
	var rows []readmeRow
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) != 6 || cells[0] == "kind" || strings.HasPrefix(cells[0], "---") {
			continue
		}
		rows = append(rows, readmeRow{cells[0], cells[1], cells[2], strings.Trim(cells[3], "`"), cells[5]})
	}
	if len(rows) < 50 {
		t.Fatalf("parsed only %d rows from the README's table", len(rows))
	}
	return rows
}

func (r readmeRow) matches(kind, variant, provider, field string) bool {
	return r.kind == kind && (r.variant == variant || r.variant == "any") &&
		(r.provider == provider || r.provider == "any") && r.field == field
}

// lookup finds the README row for a field, an exact provider before "any".
func lookup(rows []readmeRow, kind, variant, provider, field string) (readmeRow, bool) {
	for _, exact := range []bool{true, false} {
		for _, r := range rows {
			if r.matches(kind, variant, provider, field) && (r.provider == provider) == exact {
				return r, true
			}
		}
	}
	return readmeRow{}, false
}

// predict is an independent reading of the README's table for one object under corpusPolicy: which fields a mandate
// refuses, from the table's last column alone.
func predict(t *testing.T, rows []readmeRow, p *policy.Policy, obj map[string]any, namespace string) []string {
	kind, _ := obj["kind"].(string)
	spec, _ := obj["spec"].(map[string]any)
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	provider := str(spec, "provider")
	if provider == "" {
		provider = "generic"
	}
	address := str(spec, "url")
	variant := "any"
	switch kind {
	case "GitRepository":
		variant = "http"
		if strings.HasPrefix(strings.ToLower(address), "ssh://") {
			variant = "ssh"
		}
	case "HelmRepository":
		variant = "default"
		if str(spec, "type") == "oci" {
			variant = "oci"
		}
	}
	present := func(m map[string]any, k string) bool { _, ok := m[k]; return ok }
	var fields []string
	for _, f := range []string{"secretRef", "certSecretRef", "proxySecretRef"} {
		if present(spec, f) {
			fields = append(fields, "spec."+f)
		}
	}
	if sts, ok := spec["sts"].(map[string]any); ok {
		for _, f := range []string{"secretRef", "certSecretRef"} {
			if present(sts, f) {
				fields = append(fields, "spec.sts."+f)
			}
		}
	}
	account := str(spec, "serviceAccountName")
	cloud := provider == "aws" || provider == "azure" || provider == "gcp"
	switch {
	case account != "":
		fields = append(fields, "spec.serviceAccountName")
	case cloud:
		fields = append(fields, "no spec.serviceAccountName")
	}
	var refused []string
	if u, err := url.Parse(address); err == nil && u.User != nil && address != "" {
		if _, pw := u.User.Password(); pw {
			refused = append(refused, "spec.url user info") // "a password in any URL"
		} else if u.User.Username() != "" {
			fields = append(fields, "spec.url user info")
		}
	}
	for _, f := range fields {
		row, ok := lookup(rows, kind, variant, provider, f)
		if !ok {
			if strings.HasSuffix(f, "Ref") {
				refused = append(refused, f) // the model takes an unknown Secret for a credential
			}
			continue
		}
		switch {
		case strings.HasPrefix(row.mandate, "refused outside `flux.namespaces`"):
			if !p.FluxNamespace(namespace) {
				refused = append(refused, f)
			}
		case strings.HasPrefix(row.mandate, "refused"):
			refused = append(refused, f)
		case strings.HasPrefix(row.mandate, "the ServiceAccount must be mapped to this cloud"):
			if m, ok := p.IdentityFor(namespace, account); !ok || string(m.Cloud) != provider {
				refused = append(refused, f)
			}
		}
	}
	return refused
}

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// TestFluxDocumentationExamplesGetTheREADMEsDecision runs every Flux source in source-controller's own documentation
// (docs/spec/v1*/*.md of the release the model mirrors, read from the module cache at test time) through
// `policy explain` under a mandate covering everything, and checks each decision against what the README's credential
// table predicts.
func TestFluxDocumentationExamplesGetTheREADMEsDecision(t *testing.T) {
	dir := moduleDir(t, sourceControllerModule)
	files, err := filepath.Glob(filepath.Join(dir, "docs", "spec", "v1*", "*.md"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no documentation in %s: %v", dir, err)
	}
	rows := readmeTable(t)
	work := t.TempDir()
	policyPath := filepath.Join(work, "policy.yaml")
	if err := os.WriteFile(policyPath, []byte(corpusPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Load(policyPath)
	if err != nil {
		t.Fatal(err)
	}
	kinds := []string{"GitRepository", "OCIRepository", "HelmRepository", "Bucket", "ImageRepository"}
	stats := map[string]int{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, file)
		for _, block := range yamlBlock.FindAllStringSubmatch(string(data), -1) {
			for _, doc := range strings.Split(block[1], "\n---") {
				var obj map[string]any
				if yaml.Unmarshal([]byte(doc), &obj) != nil {
					continue
				}
				if kind, _ := obj["kind"].(string); !slices.Contains(kinds, kind) {
					continue
				}
				namespace := "default"
				if md, ok := obj["metadata"].(map[string]any); ok {
					if ns, ok := md["namespace"].(string); ok && ns != "" {
						namespace = ns
					}
				}
				apiVersion, _ := obj["apiVersion"].(string)
				if group, _, _ := strings.Cut(apiVersion, "/"); group != "source.toolkit.fluxcd.io" &&
					group != "image.toolkit.fluxcd.io" {
					// A typo in Flux's docs (source.toolkit.fluccd.io): the API server never sends such an object
					// to the webhook, and explain must not judge it as a source either.
					got, message := explain(t, policyPath, doc)
					stats["not a Flux group"]++
					if got != "errored" || !strings.Contains(message, "is not a Flux source") {
						t.Errorf("%s, %s %s: explain says %s (%s), want it to refuse to judge another group",
							rel, apiVersion, obj["kind"], got, message)
					}
					continue
				}
				want := predict(t, rows, p, obj, namespace)
				got, message := explain(t, policyPath, doc)
				stats[got]++
				if (got == "denied") != (len(want) > 0) {
					t.Errorf("%s, %s %s: explain says %s (%s), the README's table predicts refusing %q\n%s",
						rel, obj["apiVersion"], obj["kind"], got, message, want, doc)
				}
			}
		}
	}
	if stats["denied"] < 20 || stats["allowed"] < 10 {
		t.Errorf("decisions %v: the corpus proves too little", stats)
	}
	t.Logf("decisions over Flux's documentation examples: %v", stats)
}

// explain runs one document through `policy explain` (the server's handlers) and returns its decision.
func explain(t *testing.T, policyPath, doc string) (decision, message string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "doc.yaml")
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	code := app.Execute(ctx, []string{"policy", "explain", "--policy", policyPath, "-f", file, "-o", "json"}, &stdout, &stderr)
	if code > 1 {
		t.Fatalf("explain exited %d: %s", code, stderr.String())
	}
	var out []struct{ Decision, Message string }
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || len(out) != 1 {
		t.Fatalf("explain printed %q: %v", stdout.String(), err)
	}
	return out[0].Decision, out[0].Message
}

// moduleDir finds a module's source in the module cache, downloading it through the module proxy if needed.
func moduleDir(t *testing.T, module string) string {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", module).Output()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		t.Fatalf("go mod download %s: %v: %s", module, err, exitErr.Stderr)
	}
	if err != nil {
		t.Fatal(err)
	}
	var info struct{ Dir string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		t.Fatalf("go mod download %s printed %s", module, out)
	}
	return info.Dir
}
