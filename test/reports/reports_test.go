// Package reports runs `audit --apply` against a real kube-apiserver serving Flux's CRDs and the report CRDs of the
// modules that publish them (PolicyReport from Kyverno's, Report from reports-api; `make report-crds`), as the
// chart's background audit runs it: impersonating the chart's audit ServiceAccount, bound by the ClusterRole the chart
// renders. A seeded generator spreads violating and clean sources over namespaces under an enforce mandate, a warn
// mandate and none; the reports read back through the API server must hold exactly the expected results, and a rerun
// after fixes must drop what was fixed.
package reports

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/fluxidentity/flux-identity-webhook/cmd/flux-identity-webhook/app"
	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/internal/reports"
	"github.com/fluxidentity/flux-identity-webhook/test/harness"
)

const (
	release   = "flux-identity-webhook"
	releaseNS = "flux-identity-system"
	auditSA   = release + "-audit"
	seed      = 21
)

// The policy: an enforce mandate over team-*, a warn mandate over lab-*; other-* is under none.
const auditPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: reports
mandates:
  - name: strict
    namespaces: ["team-*"]
  - name: soft
    namespaces: ["lab-*"]
    mode: warn
`

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(sourcev1.AddToScheme(s))
	return s
}()

// env is the control plane every test shares: admin is the test's own client, kubeconfig the audit's (the chart's
// ServiceAccount, impersonated), policyFile the policy above.
var env struct {
	admin      client.Client
	kubeconfig string
	policyFile string
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := harness.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dirs := []string{envOr("FLUX_CRDS_DIR", filepath.Join(root, "bin", "crds")),
		envOr("REPORT_CRDS_DIR", filepath.Join(root, "bin", "report-crds"))}
	for _, d := range dirs {
		if _, err := os.Stat(d); err != nil {
			fmt.Fprintf(os.Stderr, "%s is missing: run `make envtest-bins flux-crds report-crds helm` first\n", d)
			return 1
		}
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		_ = os.Setenv("KUBEBUILDER_ASSETS", filepath.Join(root, "bin", "k8s"))
	}
	te := &envtest.Environment{CRDDirectoryPaths: dirs, ErrorIfCRDPathMissing: true, Scheme: scheme}
	cfg, err := te.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start control plane:", err)
		return 1
	}
	defer func() { _ = te.Stop() }()
	if env.admin, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "reports-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	if err := setUp(root, dir, te.KubeConfig); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// setUp writes the policy, installs the chart's audit ServiceAccount and RBAC as `helm template` renders them for it, and
// writes a kubeconfig that impersonates that ServiceAccount, with the groups the API server gives every
// ServiceAccount token.
func setUp(root, dir string, adminKubeconfig []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env.policyFile = filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(env.policyFile, []byte(auditPolicy), 0o600); err != nil {
		return err
	}
	if err := env.admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: releaseNS}}); err != nil {
		return err
	}
	helm := envOr("HELM", filepath.Join(root, "bin", "helm"))
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, helm, "template", release, filepath.Join(root, "charts", release),
		"--namespace", releaseNS, "--set", "audit.enabled=true", "--set-file", "policy="+env.policyFile,
		"--show-only", "templates/audit-rbac.yaml")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("helm template (%s): %w: %s", helm, err, errOut.String())
	}
	objs := []client.Object{&corev1.ServiceAccount{}, &rbacv1.ClusterRole{}, &rbacv1.ClusterRoleBinding{}}
	docs := strings.Split(out.String(), "\n---\n")
	if len(docs) != len(objs) {
		return fmt.Errorf("the chart's audit RBAC has %d documents, want %d:\n%s", len(docs), len(objs), out.String())
	}
	for i, doc := range docs {
		if err := utilyaml.UnmarshalStrict([]byte(doc), objs[i]); err != nil {
			return fmt.Errorf("decode %T: %w", objs[i], err)
		}
		if err := env.admin.Create(ctx, objs[i]); err != nil {
			return fmt.Errorf("create %T: %w", objs[i], err)
		}
	}
	cfg, err := clientcmd.Load(adminKubeconfig)
	if err != nil {
		return err
	}
	for _, auth := range cfg.AuthInfos {
		auth.Impersonate = "system:serviceaccount:" + releaseNS + ":" + auditSA
		auth.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + releaseNS,
			"system:authenticated"}
	}
	env.kubeconfig = filepath.Join(dir, "audit.kubeconfig")
	return clientcmd.WriteToFile(*cfg, env.kubeconfig)
}

// source is one generated Flux source and whether it keeps a Secret.
type source struct {
	kind, namespace, name string
	secret                bool
}

func (s source) object() client.Object {
	om := metav1.ObjectMeta{Namespace: s.namespace, Name: s.name}
	interval := metav1.Duration{Duration: time.Minute}
	var ref *meta.LocalObjectReference
	if s.secret {
		ref = &meta.LocalObjectReference{Name: "creds"}
	}
	switch s.kind {
	case sourcev1.GitRepositoryKind:
		return &sourcev1.GitRepository{ObjectMeta: om, Spec: sourcev1.GitRepositorySpec{
			URL: "https://git.example.com/" + s.name, Interval: interval, SecretRef: ref}}
	case sourcev1.HelmRepositoryKind:
		return &sourcev1.HelmRepository{ObjectMeta: om, Spec: sourcev1.HelmRepositorySpec{
			URL: "https://charts.example.com/" + s.name, Interval: interval, SecretRef: ref}}
	default:
		return &sourcev1.OCIRepository{ObjectMeta: om, Spec: sourcev1.OCIRepositorySpec{
			URL: "oci://registry.example.com/" + s.name, Interval: interval, SecretRef: ref}}
	}
}

// generate spreads sources over three namespaces of each kind: one in four keeps a Secret, and every team and lab
// namespace has at least two violations (so fixing one leaves its report).
func generate() []source {
	r := rand.New(rand.NewPCG(seed, seed))
	kinds := []string{sourcev1.GitRepositoryKind, sourcev1.HelmRepositoryKind, sourcev1.OCIRepositoryKind}
	var out []source
	for _, prefix := range []string{"team", "lab", "other"} {
		for n := range 3 {
			ns := fmt.Sprintf("%s-%d", prefix, n)
			for i := range 8 + r.IntN(8) {
				out = append(out, source{kind: kinds[r.IntN(len(kinds))], namespace: ns,
					name: fmt.Sprintf("src-%02d", i), secret: i < 2 || r.IntN(4) == 0})
			}
		}
	}
	return out
}

// result is what a report says about one violation, and what the test expects of it.
type result struct {
	namespace, kind, name, policy, rule string
	result                              openreportsv1alpha1.Result
	severity                            openreportsv1alpha1.ResultSeverity
}

// expected are the results the policy gives the sources: a Secret is a violation of the namespace's mandate.
func expected(sources []source) []result {
	var out []result
	for _, s := range sources {
		if !s.secret {
			continue
		}
		switch {
		case strings.HasPrefix(s.namespace, "team-"):
			out = append(out, result{s.namespace, s.kind, s.name, "strict", "spec.secretRef", "fail", "high"})
		case strings.HasPrefix(s.namespace, "lab-"):
			out = append(out, result{s.namespace, s.kind, s.name, "soft", "spec.secretRef", "warn", "medium"})
		}
	}
	return sorted(out)
}

func sorted(rs []result) []result {
	slices.SortFunc(rs, func(a, b result) int {
		return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
	})
	return rs
}

// audit runs the command as the chart's CronJob does, in pages of 3, and returns its exit code and stderr.
func audit(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := app.Execute(t.Context(), append([]string{"audit", "--policy", env.policyFile, "--kubeconfig",
		env.kubeconfig, "--chunk-size", "3"}, args...), &stdout, &stderr)
	return code, stderr.String()
}

// readBack lists api's reports through the API server and returns the results of ours, the namespaces holding one,
// and every report's name by namespace (ours and others').
func readBack(t *testing.T, api reports.API) (results []result, ours []string, all map[string][]string) {
	t.Helper()
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(api.GroupVersionKind().GroupVersion().WithKind(api.Kind + "List"))
	if err := env.admin.List(t.Context(), list); err != nil {
		t.Fatal(err)
	}
	all = map[string][]string{}
	for _, item := range list.Items {
		all[item.GetNamespace()] = append(all[item.GetNamespace()], item.GetName())
		if item.GetLabels()[keys.LabelManagedBy] != keys.ReportSource {
			continue
		}
		ours = append(ours, item.GetNamespace())
		raw, err := json.Marshal(item.Object)
		if err != nil {
			t.Fatal(err)
		}
		var r openreportsv1alpha1.Report // a PolicyReport has the same fields but the top-level source
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		var sum openreportsv1alpha1.ReportSummary
		for _, res := range r.Results {
			if len(res.Subjects) != 1 || res.Subjects[0].Namespace != item.GetNamespace() ||
				res.Source != keys.ReportSource || !strings.HasPrefix(res.Description, "["+res.Policy+"] ") {
				t.Errorf("%s %s: result %+v", api.Kind, item.GetNamespace(), res)
				continue
			}
			s := res.Subjects[0]
			if s.UID == "" || s.APIVersion != sourcev1.GroupVersion.String() {
				t.Errorf("%s %s: subject %+v", api.Kind, item.GetNamespace(), s)
			}
			results = append(results, result{s.Namespace, s.Kind, s.Name, res.Policy, res.Rule, res.Result, res.Severity})
			switch res.Result {
			case "fail":
				sum.Fail++
			case "warn":
				sum.Warn++
			}
		}
		if r.Summary != sum {
			t.Errorf("%s %s: summary %+v, results count %+v", api.Kind, item.GetNamespace(), r.Summary, sum)
		}
	}
	slices.Sort(ours)
	return sorted(results), ours, all
}

func namespacesOf(rs []result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.namespace)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func diff(got, want []result) string {
	var b strings.Builder
	for _, r := range want {
		if !slices.Contains(got, r) {
			fmt.Fprintf(&b, "missing %v\n", r)
		}
	}
	for _, r := range got {
		if !slices.Contains(want, r) {
			fmt.Fprintf(&b, "unexpected %v\n", r)
		}
	}
	return b.String()
}

// holdReports reads both formats back and holds them to want: exactly its results, one report of ours in each of its
// namespaces and none elsewhere, the foreign report kept. It returns every report's name by namespace, by kind.
func holdReports(t *testing.T, when string, want []result) map[string]map[string][]string {
	t.Helper()
	out := map[string]map[string][]string{}
	for _, api := range reports.APIs {
		got, ours, all := readBack(t, api)
		if d := diff(got, want); d != "" {
			t.Errorf("%s %s:\n%s", api.Kind, when, d)
		}
		if !slices.Equal(ours, namespacesOf(want)) {
			t.Errorf("%ss %s in %v, want %v", api.Kind, when, ours, namespacesOf(want))
		}
		if api == reports.PolicyReport && !slices.Contains(all["team-0"], "kyverno-report") {
			t.Errorf("the foreign report is gone %s: %v", when, all)
		}
		out[api.Kind] = all
	}
	return out
}

func TestAuditApplyWritesAndReplacesReports(t *testing.T) {
	ctx := t.Context()
	sources := generate()
	for _, ns := range []string{"team-0", "team-1", "team-2", "lab-0", "lab-1", "lab-2", "other-0", "other-1", "other-2"} {
		if err := env.admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range sources {
		if err := env.admin.Create(ctx, s.object()); err != nil {
			t.Fatalf("create %v: %v", s, err)
		}
	}
	// Another tool's report in a namespace we write to: never ours to replace or delete.
	foreign := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
		"metadata": map[string]any{"name": "kyverno-report", "namespace": "team-0"},
		"summary":  map[string]any{"pass": int64(1)},
	}}
	if err := env.admin.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}

	want := expected(sources)
	t.Logf("%d sources, %d violations in %v", len(sources), len(want), namespacesOf(want))
	code, stderr := audit(t, "--apply")
	if code != 1 || !strings.Contains(stderr, fmt.Sprintf("PolicyReports: %d written, 0 deleted", len(namespacesOf(want)))) {
		t.Fatalf("first run: exit %d, stderr:\n%s", code, stderr)
	}
	holdReports(t, "after the first run", want)

	// Fix one violation in team-0 and every violation in lab-1; delete a violating source in team-1.
	fixedTeam0, deletedTeam1 := false, false
	for i, s := range sources {
		switch {
		case !s.secret:
		case s.namespace == "team-0" && !fixedTeam0, s.namespace == "lab-1":
			obj := s.object()
			if err := env.admin.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
				t.Fatal(err)
			}
			p := client.MergeFrom(obj.DeepCopyObject().(client.Object))
			sources[i].secret = false
			clean := sources[i].object()
			clean.SetResourceVersion(obj.GetResourceVersion())
			if err := env.admin.Patch(ctx, clean, p); err != nil {
				t.Fatal(err)
			}
			fixedTeam0 = fixedTeam0 || s.namespace == "team-0"
		case s.namespace == "team-1" && !deletedTeam1:
			if err := env.admin.Delete(ctx, s.object()); err != nil {
				t.Fatal(err)
			}
			deletedTeam1, sources[i].secret = true, false
		}
	}
	want2 := expected(sources)
	if len(want2) >= len(want) || slices.Contains(namespacesOf(want2), "lab-1") {
		t.Fatalf("the fixes left %d of %d violations in %v", len(want2), len(want), namespacesOf(want2))
	}
	code, stderr = audit(t, "--apply", "--fail-on-violations=false")
	if code != 0 || !strings.Contains(stderr, fmt.Sprintf("Reports: %d written, 1 deleted", len(namespacesOf(want2)))) {
		t.Fatalf("rerun: exit %d, stderr:\n%s", code, stderr)
	}
	for kind, all := range holdReports(t, "after the fixes", want2) {
		if len(all["lab-1"]) != 0 {
			t.Errorf("%s: lab-1, clean now, still has %v", kind, all["lab-1"])
		}
	}

	t.Run("a run stopped by --timeout writes nothing", func(t *testing.T) {
		s := source{kind: sourcev1.GitRepositoryKind, namespace: "lab-1", name: "late", secret: true}
		if err := env.admin.Create(ctx, s.object()); err != nil {
			t.Fatal(err)
		}
		code, stderr := audit(t, "--apply", "--timeout", "1ns")
		if code != 2 || strings.Contains(stderr, "written") {
			t.Fatalf("exit %d, stderr:\n%s", code, stderr)
		}
		for _, api := range reports.APIs {
			if got, _, _ := readBack(t, api); diff(got, want2) != "" {
				t.Errorf("%s changed:\n%s", api.Kind, diff(got, want2))
			}
		}
	})
}
