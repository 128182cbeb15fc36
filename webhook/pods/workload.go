package pods

import (
	corev1 "k8s.io/api/core/v1"
)

// What the webhook reads of a workload, for tools that look at the cluster the way admission does (doctor).

// PodServiceAccount is the ServiceAccount a pod runs as, as admission reads it: spec.serviceAccountName, else the
// deprecated spec.serviceAccount the API server still fills, else default.
func PodServiceAccount(spec *corev1.PodSpec) string {
	v := podSpecView{ServiceAccountName: spec.ServiceAccountName, ServiceAccount: spec.DeprecatedServiceAccount}
	return v.serviceAccount()
}
