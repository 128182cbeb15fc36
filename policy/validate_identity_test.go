package policy

import (
	"fmt"
	"path/filepath"
	"testing"
)

const (
	gkePool     = "      workloadPool: my-project.svc.id.goog"
	gkeNumber   = `      projectNumber: "123456789012"`
	wipProvider = "      workloadIdentityProvider: projects/123456789012/locations/global/workloadIdentityPools/pool/providers/prov"
	podIdentity = "      mechanism: podIdentity"
)

func TestIdentityModelsAccepted(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, p *Policy)
	}{
		{"a GKE entry with a pool and a project number and no Google service account is direct federation",
			withHeader(nameFlux, "    namespaces: [\"team-*\"]", "    serviceAccounts: [flux-source]", "    gcp:",
				gkePool, gkeNumber),
			func(t *testing.T, p *Policy) {
				m, ok := p.IdentityFor("team-a", "flux-source")
				if !ok || !m.Identity.GCP.Direct() || m.GCPServiceAccount != "" {
					t.Errorf("IdentityFor = %+v, %v; want direct federation without a Google service account", m, ok)
				}
			}},
		{"a provider alone is direct federation outside GKE, and may be fully injected",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    gcp:", wipProvider, "    injection: full"),
			func(t *testing.T, p *Policy) {
				if g := p.Spec.Identities[0].GCP; !g.Direct() || g.WorkloadIdentityProvider == "" {
					t.Errorf("gcp %+v", g)
				}
			}},
		{"an impersonating GKE entry may name its pool and project number",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    gcp:",
				"      serviceAccount: flux-source@my-project.iam.gserviceaccount.com", gkePool, gkeNumber),
			func(t *testing.T, p *Policy) {
				if p.Spec.Identities[0].GCP.Direct() {
					t.Error("an entry with a Google service account is not direct federation")
				}
			}},
		{"mechanism defaults to irsa",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, awsFlowFlux),
			func(t *testing.T, p *Policy) {
				if a := p.Spec.Identities[0].AWS; a.Mechanism != AWSMechanismIRSA || a.PodIdentity() {
					t.Errorf("mechanism %q", a.Mechanism)
				}
			}},
		{"Pod Identity for Flux's controllers in flux.namespaces is accepted, with no audience filled in",
			withHeader(nameFlux, nsFluxSystem, "    serviceAccounts: [source-controller, \"*-controller\"]", "    aws:",
				validRoleLine, podIdentity, "      stsRegionalEndpoints: true", "      tokenExpirationSeconds: 86400"),
			func(t *testing.T, p *Policy) {
				if a := p.Spec.Identities[0].AWS; !a.PodIdentity() || a.Audience != "" {
					t.Errorf("aws %+v: want Pod Identity without an audience", a)
				}
			}},
		{"twenty federated credentials of one Azure identity are accepted",
			withHeader(nameFlux, "    namespaces: [a, b, c, d]", "    serviceAccounts: [s1, s2, s3, s4, s5, s5]", "    azure:",
				azureClientID, azureTenantID),
			nil},
		{"globs are not counted against Azure's bound: trust render counts them once expanded",
			withHeader(nameFlux, "    namespaces: [\"team-*\"]", "    serviceAccounts: [\"*\"]", "    azure:",
				azureClientID, azureTenantID),
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, tt.yaml)
			if len(p.Warnings) != 0 {
				t.Errorf("unexpected warnings: %v", p.Warnings)
			}
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
}

func TestIdentityModelsRejected(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []wantProblem
	}{
		{"a pool without a project number names no principal",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    gcp:", gkePool),
			[]wantProblem{{8, 7, "identities[0].gcp", "set serviceAccount (impersonation), workloadPool and projectNumber"}}},
		{"a project number without a pool names no principal",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    gcp:", gkeNumber),
			[]wantProblem{
				{8, 7, "identities[0].gcp", "set serviceAccount"},
				{8, 22, "identities[0].gcp.projectNumber", "set workloadPool too"},
			}},
		{"a pool that is not PROJECT_ID.svc.id.goog is rejected",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    gcp:", "      workloadPool: my-project", gkeNumber),
			[]wantProblem{{8, 21, "identities[0].gcp.workloadPool", "is not a GKE workload pool"}}},
		{"an unquoted project number is a type error that names the field",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    gcp:", gkePool, "      projectNumber: 123456789012"),
			[]wantProblem{{9, 22, "identities[0].gcp.projectNumber", "expected a string, got number 123456789012"}}},
		{"a project number that is not a number is rejected",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    gcp:", gkePool, `      projectNumber: my-project`),
			[]wantProblem{{9, 22, "identities[0].gcp.projectNumber", "is not a project number"}}},
		{"a GKE pool beside a provider outside GKE is contradictory",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    gcp:", wipProvider, gkePool),
			[]wantProblem{{9, 21, "identities[0].gcp.workloadPool", "set one of them"}}},
		{"a project number beside a provider, whose path holds it, is rejected",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    gcp:", wipProvider, gkeNumber),
			[]wantProblem{{9, 22, "identities[0].gcp.projectNumber", "holds the project number"}}},
		{"GKE direct federation cannot be fully injected: the metadata server serves it",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    gcp:", gkePool, gkeNumber, "    injection: full"),
			[]wantProblem{{10, 16, "identities[0].injection", "needs gcp.workloadIdentityProvider"}}},
		{"an unknown mechanism is rejected",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:", validRoleLine, "      mechanism: PodIdentity"),
			[]wantProblem{{9, 18, "identities[0].aws.mechanism", `must be irsa or podIdentity, got "PodIdentity"`}}},
		{"Pod Identity for a tenant namespace is refused with Flux's reason",
			withHeader(nameFlux, "    namespaces: [flux-system, team-a]", saSourceCtrl, "    aws:", validRoleLine, podIdentity),
			[]wantProblem{{5, 31, "identities[0].namespaces[1]",
				`"team-a" is not one of flux.namespaces (flux-system): ServiceAccounts Flux objects name need mechanism irsa: ` +
					"Flux's object-level identity is IRSA only (fluxcd/pkg/auth aws NewTokenForServiceAccount"}}},
		{"Pod Identity for a namespace glob is refused: it reaches tenants' namespaces",
			withHeader(nameFlux, `    namespaces: ["flux-*"]`, saSourceCtrl, "    aws:", validRoleLine, podIdentity),
			[]wantProblem{{5, 18, "identities[0].namespaces[0]", "EKS Pod Identity serves Flux's controllers only"}}},
		{"Pod Identity for the ServiceAccount every Flux object names by default is refused",
			doc("apiVersion: fluxidentity.dev/v1alpha1", "kind: IdentityPolicy",
				"flux: {namespaces: [flux-system], defaultServiceAccount: flux-source}", "identities:", nameFlux,
				nsFluxSystem, `    serviceAccounts: ["flux-*"]`, "    aws:", validRoleLine, podIdentity),
			[]wantProblem{{7, 23, "identities[0].serviceAccounts[0]", `matches flux.defaultServiceAccount flux-source`}}},
		{"Pod Identity tokens have a fixed audience",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:", validRoleLine, podIdentity, "      audience: sts.amazonaws.com"),
			[]wantProblem{{10, 17, "identities[0].aws.audience", "audience pods.eks.amazonaws.com"}}},
		{"Pod Identity has no full injection, so no region to inject",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:", validRoleLine, podIdentity, "      region: eu-west-1",
				"    injection: full"),
			[]wantProblem{
				{10, 15, "identities[0].aws.region", "written by full injection only"},
				{11, 16, "identities[0].injection", "nothing to add for EKS Pod Identity"},
			}},
		{"one Azure identity given more than twenty credentials by exact names is refused, naming the entries",
			withHeader(nameFlux, "    namespaces: [a, b, c]", "    serviceAccounts: [s1, s2, s3, s4, s5, s6]", "    azure:",
				azureClientID, azureTenantID,
				"  - name: other", "    namespaces: [d]", "    serviceAccounts: [s1, s2, s3]", "    azure:",
				"      clientID: 6A1C5E8E-0A4F-4F39-9D2B-1B8D3F6C2A10", azureTenantID),
			[]wantProblem{{8, 17, "identities[0].azure.clientID",
				"client ID 6a1c5e8e-0a4f-4f39-9d2b-1b8d3f6c2a10 needs 21 federated credentials (flux: 18, other: 3), " +
					"one per namespace/ServiceAccount, and Azure holds at most 20 per identity: split the entries"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("policy.yaml", []byte(tt.yaml), testNow)
			checkProblems(t, "policy.yaml", loadErrorProblems(t, err), tt.want)
		})
	}
}

// One client ID in two Azure clouds is two identities: each cloud's count stands alone.
func TestAzureBoundCountsPerCloud(t *testing.T) {
	var lines []string
	for i, cloud := range []string{"AzurePublicCloud", "AzureUSGovernmentCloud"} {
		lines = append(lines, fmt.Sprintf("  - name: e%d", i), fmt.Sprintf("    namespaces: [a%d, b%d, c%d, d%d]", i, i, i, i),
			"    serviceAccounts: [s1, s2, s3, s4, s5]", "    azure:", azureClientID, azureTenantID, "      cloud: "+cloud)
	}
	mustParse(t, withHeader(lines...))
}

// config/samples/policy.yaml shows every identity model: IRSA, EKS Pod Identity, Azure, GKE impersonation, GKE direct
// federation and direct federation outside GKE.
func TestSampleHasEveryIdentityModel(t *testing.T) {
	p, err := Load(filepath.Join("..", "config", "samples", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	models := map[string]string{}
	for _, id := range p.Spec.Identities {
		switch {
		case id.AWS.PodIdentity():
			models["aws podIdentity"] = id.Name
		case id.AWS != nil:
			models["aws irsa"] = id.Name
		case id.Azure != nil:
			models["azure"] = id.Name
		case !id.GCP.Direct():
			models["gcp impersonation"] = id.Name
		case id.GCP.WorkloadIdentityProvider != "":
			models["gcp direct outside GKE"] = id.Name
		default:
			models["gke direct"] = id.Name
		}
	}
	for _, want := range []string{"aws irsa", "aws podIdentity", "azure", "gcp impersonation", "gke direct", "gcp direct outside GKE"} {
		if models[want] == "" {
			t.Errorf("config/samples/policy.yaml has no %s entry (has %v)", want, models)
		}
	}
}
