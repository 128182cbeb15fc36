package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// Policy is a validated, compiled policy file. It is immutable: reload builds a new one and swaps it in whole, so a
// request is always answered from exactly one version.
type Policy struct {
	// Name is metadata.name, shown in logs and metrics.
	Name string
	// Source is the file the policy came from.
	Source string
	// Digest identifies the exact file content (sha256, hex), so logs and metrics say which version answered.
	Digest string
	// Warnings are findings that did not stop the policy from loading.
	Warnings []Problem
	// Spec is the decoded file with defaults filled in. Callers must not modify it.
	Spec *File

	identities identityIndex
	owners     namespaceModes
	mandates   patternIndex[int]              // index into Spec.Mandates
	exceptions map[string][]compiledException // key: namespace + "/" + kind
}

// Match is the identity that applies to one ServiceAccount, with its templates expanded.
type Match struct {
	Identity *Identity
	Cloud    Cloud
	// RoleARN is the expanded AWS role ARN (AWS only).
	RoleARN string
	// GCPServiceAccount is the expanded Google service account (GCP only).
	GCPServiceAccount string
}

// IdentityFor returns the identity entry for namespace/serviceAccount, the most specific one when several match:
// an exact namespace beats a glob, then an exact ServiceAccount beats a glob.
func (p *Policy) IdentityFor(namespace, serviceAccount string) (Match, bool) {
	id := p.identities.lookup(namespace, serviceAccount)
	if id == nil {
		return Match{}, false
	}
	m := id.match
	if !id.templated {
		return m, true
	}
	switch id.cloud {
	case CloudAWS:
		m.RoleARN = id.expand(id.spec.AWS.RoleARN, namespace, serviceAccount)
	case CloudGCP:
		m.GCPServiceAccount = id.expand(id.spec.GCP.ServiceAccount, namespace, serviceAccount)
	}
	return m, true
}

// Ownership says whether the policy owns the identity annotations in a namespace, and in which mode violations are
// answered there: the strictest mode of the identity entries naming the namespace, enforce when only a mandate does.
func (p *Policy) Ownership(namespace string) (Mode, bool) {
	return p.owners.lookup(namespace)
}

// MandatesFor lists the mandates covering kind in namespace, in file order.
func (p *Policy) MandatesFor(namespace, kind string) []*Mandate {
	var idx []int
	p.mandates.each(namespace, func(i int) {
		if slices.Contains(p.Spec.Mandates[i].Kinds, kind) {
			idx = append(idx, i)
		}
	})
	slices.Sort(idx)
	idx = slices.Compact(idx) // a mandate may name the namespace through several patterns
	out := make([]*Mandate, len(idx))
	for j, i := range idx {
		out[j] = &p.Spec.Mandates[i]
	}
	return out
}

// CoversKind says whether some mandate covers kind, in any namespace: tools that read the cluster (audit) list only
// the kinds a mandate covers, and need no right to read the others (Secrets above all).
func (p *Policy) CoversKind(kind string) bool {
	for i := range p.Spec.Mandates {
		if slices.Contains(p.Spec.Mandates[i].Kinds, kind) {
			return true
		}
	}
	return false
}

// MapsNamespace says whether some identity entry can match ServiceAccounts of namespace.
func (p *Policy) MapsNamespace(namespace string) bool {
	for i := range p.Spec.Identities {
		for _, pattern := range p.Spec.Identities[i].Namespaces {
			if globMatch(pattern, namespace) {
				return true
			}
		}
	}
	return false
}

// MatchPattern reports whether name matches a policy pattern (an exact name or a glob with '*' and '?'), as the
// policy's own lookups match it.
func MatchPattern(pattern, name string) bool { return globMatch(pattern, name) }

// FluxNamespace says whether Flux's controllers run in namespace (the policy's flux.namespaces).
func (p *Policy) FluxNamespace(namespace string) bool {
	return slices.Contains(p.Spec.Flux.Namespaces, namespace)
}

// ExceptionFor returns the exception covering the object, if one matches and has not expired at now.
func (p *Policy) ExceptionFor(namespace, kind, name string, now time.Time) (*Exception, bool) {
	for _, e := range p.exceptions[namespace+"/"+kind] {
		if now.Before(e.end) && globMatch(e.spec.Name, name) {
			return e.spec, true
		}
	}
	return nil, false
}

// Load reads and compiles a policy file. The error is a *LoadError naming file, line and field of every problem.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", path, err)
	}
	return Parse(path, data, time.Now())
}

// Parse compiles policy file content; name is used in messages. now decides which exceptions have expired.
func Parse(name string, data []byte, now time.Time) (*Policy, error) {
	f, ps, errs := decode(data)
	if len(errs) > 0 {
		return nil, &LoadError{Problems: errs.place(name, ps)}
	}
	errs, warns := validate(f, now)
	if len(errs) == 0 {
		errs = checkAmbiguity(f)
	}
	if len(errs) > 0 {
		return nil, &LoadError{Problems: errs.place(name, ps)}
	}
	sum := sha256.Sum256(data)
	p := &Policy{
		Name:     f.Metadata.Name,
		Source:   name,
		Digest:   hex.EncodeToString(sum[:]),
		Warnings: warns.place(name, ps),
		Spec:     f,
	}
	p.compile()
	return p, nil
}

func (p *Policy) compile() {
	f := p.Spec
	for i := range f.Identities {
		id := newCompiledIdentity(&f.Identities[i])
		for _, ns := range id.spec.Namespaces {
			for _, sa := range id.spec.ServiceAccounts {
				p.identities.add(ns, sa, id)
			}
			p.owners.add(ns, id.spec.Mode)
		}
	}
	for i := range f.Mandates {
		for _, ns := range f.Mandates[i].Namespaces {
			p.mandates.add(ns, i)
			p.owners.addMandate(ns)
		}
	}
	p.exceptions = make(map[string][]compiledException)
	for i := range f.Exceptions {
		e := &f.Exceptions[i]
		expires, _ := time.Parse(isoDate, e.Expires) // validated
		key := e.Namespace + "/" + e.Kind
		p.exceptions[key] = append(p.exceptions[key], compiledException{spec: e, end: expires.Add(24 * time.Hour)})
	}
}

type compiledException struct {
	spec *Exception
	end  time.Time // the first instant the exception no longer applies
}

type compiledIdentity struct {
	// match is the answer, complete unless templated: a lookup returns it without touching the spec.
	match     Match
	templated bool // some value holds a placeholder
	spec      *Identity
	cloud     Cloud
}

func newCompiledIdentity(spec *Identity) *compiledIdentity {
	id := &compiledIdentity{spec: spec}
	switch {
	case spec.AWS != nil:
		id.cloud = CloudAWS
		id.templated = strings.Contains(spec.AWS.RoleARN, "{")
		id.match.RoleARN = spec.AWS.RoleARN
	case spec.Azure != nil:
		id.cloud = CloudAzure
	case spec.GCP != nil:
		id.cloud = CloudGCP
		id.templated = strings.Contains(spec.GCP.ServiceAccount, "{")
		id.match.GCPServiceAccount = spec.GCP.ServiceAccount
	}
	id.match.Identity, id.match.Cloud = spec, id.cloud
	return id
}

func (id *compiledIdentity) expand(s, namespace, serviceAccount string) string {
	if !id.templated {
		return s
	}
	s = strings.ReplaceAll(s, placeholderNamespace, namespace)
	return strings.ReplaceAll(s, placeholderServiceAccount, serviceAccount)
}
