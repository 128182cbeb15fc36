package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist/pagingfake"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// auditOptions are the command's defaults with a policy file and an output format.
func auditOptions(policyFile, output string) AuditOptions {
	return AuditOptions{PolicyFile: policyFile, Output: output, Cluster: defaultClusterOptions(),
		Reports: defaultReportOptions()}
}

func TestAuditOptionsValidate(t *testing.T) {
	tests := map[string]struct {
		o       AuditOptions
		wantErr []string
	}{
		"a policy and the table format are enough":  {o: auditOptions("p.yaml", "table")},
		"json is an output format":                  {o: auditOptions("p.yaml", "json")},
		"policyreport and report print the reports": {o: auditOptions("p.yaml", "policyreport")},
		"report prints Open Reports":                {o: auditOptions("p.yaml", "report")},
		"the policy is required and yaml is not a format": {
			o:       auditOptions("", "yaml"),
			wantErr: []string{"--policy is required", "-o must be one of table, json, policyreport, report, got \"yaml\""},
		},
		"the timeout, the chunk size and the result limit must be positive": {
			o: AuditOptions{PolicyFile: "p.yaml", Output: "table"},
			wantErr: []string{"--timeout must be positive", "--chunk-size must be positive",
				"--max-results must be positive"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.o.Validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.wantErr)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestAuditCommandErrors(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte(`apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: p
mandates:
  - name: m
    namespaces: [team-a]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		args []string
		want string
	}{
		"a missing policy flag is a usage error": {args: []string{"audit"}, want: "--policy is required"},
		"an unreadable kubeconfig names the problem": {
			args: []string{"audit", "--policy", pol, "--kubeconfig", filepath.Join(dir, "missing")},
			want: "load kubeconfig",
		},
		"an invalid policy is refused before the cluster is contacted": {
			args: []string{"audit", "--policy", filepath.Join(dir, "nope.yaml")}, want: "read policy",
		},
		"a chunk size of zero is refused": {
			args: []string{"audit", "--policy", pol, "--chunk-size", "0"}, want: "--chunk-size must be positive",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Execute(t.Context(), tc.args, &stdout, &stderr); code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.want)
			}
		})
	}
}

const wiringPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: wiring
identities:
  - name: tenants
    namespaces: ["team-*"]
    serviceAccounts: [flux-source]
    aws:
      roleARN: arn:aws:iam::111122223333:role/tenant
mandates:
  - name: no-static-git-credentials
    namespaces: ["team-*"]
    kinds: [GitRepository, HelmRepository]
`

func wiringSetup(t *testing.T) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("wiring.yaml", []byte(wiringPolicy), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// staticRepos are n GitRepositories in team-a that keep a Secret, each a violation.
func staticRepos(n int) []client.Object {
	var out []client.Object
	for i := range n {
		out = append(out, &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a",
			Name: fmt.Sprintf("repo-%d", i)}, Spec: sourcev1.GitRepositorySpec{URL: "https://github.com/org/app",
			SecretRef: &meta.LocalObjectReference{Name: "pat"}}})
	}
	return out
}

// exitCode is the code Execute would exit with for err.
func exitCode(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		return 2
	}
}

// deadlineAt answers Lists of kind as client-go does when the context's deadline passes during the request.
func deadlineAt(kind string) func(pagingfake.Call) error {
	return func(call pagingfake.Call) error {
		if call.Kind == kind {
			return fmt.Errorf("Get \"https://api/apis\": %w", context.DeadlineExceeded)
		}
		return nil
	}
}

func TestAuditCluster(t *testing.T) {
	p := wiringSetup(t)
	o := auditOptions("wiring.yaml", "json")
	o.Cluster.ChunkSize = 2
	t.Run("five violations read in pages of --chunk-size print as JSON and exit 1, nothing on stderr", func(t *testing.T) {
		c := pagingfake.New(clusterScheme, staticRepos(5)...)
		var stdout, stderr bytes.Buffer
		err := auditCluster(t.Context(), o, p, c, &stdout, &stderr)
		if exitCode(err) != 1 || !strings.Contains(err.Error(), "5 violations in enforce or warn mode") {
			t.Fatalf("err = %v", err)
		}
		var res struct {
			Findings []struct{ Name string }
			Checked  int
		}
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || len(res.Findings) != 5 || res.Checked != 5 {
			t.Errorf("output (%v):\n%s", err, stdout.String())
		}
		gitPages := 0
		for _, call := range c.Calls() {
			if call.Limit != 2 {
				t.Errorf("%+v not paged by --chunk-size", call)
			}
			if call.Kind == sourcev1.GitRepositoryKind {
				gitPages++
			}
		}
		if gitPages != 3 || stderr.Len() != 0 {
			t.Errorf("%d GitRepository pages (want 3), stderr %q", gitPages, stderr.String())
		}
	})
	t.Run("a deadline part-way prints what was found, marked incomplete, and exits 2 naming --timeout", func(t *testing.T) {
		c := pagingfake.New(clusterScheme, staticRepos(3)...)
		c.Fail = deadlineAt(sourcev1.HelmRepositoryKind)
		table := o
		table.Output = "table"
		var stdout, stderr bytes.Buffer
		err := auditCluster(t.Context(), table, p, c, &stdout, &stderr)
		if exitCode(err) != 2 || !strings.Contains(err.Error(),
			"gave up after --timeout 1m0s while reading HelmRepository: 0 read (3 requests): the report above is incomplete") {
			t.Fatalf("err = %v", err)
		}
		out := stdout.String()
		if !strings.HasPrefix(out, "incomplete: list HelmRepository: ") || strings.Count(out, "\nteam-a  ") != 3 {
			t.Errorf("stdout:\n%s", out)
		}
	})
}

func TestAuditClusterReports(t *testing.T) {
	p := wiringSetup(t)
	t.Run("-o policyreport prints the namespace's PolicyReport, its results the violations", func(t *testing.T) {
		c := pagingfake.New(clusterScheme, staticRepos(2)...)
		var stdout, stderr bytes.Buffer
		err := auditCluster(t.Context(), auditOptions("wiring.yaml", "policyreport"), p, c, &stdout, &stderr)
		if exitCode(err) != 1 {
			t.Fatalf("err = %v", err)
		}
		var r struct {
			Kind     string
			Metadata struct{ Name, Namespace string }
			Results  []struct{ Policy, Rule, Result string }
		}
		out := stdout.String()
		if err := yaml.Unmarshal([]byte(strings.TrimPrefix(out, "---\n")), &r); err != nil || strings.Count(out, "---\n") != 1 {
			t.Fatalf("output (%v):\n%s", err, out)
		}
		if r.Kind != "PolicyReport" || r.Metadata.Namespace != "team-a" || len(r.Results) != 2 ||
			r.Results[0].Rule != "spec.secretRef" || r.Results[0].Result != "fail" {
			t.Errorf("report %+v", r)
		}
	})
	t.Run("--fail-on-violations=false exits 0 with violations", func(t *testing.T) {
		c := pagingfake.New(clusterScheme, staticRepos(2)...)
		o := auditOptions("wiring.yaml", "report")
		o.Reports.FailOnViolations = false
		var stdout, stderr bytes.Buffer
		if err := auditCluster(t.Context(), o, p, c, &stdout, &stderr); err != nil ||
			!strings.Contains(stdout.String(), "kind: Report\n") {
			t.Errorf("err = %v, stdout:\n%s", err, stdout.String())
		}
	})
	t.Run("-o report after a read stopped early prints no report and exits 2", func(t *testing.T) {
		c := pagingfake.New(clusterScheme, staticRepos(3)...)
		c.Fail = deadlineAt(sourcev1.HelmRepositoryKind)
		var stdout, stderr bytes.Buffer
		err := auditCluster(t.Context(), auditOptions("wiring.yaml", "report"), p, c, &stdout, &stderr)
		if exitCode(err) != 2 || stdout.Len() != 0 {
			t.Fatalf("err = %v, stdout:\n%s", err, stdout.String())
		}
	})
	t.Run("--apply after a read stopped early writes nothing and exits 2", func(t *testing.T) {
		c := pagingfake.New(clusterScheme, staticRepos(3)...)
		c.Fail = deadlineAt(sourcev1.HelmRepositoryKind)
		o := auditOptions("wiring.yaml", "table")
		o.Reports.Apply = true
		var stdout, stderr bytes.Buffer
		err := auditCluster(t.Context(), o, p, c, &stdout, &stderr)
		if exitCode(err) != 2 || strings.Contains(stderr.String(), "written") {
			t.Fatalf("err = %v, stderr %q", err, stderr.String())
		}
		for _, call := range c.Calls() {
			if call.Kind == "PolicyReport" || call.Kind == "Report" {
				t.Errorf("the reports were read: %+v", call)
			}
		}
	})
}
