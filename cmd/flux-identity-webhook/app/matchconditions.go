package app

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/policy/conditions"
)

func newMatchConditionsCommand() *cobra.Command {
	var policyFile string
	cmd := &cobra.Command{
		Use:   "match-conditions --policy FILE",
		Short: "Print CEL matchConditions that keep requests the policy cannot affect away from the webhook",
		Long: `Print, per webhook registration, the matchConditions derived from the policy: ServiceAccounts only in
namespaces the policy owns (identities and mandates), pods and Deployments only in namespaces an identity names, Flux
sources only in namespaces a mandate names. Pods whose ServiceAccount resolves to a full-injection entry go to
pods-full-injection.fluxidentity.dev, which fails closed, and not to pods.fluxidentity.dev, which fails open.

The API server then never sends the webhook a request it would answer "allowed, unchanged", and a webhook outage
blocks only what the policy covers. The Helm chart renders exactly these conditions from its policy value; with
kustomize, regenerate and re-apply them whenever the policy's namespaces change: a namespace missing from a condition
is a namespace the webhook never sees. A webhook the policy names too many patterns for gets no condition (warning
on stderr) and sees every request.`,
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
	r := conditions.For(p.Spec)
	for _, w := range r.Skipped {
		_, _ = fmt.Fprintf(stderr, "warning: %s: the policy names too many patterns for a condition; none generated\n", w)
	}
	data, err := yaml.Marshal(r.Webhooks)
	if err != nil {
		return err
	}
	_, err = stdout.Write(data)
	return err
}

// NamespaceCondition builds a CEL expression true for exactly the namespaces the patterns match (see
// conditions.Namespaces); ok is false when there are too many to be worth it.
func NamespaceCondition(patterns []string) (expr string, ok bool) {
	return conditions.Namespaces(patterns)
}
