package azurecompat

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// What an SDK in each container of a patched pod would see, computed here on the API types, independently of the
// webhook's own views: the identity variables, where AZURE_FEDERATED_TOKEN_FILE leads (a token with its audience and
// lifetime, another kind of file, or nothing), and what each of the author's mounts shows. Whether the API server
// would store the pod at all is part of it.

var identityEnv = []string{"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST"}

type containerSDK struct {
	Env   map[string]string
	Token string
	// Mounts maps each mount path the author had to the volume source it shows after the patch.
	Mounts map[string]string
}

type podSDK struct {
	Allowed bool
	// Refused says why the API server would refuse the patched pod ("" when it stores it).
	Refused    string
	Containers map[string]containerSDK // by "init/NAME" or NAME
}

// sdkView computes what the patched pod's containers see; before gives the author's mounts.
func sdkView(a answer, before *corev1.Pod, after *corev1.Pod) podSDK {
	v := podSDK{Allowed: a.allowed}
	if !a.allowed {
		return v
	}
	v.Refused = refused(after)
	v.Containers = map[string]containerSDK{}
	authorMounts := map[string][]string{}
	for _, l := range [][]corev1.Container{before.Spec.InitContainers, before.Spec.Containers} {
		for _, c := range l {
			for _, m := range c.VolumeMounts {
				authorMounts[keyOf(before, c.Name)] = append(authorMounts[keyOf(before, c.Name)], m.MountPath)
			}
		}
	}
	for _, l := range [][]corev1.Container{after.Spec.InitContainers, after.Spec.Containers} {
		for i := range l {
			c := &l[i]
			key := keyOf(after, c.Name)
			cs := containerSDK{Env: map[string]string{}, Mounts: map[string]string{}}
			for _, e := range c.Env {
				if slices.Contains(identityEnv, e.Name) {
					if e.ValueFrom != nil {
						cs.Env[e.Name] = "<from a source>"
					} else {
						cs.Env[e.Name] = e.Value
					}
				}
			}
			if file, ok := cs.Env["AZURE_FEDERATED_TOKEN_FILE"]; ok {
				cs.Token = leadsTo(after, c, file)
			}
			for _, p := range authorMounts[key] {
				cs.Mounts[p] = shows(after, c, p)
			}
			v.Containers[key] = cs
		}
	}
	return v
}

func keyOf(pod *corev1.Pod, name string) string {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return "init/" + name
		}
	}
	return name
}

// refused is the API server's validation of what injection touches: one volume per name, every mount naming a
// volume, one mount per path in a container.
func refused(pod *corev1.Pod) string {
	names := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		if names[v.Name] {
			return "two volumes named " + v.Name
		}
		names[v.Name] = true
	}
	for _, l := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range l {
			paths := map[string]bool{}
			for _, m := range c.VolumeMounts {
				switch p := path.Clean(m.MountPath); {
				case !names[m.Name]:
					return fmt.Sprintf("container %s mounts missing volume %s", c.Name, m.Name)
				case paths[p]:
					return fmt.Sprintf("container %s mounts two volumes at %s", c.Name, p)
				default:
					paths[p] = true
				}
			}
		}
	}
	return ""
}

// mountOver is the mount serving file in c: the deepest mount at or above it (container runtimes mount parents first).
func mountOver(c *corev1.Container, file string) (*corev1.VolumeMount, string) {
	var best *corev1.VolumeMount
	bestPath := ""
	for i := range c.VolumeMounts {
		p := path.Clean(c.VolumeMounts[i].MountPath)
		if (p == "/" || file == p || strings.HasPrefix(file, p+"/")) && len(p) > len(bestPath) {
			best, bestPath = &c.VolumeMounts[i], p
		}
	}
	return best, bestPath
}

func volumeNamed(pod *corev1.Pod, name string) *corev1.Volume {
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Name == name {
			return &pod.Spec.Volumes[i]
		}
	}
	return nil
}

// leadsTo says what reading file in c finds.
func leadsTo(pod *corev1.Pod, c *corev1.Container, file string) string {
	switch {
	case strings.Contains(file, "$("), file == "<from a source>":
		return "resolved by the kubelet"
	case !path.IsAbs(file) || strings.HasSuffix(file, "/"):
		return "nothing"
	}
	file = path.Clean(file)
	m, at := mountOver(c, file)
	if m == nil {
		return "nothing"
	}
	v := volumeNamed(pod, m.Name)
	if v == nil {
		return "nothing"
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(file, at), "/")
	stale := ""
	if m.SubPath != "" || m.SubPathExpr != "" {
		rel, stale = path.Join(m.SubPath, rel), " never refreshed (subPath)"
	}
	if v.Projected == nil {
		return "a file of a " + sourceKind(v.VolumeSource) + " volume"
	}
	for _, s := range v.Projected.Sources {
		switch {
		case s.ServiceAccountToken != nil && path.Clean(s.ServiceAccountToken.Path) == rel:
			seconds := int64(3600)
			if s.ServiceAccountToken.ExpirationSeconds != nil {
				seconds = *s.ServiceAccountToken.ExpirationSeconds
			}
			return fmt.Sprintf("token for %s, %d s%s", s.ServiceAccountToken.Audience, seconds, stale)
		case s.ConfigMap != nil || s.Secret != nil:
			return "a file of a projected configMap or secret"
		}
	}
	return "nothing"
}

// shows is the volume source a container's mount at p shows after the patch ("" when it has no mount there anymore).
func shows(pod *corev1.Pod, c *corev1.Container, p string) string {
	for _, m := range c.VolumeMounts {
		if m.MountPath == p {
			if v := volumeNamed(pod, m.Name); v != nil {
				b, _ := json.Marshal(v.VolumeSource)
				return string(b)
			}
			return "a missing volume"
		}
	}
	return ""
}

func sourceKind(s corev1.VolumeSource) string {
	b, _ := json.Marshal(s)
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(b, &fields)
	for k := range fields {
		return k
	}
	return "unknown"
}

// differences lists where two views differ: "admission", "refused", or "container KEY" (also for a container only one
// pod has).
func differences(a, b podSDK) []string {
	switch {
	case a.Allowed != b.Allowed:
		return []string{"admission"}
	case !a.Allowed:
		return nil
	case (a.Refused == "") != (b.Refused == ""):
		return []string{"refused"}
	case a.Refused != "":
		return nil
	}
	var out []string
	keys := map[string]bool{}
	for k := range a.Containers {
		keys[k] = true
	}
	for k := range b.Containers {
		keys[k] = true
	}
	for k := range keys {
		ca, oka := a.Containers[k]
		cb, okb := b.Containers[k]
		switch {
		case oka != okb, !equalContainer(ca, cb):
			out = append(out, "container "+k)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func equalContainer(a, b containerSDK) bool {
	return a.Token == b.Token && mapsEqual(a.Env, b.Env) && mapsEqual(a.Mounts, b.Mounts)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
