package trust

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

const testIssuer = "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"

var testNames = Names{
	Namespaces:      []string{"team-a", "team-azure", "team-data", "kube-system"},
	ServiceAccounts: []string{"flux-source", "flux-helm", "default"},
}

func loadTestPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	p, err := loadPolicyForFuzz()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func loadPolicyForFuzz() (*policy.Policy, error) {
	data, err := os.ReadFile(filepath.Join("testdata", "policy.yaml"))
	if err != nil {
		return nil, err
	}
	return policy.Parse("testdata/policy.yaml", data, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
}

// TestRenderGolden renders the three-cloud policy in every format and compares with testdata/render.*.golden
// (go test ./policy/trust -run TestRenderGolden -update rewrites them; review the diff).
func TestRenderGolden(t *testing.T) {
	p := loadTestPolicy(t)
	pairs, unresolved := Pairs(p, testNames)
	r, err := Render(pairs, unresolved, nil, Options{Issuer: testIssuer})
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{FormatText, FormatJSON, FormatYAML, FormatShell} {
		t.Run(format, func(t *testing.T) {
			var out bytes.Buffer
			if err := WriteRendered(&out, format, r); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "render."+format+".golden")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("%s differs from %s (run with -update and review the diff):\n%s", format, golden, out.String())
			}
		})
	}
}

// TestRenderShellParses runs bash -n on the shell output: quoting mistakes (a '[' in a GCP member, a quote in a
// JMESPath query) would otherwise only show when someone runs the script against a real account.
func TestRenderShellParses(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	for _, p := range []*policy.Policy{loadTestPolicy(t), loadModels(t)} {
		names := testNames
		if p.Name == "trust-models" {
			names = modelNames()
		}
		pairs, unresolved := Pairs(p, names)
		r, err := Render(pairs, unresolved, nil, Options{Issuer: testIssuer + "/", EKSClusterARN: testCluster})
		if err != nil {
			t.Fatal(err)
		}
		var script bytes.Buffer
		if err := WriteRendered(&script, FormatShell, r); err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(t.Context(), bash, "-n")
		cmd.Stdin = &script
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: bash -n: %v\n%s", p.Name, err, out)
		}
	}
}

func TestPairs(t *testing.T) {
	p := loadTestPolicy(t)
	tests := map[string]struct {
		names          Names
		wantPairs      map[string]string // NS/SA -> identity
		wantUnresolved []string          // identity:pattern
	}{
		"exact names are listed without any given names, globs are reported unresolved": {
			wantPairs: map[string]string{
				"flux-system/source-controller": "flux-controllers", "flux-system/kustomize-controller": "flux-controllers",
				"flux-system/helm-controller": "flux-helm", "flux-system/image-automation-controller": "flux-image-automation",
				"flux-system/notification-controller": "flux-notifications",
				"team-azure/flux-source":              "team-azure", "team-azure/flux-image": "team-azure",
				"team-data/flux-source": "team-data", "team-data/flux-helm": "team-data",
				"legacy/flux-source": "legacy", "team-gov/flux-source": "gov-tenants",
			},
			wantUnresolved: []string{"tenants:team-*", "tenants:flux-*", "sandboxes:sandbox-*"},
		},
		"a glob expands to the given names it matches, and the most specific entry keeps its pairs": {
			names: Names{Namespaces: []string{"team-azure", "team-x", "other"}, ServiceAccounts: []string{"flux-source", "flux-helm"}},
			wantPairs: map[string]string{
				"flux-system/source-controller": "flux-controllers", "flux-system/kustomize-controller": "flux-controllers",
				"flux-system/helm-controller": "flux-helm", "flux-system/image-automation-controller": "flux-image-automation",
				"flux-system/notification-controller": "flux-notifications",
				"team-azure/flux-source":              "team-azure", "team-azure/flux-image": "team-azure",
				"team-azure/flux-helm": "tenants", "team-x/flux-source": "tenants", "team-x/flux-helm": "tenants",
				"team-data/flux-source": "team-data", "team-data/flux-helm": "team-data",
				"legacy/flux-source": "legacy", "team-gov/flux-source": "gov-tenants",
			},
			wantUnresolved: []string{"sandboxes:sandbox-*"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pairs, unresolved := Pairs(p, tc.names)
			got := map[string]string{}
			for _, pr := range pairs {
				got[pr.String()] = pr.Match.Identity.Name
			}
			if len(got) != len(pairs) {
				t.Errorf("a pair is listed twice: %v", pairs)
			}
			for k, v := range tc.wantPairs {
				if got[k] != v {
					t.Errorf("%s: identity %q, want %q", k, got[k], v)
				}
			}
			for k := range got {
				if _, ok := tc.wantPairs[k]; !ok {
					t.Errorf("unexpected pair %s (%s)", k, got[k])
				}
			}
			var un []string
			for _, u := range unresolved {
				un = append(un, u.Identity+":"+u.Pattern)
			}
			if !slices.Equal(un, tc.wantUnresolved) {
				t.Errorf("unresolved %v, want %v", un, tc.wantUnresolved)
			}
		})
	}
}

func TestRenderOptions(t *testing.T) {
	p := loadTestPolicy(t)
	pairs, _ := Pairs(p, testNames)
	tests := map[string]struct {
		clouds  []policy.Cloud
		opts    Options
		wantErr string
		check   func(t *testing.T, r *Rendered)
	}{
		"AWS and Azure need an issuer": {
			wantErr: "--issuer is required",
		},
		"an issuer must be https": {
			opts:    Options{Issuer: "http://oidc.example.com"},
			wantErr: "must be an https URL",
		},
		"GCP alone needs no issuer": {
			clouds: []policy.Cloud{policy.CloudGCP},
			check: func(t *testing.T, r *Rendered) {
				if len(r.AWS)+len(r.Azure) != 0 || len(r.GCP) != 2 {
					t.Errorf("want only the 2 Google service accounts, got %+v", r)
				}
			},
		},
		"--workload-pool replaces the GKE pool but not a provider's pool": {
			clouds: []policy.Cloud{policy.CloudGCP},
			opts:   Options{WorkloadPool: "fleet-host.svc.id.goog"},
			check: func(t *testing.T, r *Rendered) {
				all := ""
				for _, g := range r.GCP {
					all += strings.Join(g.Members, " ") + " "
				}
				for _, want := range []string{"serviceAccount:fleet-host.svc.id.goog[team-data/flux-source]",
					"principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/flux-pool/subject/system:serviceaccount:flux-system:notification-controller"} {
					if !strings.Contains(all, want) {
						t.Errorf("members %s lack %s", all, want)
					}
				}
			},
		},
		"a trailing slash on the issuer is kept for Azure and dropped from AWS keys": {
			opts: Options{Issuer: "https://eastus.oic.prod-aks.azure.com/tenant/cluster/"},
			check: func(t *testing.T, r *Rendered) {
				if got := r.Azure[0].Credentials[0].Issuer; got != "https://eastus.oic.prod-aks.azure.com/tenant/cluster/" {
					t.Errorf("azure issuer %q", got)
				}
				if got := r.AWS[0].TrustPolicy.Statement[0].Principal["Federated"]; got != "arn:aws:iam::111122223333:oidc-provider/eastus.oic.prod-aks.azure.com/tenant/cluster" {
					t.Errorf("aws provider %q", got)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r, err := Render(pairs, nil, tc.clouds, tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, r)
		})
	}
}

func TestCredentialNameIsValidForAzureAndUnique(t *testing.T) {
	long := strings.Repeat("a", 200)
	seen := map[string]string{}
	for _, pr := range []Pair{
		{Namespace: "a-b", ServiceAccount: "c"}, {Namespace: "a", ServiceAccount: "b-c"},
		{Namespace: "ns", ServiceAccount: "sa.with.dots"}, {Namespace: "ns", ServiceAccount: long},
		{Namespace: "ns", ServiceAccount: long + "b"},
	} {
		n := CredentialName(pr)
		if len(n) < 3 || len(n) > 120 || strings.Trim(n, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Errorf("%s: %q is not a valid Azure credential name", pr, n)
		}
		if other, dup := seen[n]; dup {
			t.Errorf("%s and %s share the name %q", pr, other, n)
		}
		seen[n] = pr.String()
	}
}

// TestRenderAzureClouds: each Azure identity is rendered with its cloud's login endpoint and token issuer, the shell
// script switches the az CLI to the cloud before its commands (and back), and one client ID in two clouds is two
// identities.
func TestRenderAzureClouds(t *testing.T) {
	p, err := policy.Parse("clouds", []byte(`apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
identities:
  - name: china
    namespaces: [cn]
    serviceAccounts: [flux]
    azure: {clientID: 6a1c5e8e-0a4f-4f39-9d2b-1b8d3f6c2a10, tenantID: 72f988bf-86f1-41af-91ab-2d7cd011db47, cloud: AzureChinaCloud}
  - name: public
    namespaces: [pub]
    serviceAccounts: [flux]
    azure: {clientID: 6a1c5e8e-0a4f-4f39-9d2b-1b8d3f6c2a10, tenantID: 72f988bf-86f1-41af-91ab-2d7cd011db47}
`), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	pairs, _ := Pairs(p, Names{})
	r, err := Render(pairs, nil, nil, Options{Issuer: testIssuer})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Azure) != 2 {
		t.Fatalf("%d Azure identities, want one per cloud: %+v", len(r.Azure), r.Azure)
	}
	for _, want := range []AzureIdentity{
		{Cloud: "AzureChinaCloud", AuthorityHost: "https://login.chinacloudapi.cn/",
			EntraIssuer: "https://login.chinacloudapi.cn/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"},
		{Cloud: "AzurePublicCloud", AuthorityHost: "https://login.microsoftonline.com/",
			EntraIssuer: "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"},
	} {
		found := false
		for _, a := range r.Azure {
			found = found || (a.Cloud == want.Cloud && a.AuthorityHost == want.AuthorityHost && a.EntraIssuer == want.EntraIssuer)
		}
		if !found {
			t.Errorf("no identity rendered as %+v: %+v", want, r.Azure)
		}
	}
	var out bytes.Buffer
	if err := WriteRendered(&out, FormatShell, r); err != nil {
		t.Fatal(err)
	}
	china := strings.Index(out.String(), "az cloud set --name 'AzureChinaCloud'")
	public := strings.Index(out.String(), "az cloud set --name 'AzureCloud'")
	if china < 0 || public < china {
		t.Errorf("the script does not switch to AzureChinaCloud and then back to AzureCloud:\n%s", out.String())
	}
}
