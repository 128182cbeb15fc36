package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/policy/trust"
	"github.com/fluxidentity/flux-identity-webhook/webhook"
)

// DoctorOptions configure doctor.
type DoctorOptions struct {
	PolicyFile string
	Kubeconfig string
	Context    string
	Output     string
	Timeout    time.Duration
}

func (o *DoctorOptions) bindFlags(policyFlags, clusterFlags, outFlags *pflag.FlagSet) {
	policyFlags.StringVar(&o.PolicyFile, "policy", "", "Policy file (required).")
	clusterFlags.StringVar(&o.Kubeconfig, "kubeconfig", "",
		"Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).")
	clusterFlags.StringVar(&o.Context, "context", "", "Kubeconfig context (default: the current context).")
	clusterFlags.DurationVar(&o.Timeout, "timeout", o.Timeout, "Give up talking to the cluster after this long.")
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
	if o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout must be positive, got %s", o.Timeout))
	}
	return errors.Join(errs...)
}

func newDoctorCommand() *cobra.Command {
	o := DoctorOptions{Output: trust.FormatText, Timeout: time.Minute}
	policyFlags := pflag.NewFlagSet("policy", pflag.ContinueOnError)
	clusterFlags := pflag.NewFlagSet("cluster", pflag.ContinueOnError)
	outFlags := pflag.NewFlagSet("output", pflag.ContinueOnError)
	o.bindFlags(policyFlags, clusterFlags, outFlags)
	cmd := &cobra.Command{
		Use:   "doctor --policy FILE [--kubeconfig PATH]",
		Short: "Check a live cluster against the policy",
		Long: `Read the cluster (it needs get/list on namespaces, on serviceaccounts, pods, replicasets and deployments in the
namespaces the policy maps, and on the Flux source kinds cluster-wide) and report:
  serviceaccount  a mapped ServiceAccount that does not exist, or whose identity annotations or labels differ from
                  what the webhook writes for it;
  pod             a running pod of a mapped ServiceAccount without the identity its ServiceAccount now carries:
                  the cloud's variables (AWS_ROLE_ARN, AZURE_CLIENT_ID, GOOGLE_APPLICATION_CREDENTIALS with
                  injection: full) are absent or name another identity. Webhooks inject at pod creation only, so
                  such a pod started before its ServiceAccount was annotated and needs a restart (or no webhook
                  injected it at all);
  deployment      a Deployment of an Azure-mapped ServiceAccount whose pod template lacks the
                  azure.workload.identity/use label the Azure webhook selects pods by;
  audit           a Flux source violating a mandate in enforce or warn mode, as the audit command reports it.
Each finding prints the command that fixes it. Exit code 1 when anything was found.`,
		Example: `  flux-identity-webhook doctor --policy policy.yaml
  flux-identity-webhook doctor --policy policy.yaml --kubeconfig ~/.kube/prod -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return RunDoctor(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	addSections(cmd,
		flagSection{"Policy", policyFlags},
		flagSection{"Cluster", clusterFlags},
		flagSection{"Output", outFlags},
	)
	return cmd
}

// doctorScheme knows the built-in kinds and the Flux source kinds audit lists.
var doctorScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(sourcev1.AddToScheme(s))
	utilruntime.Must(imagev1.AddToScheme(s))
	return s
}()

// RunDoctor connects to the cluster, diagnoses it and prints the findings; problems exit 1.
func RunDoctor(ctx context.Context, o DoctorOptions, stdout io.Writer) error {
	p, err := policy.Load(o.PolicyFile)
	if err != nil {
		return err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: o.Context}).ClientConfig()
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.UserAgent = "flux-identity-webhook-doctor"
	c, err := client.New(cfg, client.Options{Scheme: doctorScheme})
	if err != nil {
		return fmt.Errorf("create Kubernetes client for %s: %w", cfg.Host, err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	findings, notes, err := diagnose(ctx, c, p, time.Now())
	if err != nil {
		return err
	}
	report := doctorReport{Findings: findings, Problems: len(findings), Notes: notes}
	if o.Output == trust.FormatText {
		err = writeDoctorText(stdout, report)
	} else {
		err = trust.WriteStructured(stdout, o.Output, report)
	}
	if err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	if len(findings) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d problems found", len(findings))}
	}
	return nil
}

// Doctor checks, in the order they print.
const (
	checkServiceAccount = "serviceaccount"
	checkPod            = "pod"
	checkDeployment     = "deployment"
	checkAudit          = "audit"
)

// doctorFinding is one problem in the cluster and the command that fixes it.
type doctorFinding struct {
	Check     string `json:"check"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Identity  string `json:"identity,omitempty"`
	Problem   string `json:"problem"`
	Fix       string `json:"fix"`
}

type doctorReport struct {
	Findings []doctorFinding `json:"findings"`
	Problems int             `json:"problems"`
	// Notes say what could not be checked (a Flux kind the cluster does not serve).
	Notes []string `json:"notes,omitempty"`
}

// diagnose reads the namespaces the policy maps identities in and checks their ServiceAccounts, pods and
// Deployments, then audits every Flux source against the mandates as admission would at now.
func diagnose(ctx context.Context, c client.Reader, p *policy.Policy, now time.Time) ([]doctorFinding, []string, error) {
	namespaces, err := mappedNamespaces(ctx, c, p)
	if err != nil {
		return nil, nil, err
	}
	var out []doctorFinding
	exists := map[string]bool{} // NS/SA
	for _, ns := range namespaces {
		found, err := diagnoseNamespace(ctx, c, p, ns, exists)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, found...)
	}
	out = append(out, missingServiceAccounts(p, namespaces, exists)...)
	flux, notes, err := diagnoseFlux(ctx, c, p)
	if err != nil {
		return nil, nil, err
	}
	out = append(out, flux...)
	audit, err := auditSources(ctx, c, p, now)
	if err != nil {
		return nil, nil, err
	}
	for _, k := range audit.SkippedKinds {
		notes = append(notes, "the cluster does not serve "+k+": its sources were not audited")
	}
	for _, f := range audit.Findings {
		for _, v := range f.Violations {
			// Mandates in mode off only log; audit does not count them either.
			if v.Mode == policy.ModeOff {
				continue
			}
			out = append(out, doctorFinding{Check: checkAudit, Namespace: f.Namespace, Name: f.Kind + "/" + f.Name,
				Problem: v.Field + " violates mandate " + v.Mandate + " (" + string(v.Mode) + ")", Fix: v.Message})
		}
	}
	order := map[string]int{checkFlux: 0, checkServiceAccount: 1, checkPod: 2, checkDeployment: 3, checkAudit: 4}
	slices.SortStableFunc(out, func(a, b doctorFinding) int {
		return cmp.Or(cmp.Compare(order[a.Check], order[b.Check]), cmp.Compare(a.Namespace, b.Namespace),
			cmp.Compare(a.Name, b.Name))
	})
	return out, notes, nil
}

// mappedNamespaces lists the existing namespaces some identity entry can match.
func mappedNamespaces(ctx context.Context, c client.Reader, p *policy.Policy) ([]string, error) {
	var list corev1.NamespaceList
	if err := listAll(ctx, c, &list); err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	var out []string
	for _, ns := range list.Items {
		if namesNamespace(p, ns.Name) {
			out = append(out, ns.Name)
		}
	}
	return out, nil
}

// globMatches matches policy patterns: they hold only [-a-z0-9.*?] (validated at load), none of which path.Match
// treats specially besides '*' and '?'.
func globMatches(pattern, name string) bool {
	ok, _ := path.Match(pattern, name)
	return ok
}

func namesNamespace(p *policy.Policy, namespace string) bool {
	for _, id := range p.Spec.Identities {
		if slices.ContainsFunc(id.Namespaces, func(pat string) bool { return globMatches(pat, namespace) }) {
			return true
		}
	}
	return false
}

func diagnoseNamespace(ctx context.Context, c client.Reader, p *policy.Policy, ns string,
	exists map[string]bool,
) ([]doctorFinding, error) {
	var (
		sas   corev1.ServiceAccountList
		pods  corev1.PodList
		deps  appsv1.DeploymentList
		found []doctorFinding
	)
	for _, l := range []client.ObjectList{&sas, &pods, &deps} {
		if err := listAll(ctx, c, l, client.InNamespace(ns)); err != nil {
			return nil, fmt.Errorf("list %T in %s: %w", l, ns, err)
		}
	}
	for i := range sas.Items {
		sa := &sas.Items[i]
		exists[ns+"/"+sa.Name] = true
		if m, ok := p.IdentityFor(ns, sa.Name); ok {
			if f, bad := checkServiceAccountMetadata(sa, m); bad {
				found = append(found, f)
			}
			if f, bad := checkPullSecrets(p, sa, m); bad {
				found = append(found, f)
			}
		}
	}
	restarts := map[string]int{} // workload -> index in found
	for i := range pods.Items {
		pod := &pods.Items[i]
		m, ok := p.IdentityFor(ns, podServiceAccount(&pod.Spec))
		if !ok {
			continue
		}
		problem, bad := checkPodIdentity(pod, m)
		if !bad {
			continue
		}
		workload, err := podWorkload(ctx, c, pod)
		if err != nil {
			return nil, err
		}
		if j, seen := restarts[workload]; seen {
			if rest, one := strings.CutPrefix(found[j].Problem, "a pod of "+workload+" runs "); one {
				found[j].Problem = "pods of " + workload + " run " + rest
			}
			continue
		}
		restarts[workload] = len(found)
		found = append(found, doctorFinding{Check: checkPod, Namespace: ns, Name: pod.Name, Identity: m.Identity.Name,
			Problem: "a pod of " + workload + " " + problem + startedBefore(pod, sas.Items, m),
			Fix:     restartCommand(ns, workload, pod.Name)})
	}
	for i := range deps.Items {
		d := &deps.Items[i]
		m, ok := p.IdentityFor(ns, podServiceAccount(&d.Spec.Template.Spec))
		if ok && m.Cloud == policy.CloudAzure && m.Identity.Injection != policy.InjectionFull &&
			d.Spec.Template.Labels[keys.LabelAzureUse] != "true" {
			found = append(found, doctorFinding{Check: checkDeployment, Namespace: ns, Name: d.Name,
				Identity: m.Identity.Name,
				Problem:  "pod template lacks label " + keys.LabelAzureUse + `: "true"; the Azure webhook never sees its pods`,
				Fix: "kubectl -n " + ns + " patch deployment " + d.Name + " --type merge -p " + trust.ShellQuote(
					`{"spec":{"template":{"metadata":{"labels":{"`+keys.LabelAzureUse+`":"true"}}}}}`) +
					" (in Git: a kustomize patch on the Deployment, as Flux's bootstrap repository would carry it)"})
		}
	}
	return found, nil
}

// checkServiceAccountMetadata compares a mapped ServiceAccount with exactly what the webhook writes for it.
func checkServiceAccountMetadata(sa *corev1.ServiceAccount, m policy.Match) (doctorFinding, bool) {
	wantAnn, wantLabels := webhook.ServiceAccountMetadata(m)
	var diffs, set, unset []string
	for _, k := range slices.Sorted(maps.Keys(wantAnn)) {
		have, ok := sa.Annotations[k]
		switch {
		case !ok:
			diffs = append(diffs, "annotation "+k+" is missing")
		case have != wantAnn[k]:
			diffs = append(diffs, fmt.Sprintf("annotation %s is %q, want %q", k, have, wantAnn[k]))
		default:
			continue
		}
		set = append(set, k+"="+wantAnn[k])
	}
	for _, k := range keys.IdentityAnnotationKeys {
		if _, granted := wantAnn[k]; !granted {
			if _, ok := sa.Annotations[k]; ok {
				diffs = append(diffs, "annotation "+k+" is set but the policy does not grant it")
				unset = append(unset, k+"-")
			}
		}
	}
	var labels []string
	for _, k := range slices.Sorted(maps.Keys(wantLabels)) {
		if sa.Labels[k] != wantLabels[k] {
			diffs = append(diffs, fmt.Sprintf("label %s is %q, want %q", k, sa.Labels[k], wantLabels[k]))
			labels = append(labels, k+"="+wantLabels[k])
		}
	}
	if len(diffs) == 0 {
		return doctorFinding{}, false
	}
	var fix []string
	if len(set)+len(unset) > 0 {
		fix = append(fix, "kubectl -n "+sa.Namespace+" annotate serviceaccount "+sa.Name+" --overwrite "+
			quoteAll(append(set, unset...)))
	}
	if len(labels) > 0 {
		fix = append(fix, "kubectl -n "+sa.Namespace+" label serviceaccount "+sa.Name+" --overwrite "+quoteAll(labels))
	}
	return doctorFinding{Check: checkServiceAccount, Namespace: sa.Namespace, Name: sa.Name, Identity: m.Identity.Name,
		Problem: strings.Join(diffs, "; "), Fix: strings.Join(fix, " && ")}, true
}

func quoteAll(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = trust.ShellQuote(a)
	}
	return strings.Join(q, " ")
}

// missingServiceAccounts reports the exact namespace/ServiceAccount names of the policy that do not exist. Globs
// cannot be missing: they stand for whatever exists.
func missingServiceAccounts(p *policy.Policy, existingNS []string, exists map[string]bool) []doctorFinding {
	var out []doctorFinding
	for i := range p.Spec.Identities {
		id := &p.Spec.Identities[i]
		for _, ns := range id.Namespaces {
			for _, sa := range id.ServiceAccounts {
				if strings.ContainsAny(ns+sa, "*?") || exists[ns+"/"+sa] {
					continue
				}
				if m, ok := p.IdentityFor(ns, sa); !ok || m.Identity != id {
					continue
				}
				problem := "mapped by the policy but does not exist"
				if !slices.Contains(existingNS, ns) {
					problem += " (namespace " + ns + " does not exist)"
				}
				out = append(out, doctorFinding{Check: checkServiceAccount, Namespace: ns, Name: sa, Identity: id.Name,
					Problem: problem,
					Fix: "kubectl -n " + ns + " create serviceaccount " + sa +
						" (the webhook annotates it), or remove it from identity " + id.Name})
			}
		}
	}
	return out
}

// checkPodIdentity says what is wrong with a running pod of a ServiceAccount mapped to m: the cloud's variables that
// webhooks inject at creation are absent or name another identity. GKE pods annotated for Workload Identity carry
// nothing (the metadata server reads the ServiceAccount), so they are not checked.
func checkPodIdentity(pod *corev1.Pod, m policy.Match) (string, bool) {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed || pod.DeletionTimestamp != nil {
		return "", false
	}
	var (
		name, want, fileVar, skipKey, sep string
	)
	switch {
	case m.Cloud == policy.CloudAWS:
		name, want, fileVar = keys.EnvAWSRoleARN, m.RoleARN, keys.EnvAWSWebIdentityTokenFile
		skipKey, sep = keys.AnnotationAWSSkipContainers, ","
	case m.Cloud == policy.CloudAzure:
		name, want, fileVar = keys.EnvAzureClientID, m.Identity.Azure.ClientID, keys.EnvAzureFederatedTokenFile
		skipKey, sep = keys.AnnotationAzureSkipContainers, ";"
	case m.Identity.Injection == policy.InjectionFull:
		name = keys.EnvGoogleApplicationCredentials
	default:
		return "", false
	}
	skip := map[string]bool{}
	if skipKey != "" {
		for _, c := range strings.Split(pod.Annotations[skipKey], sep) {
			skip[strings.TrimSpace(c)] = true
		}
	}
	for _, c := range pod.Spec.Containers {
		if skip[c.Name] {
			continue
		}
		have, ok := envValue(c.Env, name)
		switch {
		case !ok:
			return "runs without " + name + " in container " + c.Name + ": it started before its ServiceAccount " +
				"was mapped, or no webhook injected it", true
		case want != "" && have != want:
			return fmt.Sprintf("runs with %s=%s in container %s, want %s: it started before its ServiceAccount "+
				"changed (or the ServiceAccount is wrong too)", name, have, c.Name, want), true
		case fileVar != "":
			if _, ok := envValue(c.Env, fileVar); !ok {
				return "runs without " + fileVar + " in container " + c.Name + ": its token is not mounted", true
			}
		}
	}
	return "", false
}

func envValue(env []corev1.EnvVar, name string) (string, bool) {
	for _, e := range env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// startedBefore adds timing evidence when the API server has it: the last write to the ServiceAccount's identity
// annotation (managedFields) after the pod was created.
func startedBefore(pod *corev1.Pod, sas []corev1.ServiceAccount, m policy.Match) string {
	key := keys.AnnotationIdentity
	switch m.Cloud {
	case policy.CloudAWS:
		key = keys.AnnotationAWSRoleARN
	case policy.CloudAzure:
		key = keys.AnnotationAzureClientID
	case policy.CloudGCP:
		key = keys.AnnotationGCPServiceAccount
	}
	for i := range sas {
		sa := &sas[i]
		if sa.Name != podServiceAccount(&pod.Spec) {
			continue
		}
		if t := annotationWrittenAt(sa, key); t != nil && t.After(pod.CreationTimestamp.Time) {
			return fmt.Sprintf(" (pod created %s, ServiceAccount annotation %s last written %s)",
				pod.CreationTimestamp.UTC().Format(time.RFC3339), key, t.UTC().Format(time.RFC3339))
		}
	}
	return ""
}

// annotationWrittenAt is the time of the managedFields entry owning the annotation, if any.
func annotationWrittenAt(obj metav1.Object, key string) *time.Time {
	field := `"f:` + key + `"`
	for _, mf := range obj.GetManagedFields() {
		if mf.FieldsV1 != nil && mf.Time != nil && strings.Contains(string(mf.FieldsV1.Raw), field) {
			t := mf.Time.Time
			return &t
		}
	}
	return nil
}

// podWorkload names what owns a pod, for kubectl rollout restart: deployment/NAME through its ReplicaSet,
// statefulset/NAME, daemonset/NAME; "pod/NAME" for a pod nothing owns.
func podWorkload(ctx context.Context, c client.Reader, pod *corev1.Pod) (string, error) {
	owner := metav1.GetControllerOf(pod)
	if owner == nil {
		return "pod/" + pod.Name, nil
	}
	switch owner.Kind {
	case "ReplicaSet":
		var rs appsv1.ReplicaSet
		err := c.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: owner.Name}, &rs)
		switch {
		case apierrors.IsNotFound(err):
			return "replicaset/" + owner.Name, nil
		case err != nil:
			return "", fmt.Errorf("get ReplicaSet %s/%s: %w", pod.Namespace, owner.Name, err)
		}
		if d := metav1.GetControllerOf(&rs); d != nil && d.Kind == "Deployment" {
			return "deployment/" + d.Name, nil
		}
		return "replicaset/" + owner.Name, nil
	default:
		return strings.ToLower(owner.Kind) + "/" + owner.Name, nil
	}
}

func restartCommand(ns, workload, podName string) string {
	kind, _, _ := strings.Cut(workload, "/")
	switch kind {
	case "deployment", "statefulset", "daemonset":
		return "kubectl -n " + ns + " rollout restart " + workload
	case "pod":
		return "kubectl -n " + ns + " delete pod " + podName + " # then recreate it from its manifest"
	default:
		return "kubectl -n " + ns + " delete pod " + podName + " # its " + kind + " recreates it"
	}
}

func podServiceAccount(spec *corev1.PodSpec) string {
	if spec.ServiceAccountName == "" {
		return "default"
	}
	return spec.ServiceAccountName
}

// listAll lists in pages of 500, so large clusters are read without one huge response.
func listAll(ctx context.Context, c client.Reader, list client.ObjectList, opts ...client.ListOption) error {
	var items []runtime.Object
	cont := ""
	for {
		page := list.DeepCopyObject().(client.ObjectList)
		if err := c.List(ctx, page, append(opts, client.Limit(500), client.Continue(cont))...); err != nil {
			return err
		}
		pageItems, err := meta.ExtractList(page)
		if err != nil {
			return err
		}
		items = append(items, pageItems...)
		if cont = page.GetContinue(); cont == "" {
			return meta.SetList(list, items)
		}
	}
}

func writeDoctorText(w io.Writer, r doctorReport) error {
	for _, n := range r.Notes {
		if _, err := fmt.Fprintln(w, "note: "+n); err != nil {
			return err
		}
	}
	if len(r.Findings) == 0 {
		_, err := fmt.Fprintln(w, "No problems found.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "CHECK\tOBJECT\tIDENTITY\tPROBLEM")
	for _, f := range r.Findings {
		_, _ = fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%s\n", f.Check, f.Namespace, f.Name, f.Identity, f.Problem)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, _ = fmt.Fprintln(w, "\nTo fix:")
	seen := map[string]bool{}
	for _, f := range r.Findings {
		if !seen[f.Fix] {
			seen[f.Fix] = true
			if _, err := fmt.Fprintln(w, "  "+f.Fix); err != nil {
				return err
			}
		}
	}
	return nil
}
