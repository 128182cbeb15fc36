package doctor

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// Two AWS mechanisms in one container. The AWS SDK for Go v2 resolves web identity (IRSA: AWS_WEB_IDENTITY_TOKEN_FILE)
// before container credentials (EKS Pod Identity: AWS_CONTAINER_CREDENTIALS_FULL_URI) (config resolveCredentialChain,
// then resolveCredsFromProfile), so a container holding both runs with the IRSA role whatever its Pod Identity
// association says. The EKS webhook itself never injects both (buildPodPatchConfig gives the association precedence),
// but full injection, another webhook or the pod's own spec can.

// checkAWSMechanisms reports a running pod with both IRSA and Pod Identity environment in a container, and says which
// one the policy means.
func checkAWSMechanisms(pod *corev1.Pod, m policy.Match) (string, bool) {
	return firstContainer(policy.CloudAWS, pod, func(where string, c corev1.Container) (string, bool) {
		_, irsa := envValue(c.Env, keys.EnvAWSWebIdentityTokenFile)
		_, podIdentity := envValue(c.Env, keys.EnvAWSContainerCredentialsFullURI)
		if !irsa || !podIdentity {
			return "", false
		}
		problem := "runs with both " + keys.EnvAWSWebIdentityTokenFile + " and " + keys.EnvAWSContainerCredentialsFullURI +
			" in " + where + ": the AWS SDK takes IRSA first and ignores EKS Pod Identity; "
		if m.Cloud == policy.CloudAWS && m.Identity.AWS.PodIdentity() {
			return problem + "the policy means Pod Identity: drop the IRSA variables or " + keys.AnnotationAWSRoleARN +
				", then restart", true
		}
		return problem + "the policy does not mean Pod Identity: delete the association, then restart", true
	})
}

// checkPodIdentityPod says what is wrong with a running pod of a ServiceAccount mapped to EKS Pod Identity: EKS's
// webhook gives every container the agent's endpoint and the token file (keys.EnvAWSContainerCredentialsFullURI,
// keys.EnvAWSContainerAuthorizationTokenFile) when an association exists at the pod's creation.
func checkPodIdentityPod(pod *corev1.Pod) (string, bool) {
	return firstContainer(policy.CloudAWS, pod, func(where string, c corev1.Container) (string, bool) {
		if _, ok := envValue(c.Env, keys.EnvAWSContainerCredentialsFullURI); !ok {
			return "runs without " + keys.EnvAWSContainerCredentialsFullURI + " in " + where + ": it started before " +
				"its Pod Identity association, or the cluster has none for it (trust check)", true
		}
		if _, ok := envValue(c.Env, keys.EnvAWSContainerAuthorizationTokenFile); !ok {
			return "runs without " + keys.EnvAWSContainerAuthorizationTokenFile + " in " + where +
				": the Pod Identity Agent refuses it without its token", true
		}
		return "", false
	})
}
