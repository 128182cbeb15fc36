package trust

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// Cloud-side constants. The Azure audience and the GCP role are fixed by the clouds; AWS's audience comes from the
// policy (default sts.amazonaws.com).
const (
	GCPWorkloadIdentityRole = "roles/iam.workloadIdentityUser"
	awsWebIdentityAction    = "sts:AssumeRoleWithWebIdentity"
	awsPolicyVersion        = "2012-10-17"
	// AzureMaxCredentials is how many federated identity credentials one Azure managed identity can hold.
	AzureMaxCredentials = keys.AzureMaxFederatedCredentials
)

// Options say what the cloud side trusts.
type Options struct {
	// Issuer is the cluster's ServiceAccount token issuer (kube-apiserver --service-account-issuer), exactly as it
	// appears in the tokens' iss claim. Required for AWS and Azure.
	Issuer string
	// WorkloadPool overrides the GKE workload pool of entries that name none (default: PROJECT.svc.id.goog of each
	// Google service account).
	WorkloadPool string
	// EKSClusterARN is the EKS cluster whose Pod Identity associations are rendered and checked. Required for EKS Pod
	// Identity entries.
	EKSClusterARN string
}

// ValidateIssuer checks that an issuer is an https URL without query or fragment, as AWS and Azure require.
func ValidateIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil {
		return fmt.Errorf("issuer %q: %w", issuer, err)
	}
	if u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("issuer %q must be an https URL without user, query or fragment", issuer)
	}
	return nil
}

// AWSProviderPath is the issuer as IAM names its OIDC provider and condition keys: host and path, without the
// scheme and without a trailing slash.
func AWSProviderPath(issuer string) string {
	return strings.TrimSuffix(strings.TrimPrefix(issuer, "https://"), "/")
}

// AWSProviderARN is the IAM OIDC provider of issuer in the account and partition of roleARN.
func AWSProviderARN(roleARN, issuer string) string {
	partition, account := awsARNParts(roleARN)
	return "arn:" + partition + ":iam::" + account + ":oidc-provider/" + AWSProviderPath(issuer)
}

// awsARNParts returns the partition and account of a (validated) role ARN: arn:PARTITION:iam::ACCOUNT:role/NAME.
func awsARNParts(roleARN string) (partition, account string) {
	parts := strings.SplitN(roleARN, ":", 6)
	if len(parts) < 6 {
		return "", ""
	}
	return parts[1], parts[4]
}

// AWSRoleName is the role's name: the last segment of the ARN's resource path.
func AWSRoleName(roleARN string) string {
	return roleARN[strings.LastIndex(roleARN, "/")+1:]
}

// GCPProject is the project of a user-managed Google service account: NAME@PROJECT.iam.gserviceaccount.com.
func GCPProject(email string) string {
	_, domain, _ := strings.Cut(email, "@")
	return strings.TrimSuffix(domain, ".iam.gserviceaccount.com")
}

// GCPMember is the IAM principal of a pair: on GKE serviceAccount:POOL[NS/SA] for impersonation, and for direct
// federation the principal:// of the ServiceAccount in the pool of the project number (principalSet:// of the
// namespace for a namespace pair, NS/*); through a workload identity provider outside GKE the pool's principal for the
// token subject.
func GCPMember(p Pair, workloadPool string) string {
	g := p.Match.Identity.GCP
	if provider := g.WorkloadIdentityProvider; provider != "" {
		poolPath, _, _ := strings.Cut(provider, "/providers/")
		return "principal://iam.googleapis.com/" + poolPath + "/subject/" + p.Subject()
	}
	pool := gkePool(p, workloadPool)
	if g.Direct() {
		base := "iam.googleapis.com/projects/" + g.ProjectNumber + "/locations/global/workloadIdentityPools/" + pool
		if p.NamespaceSet() {
			return "principalSet://" + base + "/namespace/" + p.Namespace
		}
		return "principal://" + base + "/subject/ns/" + p.Namespace + "/sa/" + p.ServiceAccount
	}
	return "serviceAccount:" + pool + "[" + p.Namespace + "/" + p.ServiceAccount + "]"
}

// gkePool is the GKE workload pool of a pair: the entry's, else the one given, else its Google service account's
// project's.
func gkePool(p Pair, workloadPool string) string {
	switch {
	case p.Match.Identity.GCP.WorkloadPool != "":
		return p.Match.Identity.GCP.WorkloadPool
	case workloadPool != "":
		return workloadPool
	}
	return GCPProject(p.Match.GCPServiceAccount) + ".svc.id.goog"
}

// Rendered is the cloud side of a policy.
type Rendered struct {
	Issuer string          `json:"issuer,omitempty"`
	AWS    []AWSRole       `json:"aws,omitempty"`
	Azure  []AzureIdentity `json:"azure,omitempty"`
	GCP    []GCPBinding    `json:"gcp,omitempty"`
	// GCPDirect are the principals of direct federation, which get IAM roles on the resources Flux reads;
	// GCPResourceRoles says which roles on which kind of resource (the policy does not name the resources).
	GCPDirect        []GCPPrincipal    `json:"gcpDirect,omitempty"`
	GCPResourceRoles []GCPResourceRole `json:"gcpResourceRoles,omitempty"`
	// EKSCluster is the cluster of the EKS Pod Identity associations (AWS roles' Associations).
	EKSCluster string       `json:"eksCluster,omitempty"`
	Unresolved []Unresolved `json:"unresolved,omitempty"`
	// Shared are identities a template gives to ServiceAccounts that differ in a name it uses.
	Shared []Shared `json:"shared,omitempty"`
	// Refused is what the cloud will refuse to hold as rendered (an Azure identity over its federated credentials, a
	// Pod Identity role of another account than the cluster).
	Refused []Refusal `json:"refused,omitempty"`
}

// Refusal is one thing the cloud will refuse, and the fix.
type Refusal struct {
	Cloud policy.Cloud `json:"cloud"`
	// Target is the client ID or role ARN.
	Target string `json:"target"`
	// Identities are the policy entries that give it what it cannot hold.
	Identities []string `json:"identities"`
	Message    string   `json:"message"`
}

// AWSRole is the trust policy one IAM role needs: one statement per audience, trusting every ServiceAccount that
// the policy maps to the role through IRSA, and one statement per namespace for those it reaches through EKS Pod
// Identity, which also need their associations.
type AWSRole struct {
	RoleARN         string                   `json:"roleARN"`
	ServiceAccounts []string                 `json:"serviceAccounts"`
	TrustPolicy     PolicyDocument           `json:"trustPolicy"`
	Associations    []PodIdentityAssociation `json:"associations,omitempty"`
}

// PolicyDocument is an IAM policy document as AWS prints it.
type PolicyDocument struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one IAM policy statement of a trust policy: web identity (IRSA) or the EKS Pod Identity service.
type Statement struct {
	Effect    string                    `json:"Effect"`
	Principal map[string]string         `json:"Principal"`
	Action    Actions                   `json:"Action"`
	Condition map[string]map[string]any `json:"Condition"`
}

// Actions are a statement's actions, written as one string when there is one, as AWS prints them.
type Actions []string

// MarshalJSON writes one action as a string and several as a list.
func (a Actions) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// AzureIdentity is a managed identity (or app registration) and the federated credentials it needs.
type AzureIdentity struct {
	ClientID string `json:"clientID"`
	TenantID string `json:"tenantID"`
	// Cloud is the Azure cloud the identity lives in (the policy's azure.cloud); AuthorityHost is that cloud's
	// Microsoft Entra login endpoint, where workloads exchange their ServiceAccount token (the AZURE_AUTHORITY_HOST
	// full injection sets), and EntraIssuer the issuer of the access tokens the tenant returns there.
	Cloud         string                `json:"cloud"`
	AuthorityHost string                `json:"authorityHost"`
	EntraIssuer   string                `json:"entraIssuer"`
	Credentials   []FederatedCredential `json:"credentials"`
}

// newAzureIdentity describes identity a in its cloud.
func newAzureIdentity(a *policy.Azure) AzureIdentity {
	cloud, _ := keys.AzureCloudNamed(a.Cloud)
	return AzureIdentity{ClientID: a.ClientID, TenantID: a.TenantID, Cloud: cloud.Name, AuthorityHost: cloud.AuthorityHost,
		EntraIssuer: cloud.AuthorityHost + a.TenantID + "/v2.0"}
}

// FederatedCredential is one Azure federated identity credential.
type FederatedCredential struct {
	Name      string   `json:"name"`
	Issuer    string   `json:"issuer"`
	Subject   string   `json:"subject"`
	Audiences []string `json:"audiences"`
}

// GCPBinding is the IAM binding a Google service account needs on itself.
type GCPBinding struct {
	ServiceAccount string   `json:"serviceAccount"`
	Role           string   `json:"role"`
	Members        []string `json:"members"`
}

// ErrIssuerRequired is returned when AWS IRSA or Azure pairs are rendered without an issuer.
var ErrIssuerRequired = errors.New("--issuer is required for AWS (irsa) and Azure identities")

// ErrEKSClusterRequired is returned when EKS Pod Identity pairs are rendered or checked without a cluster.
var ErrEKSClusterRequired = errors.New("--eks-cluster-arn is required for EKS Pod Identity identities " +
	"(their associations name the cluster)")

// NeedsIssuer says whether the pair's cloud side names the cluster's token issuer: IRSA and Azure do; GCP names a pool
// and EKS Pod Identity trusts the EKS service.
func NeedsIssuer(p Pair) bool {
	return p.Match.Cloud == policy.CloudAzure || p.Match.Cloud == policy.CloudAWS && !p.Match.Identity.AWS.PodIdentity()
}

// NeedsEKSCluster says whether the pair is reached through EKS Pod Identity, whose associations name a cluster.
func NeedsEKSCluster(p Pair) bool {
	return p.Match.Cloud == policy.CloudAWS && p.Match.Identity.AWS.PodIdentity()
}

// Render builds the cloud side for pairs, grouped per role, client ID and Google service account in the order they
// first appear, and reports the identities a template shares (see Shared). clouds limits the output (all when empty).
func Render(pairs []Pair, unresolved []Unresolved, clouds []policy.Cloud, o Options) (*Rendered, error) {
	r := &Rendered{Issuer: o.Issuer, Unresolved: unresolved}
	want := func(c policy.Cloud) bool { return len(clouds) == 0 || slices.Contains(clouds, c) }
	var rendered []Pair
	for _, p := range pairs {
		if want(p.Match.Cloud) {
			rendered = append(rendered, p)
		}
	}
	if slices.ContainsFunc(rendered, NeedsIssuer) {
		if o.Issuer == "" {
			return nil, ErrIssuerRequired
		}
		if err := ValidateIssuer(o.Issuer); err != nil {
			return nil, err
		}
	}
	if slices.ContainsFunc(rendered, NeedsEKSCluster) {
		if o.EKSClusterARN == "" {
			return nil, ErrEKSClusterRequired
		}
		if err := ValidateEKSClusterARN(o.EKSClusterARN); err != nil {
			return nil, err
		}
		r.EKSCluster = o.EKSClusterARN
	}
	aws := map[string]int{}
	azure := map[string]int{}
	azureEntries := map[string][]string{} // identity key -> entry per credential
	gcp := map[string]int{}
	for _, p := range rendered {
		switch p.Match.Cloud {
		case policy.CloudAWS:
			i, ok := aws[p.Match.RoleARN]
			if !ok {
				i = len(r.AWS)
				aws[p.Match.RoleARN] = i
				r.AWS = append(r.AWS, AWSRole{RoleARN: p.Match.RoleARN,
					TrustPolicy: PolicyDocument{Version: awsPolicyVersion}})
			}
			if p.Match.Identity.AWS.PodIdentity() {
				r.AWS[i].addPodIdentity(p, o.EKSClusterARN)
			} else {
				r.AWS[i].add(p, o.Issuer)
			}
		case policy.CloudAzure:
			a := p.Match.Identity.Azure
			id := newAzureIdentity(a)
			key := id.Cloud + "/" + a.ClientID // a client ID names an identity within one cloud
			i, ok := azure[key]
			if !ok {
				i = len(r.Azure)
				azure[key] = i
				r.Azure = append(r.Azure, id)
			}
			r.Azure[i].Credentials = append(r.Azure[i].Credentials, FederatedCredential{
				Name: CredentialName(p), Issuer: o.Issuer, Subject: p.Subject(), Audiences: []string{keys.AzureAudience},
			})
			azureEntries[key] = append(azureEntries[key], p.Match.Identity.Name)
		case policy.CloudGCP:
			if p.Match.Identity.GCP.Direct() {
				r.GCPDirect = append(r.GCPDirect, GCPPrincipal{Identity: p.Match.Identity.Name,
					ServiceAccount: p.String(), Member: GCPMember(p, o.WorkloadPool)})
				continue
			}
			gsa := p.Match.GCPServiceAccount
			i, ok := gcp[gsa]
			if !ok {
				i = len(r.GCP)
				gcp[gsa] = i
				r.GCP = append(r.GCP, GCPBinding{ServiceAccount: gsa, Role: GCPWorkloadIdentityRole})
			}
			r.GCP[i].Members = append(r.GCP[i].Members, GCPMember(p, o.WorkloadPool))
		}
	}
	if len(r.GCPDirect) > 0 {
		r.GCPResourceRoles = GCPResourceRoles
	}
	r.Shared = shared(rendered)
	for _, a := range r.Azure {
		if len(a.Credentials) > AzureMaxCredentials {
			r.Refused = append(r.Refused, azureOverLimit(a, azureEntries[a.Cloud+"/"+a.ClientID]))
		}
	}
	r.Refused = append(r.Refused, crossAccountRoles(r.AWS, o.EKSClusterARN)...)
	return r, nil
}

// azureOverLimit says which entries give identity a more federated credentials than Azure holds on one identity, and
// how to split them.
func azureOverLimit(a AzureIdentity, entries []string) Refusal {
	var order []string
	count := map[string]int{}
	for _, e := range entries {
		if count[e] == 0 {
			order = append(order, e)
		}
		count[e]++
	}
	parts := make([]string, len(order))
	for i, e := range order {
		parts[i] = fmt.Sprintf("%s: %d", e, count[e])
	}
	return Refusal{Cloud: policy.CloudAzure, Target: a.ClientID, Identities: order,
		Message: fmt.Sprintf("azure client ID %s needs %d federated credentials (%s) and Azure holds at most %d "+
			"per identity: split the entries across managed identities, e.g. one per namespace", a.ClientID,
			len(a.Credentials), strings.Join(parts, ", "), AzureMaxCredentials)}
}

// add trusts one more pair through IRSA: its subject joins the statement for its audience, or a new statement is
// started.
func (r *AWSRole) add(p Pair, issuer string) {
	r.ServiceAccounts = append(r.ServiceAccounts, p.String())
	audience := p.Match.Identity.AWS.Audience
	if audience == "" {
		audience = keys.AWSDefaultAudience
	}
	key := AWSProviderPath(issuer)
	for i := range r.TrustPolicy.Statement {
		cond := r.TrustPolicy.Statement[i].Condition["StringEquals"]
		if cond[key+":aud"] == audience {
			switch subs := cond[key+":sub"].(type) {
			case string:
				cond[key+":sub"] = []string{subs, p.Subject()}
			case []string:
				cond[key+":sub"] = append(subs, p.Subject())
			}
			return
		}
	}
	r.TrustPolicy.Statement = append(r.TrustPolicy.Statement, Statement{
		Effect:    "Allow",
		Principal: map[string]string{"Federated": AWSProviderARN(r.RoleARN, issuer)},
		Action:    Actions{awsWebIdentityAction},
		Condition: map[string]map[string]any{"StringEquals": {key + ":sub": p.Subject(), key + ":aud": audience}},
	})
}

// CredentialName names a pair's Azure federated credential NS_SA, in the characters Azure allows (letters, digits,
// '-' and '_', starting with a letter or digit, at most 120). Kubernetes names never contain '_', so the name is
// unique per pair; a longer name keeps its first 111 characters and a hash of the whole.
func CredentialName(p Pair) string {
	name := p.Namespace + "_" + strings.ReplaceAll(p.ServiceAccount, ".", "-")
	if len(name) > 120 {
		sum := sha256.Sum256([]byte(name))
		name = name[:111] + "_" + hex.EncodeToString(sum[:4])
	}
	return name
}
