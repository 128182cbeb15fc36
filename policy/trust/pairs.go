// Package trust derives the cloud side of workload identity from a policy: the AWS IAM role trust policies, Azure
// federated identity credentials and GCP IAM bindings that must exist for every namespace/ServiceAccount the policy
// maps, and checks exported cloud documents against them. It is pure: no cloud SDK, no Kubernetes client, no network.
package trust

import (
	"path"
	"slices"
	"strings"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// Pair is one namespace/ServiceAccount the policy maps, with the identity that applies to it.
type Pair struct {
	Namespace      string
	ServiceAccount string
	Match          policy.Match
}

// Subject is the token subject Kubernetes issues for the pair's ServiceAccount: system:serviceaccount:NS:SA.
func (p Pair) Subject() string { return Subject(p.Namespace, p.ServiceAccount) }

// AllServiceAccounts is the ServiceAccount of a namespace pair: every ServiceAccount of the namespace, which GKE direct
// federation grants as one principal set.
const AllServiceAccounts = "*"

// NamespaceSet says whether the pair stands for every ServiceAccount of its namespace: a GKE direct federation entry
// whose serviceAccounts are ["*"] is granted principalSet://.../namespace/NS, not one principal per ServiceAccount.
func (p Pair) NamespaceSet() bool { return p.ServiceAccount == AllServiceAccounts }

// String is NS/SA.
func (p Pair) String() string { return p.Namespace + "/" + p.ServiceAccount }

// Subject is the `sub` claim of a ServiceAccount token.
func Subject(namespace, serviceAccount string) string {
	return "system:serviceaccount:" + namespace + ":" + serviceAccount
}

// Names are the concrete namespace and ServiceAccount names globs in the policy are expanded against. The cloud side
// cannot be written for a pattern: every trust entry names one ServiceAccount.
type Names struct {
	Namespaces      []string
	ServiceAccounts []string
}

// Unresolved is a glob in an identity entry that matched none of the given names, so the pairs it stands for could
// not be listed.
type Unresolved struct {
	Identity string `json:"identity"`
	// Field is "namespaces" or "serviceAccounts".
	Field   string `json:"field"`
	Pattern string `json:"pattern"`
}

// Message says what to do about it.
func (u Unresolved) Message() string {
	flag := "--namespaces"
	if u.Field == "serviceAccounts" {
		flag = "--service-accounts"
	}
	return "identity " + u.Identity + ": " + u.Field + " pattern " + quote(u.Pattern) +
		" matched no given name: list the names with " + flag
}

// Pairs lists every namespace/ServiceAccount the policy maps, in file order of the identity entries, then by
// namespace and ServiceAccount. Exact names are taken as written; globs are expanded against names. A pair is listed
// under the entry that actually applies to it (the most specific one), so an exact entry overriding a glob entry is
// honoured. Globs that matched no name are returned as unresolved.
func Pairs(p *policy.Policy, names Names) ([]Pair, []Unresolved) {
	var (
		pairs      []Pair
		unresolved []Unresolved
	)
	for i := range p.Spec.Identities {
		id := &p.Spec.Identities[i]
		namespaces, un := expand(id.Name, "namespaces", id.Namespaces, names.Namespaces)
		unresolved = append(unresolved, un...)
		var serviceAccounts []string
		if namespaceSet(id) {
			// GKE grants a namespace as one principal set: no ServiceAccount names are needed.
			serviceAccounts = []string{AllServiceAccounts}
		} else {
			serviceAccounts, un = expand(id.Name, "serviceAccounts", id.ServiceAccounts, names.ServiceAccounts)
			unresolved = append(unresolved, un...)
		}
		for _, ns := range namespaces {
			for _, sa := range serviceAccounts {
				m, ok := p.IdentityFor(ns, sa)
				if ok && m.Identity == id {
					pairs = append(pairs, Pair{Namespace: ns, ServiceAccount: sa, Match: m})
				}
			}
		}
	}
	return pairs, unresolved
}

// namespaceSet says whether an entry grants whole namespaces: GKE direct federation (a pool of the project, no
// provider) for serviceAccounts ["*"]. Outside GKE a namespace set would depend on the provider's attribute mapping,
// which the policy does not know, so those entries are expanded per ServiceAccount.
func namespaceSet(id *policy.Identity) bool {
	return id.GCP.Direct() && id.GCP.WorkloadIdentityProvider == "" && slices.Equal(id.ServiceAccounts, []string{AllServiceAccounts})
}

// expand turns patterns into sorted, distinct names: exact names as they are, globs matched against candidates.
func expand(identity, field string, patterns, candidates []string) ([]string, []Unresolved) {
	var (
		out        []string
		unresolved []Unresolved
	)
	for _, pat := range patterns {
		if !strings.ContainsAny(pat, "*?") {
			out = append(out, pat)
			continue
		}
		found := false
		for _, c := range candidates {
			// Policy patterns hold only [-a-z0-9.*?] (validated at load), none of which path.Match treats specially
			// besides '*' and '?', so it matches exactly like the policy engine.
			if ok, _ := path.Match(pat, c); ok {
				out = append(out, c)
				found = true
			}
		}
		if !found {
			unresolved = append(unresolved, Unresolved{Identity: identity, Field: field, Pattern: pat})
		}
	}
	slices.Sort(out)
	return slices.Compact(out), unresolved
}

func quote(s string) string { return `"` + s + `"` }
