package webhook

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// Full injection writes into pods what the cloud's own webhook would, for clusters that run none: a projected
// ServiceAccount token volume, its mount and the SDK environment, on every container and init container (native
// sidecars included) that is not skipped. It never overrides an env var or mount the user set and never injects twice:
// "already injected" is detected by env names and mount paths, never by volume names.

// injection is what one cloud adds to a pod.
type injection struct {
	volume      corev1.Volume
	mountPath   string
	annotations map[string]string
	// skip names the containers the user excluded.
	skip map[string]bool
	// env returns the variables to add to c (nil when c is already injected or manages its own identity) and whether
	// c needs the token mount.
	env func(c *containerView) ([]corev1.EnvVar, bool)
}

// podInjection computes the full-injection patch for a pod whose ServiceAccount m matched.
func podInjection(m policy.Match, pod *podView) (injection, error) {
	switch m.Cloud {
	case policy.CloudAWS:
		return awsInjection(m, pod), nil
	case policy.CloudAzure:
		return azureInjection(m, pod), nil
	case policy.CloudGCP:
		return gcpInjection(m, pod)
	}
	return injection{}, fmt.Errorf("identity %s has no cloud", m.Identity.Name)
}

func awsInjection(m policy.Match, pod *podView) injection {
	a := m.Identity.AWS
	audience := a.Audience
	if audience == "" {
		audience = keys.AWSDefaultAudience
	}
	seconds := int64(keys.AWSDefaultTokenSeconds)
	if a.TokenExpirationSeconds != nil {
		seconds = *a.TokenExpirationSeconds
	}
	tokenFile := path.Join(keys.AWSTokenMountPath, keys.AWSTokenPath)
	return injection{
		volume:    tokenVolume(keys.AWSTokenVolume, audience, seconds, keys.AWSTokenPath),
		mountPath: keys.AWSTokenMountPath,
		skip:      splitNames(metaOf(pod.Metadata).Annotations[keys.AnnotationAWSSkipContainers], ","),
		env: func(c *containerView) ([]corev1.EnvVar, bool) {
			var env []corev1.EnvVar
			// Like the EKS webhook: a container that names its own role or token file keeps them.
			ownIdentity := c.hasEnv(keys.EnvAWSRoleARN) || c.hasEnv(keys.EnvAWSWebIdentityTokenFile)
			if !ownIdentity {
				env = append(env, corev1.EnvVar{Name: keys.EnvAWSRoleARN, Value: m.RoleARN},
					corev1.EnvVar{Name: keys.EnvAWSWebIdentityTokenFile, Value: tokenFile})
			}
			if a.STSRegionalEndpoints != nil && *a.STSRegionalEndpoints && !c.hasEnv(keys.EnvAWSSTSRegionalEndpoints) {
				env = append(env, corev1.EnvVar{Name: keys.EnvAWSSTSRegionalEndpoints, Value: "regional"})
			}
			if a.Region != "" && !c.hasEnv(keys.EnvAWSRegion) && !c.hasEnv(keys.EnvAWSDefaultRegion) {
				env = append(env, corev1.EnvVar{Name: keys.EnvAWSRegion, Value: a.Region},
					corev1.EnvVar{Name: keys.EnvAWSDefaultRegion, Value: a.Region})
			}
			return env, !ownIdentity && !c.hasMountAt(keys.AWSTokenMountPath)
		},
	}
}

func azureInjection(m policy.Match, pod *podView) injection {
	a := m.Identity.Azure
	seconds := int64(keys.AzureDefaultTokenSeconds)
	if a.TokenExpirationSeconds != nil {
		seconds = *a.TokenExpirationSeconds
	}
	want := []corev1.EnvVar{
		{Name: keys.EnvAzureClientID, Value: a.ClientID},
		{Name: keys.EnvAzureTenantID, Value: a.TenantID},
		{Name: keys.EnvAzureFederatedTokenFile, Value: path.Join(keys.AzureTokenMountPath, keys.AzureTokenPath)},
		{Name: keys.EnvAzureAuthorityHost, Value: keys.AzureDefaultAuthorityHost},
	}
	return injection{
		volume:    tokenVolume(keys.AzureTokenVolume, keys.AzureAudience, seconds, keys.AzureTokenPath),
		mountPath: keys.AzureTokenMountPath,
		skip:      splitNames(metaOf(pod.Metadata).Annotations[keys.AnnotationAzureSkipContainers], ";"),
		env: func(c *containerView) ([]corev1.EnvVar, bool) {
			var env []corev1.EnvVar
			for _, e := range want {
				if !c.hasEnv(e.Name) {
					env = append(env, e)
				}
			}
			mounted := c.hasMountAt(keys.AzureTokenMountPath) || c.hasMountAt(keys.AzureLegacyTokenMountPath)
			return env, !mounted && !c.hasEnv(keys.EnvAzureFederatedTokenFile)
		},
	}
}

// gcpCredentialConfig is the external_account configuration Google's SDKs read from GOOGLE_APPLICATION_CREDENTIALS.
type gcpCredentialConfig struct {
	Type                           string              `json:"type"`
	Audience                       string              `json:"audience"`
	SubjectTokenType               string              `json:"subject_token_type"`
	TokenURL                       string              `json:"token_url"`
	ServiceAccountImpersonationURL string              `json:"service_account_impersonation_url,omitempty"`
	CredentialSource               gcpCredentialSource `json:"credential_source"`
}

type gcpCredentialSource struct {
	File string `json:"file"`
}

func gcpInjection(m policy.Match, pod *podView) (injection, error) {
	provider := m.Identity.GCP.WorkloadIdentityProvider
	audience := "//iam.googleapis.com/" + provider
	config, err := json.Marshal(gcpCredentialConfig{
		Type:             "external_account",
		Audience:         audience,
		SubjectTokenType: "urn:ietf:params:oauth:token-type:jwt",
		TokenURL:         "https://sts.googleapis.com/v1/token",
		ServiceAccountImpersonationURL: "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/" +
			m.GCPServiceAccount + ":generateAccessToken",
		CredentialSource: gcpCredentialSource{File: path.Join(keys.GCPMountPath, keys.GCPTokenPath)},
	})
	if err != nil {
		return injection{}, err
	}
	vol := tokenVolume(keys.GCPVolume, audience, keys.GCPTokenSeconds, keys.GCPTokenPath)
	vol.Projected.Sources = append(vol.Projected.Sources, corev1.VolumeProjection{
		DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
			Path:     keys.GCPCredentialConfigPath,
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations['" + keys.AnnotationGCPCredentialConfig + "']"},
		}}},
	})
	credentials := path.Join(keys.GCPMountPath, keys.GCPCredentialConfigPath)
	return injection{
		volume:      vol,
		mountPath:   keys.GCPMountPath,
		annotations: map[string]string{keys.AnnotationGCPCredentialConfig: string(config)},
		env: func(c *containerView) ([]corev1.EnvVar, bool) {
			if c.hasEnv(keys.EnvGoogleApplicationCredentials) {
				return nil, false // the container brings its own credentials
			}
			return []corev1.EnvVar{{Name: keys.EnvGoogleApplicationCredentials, Value: credentials}},
				!c.hasMountAt(keys.GCPMountPath)
		},
	}, nil
}

func tokenVolume(name, audience string, seconds int64, file string) corev1.Volume {
	return corev1.Volume{
		Name: name,
		VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			DefaultMode: ptr.To[int32](0o444),
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience: audience, ExpirationSeconds: ptr.To(seconds), Path: file,
			}}},
		}},
	}
}

// patch appends the operations that apply inj to pod: env and mounts per container, then the volume once if any
// container mounts it and no volume of that name exists yet.
func (inj injection) patch(ops []jsonpatch.Operation, pod *podView) []jsonpatch.Operation {
	needVolume := false
	for _, list := range []struct {
		path       string
		containers []containerView
	}{{"/spec/initContainers", pod.Spec.InitContainers}, {"/spec/containers", pod.Spec.Containers}} {
		for i := range list.containers {
			c := &list.containers[i]
			if inj.skip[c.Name] {
				continue
			}
			env, mount := inj.env(c)
			base := fmt.Sprintf("%s/%d", list.path, i)
			ops = appendToArray(ops, base+"/env", c.Env != nil, env)
			if mount {
				needVolume = true
				ops = appendToArray(ops, base+"/volumeMounts", c.VolumeMounts != nil, []corev1.VolumeMount{{
					Name: inj.volume.Name, MountPath: inj.mountPath, ReadOnly: true,
				}})
			}
		}
	}
	if needVolume && !hasVolume(pod, inj.volume.Name) {
		ops = appendToArray(ops, "/spec/volumes", pod.Spec.Volumes != nil, []corev1.Volume{inj.volume})
	}
	return ops
}

// containerBytes is about how much one container's share of the patch (its env and mount) encodes to.
func (inj injection) containerBytes() int {
	env, _ := inj.env(&containerView{})
	b, _ := json.Marshal(env)
	return len(b) + len(inj.mountPath) + len(inj.volume.Name) + 160 // + the operations and the mount's fields
}

func hasVolume(pod *podView, name string) bool {
	for _, v := range pod.Spec.Volumes {
		if v.Name == name {
			return true
		}
	}
	return false
}

func splitNames(s, sep string) map[string]bool {
	if s == "" {
		return nil
	}
	out := map[string]bool{}
	for _, n := range strings.Split(s, sep) {
		if n = strings.TrimSpace(n); n != "" {
			out[n] = true
		}
	}
	return out
}
