package fluxcompat

import (
	"bytes"
	"context"
	"encoding/base64"
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

// corpusPolicy mandates everything everywhere, every opt-in included, and maps a handful of ServiceAccounts
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
    cover: [tlsClientKeys, proxyCredentials, sopsPrivateKeys, receiverTokens]
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
		if refuses(row, p, namespace, account, provider) {
			refused = append(refused, f)
		}
	}
	return refused
}

// refuses reads a row's last column for an object of namespace naming account: whether the mandate refuses the
// field. cloud is the object's ("" where the table's kind has one cloud per variant).
func refuses(row readmeRow, p *policy.Policy, namespace, account, cloud string) bool {
	switch {
	case strings.HasPrefix(row.mandate, "refused outside `flux.namespaces`"):
		return !p.FluxNamespace(namespace)
	case strings.HasPrefix(row.mandate, "refused"):
		return true
	case strings.HasPrefix(row.mandate, "the ServiceAccount must be mapped to this cloud"):
		m, ok := p.IdentityFor(namespace, account)
		return !ok || cloud != "" && string(m.Cloud) != cloud
	}
	return false
}

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// corpus is documentation of a module release: the markdown files of glob under the module's root.
type corpus struct{ module, glob string }

// example is a YAML document of a documentation example: where it is, its parsed form and its namespace.
type example struct {
	file, doc, namespace string
	obj                  map[string]any
}

func (e example) kind() string { k, _ := e.obj["kind"].(string); return k }

func (e example) group() string {
	apiVersion, _ := e.obj["apiVersion"].(string)
	group, _, found := strings.Cut(apiVersion, "/")
	if !found {
		return "" // v1: the core group
	}
	return group
}

// examples reads every YAML document of a corpus's code blocks (read from the module cache at test time).
func examples(t *testing.T, c corpus) []example {
	t.Helper()
	dir := moduleDir(t, c.module)
	files, err := filepath.Glob(filepath.Join(dir, filepath.FromSlash(c.glob)))
	if err != nil || len(files) == 0 {
		t.Fatalf("no documentation %s in %s: %v", c.glob, dir, err)
	}
	var out []example
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, file)
		for _, block := range yamlBlock.FindAllStringSubmatch(string(data), -1) {
			for _, doc := range strings.Split(block[1], "\n---") {
				var obj map[string]any
				if yaml.Unmarshal([]byte(doc), &obj) != nil || obj == nil {
					continue
				}
				namespace := "default"
				if md, ok := obj["metadata"].(map[string]any); ok {
					if ns, ok := md["namespace"].(string); ok && ns != "" {
						namespace = ns
					}
				}
				out = append(out, example{file: c.module + "/" + rel, doc: doc, namespace: namespace, obj: obj})
			}
		}
	}
	return out
}

// corpusFixture writes corpusPolicy for explain and loads it for the predictions.
func corpusFixture(t *testing.T) (string, *policy.Policy) {
	t.Helper()
	policyPath := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyPath, []byte(corpusPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Load(policyPath)
	if err != nil {
		t.Fatal(err)
	}
	return policyPath, p
}

var sourceKinds = []string{"GitRepository", "OCIRepository", "HelmRepository", "Bucket", "ImageRepository"}

// TestFluxDocumentationExamplesGetTheREADMEsDecision runs every Flux source in source-controller's own documentation
// (docs/spec/v1*/*.md of the release the model mirrors) through `policy explain` under a mandate covering everything,
// and checks each decision against what the README's credential table predicts.
func TestFluxDocumentationExamplesGetTheREADMEsDecision(t *testing.T) {
	rows := readmeTable(t)
	policyPath, p := corpusFixture(t)
	stats := map[string]int{}
	for _, e := range examples(t, corpus{module: sourceControllerModule, glob: "docs/spec/v1*/*.md"}) {
		if !slices.Contains(sourceKinds, e.kind()) {
			continue
		}
		if g := e.group(); g != "source.toolkit.fluxcd.io" && g != "image.toolkit.fluxcd.io" {
			// A typo in Flux's docs (source.toolkit.fluccd.io): the API server never sends such an object
			// to the webhook, and explain must not judge it as a source either.
			got, message := explain(t, policyPath, e.doc)
			stats["not a Flux group"]++
			if got != "errored" || !strings.Contains(message, "is not a Flux object this webhook validates") {
				t.Errorf("%s, %s %s: explain says %s (%s), want it to refuse to judge another group",
					e.file, e.obj["apiVersion"], e.kind(), got, message)
			}
			continue
		}
		stats[judge(t, policyPath, e, predict(t, rows, p, e.obj, e.namespace))]++
	}
	if stats["denied"] < 20 || stats["allowed"] < 10 {
		t.Errorf("decisions %v: the corpus proves too little", stats)
	}
	t.Logf("decisions over Flux's documentation examples: %v", stats)
}

// TestFluxObjectDocumentationExamplesGetTheREADMEsDecision does the same for the documentation of Flux's other
// objects (Kustomization, HelmRelease, notification Provider and Receiver, ImageUpdateAutomation,
// ResourceSetInputProvider), the SOPS Secrets the kustomize-controller docs show, and the sources met there too.
func TestFluxObjectDocumentationExamplesGetTheREADMEsDecision(t *testing.T) {
	rows := readmeTable(t)
	policyPath, p := corpusFixture(t)
	stats := map[string]map[string]int{}
	for _, c := range objectDocs {
		for _, e := range examples(t, c) {
			var want []string
			group, ours := objectGroups[e.kind()]
			switch {
			case ours && e.group() == group:
				want = predictObject(rows, p, e.obj, e.namespace)
			case slices.Contains(sourceKinds, e.kind()):
				want = predict(t, rows, p, e.obj, e.namespace)
			case ours:
				// Another group's kind of the same name: the API server never sends it, and explain must not judge it.
				if got, message := explain(t, policyPath, e.doc); got != "errored" {
					t.Errorf("%s, %s %s: explain says %s (%s), want it to refuse to judge another group",
						e.file, e.obj["apiVersion"], e.kind(), got, message)
				}
				continue
			default:
				continue // another kind (Alert, Deployment, ...)
			}
			if stats[e.kind()] == nil {
				stats[e.kind()] = map[string]int{}
			}
			stats[e.kind()][judge(t, policyPath, e, want)]++
		}
	}
	for kind := range objectGroups {
		// Every kind is refused somewhere and admitted somewhere (a Secret without SOPS entries is skipped).
		if s := stats[kind]; s["denied"] == 0 || s["allowed"]+s["warned"]+s["skipped"] == 0 {
			t.Errorf("%s: decisions %v: the corpus proves too little", kind, s)
		}
	}
	t.Logf("decisions over the documentation examples of Flux's other objects: %v", stats)
}

// judge runs an example through explain and fails the test unless it is denied exactly when want names a field, and
// errored exactly when the example is not a valid object (the API server would refuse to decode it).
func judge(t *testing.T, policyPath string, e example, want []string) string {
	t.Helper()
	got, message := explain(t, policyPath, e.doc)
	if bad := malformed(e.obj); (got == "errored") != (bad != "") {
		t.Errorf("%s, %s %s: explain says %s (%s); malformed: %q\n%s", e.file, e.obj["apiVersion"], e.kind(), got,
			message, bad, e.doc)
	} else if bad != "" {
		return got // the API server would never send it: nothing to predict
	}
	if (got == "denied") != (len(want) > 0) {
		t.Errorf("%s, %s %s: explain says %s (%s), the README's table predicts refusing %q\n%s",
			e.file, e.obj["apiVersion"], e.kind(), got, message, want, e.doc)
	}
	return got
}

// malformed says why the API server could not decode an example the webhook reads (the docs elide parts of some): a
// spec that is not an object, or a SOPS entry of a Secret's data that is not base64 (other entries are never read).
func malformed(obj map[string]any) string {
	if spec := obj["spec"]; spec != nil { // null is an empty spec
		if _, isObject := spec.(map[string]any); !isObject {
			return "spec is not an object"
		}
	}
	if obj["kind"] == "Secret" {
		data, _ := obj["data"].(map[string]any)
		for key, v := range data {
			s, _ := v.(string)
			if sopsEntries(key) == "" {
				continue
			}
			if _, err := base64.StdEncoding.DecodeString(s); err != nil {
				return "data[" + key + "] is not base64"
			}
		}
	}
	return ""
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
