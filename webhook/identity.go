package webhook

import (
	"strconv"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// ServiceAccountMetadata returns the annotations and labels the policy grants a ServiceAccount that m matched: the
// cloud's identity annotations (optional ones only when the policy sets them), the Azure use label, and
// AnnotationIdentity naming the entry. The webhook writes them; doctor and explain compare against them.
func ServiceAccountMetadata(m policy.Match) (annotations, labels map[string]string) {
	annotations = map[string]string{AnnotationIdentity: m.Identity.Name}
	switch m.Cloud {
	case policy.CloudAWS:
		a := m.Identity.AWS
		annotations[AnnotationAWSRoleARN] = m.RoleARN
		if a.Audience != "" && a.Audience != AWSDefaultAudience {
			annotations[AnnotationAWSAudience] = a.Audience
		}
		if a.STSRegionalEndpoints != nil {
			annotations[AnnotationAWSSTSRegionalEndpoints] = strconv.FormatBool(*a.STSRegionalEndpoints)
		}
		if a.TokenExpirationSeconds != nil {
			annotations[AnnotationAWSTokenExpiration] = strconv.FormatInt(*a.TokenExpirationSeconds, 10)
		}
	case policy.CloudAzure:
		a := m.Identity.Azure
		annotations[AnnotationAzureClientID] = a.ClientID
		annotations[AnnotationAzureTenantID] = a.TenantID
		if a.TokenExpirationSeconds != nil {
			annotations[AnnotationAzureTokenExpiration] = strconv.FormatInt(*a.TokenExpirationSeconds, 10)
		}
		labels = map[string]string{LabelAzureUse: "true"}
	case policy.CloudGCP:
		annotations[AnnotationGCPServiceAccount] = m.GCPServiceAccount
		if p := m.Identity.GCP.WorkloadIdentityProvider; p != "" {
			annotations[AnnotationGCPWorkloadIdentityProvider] = p
		}
	}
	return annotations, labels
}
