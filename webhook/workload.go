package webhook

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// What the webhook reads of a workload, for tools that look at the cluster the way admission does (doctor).

// PodServiceAccount is the ServiceAccount a pod runs as, as admission reads it: spec.serviceAccountName, else the
// deprecated spec.serviceAccount the API server still fills, else default.
func PodServiceAccount(spec *corev1.PodSpec) string {
	v := podSpecView{ServiceAccountName: spec.ServiceAccountName, ServiceAccount: spec.DeprecatedServiceAccount}
	return v.serviceAccount()
}

// SkippedContainers are the containers of a pod that full injection of the cloud leaves alone: the names in the
// cloud's skip-containers annotation (AWS separates them with ',', Azure with ';'; GCP has none).
func SkippedContainers(cloud policy.Cloud, annotations map[string]string) map[string]bool {
	switch cloud {
	case policy.CloudAWS:
		return splitNames(annotations[keys.AnnotationAWSSkipContainers], ",")
	case policy.CloudAzure:
		return splitNames(annotations[keys.AnnotationAzureSkipContainers], ";")
	}
	return nil
}
