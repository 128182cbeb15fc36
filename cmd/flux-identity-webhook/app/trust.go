package app

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/policy/trust"
)

// TrustOptions configure trust render and trust check.
type TrustOptions struct {
	PolicyFile      string
	Issuer          string
	Clouds          []string
	Namespaces      []string
	ServiceAccounts []string
	WorkloadPool    string
	EKSClusterARN   string
	Output          string
}

func (o *TrustOptions) bindPolicyFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.PolicyFile, "policy", "", "Policy file (required).")
	fs.StringSliceVar(&o.Clouds, "cloud", nil, "Only these clouds: aws, azure, gcp (repeatable; default all).")
	fs.StringSliceVar(&o.Namespaces, "namespaces", nil,
		"Namespace names that namespace globs in the policy expand to (comma-separated).")
	fs.StringSliceVar(&o.ServiceAccounts, "service-accounts", nil,
		"ServiceAccount names that ServiceAccount globs in the policy expand to (comma-separated).")
}

func (o *TrustOptions) bindCloudFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Issuer, "issuer", "",
		"The cluster's ServiceAccount token issuer URL, exactly as in the tokens' iss claim (required for AWS and Azure).")
	fs.StringVar(&o.WorkloadPool, "workload-pool", "",
		"GKE workload pool for serviceAccount:POOL[NS/SA] members of entries without gcp.workloadPool (default: PROJECT.svc.id.goog of each Google service account).")
	fs.StringVar(&o.EKSClusterARN, "eks-cluster-arn", "",
		"The EKS cluster of the Pod Identity associations, arn:aws:eks:REGION:ACCOUNT:cluster/NAME (required for aws.mechanism: podIdentity).")
}

// Validate checks the options; formats lists the output formats the command accepts.
func (o *TrustOptions) Validate(formats ...string) error {
	var errs []error
	if o.PolicyFile == "" {
		errs = append(errs, errors.New("--policy is required"))
	}
	for _, c := range o.Clouds {
		if !slices.Contains([]string{"aws", "azure", "gcp"}, c) {
			errs = append(errs, fmt.Errorf("--cloud must be aws, azure or gcp, got %q", c))
		}
	}
	if !slices.Contains(formats, o.Output) {
		errs = append(errs, fmt.Errorf("-o must be one of %s, got %q", strings.Join(formats, ", "), o.Output))
	}
	if o.Issuer != "" {
		if err := trust.ValidateIssuer(o.Issuer); err != nil {
			errs = append(errs, fmt.Errorf("--issuer: %w", err))
		}
	}
	if o.EKSClusterARN != "" {
		if err := trust.ValidateEKSClusterARN(o.EKSClusterARN); err != nil {
			errs = append(errs, fmt.Errorf("--eks-cluster-arn: %w", err))
		}
	}
	if o.WorkloadPool != "" && !strings.HasSuffix(o.WorkloadPool, ".svc.id.goog") {
		errs = append(errs, fmt.Errorf("--workload-pool must end in .svc.id.goog, got %q", o.WorkloadPool))
	}
	return errors.Join(errs...)
}

func (o *TrustOptions) options() trust.Options {
	return trust.Options{Issuer: o.Issuer, WorkloadPool: o.WorkloadPool, EKSClusterARN: o.EKSClusterARN}
}

func (o *TrustOptions) clouds() []policy.Cloud {
	out := make([]policy.Cloud, len(o.Clouds))
	for i, c := range o.Clouds {
		out[i] = policy.Cloud(c)
	}
	return out
}

// pairs loads the policy and lists the pairs of the selected clouds.
func (o *TrustOptions) pairs() ([]trust.Pair, []trust.Unresolved, error) {
	p, err := policy.Load(o.PolicyFile)
	if err != nil {
		return nil, nil, err
	}
	pairs, unresolved := trust.Pairs(p, trust.Names{Namespaces: o.Namespaces, ServiceAccounts: o.ServiceAccounts})
	if len(o.Clouds) > 0 {
		pairs = slices.DeleteFunc(pairs, func(pr trust.Pair) bool { return !slices.Contains(o.clouds(), pr.Match.Cloud) })
		unresolved = slices.DeleteFunc(unresolved, func(u trust.Unresolved) bool {
			return !slices.Contains(o.clouds(), cloudOf(p, u.Identity))
		})
	}
	return pairs, unresolved, nil
}

func cloudOf(p *policy.Policy, identity string) policy.Cloud {
	for _, id := range p.Spec.Identities {
		if id.Name == identity {
			switch {
			case id.AWS != nil:
				return policy.CloudAWS
			case id.Azure != nil:
				return policy.CloudAzure
			}
			return policy.CloudGCP
		}
	}
	return ""
}

func newTrustCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trust",
		Short: "Render and check the cloud side: IAM trust policies, federated credentials, IAM bindings",
		Long: `The cloud side of workload identity must name every ServiceAccount exactly: issuer, subject and audience.
render writes it from the policy; check compares what a cloud exports with it.`,
	}
	cmd.AddCommand(newTrustRenderCommand(), newTrustCheckCommand())
	return cmd
}

func newTrustRenderCommand() *cobra.Command {
	o := TrustOptions{Output: trust.FormatText}
	policyFlags := pflag.NewFlagSet("policy", pflag.ContinueOnError)
	cloudFlags := pflag.NewFlagSet("cloud", pflag.ContinueOnError)
	outFlags := pflag.NewFlagSet("output", pflag.ContinueOnError)
	o.bindPolicyFlags(policyFlags)
	o.bindCloudFlags(cloudFlags)
	outFlags.StringVarP(&o.Output, "output", "o", o.Output, "Output format: text, json, yaml, shell (aws, az and gcloud "+
		"commands), terraform or ack (the EKS Pod Identity associations as aws_eks_pod_identity_association or "+
		"PodIdentityAssociation).")
	cmd := &cobra.Command{
		Use:   "render --policy FILE --issuer URL",
		Short: "Print the trust policies, federated credentials and IAM bindings the policy needs",
		Long: `For every namespace/ServiceAccount the policy maps, print what the cloud must trust:
  AWS    one IAM role trust policy per role, every ServiceAccount of a role in one document: IRSA
         (sts:AssumeRoleWithWebIdentity from the issuer's OIDC provider, StringEquals on ISSUER:sub and ISSUER:aud);
         EKS Pod Identity (pods.eks.amazonaws.com for sts:AssumeRole and sts:TagSession, StringEquals on the
         aws:RequestTag/ eks-cluster-arn, kubernetes-namespace and kubernetes-service-account) and one association per
         ServiceAccount in --eks-cluster-arn;
  Azure  one federated identity credential per ServiceAccount (issuer, subject, audience api://AzureADTokenExchange),
         at most 20 per identity;
  GCP    roles/iam.workloadIdentityUser on each Google service account for serviceAccount:POOL[NS/SA], or for the
         principal:// of the subject when the entry names a workload identity provider; for direct federation the
         ServiceAccount's own principal (principalSet:// of the namespace for serviceAccounts ["*"] on GKE) and the
         roles Flux needs on the buckets, repositories, keys and topics it reads.
Globs are expanded against --namespaces and --service-accounts; a glob that matches none of them is reported and
makes the exit code 1, since its ServiceAccounts are missing from the output. So does a role or Google service
account that a template gives to ServiceAccounts differing in a name it uses (a fixed value in another entry equal to
one the template renders): those tenants would share one identity; and what the cloud will refuse (an Azure identity
with more than 20 federated credentials, a Pod Identity role of another account than the cluster).`,
		Example: `  flux-identity-webhook trust render --policy policy.yaml --issuer "$(kubectl get --raw /.well-known/openid-configuration | jq -r .issuer)"
  flux-identity-webhook trust render --policy policy.yaml --issuer https://oidc.eks.eu-west-1.amazonaws.com/id/ABC \
      --namespaces team-a,team-b --service-accounts flux-source -o shell > cloud-side.sh`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(trust.RenderFormats...); err != nil {
				return err
			}
			return runTrustRender(o, cmd.OutOrStdout())
		},
	}
	addSections(cmd,
		flagSection{"Policy", policyFlags},
		flagSection{"Cloud", cloudFlags},
		flagSection{"Output", outFlags},
	)
	return cmd
}

func runTrustRender(o TrustOptions, stdout io.Writer) error {
	pairs, unresolved, err := o.pairs()
	if err != nil {
		return err
	}
	r, err := trust.Render(pairs, unresolved, o.clouds(), o.options())
	if err != nil {
		return err
	}
	if err := trust.WriteRendered(stdout, o.Output, r); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	var errs []error
	if len(r.Refused) > 0 {
		msgs := make([]string, len(r.Refused))
		for i, refused := range r.Refused {
			msgs[i] = refused.Message
		}
		errs = append(errs, fmt.Errorf("the cloud will refuse:\n  %s", strings.Join(msgs, "\n  ")))
	}
	if len(unresolved) > 0 {
		msgs := make([]string, len(unresolved))
		for i, u := range unresolved {
			msgs[i] = u.Message()
		}
		errs = append(errs, fmt.Errorf("not rendered, %d patterns matched no given name:\n  %s", len(unresolved),
			strings.Join(msgs, "\n  ")))
	}
	if len(r.Shared) > 0 {
		msgs := make([]string, len(r.Shared))
		for i, s := range r.Shared {
			msgs[i] = s.Message()
		}
		errs = append(errs, fmt.Errorf("shared through a template:\n  %s", strings.Join(msgs, "\n  ")))
	}
	if len(errs) > 0 {
		return &exitError{code: 1, err: errors.Join(errs...)}
	}
	return nil
}

func newTrustCheckCommand() *cobra.Command {
	o := TrustOptions{Output: trust.FormatText}
	policyFlags := pflag.NewFlagSet("policy", pflag.ContinueOnError)
	cloudFlags := pflag.NewFlagSet("cloud", pflag.ContinueOnError)
	outFlags := pflag.NewFlagSet("output", pflag.ContinueOnError)
	o.bindPolicyFlags(policyFlags)
	o.bindCloudFlags(cloudFlags)
	outFlags.StringVarP(&o.Output, "output", "o", o.Output, "Output format: text, json or yaml.")
	cmd := &cobra.Command{
		Use:   "check --policy FILE --issuer URL [KEY=]FILE...",
		Short: "Check exported trust documents against the policy",
		Long: `Read what the clouds export and report, for every namespace/ServiceAccount the policy maps, one of
  ok          an exact grant exists;
  missing     nothing trusts it (or no document for its role, identity or Google service account was given);
  mismatched  a grant almost matches: the exact difference is printed (issuer, trailing slash, condition key,
              namespace, case, audience, role);
  too-broad   a grant admits it and others too (StringLike wildcards, no sub or aud condition, no Pod Identity
              namespace, ServiceAccount or cluster tag condition, principal sets, allUsers, flexible credentials, a
              project-level or admin role for direct federation).
Any result but ok makes the exit code 1, and so does a glob in the policy that matched none of --namespaces /
--service-accounts (its ServiceAccounts could not be checked). Documents:
  AWS    aws iam get-role --role-name NAME (or aws iam list-roles): the role ARN is in the document; for EKS Pod
         Identity also aws eks describe-pod-identity-association --cluster-name C --association-id ID;
  Azure  az identity federated-credential list ...: name the identity by client ID, CLIENT_ID=FILE;
  GCP    gcloud iam service-accounts get-iam-policy EMAIL --format=json: name it, EMAIL=FILE; for direct federation
         the IAM policy of each resource Flux reads, named RESOURCE=FILE (gs://BUCKET,
         projects/P/locations/L/repositories/R, projects/P/locations/L/keyRings/K/cryptoKeys/C, projects/P/topics/T;
         a bucket's policy names itself), ok when one grants the ServiceAccount's principal what Flux needs there.`,
		Example: `  aws iam get-role --role-name flux-system > role.json
  az identity federated-credential list -g rg --identity-name flux > fic.json
  gcloud iam service-accounts get-iam-policy flux@proj.iam.gserviceaccount.com --format=json > gsa.json
  flux-identity-webhook trust check --policy policy.yaml --issuer https://oidc.example.com \
      role.json 6a1c5e8e-0a4f-4f39-9d2b-1b8d3f6c2a10=fic.json flux@proj.iam.gserviceaccount.com=gsa.json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			if err := o.Validate(trust.FormatText, trust.FormatJSON, trust.FormatYAML); err != nil {
				return err
			}
			return runTrustCheck(o, files, cmd.OutOrStdout())
		},
	}
	addSections(cmd,
		flagSection{"Policy", policyFlags},
		flagSection{"Cloud", cloudFlags},
		flagSection{"Output", outFlags},
	)
	return cmd
}

// trustCheckReport is what trust check prints as JSON or YAML.
type trustCheckReport struct {
	Findings   []trust.Finding    `json:"findings"`
	Unresolved []trust.Unresolved `json:"unresolved,omitempty"`
	Problems   int                `json:"problems"`
}

func runTrustCheck(o TrustOptions, args []string, stdout io.Writer) error {
	pairs, unresolved, err := o.pairs()
	if err != nil {
		return err
	}
	if o.Issuer == "" && slices.ContainsFunc(pairs, trust.NeedsIssuer) {
		return trust.ErrIssuerRequired
	}
	if o.EKSClusterARN == "" && slices.ContainsFunc(pairs, trust.NeedsEKSCluster) {
		return trust.ErrEKSClusterRequired
	}
	var docs trust.Documents
	for _, arg := range args {
		key, file := splitKey(arg)
		data, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("read trust document: %w", err)
		}
		if err := docs.Add(file, key, data); err != nil {
			return err
		}
	}
	findings := trust.Check(pairs, &docs, o.options())
	report := trustCheckReport{Findings: findings, Unresolved: unresolved, Problems: trust.Problems(findings) + len(unresolved)}
	if o.Output == trust.FormatText {
		err = writeTrustCheckText(stdout, report)
	} else {
		err = trust.WriteStructured(stdout, o.Output, report)
	}
	if err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	if report.Problems > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d ServiceAccounts are not trusted exactly", report.Problems,
			len(findings)+len(unresolved))}
	}
	return nil
}

// splitKey splits KEY=FILE; an argument naming an existing file, or without '=', is a file alone.
func splitKey(arg string) (key, file string) {
	if _, err := os.Stat(arg); err == nil {
		return "", arg
	}
	if k, f, ok := strings.Cut(arg, "="); ok {
		return k, f
	}
	return "", arg
}

func writeTrustCheckText(w io.Writer, r trustCheckReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "STATUS\tCLOUD\tSERVICEACCOUNT\tIDENTITY\tTARGET\tDETAIL")
	for _, f := range r.Findings {
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s\t%s\t%s\n", f.Status, f.Cloud, f.Namespace, f.ServiceAccount,
			f.Identity, f.Target, f.Detail)
	}
	for _, u := range r.Unresolved {
		_, _ = fmt.Fprintf(tw, "unresolved\t\t\t%s\t\t%s\n", u.Identity, u.Message())
	}
	return tw.Flush()
}
