package doctor

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy/trust"
)

// Long-lived cloud credentials in a Flux controller's pod: the clouds' SDKs prefer them to workload identity, so every
// object authenticating with the controller's identity (and, for the AWS keys, every object of a cloud whose SDK
// reads the environment first) uses them. doctor reads the Deployment's pod template, which is what the pods are made
// from and what a fix edits, and names the variables and mounts: it never reads a Secret nor prints a value.

// credentialFinding reports the long-lived credentials r's pod template gives its containers.
func (d *diagnosis) credentialFinding(r *running) (Finding, bool) {
	spec := &r.dep.Spec.Template.Spec
	secretVolumes := map[string]bool{}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			secretVolumes[v.Name] = true
		}
		if v.Projected != nil && slices.ContainsFunc(v.Projected.Sources, func(s corev1.VolumeProjection) bool {
			return s.Secret != nil
		}) {
			secretVolumes[v.Name] = true
		}
	}
	var found, commands []string
	var mountOps []map[string]any
	for _, group := range []struct {
		field      string
		containers []corev1.Container
	}{{"initContainers", spec.InitContainers}, {"containers", spec.Containers}} {
		for ci, c := range group.containers {
			var names []string
			for _, e := range c.Env {
				from := ""
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					from = " (from a Secret)"
				}
				switch {
				case slices.Contains(keys.StaticCredentialEnv, e.Name):
					names = append(names, e.Name+from)
				case slices.Contains(keys.CredentialFileEnv, e.Name):
					if from != "" {
						names = append(names, e.Name+from)
					} else if v := secretMountOf(c, secretVolumes, e.Value); v != "" {
						names = append(names, e.Name+" (a file of Secret volume "+v+")")
					}
				}
			}
			var unset []string
			for _, n := range names {
				unset = append(unset, strings.Fields(n)[0]+"-")
			}
			for mi := len(c.VolumeMounts) - 1; mi >= 0; mi-- {
				m := c.VolumeMounts[mi]
				if secretVolumes[m.Name] && credentialDir(m.MountPath) {
					names = append(names, "Secret volume "+m.Name+" at "+m.MountPath)
					mountOps = append(mountOps, map[string]any{"op": "remove",
						"path": fmt.Sprintf("/spec/template/spec/%s/%d/volumeMounts/%d", group.field, ci, mi)})
				}
			}
			for _, ef := range c.EnvFrom {
				if ef.SecretRef != nil {
					d.notes = append(d.notes, fmt.Sprintf("%s/%s takes environment variables from a Secret in container "+
						"%s: doctor does not read Secrets, check it holds none of %s", r.namespace, r.name, c.Name,
						strings.Join(keys.StaticCredentialEnv, ", ")))
				}
			}
			if len(names) == 0 {
				continue
			}
			found = append(found, "container "+c.Name+": "+strings.Join(names, ", "))
			if len(unset) > 0 {
				commands = append(commands, "kubectl -n "+r.namespace+" set env deployment/"+r.name+" -c "+c.Name+" "+
					strings.Join(unset, " "))
			}
		}
	}
	if len(found) == 0 {
		return Finding{}, false
	}
	if len(mountOps) > 0 {
		raw, err := json.Marshal(mountOps)
		if err != nil {
			panic(err) // strings always marshal
		}
		commands = append(commands, "kubectl -n "+r.namespace+" patch deployment "+r.name+" --type json -p "+
			trust.ShellQuote(string(raw)))
	}
	fix := strings.Join(commands, " && ") + " (in Git: the patch that adds them), then map " + r.namespace + "/" +
		r.name + " in the policy for a workload identity"
	if fi := d.instanceOf(r); fi != nil {
		fix = "remove the spec.kustomize.patches entry of FluxInstance " + fi.namespace + "/" + fi.name +
			" that adds them (Flux Operator reverts edits of the Deployment), then map " + r.namespace + "/" + r.name +
			" in the policy for a workload identity"
	}
	return Finding{Check: CheckFlux, Namespace: r.namespace, Name: "deployment/" + r.name,
		Problem: "gives long-lived cloud credentials, which the cloud SDKs prefer to workload identity: " +
			strings.Join(found, "; "),
		Fix: fix}, true
}

// secretMountOf names the Secret volume a container reads file from, "" when none (the webhook's external_account
// configuration, a ConfigMap, the image's own files). The deepest mount holding the file is the one that serves it.
func secretMountOf(c corev1.Container, secretVolumes map[string]bool, file string) string {
	if file == "" {
		return ""
	}
	file = path.Clean(file)
	best, volume := -1, ""
	for _, m := range c.VolumeMounts {
		dir := path.Clean(m.MountPath)
		if file == dir || strings.HasPrefix(file, strings.TrimSuffix(dir, "/")+"/") {
			if len(dir) > best {
				best, volume = len(dir), m.Name
			}
		}
	}
	if secretVolumes[volume] {
		return volume
	}
	return ""
}

// credentialDir says whether a mount path is where an SDK reads credential files by default.
func credentialDir(mountPath string) bool {
	p := path.Clean(mountPath)
	for _, dir := range keys.CredentialDirs {
		if strings.HasSuffix(p, dir) || strings.Contains(p, dir+"/") {
			return true
		}
	}
	return false
}
