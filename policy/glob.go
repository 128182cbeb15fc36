package policy

import (
	"slices"
	"strings"
)

// Globs in namespace and ServiceAccount patterns know two wildcards: '*' (any run of characters, also none) and '?'
// (exactly one character). Everything else matches itself.

// IsGlob says whether a namespace or ServiceAccount pattern is a glob ('*' or '?') rather than an exact name. Tools
// that read the cluster (doctor) and the matchConditions use it: an exact name can be missing from the cluster, a
// glob stands for whatever exists.
func IsGlob(p string) bool { return strings.ContainsAny(p, "*?") }

// literalPrefix is the part of a pattern before its first wildcard; the glob index keys on it.
func literalPrefix(p string) string {
	if i := strings.IndexAny(p, "*?"); i >= 0 {
		return p[:i]
	}
	return p
}

// globMatch reports whether s matches pattern p. It backtracks only to the last '*', so it runs in O(len(p)*len(s))
// at worst and without allocating.
func globMatch(p, s string) bool {
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*': // before the literal case: a '*' in s must not consume the star
			starP, starS = pi, si
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case starP >= 0:
			starS++
			pi, si = starP+1, starS
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// globsIntersect reports whether some string matches both patterns. It explores the product of the two patterns'
// positions, each state visited once, so it costs O(len(a)*len(b)).
func globsIntersect(a, b string) bool {
	seen := make(map[[2]int]bool)
	var walk func(i, j int) bool
	walk = func(i, j int) bool {
		if seen[[2]int{i, j}] {
			return false
		}
		seen[[2]int{i, j}] = true
		if i == len(a) && j == len(b) {
			return true
		}
		// A star may match nothing.
		if i < len(a) && a[i] == '*' && walk(i+1, j) {
			return true
		}
		if j < len(b) && b[j] == '*' && walk(i, j+1) {
			return true
		}
		if i == len(a) || j == len(b) {
			return false
		}
		// Both consume one character; a star stays where it is. Two stars staying put makes no progress.
		ca, cb := a[i], b[j]
		if ca == '*' && cb == '*' {
			return false
		}
		if ca != '*' && ca != '?' && cb != '*' && cb != '?' && ca != cb {
			return false
		}
		ni, nj := i+1, j+1
		if ca == '*' {
			ni = i
		}
		if cb == '*' {
			nj = j
		}
		return walk(ni, nj)
	}
	return walk(0, 0)
}

// globIndex finds the patterns that can match a string without trying them all: patterns are bucketed by their
// literal prefix, and a lookup probes one bucket per prefix of the string (at most 254 map lookups for a Kubernetes
// name), so its cost does not grow with the number of patterns. Only prefixes of a length some pattern has are
// probed: in a map of 100k prefixes every probe is a cache miss, and "team-1234-*" patterns need 2 probes of
// "team-5678-apps", not 15.
type globIndex[T any] struct {
	byPrefix map[string][]globEntry[T]
	lengths  []int // distinct lengths of the literal prefixes in byPrefix, ascending
}

type globEntry[T any] struct {
	pattern string
	value   T
}

func (x *globIndex[T]) add(pattern string, value T) {
	if x.byPrefix == nil {
		x.byPrefix = make(map[string][]globEntry[T])
	}
	prefix := literalPrefix(pattern)
	if i, found := slices.BinarySearch(x.lengths, len(prefix)); !found {
		x.lengths = slices.Insert(x.lengths, i, len(prefix))
	}
	x.byPrefix[prefix] = append(x.byPrefix[prefix], globEntry[T]{pattern, value})
}

func (x *globIndex[T]) empty() bool { return len(x.byPrefix) == 0 }

// each calls yield for every pattern matching s until yield returns false.
func (x *globIndex[T]) each(s string, yield func(pattern string, value T) bool) {
	if x.empty() {
		return
	}
	for _, n := range x.lengths {
		if n > len(s) {
			return
		}
		for _, e := range x.byPrefix[s[:n]] {
			if globMatch(e.pattern, s) && !yield(e.pattern, e.value) {
				return
			}
		}
	}
}
