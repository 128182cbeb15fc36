package policy

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// FuzzParse: no input makes Parse panic or return an unplaced problem, and a policy that loads answers lookups
// consistently with its own patterns.
func FuzzParse(f *testing.F) {
	samples, _ := filepath.Glob(filepath.Join("..", "config", "samples", "policy*.yaml"))
	for _, path := range samples {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(""))
	f.Add([]byte("---\n"))
	f.Add([]byte(entries(entry("a", `["team-*", flux-system]`, `[flux, "*-controller"]`),
		entry("b", `["*"]`, `["?"]`))))
	f.Add([]byte(withHeader(nameFlux, "    namespaces: &ns [flux-system]", saSourceCtrl, awsFlowFlux,
		"  - name: b", "    namespaces: *ns", "    serviceAccounts: [helm-controller]", awsFlowFlux)))
	f.Add([]byte(exceptionDoc("team-a", "GitRepository", "legacy-*", "PLAT-1", "2027-01-31")))
	f.Add([]byte(withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:",
		"      roleARN: arn:aws:iam::111122223333:role/{namespace}/{serviceAccount}",
		"      tokenExpirationSeconds: 0x1000")))
	f.Add([]byte("a: 1\n---\nb: [\n"))
	f.Add([]byte("identities: &a [*a]\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data, testNow)
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) || len(le.Problems) == 0 {
				t.Fatalf("Parse failed without problems: %v", err)
			}
			for _, pr := range le.Problems {
				if pr.File != "fuzz.yaml" || pr.Line < 1 || pr.Column < 1 || pr.Message == "" {
					t.Fatalf("problem without a place: %+v", pr)
				}
			}
			return
		}
		for _, pr := range p.Warnings {
			if pr.Line < 1 || pr.Column < 1 {
				t.Fatalf("warning without a place: %+v", pr)
			}
		}
		queries := [][2]string{{"flux-system", "source-controller"}, {"team-a", "flux"}, {"", ""}, {"a", "b"}}
		for _, id := range p.Spec.Identities {
			for _, ns := range id.Namespaces {
				for _, sa := range id.ServiceAccounts {
					queries = append(queries, [2]string{sampleOf(ns), sampleOf(sa)})
				}
			}
		}
		for _, q := range queries {
			m, ok := p.IdentityFor(q[0], q[1])
			if ok && !(matchesAny(m.Identity.Namespaces, q[0]) && matchesAny(m.Identity.ServiceAccounts, q[1])) {
				t.Fatalf("IdentityFor(%q, %q) = %q, whose patterns do not match", q[0], q[1], m.Identity.Name)
			}
			_, _ = p.Ownership(q[0])
			for _, mandate := range p.MandatesFor(q[0], "GitRepository") {
				if !matchesAny(mandate.Namespaces, q[0]) {
					t.Fatalf("MandatesFor(%q) returned %q, whose patterns do not match", q[0], mandate.Name)
				}
			}
			_, _ = p.ExceptionFor(q[0], "GitRepository", q[1], testNow)
		}
		// An exact pair of an entry is answered by that entry: nothing is more specific, and a tie fails the load.
		for i := range p.Spec.Identities {
			id := &p.Spec.Identities[i]
			for _, ns := range id.Namespaces {
				for _, sa := range id.ServiceAccounts {
					if IsGlob(ns) || IsGlob(sa) {
						continue
					}
					if m, ok := p.IdentityFor(ns, sa); !ok || m.Identity != id {
						t.Fatalf("IdentityFor(%q, %q) did not return entry %q", ns, sa, id.Name)
					}
				}
			}
		}
	})
}

// sampleOf is a name a pattern matches.
func sampleOf(pattern string) string {
	return strings.NewReplacer("*", "x", "?", "y").Replace(pattern)
}

func matchesAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if globMatch(p, s) {
			return true
		}
	}
	return false
}

// globRegexp translates a glob into an anchored regular expression: '*' is any run of characters, '?' one.
func globRegexp(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`(?s)\A`)
	for _, c := range pattern {
		switch c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`\z`)
	return regexp.MustCompile(b.String())
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// FuzzGlobMatch cross-checks globMatch against its regular-expression translation. globMatch works on bytes and
// regexp on runes, so the comparison holds for ASCII, which is all Kubernetes names can hold.
func FuzzGlobMatch(f *testing.F) {
	for _, tt := range [][2]string{
		{"team-*", "team-a"}, {"*-controller", "source-controller"}, {"a*b*c", "aXbYc"}, {"*aab", "aaaab"},
		{"?*?", "x"}, {"", ""}, {"**", ""}, {"a.b", "axb"}, {"[a]", "a"}, {"*\n", "x\n"},
	} {
		f.Add(tt[0], tt[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if !isASCII(pattern) || !isASCII(s) {
			return
		}
		want := globRegexp(pattern).MatchString(s)
		if got := globMatch(pattern, s); got != want {
			t.Fatalf("globMatch(%q, %q) = %v, regexp says %v", pattern, s, got, want)
		}
	})
}

// FuzzGlobsIntersect: a string that two globs both match proves that they intersect, in either order.
func FuzzGlobsIntersect(f *testing.F) {
	f.Add("team-*", "*-a", "team-a")
	f.Add("aaa*", "*bbb", "aaabbb")
	f.Add("?*", "*?", "x")
	f.Fuzz(func(t *testing.T, a, b, s string) {
		if len(a) > 64 || len(b) > 64 {
			return // the state space is len(a)*len(b)
		}
		if globMatch(a, s) && globMatch(b, s) && !(globsIntersect(a, b) && globsIntersect(b, a)) {
			t.Fatalf("globsIntersect(%q, %q) = false, but both match %q", a, b, s)
		}
	})
}
