package doctor

import (
	"slices"
	"strings"
	"testing"
	"time"

	fluxcdv1 "github.com/controlplaneio-fluxcd/flux-operator/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist"
	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist/pagingfake"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// The multi-tenant policy the posture tests hold Flux to: every lockdown flag declared, a mandate over every kind in
// the tenants' namespaces that refuses SOPS private keys too.
const posturePolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: posture
flux:
  defaultServiceAccount: flux-tenant
  defaultDecryptionServiceAccount: flux-decryption
  defaultKubeConfigServiceAccount: flux-kubeconfig
identities:
  - name: tenants
    namespaces: ["team-*"]
    serviceAccounts: [flux-tenant, flux-decryption, flux-kubeconfig]
    aws:
      roleARN: arn:aws:iam::111122223333:role/tenant.{namespace}
mandates:
  - name: tenants
    namespaces: ["team-*"]
    cover: [sopsPrivateKeys]
`

const gateOn = "--feature-gates=ObjectLevelWorkloadIdentity=true"

// correctArgs are the arguments each controller runs with when it is locked down as posturePolicy says (the
// impersonation default of kustomize-controller and helm-controller, which the policy does not speak of, included).
var correctArgs = map[string][]string{
	"source-controller": {"--watch-all-namespaces", gateOn, "--default-service-account=flux-tenant"},
	"kustomize-controller": {"--watch-all-namespaces", gateOn, "--default-decryption-service-account=flux-decryption",
		"--default-kubeconfig-service-account=flux-kubeconfig", "--no-cross-namespace-refs=true",
		"--default-service-account=default"},
	"helm-controller": {"--watch-all-namespaces", gateOn, "--default-kubeconfig-service-account=flux-kubeconfig",
		"--no-cross-namespace-refs=true", "--default-service-account=default"},
	"notification-controller":     {gateOn, "--default-service-account=flux-tenant", "--no-cross-namespace-refs"},
	"image-reflector-controller":  {gateOn, "--default-service-account", "flux-tenant", "--no-cross-namespace-refs=true"},
	"image-automation-controller": {"--feature-gates=GitAllBranchReferences=true," + strings.TrimPrefix(gateOn, "--feature-gates="), "--default-service-account=flux-tenant", "--no-cross-namespace-refs=true"},
}

// posture is a Flux installation in flux-system: its six controllers, Flux's ClusterRole crd-controller bound to
// them, and whatever a test adds.
type posture struct {
	deps    map[string]*appsv1.Deployment
	role    *rbacv1.ClusterRole
	binding *rbacv1.ClusterRoleBinding
	extra   []client.Object
}

func fluxDeployment(name string, args ...string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "flux-system"},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{ServiceAccountName: name,
			Containers: []corev1.Container{{Name: "manager", Args: args}}}}}}
}

func correctPosture() *posture {
	p := &posture{deps: map[string]*appsv1.Deployment{}}
	var subjects []rbacv1.Subject
	for _, c := range controllers {
		p.deps[c.name] = fluxDeployment(c.name, slices.Clone(correctArgs[c.name])...)
		subjects = append(subjects, rbacv1.Subject{Kind: "ServiceAccount", Name: c.name, Namespace: "flux-system"})
	}
	// As Flux's install (flux-operator config/data/flux/v2.9.4/rbac.yaml) grants them.
	p.role = &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "crd-controller"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"namespaces", "secrets", "configmaps", "serviceaccounts"},
			Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"serviceaccounts/token"}, Verbs: []string{"create"}},
	}}
	p.binding = &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "crd-controller"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "crd-controller"},
		Subjects: subjects}
	return p
}

func (p *posture) objects() []client.Object {
	objs := []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "flux-system"}}, p.role, p.binding}
	for _, c := range controllers {
		if d := p.deps[c.name]; d != nil {
			objs = append(objs, d)
		}
	}
	return append(objs, p.extra...)
}

func (p *posture) args(name string, args ...string) {
	p.deps[name].Spec.Template.Spec.Containers[0].Args = args
}

func diagnosePosture(t *testing.T, policyYAML string, objs []client.Object) Report {
	t.Helper()
	p, err := policy.Parse("posture.yaml", []byte(policyYAML), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r, err := Diagnose(t.Context(), &kubelist.Lister{Reader: pagingfake.New(scheme, objs...), PageSize: 2}, p, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// expectFlux holds the report's flux findings to want, one "NAME: problem substring" each, and every one to a fix.
func expectFlux(t *testing.T, r Report, want []string) {
	t.Helper()
	var got []Finding
	for _, f := range r.Findings {
		if f.Check == CheckFlux {
			got = append(got, f)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d flux findings, want %d:\n%s", len(got), len(want), describe(got))
	}
	for _, w := range want {
		name, problem, _ := strings.Cut(w, ": ")
		i := slices.IndexFunc(got, func(f Finding) bool { return f.Name == name && strings.Contains(f.Problem, problem) })
		if i < 0 {
			t.Errorf("no finding %q in:\n%s", w, describe(got))
			continue
		}
		if got[i].Fix == "" || got[i].Namespace != "flux-system" {
			t.Errorf("finding %+v lacks a fix or its namespace", got[i])
		}
	}
}

func describe(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  " + f.Check + " " + f.Namespace + "/" + f.Name + ": " + f.Problem + "\n    fix: " + f.Fix + "\n")
	}
	return b.String()
}

func findingOf(t *testing.T, r Report, name string) Finding {
	t.Helper()
	for _, f := range r.Findings {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("no finding for %s in:\n%s", name, describe(r.Findings))
	return Finding{}
}

func TestPosture(t *testing.T) {
	tests := map[string]struct {
		policy string // posturePolicy unless set
		change func(*posture)
		want   []string
		notes  []string // substrings of notes that must be there
	}{
		"a multi-tenant installation locked down as the policy says has nothing to report": {},
		"a controller without the gate, where a mandate makes tenants name ServiceAccounts, is reported": {
			change: func(p *posture) {
				p.args("source-controller", "--default-service-account=flux-tenant")
			},
			want: []string{"deployment/source-controller: runs without the ObjectLevelWorkloadIdentity feature gate, " +
				"needed because it runs with --default-service-account=flux-tenant (and refuses to start without the gate)"},
		},
		"a gate turned off by a later --feature-gates flag is off": {
			change: func(p *posture) {
				p.args("helm-controller", append(slices.Clone(correctArgs["helm-controller"]),
					"--feature-gates=ObjectLevelWorkloadIdentity=false")...)
			},
			want: []string{"deployment/helm-controller: runs without the ObjectLevelWorkloadIdentity feature gate"},
		},
		"without mandates or lockdowns, objects that name a ServiceAccount still need the gate": {
			policy: `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
identities:
  - name: tenants
    namespaces: ["team-*"]
    serviceAccounts: [flux-tenant]
    aws:
      roleARN: arn:aws:iam::111122223333:role/tenant.{namespace}
`,
			change: func(p *posture) {
				for name := range p.deps {
					p.args(name)
				}
				p.extra = append(p.extra, &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a",
					Name: "app"}, Spec: sourcev1.OCIRepositorySpec{URL: "oci://123456789012.dkr.ecr.eu-west-1.amazonaws.com/app",
					Provider: "aws", ServiceAccountName: "flux-tenant"}})
			},
			want: []string{"deployment/source-controller: needed because 1 objects name a ServiceAccount for their " +
				"identity (team-a/OCIRepository/app among them)"},
		},
		"a lockdown the policy declares but the controller lacks, and one it runs but the policy does not know": {
			policy: strings.Replace(posturePolicy, "  defaultKubeConfigServiceAccount: flux-kubeconfig\n", "", 1),
			change: func(p *posture) {
				p.args("notification-controller", gateOn, "--no-cross-namespace-refs=true")
			},
			want: []string{"deployment/notification-controller: runs without --default-service-account but the " +
				"policy's flux.defaultServiceAccount is flux-tenant",
				"deployment/kustomize-controller: runs with --default-kubeconfig-service-account=flux-kubeconfig but " +
					"the policy's flux.defaultKubeConfigServiceAccount is none",
				"deployment/helm-controller: runs with --default-kubeconfig-service-account=flux-kubeconfig but the " +
					"policy's flux.defaultKubeConfigServiceAccount is none"},
		},
		"kustomize-controller's --default-service-account is impersonation: never held to the policy's": {
			change: func(p *posture) {
				p.args("kustomize-controller", append(slices.Clone(correctArgs["kustomize-controller"]),
					"--default-service-account=flux-tenant-impersonation")...)
			},
		},
		"a decryption lockdown that differs from the policy's is reported": {
			change: func(p *posture) {
				p.args("kustomize-controller", gateOn, "--default-decryption-service-account=default",
					"--default-kubeconfig-service-account=flux-kubeconfig", "--no-cross-namespace-refs=true")
			},
			want: []string{"deployment/kustomize-controller: runs with --default-decryption-service-account=default " +
				"but the policy's flux.defaultDecryptionServiceAccount is flux-decryption"},
		},
		"cross-namespace references left on where tenants are mandated are reported, false or absent": {
			change: func(p *posture) {
				p.args("image-automation-controller", gateOn, "--default-service-account=flux-tenant")
				p.args("image-reflector-controller", gateOn, "--default-service-account=flux-tenant",
					"--no-cross-namespace-refs=false")
			},
			want: []string{"deployment/image-automation-controller: runs without --no-cross-namespace-refs=true while " +
				"mandates tenants cover tenants", "deployment/image-reflector-controller: runs without --no-cross-namespace-refs=true"},
		},
		"a fallback age key is reported where a tenant mandate refuses SOPS private keys": {
			change: func(p *posture) {
				p.args("kustomize-controller", append(slices.Clone(correctArgs["kustomize-controller"]),
					"--sops-age-secret", "sops-age")...)
			},
			want: []string{"deployment/kustomize-controller: runs with --sops-age-secret=sops-age: every Kustomization " +
				"without spec.decryption.secretRef decrypts with that age key of flux-system, where mandate tenants"},
		},
		"and only noted where no mandate refuses them": {
			policy: strings.Replace(posturePolicy, "    cover: [sopsPrivateKeys]\n", "", 1),
			change: func(p *posture) {
				p.args("kustomize-controller", append(slices.Clone(correctArgs["kustomize-controller"]),
					"--sops-age-secret=sops-age")...)
			},
			notes: []string{"flux-system/kustomize-controller runs with --sops-age-secret: tenant Kustomizations"},
		},
		"a ClusterRole without the token rule (what Flux Operator leaves when object-level identity is off)": {
			change: func(p *posture) { p.role.Rules = p.role.Rules[:1] },
			want: func() []string {
				var w []string
				for _, c := range controllers {
					w = append(w, "deployment/"+c.name+": ServiceAccount flux-system/"+c.name+
						" may not create serviceaccounts/token in every namespace")
				}
				return w
			}(),
		},
		"a token rule restricted to resourceNames grants nothing for tenants' ServiceAccounts": {
			change: func(p *posture) { p.role.Rules[1].ResourceNames = []string{"flux-tenant"} },
			want: func() []string {
				var w []string
				for _, c := range controllers {
					w = append(w, "deployment/"+c.name+": may not create serviceaccounts/token in every namespace")
				}
				return w
			}(),
		},
		"a group of every ServiceAccount in Flux's namespace, bound to a wildcard role, grants both": {
			change: func(p *posture) {
				p.binding.Subjects = nil
				p.extra = append(p.extra, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "all"},
					Rules: []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}},
					&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "group"},
						RoleRef:  rbacv1.RoleRef{Kind: "ClusterRole", Name: "all"},
						Subjects: []rbacv1.Subject{{Kind: "Group", Name: "system:serviceaccounts:flux-system"}}})
			},
		},
		"subjects of another namespace grant Flux's ServiceAccounts nothing": {
			change: func(p *posture) {
				p.binding.Subjects = []rbacv1.Subject{{Kind: "ServiceAccount", Name: "source-controller", Namespace: "team-a"},
					{Kind: "Group", Name: "system:serviceaccounts:team-a"}}
			},
			want: func() []string {
				var w []string
				for _, c := range controllers {
					w = append(w, "deployment/"+c.name+": may not create serviceaccounts/token nor get serviceaccounts")
				}
				return w
			}(),
		},
		"a ServiceAccount bound by its user name and a */token rule holds the permission": {
			change: func(p *posture) {
				p.role.Rules[1].Resources = []string{"*/token"}
				p.binding.Subjects = []rbacv1.Subject{}
				for _, c := range controllers {
					p.binding.Subjects = append(p.binding.Subjects, rbacv1.Subject{Kind: "User",
						Name: "system:serviceaccount:flux-system:" + c.name})
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := correctPosture()
			if tc.change != nil {
				tc.change(p)
			}
			r := diagnosePosture(t, cmpOr(tc.policy, posturePolicy), p.objects())
			expectFlux(t, r, tc.want)
			for _, n := range tc.notes {
				if !slices.ContainsFunc(r.Notes, func(s string) bool { return strings.Contains(s, n) }) {
					t.Errorf("no note %q in %q", n, r.Notes)
				}
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestPostureFixes(t *testing.T) {
	p := correctPosture()
	p.args("source-controller", "--default-service-account=flux-tenant")
	p.args("kustomize-controller", gateOn, "--default-decryption-service-account=flux-decryption",
		"--default-kubeconfig-service-account=flux-kubeconfig", "--no-cross-namespace-refs=true", "--sops-age-secret",
		"sops-age", "--log-level=info", "--sops-age-secret=other")
	p.role.Rules = p.role.Rules[:1]
	r := diagnosePosture(t, posturePolicy, p.objects())
	for _, tc := range []struct{ name, problem, fix string }{
		{"deployment/source-controller", "feature gate", `kubectl -n flux-system patch deployment source-controller ` +
			`--type json -p '[{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":` +
			`"--feature-gates=ObjectLevelWorkloadIdentity=true"}]'`},
		// Every occurrence goes, the value of "--flag value" with it, tested first and removed from the last index.
		{"deployment/kustomize-controller", "--sops-age-secret", `kubectl -n flux-system patch deployment ` +
			`kustomize-controller --type json -p '[{"op":"test","path":"/spec/template/spec/containers/0/args/7",` +
			`"value":"--sops-age-secret=other"},{"op":"test","path":"/spec/template/spec/containers/0/args/5","value":` +
			`"sops-age"},{"op":"test","path":"/spec/template/spec/containers/0/args/4","value":"--sops-age-secret"},` +
			`{"op":"remove","path":"/spec/template/spec/containers/0/args/7"},{"op":"remove","path":` +
			`"/spec/template/spec/containers/0/args/5"},{"op":"remove","path":"/spec/template/spec/containers/0/args/4"}]'`},
		{"deployment/helm-controller", "serviceaccounts/token", `echo '{"apiVersion":"rbac.authorization.k8s.io/v1",` +
			`"kind":"ClusterRole","metadata":{"name":"flux-object-level-identity"},"rules":[{"apiGroups":[""],` +
			`"resources":["serviceaccounts"],"verbs":["get"]},{"apiGroups":[""],"resources":["serviceaccounts/token"],` +
			`"verbs":["create"]}]}' | kubectl apply -f - && kubectl create clusterrolebinding ` +
			`flux-object-level-identity-helm-controller --clusterrole=flux-object-level-identity ` +
			`--serviceaccount=flux-system:helm-controller`},
	} {
		i := slices.IndexFunc(r.Findings, func(f Finding) bool {
			return f.Name == tc.name && strings.Contains(f.Problem, tc.problem)
		})
		if i < 0 {
			t.Errorf("no %s finding about %s in:\n%s", tc.name, tc.problem, describe(r.Findings))
			continue
		}
		if !strings.HasPrefix(r.Findings[i].Fix, tc.fix) {
			t.Errorf("%s fix:\n%s\nwant prefix:\n%s", tc.name, r.Findings[i].Fix, tc.fix)
		}
	}
}

func TestFluxInstancePosture(t *testing.T) {
	// Flux Operator renders the controllers from the FluxInstance: this sets what it would render for cluster.
	rendered := func(p *posture, c fluxcdv1.Cluster) {
		for _, ctl := range controllers {
			args := []string{"--watch-all-namespaces",
				"--feature-gates=ObjectLevelWorkloadIdentity=" + map[bool]string{true: "true", false: "false"}[c.ObjectLevelWorkloadIdentity]}
			fi := &instance{cluster: c}
			for _, l := range ctl.lockdowns {
				if v := fi.lockdown(l); v != "" {
					args = append(args, string(l)+"="+v)
				}
			}
			if c.Multitenant && ctl.crossNamespaceRefs {
				args = append(args, "--no-cross-namespace-refs=true")
			}
			p.args(ctl.name, args...)
		}
		if !c.ObjectLevelWorkloadIdentity {
			p.role.Rules = p.role.Rules[:1]
		}
		p.extra = append(p.extra, &fluxcdv1.FluxInstance{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "flux"},
			Spec: fluxcdv1.FluxInstanceSpec{Cluster: &c, Components: []fluxcdv1.Component{"source-controller",
				"kustomize-controller", "helm-controller", "notification-controller", "image-reflector-controller",
				"image-automation-controller"}}})
	}
	right := fluxcdv1.Cluster{ObjectLevelWorkloadIdentity: true, MultitenantWorkloadIdentity: true, Multitenant: true,
		TenantDefaultServiceAccount: "flux-tenant", TenantDefaultDecryptionServiceAccount: "flux-decryption",
		TenantDefaultKubeConfigServiceAccount: "flux-kubeconfig"}

	t.Run("a FluxInstance rendering the policy's lockdown has nothing to report", func(t *testing.T) {
		p := correctPosture()
		rendered(p, right)
		expectFlux(t, diagnosePosture(t, posturePolicy, p.objects()), nil)
	})
	t.Run("objectLevelWorkloadIdentity false is one finding on the FluxInstance, with the field's patch", func(t *testing.T) {
		p := correctPosture()
		c := fluxcdv1.Cluster{Multitenant: true}
		rendered(p, c)
		r := diagnosePosture(t, strings.Replace(posturePolicy, "flux:\n  defaultServiceAccount: flux-tenant\n"+
			"  defaultDecryptionServiceAccount: flux-decryption\n  defaultKubeConfigServiceAccount: flux-kubeconfig\n", "", 1),
			p.objects())
		expectFlux(t, r, []string{"fluxinstance/flux: spec.cluster.objectLevelWorkloadIdentity is false: Flux Operator " +
			"turns the ObjectLevelWorkloadIdentity gate off in source-controller, kustomize-controller, helm-controller, " +
			"notification-controller, image-reflector-controller, image-automation-controller"})
		if f := findingOf(t, r, "fluxinstance/flux"); !strings.HasPrefix(f.Fix, `kubectl -n flux-system patch fluxinstance `+
			`flux --type merge -p '{"spec":{"cluster":{"objectLevelWorkloadIdentity":true}}}'`) {
			t.Errorf("fix %q", f.Fix)
		}
	})
	t.Run("multitenant workload identity with other defaults than the policy's is one finding with both fixes", func(t *testing.T) {
		p := correctPosture()
		c := right
		c.TenantDefaultServiceAccount, c.TenantDefaultKubeConfigServiceAccount = "", "flux-kubeconfig"
		rendered(p, c)
		r := diagnosePosture(t, strings.Replace(posturePolicy, "  defaultDecryptionServiceAccount: flux-decryption\n", "", 1),
			p.objects())
		expectFlux(t, r, []string{"fluxinstance/flux: spec.cluster.multitenantWorkloadIdentity is true: " +
			"source-controller gets default as --default-service-account, the policy's flux.defaultServiceAccount is " +
			"flux-tenant; kustomize-controller gets flux-decryption as --default-decryption-service-account, the policy's " +
			"flux.defaultDecryptionServiceAccount is none"})
		f := findingOf(t, r, "fluxinstance/flux")
		if !strings.Contains(f.Fix, `'{"spec":{"cluster":{"tenantDefaultServiceAccount":"flux-tenant"}}}'`) ||
			!strings.Contains(f.Fix, "set flux.defaultDecryptionServiceAccount: default in the policy") {
			t.Errorf("fix %q", f.Fix)
		}
	})
	t.Run("multitenant false is reported on the FluxInstance", func(t *testing.T) {
		p := correctPosture()
		c := right
		c.Multitenant = false
		rendered(p, c)
		expectFlux(t, diagnosePosture(t, posturePolicy, p.objects()), []string{"fluxinstance/flux: spec.cluster.multitenant " +
			"is false: kustomize-controller, helm-controller, notification-controller, image-reflector-controller, " +
			"image-automation-controller run without --no-cross-namespace-refs=true"})
	})
	t.Run("a Deployment that differs from a right FluxInstance is reported on the Deployment, with a reconcile", func(t *testing.T) {
		p := correctPosture()
		rendered(p, right)
		p.args("notification-controller", gateOn, "--default-service-account=flux-tenant")
		r := diagnosePosture(t, posturePolicy, p.objects())
		expectFlux(t, r, []string{"deployment/notification-controller: runs without --no-cross-namespace-refs=true"})
		if f := findingOf(t, r, "deployment/notification-controller"); !strings.HasSuffix(f.Fix,
			`kubectl -n flux-system annotate fluxinstance flux --overwrite reconcile.fluxcd.io/requestedAt="$(date +%s)"`) {
			t.Errorf("fix %q", f.Fix)
		}
	})
	t.Run("a FluxInstance elsewhere than Flux's namespaces renders nothing doctor checks", func(t *testing.T) {
		p := correctPosture()
		p.extra = append(p.extra, &fluxcdv1.FluxInstance{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "flux"},
			Spec: fluxcdv1.FluxInstanceSpec{Cluster: &fluxcdv1.Cluster{}}})
		expectFlux(t, diagnosePosture(t, posturePolicy, p.objects()), nil)
	})
}

func TestFeatureGate(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"--feature-gates=ObjectLevelWorkloadIdentity=true"}, true},
		{[]string{"--feature-gates", "A=true, ObjectLevelWorkloadIdentity = True"}, true},
		{[]string{"--feature-gates=ObjectLevelWorkloadIdentity=true", "--feature-gates=ExternalArtifact=true"}, true},
		{[]string{"--feature-gates=ObjectLevelWorkloadIdentity=true", "--feature-gates=ObjectLevelWorkloadIdentity=0"}, false},
		{[]string{"--feature-gates=ObjectLevelWorkloadIdentity=yes"}, false},
		{[]string{"--feature-gates=ObjectLevelWorkloadIdentityX=true"}, false},
		{nil, false},
	} {
		if got := featureGate(tc.args, gateObjectLevelWorkloadIdentity); got != tc.want {
			t.Errorf("featureGate(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}
