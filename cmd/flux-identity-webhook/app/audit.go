package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook"
	"github.com/fluxidentity/flux-identity-webhook/webhook/fluxauth"
)

// AuditOptions configure `audit`.
type AuditOptions struct {
	PolicyFile string
	Kubeconfig string
	Context    string
	Output     string
}

func (o *AuditOptions) bindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.PolicyFile, "policy", o.PolicyFile, "Policy file to audit the cluster against (required).")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig,
		"Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then the in-cluster ServiceAccount).")
	fs.StringVar(&o.Context, "context", o.Context, "Kubeconfig context (default: the current one).")
	fs.StringVarP(&o.Output, "output", "o", o.Output, "Output format: table or json.")
}

// Validate checks the options before anything is read.
func (o *AuditOptions) Validate() error {
	var errs []error
	if o.PolicyFile == "" {
		errs = append(errs, errors.New("--policy is required"))
	}
	if o.Output != "table" && o.Output != "json" {
		errs = append(errs, fmt.Errorf("-o must be table or json, got %q", o.Output))
	}
	return errors.Join(errs...)
}

func newAuditCommand() *cobra.Command {
	o := AuditOptions{Output: "table"}
	fs := pflag.NewFlagSet("audit", pflag.ContinueOnError)
	o.bindFlags(fs)
	cmd := &cobra.Command{
		Use:   "audit --policy FILE [--kubeconfig PATH] [-o table|json]",
		Short: "List the Flux sources in a cluster that violate the policy's mandates",
		Long: `List every GitRepository, OCIRepository, HelmRepository, Bucket and ImageRepository in the cluster that
violates the policy's mandates, decided by the same code as the admission webhook: the backlog to clear before a
mandate moves from warn to enforce. Each violation is answered in its mandate's own mode (the server's --mode does not
apply). Exit code 1 when there are violations in enforce or warn mode, 0 otherwise, 2 on errors. Needs get/list on the
five kinds cluster-wide; a kind whose CRD is not installed is skipped with a note on stderr.`,
		Example: `  flux-identity-webhook audit --policy policy.yaml
  flux-identity-webhook audit --policy policy.yaml --kubeconfig ~/.kube/prod -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return runAudit(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	addSections(cmd, flagSection{"Audit", fs})
	return cmd
}

// Finding is one Flux source with at least one violation.
type Finding struct {
	Kind       string                    `json:"kind"`
	Namespace  string                    `json:"namespace"`
	Name       string                    `json:"name"`
	Violations []webhook.SourceViolation `json:"violations"`
}

// AuditResult is what auditSources found.
type AuditResult struct {
	// Findings are the violating sources, ordered by namespace, kind and name.
	Findings []Finding `json:"findings"`
	// Checked counts the sources evaluated.
	Checked int `json:"checked"`
	// SkippedKinds are kinds whose CRD the cluster does not serve.
	SkippedKinds []string `json:"skippedKinds,omitempty"`
}

// auditScheme knows the Flux source kinds the audit lists.
var auditScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(sourcev1.AddToScheme(s))
	utilruntime.Must(imagev1.AddToScheme(s))
	return s
}()

// auditLists are the list types of the five Flux source kinds, in policy.SourceKinds order.
func auditLists() []struct {
	kind string
	list client.ObjectList
} {
	return []struct {
		kind string
		list client.ObjectList
	}{
		{sourcev1.GitRepositoryKind, &sourcev1.GitRepositoryList{}},
		{sourcev1.OCIRepositoryKind, &sourcev1.OCIRepositoryList{}},
		{sourcev1.HelmRepositoryKind, &sourcev1.HelmRepositoryList{}},
		{sourcev1.BucketKind, &sourcev1.BucketList{}},
		{imagev1.ImageRepositoryKind, &imagev1.ImageRepositoryList{}},
	}
}

// auditSources lists every Flux source through c (a client built with a scheme that knows sourcev1 and imagev1) and
// evaluates each with webhook.EvaluateSource at now, exactly as admission would. Objects being deleted are left out,
// as admission never evaluates them.
func auditSources(ctx context.Context, c client.Reader, p *policy.Policy, now time.Time) (AuditResult, error) {
	var res AuditResult
	for _, l := range auditLists() {
		if err := c.List(ctx, l.list); err != nil {
			if apimeta.IsNoMatchError(err) {
				res.SkippedKinds = append(res.SkippedKinds, l.kind)
				continue
			}
			return AuditResult{}, fmt.Errorf("list %s: %w", l.kind, err)
		}
		items, err := apimeta.ExtractList(l.list)
		if err != nil {
			return AuditResult{}, fmt.Errorf("read %s list: %w", l.kind, err)
		}
		for _, item := range items {
			obj, ok := item.(client.Object)
			if !ok {
				return AuditResult{}, fmt.Errorf("%s list holds a %T", l.kind, item)
			}
			src, err := fluxauth.Of(obj)
			if err != nil {
				return AuditResult{}, err
			}
			if src.Deleting {
				continue
			}
			res.Checked++
			if d := webhook.EvaluateSource(p, src, now); len(d.Violations) > 0 {
				res.Findings = append(res.Findings, Finding{Kind: d.Kind, Namespace: d.Namespace, Name: d.Name,
					Violations: d.Violations})
			}
		}
	}
	slices.SortFunc(res.Findings, func(a, b Finding) int {
		return strings.Compare(a.Namespace+"\x00"+a.Kind+"\x00"+a.Name, b.Namespace+"\x00"+b.Kind+"\x00"+b.Name)
	})
	return res, nil
}

// restConfig loads the kubeconfig the way kubectl does: --kubeconfig, else $KUBECONFIG and ~/.kube/config, else the
// in-cluster ServiceAccount.
func (o *AuditOptions) restConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: o.Context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	return cfg, nil
}

func runAudit(ctx context.Context, o AuditOptions, stdout, stderr io.Writer) error {
	p, err := policy.Load(o.PolicyFile)
	if err != nil {
		return err
	}
	cfg, err := o.restConfig()
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: auditScheme})
	if err != nil {
		return fmt.Errorf("connect to the cluster: %w", err)
	}
	res, err := auditSources(ctx, c, p, time.Now())
	if err != nil {
		return err
	}
	for _, k := range res.SkippedKinds {
		_, _ = fmt.Fprintf(stderr, "note: the cluster does not serve %s; skipped\n", k)
	}
	if err := writeAudit(stdout, o.Output, res); err != nil {
		return err
	}
	if n := res.blocking(); n > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d violations in enforce or warn mode", n)}
	}
	return nil
}

// blocking counts the violations whose mandate is not off: what enforcement would deny or warn about.
func (r AuditResult) blocking() int {
	n := 0
	for _, f := range r.Findings {
		for _, v := range f.Violations {
			if v.Mode != policy.ModeOff {
				n++
			}
		}
	}
	return n
}

// writeAudit prints the result: one table row per violation, or the whole result as JSON.
func writeAudit(w io.Writer, format string, res AuditResult) error {
	if format == "json" {
		if res.Findings == nil {
			res.Findings = []Finding{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	if len(res.Findings) == 0 {
		_, err := fmt.Fprintf(w, "No violations in %d Flux sources.\n", res.Checked)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "NAMESPACE\tKIND\tNAME\tMANDATE\tMODE\tFIELD\tMESSAGE")
	for _, f := range res.Findings {
		for _, v := range f.Violations {
			_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Namespace, f.Kind, f.Name, v.Mandate, v.Mode,
				v.Field, v.Message)
		}
	}
	return tw.Flush()
}
