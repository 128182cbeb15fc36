package serviceaccounts

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/patch"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// A ServiceAccount created with metadata.generateName and no name reaches the mutating webhook without a name: the
// API server generates it later, after mutating admission and before validating admission (k8s.io/apiserver
// v0.37.2 registry.Store.create: SetName(CreateStrategy.GenerateName(...)), then rest.BeforeCreate, then
// createValidation; Store.createWithGenerateNameRetry runs that again with a new name on a conflict). The name is
// names.SimpleNameGenerator's: generateName cut to MaxGeneratedNameLength (58) bytes, then five characters of
// k8s.io/apimachinery util/rand's alphanums.
//
// So the mutating webhook judges the names the API server can generate: when every one of them maps to the same
// entry (or none does) it answers as for any of them, and a mapped ServiceAccount gets its identity there. Its
// identity cannot be stamped when the names map differently, or when the entry's values depend on the name
// ({serviceAccount} in a template). The validating webhook (AdmitGenerated) sees the generated name and holds the
// ServiceAccount to the rules of the entry that maps it: one that lacks its identity, or breaks a rule, is refused.

// As names.SimpleNameGenerator generates them.
const (
	maxGeneratedPrefix = 58
	generatedSuffix    = 5
	generatedAlphabet  = "bcdfghjklmnpqrstvwxz2456789"
)

// maxNameClasses bounds the work of telling the generated names apart: a policy whose patterns split them into more
// classes than this is left to the validating webhook.
const maxNameClasses = 4096

// generatedStandIn returns a name that the policy maps exactly as it maps every name the API server can generate
// from generateName in namespace (the same entry, with the same values, or none); ok is false when there is none.
func generatedStandIn(p *policy.Policy, namespace, generateName string) (string, bool) {
	if len(generateName) > maxGeneratedPrefix {
		generateName = generateName[:maxGeneratedPrefix]
	}
	var globs []glob
	for i := range p.Spec.Identities {
		id := &p.Spec.Identities[i]
		if slices.ContainsFunc(id.Namespaces, func(ns string) bool { return policy.MatchPattern(ns, namespace) }) {
			for _, sa := range id.ServiceAccounts {
				globs = append(globs, newGlob(sa))
			}
		}
	}
	// Names whose suffixes every pattern treats alike are one class: walk the suffixes a character at a time and keep
	// one name per class.
	start := make([]positions, len(globs))
	for i, g := range globs {
		start[i] = g.read(g.begin(), generateName)
	}
	classes := map[string]class{key(start): {start, generateName}}
	for range generatedSuffix {
		next := make(map[string]class, len(classes))
		for _, c := range classes {
			for j := range len(generatedAlphabet) {
				ch := generatedAlphabet[j]
				states := make([]positions, len(globs))
				for i, g := range globs {
					states[i] = g.step(c.states[i], ch)
				}
				k := key(states)
				if _, seen := next[k]; !seen {
					next[k] = class{states, c.name + string(ch)}
				}
			}
			if len(next) > maxNameClasses {
				return "", false
			}
		}
		classes = next
	}
	names := make([]string, 0, len(classes))
	for _, c := range classes {
		names = append(names, c.name)
	}
	slices.Sort(names) // one stand-in whatever the map's order
	var entry *policy.Identity
	for i, name := range names {
		m, mapped := p.IdentityFor(namespace, name)
		var got *policy.Identity
		if mapped {
			got = m.Identity
		}
		if i > 0 && got != entry {
			return "", false
		}
		entry = got
	}
	if entry != nil && namesTemplate(entry) {
		return "", false
	}
	return names[0], true
}

// namesTemplate says whether an entry's values depend on the ServiceAccount's name.
func namesTemplate(id *policy.Identity) bool {
	for _, v := range []string{roleARN(id), gcpServiceAccount(id)} {
		if _, sa := policy.Placeholders(v); sa {
			return true
		}
	}
	return false
}

func roleARN(id *policy.Identity) string {
	if id.AWS == nil {
		return ""
	}
	return id.AWS.RoleARN
}

func gcpServiceAccount(id *policy.Identity) string {
	if id.GCP == nil {
		return ""
	}
	return id.GCP.ServiceAccount
}

type class struct {
	states []positions
	name   string
}

// glob is a policy pattern ('*' any run, '?' one character) as a set of positions, so that a name can be read into
// it a character at a time: position i means pattern[:i] is matched.
type glob string

// positions is a set of positions of a glob, as a bit set.
type positions []uint64

func newGlob(pattern string) glob { return glob(pattern) }

func (g glob) empty() positions { return make(positions, len(g)/64+1) }

func (g glob) begin() positions {
	s := g.empty()
	g.add(s, 0)
	return s
}

// add puts position i in s, and the positions after the stars that follow it (a star may match nothing).
func (g glob) add(s positions, i int) {
	for {
		s[i/64] |= 1 << (i % 64)
		if i == len(g) || g[i] != '*' {
			return
		}
		i++
	}
}

func (g glob) step(s positions, c byte) positions {
	out := g.empty()
	for i := range len(g) {
		if s[i/64]&(1<<(i%64)) == 0 {
			continue
		}
		switch g[i] {
		case '*':
			g.add(out, i) // the star takes c and stays
		case '?':
			g.add(out, i+1)
		case c:
			g.add(out, i+1)
		}
	}
	return out
}

func (g glob) read(s positions, text string) positions {
	for i := range len(text) {
		s = g.step(s, text[i])
	}
	return s
}

// key identifies the states of every glob, for telling classes apart.
func key(states []positions) string {
	var b []byte
	for _, s := range states {
		for _, w := range s {
			b = binary.LittleEndian.AppendUint64(b, w)
		}
	}
	return string(b)
}

// AdmitGenerated is the validating webhook's decision about a ServiceAccount created with metadata.generateName: it
// sees the name the API server generated, and holds the ServiceAccount to the rules of the entry that maps it. One
// that lacks the identity its entry grants (the mutating webhook could not tell which names would be generated) is a
// violation of that identity, answered in the namespace's mode; so is every violation the mutating webhook answers
// for a named ServiceAccount. A ServiceAccount created with a name passes: the mutating webhook judged it.
func AdmitGenerated(p *policy.Policy, req *verdict.Request[View, verdict.None], _ time.Time) (verdict.Verdict, error) {
	if req.Object == nil {
		return verdict.Verdict{}, &verdict.BadObject{Err: verdict.ErrNoObject}
	}
	md := patch.MetaOf(req.Object.Metadata)
	if md.GenerateName == "" || md.Name == "" {
		return verdict.Verdict{}, nil
	}
	v := evaluate(p, req.Namespace, req.Object)
	if len(v.Patch) > 0 {
		mode, _ := p.Ownership(req.Namespace)
		name := verdict.Clip(md.Name)
		v.Violations = append(v.Violations, verdict.Violation{RuleType: verdict.RuleIdentity, Rule: v.Identity,
			Mode: mode, Message: verdict.FitMessage(v.Identity,
				"generated name "+name+" is mapped but lacks its identity: set metadata.name instead of generateName",
				"generated name "+name+" lacks its identity: set metadata.name",
				"a generated name lacks its identity: set metadata.name")})
		v.Patch = nil // a validating webhook answers; it cannot change the object
	}
	return v, nil
}
