package serviceaccounts

import (
	"strconv"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// Metadata returns the annotations and labels the policy grants a ServiceAccount that m matched: the
// cloud's identity annotations (optional ones only when the policy sets them), the Azure use label, and
// keys.AnnotationIdentity naming the entry. The webhook writes them; doctor and explain compare against them.
func Metadata(m policy.Match) (annotations, labels map[string]string) {
	annotations = map[string]string{keys.AnnotationIdentity: m.Identity.Name}
	switch m.Cloud {
	case policy.CloudAWS:
		a := m.Identity.AWS
		// EKS Pod Identity names the role in an association, never on the ServiceAccount: a role-arn there would make
		// the pods' SDK take IRSA first (aws-sdk-go-v2 config resolveCredentialChain tries AWS_WEB_IDENTITY_TOKEN_FILE
		// before the container credentials of AWS_CONTAINER_CREDENTIALS_FULL_URI). The EKS webhook still reads the
		// regional STS and token lifetime annotations for Pod Identity pods (buildPodPatchConfig,
		// Cache.GetCommonConfigurations).
		if !a.PodIdentity() {
			annotations[keys.AnnotationAWSRoleARN] = m.RoleARN
			if a.Audience != "" && a.Audience != keys.AWSDefaultAudience {
				annotations[keys.AnnotationAWSAudience] = a.Audience
			}
		}
		if a.STSRegionalEndpoints != nil {
			annotations[keys.AnnotationAWSSTSRegionalEndpoints] = strconv.FormatBool(*a.STSRegionalEndpoints)
		}
		if a.TokenExpirationSeconds != nil {
			annotations[keys.AnnotationAWSTokenExpiration] = strconv.FormatInt(*a.TokenExpirationSeconds, 10)
		}
	case policy.CloudAzure:
		a := m.Identity.Azure
		annotations[keys.AnnotationAzureClientID] = a.ClientID
		annotations[keys.AnnotationAzureTenantID] = a.TenantID
		if a.TokenExpirationSeconds != nil {
			annotations[keys.AnnotationAzureTokenExpiration] = strconv.FormatInt(*a.TokenExpirationSeconds, 10)
		}
		labels = map[string]string{keys.LabelAzureUse: "true"}
	case policy.CloudGCP:
		// Without a Google service account the entry is direct federation: Flux's gcp provider impersonates exactly
		// when the ServiceAccount carries iam.gke.io/gcp-service-account (fluxcd/pkg/auth gcp getServiceAccountEmail,
		// NewTokenForServiceAccount), and so does GKE's metadata server, so the key stays off.
		if m.GCPServiceAccount != "" {
			annotations[keys.AnnotationGCPServiceAccount] = m.GCPServiceAccount
		}
		if p := m.Identity.GCP.WorkloadIdentityProvider; p != "" {
			annotations[keys.AnnotationGCPWorkloadIdentityProvider] = p
		}
	}
	return annotations, labels
}
