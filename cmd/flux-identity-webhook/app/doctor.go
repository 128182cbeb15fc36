package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/doctor"
	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/policy/trust"
)

// DoctorOptions configure doctor.
type DoctorOptions struct {
	PolicyFile string
	Cluster    ClusterOptions
	Output     string
}

func (o *DoctorOptions) bindFlags(policyFlags, clusterFlags, outFlags *pflag.FlagSet) {
	policyFlags.StringVar(&o.PolicyFile, "policy", "", "Policy file (required).")
	o.Cluster.bindFlags(clusterFlags)
	outFlags.StringVarP(&o.Output, "output", "o", o.Output, "Output format: text, json or yaml.")
}

// Validate checks the options.
func (o *DoctorOptions) Validate() error {
	var errs []error
	if o.PolicyFile == "" {
		errs = append(errs, errors.New("--policy is required"))
	}
	if !slices.Contains([]string{trust.FormatText, trust.FormatJSON, trust.FormatYAML}, o.Output) {
		errs = append(errs, fmt.Errorf("-o must be text, json or yaml, got %q", o.Output))
	}
	errs = append(errs, o.Cluster.validate())
	return errors.Join(errs...)
}

func newDoctorCommand() *cobra.Command {
	o := DoctorOptions{Output: trust.FormatText, Cluster: defaultClusterOptions()}
	policyFlags := pflag.NewFlagSet("policy", pflag.ContinueOnError)
	clusterFlags := pflag.NewFlagSet("cluster", pflag.ContinueOnError)
	outFlags := pflag.NewFlagSet("output", pflag.ContinueOnError)
	o.bindFlags(policyFlags, clusterFlags, outFlags)
	cmd := &cobra.Command{
		Use:   "doctor --policy FILE [--kubeconfig PATH]",
		Short: "Check a live cluster against the policy",
		Long: `Read the cluster and report, each finding with the command or policy change that fixes it:
  flux            Flux's posture, for source-, kustomize-, helm-, notification-, image-reflector- and
                  image-automation-controller in flux.namespaces: the ObjectLevelWorkloadIdentity feature gate where
                  object-level identity is needed; --default-service-account (not kustomize's and helm's: theirs is
                  impersonation), --default-decryption-service-account and --default-kubeconfig-service-account
                  against the policy's flux section; --no-cross-namespace-refs and --sops-age-secret where mandates
                  cover tenants; create serviceaccounts/token and get serviceaccounts in every namespace (from the
                  ClusterRoles and ClusterRoleBindings); long-lived cloud credentials in their pods (and Flux
                  Operator's), named, never printed. A wrong flag a FluxInstance's field causes is reported once, on
                  the FluxInstance;
  status          a Flux object whose status says authentication failed, with the likely cause read from the cluster
                  and the policy (gate, token permission, ServiceAccount missing, unmapped, of another cloud or not
                  annotated, a missing lockdown default, a controller pod older than its annotation, an audience),
                  else the trust check that shows what the cloud does not trust;
  serviceaccount  a mapped ServiceAccount that does not exist, or whose identity annotations or labels differ from
                  what the webhook writes for it;
  pod             a running pod of a mapped ServiceAccount without the identity its ServiceAccount now carries:
                  the cloud's variables (AWS_ROLE_ARN, AZURE_CLIENT_ID, GOOGLE_APPLICATION_CREDENTIALS with
                  injection: full) are absent or name another identity in a container or init container.
                  Webhooks inject at pod creation only, so such a pod started before its ServiceAccount was
                  annotated and needs a restart (or no webhook injected it at all);
  deployment      a Deployment of an Azure-mapped ServiceAccount whose pod template lacks the
                  azure.workload.identity/use label the Azure webhook selects pods by;
  audit           a Flux object violating a mandate in enforce or warn mode, as the audit command reports it.
It only reads: list on namespaces, serviceaccounts and pods, get and list on deployments and replicasets (cluster-wide,
or in the namespaces the policy maps), get on configmaps, list on clusterroles and clusterrolebindings, get and list on
every Flux kind cluster-wide, list on secrets only where a mandate covers SOPS decryption Secrets (README: "What
doctor checks" has the ClusterRole). Lists are read in pages of 500; every Flux kind once cluster-wide; with few
mapped namespaces the others one by one, with many cluster-wide. On a terminal, progress shows on stderr. Exit code 1
when anything was found; 2 on errors, and when --timeout ends the read (what was found by then is printed, marked
incomplete).`,
		Example: `  flux-identity-webhook doctor --policy policy.yaml
  flux-identity-webhook doctor --policy policy.yaml --kubeconfig ~/.kube/prod -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return RunDoctor(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	addSections(cmd,
		flagSection{"Policy", policyFlags},
		flagSection{"Cluster", clusterFlags},
		flagSection{"Output", outFlags},
	)
	return cmd
}

// RunDoctor connects to the cluster, diagnoses it and prints the findings; problems exit 1.
func RunDoctor(ctx context.Context, o DoctorOptions, stdout, stderr io.Writer) error {
	p, err := policy.Load(o.PolicyFile)
	if err != nil {
		return err
	}
	c, err := o.Cluster.reader("doctor")
	if err != nil {
		return err
	}
	return runDoctor(ctx, o, p, c, stdout, stderr)
}

// runDoctor diagnoses the cluster behind c and prints the report, also when the read stopped early.
func runDoctor(ctx context.Context, o DoctorOptions, p *policy.Policy, c client.Reader, stdout, stderr io.Writer) error {
	var report doctor.Report
	stop := o.Cluster.read(ctx, c, stderr, "doctor", func(ctx context.Context, l *kubelist.Lister) (err error) {
		report, err = doctor.Diagnose(ctx, l, p, time.Now())
		return err
	})
	var err error
	if o.Output == trust.FormatText {
		err = doctor.WriteText(stdout, report)
	} else {
		err = trust.WriteStructured(stdout, o.Output, report)
	}
	if err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	if stop != nil {
		return stop
	}
	if report.Problems > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d problems found", report.Problems)}
	}
	return nil
}
