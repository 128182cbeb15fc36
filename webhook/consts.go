package webhook

// Every key, path and default the webhook writes or reads, in one place. Values match the cloud providers' own
// webhooks and Flux (see docs/contracts.md); matching them exactly is what lets the cloud SDKs and Flux pick the
// identity up.

// This project's own keys.
const (
	// AnnotationIdentity names the policy entry that applied to a ServiceAccount or pod.
	AnnotationIdentity = "fluxidentity.dev/identity"
	// AuditIdentity is the audit annotation naming the policy entry that applied; the API server prefixes it with
	// the webhook's name (pods.fluxidentity.dev/identity).
	AuditIdentity = "identity"
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
