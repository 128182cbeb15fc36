package chart

import (
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/internal/reports"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

const auditName = releaseName + "-audit"

func TestBackgroundAuditIsOffByDefault(t *testing.T) {
	o := mustRender(t, releaseNS, "")
	for _, kind := range []string{"CronJob", "ClusterRole", "ClusterRoleBinding"} {
		if n := o.count(kind); n != 0 {
			t.Errorf("%d %ss rendered by default", n, kind)
		}
	}
}

// auditRules are the rules the audit needs under a policy, built from what the code reads and writes: list on every
// Flux kind fluxauth knows, get on ConfigMaps where a mandate covers a kind with a kubeconfig, list on Secrets only
// where one covers Secret, and list, create, patch and delete on both report formats.
func auditRules(p *policy.Policy) map[string][]string {
	want := map[string][]string{}
	for _, a := range fluxauth.APIs {
		if a.Kind != fluxauth.SecretKind || p.CoversKind(a.Kind) {
			want[a.Group+"/"+a.Resource] = []string{"list"}
		}
	}
	if p.CoversKind("Kustomization") || p.CoversKind("HelmRelease") {
		want["/configmaps"] = []string{"get"}
	}
	for _, a := range reports.APIs {
		want[a.Group+"/"+a.Resource] = []string{"create", "delete", "list", "patch"}
	}
	return want
}

func TestBackgroundAudit(t *testing.T) {
	o := mustRender(t, releaseNS, `audit:
  enabled: true
  schedule: "*/30 * * * *"
  timeout: 2m
  chunkSize: 250
  maxResults: 100
policy: |
  apiVersion: fluxidentity.dev/v1alpha1
  kind: IdentityPolicy
  mandates:
    - name: everything
      namespaces: ["team-*"]
`)
	cj, ok := o.get("CronJob", auditName).(*batchv1.CronJob)
	if !ok {
		t.Fatal("no CronJob " + auditName)
	}
	job := cj.Spec.JobTemplate.Spec
	pod := job.Template.Spec
	t.Run("the CronJob runs audit --apply with the values, one run at a time, never exiting 1 on violations alone", func(t *testing.T) {
		if cj.Spec.Schedule != "*/30 * * * *" || cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
			t.Errorf("schedule %q, concurrency %s", cj.Spec.Schedule, cj.Spec.ConcurrencyPolicy)
		}
		if len(pod.Containers) != 1 {
			t.Fatalf("%d containers", len(pod.Containers))
		}
		want := []string{"audit", "--policy=/etc/flux-identity-webhook/policy.yaml", "--apply",
			"--fail-on-violations=false", "--timeout=2m", "--chunk-size=250", "--max-results=100"}
		if got := pod.Containers[0].Args; !slices.Equal(got, want) {
			t.Errorf("args %q, want %q", got, want)
		}
		if pod.RestartPolicy != corev1.RestartPolicyNever || job.ActiveDeadlineSeconds == nil || *job.ActiveDeadlineSeconds != 900 {
			t.Errorf("restartPolicy %s, activeDeadlineSeconds %v", pod.RestartPolicy, job.ActiveDeadlineSeconds)
		}
		if len(pod.Volumes) != 1 || pod.Volumes[0].ConfigMap == nil || pod.Volumes[0].ConfigMap.Name != releaseName+"-policy" {
			t.Errorf("volumes %+v: want the policy ConfigMap", pod.Volumes)
		}
	})
	t.Run("its pod runs restricted: non-root, no escalation, read-only root, no capabilities, seccomp", func(t *testing.T) {
		psc, sc := pod.SecurityContext, pod.Containers[0].SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil ||
			psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("pod securityContext %+v", psc)
		}
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil ||
			!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
			t.Errorf("container securityContext %+v", sc)
		}
		if c := pod.Containers[0]; c.Resources.Limits.Memory().IsZero() {
			t.Errorf("resources %+v: want a memory limit", c.Resources)
		}
	})
	t.Run("its ServiceAccount is its own, and only its pod mounts a token", func(t *testing.T) {
		sa, ok := o.get("ServiceAccount", auditName).(*corev1.ServiceAccount)
		if !ok || pod.ServiceAccountName != auditName {
			t.Fatalf("pod runs as %q; ServiceAccount %s rendered: %v", pod.ServiceAccountName, auditName, ok)
		}
		if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken ||
			pod.AutomountServiceAccountToken == nil || !*pod.AutomountServiceAccountToken {
			t.Errorf("automount: ServiceAccount %v, pod %v", sa.AutomountServiceAccountToken, pod.AutomountServiceAccountToken)
		}
		b, ok := o.get("ClusterRoleBinding", auditName).(*rbacv1.ClusterRoleBinding)
		if !ok || b.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: auditName}) ||
			len(b.Subjects) != 1 || b.Subjects[0] != (rbacv1.Subject{Kind: "ServiceAccount", Name: auditName, Namespace: releaseNS}) {
			t.Errorf("binding %+v", b)
		}
	})
	t.Run("its ClusterRole grants exactly what audit --apply reads and writes", func(t *testing.T) {
		role, ok := o.get("ClusterRole", auditName).(*rbacv1.ClusterRole)
		if !ok {
			t.Fatal("no ClusterRole")
		}
		got := map[string][]string{}
		for _, r := range role.Rules {
			if len(r.NonResourceURLs)+len(r.ResourceNames) != 0 {
				t.Errorf("rule %+v names URLs or objects", r)
			}
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					verbs := slices.Sorted(slices.Values(r.Verbs))
					got[g+"/"+res] = append(got[g+"/"+res], verbs...)
				}
			}
		}
		want := auditRules(chartPolicy(t, o))
		for k, v := range want {
			if !slices.Equal(got[k], v) {
				t.Errorf("%s: verbs %v, want %v", k, got[k], v)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s granted, but audit never touches it", k)
			}
		}
	})
	t.Run("the server's NetworkPolicy, PDB and Deployment select none of its pods", func(t *testing.T) {
		podLabels := labels.Set(job.Template.Labels)
		np, ok1 := o.get("NetworkPolicy", releaseName).(*networkingv1.NetworkPolicy)
		pdb, ok2 := o.get("PodDisruptionBudget", releaseName).(*policyv1.PodDisruptionBudget)
		dep, ok3 := o.get("Deployment", releaseName).(*appsv1.Deployment)
		if !ok1 || !ok2 || !ok3 {
			t.Fatal("the NetworkPolicy, PodDisruptionBudget or Deployment is not rendered")
		}
		for what, sel := range map[string]*metav1.LabelSelector{"NetworkPolicy": &np.Spec.PodSelector,
			"PodDisruptionBudget": pdb.Spec.Selector, "Deployment": dep.Spec.Selector} {
			s, err := metav1.LabelSelectorAsSelector(sel)
			if err != nil || s.Matches(podLabels) {
				t.Errorf("the %s's selector %v selects the audit pod %v (%v)", what, sel, podLabels, err)
			}
		}
		if !strings.HasSuffix(podLabels["app.kubernetes.io/name"], "-audit") {
			t.Errorf("audit pod labels %v", podLabels)
		}
	})
}

// chartPolicy is the policy the rendered chart serves (its ConfigMap).
func chartPolicy(t *testing.T, o objects) *policy.Policy {
	t.Helper()
	cm, ok := o.get("ConfigMap", releaseName+"-policy").(*corev1.ConfigMap)
	if !ok {
		t.Fatal("no policy ConfigMap")
	}
	p, err := policy.Parse("policy.yaml", []byte(cm.Data["policy.yaml"]), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A policy without a mandate over Secrets grants the audit no Secret at all.
func TestBackgroundAuditReadsSecretsOnlyWhereAMandateCoversThem(t *testing.T) {
	for name, tc := range map[string]struct {
		mandate string
		secrets bool
	}{
		"a mandate without kinds covers Secrets": {"  - name: all\n    namespaces: [team-a]\n", true},
		"a mandate over sources does not":        {"  - name: git\n    namespaces: [team-a]\n    kinds: [GitRepository]\n", false},
	} {
		t.Run(name, func(t *testing.T) {
			values := "audit:\n  enabled: true\npolicy: |\n" + indent("apiVersion: fluxidentity.dev/v1alpha1\n"+
				"kind: IdentityPolicy\nmandates:\n"+tc.mandate, "  ")
			role, ok := mustRender(t, releaseNS, values).get("ClusterRole", auditName).(*rbacv1.ClusterRole)
			if !ok {
				t.Fatal("no ClusterRole")
			}
			granted := slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool { return slices.Contains(r.Resources, "secrets") })
			if granted != tc.secrets {
				t.Errorf("secrets granted = %v, want %v", granted, tc.secrets)
			}
		})
	}
}
