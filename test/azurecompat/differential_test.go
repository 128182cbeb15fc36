package azurecompat

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/test/podgen"
	"github.com/fluxidentity/flux-identity-webhook/webhook"
	"github.com/fluxidentity/flux-identity-webhook/webhook/pods"
	"github.com/fluxidentity/flux-identity-webhook/webhook/serviceaccounts"
)

// TestDifferentialAgainstTheAzureWebhook runs the Azure Workload Identity webhook's own mutator (v1.6.0) and this
// webhook's full injection on the same generated pods (test/podgen, plus pods the Azure mutator injected before, some
// with a container added since), applies both patches and compares what an SDK in each container would see. Every
// difference must be one that differences.yaml lists with its reason; this webhook's pods must satisfy the token
// invariant (pods.CheckTokenInvariant) and be pods the API server stores.

const differentialPods = 3000

// differentialPolicy has one identity per Azure cloud in enforce mode and one in warn mode; their lifetimes differ so
// that pods injected earlier with another lifetime occur.
const differentialPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata: {name: azure-differential}
identities:
  - name: public
    namespaces: [flux-system]
    serviceAccounts: [public]
    azure: {clientID: 00000000-0000-0000-0000-000000000001, tenantID: 00000000-0000-0000-0000-0000000000aa}
    injection: full
  - name: gov
    namespaces: [flux-system]
    serviceAccounts: [gov]
    azure:
      clientID: 00000000-0000-0000-0000-000000000002
      tenantID: 00000000-0000-0000-0000-0000000000bb
      tokenExpirationSeconds: 7200
      cloud: AzureUSGovernmentCloud
    injection: full
  - name: china
    namespaces: [flux-system]
    serviceAccounts: [china]
    azure:
      clientID: 00000000-0000-0000-0000-000000000003
      tenantID: 00000000-0000-0000-0000-0000000000cc
      tokenExpirationSeconds: 86400
      cloud: AzureChinaCloud
    injection: full
  - name: warned
    namespaces: [flux-system]
    serviceAccounts: [warned]
    azure:
      clientID: 00000000-0000-0000-0000-000000000004
      tenantID: 00000000-0000-0000-0000-0000000000aa
      tokenExpirationSeconds: 3600
    injection: full
    mode: warn
`

// podCase is one generated pod and both answers.
type podCase struct {
	in           *corev1.Pod
	m            policy.Match
	azure, ours  answer
	azView, ourV podSDK
	ourPod       *corev1.Pod
}

// classifiers recognise each deliberate difference of differences.yaml in one difference of a pod.
var classifiers = map[string]func(pc *podCase, diff string) bool{
	"azure-pod-refused": func(pc *podCase, diff string) bool {
		return diff == "refused" && strings.Contains(pc.azView.Refused, "mounts two volumes at "+keys.AzureTokenMountPath) &&
			pc.ourV.Refused == ""
	},
	"token-shadowed": func(pc *podCase, diff string) bool {
		name, ok := strings.CutPrefix(diff, "container ")
		if !ok {
			return false
		}
		c := pc.inputContainer(name)
		if c == nil || !pc.untouchedAndWarned(name) {
			return false
		}
		file := keys.AzureTokenMountPath + "/" + keys.AzureTokenPath
		for _, m := range c.VolumeMounts {
			p := path.Clean(m.MountPath)
			if p != keys.AzureTokenMountPath && strings.HasPrefix(p, keys.AzureTokenMountPath+"/") &&
				(file == p || strings.HasPrefix(file, p+"/")) {
				return true
			}
		}
		return false
	},
	"reserved-name-taken": func(pc *podCase, diff string) bool {
		name, ok := strings.CutPrefix(diff, "container ")
		v := volumeNamed(pc.in, pc.reservedName())
		if !ok || v == nil || !pc.mountsVolume(name, v.Name) {
			return false
		}
		a, b := pc.azView.Containers[name], pc.ourV.Containers[name]
		// A container left untouched is explained only when what holds the name is not an Azure token: one that is
		// gets the variables, pointing at it where it is mounted at the token's path.
		return (!isAzureToken(v) || !mapsEqual(a.Mounts, b.Mounts)) &&
			(mapsEqual(a.Env, b.Env) || !isAzureToken(v) && pc.untouchedAndWarned(name))
	},
	"no-volume-rewrite": func(pc *podCase, diff string) bool {
		name, ok := strings.CutPrefix(diff, "container ")
		v := volumeNamed(pc.in, pc.reservedName())
		if !ok || v == nil || !isAzureToken(v) || !pc.mountsVolume(name, v.Name) {
			return false
		}
		seconds := int64(3600)
		if e := v.Projected.Sources[0].ServiceAccountToken.ExpirationSeconds; e != nil {
			seconds = *e
		}
		want, _ := expected(pc.m, pc.in.Annotations)
		a, b := pc.azView.Containers[name], pc.ourV.Containers[name]
		// The same variables, pointing at the token that is there: only its lifetime differs.
		return seconds != want && mapsEqual(a.Env, b.Env)
	},
	"lifetime-violation-answered-in-mode": func(pc *podCase, diff string) bool {
		_, valid := expected(pc.m, pc.in.Annotations)
		return diff == "admission" && !valid && pc.m.Identity.Mode == policy.ModeWarn && !pc.azure.allowed &&
			pc.ours.allowed && slices.ContainsFunc(pc.ours.warnings, func(w string) bool {
			return strings.Contains(w, keys.AnnotationAzureTokenExpiration)
		})
	},
	"own-token-file-kept": func(pc *podCase, diff string) bool {
		name, ok := strings.CutPrefix(diff, "container ")
		c := pc.inputContainer(name)
		if !ok || c == nil {
			return false
		}
		own := ""
		for _, e := range c.Env {
			if e.Name == keys.EnvAzureFederatedTokenFile && e.ValueFrom == nil {
				own = e.Value
			}
		}
		a, b := pc.azView.Containers[name], pc.ourV.Containers[name]
		return own != "" && own != keys.AzureTokenMountPath+"/"+keys.AzureTokenPath && mapsEqual(a.Env, b.Env) &&
			mapsEqual(a.Mounts, b.Mounts) && !strings.HasPrefix(a.Token, "token for ") && !strings.HasPrefix(b.Token, "token for ")
	},
	"no-token-proxy": func(pc *podCase, diff string) bool {
		_, proxy := pc.in.Annotations[keys.AnnotationAzureInjectProxySidecar]
		return proxy && strings.HasPrefix(strings.TrimPrefix(strings.TrimPrefix(diff, "container "), "init/"), "azwi-proxy") &&
			slices.ContainsFunc(pc.ours.warnings, func(w string) bool {
				return strings.Contains(w, keys.AnnotationAzureInjectProxySidecar)
			})
	},
}

func (pc *podCase) reservedName() string { return podgen.AzureVolumeName(podgen.AzurePodName(pc.in)) }

func (pc *podCase) inputContainer(key string) *corev1.Container {
	name, init := strings.CutPrefix(key, "init/")
	list := pc.in.Spec.Containers
	if init {
		list = pc.in.Spec.InitContainers
	}
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

func (pc *podCase) mountsVolume(key, volume string) bool {
	c := pc.inputContainer(key)
	if c == nil {
		return false
	}
	return slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == volume })
}

// untouchedAndWarned: this webhook left the container exactly as it was and a warning names it.
func (pc *podCase) untouchedAndWarned(key string) bool {
	before := pc.inputContainer(key)
	name, init := strings.CutPrefix(key, "init/")
	list := pc.ourPod.Spec.Containers
	if init {
		list = pc.ourPod.Spec.InitContainers
	}
	for _, c := range list {
		if c.Name == name && before != nil && string(mustJSONValue(c)) == string(mustJSONValue(*before)) {
			return slices.ContainsFunc(pc.ours.warnings, func(w string) bool { return strings.Contains(w, " "+name+" left untouched") })
		}
	}
	return false
}

func mustJSONValue(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// isAzureToken: the volume is the Azure webhook's token projection (its audience, at its path).
func isAzureToken(v *corev1.Volume) bool {
	return v.Projected != nil && len(v.Projected.Sources) == 1 && v.Projected.Sources[0].ServiceAccountToken != nil &&
		v.Projected.Sources[0].ServiceAccountToken.Audience == keys.AzureAudience &&
		v.Projected.Sources[0].ServiceAccountToken.Path == keys.AzureTokenPath
}

// expected is the token lifetime a pod of identity m gets, by the Azure webhook's rules (pod annotation within
// 3600..86400, else the ServiceAccount's, else 3600); valid is false for an annotation it denies.
func expected(m policy.Match, annotations map[string]string) (seconds int64, valid bool) {
	seconds = 3600
	if t := m.Identity.Azure.TokenExpirationSeconds; t != nil {
		seconds = *t
	}
	v := annotations[keys.AnnotationAzureTokenExpiration]
	if v == "" {
		return seconds, true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 3600 || n > 86400 {
		return seconds, false
	}
	return n, true
}

type difference struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

func readDifferences(t *testing.T) []difference {
	t.Helper()
	data, err := os.ReadFile("differences.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var diffs []difference
	if err := yaml.UnmarshalStrict(data, &diffs); err != nil {
		t.Fatalf("differences.yaml: %v", err)
	}
	for _, d := range diffs {
		if classifiers[d.ID] == nil || strings.TrimSpace(d.Reason) == "" {
			t.Errorf("differences.yaml: %q has no classifier or no reason", d.ID)
		}
	}
	if len(diffs) != len(classifiers) {
		t.Errorf("differences.yaml lists %d differences, the test classifies %d", len(diffs), len(classifiers))
	}
	return diffs
}

func TestDifferentialAgainstTheAzureWebhook(t *testing.T) {
	listed := readDifferences(t)
	p, err := policy.Parse("differential", []byte(differentialPolicy), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ours := webhook.NewServer(webhook.Options{Policy: webhook.Fixed{Policy: p}, Mode: policy.ModeEnforce})

	// The ServiceAccounts as this webhook's ServiceAccount handler annotates them, for the Azure mutator to read.
	names := []string{"public", "gov", "china", "warned"}
	matches := map[string]policy.Match{}
	var serviceAccounts []*corev1.ServiceAccount
	for _, n := range names {
		m, ok := p.IdentityFor(namespace, n)
		if !ok {
			t.Fatalf("%s is not mapped", n)
		}
		matches[n] = m
		annotations, labels := serviceaccounts.Metadata(m)
		serviceAccounts = append(serviceAccounts, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
			Name: n, Namespace: namespace, Annotations: annotations, Labels: labels}})
	}
	azure := map[string]admission.Handler{}
	for _, cloud := range []string{keys.AzurePublicCloud, keys.AzureUSGovernmentCloud, keys.AzureChinaCloud} {
		azure[cloud] = azureMutator(t, cloud, serviceAccounts)
	}
	// Mutators that injected the pods earlier, with the ServiceAccounts' lifetimes set otherwise.
	var earlier []admission.Handler
	for _, seconds := range []string{"3600", "7200", "86400"} {
		var old []*corev1.ServiceAccount
		for _, sa := range serviceAccounts {
			sa = sa.DeepCopy()
			sa.Annotations[keys.AnnotationAzureTokenExpiration] = seconds
			old = append(old, sa)
		}
		earlier = append(earlier, azureMutator(t, keys.AzurePublicCloud, old))
	}

	g := podgen.New(2026, policy.CloudAzure)
	r := g.Rand()
	equal, accepted, preInjected, azureBreaksInvariant, sameName := 0, 0, 0, 0, 0
	perID := map[string]int{}
	var unexplained []string
	for i := range differentialPods {
		sa := names[r.IntN(len(names))]
		m := matches[sa]
		pod := g.Pod(sa)
		raw := mustJSON(t, pod)
		if _, proxy := pod.Annotations[keys.AnnotationAzureInjectProxySidecar]; !proxy && r.IntN(5) == 0 {
			// A pod the Azure webhook injected before, and perhaps a container another webhook added since.
			if a := askAzure(t, earlier[r.IntN(len(earlier))], raw); a.allowed && refused(decodePod(t, a.pod)) == "" {
				pod = decodePod(t, a.pod)
				if r.IntN(2) == 0 {
					pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "late", Image: "l"})
				}
				raw = mustJSON(t, pod)
				preInjected++
			}
		}
		in := decodePod(t, raw)
		pc := &podCase{in: in, m: m}
		cloud := m.Identity.Azure.Cloud
		pc.azure = askAzure(t, azure[cloud], raw)
		pc.ours = askOurs(t, ours, raw)
		var azPod *corev1.Pod
		if pc.azure.allowed {
			azPod = decodePod(t, pc.azure.pod)
		}
		if pc.ours.allowed {
			pc.ourPod = decodePod(t, pc.ours.pod)
		}
		pc.azView, pc.ourV = sdkView(pc.azure, in, azPod), sdkView(pc.ours, in, pc.ourPod)

		seconds, valid := expected(m, in.Annotations)
		want := pods.TokenWant{Cloud: policy.CloudAzure, Audience: keys.AzureAudience, ExpirationSeconds: seconds}
		if pc.ours.allowed {
			if pc.ourV.Refused != "" {
				t.Fatalf("pod %d: the API server would refuse this webhook's pod: %s\n%s", i, pc.ourV.Refused, pc.ours.pod)
			}
			problems, err := pods.CheckTokenInvariant(raw, pc.ours.pod, want)
			if err != nil || len(problems) > 0 {
				t.Fatalf("pod %d: token invariant: %v %v\n%s", i, problems, err, raw)
			}
		} else if valid || m.Identity.Mode != policy.ModeEnforce {
			t.Fatalf("pod %d: denied (%s) with a valid lifetime or a warn-mode identity\n%s", i, pc.ours.message, raw)
		}
		if pc.azure.allowed && pc.azView.Refused == "" {
			if problems, _ := pods.CheckTokenInvariant(raw, pc.azure.pod, want); len(problems) > 0 {
				azureBreaksInvariant++
			}
		}

		// The token volume is named as the Azure webhook names it (buildVolumeName, from the pod's name).
		if pc.azure.allowed && pc.ours.allowed && volumeNamed(in, pc.reservedName()) == nil {
			if added := addedVolumes(in, pc.ourPod); len(added) > 0 {
				sameName++
				if az := addedVolumes(in, azPod); len(added) != 1 || len(az) != 1 || added[0] != az[0] {
					t.Fatalf("pod %d: token volume %v, the Azure webhook's %v\n%s", i, added, az, raw)
				}
			}
		}
		diffs := differences(pc.azView, pc.ourV)
		if len(diffs) == 0 {
			equal++
			continue
		}
		explained := true
		seen := map[string]bool{}
		for _, d := range diffs {
			var ids []string
			for id, is := range classifiers {
				if is(pc, d) {
					ids = append(ids, id)
				}
			}
			if len(ids) == 0 {
				explained = false
				if len(unexplained) < 5 {
					unexplained = append(unexplained, fmt.Sprintf("pod %d, %s:\n  azure: %s\n  ours:  %s\n  warnings: %q\n  input: %s",
						i, d, describe(pc.azView, d), describe(pc.ourV, d), pc.ours.warnings, raw))
				}
			}
			for _, id := range ids {
				seen[id] = true
			}
		}
		if explained {
			accepted++
			for id := range seen {
				perID[id]++
			}
		}
	}
	if len(unexplained) > 0 {
		t.Errorf("differences no entry of differences.yaml explains (fix them, or list them with their reason):\n%s",
			strings.Join(unexplained, "\n"))
	}
	for _, d := range listed {
		if perID[d.ID] == 0 {
			t.Errorf("differences.yaml lists %s, which no generated pod showed: drop it or generate its case", d.ID)
		}
	}
	ids := make([]string, 0, len(perID))
	for id := range perID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var counts []string
	for _, id := range ids {
		counts = append(counts, fmt.Sprintf("%s %d", id, perID[id]))
	}
	t.Logf("%d pods (%d injected by the Azure webhook before): %d equal, %d differ only as listed (%s); "+
		"the Azure webhook's patch breaks the token invariant in %d admitted, storable pods; the token volume's name "+
		"matched the Azure webhook's in %d pods", differentialPods, preInjected, equal, accepted, strings.Join(counts, ", "),
		azureBreaksInvariant, sameName)
	if sameName < differentialPods/3 {
		t.Errorf("only %d pods compared the token volume's name", sameName)
	}
	if equal < differentialPods/2 {
		t.Errorf("only %d of %d pods equal: the generator is off", equal, differentialPods)
	}
}

// describe prints the part of a view a difference is about.
func describe(v podSDK, diff string) string {
	switch diff {
	case "admission":
		return fmt.Sprintf("allowed=%v", v.Allowed)
	case "refused":
		return fmt.Sprintf("refused=%q", v.Refused)
	}
	c, ok := v.Containers[strings.TrimPrefix(diff, "container ")]
	if !ok {
		return "no such container"
	}
	return fmt.Sprintf("%+v", c)
}

// addedVolumes are the names of the volumes after has and before has not.
func addedVolumes(before, after *corev1.Pod) []string {
	var out []string
	for _, v := range after.Spec.Volumes {
		if volumeNamed(before, v.Name) == nil {
			out = append(out, v.Name)
		}
	}
	return out
}
