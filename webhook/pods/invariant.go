package pods

import (
	"encoding/json"
	"fmt"
	"path"
	"reflect"
	"strings"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/patch"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// The token invariant: after full injection, every container that received a token-file env var
// (AWS_WEB_IDENTITY_TOKEN_FILE, AZURE_FEDERATED_TOKEN_FILE, GOOGLE_APPLICATION_CREDENTIALS), or that the patch changed
// while its own env var names the webhook's file, reads at exactly that path a projected ServiceAccount token with the
// identity's audience, through a mount of a volume the webhook added or verified. A volume the webhook adds projects
// the identity's lifetime too; a token the pod already projects there (its author's, or an earlier injection's) is
// used with the lifetime it has: the token is there and valid, and the webhook never rewrites a volume. The handler checks it on
// every patch it computes and leaves a container it does not hold for untouched, with a warning; the tests check it on
// the patched pods themselves.

// TokenWant is the token a pod's injected containers must read: the identity's audience and lifetime, and for GCP the
// Google service account the credential configuration impersonates (none for direct federation).
type TokenWant struct {
	Cloud             policy.Cloud
	Audience          string
	ExpirationSeconds int64
	GCPServiceAccount string
}

// TokenProblem is a container the token invariant does not hold for; Container is empty for a problem of the pod.
type TokenProblem struct {
	Container string
	Init      bool
	Reason    string
}

func (p TokenProblem) String() string {
	switch {
	case p.Container == "":
		return p.Reason
	case p.Init:
		return "init container " + p.Container + ": " + p.Reason
	}
	return "container " + p.Container + ": " + p.Reason
}

// cloudFiles is where a cloud's SDK finds its identity: the env var naming the file it reads, and the file and mount
// full injection uses. For GCP the file is the external_account configuration, whose credential_source.file is the
// token.
type cloudFiles struct {
	env, mountPath, file string
}

var filesOf = map[policy.Cloud]cloudFiles{
	policy.CloudAWS: {keys.EnvAWSWebIdentityTokenFile, keys.AWSTokenMountPath,
		path.Join(keys.AWSTokenMountPath, keys.AWSTokenPath)},
	policy.CloudAzure: {keys.EnvAzureFederatedTokenFile, keys.AzureTokenMountPath,
		path.Join(keys.AzureTokenMountPath, keys.AzureTokenPath)},
	policy.CloudGCP: {keys.EnvGoogleApplicationCredentials, keys.GCPMountPath,
		path.Join(keys.GCPMountPath, keys.GCPCredentialConfigPath)},
}

// gcpConfigFieldPath is the downward API field that projects the credential configuration annotation into a file.
var gcpConfigFieldPath = "metadata.annotations['" + keys.AnnotationGCPCredentialConfig + "']"

// CheckTokenInvariant checks the token invariant on a pod before and after a patch (both as the API server stores a
// pod: JSON). The namespace and policy play no part: want says what the token must be.
func CheckTokenInvariant(before, after []byte, want TokenWant) ([]TokenProblem, error) {
	var views [2]View
	for i, raw := range [][]byte{before, after} {
		if err := verdict.DecodeObject(raw, &views[i]); err != nil {
			return nil, fmt.Errorf("decode pod: %w", err)
		}
		if err := views[i].Spec.decodeLists(); err != nil {
			return nil, err
		}
	}
	return tokenInvariant(&views[0], &views[1], want), nil
}

// tokenInvariant is the invariant on the views of a pod before and after a patch: the patch kept the pod's containers
// and volumes (it may only append), left skipped containers alone, added only mounts of volumes the pod has at paths
// not mounted yet, and every container it changed that reads the webhook's file (one the patch named, or its own
// env var naming the webhook's path) reads the wanted token there.
func tokenInvariant(before, after *View, want TokenWant) []TokenProblem {
	var problems []TokenProblem
	pod := func(format string, args ...any) {
		problems = append(problems, TokenProblem{Reason: fmt.Sprintf(format, args...)})
	}
	bv, av := before.Spec.Volumes, after.Spec.Volumes
	if len(av) < len(bv) {
		pod("the patch removed volumes")
		return problems
	}
	vols := indexVolumes(av)
	vols.added = len(bv)
	for i := range av {
		if i < len(bv) && !reflect.DeepEqual(bv[i], av[i]) {
			pod("the patch changed volume %s", verdict.Short(bv[i].Name))
		}
		if vols.byName[av[i].Name] != i {
			pod("two volumes are named %s", verdict.Short(av[i].Name))
		}
	}
	files := filesOf[want.Cloud]
	annotations := patch.MetaOf(after.Metadata).Annotations
	skip := SkippedContainers(want.Cloud, patch.MetaOf(before.Metadata).Annotations)
	for _, lists := range []struct {
		init   bool
		bl, al []containerView
	}{{true, before.Spec.InitContainers, after.Spec.InitContainers}, {false, before.Spec.Containers, after.Spec.Containers}} {
		init, bl, al := lists.init, lists.bl, lists.al
		if len(bl) != len(al) {
			pod("the patch changed the number of containers")
			continue
		}
		for i := range al {
			b, a := &bl[i], &al[i]
			problem := func(format string, args ...any) {
				problems = append(problems, TokenProblem{Container: a.Name, Init: init, Reason: fmt.Sprintf(format, args...)})
			}
			if a.Name != b.Name {
				problem("the patch renamed it from %s", b.Name)
				continue
			}
			if len(a.Env) == len(b.Env) && len(a.VolumeMounts) == len(b.VolumeMounts) {
				continue // untouched: what it reads is the author's
			}
			if skip[a.Name] {
				problem("changed although the pod's skip-containers annotation names it")
			}
			for j := len(b.VolumeMounts); j < len(a.VolumeMounts); j++ {
				m := a.VolumeMounts[j]
				if vols.named(m.Name) == nil {
					problem("the patch mounts volume %s, which the pod does not have", verdict.Short(m.Name))
				}
				for k := range a.VolumeMounts {
					if k != j && path.Clean(a.VolumeMounts[k].MountPath) == path.Clean(m.MountPath) {
						problem("the patch mounts a second volume at %s", m.MountPath)
						break
					}
				}
			}
			value, literal, ok := a.envValue(files.env)
			received := ok && !b.hasEnv(files.env)
			switch {
			case received && !literal:
				problem("the patch set %s to a value the kubelet must resolve", files.env)
			case ok && literal && (received || value == files.file):
				if why := want.reach(a, vols, annotations, value); why != "" {
					problem("%s", why)
				}
			}
		}
	}
	return problems
}

// reach says why file, read in container c of a pod with volumes vols and annotations, is not the wanted token (for
// GCP: not a credential configuration for the wanted identity whose token file is the wanted token); "" when it is.
func (w TokenWant) reach(c *containerView, vols volumes, annotations map[string]string, file string) string {
	if w.Cloud != policy.CloudGCP {
		return w.tokenProblem(leadOf(c, vols, file, "token file"))
	}
	l := leadOf(c, vols, file, "credential file")
	if l.problem != "" {
		return l.problem
	}
	if l.file == nil || l.file.FieldRef == nil || l.file.FieldRef.FieldPath != gcpConfigFieldPath {
		return fmt.Sprintf("volume %s projects no credential configuration at %s", verdict.Short(l.volume.Name), l.rel)
	}
	var config gcpCredentialConfig
	if err := json.Unmarshal([]byte(annotations[keys.AnnotationGCPCredentialConfig]), &config); err != nil {
		return fmt.Sprintf("annotation %s is not a credential configuration", keys.AnnotationGCPCredentialConfig)
	}
	switch {
	case config.Type != "external_account" || config.SubjectTokenType != keys.GCPSubjectTokenType ||
		config.TokenURL != keys.GCPSTSTokenURL:
		return fmt.Sprintf("annotation %s is not an external_account configuration for Google's STS",
			keys.AnnotationGCPCredentialConfig)
	case config.Audience != w.Audience:
		return fmt.Sprintf("the credential configuration's audience is %q, not %q", verdict.Short(config.Audience), w.Audience)
	case config.ServiceAccountImpersonationURL != impersonationURL(w.GCPServiceAccount) && w.GCPServiceAccount == "":
		return "the credential configuration impersonates a Google service account, and the identity is direct federation"
	case config.ServiceAccountImpersonationURL != impersonationURL(w.GCPServiceAccount):
		return "the credential configuration impersonates another Google service account than " + w.GCPServiceAccount
	}
	return w.tokenProblem(leadOf(c, vols, config.CredentialSource.File, "token file"))
}

// tokenProblem says why the file l leads to is not the wanted token; "" when it is.
func (w TokenWant) tokenProblem(l fileLead) string {
	if l.problem != "" {
		return l.problem
	}
	if l.token == nil {
		return fmt.Sprintf("%s in volume %s is not a ServiceAccount token", l.rel, verdict.Short(l.volume.Name))
	}
	seconds := int64(3600) // the API server's default expirationSeconds
	if l.token.ExpirationSeconds != nil {
		seconds = *l.token.ExpirationSeconds
	}
	switch {
	case l.token.Audience != w.Audience:
		return fmt.Sprintf("its token is for audience %q, not %q (volume %s)", verdict.Short(l.token.Audience), w.Audience,
			verdict.Short(l.volume.Name))
	case seconds != w.ExpirationSeconds && !l.own:
		return fmt.Sprintf("its token lives %d s, not %d s (volume %s)", seconds, w.ExpirationSeconds,
			verdict.Short(l.volume.Name))
	}
	return ""
}

// fileLead is where a path leads in a container: the mount serving it (the deepest mount at or above it, as the
// container runtime orders mounts), the volume, the path inside the volume, and the token or downward API file
// projected there. problem says why nothing usable is there.
type fileLead struct {
	volume  *volumeView
	own     bool // the pod had the volume before the patch
	rel     string
	token   *tokenProjectionView
	file    *downwardAPIFileView
	problem string
}

// leadOf follows file through c's mounts to what reading it finds; what names the file in messages ("token file").
func leadOf(c *containerView, vols volumes, file, what string) fileLead {
	switch {
	case !path.IsAbs(file):
		return fileLead{problem: "its " + what + " is not an absolute path"}
	case strings.HasSuffix(file, "/"):
		return fileLead{problem: "its " + what + " ends in '/': no file is read there"}
	}
	file = path.Clean(file)
	var mount *mountView
	best, twice := "", false
	for i := range c.VolumeMounts {
		mp := path.Clean(c.VolumeMounts[i].MountPath)
		if !(mp == "/" || file == mp || strings.HasPrefix(file, mp+"/")) {
			continue
		}
		switch {
		case mount == nil || len(mp) > len(best):
			mount, best, twice = &c.VolumeMounts[i], mp, false
		case mp == best:
			twice = true
		}
	}
	switch {
	case mount == nil:
		return fileLead{problem: "no volume is mounted over its " + what}
	case twice:
		return fileLead{problem: "two volumes are mounted at " + best}
	case mount.SubPath != "" || mount.SubPathExpr != "":
		return fileLead{problem: fmt.Sprintf("volume %s is mounted by subPath: a token there never refreshes",
			verdict.Short(mount.Name))}
	}
	l := fileLead{rel: strings.TrimPrefix(strings.TrimPrefix(file, best), "/"), volume: vols.named(mount.Name),
		own: vols.own(mount.Name)}
	switch {
	case l.volume == nil:
		l.problem = fmt.Sprintf("its %s is on volume %s, which the pod does not have", what, verdict.Short(mount.Name))
	case l.volume.Projected == nil:
		l.problem = fmt.Sprintf("its %s is on volume %s (%s), not a projected token", what, verdict.Short(mount.Name),
			verdict.Short(l.volume.Kind))
	case l.volume.Projected.DefaultMode != nil && *l.volume.Projected.DefaultMode&0o444 != 0o444:
		l.problem = fmt.Sprintf("volume %s has defaultMode %#o: not every user can read it", verdict.Short(mount.Name),
			*l.volume.Projected.DefaultMode)
	}
	if l.problem != "" {
		return l
	}
	for _, s := range l.volume.Projected.Sources {
		if t := s.ServiceAccountToken; t != nil && path.Clean(t.Path) == l.rel {
			l.token = t
		}
		if s.DownwardAPI != nil {
			for i := range s.DownwardAPI.Items {
				if path.Clean(s.DownwardAPI.Items[i].Path) == l.rel {
					l.file = &s.DownwardAPI.Items[i]
				}
			}
		}
	}
	if l.token == nil && l.file == nil {
		l.problem = fmt.Sprintf("volume %s has no file %s", verdict.Short(mount.Name), l.rel)
	}
	return l
}

// volumes is a pod's volumes with an index by name, so that following every container's mounts and choosing the
// token volume's name cost one lookup each, however many volumes a request lists. A name listed twice (which the API
// server refuses after admission) leads to its first volume.
type volumes struct {
	list   []volumeView
	byName map[string]int
	// added is where the volumes a patch added start; every volume before it the pod already had.
	added int
}

func indexVolumes(list []volumeView) volumes {
	v := volumes{list: list, byName: make(map[string]int, len(list)), added: len(list)}
	for i := range list {
		if _, seen := v.byName[list[i].Name]; !seen {
			v.byName[list[i].Name] = i
		}
	}
	return v
}

// own says whether the pod had the volume of that name before the patch.
func (v volumes) own(name string) bool {
	i, ok := v.byName[name]
	return ok && i < v.added
}

// named is the volume of that name, nil when the pod has none.
func (v volumes) named(name string) *volumeView {
	if i, ok := v.byName[name]; ok {
		return &v.list[i]
	}
	return nil
}
