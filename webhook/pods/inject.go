package pods

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"reflect"
	"slices"
	"strconv"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/patch"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// Full injection writes into pods what the cloud's own webhook would, for clusters that run none: a projected
// ServiceAccount token volume, its mount and the SDK environment, on every container and init container (native
// sidecars included) that is not skipped. It never overrides an env var or mount the user set and never injects twice:
// "already injected" is decided by where a container's token file leads, never by volume names. It never adopts a
// volume by name either: its volume takes a name no other volume of the pod holds, unless that volume is exactly the
// token it would add. Each container it would change must then satisfy the token invariant (tokenfile.go); one that
// would not is left untouched and named in a warning.

// injection is full injection's result for one pod, as data: the token volume, what each changed container gets, the
// pod annotations to set, and what the response says. patch assembles the JSON Patch from it in one place.
type injection struct {
	identity    string
	want        TokenWant
	annotations map[string]string
	// volume is the token volume; addVolume is false when no container mounts it or the pod already holds it.
	volume     corev1.Volume
	addVolume  bool
	containers []containerInjection
	warnings   []string
	violations []verdict.Violation

	// The cloud's rules, set by newInjection and read by plan.
	skip        map[string]bool
	env         func(c *containerView) []corev1.EnvVar // the variables c lacks
	volumeNames func(i int) string                     // the i-th candidate name of the token volume
}

// containerInjection is what one container gets.
type containerInjection struct {
	init  bool
	index int
	name  string
	env   []corev1.EnvVar
	mount *corev1.VolumeMount
}

// newInjection reads the identity and the pod's annotations into the cloud's rules; plan then decides per container.
func newInjection(m policy.Match, pod *View) (*injection, error) {
	annotations := patch.MetaOf(pod.Metadata).Annotations
	seconds, warnings, violations := tokenSeconds(m, annotations)
	inj := &injection{identity: m.Identity.Name, warnings: warnings, violations: violations,
		skip: SkippedContainers(m.Cloud, annotations)}
	inj.warnings = append(inj.warnings, skipWarnings(m.Identity.Name, m.Cloud, annotations)...)
	switch m.Cloud {
	case policy.CloudAWS:
		awsInjection(m, seconds, inj)
	case policy.CloudAzure:
		azureInjection(m, seconds, pod, inj)
	case policy.CloudGCP:
		if err := gcpInjection(m, inj); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("identity %s has no cloud", m.Identity.Name)
	}
	return inj, nil
}

// awsInjection holds the EKS webhook's contract (docs/contracts.md; aws/amazon-eks-pod-identity-webhook pkg/handler
// addEnvToContainer): AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE together unless the container has either, the
// regional STS setting and both region variables unless present; the volume aws-iam-token when that name is free.
func awsInjection(m policy.Match, seconds int64, inj *injection) {
	a := m.Identity.AWS
	audience := a.Audience
	if audience == "" {
		audience = keys.AWSDefaultAudience
	}
	inj.want = TokenWant{Cloud: policy.CloudAWS, Audience: audience, ExpirationSeconds: seconds}
	inj.volume = TokenVolume(audience, seconds, keys.AWSTokenPath)
	inj.volumeNames = numberedNames(keys.AWSTokenVolume)
	tokenFile := filesOf[policy.CloudAWS].file
	inj.env = func(c *containerView) []corev1.EnvVar {
		env := make([]corev1.EnvVar, 0, 5) // room for every variable below: one allocation per container
		if !c.hasEnv(keys.EnvAWSRoleARN) && !c.hasEnv(keys.EnvAWSWebIdentityTokenFile) {
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
		return env
	}
}

// azureInjection holds the Azure webhook's contract (Azure/azure-workload-identity v1.6 pkg/webhook
// addEnvironmentVariables): each of the four variables unless present, AZURE_AUTHORITY_HOST being the login endpoint
// of the identity's cloud (getAzureAuthorityHost); the volume named as that webhook names it (buildVolumeName). The use
// label is not set on the pod, so an Azure webhook in the cluster does not inject a second time.
func azureInjection(m policy.Match, seconds int64, pod *View, inj *injection) {
	a := m.Identity.Azure
	cloud, _ := keys.AzureCloudNamed(a.Cloud)
	inj.want = TokenWant{Cloud: policy.CloudAzure, Audience: keys.AzureAudience, ExpirationSeconds: seconds}
	inj.volume = TokenVolume(keys.AzureAudience, seconds, keys.AzureTokenPath)
	meta := patch.MetaOf(pod.Metadata)
	podName := meta.Name
	if podName == "" {
		podName = meta.GenerateName + " (prefix)" // as the Azure webhook's Handle names a pod created from a template
	}
	inj.volumeNames = func(i int) string {
		if i == 0 {
			return AzureVolumeName(podName)
		}
		return AzureVolumeName(podName + "#" + strconv.Itoa(i))
	}
	want := []corev1.EnvVar{
		{Name: keys.EnvAzureClientID, Value: a.ClientID},
		{Name: keys.EnvAzureTenantID, Value: a.TenantID},
		{Name: keys.EnvAzureFederatedTokenFile, Value: filesOf[policy.CloudAzure].file},
		{Name: keys.EnvAzureAuthorityHost, Value: cloud.AuthorityHost},
	}
	inj.env = func(c *containerView) []corev1.EnvVar {
		env := make([]corev1.EnvVar, 0, len(want))
		for _, e := range want {
			if !c.hasEnv(e.Name) {
				env = append(env, e)
			}
		}
		return env
	}
	if _, proxy := meta.Annotations[keys.AnnotationAzureInjectProxySidecar]; proxy {
		inj.warnings = append(inj.warnings, verdict.FitMessage(m.Identity.Name,
			keys.AnnotationAzureInjectProxySidecar+" is ignored: full injection adds no token proxy"))
	}
}

// AzureVolumeName is the Azure webhook's token volume name for a pod (pkg/webhook buildVolumeName): the prefix and as
// much of the SHA-256 of the pod's name as fits a 63-character volume name.
func AzureVolumeName(podName string) string {
	sum := sha256.Sum256([]byte(podName))
	return keys.AzureTokenVolumePrefix + fmt.Sprintf("%x", sum)[:63-len(keys.AzureTokenVolumePrefix)]
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

// gcpInjection delivers the external_account configuration that Google's client libraries load from
// GOOGLE_APPLICATION_CREDENTIALS (golang.org/x/oauth2/google CredentialsFromJSON), with the endpoints Flux's own gcp
// provider uses (fluxcd/pkg/auth gcp NewTokenForServiceAccount): the configuration comes from a pod annotation through
// the downward API, next to its token, in one projected volume. Direct federation has no impersonation URL, as Flux's
// provider leaves it out for a ServiceAccount without a Google service account: the STS token is then the access token
// (golang.org/x/oauth2 google/externalaccount Config.tokenSource).
func gcpInjection(m policy.Match, inj *injection) error {
	audience := keys.GCPAudiencePrefix + m.Identity.GCP.WorkloadIdentityProvider
	config, err := json.Marshal(gcpCredentialConfig{
		Type:                           "external_account",
		Audience:                       audience,
		SubjectTokenType:               keys.GCPSubjectTokenType,
		TokenURL:                       keys.GCPSTSTokenURL,
		ServiceAccountImpersonationURL: impersonationURL(m.GCPServiceAccount),
		CredentialSource:               gcpCredentialSource{File: path.Join(keys.GCPMountPath, keys.GCPTokenPath)},
	})
	if err != nil {
		return err
	}
	inj.want = TokenWant{Cloud: policy.CloudGCP, Audience: audience, ExpirationSeconds: keys.GCPTokenSeconds,
		GCPServiceAccount: m.GCPServiceAccount}
	inj.volume = TokenVolume(audience, keys.GCPTokenSeconds, keys.GCPTokenPath)
	inj.volume.Projected.Sources = append(inj.volume.Projected.Sources, corev1.VolumeProjection{
		DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
			Path: keys.GCPCredentialConfigPath, FieldRef: &corev1.ObjectFieldSelector{FieldPath: gcpConfigFieldPath},
		}}},
	})
	inj.volumeNames = numberedNames(keys.GCPVolume)
	inj.annotations = map[string]string{keys.AnnotationGCPCredentialConfig: string(config)}
	credentials := filesOf[policy.CloudGCP].file
	inj.env = func(c *containerView) []corev1.EnvVar {
		if c.hasEnv(keys.EnvGoogleApplicationCredentials) {
			return nil
		}
		return []corev1.EnvVar{{Name: keys.EnvGoogleApplicationCredentials, Value: credentials}}
	}
	return nil
}

// impersonationURL is the credential configuration's service_account_impersonation_url for a Google service account,
// and none for direct federation.
func impersonationURL(gsa string) string {
	if gsa == "" {
		return ""
	}
	return keys.GCPImpersonationURL(gsa)
}

// TokenVolume is the projected volume of a token with the audience and lifetime, at file (its name left empty).
func TokenVolume(audience string, seconds int64, file string) corev1.Volume {
	return corev1.Volume{
		VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			DefaultMode: ptr.To[int32](0o444),
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience: audience, ExpirationSeconds: ptr.To(seconds), Path: file,
			}}},
		}},
	}
}

// numberedNames are base, base-2, base-3, ...
func numberedNames(base string) func(int) string {
	return func(i int) string {
		if i == 0 {
			return base
		}
		return base + "-" + strconv.Itoa(i+1)
	}
}

// containerBytes is about how much one container's share of the patch (its env and mount) encodes to.
func (inj *injection) containerBytes() int {
	b, _ := patch.AppendEnv(nil, inj.env(&containerView{}))
	return len(b) + len(filesOf[inj.want.Cloud].mountPath) + 63 + 160 // + the volume name, the operations and fields
}

// plan decides what each container gets: the variables it lacks, and the token mount when its token file names the
// webhook's path and does not already lead to the identity's token. It then checks the token invariant on the pod as
// the patch would leave it and leaves every container it does not hold for untouched, with a warning.
func (inj *injection) plan(pod *View) {
	files := filesOf[inj.want.Cloud]
	vols := indexVolumes(pod.Spec.Volumes)
	volume, exists := inj.chooseVolume(vols)
	inj.volume.Name = volume.Name
	annotations := patch.MetaOf(pod.Metadata).Annotations // read only; copied when the patch adds annotations (GCP)
	if len(inj.annotations) > 0 {
		annotations = maps.Clone(annotations)
		if annotations == nil {
			annotations = make(map[string]string, len(inj.annotations))
		}
		maps.Copy(annotations, inj.annotations)
	}
	after := View{Metadata: &patch.Metadata{Annotations: annotations}, Spec: podSpecView{
		InitContainers: append([]containerView(nil), pod.Spec.InitContainers...),
		Containers:     append([]containerView(nil), pod.Spec.Containers...),
		Volumes:        pod.Spec.Volumes,
	}}
	mounted := false
	var untouched []TokenProblem // containers left as they are whose token file is the webhook's but not the token
	for _, list := range []struct {
		init  bool
		views []containerView
	}{{true, after.Spec.InitContainers}, {false, after.Spec.Containers}} {
		for i := range list.views {
			c := &list.views[i]
			if inj.skip[c.Name] {
				continue
			}
			ci := containerInjection{init: list.init, index: i, name: c.Name, env: inj.env(c)}
			changed := *c
			changed.Env = slices.Grow(c.Env[:len(c.Env):len(c.Env)], len(ci.env))
			for _, e := range ci.env {
				changed.Env = append(changed.Env, envView{Name: e.Name, Value: e.Value})
			}
			file, literal, ok := changed.envValue(files.env)
			why := ""
			if ok && literal && file == files.file {
				why = inj.want.reach(c, vols, annotations, file)
			}
			if why != "" && !c.hasMountAt(files.mountPath) {
				ci.mount = &corev1.VolumeMount{Name: volume.Name, MountPath: files.mountPath, ReadOnly: true}
				changed.VolumeMounts = slices.Concat(c.VolumeMounts,
					[]mountView{{Name: volume.Name, MountPath: files.mountPath, ReadOnly: true}})
				mounted = true
			}
			if len(ci.env) > 0 || ci.mount != nil {
				*c = changed
				inj.containers = append(inj.containers, ci)
			} else if why != "" {
				untouched = append(untouched, TokenProblem{Container: c.Name, Init: list.init, Reason: why})
			}
		}
	}
	if mounted && !exists {
		after.Spec.Volumes = slices.Concat(pod.Spec.Volumes, []volumeView{volume})
	}
	inj.keepWhereInvariantHolds(append(tokenInvariant(pod, &after, inj.want), untouched...))
	inj.addVolume = false
	for _, ci := range inj.containers {
		if ci.mount != nil && !exists {
			inj.addVolume = true
		}
	}
}

// maxContainerWarnings bounds the containers named one by one in warnings; the rest are counted.
const maxContainerWarnings = 5

// keepWhereInvariantHolds drops the changes of every container the problems name, with a warning naming it and why
// (the invariant's problems, and containers already reading the webhook's path that lead elsewhere); a problem of the
// pod itself (which planning never causes) drops every change.
func (inj *injection) keepWhereInvariantHolds(problems []TokenProblem) {
	if len(problems) == 0 {
		return
	}
	type containerKey struct {
		init bool
		name string
	}
	drop := map[containerKey]bool{}
	named := 0
	for _, p := range problems {
		if p.Container == "" {
			inj.containers = nil
			inj.warnings = append(inj.warnings, verdict.FitMessage(inj.identity, "nothing injected: "+p.Reason))
			return
		}
		key := containerKey{p.Init, p.Container}
		if drop[key] {
			continue
		}
		drop[key] = true
		if named++; named <= maxContainerWarnings {
			what := "container "
			if p.Init {
				what = "init container "
			}
			inj.warnings = append(inj.warnings, verdict.FitMessage(inj.identity,
				what+p.Container+" left untouched: "+p.Reason, p.Container+" left untouched: "+p.Reason))
		}
	}
	if named > maxContainerWarnings {
		inj.warnings = append(inj.warnings, verdict.FitMessage(inj.identity,
			fmt.Sprintf("%d more containers left untouched for the same kind of reason", named-maxContainerWarnings)))
	}
	kept := inj.containers[:0]
	for _, ci := range inj.containers {
		if !drop[containerKey{ci.init, ci.name}] {
			kept = append(kept, ci)
		}
	}
	inj.containers = kept
}

// chooseVolume names the token volume: the first candidate name the pod does not use, or that names a volume holding
// exactly this token (then exists is true and nothing is added). A volume is never adopted by its name alone.
func (inj *injection) chooseVolume(vols volumes) (view volumeView, exists bool) {
	view = volumeView{Kind: "projected", Projected: &projectedView{DefaultMode: inj.volume.Projected.DefaultMode}}
	for _, src := range inj.volume.Projected.Sources {
		var p projectionView
		if t := src.ServiceAccountToken; t != nil {
			p.ServiceAccountToken = &tokenProjectionView{Audience: t.Audience, ExpirationSeconds: t.ExpirationSeconds,
				Path: t.Path}
		}
		if d := src.DownwardAPI; d != nil {
			p.DownwardAPI = &struct {
				Items []downwardAPIFileView `json:"items"`
			}{}
			for _, item := range d.Items {
				f := downwardAPIFileView{Path: item.Path}
				if item.FieldRef != nil {
					f.FieldRef = &struct {
						FieldPath string `json:"fieldPath"`
					}{item.FieldRef.FieldPath}
				}
				p.DownwardAPI.Items = append(p.DownwardAPI.Items, f)
			}
		}
		view.Projected.Sources = append(view.Projected.Sources, p)
	}
	for i := 0; ; i++ {
		name := inj.volumeNames(i)
		have := vols.named(name)
		view.Name = name
		if have == nil {
			return view, false
		}
		if sameToken(have, &view) {
			return *have, true
		}
	}
}

// sameToken reports whether an existing volume projects exactly the files of the one full injection would add, and
// every user can read them (a cloud webhook leaves defaultMode unset: 0644).
func sameToken(have, want *volumeView) bool {
	if have.Kind != "projected" || have.Projected == nil {
		return false
	}
	if m := have.Projected.DefaultMode; m != nil && *m&0o444 != 0o444 {
		return false
	}
	return reflect.DeepEqual(have.Projected.Sources, want.Projected.Sources)
}

// patch appends the operations that apply inj to pod: env and mounts per container, then the volume once.
func (inj *injection) patch(ops []jsonpatch.Operation, pod *View) []jsonpatch.Operation {
	for _, ci := range inj.containers {
		list, views := "/spec/containers", pod.Spec.Containers
		if ci.init {
			list, views = "/spec/initContainers", pod.Spec.InitContainers
		}
		c := &views[ci.index]
		base := list + "/" + strconv.Itoa(ci.index)
		ops = patch.AppendToArray(ops, base+"/env", c.Env != nil, ci.env)
		if ci.mount != nil {
			ops = patch.AppendToArray(ops, base+"/volumeMounts", c.VolumeMounts != nil, []corev1.VolumeMount{*ci.mount})
		}
	}
	if inj.addVolume {
		ops = patch.AppendToArray(ops, "/spec/volumes", pod.Spec.Volumes != nil, []corev1.Volume{inj.volume})
	}
	return ops
}
