package doctor

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

const podIdentityPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
identities:
  - name: pod-identity
    namespaces: [flux-system]
    serviceAccounts: [source-controller]
    aws: {roleARN: "arn:aws:iam::111122223333:role/flux", mechanism: podIdentity}
  - name: irsa
    namespaces: [flux-system]
    serviceAccounts: [kustomize-controller]
    aws: {roleARN: "arn:aws:iam::111122223333:role/kustomize"}
  - name: gke-direct
    namespaces: [flux-system]
    serviceAccounts: [notification-controller]
    gcp: {workloadPool: my-project.svc.id.goog, projectNumber: "123456789"}
`

var (
	podIdentityEnv = []corev1.EnvVar{
		{Name: keys.EnvAWSContainerCredentialsFullURI, Value: keys.AWSPodIdentityAgentURI},
		{Name: keys.EnvAWSContainerAuthorizationTokenFile, Value: keys.AWSPodIdentityTokenFile}}
	irsaEnv = []corev1.EnvVar{{Name: keys.EnvAWSRoleARN, Value: "arn:aws:iam::111122223333:role/kustomize"},
		{Name: keys.EnvAWSWebIdentityTokenFile, Value: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"}}
)

func TestCheckPodAWSMechanisms(t *testing.T) {
	p, err := policy.Parse("doctor.yaml", []byte(podIdentityPolicy), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		sa          string
		containers  []corev1.Container
		annotations map[string]string
		wantProblem string // empty: fine
	}{
		"a Pod Identity pod with the agent's endpoint and token is fine": {
			sa: "source-controller", containers: []corev1.Container{{Name: "manager", Env: podIdentityEnv}},
		},
		"a Pod Identity pod without the endpoint started before its association, or has none": {
			sa: "source-controller", containers: []corev1.Container{{Name: "manager"}},
			wantProblem: "runs without AWS_CONTAINER_CREDENTIALS_FULL_URI in container manager: it started before its " +
				"Pod Identity association, or the cluster has none for it",
		},
		"a Pod Identity pod without the token file is refused by the agent": {
			sa: "source-controller", containers: []corev1.Container{{Name: "manager", Env: podIdentityEnv[:1]}},
			wantProblem: "runs without AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
		},
		"a Pod Identity pod is not asked for AWS_ROLE_ARN": {
			sa: "source-controller", containers: []corev1.Container{{Name: "manager", Env: podIdentityEnv}},
		},
		"both mechanisms in a Pod Identity pod: IRSA wins, the fix drops IRSA": {
			sa: "source-controller", containers: []corev1.Container{{Name: "manager", Env: append(irsaEnv, podIdentityEnv...)}},
			wantProblem: "runs with both AWS_WEB_IDENTITY_TOKEN_FILE and AWS_CONTAINER_CREDENTIALS_FULL_URI in container " +
				"manager: the AWS SDK takes IRSA first and ignores EKS Pod Identity; the policy means Pod Identity: drop the " +
				"IRSA variables or eks.amazonaws.com/role-arn",
		},
		"both mechanisms in an IRSA pod: the fix deletes the association": {
			sa: "kustomize-controller", containers: []corev1.Container{{Name: "manager", Env: append(podIdentityEnv, irsaEnv...)}},
			wantProblem: "the policy does not mean Pod Identity: delete the association",
		},
		"both mechanisms in a container AWS's webhook skips are not reported": {
			sa: "kustomize-controller", annotations: map[string]string{keys.AnnotationAWSSkipContainers: "tool"},
			containers: []corev1.Container{{Name: "manager", Env: irsaEnv},
				{Name: "tool", Env: append(podIdentityEnv, irsaEnv...)}},
		},
		"both mechanisms in a GCP pod are reported too": {
			sa: "notification-controller", containers: []corev1.Container{{Name: "manager", Env: append(podIdentityEnv, irsaEnv...)}},
			wantProblem: "the AWS SDK takes IRSA first",
		},
		"a GKE direct federation pod carries nothing to check": {
			sa: "notification-controller", containers: []corev1.Container{{Name: "manager"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, ok := p.IdentityFor("flux-system", tc.sa)
			if !ok {
				t.Fatalf("%s is not mapped", tc.sa)
			}
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "flux-system", Annotations: tc.annotations},
				Spec: corev1.PodSpec{ServiceAccountName: tc.sa, Containers: tc.containers}}
			problem, bad := checkPod(pod, m)
			if bad != (tc.wantProblem != "") || !strings.Contains(problem, tc.wantProblem) {
				t.Errorf("got %v %q, want %q", bad, problem, tc.wantProblem)
			}
		})
	}
}
