package pods

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

func TestPodServiceAccount(t *testing.T) {
	for _, tc := range []struct {
		spec corev1.PodSpec
		want string
	}{
		{corev1.PodSpec{ServiceAccountName: "a", DeprecatedServiceAccount: "b"}, "a"},
		{corev1.PodSpec{DeprecatedServiceAccount: "b"}, "b"},
		{corev1.PodSpec{}, "default"},
	} {
		if got := PodServiceAccount(&tc.spec); got != tc.want {
			t.Errorf("PodServiceAccount(%+v) = %q, want %q", tc.spec, got, tc.want)
		}
	}
}

func TestSkippedContainers(t *testing.T) {
	ann := map[string]string{keys.AnnotationAWSSkipContainers: " a, b ,,", keys.AnnotationAzureSkipContainers: "c;d"}
	if got := SkippedContainers(policy.CloudAWS, ann); len(got) != 2 || !got["a"] || !got["b"] {
		t.Errorf("aws: %v", got)
	}
	if got := SkippedContainers(policy.CloudAzure, ann); len(got) != 2 || !got["c"] || !got["d"] {
		t.Errorf("azure: %v", got)
	}
	if got := SkippedContainers(policy.CloudGCP, ann); got != nil {
		t.Errorf("gcp: %v", got)
	}
}
