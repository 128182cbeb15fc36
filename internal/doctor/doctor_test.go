package doctor

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist"
	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist/pagingfake"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(fluxauth.AddToScheme(s))
	return s
}()

const clusterPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: doctor
identities:
  - name: controllers
    namespaces: [flux-system]
    serviceAccounts: [source-controller, notification-controller]
    aws:
      roleARN: arn:aws:iam::111122223333:role/flux
  - name: tenants
    namespaces: ["team-*"]
    serviceAccounts: [flux-source]
    azure:
      clientID: 00000000-0000-0000-0000-000000000001
      tenantID: 00000000-0000-0000-0000-0000000000aa
mandates:
  - name: no-static-git-credentials
    namespaces: ["team-*"]
    kinds: [GitRepository]
`

var (
	podCreated   = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	roleWritten  = podCreated.Add(time.Hour)
	isController = true
	awsEnv       = []corev1.EnvVar{{Name: "AWS_ROLE_ARN", Value: "arn:aws:iam::111122223333:role/flux"},
		{Name: "AWS_WEB_IDENTITY_TOKEN_FILE", Value: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"}}
	azureEnv = []corev1.EnvVar{{Name: "AZURE_CLIENT_ID", Value: "00000000-0000-0000-0000-000000000001"},
		{Name: "AZURE_FEDERATED_TOKEN_FILE", Value: "/var/run/secrets/azure/wi/token/azure-identity-token"}}
)

func owned(kind, name string) []metav1.OwnerReference {
	return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: "u", Controller: &isController}}
}

func pod(ns, name, sa string, owners []metav1.OwnerReference, env []corev1.EnvVar) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, OwnerReferences: owners,
		CreationTimestamp: metav1.NewTime(podCreated)},
		Spec: corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: "manager", Env: env}}}}
}

func deployment(ns, name, sa string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{
			Spec: corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: "manager"}}}}}}
}

// cluster holds one instance of every problem doctor finds, the same objects done right, and the same problems in a
// namespace the policy does not map (which doctor must leave alone), plus extra empty namespaces.
func cluster(extraNamespaces int) []client.Object {
	var objs []client.Object
	for _, ns := range []string{"flux-system", "team-a", "team-b", "apps"} {
		objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	for i := range extraNamespaces {
		objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("extra-%02d", i)}})
	}
	azureSA := func(ns string, labelled bool) *corev1.ServiceAccount {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "flux-source",
			Annotations: map[string]string{"fluxidentity.dev/identity": "tenants",
				"azure.workload.identity/client-id": "00000000-0000-0000-0000-000000000001",
				"azure.workload.identity/tenant-id": "00000000-0000-0000-0000-0000000000aa"}}}
		if labelled {
			sa.Labels = map[string]string{"azure.workload.identity/use": "true"}
		}
		return sa
	}
	legacy := pod("flux-system", "legacy", "", nil, awsEnv)
	legacy.Spec.DeprecatedServiceAccount = "source-controller" // only the deprecated field names it
	legacy.Spec.InitContainers = []corev1.Container{{Name: "init"}}
	objs = append(objs,
		// flux-system: source-controller annotated after its two pods started; notification-controller missing.
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "source-controller",
			Annotations: map[string]string{"fluxidentity.dev/identity": "controllers",
				"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/flux"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate,
				APIVersion: "v1", Time: &metav1.Time{Time: roleWritten}, FieldsType: "FieldsV1",
				FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:annotations":{"f:eks.amazonaws.com/role-arn":{}}}}`)}}}},
		deployment("flux-system", "source-controller", "source-controller"),
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "source-controller-5d8f7",
			OwnerReferences: owned("Deployment", "source-controller")}},
		pod("flux-system", "source-controller-5d8f7-a", "source-controller", owned("ReplicaSet", "source-controller-5d8f7"), nil),
		pod("flux-system", "source-controller-5d8f7-b", "source-controller", owned("ReplicaSet", "source-controller-5d8f7"), nil),
		pod("flux-system", "source-controller-injected", "source-controller", nil, awsEnv),
		legacy,
		// team-a: the ServiceAccount lacks the Azure label, so does its Deployment; one GitRepository keeps a Secret.
		azureSA("team-a", false),
		deployment("team-a", "app", "flux-source"),
		pod("team-a", "app-x", "flux-source", nil, azureEnv),
		&sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "static"},
			Spec: sourcev1.GitRepositorySpec{URL: "https://github.com/org/app", SecretRef: &meta.LocalObjectReference{Name: "pat"}}},
		&sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "public"},
			Spec: sourcev1.GitRepositorySpec{URL: "https://github.com/org/app"}},
		// team-b: a stale pod whose ReplicaSet is gone.
		azureSA("team-b", true),
		pod("team-b", "gone-123-x", "flux-source", owned("ReplicaSet", "gone-123"), nil),
		// apps is not mapped: nothing here is doctor's business.
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "flux-source"}},
		pod("apps", "bare", "flux-source", nil, nil),
		deployment("apps", "app", "flux-source"),
		&sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "static"},
			Spec: sourcev1.GitRepositorySpec{URL: "https://github.com/org/app", SecretRef: &meta.LocalObjectReference{Name: "pat"}}},
	)
	return objs
}

var wantFindings = []string{
	"flux flux-system/deployment/source-controller: runs without the ObjectLevelWorkloadIdentity feature gate, needed " +
		"because mandate no-static-git-credentials makes tenants' GitRepository objects name a ServiceAccount: Flux " +
		"refuses ServiceAccounts there (FeatureGateDisabled)",
	"flux flux-system/deployment/source-controller: ServiceAccount flux-system/source-controller may not create " +
		"serviceaccounts/token nor get serviceaccounts in every namespace (no ClusterRoleBinding grants it): Flux cannot " +
		"get tokens of tenants' ServiceAccounts, needed because mandate no-static-git-credentials makes tenants' " +
		"GitRepository objects name a ServiceAccount",
	"serviceaccount flux-system/notification-controller: mapped by the policy but does not exist",
	`serviceaccount team-a/flux-source: label azure.workload.identity/use is "", want "true"`,
	"pod flux-system/legacy: a pod of pod/legacy runs without AWS_ROLE_ARN in init container init: it started before " +
		"its ServiceAccount was mapped, or no webhook injected it (pod created 2026-11-20T09:00:00Z, ServiceAccount " +
		"annotation eks.amazonaws.com/role-arn last written 2026-11-20T10:00:00Z)",
	"pod flux-system/source-controller-5d8f7-a: pods of deployment/source-controller run without AWS_ROLE_ARN in " +
		"container manager: it started before its ServiceAccount was mapped, or no webhook injected it (pod created " +
		"2026-11-20T09:00:00Z, ServiceAccount annotation eks.amazonaws.com/role-arn last written 2026-11-20T10:00:00Z)",
	"pod team-b/gone-123-x: a pod of replicaset/gone-123 runs without AZURE_CLIENT_ID in container manager: it started " +
		"before its ServiceAccount was mapped, or no webhook injected it",
	`deployment team-a/app: pod template lacks label azure.workload.identity/use: "true"; the Azure webhook never sees its pods`,
	"audit team-a/GitRepository/static: spec.secretRef violates mandate no-static-git-credentials (enforce)",
}

var wantFixes = map[string]string{
	"flux-system/notification-controller":   "kubectl -n flux-system create serviceaccount notification-controller",
	"flux-system/legacy":                    "kubectl -n flux-system delete pod legacy # then recreate it from its manifest",
	"flux-system/source-controller-5d8f7-a": "kubectl -n flux-system rollout restart deployment/source-controller",
	"team-b/gone-123-x":                     "kubectl -n team-b delete pod gone-123-x # its replicaset recreates it",
}

// expectFindings compares the report's findings, one line each (check, object, problem), with want.
func expectFindings(t *testing.T, r Report, want []string) {
	t.Helper()
	var got []string
	for _, f := range r.Findings {
		got = append(got, f.Check+" "+f.Namespace+"/"+f.Name+": "+f.Problem)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func diagnose(t *testing.T, c *pagingfake.Client) (Report, error) {
	t.Helper()
	p, err := policy.Parse("doctor.yaml", []byte(clusterPolicy), podCreated)
	if err != nil {
		t.Fatal(err)
	}
	return Diagnose(t.Context(), &kubelist.Lister{Reader: c, PageSize: 2}, p, podCreated)
}

// namespacesListed gives, per kind, the namespaces its Lists named ("" for cluster-wide), each once.
func namespacesListed(c *pagingfake.Client) map[string][]string {
	out := map[string][]string{}
	for _, call := range c.Calls() {
		if !slices.Contains(out[call.Kind], call.Namespace) {
			out[call.Kind] = append(out[call.Kind], call.Namespace)
		}
	}
	return out
}

func TestDiagnose(t *testing.T) {
	t.Run("every class of problem is found once, in pages of two, and only in mapped namespaces", func(t *testing.T) {
		c := pagingfake.New(scheme, cluster(0)...)
		r, err := diagnose(t, c)
		if err != nil {
			t.Fatal(err)
		}
		expectFindings(t, r, wantFindings)
		for _, f := range r.Findings {
			if want, ok := wantFixes[f.Namespace+"/"+f.Name]; ok && !strings.HasPrefix(f.Fix, want) {
				t.Errorf("%s/%s: fix %q, want %q", f.Namespace, f.Name, f.Fix, want)
			}
		}
		if r.Problems != len(wantFindings) || r.Incomplete != "" {
			t.Errorf("problems %d, incomplete %q", r.Problems, r.Incomplete)
		}
		for _, call := range c.Calls() {
			if call.Limit != 2 {
				t.Errorf("%+v is not paged by 2", call)
			}
		}
		// Three of four namespaces are mapped: most of the cluster, so one cluster-wide read each.
		listed := namespacesListed(c)
		for _, kind := range []string{"ServiceAccount", "Pod", "Deployment", "GitRepository"} {
			if fmt.Sprint(listed[kind]) != "[]" {
				t.Errorf("%s listed in %q, want cluster-wide only", kind, listed[kind])
			}
		}
		// The stale pods' ReplicaSets are read as metadata where they are, not fetched one by one.
		if fmt.Sprint(listed["ReplicaSet"]) != "[flux-system team-b]" {
			t.Errorf("ReplicaSets listed in %q", listed["ReplicaSet"])
		}
	})
	t.Run("a few mapped namespaces among many are read one by one, with the same findings", func(t *testing.T) {
		c := pagingfake.New(scheme, cluster(10)...)
		r, err := diagnose(t, c)
		if err != nil {
			t.Fatal(err)
		}
		expectFindings(t, r, wantFindings)
		listed := namespacesListed(c)
		for _, kind := range []string{"ServiceAccount", "Pod", "Deployment"} {
			if fmt.Sprint(listed[kind]) != "[flux-system team-a team-b]" {
				t.Errorf("%s listed in %q, want the three mapped namespaces", kind, listed[kind])
			}
		}
	})
	t.Run("without the right to list pods cluster-wide, it reads them namespace by namespace and says so", func(t *testing.T) {
		c := pagingfake.New(scheme, cluster(0)...)
		c.Fail = func(call pagingfake.Call) error {
			if call.Kind == "Pod" && call.Namespace == "" {
				return pagingfake.Forbidden(call.Kind)
			}
			return nil
		}
		r, err := diagnose(t, c)
		if err != nil {
			t.Fatal(err)
		}
		expectFindings(t, r, wantFindings)
		if !slices.Contains(r.Notes, "no permission to list pods cluster-wide: read them namespace by namespace") {
			t.Errorf("notes %q", r.Notes)
		}
		if listed := namespacesListed(c); fmt.Sprint(listed["Pod"]) != "[ flux-system team-a team-b]" {
			t.Errorf("pods listed in %q", listed["Pod"])
		}
	})
	t.Run("an error part-way returns what was found until then and says where it stopped", func(t *testing.T) {
		c := pagingfake.New(scheme, cluster(0)...)
		deadline := errors.New("context deadline exceeded")
		c.Fail = func(call pagingfake.Call) error {
			if call.Kind == "Deployment" {
				return deadline
			}
			return nil
		}
		r, err := diagnose(t, c)
		if !errors.Is(err, deadline) || r.Incomplete != "list deployments: context deadline exceeded" {
			t.Fatalf("err %v, incomplete %q", err, r.Incomplete)
		}
		// Flux's controllers, the Flux objects, ServiceAccounts and pods were read; Deployments were not.
		expectFindings(t, r, append(slices.Clone(wantFindings[:7]), wantFindings[8]))
	})
	t.Run("pods whose owners could not be read are still reported, by their own names", func(t *testing.T) {
		c := pagingfake.New(scheme, cluster(0)...)
		c.Fail = func(call pagingfake.Call) error {
			if call.Kind == "ReplicaSet" {
				return errors.New("boom")
			}
			return nil
		}
		r, err := diagnose(t, c)
		if err == nil {
			t.Fatal("no error")
		}
		var pods []string
		for _, f := range r.Findings {
			if f.Check == CheckPod {
				pods = append(pods, f.Name+" "+f.Fix)
			}
		}
		want := []string{"legacy kubectl -n flux-system delete pod legacy # then recreate it from its manifest",
			"source-controller-5d8f7-a kubectl -n flux-system delete pod source-controller-5d8f7-a # its replicaset recreates it",
			"gone-123-x kubectl -n team-b delete pod gone-123-x # its replicaset recreates it"}
		if strings.Join(pods, "\n") != strings.Join(want, "\n") {
			t.Errorf("pod findings:\n%s\nwant:\n%s", strings.Join(pods, "\n"), strings.Join(want, "\n"))
		}
	})
}

func TestScopeFor(t *testing.T) {
	many := make([]string, perNamespaceMax+1)
	for _, tc := range []struct {
		namespaces []string
		total      int
		want       bool
	}{
		{[]string{"flux-system"}, 200, false},
		{many[:perNamespaceMax], 1000, false},
		{many, 1000, true},
		{[]string{"a", "b"}, 3, true},
		{nil, 0, false},
	} {
		if got := scopeFor(tc.namespaces, tc.total).clusterWide; got != tc.want {
			t.Errorf("%d of %d namespaces: cluster-wide %v, want %v", len(tc.namespaces), tc.total, got, tc.want)
		}
	}
}
