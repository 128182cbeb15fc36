// Package conditions derives, from a policy, the CEL matchConditions of the webhook registrations, so that the API
// server sends the webhook only the requests the policy can affect. That saves requests, and it bounds an outage:
// a webhook that fails closed then blocks only the namespaces (and, for pods, the ServiceAccounts) the policy names.
//
// The chart computes the same expressions from the policy in its values (templates/_conditions.tpl), character for
// character; test/chart holds the two equal, so every rule here is written to be simple to mirror in a Helm template:
// sorted, de-duplicated lists and a fixed shape for every term.
package conditions

import (
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// Names of the generated conditions.
const (
	NamePolicyNamespaces = "policy-namespaces"
	NameFullInjection    = "full-injection"
	NameNotFullInjection = "not-full-injection"
)

// Bounds on a generated condition. Conditions only save requests, so when a policy names more patterns than fit
// comfortably in one CEL expression, none is generated for that webhook and every request still reaches it. A
// full-injection condition that cannot be generated means no fail-closed pod webhook at all (it must never see
// every pod).
const (
	MaxNames = 512
	MaxGlobs = 64
)

// Condition is one matchCondition (the fields of admissionregistration/v1 MatchCondition).
type Condition struct {
	Name       string `json:"name"`
	Expression string `json:"expression"`
}

// Result holds the conditions per webhook name. A webhook that is absent gets no condition: every request that its
// rules and namespaceSelector select reaches it. Skipped names the webhooks whose condition was not generated
// because the policy names too many patterns.
type Result struct {
	Webhooks map[string][]Condition
	Skipped  []string
}

// For derives the conditions of every webhook from a validated policy (defaults filled in, as policy.Parse leaves
// Spec):
//   - ServiceAccounts, and those the API server names (generateName): the namespaces named by an identity or a
//     mandate (the policy owns identity annotations there);
//   - pods and Deployments: the namespaces named by an identity;
//   - Flux sources, Flux's other objects and SOPS decryption Secrets: the namespaces of the mandates covering a kind
//     of each (a mandate without kinds covers them all);
//   - pods of ServiceAccounts that resolve to a full-injection entry, with the policy's own precedence: they go to
//     routes.WebhookPodsFullInjection (fail closed) and not to routes.WebhookPods (fail open).
func For(f *policy.File) Result {
	var identityNS, mandateNS []string
	covering := map[fluxauth.Category][]string{} // the namespaces of the mandates covering a kind of the category
	for _, id := range f.Identities {
		identityNS = append(identityNS, id.Namespaces...)
	}
	for _, m := range f.Mandates {
		mandateNS = append(mandateNS, m.Namespaces...)
		for _, c := range []fluxauth.Category{fluxauth.CategorySource, fluxauth.CategoryObject, fluxauth.CategorySecrets} {
			if slices.ContainsFunc(m.Kinds, func(k string) bool { a, _ := fluxauth.APIOf(k); return a.Category == c }) {
				covering[c] = append(covering[c], m.Namespaces...)
			}
		}
	}
	r := Result{Webhooks: map[string][]Condition{}}
	namespaces := func(webhook string, patterns []string) (string, bool) {
		expr, ok := Namespaces(patterns)
		if !ok {
			r.Skipped = append(r.Skipped, webhook)
			return "", false
		}
		r.Webhooks[webhook] = []Condition{{Name: NamePolicyNamespaces, Expression: expr}}
		return expr, true
	}
	namespaces(routes.WebhookServiceAccounts, append(slices.Clone(identityNS), mandateNS...))
	namespaces(routes.WebhookGeneratedServiceAccounts, append(slices.Clone(identityNS), mandateNS...))
	namespaces(routes.WebhookDeployments, identityNS)
	namespaces(routes.WebhookSources, covering[fluxauth.CategorySource])
	namespaces(routes.WebhookFluxObjects, covering[fluxauth.CategoryObject])
	namespaces(routes.WebhookSOPSSecrets, covering[fluxauth.CategorySecrets])
	if _, ok := namespaces(routes.WebhookPods, identityNS); !ok {
		return r
	}
	full, ok := FullInjection(f.Identities)
	switch {
	case !ok:
		r.Skipped = append(r.Skipped, routes.WebhookPodsFullInjection)
	case full != "":
		r.Webhooks[routes.WebhookPodsFullInjection] = []Condition{{Name: NameFullInjection, Expression: full}}
		r.Webhooks[routes.WebhookPods] = append(r.Webhooks[routes.WebhookPods], Condition{Name: NameNotFullInjection, Expression: "!" + full})
	}
	slices.Sort(r.Skipped)
	return r
}

// NameSOPSKeys names the static condition of the SOPS Secret registration (SOPSKeys).
const NameSOPSKeys = "sops-credential-keys"

// SOPSKeys is the static condition of the SOPS Secret registration, in config/webhook and the chart whatever the
// policy: only a Secret carrying one of the entries kustomize-controller reads a credential from
// (fluxauth.SOPSCredentialKeys) reaches the webhook, so no other Secret is ever sent to it. It cannot fail on a Secret
// without data: an evaluation error would refuse the request on this fail-closed webhook.
func SOPSKeys() Condition {
	keys := list(fluxauth.SOPSCredentialKeys)
	return Condition{Name: NameSOPSKeys, Expression: "(has(object.data) && object.data.exists(k, k in " + keys +
		")) || (has(object.stringData) && object.stringData.exists(k, k in " + keys + "))"}
}

// Namespaces builds a CEL expression true for exactly the namespaces the patterns match: a list membership test for
// exact names, an anchored RE2 match per glob. ok is false when there are too many to be worth it.
func Namespaces(patterns []string) (expr string, ok bool) {
	names, globs := split(patterns)
	if len(names) > MaxNames || len(globs) > MaxGlobs {
		return "", false
	}
	if len(names) == 0 && len(globs) == 0 {
		return "false", true
	}
	var terms []string
	if len(names) > 0 {
		terms = append(terms, "request.namespace in "+list(names))
	}
	for _, g := range globs {
		terms = append(terms, "request.namespace.matches("+GlobRE2(g)+")")
	}
	return strings.Join(terms, " || "), true
}

// podServiceAccount is the pod's ServiceAccount as the webhook reads it: spec.serviceAccountName, else the deprecated
// spec.serviceAccount, else "default". No term can fail on a pod that sets neither: an evaluation error would deny
// the request on a fail-closed webhook.
const podServiceAccount = "has(object.spec.serviceAccountName) && object.spec.serviceAccountName != ''" +
	" ? object.spec.serviceAccountName" +
	" : has(object.spec.serviceAccount) && object.spec.serviceAccount != '' ? object.spec.serviceAccount : 'default'"

// rank is the policy's precedence between the patterns of a (namespace, ServiceAccount) pair: an exact namespace
// beats a glob, then an exact ServiceAccount beats a glob. At each rank at most one entry matches (two would be an
// ambiguity, which fails the load), and the first rank that matches decides.
type rank int

const (
	exactExact rank = iota
	exactGlob
	globExact
	globGlob
)

func rankOf(ns, sa string) rank {
	switch nsGlob, saGlob := policy.IsGlob(ns), policy.IsGlob(sa); {
	case !nsGlob && !saGlob:
		return exactExact
	case !nsGlob:
		return exactGlob
	case !saGlob:
		return globExact
	}
	return globGlob
}

// FullInjection builds a CEL expression true for exactly the pods whose (namespace, ServiceAccount) resolves to an
// entry with injection: full; "" when no entry has full injection; ok false when the identities name too many
// pairs. The pod's ServiceAccount is bound once, to sa, by a one-element exists().
//
// Per rank, F is "a full entry matches at this rank" and N "another entry does"; the pod is full-injected when
// F1 || !N1 && (F2 || !N2 && (F3 || !N3 && F4)), which is the policy's lookup order written as one expression.
func FullInjection(identities []policy.Identity) (expr string, ok bool) {
	// pairs[full][rank]: rank exactExact holds "ns/sa" keys, the others namespace pattern -> ServiceAccount patterns.
	var pairs [2][4]map[string][]string
	for c := range pairs {
		for r := range pairs[c] {
			pairs[c][r] = map[string][]string{}
		}
	}
	anyFull := false
	seen := map[string]bool{}
	var names, globs int
	for _, id := range identities {
		c := 0
		if id.Injection == policy.InjectionFull {
			c, anyFull = 1, true
		}
		for _, ns := range id.Namespaces {
			for _, sa := range id.ServiceAccounts {
				key := ns + "/" + sa // names and patterns cannot hold '/'
				if !seen[key] {
					seen[key] = true
					if r := rankOf(ns, sa); r == exactExact {
						names++
					} else {
						globs++
					}
				}
				switch r := rankOf(ns, sa); r {
				case exactExact:
					pairs[c][r][key] = nil
				default:
					pairs[c][r][ns] = append(pairs[c][r][ns], sa)
				}
			}
		}
	}
	if !anyFull {
		return "", true
	}
	if names > MaxNames || globs > MaxGlobs {
		return "", false
	}
	rest := ""
	for r := globGlob; r >= exactExact; r-- {
		rest = chain(group(r, pairs[1][r]), group(r, pairs[0][r]), rest)
	}
	return "[" + podServiceAccount + "].exists(sa, " + rest + ")", true
}

// chain puts one rank in front of the lower ranks: full here, or nothing else here and full below.
func chain(full, other, lower string) string {
	if lower == "" {
		return full
	}
	if other != "" {
		lower = "!" + other + " && (" + lower + ")"
	}
	if full == "" {
		return lower
	}
	return full + " || " + lower
}

// group is the CEL of one rank's patterns, "" when there are none.
func group(r rank, m map[string][]string) string {
	if len(m) == 0 {
		return ""
	}
	keys := slices.Sorted(maps.Keys(m))
	var terms []string
	switch r {
	case exactExact:
		terms = []string{"request.namespace + '/' + sa in " + list(keys)}
	case exactGlob:
		for _, ns := range keys {
			terms = append(terms, "(request.namespace == "+quote(ns)+" && ("+saMatches(m[ns])+"))")
		}
	case globExact:
		for _, ns := range keys {
			terms = append(terms, "(request.namespace.matches("+GlobRE2(ns)+") && sa in "+list(sortedUnique(m[ns]))+")")
		}
	case globGlob:
		for _, ns := range keys {
			terms = append(terms, "(request.namespace.matches("+GlobRE2(ns)+") && ("+saMatches(m[ns])+"))")
		}
	}
	return "(" + strings.Join(terms, " || ") + ")"
}

func saMatches(globs []string) string {
	globs = sortedUnique(globs)
	terms := make([]string, len(globs))
	for i, g := range globs {
		terms[i] = "sa.matches(" + GlobRE2(g) + ")"
	}
	return strings.Join(terms, " || ")
}

func split(patterns []string) (names, globs []string) {
	for _, p := range patterns {
		if policy.IsGlob(p) {
			globs = append(globs, p)
		} else {
			names = append(names, p)
		}
	}
	return sortedUnique(names), sortedUnique(globs)
}

func sortedUnique(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// list is a CEL list of string literals.
func list(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = quote(s)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// quote is a CEL string literal. Names and patterns hold no quote; a backslash (from an escaped '.' in a regular
// expression) is doubled.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, `\`, `\\`) + "'"
}

// GlobRE2 is the CEL string literal of the anchored regular expression that matches what the policy's glob matches:
// '*' any run of characters, '?' exactly one, everything else itself.
func GlobRE2(g string) string {
	re := regexp.QuoteMeta(g)
	re = strings.ReplaceAll(re, `\*`, ".*")
	re = strings.ReplaceAll(re, `\?`, ".")
	return quote("^" + re + "$")
}
