package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	fluxcdv1 "github.com/controlplaneio-fluxcd/flux-operator/api/v1"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/test/harness"
)

// The posture of Flux's workload identity, on Flux's own distribution as Flux Operator bundles it (hack/e2e-manifests.sh
// copies config/data/flux/<newest> of the flux-operator module go.mod pins): the six controllers' ServiceAccounts and
// Deployments, ClusterRole crd-controller and its ClusterRoleBinding, and the cluster-admin binding of
// kustomize-controller and helm-controller, created through the API server in a namespace of each spec's own (the
// cluster-wide objects renamed after it). Nothing runs the controllers: their Deployments, RBAC and the objects' status
// are what doctor reads, and the statuses are written as the controllers write them.

var fluxScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(fluxauth.AddToScheme(s))
	return s
}()

var distributionControllers = []string{"source-controller", "kustomize-controller", "helm-controller",
	"notification-controller", "image-reflector-controller", "image-automation-controller"}

// fluxClient knows every Flux kind (the suite's client knows the sources only).
func fluxClient() client.Client {
	GinkgoHelper()
	c, err := client.New(env.Config, client.Options{Scheme: fluxScheme})
	Expect(err).NotTo(HaveOccurred())
	return c
}

// distribution is Flux's install in namespace, the cluster-wide objects prefixed with it.
type distribution struct {
	deployments map[string]*appsv1.Deployment
	objects     []client.Object // ServiceAccounts, ClusterRoles, ClusterRoleBindings
	crdRole     *rbacv1.ClusterRole
}

func fluxDistribution(namespace string) *distribution {
	GinkgoHelper()
	root, err := harness.RepoRoot()
	Expect(err).NotTo(HaveOccurred())
	dir := filepath.Join(root, "bin", "e2e-manifests", "flux-distribution")
	if d := os.Getenv("FIW_E2E_MANIFESTS"); d != "" {
		dir = filepath.Join(d, "flux-distribution")
	}
	decoder := serializer.NewCodecFactory(fluxScheme).UniversalDeserializer()
	d := &distribution{deployments: map[string]*appsv1.Deployment{}}
	for _, file := range append(slices.Clone(distributionControllers), "rbac") {
		raw, err := os.ReadFile(filepath.Join(dir, file+".yaml"))
		Expect(err).NotTo(HaveOccurred(), "run make e2e-manifests")
		for _, doc := range bytes.Split(raw, []byte("\n---\n")) {
			if !bytes.Contains(doc, []byte("kind: ServiceAccount")) && !bytes.Contains(doc, []byte("kind: Deployment")) &&
				!bytes.Contains(doc, []byte("kind: ClusterRole")) {
				continue // CRDs (installed from Flux's modules already), Services, the ResourceQuota
			}
			obj, _, err := decoder.Decode(doc, nil, nil)
			Expect(err).NotTo(HaveOccurred())
			switch o := obj.(type) {
			case *corev1.ServiceAccount:
				o.Namespace = namespace
				d.objects = append(d.objects, o)
			case *appsv1.Deployment:
				o.Namespace = namespace
				d.deployments[o.Name] = o
			case *rbacv1.ClusterRole:
				if o.Name == "crd-controller" {
					o.Name = namespace + "-crd-controller"
					d.crdRole = o
					d.objects = append(d.objects, o)
				}
			case *rbacv1.ClusterRoleBinding:
				o.Name = namespace + "-" + o.Name
				if o.RoleRef.Name == "crd-controller" {
					o.RoleRef.Name = namespace + "-crd-controller"
				}
				for i := range o.Subjects {
					o.Subjects[i].Namespace = namespace
				}
				d.objects = append(d.objects, o)
			}
		}
	}
	Expect(d.deployments).To(HaveLen(6))
	Expect(d.crdRole).NotTo(BeNil())
	return d
}

// args appends arguments to a controller's manager container, as a kustomize patch of Flux's install would.
func (d *distribution) args(controller string, args ...string) {
	c := &d.deployments[controller].Spec.Template.Spec.Containers[0]
	Expect(c.Name).To(Equal("manager"))
	c.Args = append(c.Args, args...)
}

// dropTokenRule removes the serviceaccounts/token rule from crd-controller, as Flux Operator does when
// objectLevelWorkloadIdentity is false.
func (d *distribution) dropTokenRule() {
	rules := d.crdRole.Rules
	i := slices.IndexFunc(rules, func(r rbacv1.PolicyRule) bool { return slices.Contains(r.Resources, "serviceaccounts/token") })
	Expect(i).To(BeNumerically(">=", 0), "Flux's crd-controller grants serviceaccounts/token")
	d.crdRole.Rules = slices.Delete(rules, i, i+1)
}

func (d *distribution) create(ctx SpecContext) {
	GinkgoHelper()
	for _, o := range d.objects {
		Expect(fluxClient().Create(ctx, o)).To(Succeed())
	}
	for _, name := range distributionControllers {
		Expect(fluxClient().Create(ctx, d.deployments[name])).To(Succeed())
	}
}

// lockedDown gives every controller what a multi-tenant installation runs with under postureDoctorPolicy: the gate,
// the lockdown defaults, no cross-namespace references.
func (d *distribution) lockedDown() {
	gate := "--feature-gates=ObjectLevelWorkloadIdentity=true"
	for _, name := range []string{"source-controller", "notification-controller", "image-reflector-controller",
		"image-automation-controller"} {
		d.args(name, gate, "--default-service-account=flux-tenant")
	}
	d.args("kustomize-controller", gate, "--default-decryption-service-account=flux-tenant",
		"--default-kubeconfig-service-account=flux-tenant", "--no-remote-bases=true")
	d.args("helm-controller", gate, "--default-kubeconfig-service-account=flux-tenant")
	for _, name := range distributionControllers[1:] {
		d.args(name, "--no-cross-namespace-refs=true")
	}
}

func postureDoctorPolicy(fluxNamespaces, teams []string) string {
	return `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: doctor-posture
flux:
  namespaces: [` + strings.Join(fluxNamespaces, ", ") + `]
  defaultServiceAccount: flux-tenant
  defaultDecryptionServiceAccount: flux-tenant
  defaultKubeConfigServiceAccount: flux-tenant
identities:
  - name: tenants
    namespaces: [` + strings.Join(teams, ", ") + `]
    serviceAccounts: [flux-tenant]
    aws:
      roleARN: arn:aws:iam::111122223333:role/tenant.{namespace}
mandates:
  - name: tenants
    namespaces: [` + strings.Join(teams, ", ") + `]
    cover: [sopsPrivateKeys]
`
}

// tenant creates a tenant namespace with its ServiceAccount as the webhook annotates it.
func tenant(ctx SpecContext, ns string) {
	GinkgoHelper()
	ensureNamespace(ctx, ns)
	Expect(fluxClient().Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "flux-tenant",
		Annotations: map[string]string{"fluxidentity.dev/identity": "tenants",
			"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/tenant." + ns}}})).To(Succeed())
}

func tenantOCIRepository(ns string) *sourcev1.OCIRepository {
	return &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: sourcev1.OCIRepositorySpec{URL: "oci://123456789012.dkr.ecr.eu-west-1.amazonaws.com/app", Provider: "aws",
			ServiceAccountName: "flux-tenant", Interval: metav1.Duration{Duration: time.Minute}}}
}

// setStatus writes conditions through the status subresource, as the controllers do.
func setStatus(ctx SpecContext, obj client.Object, conds ...metav1.Condition) {
	GinkgoHelper()
	for i := range conds {
		conds[i].LastTransitionTime = metav1.Now()
	}
	obj.(interface{ SetConditions([]metav1.Condition) }).SetConditions(conds)
	Expect(fluxClient().Status().Update(ctx, obj)).To(Succeed())
}

func findingsBy(findings []map[string]string, check string) []string {
	var out []string
	for _, f := range findings {
		if f["check"] == check {
			out = append(out, f["namespace"]+"/"+f["name"]+": "+f["problem"])
		}
	}
	return out
}

var _ = Describe("doctor on Flux's own distribution", func() {
	It("reports every posture finding on a wrongly set up installation, each with its fix", func(ctx SpecContext) {
		const ns, team = "doctor-flux-wrong", "doctor-team-wrong"
		ensureNamespace(ctx, ns)
		tenant(ctx, team)
		d := fluxDistribution(ns)
		By("leaving Flux's Deployments as shipped (no gate, no lockdown), crd-controller without its token rule, a " +
			"fallback age key and static AWS keys in source-controller")
		d.dropTokenRule()
		d.args("kustomize-controller", "--sops-age-secret=sops-age")
		d.deployments["source-controller"].Spec.Template.Spec.Containers[0].Env = append(
			d.deployments["source-controller"].Spec.Template.Spec.Containers[0].Env,
			corev1.EnvVar{Name: "AWS_ACCESS_KEY_ID", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "aws"}, Key: "id"}}},
			corev1.EnvVar{Name: "AWS_SECRET_ACCESS_KEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "aws"}, Key: "secret"}}})
		d.create(ctx)

		By("and two tenant objects that name the tenant's ServiceAccount, stalled as the controllers stall them without the gate")
		repo := tenantOCIRepository(team)
		Expect(fluxClient().Create(ctx, repo)).To(Succeed())
		// Other specs' doctors read every namespace's Flux objects: leave no failing one behind.
		DeferCleanup(func(ctx SpecContext) { Expect(fluxClient().Delete(ctx, repo)).To(Succeed()) })
		setStatus(ctx, repo, metav1.Condition{Type: meta.StalledCondition, Status: metav1.ConditionTrue,
			Reason: meta.FeatureGateDisabledReason, Message: "to use spec.serviceAccountName for provider authentication " +
				"please enable the ObjectLevelWorkloadIdentity feature gate in the controller"},
			metav1.Condition{Type: meta.ReadyCondition, Status: metav1.ConditionFalse, Reason: meta.FeatureGateDisabledReason,
				Message: "to use spec.serviceAccountName for provider authentication please enable the " +
					"ObjectLevelWorkloadIdentity feature gate in the controller"})
		ks := &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "apps"},
			Spec: kustomizev1.KustomizationSpec{Interval: metav1.Duration{Duration: time.Minute}, Prune: true,
				SourceRef:  kustomizev1.CrossNamespaceSourceReference{Kind: "OCIRepository", Name: "app"},
				Decryption: &kustomizev1.Decryption{Provider: "sops", ServiceAccountName: "flux-tenant"}}}
		Expect(fluxClient().Create(ctx, ks)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(fluxClient().Delete(ctx, ks)).To(Succeed()) })
		setStatus(ctx, ks, metav1.Condition{Type: meta.ReadyCondition, Status: metav1.ConditionFalse,
			Reason: meta.FeatureGateDisabledReason, Message: "to use spec.decryption.serviceAccountName for decryption " +
				"authentication please enable the ObjectLevelWorkloadIdentity feature gate in the controller"})

		code, findings, stderr := runDoctor(ctx, postureDoctorPolicy([]string{ns}, []string{team}))
		Expect(code).To(Equal(1), stderr)

		var want []string
		for _, c := range distributionControllers {
			want = append(want, ns+"/deployment/"+c+": runs without the ObjectLevelWorkloadIdentity feature gate")
		}
		for _, c := range []string{"source-controller", "notification-controller", "image-reflector-controller",
			"image-automation-controller"} {
			want = append(want, ns+"/deployment/"+c+": runs without --default-service-account but the policy's "+
				"flux.defaultServiceAccount is flux-tenant",
				// kustomize-controller and helm-controller hold the token right through Flux's cluster-admin binding.
				ns+"/deployment/"+c+": ServiceAccount "+ns+"/"+c+" may not create serviceaccounts/token in every namespace")
		}
		want = append(want, ns+"/deployment/kustomize-controller: runs without --default-decryption-service-account",
			ns+"/deployment/kustomize-controller: runs without --default-kubeconfig-service-account",
			ns+"/deployment/helm-controller: runs without --default-kubeconfig-service-account",
			ns+"/deployment/kustomize-controller: runs with --sops-age-secret=sops-age",
			ns+"/deployment/source-controller: gives long-lived cloud credentials, which the cloud SDKs prefer to "+
				"workload identity: container manager: AWS_ACCESS_KEY_ID (from a Secret), AWS_SECRET_ACCESS_KEY (from a Secret)")
		for _, c := range distributionControllers[1:] {
			want = append(want, ns+"/deployment/"+c+": runs without --no-cross-namespace-refs=true")
		}
		got := findingsBy(findings, "flux")
		Expect(got).To(HaveLen(len(want)), "flux findings:\n%s", strings.Join(got, "\n"))
		for _, w := range want {
			Expect(got).To(ContainElement(HavePrefix(w)))
		}
		for _, f := range findings {
			Expect(f["fix"]).NotTo(BeEmpty(), "%v", f)
		}
		By("holding the token permission findings to the API server's own RBAC authorizer")
		for _, c := range distributionControllers {
			review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:   "system:serviceaccount:" + ns + ":" + c,
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: team, Verb: "create",
					Resource: "serviceaccounts", Subresource: "token", Name: "flux-tenant"}}}
			Expect(fluxClient().Create(ctx, review)).To(Succeed())
			reported := slices.ContainsFunc(got, func(g string) bool {
				return strings.HasPrefix(g, ns+"/deployment/"+c+": ServiceAccount "+ns+"/"+c+" may not create")
			})
			Expect(reported).To(Equal(!review.Status.Allowed), "%s: allowed %v (%s), reported %v", c,
				review.Status.Allowed, review.Status.Reason, reported)
		}

		Expect(findingsBy(findings, "status")).To(ConsistOf(
			HavePrefix(team+"/OCIRepository/app: Ready=False FeatureGateDisabled (ObjectLevelWorkloadIdentity feature "+
				"gate); likely cause: source-controller runs without the ObjectLevelWorkloadIdentity feature gate"),
			HavePrefix(team+"/Kustomization/apps: Ready=False FeatureGateDisabled (ObjectLevelWorkloadIdentity feature "+
				"gate); likely cause: kustomize-controller runs without the ObjectLevelWorkloadIdentity feature gate")))
		Expect(stderr).To(ContainSubstring(fmt.Sprintf("%d problems found", len(findings))))
	})

	It("reports a FluxInstance's fields, once each, where Flux Operator renders the controllers", func(ctx SpecContext) {
		const ns, team = "doctor-flux-operator", "doctor-team-operator"
		ensureNamespace(ctx, ns)
		tenant(ctx, team)
		d := fluxDistribution(ns)
		By("rendering Flux as Flux Operator renders a FluxInstance without workload identity or multi-tenancy")
		for _, c := range distributionControllers {
			d.args(c, "--feature-gates=ObjectLevelWorkloadIdentity=false")
		}
		d.dropTokenRule()
		d.create(ctx)
		Expect(fluxClient().Create(ctx, fluxInstance(ns, fluxcdv1.Cluster{}))).To(Succeed())

		code, findings, stderr := runDoctor(ctx, postureDoctorPolicy([]string{ns}, []string{team}))
		Expect(code).To(Equal(1), stderr)
		Expect(findingsBy(findings, "flux")).To(ConsistOf(
			HavePrefix(ns+"/fluxinstance/flux: spec.cluster.objectLevelWorkloadIdentity is false"),
			HavePrefix(ns+"/fluxinstance/flux: spec.cluster.multitenantWorkloadIdentity is false"),
			HavePrefix(ns+"/fluxinstance/flux: spec.cluster.multitenant is false")))
		for _, f := range findings {
			if f["check"] == "flux" {
				Expect(f["fix"]).To(HavePrefix("kubectl -n " + ns + " patch fluxinstance flux --type merge -p "))
			}
		}
	})

	It("reports nothing on installations set up as the policy says, with and without Flux Operator", func(ctx SpecContext) {
		const ns, team = "doctor-flux-right", "doctor-team-right"
		const opNS, opTeam = "doctor-flux-right-op", "doctor-team-right-op"
		for _, n := range []string{ns, opNS} {
			ensureNamespace(ctx, n)
		}
		tenant(ctx, team)
		tenant(ctx, opTeam)
		By("locking Flux's own Deployments down with a kustomize patch's flags, RBAC as Flux ships it")
		d := fluxDistribution(ns)
		d.lockedDown()
		d.create(ctx)
		By("and rendering them from a FluxInstance with workload identity and multi-tenancy, as Flux Operator does")
		op := fluxDistribution(opNS)
		for _, c := range distributionControllers {
			op.args(c, "--feature-gates=ObjectLevelWorkloadIdentity=true")
		}
		for _, c := range []string{"source-controller", "notification-controller", "image-reflector-controller",
			"image-automation-controller"} {
			op.args(c, "--default-service-account=flux-tenant")
		}
		op.args("kustomize-controller", "--default-decryption-service-account=flux-tenant")
		op.args("kustomize-controller", "--default-kubeconfig-service-account=flux-tenant")
		op.args("helm-controller", "--default-kubeconfig-service-account=flux-tenant")
		for _, c := range distributionControllers[1:] {
			op.args(c, "--no-cross-namespace-refs=true")
		}
		op.args("kustomize-controller", "--no-remote-bases=true", "--default-service-account=flux-tenant")
		op.args("helm-controller", "--default-service-account=flux-tenant")
		op.create(ctx)
		Expect(fluxClient().Create(ctx, fluxInstance(opNS, fluxcdv1.Cluster{ObjectLevelWorkloadIdentity: true,
			MultitenantWorkloadIdentity: true, Multitenant: true, TenantDefaultServiceAccount: "flux-tenant",
			TenantDefaultDecryptionServiceAccount: "flux-tenant", TenantDefaultKubeConfigServiceAccount: "flux-tenant"}))).To(Succeed())

		By("with tenants' objects that authenticate with their own identity")
		for _, t := range []string{team, opTeam} {
			repo := tenantOCIRepository(t)
			Expect(fluxClient().Create(ctx, repo)).To(Succeed())
			setStatus(ctx, repo, metav1.Condition{Type: meta.ReadyCondition, Status: metav1.ConditionTrue,
				Reason: meta.SucceededReason, Message: "stored artifact for digest 'latest@sha256:0'"})
		}
		code, findings, stderr := runDoctor(ctx, postureDoctorPolicy([]string{ns, opNS}, []string{team, opTeam}))
		Expect(findings).To(BeEmpty())
		Expect(code).To(Equal(0), stderr)
	})
})

func fluxInstance(ns string, c fluxcdv1.Cluster) *fluxcdv1.FluxInstance {
	return &fluxcdv1.FluxInstance{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "flux"},
		Spec: fluxcdv1.FluxInstanceSpec{Distribution: fluxcdv1.Distribution{Version: "2.9.x", Registry: "ghcr.io/fluxcd"},
			Cluster: &c, Components: []fluxcdv1.Component{"source-controller", "kustomize-controller", "helm-controller",
				"notification-controller", "image-reflector-controller", "image-automation-controller"}}}
}
