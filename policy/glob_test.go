package policy

import (
	"fmt"
	"slices"
	"testing"
)

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		s       string
		want    bool
	}{
		{"an exact name matches itself", "flux-system", "flux-system", true},
		{"an exact name does not match a longer name", "flux-system", "flux-systems", false},
		{"an exact name does not match a prefix of itself", "flux-system", "flux", false},
		{"the empty pattern matches only the empty string", "", "", true},
		{"the empty pattern does not match a name", "", "a", false},
		{"a star alone matches the empty string", "*", "", true},
		{"a star alone matches any name", "*", "image-automation-controller", true},
		{"two stars match the empty string", "**", "", true},
		{"a question mark does not match the empty string", "?", "", false},
		{"a question mark matches exactly one character", "?", "a", true},
		{"two question marks do not match one character", "??", "a", false},
		{"a trailing star matches an empty rest", "team-*", "team-", true},
		{"a trailing star matches a rest", "team-*", "team-payments", true},
		{"a trailing star still needs the prefix", "team-*", "team", false},
		{"a leading star matches a suffix", "*-controller", "source-controller", true},
		{"a leading star still needs the suffix", "*-controller", "controller", false},
		{"stars between literals match in order", "a*b*c", "aXbYc", true},
		{"stars between literals match empty runs", "a*b*c", "abc", true},
		{"literals out of order do not match", "a*b*c", "acb", false},
		{"a star backtracks over repeated characters", "*aab", "aaaab", true},
		{"a star backtracks to a later occurrence", "*ab*ab", "xabyab", true},
		{"a star between equal literals needs both", "a*a", "a", false},
		{"a star between equal literals matches both", "a*a", "aa", true},
		{"a star and a question mark need one character", "*?", "", false},
		{"a star and a question mark match one character", "*?", "x", true},
		{"question marks around a star need two characters", "?*?", "x", false},
		{"a star in the middle matches anything between", "*x*", "abxcd", true},
		{"a star in the middle needs its literal", "*x*", "abcd", false},
		{"the first character must match", "a*", "ba", false},
		{"a question mark in a name matches one character", "team-?", "team-a", true},
		{"a question mark in a name does not match two", "team-?", "team-ab", false},
		{"dots are plain characters", "flux.*", "flux.source", true},
		{"dots do not match other characters", "flux.*", "flux-source", false},
		{"a star stays a wildcard against a star in the name", "*", "*0", true},
		{"a star after a literal stays a wildcard against a star in the name", "a*", "a*b", true},
		{"a question mark matches a star in the name", "?", "*", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := globMatch(tt.pattern, tt.s); got != tt.want {
				t.Errorf("globMatch(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
			}
		})
	}
}

func TestGlobHelpers(t *testing.T) {
	tests := []struct {
		pattern string
		glob    bool
		prefix  string
	}{
		{"flux-system", false, "flux-system"},
		{"team-*", true, "team-"},
		{"team-?-*", true, "team-"},
		{"*-controller", true, ""},
		{"?", true, ""},
		{"", false, ""},
	}
	for _, tt := range tests {
		if got := IsGlob(tt.pattern); got != tt.glob {
			t.Errorf("IsGlob(%q) = %v, want %v", tt.pattern, got, tt.glob)
		}
		if got := literalPrefix(tt.pattern); got != tt.prefix {
			t.Errorf("literalPrefix(%q) = %q, want %q", tt.pattern, got, tt.prefix)
		}
	}
}

func TestGlobsIntersect(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{"equal exact names intersect", "flux-system", "flux-system", true},
		{"different exact names do not intersect", "flux-system", "flux-apps", false},
		{"a glob and a name it matches intersect", "team-*", "team-a", true},
		{"a glob and a name it does not match do not intersect", "team-*", "flux-system", false},
		{"two prefix globs with related prefixes intersect", "team-*", "team-a-*", true},
		{"two prefix globs with unrelated prefixes do not intersect", "team-a-*", "team-b-*", false},
		{"a prefix glob and a suffix glob intersect", "team-*", "*-a", true},
		{"two suffix globs with unrelated suffixes do not intersect", "*-source", "*-helm", false},
		{"a star intersects everything", "*", "a?b", true},
		{"two stars intersect on the empty string", "*", "**", true},
		{"globs of different fixed lengths do not intersect", "team-?", "team-??", false},
		{"question marks of the same length intersect", "??", "ab", true},
		{"a question mark does not intersect the empty pattern", "?", "", false},
		{"the empty pattern intersects a star", "", "*", true},
		{"a needed witness may be longer than both patterns", "aaa*", "*bbb", true},
		{"star runs in both patterns intersect", "a*b*c", "*c*b*", true},
		{"the same characters in another order do not intersect", "ab*", "ba*", false},
		{"a suffix glob and an exact name it lacks do not intersect", "*-controller", "controller", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := globsIntersect(tt.a, tt.b); got != tt.want {
				t.Errorf("globsIntersect(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
			if got := globsIntersect(tt.b, tt.a); got != tt.want {
				t.Errorf("globsIntersect(%q, %q) = %v, want %v (swapped)", tt.b, tt.a, got, tt.want)
			}
		})
	}
}

// words lists every string over alphabet of length 0..n, shortest first.
func words(alphabet string, n int) []string {
	out := []string{""}
	level := []string{""}
	for range n {
		var next []string
		for _, w := range level {
			for i := range len(alphabet) {
				next = append(next, w+alphabet[i:i+1])
			}
		}
		out = append(out, next...)
		level = next
	}
	return out
}

// TestGlobsIntersectAgreesWithBruteForce checks globsIntersect for every pair of patterns of up to four characters
// over {a, b, *, ?} against enumeration: two patterns intersect when some string over {a, b} matches both. Patterns
// up to length four need witnesses up to length eight (a shortest common match is no longer than the two patterns'
// non-star characters together: "aaa*" and "*bbb" meet only at "aaabbb"), so strings are enumerated up to length 8;
// the lengths up to four alone would miss such pairs.
func TestGlobsIntersectAgreesWithBruteForce(t *testing.T) {
	patterns := words("ab*?", 4)
	strs := words("ab", 8)
	// matches[i] is the set of strings that pattern i matches, as a bitset over strs.
	matches := make([][]uint64, len(patterns))
	for i, p := range patterns {
		set := make([]uint64, (len(strs)+63)/64)
		for j, s := range strs {
			if globMatch(p, s) {
				set[j/64] |= 1 << (j % 64)
			}
		}
		matches[i] = set
	}
	failures := 0
	for i, a := range patterns {
		for j := i; j < len(patterns); j++ {
			b := patterns[j]
			want := false
			for k := range matches[i] {
				if matches[i][k]&matches[j][k] != 0 {
					want = true
					break
				}
			}
			if got := globsIntersect(a, b); got != want {
				t.Errorf("globsIntersect(%q, %q) = %v, enumeration says %v", a, b, got, want)
				if failures++; failures > 20 {
					t.Fatal("too many failures")
				}
			}
		}
	}
}

func TestGlobIndex(t *testing.T) {
	patterns := []string{"*", "team-*", "team-a*", "team-a-?", "*-a", "t?am-*", "flux-*", "flux-system*", "?", ""}
	var x globIndex[int]
	if !x.empty() {
		t.Fatal("a new index is not empty")
	}
	x.each("team-a", func(string, int) bool {
		t.Fatal("an empty index yielded a pattern")
		return true
	})
	for i, p := range patterns {
		x.add(p, i)
	}
	if x.empty() {
		t.Fatal("the index is empty after add")
	}

	tests := []struct {
		name string
		s    string
		want []string
	}{
		{"a name matched by prefix globs of several lengths finds them all", "team-a",
			[]string{"*", "team-*", "team-a*", "*-a", "t?am-*"}},
		{"a question mark pattern finds names of its length", "team-a-b",
			[]string{"*", "team-*", "team-a*", "team-a-?", "t?am-*"}},
		{"a name matched by the star alone finds only it", "default", []string{"*"}},
		{"a one-letter name finds the question mark", "x", []string{"*", "?"}},
		{"the empty name finds the star and the empty pattern", "", []string{"*", ""}},
		{"a longer literal prefix is found", "flux-system-2", []string{"*", "flux-*", "flux-system*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			x.each(tt.s, func(p string, v int) bool {
				if patterns[v] != p {
					t.Errorf("pattern %q came with the value of %q", p, patterns[v])
				}
				got = append(got, p)
				return true
			})
			var brute []string
			for _, p := range patterns {
				if globMatch(p, tt.s) {
					brute = append(brute, p)
				}
			}
			slices.Sort(got)
			slices.Sort(brute)
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(got, want) || !slices.Equal(got, brute) {
				t.Errorf("each(%q) = %v, want %v (brute force %v)", tt.s, got, want, brute)
			}
		})
	}

	t.Run("each stops when yield returns false", func(t *testing.T) {
		calls := 0
		x.each("team-a", func(string, int) bool {
			calls++
			return false
		})
		if calls != 1 {
			t.Errorf("yield called %d times, want 1", calls)
		}
	})
}

// TestAmbiguityCheckFindsEveryOverlappingPair cross-checks the bucketed pair search of checkAmbiguity against
// comparing every pair: entries whose only namespace is one of the globs over {a, b, *, ?} up to three characters.
func TestAmbiguityCheckFindsEveryOverlappingPair(t *testing.T) {
	var globs []string
	for _, p := range words("ab*?", 3) {
		if IsGlob(p) {
			globs = append(globs, p)
		}
	}
	for _, sa := range []string{"flux", "*"} { // exact ServiceAccount: rank 3; glob: rank 4
		f := &File{}
		for i, p := range globs {
			f.Identities = append(f.Identities, Identity{Name: fmt.Sprint("e", i), Namespaces: []string{p},
				ServiceAccounts: []string{sa}})
		}
		want := 0
		for i := range globs {
			for j := i + 1; j < len(globs); j++ {
				if globsIntersect(globs[i], globs[j]) {
					want++
				}
			}
		}
		if got := len(checkAmbiguity(f)); got != want {
			t.Errorf("ServiceAccount %q: %d conflicts reported, %d pairs overlap", sa, got, want)
		}
	}
}

func TestIsGlob(t *testing.T) {
	for pattern, want := range map[string]bool{"team-*": true, "team-?": true, "flux-system": false, "": false} {
		if got := IsGlob(pattern); got != want {
			t.Errorf("IsGlob(%q) = %v, want %v", pattern, got, want)
		}
	}
}
