package policy

import (
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestIdentityForPrecedence(t *testing.T) {
	p := mustParse(t, entries(
		entry("glob-glob", `["flux-*"]`, `["*"]`),
		entry("glob-exact", `["flux-*"]`, "[source-controller, helm-controller]"),
		entry("exact-glob", "[flux-system]", `["*-controller"]`),
		entry("exact-exact", "[flux-system]", "[source-controller]"),
		entry("other-glob-exact", `["*-apps"]`, "[notification-controller]"),
	))
	tests := []struct {
		name   string
		ns, sa string
		want   string // "" for no match
	}{
		{"exact namespace and exact ServiceAccount win over every glob", "flux-system", "source-controller", "exact-exact"},
		{"exact namespace with a ServiceAccount glob beats a namespace glob with an exact ServiceAccount",
			"flux-system", "helm-controller", "exact-glob"},
		{"a namespace glob with an exact ServiceAccount beats globs on both", "flux-apps", "helm-controller", "glob-exact"},
		{"globs on both apply when nothing more specific does", "flux-apps", "default", "glob-glob"},
		{"an exact namespace that matches no ServiceAccount falls back to namespace globs", "flux-system", "default",
			"glob-glob"},
		{"another namespace glob with an exact ServiceAccount beats globs on both",
			"flux-apps", "notification-controller", "other-glob-exact"},
		{"a namespace no entry names has no identity", "team-a", "source-controller", ""},
		{"a ServiceAccount outside every entry's patterns has no identity", "infra-apps", "default", ""},
		{"the empty namespace has no identity", "", "source-controller", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := p.IdentityFor(tt.ns, tt.sa)
			switch {
			case tt.want == "" && ok:
				t.Errorf("IdentityFor(%q, %q) = %q, want no match", tt.ns, tt.sa, m.Identity.Name)
			case tt.want != "" && !ok:
				t.Errorf("IdentityFor(%q, %q) found nothing, want %q", tt.ns, tt.sa, tt.want)
			case ok && m.Identity.Name != tt.want:
				t.Errorf("IdentityFor(%q, %q) = %q, want %q", tt.ns, tt.sa, m.Identity.Name, tt.want)
			case ok && (m.Cloud != CloudAWS || m.RoleARN != "arn:aws:iam::111122223333:role/"+tt.want):
				t.Errorf("IdentityFor(%q, %q) = %+v, want the AWS role of %q", tt.ns, tt.sa, m, tt.want)
			}
		})
	}
}

func TestIdentityForExpandsTemplates(t *testing.T) {
	p := mustParse(t, withHeader(
		"  - name: tenants-aws",
		`    namespaces: ["team-*"]`,
		`    serviceAccounts: ["flux-*"]`,
		"    aws:",
		"      roleARN: arn:aws:iam::111122223333:role/tenants/{namespace}.{serviceAccount}-{namespace}",
		"  - name: tenants-gcp",
		`    namespaces: ["data-*"]`,
		`    serviceAccounts: ["*"]`,
		"    gcp:",
		`      serviceAccount: "flux-{serviceAccount}@{namespace}-prod.iam.gserviceaccount.com"`,
		"  - name: fixed",
		"    namespaces: [flux-system]",
		"    serviceAccounts: [source-controller]",
		"    gcp: {serviceAccount: flux-source@my-project.iam.gserviceaccount.com}",
		"  - name: azure",
		"    namespaces: [flux-system]",
		"    serviceAccounts: [image-automation-controller]",
		"    azure: {clientID: 6a1c5e8e-0a4f-4f39-9d2b-1b8d3f6c2a10, tenantID: 72f988bf-86f1-41af-91ab-2d7cd011db47}",
	))
	tests := []struct {
		name          string
		ns, sa        string
		cloud         Cloud
		role, account string
	}{
		{"both placeholders in a role ARN are expanded, every occurrence", "team-a", "flux-source", CloudAWS,
			"arn:aws:iam::111122223333:role/tenants/team-a.flux-source-team-a", ""},
		{"both placeholders in a Google service account are expanded", "data-eu", "helm", CloudGCP,
			"", "flux-helm@data-eu-prod.iam.gserviceaccount.com"},
		{"a value without placeholders is returned as written", "flux-system", "source-controller", CloudGCP,
			"", "flux-source@my-project.iam.gserviceaccount.com"},
		{"an Azure identity carries no expanded values", "flux-system", "image-automation-controller", CloudAzure, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := p.IdentityFor(tt.ns, tt.sa)
			if !ok {
				t.Fatalf("IdentityFor(%q, %q) found nothing", tt.ns, tt.sa)
			}
			if m.Cloud != tt.cloud || m.RoleARN != tt.role || m.GCPServiceAccount != tt.account {
				t.Errorf("IdentityFor(%q, %q) = {Cloud: %s, RoleARN: %q, GCPServiceAccount: %q}, want {%s, %q, %q}",
					tt.ns, tt.sa, m.Cloud, m.RoleARN, m.GCPServiceAccount, tt.cloud, tt.role, tt.account)
			}
		})
	}
	spec := p.Spec.Identities[0].AWS.RoleARN
	if spec != "arn:aws:iam::111122223333:role/tenants/{namespace}.{serviceAccount}-{namespace}" {
		t.Errorf("expansion changed the spec: %q", spec)
	}
}

func TestOwnership(t *testing.T) {
	p := mustParse(t, doc(
		"apiVersion: fluxidentity.dev/v1alpha1",
		"kind: IdentityPolicy",
		"identities:",
		"  - {name: a, namespaces: [flux-system], serviceAccounts: [source-controller], mode: warn,",
		`     aws: {roleARN: "arn:aws:iam::111122223333:role/a"}}`,
		"  - {name: b, namespaces: [flux-system], serviceAccounts: [helm-controller],",
		`     aws: {roleARN: "arn:aws:iam::111122223333:role/b"}}`,
		`  - {name: c, namespaces: ["team-*"], serviceAccounts: [flux], mode: off,`,
		`     aws: {roleARN: "arn:aws:iam::111122223333:role/c"}}`,
		"  - {name: d, namespaces: [team-a], serviceAccounts: [flux], mode: warn,",
		`     aws: {roleARN: "arn:aws:iam::111122223333:role/d"}}`,
		"  - {name: e, namespaces: [shared], serviceAccounts: [flux], mode: off,",
		`     aws: {roleARN: "arn:aws:iam::111122223333:role/e"}}`,
		"mandates:",
		`  - {name: m, namespaces: [apps, "infra-*", shared], mode: warn}`,
	))
	tests := []struct {
		name  string
		ns    string
		mode  Mode
		owned bool
	}{
		{"the strictest mode of the identities naming a namespace wins", "flux-system", ModeEnforce, true},
		{"an exact entry and a glob entry both count", "team-a", ModeWarn, true},
		{"a namespace named only by a glob entry takes its mode", "team-b", ModeOff, true},
		{"a namespace named only by a mandate is enforced, whatever the mandate's mode", "apps", ModeEnforce, true},
		{"a namespace matched only by a mandate glob is enforced", "infra-eu", ModeEnforce, true},
		{"an identity's mode wins over a mandate naming the same namespace", "shared", ModeOff, true},
		{"a namespace nothing names is not owned", "default", "", false},
		{"a namespace sharing a prefix with a glob's literal is not owned", "team", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mode, owned := p.Ownership(tt.ns)
			if mode != tt.mode || owned != tt.owned {
				t.Errorf("Ownership(%q) = %q, %v; want %q, %v", tt.ns, mode, owned, tt.mode, tt.owned)
			}
		})
	}
}

func TestStricter(t *testing.T) {
	tests := []struct{ a, b, want Mode }{
		{ModeEnforce, ModeWarn, ModeEnforce},
		{ModeWarn, ModeEnforce, ModeEnforce},
		{ModeWarn, ModeOff, ModeWarn},
		{ModeOff, ModeWarn, ModeWarn},
		{ModeOff, ModeOff, ModeOff},
	}
	for _, tt := range tests {
		if got := Stricter(tt.a, tt.b); got != tt.want {
			t.Errorf("Stricter(%q, %q) = %q, want %q", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestMandatesFor(t *testing.T) {
	p := mustParse(t, withMandateHeader(
		`  - {name: tenants-git, namespaces: ["team-*"], kinds: [GitRepository]}`,
		`  - {name: everything, namespaces: [team-a, "team-*", team-a, flux-system]}`,
		`  - {name: registries, namespaces: ["*"], kinds: [OCIRepository, Bucket], mode: warn}`,
		`  - {name: flux-git, namespaces: [flux-system], kinds: [GitRepository]}`,
	))
	tests := []struct {
		name     string
		ns, kind string
		want     []string
	}{
		{"mandates come in file order, whether they name the namespace exactly or by glob", "team-a", "GitRepository",
			[]string{"tenants-git", "everything"}},
		{"a mandate naming a namespace several times comes once", "team-a", "HelmRepository", []string{"everything"}},
		{"kinds filter the mandates", "team-a", "OCIRepository", []string{"everything", "registries"}},
		{"a mandate without kinds covers every source kind", "team-b", "ImageRepository", []string{"everything"}},
		{"an exact namespace and a star both apply", "flux-system", "Bucket", []string{"everything", "registries"}},
		{"an exact namespace's own mandate comes in file order", "flux-system", "GitRepository",
			[]string{"everything", "flux-git"}},
		{"a namespace only the star names gets the star's kinds", "default", "Bucket", []string{"registries"}},
		{"a kind no mandate covers there gets nothing", "default", "GitRepository", nil},
		{"a kind the webhook does not know gets nothing", "team-a", "Alert", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, m := range p.MandatesFor(tt.ns, tt.kind) {
				got = append(got, m.Name)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("MandatesFor(%q, %q) = %v, want %v", tt.ns, tt.kind, got, tt.want)
			}
		})
	}
	if m := p.MandatesFor("team-a", "OCIRepository"); m[1] != &p.Spec.Mandates[2] || m[1].Mode != ModeWarn {
		t.Errorf("MandatesFor returned %+v, want the spec's own mandate", m[1])
	}
}

func TestExceptionFor(t *testing.T) {
	p := mustParse(t, doc(
		"apiVersion: fluxidentity.dev/v1alpha1",
		"kind: IdentityPolicy",
		"mandates:",
		`  - {name: no-static, namespaces: ["team-*"]}`,
		"exceptions:",
		"  - {namespace: team-a, kind: GitRepository, name: legacy-*, reason: PLAT-1, expires: 2027-01-31}",
		`  - {namespace: team-a, kind: OCIRepository, name: charts, reason: PLAT-2, expires: "2026-12-31"}`,
		`  - {namespace: team-b, kind: GitRepository, name: "*", reason: PLAT-3, expires: "2026-01-01"}`,
	))
	day := func(s string) time.Time {
		t.Helper()
		d, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	cet := time.FixedZone("CET", 3600)
	tests := []struct {
		name             string
		ns, kind, object string
		now              time.Time
		wantReason       string // "" for none
	}{
		{"a glob name matches", "team-a", "GitRepository", "legacy-monorepo", testNow, "PLAT-1"},
		{"a glob name does not match other objects", "team-a", "GitRepository", "monorepo", testNow, ""},
		{"another kind is not covered", "team-a", "HelmRepository", "legacy-monorepo", testNow, ""},
		{"another namespace is not covered", "team-c", "GitRepository", "legacy-monorepo", testNow, ""},
		{"an exact name matches", "team-a", "OCIRepository", "charts", testNow, "PLAT-2"},
		{"an exception holds at the start of its last day", "team-a", "GitRepository", "legacy-x",
			day("2027-01-31T00:00:00Z"), "PLAT-1"},
		{"an exception holds through the last instant of its last day in UTC", "team-a", "GitRepository", "legacy-x",
			day("2027-01-31T23:59:59.999999999Z"), "PLAT-1"},
		{"an exception is ignored from the day after", "team-a", "GitRepository", "legacy-x",
			day("2027-02-01T00:00:00Z"), ""},
		{"an exception's day is a UTC day, whatever the zone of now", "team-a", "GitRepository", "legacy-x",
			time.Date(2027, time.February, 1, 0, 30, 0, 0, cet), "PLAT-1"},
		{"an exception ends at UTC midnight in every zone", "team-a", "GitRepository", "legacy-x",
			time.Date(2027, time.February, 1, 1, 0, 0, 0, cet), ""},
		{"an exception that had expired when the policy loaded is ignored", "team-b", "GitRepository", "anything",
			testNow, ""},
		{"an expired exception applies to a clock before its expiry", "team-b", "GitRepository", "anything",
			day("2025-12-31T12:00:00Z"), "PLAT-3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := p.ExceptionFor(tt.ns, tt.kind, tt.object, tt.now)
			switch {
			case tt.wantReason == "" && ok:
				t.Errorf("ExceptionFor found %+v, want none", e)
			case tt.wantReason != "" && !ok:
				t.Errorf("ExceptionFor found nothing, want %s", tt.wantReason)
			case ok && e.Reason != tt.wantReason:
				t.Errorf("ExceptionFor found %s, want %s", e.Reason, tt.wantReason)
			}
		})
	}
	if len(p.Warnings) != 1 || p.Warnings[0].Field != "exceptions[2].expires" {
		t.Errorf("warnings = %v, want one about exceptions[2]", p.Warnings)
	}
}

func TestParseRecordsSourceAndDigest(t *testing.T) {
	yaml := entries(entry("flux", "[flux-system]", "[source-controller]"))
	a := mustParse(t, yaml)
	b := mustParse(t, yaml+"# a comment changes the digest\n")
	if a.Source != "policy.yaml" {
		t.Errorf("Source = %q, want policy.yaml", a.Source)
	}
	if len(a.Digest) != 64 || a.Digest == b.Digest {
		t.Errorf("digests %q and %q: want two different sha256 hex digests", a.Digest, b.Digest)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	writeFile(t, path, entries(entry("flux", "[flux-system]", "[source-controller]")))
	p, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if p.Source != path {
		t.Errorf("Source = %q, want %q", p.Source, path)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want a wrapped not-exist error", err)
	}
}

// TestSamplesLoad keeps config/samples loadable and checks what they promise.
func TestSamplesLoad(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("..", "config", "samples", "policy*.yaml"))
	if err != nil || len(paths) < 3 {
		t.Fatalf("samples: %v %v, want at least three", paths, err)
	}
	policies := map[string]*Policy{}
	for _, path := range paths {
		p, err := Load(path)
		if err != nil {
			t.Errorf("sample %s does not load:\n%v", path, err)
			continue
		}
		if len(p.Warnings) != 0 {
			t.Errorf("sample %s loads with warnings: %v", path, p.Warnings)
		}
		policies[filepath.Base(path)] = p
	}

	if p := policies["policy.yaml"]; p != nil {
		clouds := map[Cloud]bool{}
		for _, id := range p.Spec.Identities {
			clouds[newCompiledIdentity(&id).cloud] = true
		}
		if len(clouds) != 3 {
			t.Errorf("policy.yaml uses clouds %v, want all three", clouds)
		}
		lookups := []struct {
			ns, sa, identity, value string
		}{
			{"flux-system", "source-controller", "flux-controllers", "arn:aws:iam::111122223333:role/flux/flux-system"},
			{"flux-system", "image-automation-controller", "flux-image-automation", ""},
			{"flux-system", "notification-controller", "flux-notifications",
				"flux-notifications@platform-prod.iam.gserviceaccount.com"},
			{"team-payments", "flux-source", "tenants", "arn:aws:iam::444455556666:role/tenants/team-payments.flux-source"},
			{"team-data", "flux-helm", "team-data", "flux-team-data@data-platform-prod.iam.gserviceaccount.com"},
		}
		for _, l := range lookups {
			m, ok := p.IdentityFor(l.ns, l.sa)
			if !ok || m.Identity.Name != l.identity || m.RoleARN+m.GCPServiceAccount != l.value {
				t.Errorf("policy.yaml: IdentityFor(%q, %q) = %+v, %v; want %s with %q", l.ns, l.sa, m, ok, l.identity, l.value)
			}
		}
		if got := p.MandatesFor("team-payments", "GitRepository"); len(got) != 1 {
			t.Errorf("policy.yaml: mandates for team-payments GitRepository = %d, want 1", len(got))
		}
		if _, ok := p.ExceptionFor("team-payments", "GitRepository", "legacy-bitbucket", time.Now()); !ok {
			t.Error("policy.yaml: the team-payments exception does not apply")
		}
	}
	if p := policies["policy-warn.yaml"]; p != nil {
		for _, m := range p.Spec.Mandates {
			if m.Mode != ModeWarn {
				t.Errorf("policy-warn.yaml: mandate %s is %s, want warn", m.Name, m.Mode)
			}
		}
		for _, ns := range []string{"flux-system", "team-a"} {
			if mode, owned := p.Ownership(ns); mode != ModeWarn || !owned {
				t.Errorf("policy-warn.yaml: Ownership(%q) = %s, %v; want warn", ns, mode, owned)
			}
		}
	}
	if p := policies["policy-minimal.yaml"]; p != nil && len(p.Spec.Identities) != 1 {
		t.Errorf("policy-minimal.yaml has %d identities, want 1", len(p.Spec.Identities))
	}
}

// Lookups of entries without placeholders allocate nothing: the pod path asks on every pod creation.
func TestLookupsDoNotAllocate(t *testing.T) {
	p, err := Parse("allocs", []byte(`apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata: {name: allocs}
identities:
  - name: exact
    namespaces: [flux-system]
    serviceAccounts: [source-controller]
    aws: {roleARN: "arn:aws:iam::111122223333:role/flux"}
  - name: glob
    namespaces: ["team-*"]
    serviceAccounts: ["flux-*"]
    azure: {clientID: 00000000-0000-0000-0000-000000000001, tenantID: 00000000-0000-0000-0000-0000000000aa}
mandates:
  - name: m
    namespaces: ["team-*"]
`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for name, lookup := range map[string]func(){
		"exact hit": func() { _, _ = p.IdentityFor("flux-system", "source-controller") },
		"glob hit":  func() { _, _ = p.IdentityFor("team-a", "flux-source") },
		"miss":      func() { _, _ = p.IdentityFor("apps", "default") },
		"ownership": func() { _, _ = p.Ownership("team-a") },
	} {
		if n := testing.AllocsPerRun(200, lookup); n != 0 {
			t.Errorf("%s: %v allocations per lookup, want 0", name, n)
		}
	}
}
