// Package podgen generates pods for the full-injection tests: the property tests, the AWS contract test and the
// differential test against the Azure webhook draw from the same seeded generator. Pods carry what makes injection
// hard: init containers and native sidecars, skip-containers annotations with odd separators, the user's own
// identity env vars (the webhook's own path, legacy and custom paths, values from sources and $(VAR) references),
// mounts at, above and below the token's mount path (some with a subPath), existing volumes of every kind under the
// names injection and the cloud webhooks use, pod-level token lifetimes (valid, at the bounds, out of range, not a
// number) and pods already injected by the cloud webhook (by the contract's layout, several versions and lifetimes).
// It is test-only: the server binary never imports it.
package podgen

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// Generator draws pods for one cloud from a seeded source.
type Generator struct {
	r     *rand.Rand
	cloud policy.Cloud
	c     cloudShape
}

// cloudShape is what the generator knows of a cloud's contract: its env vars, the file the SDK reads, where the token
// is mounted and the names of the volumes the cloud's webhooks and this webhook use.
type cloudShape struct {
	fileEnv   string
	otherEnv  []string
	mountPath string
	file      string
	audience  string
	// legacy is an older webhook layout: a mount path and the file under it (Azure up to v1.5).
	legacyMount, legacyFile, legacyVolume string
	volume                                string // the webhook's volume name (AWS, GCP); Azure's depends on the pod
	skipKey, skipSep, expiryKey           string
	tokenPath                             string
}

var shapes = map[policy.Cloud]cloudShape{
	policy.CloudAWS: {
		fileEnv:   keys.EnvAWSWebIdentityTokenFile,
		otherEnv:  []string{keys.EnvAWSRoleARN, keys.EnvAWSRegion, keys.EnvAWSDefaultRegion, keys.EnvAWSSTSRegionalEndpoints},
		mountPath: keys.AWSTokenMountPath, file: keys.AWSTokenMountPath + "/" + keys.AWSTokenPath,
		audience: keys.AWSDefaultAudience, volume: keys.AWSTokenVolume, tokenPath: keys.AWSTokenPath,
		skipKey: keys.AnnotationAWSSkipContainers, skipSep: ",", expiryKey: keys.AnnotationAWSTokenExpiration,
	},
	policy.CloudAzure: {
		fileEnv:   keys.EnvAzureFederatedTokenFile,
		otherEnv:  []string{keys.EnvAzureClientID, keys.EnvAzureTenantID, keys.EnvAzureAuthorityHost},
		mountPath: keys.AzureTokenMountPath, file: keys.AzureTokenMountPath + "/" + keys.AzureTokenPath,
		audience:    keys.AzureAudience,
		legacyMount: keys.AzureLegacyTokenMountPath, legacyFile: keys.AzureLegacyTokenMountPath + "/azure-identity-token",
		legacyVolume: keys.AzureLegacyTokenVolume, tokenPath: keys.AzureTokenPath,
		skipKey: keys.AnnotationAzureSkipContainers, skipSep: ";", expiryKey: keys.AnnotationAzureTokenExpiration,
	},
	policy.CloudGCP: {
		fileEnv:   keys.EnvGoogleApplicationCredentials,
		mountPath: keys.GCPMountPath, file: keys.GCPMountPath + "/" + keys.GCPCredentialConfigPath,
		volume: keys.GCPVolume, tokenPath: keys.GCPTokenPath,
	},
}

// New returns a generator for cloud seeded with seed.
func New(seed uint64, cloud policy.Cloud) *Generator {
	return &Generator{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), cloud: cloud, c: shapes[cloud]}
}

// SetAudience sets the audience of the tokens the generator projects for the cloud (its default audience unless set):
// GCP's depends on the workload identity provider.
func (g *Generator) SetAudience(audience string) { g.c.audience = audience }

// Rand is the generator's source, for callers that draw more from the same seed.
func (g *Generator) Rand() *rand.Rand { return g.r }

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// AzureVolumeName is the Azure webhook's token volume name for a pod name (its pkg/webhook buildVolumeName), computed
// here independently of the webhook under test.
func AzureVolumeName(podName string) string {
	const prefix = "azure-workload-identity-reserved-"
	return prefix + fmt.Sprintf("%x", sha256.Sum256([]byte(podName)))[:63-len(prefix)]
}

// AzurePodName is the name the Azure webhook hashes: the pod's name, or its generateName and " (prefix)".
func AzurePodName(pod *corev1.Pod) string {
	if pod.Name != "" {
		return pod.Name
	}
	return pod.GenerateName + " (prefix)"
}

// Pod generates a pod running as serviceAccount.
func (g *Generator) Pod(serviceAccount string) *corev1.Pod {
	r := g.r
	pod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}}
	if r.IntN(3) == 0 {
		pod.GenerateName = pick(r, "source-controller-7d5f8c9b6d-", "app-", "x-")
	} else {
		pod.Name = pick(r, "source-controller-7d5f8c9b6d-abcde", "p", "web-0", "job-x1")
	}
	pod.Spec.ServiceAccountName = serviceAccount
	if r.IntN(2) == 0 {
		pod.Annotations = map[string]string{"team": "a"}
	}
	g.annotate(pod)

	vols := g.volumes(pod)
	pod.Spec.Volumes = vols
	for i := range 1 + r.IntN(3) {
		pod.Spec.Containers = append(pod.Spec.Containers, g.container(pick(r, "c", "manager", "app")+strconv.Itoa(i), vols))
	}
	for i := range r.IntN(3) {
		c := g.container("i"+strconv.Itoa(i), vols)
		if r.IntN(2) == 0 {
			c.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways) // a native sidecar
		}
		pod.Spec.InitContainers = append(pod.Spec.InitContainers, c)
	}
	if r.IntN(6) == 0 {
		g.preInject(pod)
	}
	return pod
}

// annotate sets the pod annotations the cloud's webhook reads.
func (g *Generator) annotate(pod *corev1.Pod) {
	r := g.r
	set := func(k, v string) {
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[k] = v
	}
	if g.c.skipKey != "" && r.IntN(3) == 0 {
		names := []string{"c0", "c1", "i0", "i1", "manager0", "app1", "nope", ""}
		var v string
		for j := range 1 + r.IntN(3) {
			if j > 0 {
				v += pick(r, g.c.skipSep, g.c.skipSep, g.c.skipSep+" ", " "+g.c.skipSep, ",", ";", " ", g.c.skipSep+g.c.skipSep)
			}
			v += pick(r, names...)
		}
		switch r.IntN(12) {
		case 0:
			v = `"` + v + `"` // quoted CSV
		case 1:
			v += `"` // not CSV
		case 2:
			v = " " + v + " "
		}
		set(g.c.skipKey, v)
	}
	if g.c.expiryKey != "" && r.IntN(3) == 0 {
		set(g.c.expiryKey, pick(r, "3600", "7200", "86400", "86401", "3599", "600", "599", "1", "0", "-5", "",
			"abc", "+3600", "03600", " 3600", "4294967296", "4294967297", "99999999999999999999", "1e4"))
	}
	if g.cloud == policy.CloudAzure && r.IntN(25) == 0 {
		set(keys.AnnotationAzureInjectProxySidecar, "true")
	}
}

// volumes draws the pod's volumes: every kind, under the names that collide with injection.
func (g *Generator) volumes(pod *corev1.Pod) []corev1.Volume {
	r := g.r
	names := []string{"data", "config", "cache", "token"}
	switch g.cloud {
	case policy.CloudAzure:
		names = append(names, AzureVolumeName(AzurePodName(pod)), g.c.legacyVolume, g.c.legacyVolume)
	default:
		names = append(names, g.c.volume, g.c.volume, g.c.volume+"-2")
	}
	var vols []corev1.Volume
	seen := map[string]bool{}
	for range r.IntN(4) {
		name := pick(r, names...)
		if seen[name] {
			continue
		}
		seen[name] = true
		vols = append(vols, corev1.Volume{Name: name, VolumeSource: g.source()})
	}
	return vols
}

// source draws a volume source of any kind, including projected tokens for the cloud's audience and for others.
func (g *Generator) source() corev1.VolumeSource {
	r := g.r
	token := func(audience string, seconds *int64, path string) corev1.VolumeSource {
		return corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{
			ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: audience, ExpirationSeconds: seconds,
				Path: path}}}}}
	}
	switch r.IntN(9) {
	case 0:
		return corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "azure-config"}}}
	case 1:
		return corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}
	case 2:
		return corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/run/secrets"}}
	case 3:
		return corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	case 4:
		return corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "pvc"}}
	case 5:
		return corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{{
			Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}}}}}
	case 6:
		return token("vault", ptr.To[int64](3600), g.c.tokenPath)
	case 7:
		return token(g.c.audience, ptr.To(pick(r, int64(3600), 7200, 86400)), g.c.tokenPath)
	default:
		return token(g.c.audience, nil, pick(r, g.c.tokenPath, "token"))
	}
}

// container draws a container with the user's own env vars and mounts of the pod's volumes.
func (g *Generator) container(name string, vols []corev1.Volume) corev1.Container {
	r := g.r
	c := corev1.Container{Name: name, Image: "img"}
	if r.IntN(2) == 0 {
		c.Env = append(c.Env, corev1.EnvVar{Name: "HOME", Value: "/home"})
	}
	if r.IntN(4) == 0 {
		v := corev1.EnvVar{Name: g.c.fileEnv}
		switch r.IntN(8) {
		case 0, 1, 2:
			v.Value = g.c.file
		case 3:
			v.Value = pick(r, g.c.legacyFile, "/custom/token")
			if v.Value == "" {
				v.Value = "/custom/token"
			}
		case 4:
			v.Value = g.c.mountPath + "/other"
		case 5:
			v.ValueFrom = &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}
		case 6:
			v.Value = "$(TOKEN_DIR)/token"
		default:
			v.Value = g.c.file + "/"
		}
		c.Env = append(c.Env, v)
	}
	for _, e := range g.c.otherEnv {
		if r.IntN(8) == 0 {
			c.Env = append(c.Env, corev1.EnvVar{Name: e, Value: "user-" + e})
		}
	}
	if len(vols) > 0 && r.IntN(2) == 0 {
		paths := []string{"/data", "/etc/config", g.c.mountPath, g.c.mountPath, g.c.mountPath + "/token",
			parent(g.c.mountPath), g.c.mountPath + "/x"}
		if g.c.legacyMount != "" {
			paths = append(paths, g.c.legacyMount)
		}
		used := map[string]bool{}
		for range 1 + r.IntN(2) {
			p := pick(r, paths...)
			if used[p] {
				continue
			}
			used[p] = true
			m := corev1.VolumeMount{Name: pick(r, vols...).Name, MountPath: p, ReadOnly: r.IntN(2) == 0}
			if r.IntN(10) == 0 {
				m.SubPath = g.c.tokenPath
			}
			c.VolumeMounts = append(c.VolumeMounts, m)
		}
	}
	return c
}

func parent(p string) string {
	for i := len(p) - 1; i > 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return "/"
}

// preInject lays out what the cloud's own webhook would have injected, as its contract says (docs/contracts.md), with
// a lifetime that may differ from the identity's, into some of the containers: a pod recreated from a running pod's
// manifest, or one another webhook added a container to after the cloud's webhook ran.
func (g *Generator) preInject(pod *corev1.Pod) {
	r := g.r
	seconds := ptr.To(pick(r, int64(3600), 7200, 86400))
	var vol corev1.Volume
	var mountPath string
	var env []corev1.EnvVar
	switch g.cloud {
	case policy.CloudAWS:
		vol = corev1.Volume{Name: keys.AWSTokenVolume}
		mountPath = keys.AWSTokenMountPath
		env = []corev1.EnvVar{{Name: keys.EnvAWSRoleARN, Value: "arn:aws:iam::111122223333:role/old"},
			{Name: keys.EnvAWSWebIdentityTokenFile, Value: g.c.file}}
	case policy.CloudAzure:
		legacy := r.IntN(3) == 0
		vol = corev1.Volume{Name: AzureVolumeName(AzurePodName(pod))}
		file := g.c.file
		mountPath = keys.AzureTokenMountPath
		if legacy {
			vol.Name, mountPath, file = g.c.legacyVolume, g.c.legacyMount, g.c.legacyFile
		}
		env = []corev1.EnvVar{{Name: keys.EnvAzureClientID, Value: "00000000-0000-0000-0000-00000000000f"},
			{Name: keys.EnvAzureTenantID, Value: "00000000-0000-0000-0000-0000000000aa"},
			{Name: keys.EnvAzureFederatedTokenFile, Value: file},
			{Name: keys.EnvAzureAuthorityHost, Value: keys.AzureDefaultAuthorityHost}}
	default:
		// No cloud webhook injects GCP credential configurations: this is a pod recreated from one this webhook
		// injected (its volume, and the configuration annotation of another identity).
		vol = corev1.Volume{Name: keys.GCPVolume}
		mountPath = keys.GCPMountPath
		env = []corev1.EnvVar{{Name: keys.EnvGoogleApplicationCredentials, Value: g.c.file}}
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[keys.AnnotationGCPCredentialConfig] = `{"type":"external_account"}`
	}
	path := g.c.tokenPath
	if g.cloud == policy.CloudAzure && mountPath == keys.AzureLegacyTokenMountPath {
		path = "azure-identity-token"
	}
	vol.Projected = &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
		Audience: g.c.audience, ExpirationSeconds: seconds, Path: path}}}}
	if g.cloud == policy.CloudGCP {
		vol.Projected.DefaultMode = ptr.To[int32](0o444)
		vol.Projected.Sources[0].ServiceAccountToken.ExpirationSeconds = ptr.To[int64](3600)
		vol.Projected.Sources = append(vol.Projected.Sources, corev1.VolumeProjection{DownwardAPI: &corev1.DownwardAPIProjection{
			Items: []corev1.DownwardAPIVolumeFile{{Path: keys.GCPCredentialConfigPath, FieldRef: &corev1.ObjectFieldSelector{
				APIVersion: "v1", FieldPath: "metadata.annotations['" + keys.AnnotationGCPCredentialConfig + "']"}}}}})
	}
	for i, v := range pod.Spec.Volumes {
		if v.Name == vol.Name {
			pod.Spec.Volumes = append(pod.Spec.Volumes[:i:i], pod.Spec.Volumes[i+1:]...)
			break
		}
	}
	pod.Spec.Volumes = append(pod.Spec.Volumes, vol)
	inject := func(c *corev1.Container) {
		if r.IntN(4) == 0 {
			return // a container added after the cloud webhook ran
		}
		c.Env = nil
		var mounts []corev1.VolumeMount
		for _, m := range c.VolumeMounts {
			if m.MountPath != mountPath && m.Name != vol.Name {
				mounts = append(mounts, m)
			}
		}
		mounts = append(mounts, corev1.VolumeMount{Name: vol.Name, MountPath: mountPath, ReadOnly: true})
		c.VolumeMounts = mounts
		c.Env = append(c.Env, env...)
	}
	for i := range pod.Spec.InitContainers {
		inject(&pod.Spec.InitContainers[i])
	}
	for i := range pod.Spec.Containers {
		inject(&pod.Spec.Containers[i])
	}
}
