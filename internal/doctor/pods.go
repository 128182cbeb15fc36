package doctor

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/pods"
)

// stalePod is a running pod of a mapped ServiceAccount without the identity its ServiceAccount carries.
type stalePod struct {
	namespace, name, identity string
	// problem says what the pod lacks and, when the API server recorded it, that it started before the
	// ServiceAccount's identity annotation was written.
	problem string
	// owner is the pod's controller, if any; a ReplicaSet is resolved to its Deployment for the fix.
	owner *metav1.OwnerReference
	// deployment is the owning ReplicaSet's Deployment, once resolveOwners found it.
	deployment string
}

// readPods checks the running pods of mapped ServiceAccounts and keeps those without their identity.
func (d *diagnosis) readPods(ctx context.Context) error {
	newList := func() *corev1.PodList { return &corev1.PodList{} }
	return listIn(ctx, d, scopeFor(d.mapped, d.namespaces), "pods", newList, func(list *corev1.PodList) error {
		for i := range list.Items {
			pod := &list.Items[i]
			sa := pods.PodServiceAccount(&pod.Spec)
			m, ok := d.p.IdentityFor(pod.Namespace, sa)
			if !ok {
				continue
			}
			problem, bad := checkPod(pod, m)
			if !bad {
				continue
			}
			if at := d.serviceAccounts[pod.Namespace+"/"+sa]; at != nil && at.After(pod.CreationTimestamp.Time) {
				problem += fmt.Sprintf(" (pod created %s, ServiceAccount annotation %s last written %s)",
					pod.CreationTimestamp.UTC().Format(time.RFC3339), identityKey(m.Cloud), at.UTC().Format(time.RFC3339))
			}
			d.stale = append(d.stale, stalePod{namespace: pod.Namespace, name: pod.Name, identity: m.Identity.Name,
				problem: problem, owner: metav1.GetControllerOf(pod)})
		}
		return nil
	})
}

// checkPod says what is wrong with a running pod of a ServiceAccount mapped to m: the cloud's variables that webhooks
// inject at creation are absent, or name another identity, in a container or init container full injection does not
// skip. GKE pods annotated for Workload Identity carry nothing (the metadata server reads the ServiceAccount), so they
// are not checked.
func checkPod(pod *corev1.Pod, m policy.Match) (string, bool) {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed || pod.DeletionTimestamp != nil {
		return "", false
	}
	if problem, bad := checkAWSMechanisms(pod, m); bad {
		return problem, true
	}
	var name, want, fileVar string
	switch {
	case m.Cloud == policy.CloudAWS && m.Identity.AWS.PodIdentity():
		return checkPodIdentityPod(pod)
	case m.Cloud == policy.CloudAWS:
		name, want, fileVar = keys.EnvAWSRoleARN, m.RoleARN, keys.EnvAWSWebIdentityTokenFile
	case m.Cloud == policy.CloudAzure:
		name, want, fileVar = keys.EnvAzureClientID, m.Identity.Azure.ClientID, keys.EnvAzureFederatedTokenFile
	case m.Identity.Injection == policy.InjectionFull:
		name = keys.EnvGoogleApplicationCredentials
	default:
		return "", false
	}
	return firstContainer(m.Cloud, pod, func(where string, c corev1.Container) (string, bool) {
		have, ok := envValue(c.Env, name)
		switch {
		case !ok:
			return "runs without " + name + " in " + where + ": it started before its ServiceAccount " +
				"was mapped, or no webhook injected it", true
		case want != "" && have != want:
			return fmt.Sprintf("runs with %s=%q in %s, want %s: it started before its ServiceAccount "+
				"changed, or its spec sets the variable itself", name, have, where, want), true
		case fileVar != "":
			if _, ok := envValue(c.Env, fileVar); !ok {
				return "runs without " + fileVar + " in " + where + ": its token is not mounted", true
			}
		}
		return "", false
	})
}

// firstContainer returns the first problem check finds in the pod's containers, then init containers, that the
// cloud's webhook does not skip (pods.SkippedContainers); where names the container.
func firstContainer(cloud policy.Cloud, pod *corev1.Pod,
	check func(where string, c corev1.Container) (string, bool)) (string, bool) {
	skip := pods.SkippedContainers(cloud, pod.Annotations)
	for _, group := range []struct {
		what       string
		containers []corev1.Container
	}{{"container", pod.Spec.Containers}, {"init container", pod.Spec.InitContainers}} {
		for _, c := range group.containers {
			if skip[c.Name] {
				continue
			}
			if problem, bad := check(group.what+" "+c.Name, c); bad {
				return problem, true
			}
		}
	}
	return "", false
}

// envValue is the value a process sees: when a name is listed twice the later entry wins (the kubelet's
// kubecontainer.MakeEnvironmentVariables builds a map in list order), as webhook's containerView.envValue reads it.
func envValue(env []corev1.EnvVar, name string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if env[i].Name == name {
			return env[i].Value, true
		}
	}
	return "", false
}

// resolveOwners finds the Deployments of the ReplicaSets that own stale pods, reading only the ReplicaSets' metadata
// in the namespaces that hold such pods: one List a namespace, or cluster-wide when they are many, instead of one
// request per ReplicaSet.
func (d *diagnosis) resolveOwners(ctx context.Context) error {
	owners := map[string]string{} // NS/ReplicaSet -> its Deployment ("" until found)
	namespaces := map[string]bool{}
	for _, s := range d.stale {
		if s.owner != nil && s.owner.Kind == "ReplicaSet" {
			owners[s.namespace+"/"+s.owner.Name] = ""
			namespaces[s.namespace] = true
		}
	}
	if len(owners) == 0 {
		return nil
	}
	newList := func() *metav1.PartialObjectMetadataList {
		l := &metav1.PartialObjectMetadataList{}
		l.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("ReplicaSetList"))
		return l
	}
	err := listIn(ctx, d, scopeFor(slices.Sorted(maps.Keys(namespaces)), d.namespaces), "replicasets", newList,
		func(list *metav1.PartialObjectMetadataList) error {
			for i := range list.Items {
				rs := &list.Items[i]
				key := rs.Namespace + "/" + rs.Name
				if _, ok := owners[key]; !ok {
					continue
				}
				if c := metav1.GetControllerOf(rs); c != nil && c.Kind == "Deployment" {
					owners[key] = c.Name
				}
			}
			return nil
		})
	for i := range d.stale {
		if s := &d.stale[i]; s.owner != nil && s.owner.Kind == "ReplicaSet" {
			s.deployment = owners[s.namespace+"/"+s.owner.Name]
		}
	}
	return err
}

// podFindings turns the stale pods into one finding per workload: the fix restarts the workload, and every pod of it
// comes back with the identity.
func (d *diagnosis) podFindings() []Finding {
	slices.SortFunc(d.stale, func(a, b stalePod) int {
		return cmp.Or(cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.name, b.name))
	})
	var out []Finding
	seen := map[string]int{} // NS + workload -> index in out
	for _, s := range d.stale {
		workload := s.workload()
		if j, ok := seen[s.namespace+" "+workload]; ok {
			if rest, one := strings.CutPrefix(out[j].Problem, "a pod of "+workload+" runs "); one {
				out[j].Problem = "pods of " + workload + " run " + rest
			}
			continue
		}
		seen[s.namespace+" "+workload] = len(out)
		d.staleWorkloads[s.namespace+" "+workload] = true
		out = append(out, Finding{Check: CheckPod, Namespace: s.namespace, Name: s.name, Identity: s.identity,
			Problem: "a pod of " + workload + " " + s.problem, Fix: restartCommand(s.namespace, workload, s.name)})
	}
	d.stale = nil
	return out
}

// workload names what owns the pod, for kubectl rollout restart: deployment/NAME through its ReplicaSet,
// statefulset/NAME, daemonset/NAME; pod/NAME for a pod nothing owns.
func (s stalePod) workload() string {
	switch {
	case s.owner == nil:
		return "pod/" + s.name
	case s.deployment != "":
		return "deployment/" + s.deployment
	default:
		return strings.ToLower(s.owner.Kind) + "/" + s.owner.Name
	}
}

func restartCommand(ns, workload, podName string) string {
	kind, _, _ := strings.Cut(workload, "/")
	switch kind {
	case "deployment", "statefulset", "daemonset":
		return "kubectl -n " + ns + " rollout restart " + workload
	case "pod":
		return "kubectl -n " + ns + " delete pod " + podName + " # then recreate it from its manifest"
	default:
		return "kubectl -n " + ns + " delete pod " + podName + " # its " + kind + " recreates it"
	}
}
