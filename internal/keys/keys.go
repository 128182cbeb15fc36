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
	AWSTokenVolume         = "aws-iam-token"
	AWSTokenMountPath      = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
	AWSTokenPath           = "token"
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

	EnvAzureClientID           = "AZURE_CLIENT_ID"
	EnvAzureTenantID           = "AZURE_TENANT_ID"
	EnvAzureFederatedTokenFile = "AZURE_FEDERATED_TOKEN_FILE"
	EnvAzureAuthorityHost      = "AZURE_AUTHORITY_HOST"

	AzureDefaultAuthorityHost = "https://login.microsoftonline.com/"
	AzureAudience             = "api://AzureADTokenExchange"
	AzureDefaultTokenSeconds  = 3600
	AzureTokenVolume          = "azure-identity-token"
	AzureTokenMountPath       = "/var/run/secrets/azure/wi"
	AzureTokenPath            = "token/azure-identity-token"
	// AzureLegacyTokenMountPath is where the Azure webhook up to v1.5 mounted the token; a pod with a mount there is
	// already injected.
	AzureLegacyTokenMountPath = "/var/run/secrets/azure/tokens"
)

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
)

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
