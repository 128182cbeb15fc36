package policy

import (
	"fmt"
	"maps"
	"slices"
)

// identityIndex resolves namespace/ServiceAccount to an identity entry. Exact names are map lookups; globs go through
// glob indexes keyed on their literal prefix; so a lookup costs the same with ten entries or a hundred thousand.
//
// The most common question, an exact namespace with an exact ServiceAccount, is answered by one probe of a flat map
// keyed "namespace/ServiceAccount", and the answer is ready in the compiled entry. With 100k entries the index no
// longer fits the CPU caches and every pointer followed is a cache miss: through two nested maps and the spec, a
// lookup at 100k entries cost 5x one at 10; with one probe it stays near 2x (BenchmarkExactLookupGrowth).
type identityIndex struct {
	pairs     map[string]*compiledIdentity // pairKey(ns, sa) of exact names; names cannot contain '/'
	exactNS   map[string]*saIndex          // exact namespace -> its ServiceAccount globs
	globNS    globIndex[*saIndex]
	byPattern map[string]*saIndex // glob namespace pattern -> its bucket, to share one bucket per pattern
}

// pairKey writes "namespace/ServiceAccount" into buf (growing it only for names longer than Kubernetes allows), so
// that a lookup through string(key) does not allocate.
func pairKey(buf []byte, ns, sa string) []byte {
	return append(append(append(buf[:0], ns...), '/'), sa...)
}

type saIndex struct {
	exact map[string]*compiledIdentity
	glob  globIndex[*compiledIdentity]
}

func (x *identityIndex) add(nsPattern, saPattern string, id *compiledIdentity) {
	nsGlob, saGlob := IsGlob(nsPattern), IsGlob(saPattern)
	if !nsGlob && !saGlob {
		if x.pairs == nil {
			x.pairs = make(map[string]*compiledIdentity)
		}
		key := string(pairKey(nil, nsPattern, saPattern))
		if _, taken := x.pairs[key]; !taken { // the same entry may list a pair twice; ambiguity was checked before
			x.pairs[key] = id
		}
		return
	}
	var b *saIndex
	if nsGlob {
		if x.byPattern == nil {
			x.byPattern = make(map[string]*saIndex)
		}
		if b = x.byPattern[nsPattern]; b == nil {
			b = &saIndex{}
			x.byPattern[nsPattern] = b
			x.globNS.add(nsPattern, b)
		}
	} else {
		if x.exactNS == nil {
			x.exactNS = make(map[string]*saIndex)
		}
		if b = x.exactNS[nsPattern]; b == nil {
			b = &saIndex{}
			x.exactNS[nsPattern] = b
		}
	}
	if saGlob {
		b.glob.add(saPattern, id)
		return
	}
	if b.exact == nil {
		b.exact = make(map[string]*compiledIdentity)
	}
	if _, taken := b.exact[saPattern]; !taken { // the same entry may list a pair twice; ambiguity was checked before
		b.exact[saPattern] = id
	}
}

func (b *saIndex) firstGlob(sa string) *compiledIdentity {
	var found *compiledIdentity
	b.glob.each(sa, func(_ string, id *compiledIdentity) bool {
		found = id
		return false
	})
	return found
}

// lookup walks the four specificity ranks in order. At each rank at most one entry can match: two would be an
// ambiguity, which fails the load.
func (x *identityIndex) lookup(ns, sa string) *compiledIdentity {
	var buf [320]byte // 63 + 1 + 253
	if id := x.pairs[string(pairKey(buf[:0], ns, sa))]; id != nil {
		return id
	}
	if b := x.exactNS[ns]; b != nil {
		if id := b.firstGlob(sa); id != nil {
			return id
		}
	}
	var exactSA, globSA *compiledIdentity
	x.globNS.each(ns, func(_ string, b *saIndex) bool {
		if id := b.exact[sa]; id != nil {
			exactSA = id
			return false
		}
		if globSA == nil {
			globSA = b.firstGlob(sa)
		}
		return true
	})
	if exactSA != nil {
		return exactSA
	}
	return globSA
}

// patternIndex finds every value registered under a namespace pattern that matches a namespace.
type patternIndex[T any] struct {
	exact map[string][]T
	glob  globIndex[T]
}

func (x *patternIndex[T]) add(pattern string, v T) {
	if IsGlob(pattern) {
		x.glob.add(pattern, v)
		return
	}
	if x.exact == nil {
		x.exact = make(map[string][]T)
	}
	x.exact[pattern] = append(x.exact[pattern], v)
}

func (x *patternIndex[T]) each(s string, fn func(T)) {
	for _, v := range x.exact[s] {
		fn(v)
	}
	x.glob.each(s, func(_ string, v T) bool {
		fn(v)
		return true
	})
}

// namespaceModes answers which namespaces the policy owns and in which mode.
type namespaceModes struct {
	names patternIndex[ownerMode]
}

type ownerMode struct {
	mode     Mode // the identity entry's mode; empty for a mandate
	identity bool
}

func (x *namespaceModes) add(pattern string, m Mode) {
	x.names.add(pattern, ownerMode{mode: m, identity: true})
}

func (x *namespaceModes) addMandate(pattern string) {
	x.names.add(pattern, ownerMode{})
}

func (x *namespaceModes) lookup(ns string) (Mode, bool) {
	var mode Mode
	var byIdentity, owned bool
	x.names.each(ns, func(o ownerMode) {
		owned = true
		if o.identity {
			if byIdentity {
				mode = Stricter(mode, o.mode)
			} else {
				mode, byIdentity = o.mode, true
			}
		}
	})
	switch {
	case byIdentity:
		return mode, true
	case owned:
		return ModeEnforce, true
	}
	return "", false
}

// checkAmbiguity reports pairs of identity entries that could both match one namespace/ServiceAccount at the same
// specificity rank, which would make the answer depend on file order. Pairs are grouped by the exact name they share
// before globs are intersected, so the work stays near-linear for policies made of exact names.
//
// The check is conservative: it looks at pattern pairs, so it also reports an overlap that a third, more specific
// pattern of one of the two entries would always win. Splitting the entry resolves such a report.
func checkAmbiguity(f *File) findings {
	fs, _ := ambiguities(f)
	return fs
}

// ambiguities is checkAmbiguity that also says how many pattern pairs it compared, so tests can prove the work stays
// near-linear without timing anything.
func ambiguities(f *File) (fs findings, compared int) {
	type tuple struct {
		entry    int
		ns, sa   string
		nsI, saI int
	}
	var (
		exactExact = map[string]tuple{}   // "ns/sa"
		exactNS    = map[string][]tuple{} // ns -> tuples with glob SA
		exactSA    = map[string][]tuple{} // sa -> tuples with glob namespace
		globGlob   []tuple
		reported   = map[[2]int]bool{}
	)
	conflict := func(a, b tuple) {
		if a.entry > b.entry {
			a, b = b, a
		}
		if a.entry == b.entry || reported[[2]int{a.entry, b.entry}] {
			return
		}
		reported[[2]int{a.entry, b.entry}] = true
		ea, eb := f.Identities[a.entry], f.Identities[b.entry]
		fs.add(fmt.Sprintf("identities[%d].namespaces[%d]", b.entry, b.nsI),
			"identities %q and %q both match namespace %q / ServiceAccount %q at the same specificity; "+
				"make one of them more specific", ea.Name, eb.Name, overlapExample(a.ns, b.ns), overlapExample(a.sa, b.sa))
	}
	// pairwise reports the tuples of ts from different entries that overlap. Two globs can only intersect when the
	// literal prefix of one is a prefix of the other's, so tuples are bucketed by the literal prefix of key and each
	// is compared with its own bucket and the buckets of its prefix's prefixes, not with every other tuple: globs
	// such as team-1-* ... team-99999-* cost a few map lookups each instead of a comparison per pair.
	pairwise := func(ts []tuple, key func(tuple) string, overlap func(a, b tuple) bool) {
		buckets := map[string][]int{}
		for i, t := range ts {
			p := literalPrefix(key(t))
			buckets[p] = append(buckets[p], i)
		}
		for i, t := range ts {
			p := literalPrefix(key(t))
			for n := 0; n <= len(p); n++ {
				for _, j := range buckets[p[:n]] {
					if n == len(p) && j <= i {
						continue // the own bucket: each pair once
					}
					if ts[i].entry == ts[j].entry {
						continue
					}
					compared++
					if overlap(ts[min(i, j)], ts[max(i, j)]) {
						conflict(ts[min(i, j)], ts[max(i, j)])
					}
				}
			}
		}
	}

	for e, id := range f.Identities {
		for nsI, ns := range id.Namespaces {
			for saI, sa := range id.ServiceAccounts {
				t := tuple{entry: e, ns: ns, sa: sa, nsI: nsI, saI: saI}
				switch nsGlob, saGlob := IsGlob(ns), IsGlob(sa); {
				case !nsGlob && !saGlob:
					key := ns + "/" + sa
					if prev, ok := exactExact[key]; ok {
						conflict(prev, t)
					} else {
						exactExact[key] = t
					}
				case !nsGlob:
					exactNS[ns] = append(exactNS[ns], t)
				case !saGlob:
					exactSA[sa] = append(exactSA[sa], t)
				default:
					globGlob = append(globGlob, t)
				}
			}
		}
	}
	// Sorted keys keep the reported positions stable from run to run.
	saOf := func(t tuple) string { return t.sa }
	nsOf := func(t tuple) string { return t.ns }
	for _, ns := range slices.Sorted(maps.Keys(exactNS)) {
		pairwise(exactNS[ns], saOf, func(a, b tuple) bool { return globsIntersect(a.sa, b.sa) })
	}
	for _, sa := range slices.Sorted(maps.Keys(exactSA)) {
		pairwise(exactSA[sa], nsOf, func(a, b tuple) bool { return globsIntersect(a.ns, b.ns) })
	}
	pairwise(globGlob, nsOf, func(a, b tuple) bool { return globsIntersect(a.ns, b.ns) && globsIntersect(a.sa, b.sa) })
	return fs, compared
}

// overlapExample names the overlap of two patterns for a message: the pattern itself when both are equal.
func overlapExample(a, b string) string {
	if a == b {
		return a
	}
	return a + " ∩ " + b
}
