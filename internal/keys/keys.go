// Package keys names every annotation, label, environment variable, path and default that this project and the
// cloud providers' webhooks write or read, in one place: the webhook, the policy, trust, doctor and audit all use
// these. Values match the clouds' own webhooks and Flux (docs/contracts.md); matching them exactly is what lets the
// cloud SDKs and Flux pick the identity up. Flux's own names (kinds, providers) come from its API packages.
package keys

// This project's own keys.
const (
	// AnnotationIdentity names the policy entry that applied to a ServiceAccount or pod.
	AnnotationIdentity = "fluxidentity.dev/identity"
	// Audit annotations of every answer. The API server prefixes each with the webhook's name
	// (pods.fluxidentity.dev/identity) and refuses a key that then holds a second '/', so they have none.
	AuditDecision = "decision" // the decision (webhook.Decision*)
	AuditIdentity = "identity" // the policy entry that applied
	AuditMandate  = "mandate"  // the mandates covering a Flux source, comma-separated
	AuditRules    = "rules"    // the rules broken: mandate:NAME, identity:NAME or ownership, comma-separated
)

// AWS IRSA, as injected by aws/amazon-eks-pod-identity-webhook.
const (
	AnnotationAWSRoleARN              = "eks.amazonaws.com/role-arn"
	AnnotationAWSAudience             = "eks.amazonaws.com/audience"
	AnnotationAWSSTSRegionalEndpoints = "eks.amazonaws.com/sts-regional-endpoints"
	AnnotationAWSTokenExpiration      = "eks.amazonaws.com/token-expiration"
	// AnnotationAWSSkipContainers (pod) lists comma-separated container names left untouched.
	AnnotationAWSSkipContainers = "eks.amazonaws.com/skip-containers"

	EnvAWSRoleARN              = "AWS_ROLE_ARN"
	EnvAWSWebIdentityTokenFile = "AWS_WEB_IDENTITY_TOKEN_FILE"
	EnvAWSSTSRegionalEndpoints = "AWS_STS_REGIONAL_ENDPOINTS"
	EnvAWSRegion               = "AWS_REGION"
	EnvAWSDefaultRegion        = "AWS_DEFAULT_REGION"

	AWSDefaultAudience     = "sts.amazonaws.com"
	AWSDefaultTokenSeconds = 86400
	// AWSMinTokenSeconds is the EKS webhook's floor: a lifetime under it, on the ServiceAccount or the pod, is raised
	// to it (pkg.ValidateMinTokenExpiration).
	AWSMinTokenSeconds = 600
	// AWSTokenVolume is the EKS webhook's volume name. Full injection uses it when it is free or already holds exactly
	// the token it would add, so an EKS webhook that also sees the pod finds the mount by name and adds nothing.
	AWSTokenVolume    = "aws-iam-token"
	AWSTokenMountPath = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
	AWSTokenPath      = "token"
)

// EKS Pod Identity, as the EKS webhook injects it for a ServiceAccount that has an association
// (aws/amazon-eks-pod-identity-webhook v0.6.17 main.go flags --container-credentials-*, pkg/constants.go) and as the AWS
// SDK for Go v2 reads it (config resolveCredsFromProfile: AWS_CONTAINER_CREDENTIALS_FULL_URI, with the token re-read from
// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE). Nothing on the ServiceAccount names the role: the association lives in the
// EKS API.
const (
	EnvAWSContainerCredentialsFullURI     = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
	EnvAWSContainerAuthorizationTokenFile = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
	// LabelAWSPodIdentity marks a pod the EKS webhook gave Pod Identity ("enabled").
	LabelAWSPodIdentity = "eks.amazonaws.com/pod-identity"

	AWSPodIdentityAgentURI   = "http://169.254.170.23/v1/credentials"
	AWSPodIdentityAudience   = "pods.eks.amazonaws.com"
	AWSPodIdentityTokenFile  = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"
	AWSPodIdentityPrincipal  = "pods.eks.amazonaws.com" // the service principal a Pod Identity role trusts
	AWSPodIdentityTagCluster = "eks-cluster-arn"        // session tags EKS Auth sets (EKS User Guide, pod-id-abac)
	AWSPodIdentityTagNS      = "kubernetes-namespace"
	AWSPodIdentityTagSA      = "kubernetes-service-account"
)

// Azure Workload Identity, as injected by Azure/azure-workload-identity (v1.6+ paths).
const (
	// LabelAzureUse makes the Azure webhook (objectSelector) look at a pod; also set on ServiceAccounts.
	LabelAzureUse                  = "azure.workload.identity/use"
	AnnotationAzureClientID        = "azure.workload.identity/client-id"
	AnnotationAzureTenantID        = "azure.workload.identity/tenant-id"
	AnnotationAzureTokenExpiration = "azure.workload.identity/service-account-token-expiration"
	// AnnotationAzureSkipContainers (pod) lists semicolon-separated container names left untouched.
	AnnotationAzureSkipContainers = "azure.workload.identity/skip-containers"
	// AnnotationAzureInjectProxySidecar (pod) makes the Azure webhook add its token proxy (an init container and a
	// sidecar) for applications that cannot read a federated token; full injection does not add it.
	AnnotationAzureInjectProxySidecar = "azure.workload.identity/inject-proxy-sidecar"

	EnvAzureClientID           = "AZURE_CLIENT_ID"
	EnvAzureTenantID           = "AZURE_TENANT_ID"
	EnvAzureFederatedTokenFile = "AZURE_FEDERATED_TOKEN_FILE"
	EnvAzureAuthorityHost      = "AZURE_AUTHORITY_HOST"

	AzureDefaultAuthorityHost = "https://login.microsoftonline.com/"
	AzureAudience             = "api://AzureADTokenExchange"
	AzureDefaultTokenSeconds  = 3600
	// The Azure webhook denies a pod whose token lifetime (pod or ServiceAccount annotation) is outside these bounds
	// (pkg/webhook getServiceAccountTokenExpiration).
	AzureMinTokenSeconds = 3600
	AzureMaxTokenSeconds = 86400
	// AzureTokenVolumePrefix starts the Azure webhook's (v1.6+) token volume name, which ends in a hash of the pod's
	// name (pkg/webhook buildVolumeName); full injection names its volume the same way.
	AzureTokenVolumePrefix = "azure-workload-identity-reserved-"
	AzureTokenMountPath    = "/var/run/secrets/azure/wi"
	AzureTokenPath         = "token/azure-identity-token"
	// AzureLegacyTokenVolume and AzureLegacyTokenMountPath are the Azure webhook's layout up to v1.5 (token file
	// AzureLegacyTokenMountPath/azure-identity-token). A pod may still carry a volume of that name; it is never
	// adopted by name.
	AzureLegacyTokenVolume    = "azure-identity-token"
	AzureLegacyTokenMountPath = "/var/run/secrets/azure/tokens"
	// AzureMaxFederatedCredentials is how many federated identity credentials one user-assigned managed identity or
	// app registration holds ("A maximum of 20 federated identity credentials can be added to an application or
	// user-assigned managed identity", Microsoft Entra workload identity federation considerations).
	AzureMaxFederatedCredentials = 20
)

// Azure clouds, named as the Azure webhook's AZURE_ENVIRONMENT names them (go-autorest azure.EnvironmentFromName),
// with the Microsoft Entra login endpoint each one's tokens come from (the Environment's ActiveDirectoryEndpoint, which
// the Azure webhook injects as AZURE_AUTHORITY_HOST) and the cloud's name in the az CLI (az cloud set --name).
const (
	AzurePublicCloud       = "AzurePublicCloud"
	AzureUSGovernmentCloud = "AzureUSGovernmentCloud"
	AzureChinaCloud        = "AzureChinaCloud"
)

// AzureCloud is one Azure cloud's endpoints.
type AzureCloud struct {
	Name          string // as in AZURE_ENVIRONMENT and the policy's azure.cloud
	AuthorityHost string // AZURE_AUTHORITY_HOST: the Microsoft Entra login endpoint
	CLIName       string // az cloud set --name
}

// AzureClouds are the clouds an Azure identity can live in; the first is the default.
var AzureClouds = []AzureCloud{
	{Name: AzurePublicCloud, AuthorityHost: AzureDefaultAuthorityHost, CLIName: "AzureCloud"},
	{Name: AzureUSGovernmentCloud, AuthorityHost: "https://login.microsoftonline.us/", CLIName: "AzureUSGovernment"},
	{Name: AzureChinaCloud, AuthorityHost: "https://login.chinacloudapi.cn/", CLIName: "AzureChinaCloud"},
}

// AzureCloudNamed returns the cloud of that name (the public cloud for ""), and whether it is known.
func AzureCloudNamed(name string) (AzureCloud, bool) {
	if name == "" {
		return AzureClouds[0], true
	}
	for _, c := range AzureClouds {
		if c.Name == name {
			return c, true
		}
	}
	return AzureCloud{}, false
}

// MaxTokenSeconds bounds a projected token's expirationSeconds: the API server refuses a pod whose token volume asks
// for more than 2^32 seconds (k8s.io/kubernetes pkg/apis/core/validation validateProjectionSources: "may not specify
// a duration larger than 2^32 seconds").
const MaxTokenSeconds int64 = 1 << 32

// GCP: GKE Workload Identity, and Flux's annotation for workload identity federation outside GKE.
const (
	AnnotationGCPServiceAccount           = "iam.gke.io/gcp-service-account"
	AnnotationGCPWorkloadIdentityProvider = "gcp.auth.fluxcd.io/workload-identity-provider"

	EnvGoogleApplicationCredentials = "GOOGLE_APPLICATION_CREDENTIALS"
)

// IdentityAnnotationKeys are the ServiceAccount annotations the policy owns in the namespaces it names: a mapped
// ServiceAccount ends up with the policy's values, and a request setting any of them that the policy does not grant
// is a violation.
var IdentityAnnotationKeys = []string{
	AnnotationAWSRoleARN, AnnotationAWSAudience, AnnotationAWSSTSRegionalEndpoints, AnnotationAWSTokenExpiration,
	AnnotationAzureClientID, AnnotationAzureTenantID, AnnotationAzureTokenExpiration,
	AnnotationGCPServiceAccount, AnnotationGCPWorkloadIdentityProvider,
}

// OwnedServiceAccountAnnotations are the annotation keys an unmapped ServiceAccount in a policy namespace may not
// carry: the cloud keys and ours (a leftover AnnotationIdentity would claim an identity that no longer applies).
var OwnedServiceAccountAnnotations = append(append([]string(nil), IdentityAnnotationKeys...), AnnotationIdentity)

// GCP full injection (outside GKE): the SDK reads an external_account credential configuration whose token file is a
// projected token. The configuration is delivered without any RBAC through the same projected volume, from a pod
// annotation, by the downward API.
const (
	AnnotationGCPCredentialConfig = "fluxidentity.dev/gcp-credential-config"
	GCPVolume                     = "gcp-workload-identity"
	GCPMountPath                  = "/var/run/secrets/fluxidentity.dev/gcp"
	GCPTokenPath                  = "token"
	GCPCredentialConfigPath       = "credential-configuration.json"
	GCPTokenSeconds               = 3600
	// The external_account configuration's endpoints and token type: Google's Security Token Service, and the IAM
	// Credentials API that impersonates the Google service account (GCPImpersonationURL(email)). Flux's own gcp
	// provider (pkg/auth/gcp NewTokenForServiceAccount) uses the same two.
	GCPSTSTokenURL       = "https://sts.googleapis.com/v1/token"
	GCPSubjectTokenType  = "urn:ietf:params:oauth:token-type:jwt"
	GCPAudiencePrefix    = "//iam.googleapis.com/"
	gcpIAMCredentialsURL = "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/"
)

// GCPImpersonationURL is the IAM Credentials endpoint that issues an access token for the Google service account.
func GCPImpersonationURL(email string) string {
	return gcpIAMCredentialsURL + email + ":generateAccessToken"
}

// OwnedPodAnnotationPrefix marks the pod annotations this webhook owns: it writes them at pod creation
// (AnnotationIdentity on every mapped pod, AnnotationGCPCredentialConfig with full GCP injection) and nothing may
// add, change or remove them afterwards. The GCP one is live: a downward-API volume projects it into the containers as
// the external_account credential configuration and the kubelet follows its changes, so rewriting it would point the
// Google SDK at another token exchange. The whole prefix is owned, not only today's two keys, because the domain is
// this project's and a key added later is protected from the start.
//
// Nothing else on a pod is owned. LabelAzureUse (annotate mode) and the clouds' pod annotations (skip-containers,
// token expiration) are read by the clouds' webhooks only at pod creation (Azure/azure-workload-identity registers
// podMutator in pkg/webhook/webhook.go with verbs=create; aws/amazon-eks-pod-identity-webhook's
// deploy/mutatingwebhook.yaml with operations [CREATE]), into a pod spec that is immutable afterwards, so changing them
// on a running pod changes no credential; and they are public keys that users and the clouds' tooling set on pods
// this policy never mapped, whose updates the webhook has no reason to refuse.
const OwnedPodAnnotationPrefix = "fluxidentity.dev/"
