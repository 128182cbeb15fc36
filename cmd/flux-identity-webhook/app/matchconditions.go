package app

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"

	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook"
)

// Bounds on a generated condition. Conditions only save requests, so when a policy names more namespaces than fit
// comfortably in one CEL expression, none is generated for that webhook and every request still reaches it.
const (
	maxConditionNames = 512
	maxConditionGlobs = 64
)

func newMatchConditionsCommand() *cobra.Command {
	var policyFile string
	cmd := &cobra.Command{
		Use:   "match-conditions --policy FILE",
		Short: "Print CEL matchConditions that keep requests the policy cannot affect away from the webhook",
		Long: `Print, per webhook path, a matchConditions list derived from the policy: pods only in namespaces an identity
names, ServiceAccounts only in namespaces the policy owns (identities and mandates). The API server then never sends
the webhook a request it would answer "allowed, unchanged", which is the cheapest request there is. Regenerate and
re-apply them whenever the policy's namespaces change: a namespace missing from the condition is a namespace the
webhook never sees. Flux sources are not conditioned (a mandate answers from the namespace's kind list).`,
		Example: `  flux-identity-webhook policy match-conditions --policy policy.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if policyFile == "" {
				return errors.New("--policy is required")
			}
			p, err := policy.Load(policyFile)
			if err != nil {
				return err
			}
			return writeMatchConditions(cmd.OutOrStdout(), cmd.ErrOrStderr(), p)
		},
	}
	cmd.Flags().StringVar(&policyFile, "policy", "", "Policy file.")
	return cmd
}

func writeMatchConditions(stdout, stderr io.Writer, p *policy.Policy) error {
	var identityNS, ownedNS []string
	for _, id := range p.Spec.Identities {
		identityNS = append(identityNS, id.Namespaces...)
	}
	ownedNS = slices.Clone(identityNS)
	for _, m := range p.Spec.Mandates {
		ownedNS = append(ownedNS, m.Namespaces...)
	}
	out := map[string][]admissionregistrationv1.MatchCondition{}
	for path, patterns := range map[string][]string{
		webhook.PathMutatePod:            identityNS,
		webhook.PathMutateDeployment:     identityNS,
		webhook.PathMutateServiceAccount: ownedNS,
	} {
		expr, ok := NamespaceCondition(patterns)
		if !ok {
			_, _ = fmt.Fprintf(stderr, "warning: %s: the policy names too many namespaces for a condition; none generated\n", path)
			continue
		}
		out[path] = []admissionregistrationv1.MatchCondition{{Name: "policy-namespaces", Expression: expr}}
	}
	data, err := yaml.Marshal(out)
	if err != nil {
		return err
	}
	_, err = stdout.Write(data)
	return err
}

// NamespaceCondition builds a CEL expression true for exactly the namespaces the patterns match: a list membership
// test for exact names, an anchored RE2 match per glob. ok is false when there are too many to be worth it.
func NamespaceCondition(patterns []string) (expr string, ok bool) {
	var names, globs []string
	for _, p := range patterns {
		if strings.ContainsAny(p, "*?") {
			globs = append(globs, p)
		} else {
			names = append(names, p)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	slices.Sort(globs)
	globs = slices.Compact(globs)
	if len(names) > maxConditionNames || len(globs) > maxConditionGlobs {
		return "", false
	}
	if len(names) == 0 && len(globs) == 0 {
		return "false", true
	}
	var terms []string
	if len(names) > 0 {
		quoted := make([]string, len(names))
		for i, n := range names {
			quoted[i] = "'" + n + "'" // namespace names are DNS labels: nothing to escape
		}
		terms = append(terms, "request.namespace in ["+strings.Join(quoted, ", ")+"]")
	}
	for _, g := range globs {
		terms = append(terms, "request.namespace.matches('"+globToRE2(g)+"')")
	}
	return strings.Join(terms, " || "), true
}

// globToRE2 turns a namespace glob into an anchored regular expression.
func globToRE2(g string) string {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range g {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return b.String()
}
