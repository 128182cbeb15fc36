package conditions

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/cel-go/cel"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// programs caches compiled expressions (tests in this package do not run in parallel).
var programs = map[string]cel.Program{}

// celEval compiles expr the way the API server declares a matchCondition's variables (request and object as
// dynamic values) and evaluates it for a pod of serviceAccount (empty: the pod names none) in namespace.
func celEval(t *testing.T, expr, namespace, serviceAccount string) bool {
	t.Helper()
	prg, ok := programs[expr]
	if !ok {
		env, err := cel.NewEnv(cel.Variable("request", cel.DynType), cel.Variable("object", cel.DynType))
		if err != nil {
			t.Fatal(err)
		}
		ast, iss := env.Compile(expr)
		if iss.Err() != nil {
			t.Fatalf("compile %s: %v", expr, iss.Err())
		}
		if ast.OutputType() != cel.BoolType && ast.OutputType() != cel.DynType {
			t.Fatalf("%s is of type %v, not bool", expr, ast.OutputType())
		}
		if prg, err = env.Program(ast); err != nil {
			t.Fatal(err)
		}
		programs[expr] = prg
	}
	spec := map[string]any{}
	if serviceAccount != "" {
		spec["serviceAccountName"] = serviceAccount
	}
	out, _, err := prg.Eval(map[string]any{
		"request": map[string]any{"namespace": namespace},
		"object":  map[string]any{"spec": spec},
	})
	if err != nil {
		t.Fatalf("evaluate %s for %s/%s: %v", expr, namespace, serviceAccount, err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		t.Fatalf("%s gave %v, not a bool", expr, out.Value())
	}
	return b
}

func TestNamespaces(t *testing.T) {
	tests := map[string]struct {
		patterns []string
		want     string
		wantOK   bool
	}{
		"exact names become one sorted, de-duplicated list": {
			patterns: []string{"team-b", "flux-system", "team-b"},
			want:     "request.namespace in ['flux-system', 'team-b']", wantOK: true,
		},
		"globs become anchored matches after the list": {
			patterns: []string{"team-*", "flux-system", "ns-?"},
			want:     "request.namespace in ['flux-system'] || request.namespace.matches('^ns-.$') || request.namespace.matches('^team-.*$')",
			wantOK:   true,
		},
		"no namespace matches nothing": {patterns: nil, want: "false", wantOK: true},
		"too many names give no condition": {patterns: func() []string {
			var ns []string
			for i := range MaxNames + 1 {
				ns = append(ns, fmt.Sprintf("ns-%d", i))
			}
			return ns
		}(), wantOK: false},
		"too many globs give no condition": {patterns: func() []string {
			var ns []string
			for i := range MaxGlobs + 1 {
				ns = append(ns, fmt.Sprintf("ns-%d-*", i))
			}
			return ns
		}(), wantOK: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := Namespaces(tc.patterns)
			if ok != tc.wantOK || got != tc.want {
				t.Errorf("got %q, %v; want %q, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

// The regular expression of a glob must accept exactly what the policy's glob matching accepts, once CEL has read
// the string literal (a ServiceAccount glob's '.' is escaped for RE2, and the escape for CEL).
func TestGlobRE2AgreesWithPolicyGlobs(t *testing.T) {
	for glob, cases := range map[string]map[string]bool{
		"team-*":    {"team-": true, "team-a": true, "team": false, "xteam-a": false},
		"t?-a*":     {"tx-a": true, "tx-abc": true, "t-a": false, "txx-a": false},
		"*":         {"anything": true, "a": true},
		"flux.sa-*": {"flux.sa-1": true, "fluxxsa-1": false, "flux.sa": false},
	} {
		for s, want := range cases {
			if got := celEval(t, "request.namespace.matches("+GlobRE2(glob)+")", s, ""); got != want {
				t.Errorf("%s (%s) on %q: %v, want %v", glob, GlobRE2(glob), s, got, want)
			}
		}
	}
}

const header = "apiVersion: fluxidentity.dev/v1alpha1\nkind: IdentityPolicy\nmetadata:\n  name: t\nidentities:\n"

func entry(name, ns, sa, injection string) string {
	return fmt.Sprintf("  - name: %s\n    namespaces: [%s]\n    serviceAccounts: [%s]\n    aws:\n"+
		"      roleARN: arn:aws:iam::111122223333:role/%s\n    injection: %s\n", name, ns, sa, name, injection)
}

func mustParse(t testing.TB, doc string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("policy.yaml", []byte(doc), time.Now())
	if err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	return p
}

func TestFullInjectionFollowsThePolicyPrecedence(t *testing.T) {
	type pod struct{ ns, sa string }
	tests := map[string]struct {
		policy       string
		full, others []pod
	}{
		"an exact pair is full-injected and nothing else is": {
			policy: header + entry("src", "flux-system", "source-controller", "full"),
			full:   []pod{{"flux-system", "source-controller"}},
			others: []pod{{"flux-system", "kustomize-controller"}, {"team-a", "source-controller"}, {"flux-system", ""}},
		},
		"an exact ServiceAccount under an annotate glob keeps its full injection": {
			policy: header + entry("all", "flux-system", `"*"`, "annotate") + entry("src", "flux-system", "source-controller", "full"),
			full:   []pod{{"flux-system", "source-controller"}},
			others: []pod{{"flux-system", "helm-controller"}, {"flux-system", ""}},
		},
		"an annotate exact pair is carved out of a full glob": {
			policy: header + entry("tenants", `"team-*"`, `"flux-*"`, "full") + entry("special", "team-a", "flux-special", "annotate"),
			full:   []pod{{"team-a", "flux-source"}, {"team-b", "flux-special"}},
			others: []pod{{"team-a", "flux-special"}, {"team-a", "default"}, {"teams", "flux-source"}},
		},
		"an exact namespace beats a glob namespace whatever the ServiceAccount pattern": {
			policy: header + entry("tenants", `"team-*"`, "flux-source", "full") + entry("team-a", "team-a", `"*"`, "annotate"),
			full:   []pod{{"team-b", "flux-source"}},
			others: []pod{{"team-a", "flux-source"}, {"team-a", "x"}},
		},
		"a pod that names no ServiceAccount is the default one's": {
			policy: header + entry("defaults", `"app-?"`, "default", "full"),
			full:   []pod{{"app-1", ""}, {"app-2", "default"}},
			others: []pod{{"app-10", ""}, {"app-1", "other"}},
		},
		"a ServiceAccount glob with a dot is matched literally": {
			policy: header + entry("dots", "flux-system", `"flux.ctl-*"`, "full"),
			full:   []pod{{"flux-system", "flux.ctl-source"}},
			others: []pod{{"flux-system", "fluxxctl-source"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := mustParse(t, tc.policy)
			expr, ok := FullInjection(p.Spec.Identities)
			if !ok || expr == "" {
				t.Fatalf("no condition: %q, %v", expr, ok)
			}
			for _, c := range tc.full {
				if !celEval(t, expr, c.ns, c.sa) {
					t.Errorf("%s/%s is full-injected by the policy but not sent to the fail-closed webhook\n%s", c.ns, c.sa, expr)
				}
			}
			for _, c := range tc.others {
				if celEval(t, expr, c.ns, c.sa) {
					t.Errorf("%s/%s is not full-injected but would wait for the webhook\n%s", c.ns, c.sa, expr)
				}
			}
		})
	}
}

func TestNoFullInjectionEntryMeansNoFailClosedWebhook(t *testing.T) {
	p := mustParse(t, header+entry("a", "flux-system", "source-controller", "annotate"))
	r := For(p.Spec)
	if _, ok := r.Webhooks[routes.WebhookPodsFullInjection]; ok {
		t.Errorf("a policy without full injection registers the fail-closed pod webhook: %v", r.Webhooks)
	}
	if got := r.Webhooks[routes.WebhookPods]; len(got) != 1 || got[0].Name != NamePolicyNamespaces {
		t.Errorf("the pod webhook's conditions: %v, want only %s", got, NamePolicyNamespaces)
	}
}

func TestTooManyPairsGiveNoFailClosedWebhook(t *testing.T) {
	var b strings.Builder
	b.WriteString(header)
	// MaxGlobs/2+1 namespace globs fit the namespace condition; with two ServiceAccounts each, the pairs do not.
	for i := range MaxGlobs/2 + 1 {
		b.WriteString(entry(fmt.Sprintf("e%d", i), fmt.Sprintf(`"ns%d-*"`, i), `flux, "flux-*"`, "full"))
	}
	r := For(mustParse(t, b.String()).Spec)
	if _, ok := r.Webhooks[routes.WebhookPodsFullInjection]; ok || !slices.Contains(r.Skipped, routes.WebhookPodsFullInjection) {
		t.Errorf("a full-injection condition too large to generate must leave the webhook out and say so: %v", r.Skipped)
	}
	if got := r.Webhooks[routes.WebhookPods]; len(got) != 1 {
		t.Errorf("the fail-open pod webhook keeps only its namespace condition: %v", got)
	}
}

// Random policies: every condition must send the webhook exactly what the policy can affect, as the policy's own
// lookups decide it (IdentityFor, Ownership, MandatesFor).
func TestConditionsAgreeWithPolicyLookups(t *testing.T) {
	nsPatterns := []string{"flux-system", "team-a", "team-b", "team-*", "t*", "team-?", "*", "apps"}
	saPatterns := []string{"source-controller", "flux-source", "default", "flux-*", "*", "s?", "source-*"}
	namespaces := []string{"flux-system", "team-a", "team-b", "team-ab", "tx", "apps", "other", "t"}
	accounts := []string{"source-controller", "flux-source", "default", "", "sx", "source-x", "flux-", "other"}
	rng := rand.New(rand.NewPCG(14, 2026))
	pick := func(from []string) string {
		var out []string
		for range 1 + rng.IntN(2) {
			out = append(out, fmt.Sprintf("%q", from[rng.IntN(len(from))]))
		}
		return strings.Join(slices.Compact(out), ", ")
	}
	valid := 0
	for attempt := 0; valid < 150 && attempt < 20000; attempt++ {
		var b strings.Builder
		b.WriteString(header)
		for i := range 1 + rng.IntN(4) {
			inj := []string{"annotate", "full"}[rng.IntN(2)]
			b.WriteString(entry(fmt.Sprintf("e%d", i), pick(nsPatterns), pick(saPatterns), inj))
		}
		if n := rng.IntN(3); n > 0 {
			b.WriteString("mandates:\n")
			for i := range n {
				fmt.Fprintf(&b, "  - name: m%d\n    namespaces: [%s]\n", i, pick(nsPatterns))
				if rng.IntN(2) == 0 { // a mandate without kinds covers every kind
					fmt.Fprintf(&b, "    kinds: [%s]\n", pick(fluxauth.Kinds))
				}
			}
		}
		p, err := policy.Parse("policy.yaml", []byte(b.String()), time.Now())
		if err != nil {
			continue // ambiguous entries and the like: the server would refuse the policy
		}
		valid++
		r := For(p.Spec)
		for _, ns := range namespaces {
			_, owned := p.Ownership(ns)
			check(t, b.String(), r, routes.WebhookServiceAccounts, ns, "", owned)
			covered := map[fluxauth.Category]bool{}
			for _, api := range fluxauth.APIs {
				covered[api.Category] = covered[api.Category] || len(p.MandatesFor(ns, api.Kind)) > 0
			}
			for c, covers := range covered {
				check(t, b.String(), r, routes.WebhookOf(c), ns, "", covers)
			}
			for _, sa := range accounts {
				lookup := sa
				if lookup == "" {
					lookup = "default"
				}
				m, mapped := p.IdentityFor(ns, lookup)
				full := mapped && m.Identity.Injection == policy.InjectionFull
				check(t, b.String(), r, routes.WebhookPodsFullInjection, ns, sa, full)
				// The fail-open webhook sees every mapped pod the fail-closed one does not (and may see more of the
				// namespace: its condition is per namespace).
				if mapped && !full {
					check(t, b.String(), r, routes.WebhookPods, ns, sa, true)
				}
				if full {
					check(t, b.String(), r, routes.WebhookPods, ns, sa, false)
				}
			}
		}
	}
	if valid < 150 {
		t.Fatalf("only %d valid random policies: the generator tests too little", valid)
	}
}

// check evaluates the conditions of webhook (all must hold: the API server ANDs them) for a pod in ns/sa.
func check(t *testing.T, doc string, r Result, webhook, ns, sa string, want bool) {
	t.Helper()
	conds, ok := r.Webhooks[webhook]
	got := true
	switch {
	case !ok && webhook == routes.WebhookPodsFullInjection:
		got = false // not registered
	case !ok:
		t.Fatalf("%s has no condition\n%s", webhook, doc)
	}
	for _, c := range conds {
		got = got && celEval(t, c.Expression, ns, sa)
	}
	if got != want {
		t.Fatalf("%s for %s/%q: sent=%v, want %v\n%s\nconditions: %v", webhook, ns, sa, got, want, doc, conds)
	}
}

// The SOPS Secret registration's static condition sends exactly the Secrets carrying an entry ImportKeys reads a
// credential from, by data or stringData, and cannot fail on a Secret without either.
func TestSOPSKeysSendOnlySOPSDecryptionSecrets(t *testing.T) {
	expr := SOPSKeys().Expression
	env, err := cel.NewEnv(cel.Variable("request", cel.DynType), cel.Variable("object", cel.DynType))
	if err != nil {
		t.Fatal(err)
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		t.Fatal(iss.Err())
	}
	prg, err := env.Program(ast)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		object map[string]any
		sent   bool
	}{
		"a SOPS Secret with static AWS keys":              {map[string]any{"data": map[string]any{"sops.aws-kms": "eA=="}}, true},
		"a SOPS Secret written with stringData":           {map[string]any{"stringData": map[string]any{"sops.vault-token": "x"}}, true},
		"an age key Secret (judged on its Kustomization)": {map[string]any{"data": map[string]any{"identity.agekey": "eA=="}}, false},
		"a TLS Secret": {map[string]any{"data": map[string]any{"tls.crt": "eA==", "tls.key": "eA=="}}, false},
		"a Secret with a key that only looks alike": {map[string]any{"data": map[string]any{"sops.aws-kms.bak": "eA=="}}, false},
		"a Secret without data":                     {map[string]any{"metadata": map[string]any{"name": "s"}}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, _, err := prg.Eval(map[string]any{"request": map[string]any{"namespace": "n"}, "object": tc.object})
			if err != nil {
				t.Fatalf("evaluation failed (the fail-closed webhook would refuse the request): %v", err)
			}
			if out.Value() != tc.sent {
				t.Errorf("sent = %v, want %v", out.Value(), tc.sent)
			}
		})
	}
}
