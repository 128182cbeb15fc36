package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/audit"
	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// AuditOptions configure `audit`.
type AuditOptions struct {
	PolicyFile string
	Cluster    ClusterOptions
	Output     string
	Reports    ReportOptions
}

func (o *AuditOptions) bindFlags(policyFlags, clusterFlags, outFlags *pflag.FlagSet) {
	policyFlags.StringVar(&o.PolicyFile, "policy", o.PolicyFile, "Policy file to audit the cluster against (required).")
	o.Cluster.bindFlags(clusterFlags)
	outFlags.StringVarP(&o.Output, "output", "o", o.Output,
		"Output format: table, json, or policyreport / report (the reports --apply writes, as YAML).")
	o.Reports.bindFlags(outFlags)
}

// Validate checks the options before anything is read.
func (o *AuditOptions) Validate() error {
	var errs []error
	if o.PolicyFile == "" {
		errs = append(errs, errors.New("--policy is required"))
	}
	if !slices.Contains(auditOutputs, o.Output) {
		errs = append(errs, fmt.Errorf("-o must be one of %s, got %q", strings.Join(auditOutputs, ", "), o.Output))
	}
	errs = append(errs, o.Cluster.validate(), o.Reports.validate())
	return errors.Join(errs...)
}

func newAuditCommand() *cobra.Command {
	o := AuditOptions{Output: "table", Cluster: defaultClusterOptions(), Reports: defaultReportOptions()}
	policyFlags := pflag.NewFlagSet("policy", pflag.ContinueOnError)
	clusterFlags := pflag.NewFlagSet("cluster", pflag.ContinueOnError)
	outFlags := pflag.NewFlagSet("output", pflag.ContinueOnError)
	o.bindFlags(policyFlags, clusterFlags, outFlags)
	cmd := &cobra.Command{
		Use:   "audit --policy FILE [--kubeconfig PATH] [-o table|json|policyreport|report] [--apply]",
		Short: "List the Flux sources in a cluster that violate the policy's mandates",
		Long: `List every GitRepository, OCIRepository, HelmRepository, Bucket and ImageRepository in the cluster that
violates the policy's mandates, decided by the same code as the admission webhook: the backlog to clear before a
mandate moves from warn to enforce. Each violation is answered in its mandate's own mode (the server's --mode does not
apply). Sources are read in pages of 500; on a terminal, progress shows on stderr. Exit code 1 when there are
violations in enforce or warn mode, 0 otherwise, 2 on errors and when --timeout ends the read (what was found by then
is printed, marked incomplete). Needs list on the five kinds cluster-wide; a kind whose CRD is not installed is
skipped with a note on stderr.

` + reportsHelp,
		Example: `  flux-identity-webhook audit --policy policy.yaml
  flux-identity-webhook audit --policy policy.yaml --kubeconfig ~/.kube/prod -o json
  flux-identity-webhook audit --policy policy.yaml -o policyreport
  flux-identity-webhook audit --policy policy.yaml --apply --fail-on-violations=false`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return runAudit(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	addSections(cmd,
		flagSection{"Policy", policyFlags},
		flagSection{"Cluster", clusterFlags},
		flagSection{"Output", outFlags},
	)
	return cmd
}

func runAudit(ctx context.Context, o AuditOptions, stdout, stderr io.Writer) error {
	p, err := policy.Load(o.PolicyFile)
	if err != nil {
		return err
	}
	c, err := o.Cluster.client("audit")
	if err != nil {
		return err
	}
	return auditCluster(ctx, o, p, c, stdout, stderr)
}

// auditCluster audits the sources behind c and prints the result, also when the read stopped early; with --apply it
// then writes the reports through c.
func auditCluster(ctx context.Context, o AuditOptions, p *policy.Policy, c client.Client, stdout, stderr io.Writer) error {
	var res audit.Result
	now := time.Now()
	stop := o.Cluster.read(ctx, c, stderr, "audit", func(ctx context.Context, l *kubelist.Lister) (err error) {
		res, err = audit.Run(ctx, l, p, now)
		return err
	})
	for _, k := range res.SkippedKinds {
		_, _ = fmt.Fprintf(stderr, "note: the cluster does not serve %s; skipped\n", k)
	}
	var err error
	switch o.Output {
	case "json":
		err = audit.WriteJSON(stdout, res)
	case "table":
		err = audit.WriteTable(stdout, res)
	default:
		// Reports replace what they describe whole (kubectl apply, --apply): a partial one would drop results, so a
		// read that stopped early prints none.
		if stop == nil {
			err = writeReports(stdout, o.Output, res, o.Reports, now)
		}
	}
	if err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	if stop != nil {
		return stop
	}
	if o.Reports.Apply {
		if err := o.applyReports(ctx, c, res, now, stderr); err != nil {
			return err
		}
	}
	if n := res.Blocking(); n > 0 && o.Reports.FailOnViolations {
		return &exitError{code: 1, err: fmt.Errorf("%d violations in enforce or warn mode", n)}
	}
	return nil
}
