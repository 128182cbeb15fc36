package doctor

import (
	"slices"
	"strings"
	"testing"

	fluxcdv1 "github.com/controlplaneio-fluxcd/flux-operator/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
)

const secretValue = "AKIAIOSFODNN7EXAMPLE-wJalrXUtnFEMI"

func secretEnv(name string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "cloud-credentials"}, Key: name}}}
}

func secretVolume(name string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: name}}}
}

func TestStaticCredentials(t *testing.T) {
	tests := map[string]struct {
		controller string
		pod        func(*corev1.PodSpec)
		want       []string // substrings of the one finding's problem; none: no finding
		fix        string   // a substring of its fix
		note       string
	}{
		"static AWS keys, written or from a Secret, are named, never their values": {
			controller: "kustomize-controller",
			pod: func(s *corev1.PodSpec) {
				s.Containers[0].Env = append(s.Containers[0].Env, corev1.EnvVar{Name: keys.EnvAWSAccessKeyID, Value: secretValue},
					secretEnv(keys.EnvAWSSecretAccessKey), corev1.EnvVar{Name: "AWS_REGION", Value: "eu-west-1"})
			},
			want: []string{"container manager: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (from a Secret)"},
			fix:  "kubectl -n flux-system set env deployment/kustomize-controller -c manager AWS_ACCESS_KEY_ID- AWS_SECRET_ACCESS_KEY-",
		},
		"an Azure client secret, a certificate path and a Vault token": {
			controller: "notification-controller",
			pod: func(s *corev1.PodSpec) {
				s.Containers[0].Env = []corev1.EnvVar{secretEnv(keys.EnvAzureClientSecret),
					{Name: keys.EnvAzureClientCertificatePath, Value: "/certs/tls.pem"}, {Name: keys.EnvVaultToken, Value: secretValue}}
			},
			want: []string{"container manager: AZURE_CLIENT_SECRET (from a Secret), AZURE_CLIENT_CERTIFICATE_PATH, VAULT_TOKEN"},
		},
		"GOOGLE_APPLICATION_CREDENTIALS pointing at a key file of a Secret volume": {
			controller: "source-controller",
			pod: func(s *corev1.PodSpec) {
				s.Volumes = []corev1.Volume{secretVolume("gcp-key")}
				s.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "gcp-key", MountPath: "/var/secrets/google"}}
				s.Containers[0].Env = []corev1.EnvVar{{Name: keys.EnvGoogleApplicationCredentials,
					Value: "/var/secrets/google/key.json"}}
			},
			want: []string{"container manager: GOOGLE_APPLICATION_CREDENTIALS (a file of Secret volume gcp-key)"},
		},
		"but not at the webhook's external_account configuration": {
			controller: "source-controller",
			pod: func(s *corev1.PodSpec) {
				s.Volumes = []corev1.Volume{{Name: keys.GCPVolume, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
					Sources: []corev1.VolumeProjection{{DownwardAPI: &corev1.DownwardAPIProjection{}}}}}}}
				s.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: keys.GCPVolume, MountPath: keys.GCPMountPath}}
				s.Containers[0].Env = []corev1.EnvVar{{Name: keys.EnvGoogleApplicationCredentials,
					Value: keys.GCPMountPath + "/" + keys.GCPCredentialConfigPath}}
			},
		},
		"a Secret mounted where the AWS SDK reads shared credentials, in an init container too": {
			controller: "image-reflector-controller",
			pod: func(s *corev1.PodSpec) {
				s.Volumes = []corev1.Volume{secretVolume("aws"), secretVolume("tls")}
				s.InitContainers = []corev1.Container{{Name: "init", VolumeMounts: []corev1.VolumeMount{
					{Name: "tls", MountPath: "/etc/tls"}, {Name: "aws", MountPath: "/home/nonroot/.aws"}}}}
			},
			want: []string{"container init: Secret volume aws at /home/nonroot/.aws"},
			fix:  `'[{"op":"remove","path":"/spec/template/spec/initContainers/0/volumeMounts/1"}]'`,
		},
		"environment from a Secret is a note: doctor does not read Secrets": {
			controller: "helm-controller",
			pod: func(s *corev1.PodSpec) {
				s.Containers[0].EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "env"}}}}
			},
			note: "flux-system/helm-controller takes environment variables from a Secret in container manager",
		},
		"Flux Operator's own pod is checked too: it authenticates ResourceSetInputProviders": {
			controller: fluxOperator,
			pod: func(s *corev1.PodSpec) {
				s.Containers[0].Env = []corev1.EnvVar{{Name: keys.EnvAWSSessionToken, Value: secretValue}}
			},
			want: []string{"container manager: AWS_SESSION_TOKEN"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := correctPosture()
			dep := p.deps[tc.controller]
			if dep == nil {
				dep = fluxDeployment(tc.controller)
				p.extra = append(p.extra, dep)
			}
			tc.pod(&dep.Spec.Template.Spec)
			r := diagnosePosture(t, posturePolicy, p.objects())
			var want []string
			if len(tc.want) > 0 {
				want = []string{"deployment/" + tc.controller + ": gives long-lived cloud credentials, which the cloud " +
					"SDKs prefer to workload identity: " + tc.want[0]}
			}
			expectFlux(t, r, want)
			if tc.fix != "" && !strings.Contains(findingOf(t, r, "deployment/"+tc.controller).Fix, tc.fix) {
				t.Errorf("fix %q lacks %q", findingOf(t, r, "deployment/"+tc.controller).Fix, tc.fix)
			}
			if tc.note != "" && !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, tc.note) }) {
				t.Errorf("notes %q lack %q", r.Notes, tc.note)
			}
			for _, f := range r.Findings {
				if strings.Contains(f.Problem+f.Fix, secretValue) {
					t.Errorf("a credential's value is printed: %+v", f)
				}
			}
		})
	}
	t.Run("where Flux Operator renders the controller, the fix is in the FluxInstance's patches", func(t *testing.T) {
		p := correctPosture()
		p.deps["source-controller"].Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{secretEnv(keys.EnvAWSAccessKeyID)}
		p.extra = append(p.extra, &fluxcdv1.FluxInstance{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "flux"},
			Spec: fluxcdv1.FluxInstanceSpec{Cluster: &fluxcdv1.Cluster{ObjectLevelWorkloadIdentity: true, Multitenant: true,
				MultitenantWorkloadIdentity: true, TenantDefaultServiceAccount: "flux-tenant",
				TenantDefaultDecryptionServiceAccount: "flux-decryption", TenantDefaultKubeConfigServiceAccount: "flux-kubeconfig"}}})
		r := diagnosePosture(t, posturePolicy, p.objects())
		if f := findingOf(t, r, "deployment/source-controller"); !strings.HasPrefix(f.Fix,
			"remove the spec.kustomize.patches entry of FluxInstance flux-system/flux that adds them") {
			t.Errorf("fix %q", f.Fix)
		}
	})
}
