package app

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
)

const trustPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: trust-cli
identities:
  - name: flux
    namespaces: [flux-system]
    serviceAccounts: [source-controller]
    aws:
      roleARN: arn:aws:iam::111122223333:role/flux
  - name: tenants
    namespaces: ["team-*"]
    serviceAccounts: [flux]
    azure:
      clientID: 00000000-0000-0000-0000-000000000001
      tenantID: 00000000-0000-0000-0000-0000000000aa
  - name: data
    namespaces: [data]
    serviceAccounts: [flux]
    gcp:
      serviceAccount: fluxcd@data-prod.iam.gserviceaccount.com
`

// sharedPolicy gives role/team-a.flux to team-a/flux through the template and to legacy/flux as a fixed value.
const sharedPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
identities:
  - name: tenants
    namespaces: ["team-*"]
    serviceAccounts: [flux]
    aws:
      roleARN: arn:aws:iam::111122223333:role/{namespace}.{serviceAccount}
  - name: legacy
    namespaces: [legacy]
    serviceAccounts: [flux]
    aws:
      roleARN: arn:aws:iam::111122223333:role/team-a.flux
`

const cliIssuer = "https://oidc.example.com/cluster"

const goodRole = `{"Role": {"Arn": "arn:aws:iam::111122223333:role/flux", "AssumeRolePolicyDocument": {"Version": "2012-10-17",
  "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
    "Principal": {"Federated": "arn:aws:iam::111122223333:oidc-provider/oidc.example.com/cluster"},
    "Condition": {"StringEquals": {"oidc.example.com/cluster:sub": "system:serviceaccount:flux-system:source-controller",
      "oidc.example.com/cluster:aud": "sts.amazonaws.com"}}}]}}}`

const goodCredentials = `[{"name": "team-a_flux", "issuer": "https://oidc.example.com/cluster",
  "subject": "system:serviceaccount:team-a:flux", "audiences": ["api://AzureADTokenExchange"]}]`

const goodBinding = `{"bindings": [{"role": "roles/iam.workloadIdentityUser",
  "members": ["serviceAccount:data-prod.svc.id.goog[data/flux]"]}], "etag": "x", "version": 1}`

func TestTrustCommands(t *testing.T) {
	pol := writeFile(t, "policy.yaml", trustPolicy)
	sharedPol := writeFile(t, "shared.yaml", sharedPolicy)
	role := writeFile(t, "role.json", goodRole)
	wideRole := writeFile(t, "wide.json", strings.Replace(goodRole, `"StringEquals": {"oidc.example.com/cluster:sub"`,
		`"StringLike": {"oidc.example.com/cluster:sub": "system:serviceaccount:*"}, "StringEquals": {"oidc.example.com/cluster:subx"`, 1))
	creds := writeFile(t, "fic.json", goodCredentials)
	slashCreds := writeFile(t, "fic-slash.json", strings.Replace(goodCredentials, "/cluster\"", "/cluster/\"", 1))
	binding := writeFile(t, "iam.json", goodBinding)
	clientID := "00000000-0000-0000-0000-000000000001="
	gsa := "fluxcd@data-prod.iam.gserviceaccount.com="
	base := []string{"--policy", pol, "--issuer", cliIssuer}
	tests := map[string]struct {
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr []string
	}{
		"render prints every cloud and exits 0 when every glob expanded": {
			args:     append([]string{"trust", "render", "--namespaces", "team-a,other"}, base...),
			wantCode: 0,
			wantStdout: []string{"AWS role arn:aws:iam::111122223333:role/flux", `"oidc.example.com/cluster:sub": "system:serviceaccount:flux-system:source-controller"`,
				"team-a_flux  https://oidc.example.com/cluster  system:serviceaccount:team-a:flux",
				"serviceAccount:data-prod.svc.id.goog[data/flux]"},
		},
		"render exits 1 and names the glob it could not expand": {
			args:       append([]string{"trust", "render"}, base...),
			wantCode:   1,
			wantStdout: []string{"AWS role", "NOT RENDERED: identity tenants"},
			wantStderr: []string{`namespaces pattern "team-*" matched no given name: list the names with --namespaces`},
		},
		"render exits 1 and names a role that a template shares with a fixed entry": {
			args:     []string{"trust", "render", "--namespaces", "team-a", "--policy", sharedPol, "--issuer", cliIssuer},
			wantCode: 1,
			wantStdout: []string{"SHARED: role arn:aws:iam::111122223333:role/team-a.flux is shared by " +
				"team-a/flux (identity tenants, templated) and legacy/flux (identity legacy): give them separate roles"},
			wantStderr: []string{"shared through a template:\n  role arn:aws:iam::111122223333:role/team-a.flux"},
		},
		"render -o json lists the shared role with its holders": {
			args: []string{"trust", "render", "--namespaces", "team-a", "--policy", sharedPol, "--issuer", cliIssuer,
				"-o", "json"},
			wantCode: 1,
			wantStdout: []string{`"shared": [ { "cloud": "aws", "target": "arn:aws:iam::111122223333:role/team-a.flux", ` +
				`"holders": [ { "serviceAccount": "team-a/flux", "identity": "tenants", "templated": true }`},
		},
		"render -o shell prints runnable commands with quoted members": {
			args:     []string{"trust", "render", "--cloud", "gcp", "-o", "shell", "--policy", pol},
			wantCode: 0,
			wantStdout: []string{"set -euo pipefail",
				"gcloud iam service-accounts add-iam-policy-binding 'fluxcd@data-prod.iam.gserviceaccount.com' --role='roles/iam.workloadIdentityUser' --member='serviceAccount:data-prod.svc.id.goog[data/flux]'"},
		},
		"render without an issuer for AWS is a usage error": {
			args: []string{"trust", "render", "--policy", pol, "--cloud", "aws"}, wantCode: 2,
			wantStderr: []string{"--issuer is required for AWS (irsa) and Azure identities"},
		},
		"an unknown cloud, format and a plain-http issuer are all reported at once": {
			args: []string{"trust", "render", "--policy", pol, "--cloud", "ibm", "-o", "xml", "--issuer", "http://x"}, wantCode: 2,
			wantStderr: []string{`--cloud must be aws, azure or gcp, got "ibm"`, `-o must be one of text, json, yaml, shell, terraform, ack, got "xml"`, "must be an https URL"},
		},
		"check exits 0 when every ServiceAccount is trusted exactly": {
			args:       append(append([]string{"trust", "check", "--namespaces", "team-a"}, base...), role, clientID+creds, gsa+binding),
			wantCode:   0,
			wantStdout: []string{"ok      aws    flux-system/source-controller", "ok      azure  team-a/flux", "ok      gcp    data/flux"},
		},
		"check reports a trailing-slash issuer and a wildcard role and exits 1": {
			args:     append(append([]string{"trust", "check", "--namespaces", "team-a"}, base...), wideRole, clientID+slashCreds, gsa+binding),
			wantCode: 1,
			wantStdout: []string{"too-broad   aws    flux-system/source-controller", "StringLike oidc.example.com/cluster:sub admits system:serviceaccount:*",
				"mismatched  azure  team-a/flux", "has issuer https://oidc.example.com/cluster/, want https://oidc.example.com/cluster (a trailing slash differs"},
			wantStderr: []string{"2 of 3 ServiceAccounts are not trusted exactly"},
		},
		"check reports pairs without a document as missing": {
			args:       append(append([]string{"trust", "check", "--namespaces", "team-a"}, base...), role),
			wantCode:   1,
			wantStdout: []string{"missing     azure  team-a/flux", "no exported federated credentials for client ID"},
		},
		"check refuses an IAM policy without its Google service account": {
			args:       append(append([]string{"trust", "check"}, base...), binding),
			wantCode:   2,
			wantStderr: []string{"an IAM policy does not name what it governs: pass it as EMAIL="},
		},
		"check needs at least one document": {
			args: append([]string{"trust", "check"}, base...), wantCode: 2,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Execute(t.Context(), tc.args, &stdout, &stderr)
			if code != tc.wantCode {
				t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, stdout.String(), stderr.String())
			}
			// Table columns are compared with runs of spaces squeezed to one.
			squeezed := strings.Join(strings.Fields(stdout.String()), " ")
			for _, want := range tc.wantStdout {
				if !strings.Contains(squeezed, strings.Join(strings.Fields(want), " ")) {
					t.Errorf("stdout does not contain %q:\n%s", want, stdout.String())
				}
			}
			for _, want := range tc.wantStderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr does not contain %q:\n%s", want, stderr.String())
				}
			}
		})
	}
}

func TestTrustCheckJSON(t *testing.T) {
	pol := writeFile(t, "policy.yaml", trustPolicy)
	role := writeFile(t, "role.json", goodRole)
	var stdout, stderr bytes.Buffer
	code := Execute(t.Context(), []string{"trust", "check", "--policy", pol, "--issuer", cliIssuer, "--cloud", "aws",
		"-o", "json", role}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, stdout.String(), stderr.String())
	}
	var report struct {
		Findings []struct{ Status, Namespace, ServiceAccount, Target string }
		Problems int
	}
	if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	if len(report.Findings) != 1 || report.Findings[0].Status != "ok" || report.Problems != 0 ||
		report.Findings[0].Target != "arn:aws:iam::111122223333:role/flux" {
		t.Errorf("report %+v", report)
	}
}

// TestReadmeQuickStartCommandsParse keeps the README's quick start honest: every flux-identity-webhook command it
// shows names a real subcommand and only flags that subcommand has.
func TestReadmeQuickStartCommandsParse(t *testing.T) {
	data, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Quick start\n")
	if !ok {
		t.Fatal("README.md has no Quick start section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	section = strings.ReplaceAll(section, "\\\n", " ")
	var seen []string
	for _, line := range strings.Split(section, "\n") {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, "flux-identity-webhook ")
		if !ok {
			continue
		}
		rest, _, _ = strings.Cut(rest, " > ") // output redirection
		args := strings.Fields(rest)
		root := NewCommand(io.Discard, io.Discard)
		cmd, flags, err := root.Find(args)
		if err != nil || cmd == root {
			t.Errorf("%q: no such command (%v)", line, err)
			continue
		}
		if err := cmd.ParseFlags(flags); err != nil {
			t.Errorf("%q: %v", line, err)
		}
		seen = append(seen, cmd.CommandPath())
	}
	for _, want := range []string{"policy lint", "trust render", "trust check", "doctor"} {
		if !slices.ContainsFunc(seen, func(s string) bool { return strings.HasSuffix(s, want) }) {
			t.Errorf("the quick start does not show %s (it shows %v)", want, seen)
		}
	}
}
