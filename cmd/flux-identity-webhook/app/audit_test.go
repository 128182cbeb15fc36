package app

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook"
)

func TestAuditOptionsValidate(t *testing.T) {
	tests := map[string]struct {
		o       AuditOptions
		wantErr []string
	}{
		"a policy and the table format are enough": {o: AuditOptions{PolicyFile: "p.yaml", Output: "table"}},
		"json is an output format":                 {o: AuditOptions{PolicyFile: "p.yaml", Output: "json"}},
		"the policy is required and yaml is not a format": {
			o:       AuditOptions{Output: "yaml"},
			wantErr: []string{"--policy is required", "-o must be table or json"},
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

var auditFixture = AuditResult{
	Checked: 3,
	Findings: []Finding{
		{Kind: "GitRepository", Namespace: "team-a", Name: "app", Violations: []webhook.SourceViolation{{
			Mandate: "no-static-git-credentials", Mode: policy.ModeEnforce, Field: "spec.secretRef",
			Message: "mandate no-static-git-credentials: remove spec.secretRef, set spec.provider: azure (identity tenants)",
		}}},
		{Kind: "Bucket", Namespace: "quiet", Name: "b", Violations: []webhook.SourceViolation{{
			Mandate: "quiet", Mode: policy.ModeOff, Field: "spec.secretRef", Message: "mandate quiet: remove spec.secretRef",
		}}},
	},
}

func TestWriteAudit(t *testing.T) {
	t.Run("the table has one row per violation with mandate, mode, field and message", func(t *testing.T) {
		var out bytes.Buffer
		if err := writeAudit(&out, "table", auditFixture); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAMESPACE") {
			t.Fatalf("want a header and two rows, got:\n%s", out.String())
		}
		for _, want := range []string{"team-a", "GitRepository", "app", "enforce", "spec.secretRef",
			"set spec.provider: azure (identity tenants)"} {
			if !strings.Contains(lines[1], want) {
				t.Errorf("row %q lacks %q", lines[1], want)
			}
		}
	})
	t.Run("json round-trips the findings with lower-case keys", func(t *testing.T) {
		var out bytes.Buffer
		if err := writeAudit(&out, "json", auditFixture); err != nil {
			t.Fatal(err)
		}
		var back AuditResult
		if err := json.Unmarshal(out.Bytes(), &back); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, out.String())
		}
		if back.Checked != 3 || len(back.Findings) != 2 || back.Findings[0].Violations[0].Mandate != "no-static-git-credentials" {
			t.Errorf("round trip lost data: %+v", back)
		}
		if !strings.Contains(out.String(), `"message": "mandate no-static-git-credentials:`) {
			t.Errorf("json keys are not the documented ones:\n%s", out.String())
		}
	})
	t.Run("no findings says how many sources were checked, and json still gives an empty list", func(t *testing.T) {
		var table, js bytes.Buffer
		if err := writeAudit(&table, "table", AuditResult{Checked: 7}); err != nil {
			t.Fatal(err)
		}
		if err := writeAudit(&js, "json", AuditResult{Checked: 7}); err != nil {
			t.Fatal(err)
		}
		if table.String() != "No violations in 7 Flux sources.\n" || !strings.Contains(js.String(), `"findings": []`) {
			t.Errorf("table %q, json %q", table.String(), js.String())
		}
	})
}

func TestAuditBlockingIgnoresOffMandates(t *testing.T) {
	if got := auditFixture.blocking(); got != 1 {
		t.Errorf("blocking = %d, want 1 (the off mandate's violation does not count)", got)
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
