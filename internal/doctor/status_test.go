package doctor

import (
	"slices"
	"strings"
	"testing"
	"time"

	fluxcdv1 "github.com/controlplaneio-fluxcd/flux-operator/api/v1"
	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	iacv1 "github.com/fluxcd/image-automation-controller/api/v1"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/serviceaccounts"
)

// statusPolicy is posturePolicy's Flux with identities for the controllers and the tenants.
var statusPolicy = strings.Replace(posturePolicy, `identities:
  - name: tenants
    namespaces: ["team-*"]
    serviceAccounts: [flux-tenant, flux-decryption, flux-kubeconfig]
    aws:
      roleARN: arn:aws:iam::111122223333:role/tenant.{namespace}
`, `identities:
  - name: controllers
    namespaces: [flux-system]
    serviceAccounts: [source-controller, kustomize-controller, helm-controller, image-automation-controller]
    aws:
      roleARN: arn:aws:iam::111122223333:role/flux
  - name: tenants
    namespaces: ["team-*"]
    serviceAccounts: [flux-tenant, flux-decryption, flux-kubeconfig, ghost, remote]
    aws:
      roleARN: arn:aws:iam::111122223333:role/tenant.{namespace}
  - name: tenants-azure
    namespaces: ["team-*"]
    serviceAccounts: [azure]
    azure:
      clientID: 00000000-0000-0000-0000-000000000001
      tenantID: 00000000-0000-0000-0000-0000000000aa
  - name: own-audience
    namespaces: ["team-*"]
    serviceAccounts: [own-audience]
    aws:
      roleARN: arn:aws:iam::111122223333:role/own
      audience: sts.eu-west-1.amazonaws.com
`, 1)

// leakyURL stands for a message quoting a URL with credentials: doctor never prints a condition's message.
const leakyURL = "https://flux:hunter2@example.com/repo"

type conditionSetter interface {
	client.Object
	SetConditions([]metav1.Condition)
}

func failing[T conditionSetter](obj T, typ, reason, message string) T {
	status := metav1.ConditionFalse
	if typ != meta.ReadyCondition {
		status = metav1.ConditionTrue
	}
	obj.SetConditions([]metav1.Condition{{Type: typ, Status: status, Reason: reason, Message: message + " (" + leakyURL + ")"},
		{Type: meta.ReconcilingCondition, Status: metav1.ConditionTrue, Reason: "ProgressingWithRetry"}})
	return obj
}

// helmOCIRepository is a tenant's oci HelmRepository with a cloud provider: it always borrows source-controller's
// identity (no serviceAccountName, no lockdown).
func helmOCIRepository() *sourcev1.HelmRepository {
	return &sourcev1.HelmRepository{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "charts"},
		Spec: sourcev1.HelmRepositorySpec{Type: "oci", Provider: "aws", URL: "oci://123456789012.dkr.ecr.eu-west-1.amazonaws.com"}}
}

func ociRepo(ns, name, provider, sa string) *sourcev1.OCIRepository {
	return &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: sourcev1.OCIRepositorySpec{URL: "oci://123456789012.dkr.ecr.eu-west-1.amazonaws.com/app", Provider: provider,
			ServiceAccountName: sa}}
}

// mappedSA is a ServiceAccount with exactly what the webhook writes for it under statusPolicy.
func mappedSA(t *testing.T, p *policy.Policy, ns, name string) *corev1.ServiceAccount {
	t.Helper()
	m, ok := p.IdentityFor(ns, name)
	if !ok {
		t.Fatalf("%s/%s is not mapped", ns, name)
	}
	ann, labels := serviceaccounts.Metadata(m)
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: ann, Labels: labels}}
}

const tokenRefused = "failed to configure authentication options: failed to create provider access token for service " +
	"account 'team-a/flux-tenant': operation error STS: AssumeRoleWithWebIdentity, AccessDenied"

func TestAuthenticationFailures(t *testing.T) {
	pol, err := policy.Parse("posture.yaml", []byte(statusPolicy), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// A healthy tenant namespace and Flux's controllers' ServiceAccounts, as the webhook annotates them.
	base := func(p *posture) {
		p.extra = append(p.extra, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}},
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-c"}},
			mappedSA(t, pol, "team-a", "flux-tenant"), mappedSA(t, pol, "team-a", "azure"),
			mappedSA(t, pol, "team-a", "own-audience"), mappedSA(t, pol, "team-a", "flux-decryption"),
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "unmapped"}})
		for _, c := range []string{"source-controller", "kustomize-controller", "helm-controller", "image-automation-controller"} {
			p.extra = append(p.extra, mappedSA(t, pol, "flux-system", c))
		}
	}
	tests := map[string]struct {
		change func(*posture)
		object client.Object
		// want: the finding's name, a substring of its problem (after "likely cause: ") and of its fix.
		name, cause, fix string
	}{
		"a ServiceAccount that does not exist": {
			object: failing(ociRepo("team-a", "app", "aws", "ghost"), meta.ReadyCondition,
				sourcev1.AuthenticationFailedReason, "failed to configure authentication options: failed to get "+
					"service account 'team-a/ghost': serviceaccounts \"ghost\" not found"),
			name: "OCIRepository/app", cause: "ServiceAccount team-a/ghost (spec.serviceAccountName) does not exist",
			fix: "kubectl -n team-a create serviceaccount ghost (the webhook gives it the identity the policy maps)",
		},
		"a ServiceAccount the policy does not map": {
			object: failing(ociRepo("team-a", "app", "aws", "unmapped"), sourcev1.FetchFailedCondition,
				sourcev1.AuthenticationFailedReason, "failed to configure authentication options: failed to get provider "+
					"identity from service account 'team-a/unmapped' annotations: invalid eks.amazonaws.com/role-arn annotation: ''"),
			name: "OCIRepository/app", cause: "ServiceAccount team-a/unmapped (spec.serviceAccountName) is not mapped by the policy",
			fix: "map team-a/unmapped to an aws identity in posture.yaml",
		},
		"a mapped ServiceAccount without its annotations": {
			change: func(p *posture) {
				p.extra = append(p.extra, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "team-c", Name: "flux-tenant"}})
			},
			object: failing(ociRepo("team-c", "app", "aws", "flux-tenant"), meta.ReadyCondition,
				sourcev1.AuthenticationFailedReason, "invalid eks.amazonaws.com/role-arn annotation: ''"),
			name: "OCIRepository/app", cause: "ServiceAccount team-c/flux-tenant lacks its identity: annotation eks.amazonaws.com/role-arn is missing",
			fix: "kubectl -n team-c annotate serviceaccount flux-tenant --overwrite 'eks.amazonaws.com/role-arn=arn:aws:iam::111122223333:role/tenant.team-c'",
		},
		"a ServiceAccount mapped to another cloud than the object's": {
			object: failing(ociRepo("team-a", "app", "aws", "azure"), meta.ReadyCondition, sourcev1.AuthenticationFailedReason,
				"invalid eks.amazonaws.com/role-arn annotation: ''"),
			name: "OCIRepository/app", cause: "ServiceAccount team-a/azure is mapped to azure (identity tenants-azure) but the object authenticates with aws",
			fix: "set the object's provider to azure",
		},
		"a controller without the gate": {
			change: func(p *posture) { p.args("source-controller", "--watch-all-namespaces") },
			object: failing(ociRepo("team-a", "app", "aws", "flux-tenant"), meta.StalledCondition,
				meta.FeatureGateDisabledReason, "to use spec.serviceAccountName for provider authentication please enable "+
					"the ObjectLevelWorkloadIdentity feature gate in the controller"),
			name: "OCIRepository/app", cause: "source-controller runs without the ObjectLevelWorkloadIdentity feature gate, so it does not resolve spec.serviceAccountName",
			fix: `"value":"--feature-gates=ObjectLevelWorkloadIdentity=true"`,
		},
		"a controller that may not ask for tokens": {
			change: func(p *posture) { p.role.Rules = p.role.Rules[:1] },
			object: failing(ociRepo("team-a", "app", "aws", "flux-tenant"), meta.ReadyCondition, sourcev1.AuthenticationFailedReason,
				"failed to create kubernetes token for service account 'team-a/flux-tenant': serviceaccounts \"flux-tenant\" is forbidden"),
			name: "OCIRepository/app", cause: "ServiceAccount flux-system/source-controller may not create serviceaccounts/token in every namespace",
			fix: "kubectl create clusterrolebinding flux-object-level-identity-source-controller",
		},
		"the lockdown default ServiceAccount missing in the object's namespace": {
			object: failing(ociRepo("team-c", "app", "aws", ""), meta.ReadyCondition, sourcev1.AuthenticationFailedReason,
				"failed to get service account 'team-c/flux-tenant': the specified default service account does not exist "+
					"in the object namespace. your cluster is subject to multi-tenant workload identity lockdown"),
			name: "OCIRepository/app", cause: "the lockdown default ServiceAccount flux-tenant (--default-service-account of source-controller) does not exist in team-c",
			fix: "kubectl -n team-c create serviceaccount flux-tenant",
		},
		"the controller's own identity, with a pod older than its ServiceAccount's annotation": {
			change: func(p *posture) {
				p.extra = append(p.extra,
					&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "source-controller-5d8f7",
						OwnerReferences: owned("Deployment", "source-controller")}},
					&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "source-controller-5d8f7-x",
						OwnerReferences: owned("ReplicaSet", "source-controller-5d8f7")},
						Spec: corev1.PodSpec{ServiceAccountName: "source-controller", Containers: []corev1.Container{{Name: "manager"}}}})
			},
			object: failing(helmOCIRepository(), meta.ReadyCondition, sourcev1.AuthenticationFailedReason,
				"failed to create provider access token for the controller: operation error STS: AssumeRoleWithWebIdentity"),
			name: "HelmRepository/charts", cause: "it uses source-controller's own identity, and source-controller's pods started before its ServiceAccount's identity annotation",
			fix: "kubectl -n flux-system rollout restart deployment/source-controller",
		},
		"the controller's own identity, its pods without the environment Flux needs": {
			object: failing(helmOCIRepository(), meta.ReadyCondition, sourcev1.AuthenticationFailedReason,
				"failed to create provider access token for the controller: AWS_REGION environment variable is not set "+
					"in the Flux controller"),
			name: "HelmRepository/charts", cause: "it uses source-controller's own identity, and source-controller's pods lack the identity's environment",
			fix: "kubectl -n flux-system rollout restart deployment/source-controller",
		},
		"the controller's own identity, behind long-lived credentials in its pod": {
			change: func(p *posture) {
				p.deps["source-controller"].Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{
					{Name: "AWS_ACCESS_KEY_ID", Value: "x"}, {Name: "AWS_SECRET_ACCESS_KEY", Value: "y"}}
			},
			object: failing(helmOCIRepository(), meta.ReadyCondition, sourcev1.AuthenticationFailedReason,
				"failed to create provider access token for the controller: InvalidClientTokenId"),
			name: "HelmRepository/charts", cause: "it uses source-controller's own identity, and source-controller's long-lived credentials come before it",
			fix: "remove them (see the flux finding on deployment/source-controller)",
		},
		"a kubeconfig ConfigMap that does not exist": {
			object: failing(&helmv2.HelmRelease{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "app"},
				Spec: helmv2.HelmReleaseSpec{KubeConfig: &meta.KubeConfigReference{ConfigMapRef: &meta.LocalObjectReference{Name: "absent"}}}},
				meta.ReadyCondition, "RESTClientError", "failed to get access token for cluster: configmaps \"absent\" not found"),
			name: "HelmRelease/app", cause: "its kubeconfig ConfigMap absent does not exist",
			fix: "create ConfigMap team-a/absent",
		},
		"the controller's own identity, everything right: the cloud's trust of the controller": {
			object: failing(helmOCIRepository(), meta.ReadyCondition, sourcev1.AuthenticationFailedReason,
				"failed to create provider access token for the controller: operation error STS: AssumeRoleWithWebIdentity"),
			name: "HelmRepository/charts", cause: "the cloud refused source-controller's own token",
			fix: "--namespaces flux-system --service-accounts source-controller",
		},
		"everything in the cluster right: the cloud's trust": {
			object: failing(ociRepo("team-a", "app", "aws", "flux-tenant"), meta.ReadyCondition, sourcev1.AuthenticationFailedReason, tokenRefused),
			name:   "OCIRepository/app", cause: "the cloud refused the token of ServiceAccount team-a/flux-tenant",
			fix: `trust check --policy posture.yaml --issuer "$ISSUER" EXPORT... (trust render --policy posture.yaml --issuer "$ISSUER" --namespaces team-a --service-accounts flux-tenant`,
		},
		"an AWS identity with another audience than Flux asks for": {
			object: failing(ociRepo("team-a", "app", "aws", "own-audience"), meta.ReadyCondition, sourcev1.AuthenticationFailedReason, tokenRefused),
			name:   "OCIRepository/app", cause: "identity own-audience trusts audience sts.eu-west-1.amazonaws.com but Flux asks for sts.amazonaws.com",
			fix: "drop aws.audience from identity own-audience",
		},
		"a Secret's credentials": {
			object: failing(&sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "repo"},
				Spec: sourcev1.GitRepositorySpec{URL: "https://github.com/org/repo", SecretRef: &meta.LocalObjectReference{Name: "creds"}}},
				meta.ReadyCondition, sourcev1.AuthenticationFailedReason, "failed to get secret 'team-a/creds': secrets \"creds\" not found"),
			name: "GitRepository/repo", cause: "it authenticates with a long-lived credential in a Secret",
			fix: "set spec.provider and spec.serviceAccountName to a ServiceAccount the policy maps",
		},
		"a Kustomization's decryption ServiceAccount behind a gate kustomize-controller lacks": {
			change: func(p *posture) {
				p.args("kustomize-controller", "--default-decryption-service-account=flux-decryption",
					"--default-kubeconfig-service-account=flux-kubeconfig", "--no-cross-namespace-refs=true")
			},
			object: failing(&kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "apps"},
				Spec: kustomizev1.KustomizationSpec{Decryption: &kustomizev1.Decryption{Provider: "sops", ServiceAccountName: "flux-decryption"}}},
				meta.ReadyCondition, meta.FeatureGateDisabledReason, "to use spec.decryption.serviceAccountName for decryption "+
					"authentication please enable the ObjectLevelWorkloadIdentity feature gate in the controller"),
			name: "Kustomization/apps", cause: "kustomize-controller runs without the ObjectLevelWorkloadIdentity feature gate, so it does not resolve spec.decryption.serviceAccountName",
			fix: "kubectl -n flux-system patch deployment kustomize-controller",
		},
		"a HelmRelease's kubeconfig ConfigMap naming a ServiceAccount that does not exist": {
			change: func(p *posture) {
				p.extra = append(p.extra, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "kubeconfig"},
					Data: map[string]string{meta.KubeConfigKeyProvider: "aws", meta.KubeConfigKeyServiceAccountName: "remote"}})
			},
			object: failing(&helmv2.HelmRelease{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "app"},
				Spec: helmv2.HelmReleaseSpec{KubeConfig: &meta.KubeConfigReference{ConfigMapRef: &meta.LocalObjectReference{Name: "kubeconfig"}}}},
				meta.ReadyCondition, "RESTClientError", "failed to get access token for cluster: failed to get service account "+
					"'team-a/remote': serviceaccounts \"remote\" not found"),
			name: "HelmRelease/app", cause: "ServiceAccount team-a/remote (serviceAccountName of ConfigMap kubeconfig) does not exist",
			fix: "kubectl -n team-a create serviceaccount remote",
		},
		"an ImageUpdateAutomation pushing with its GitRepository's identity": {
			change: func(p *posture) {
				p.extra = append(p.extra, &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "repo"},
					Spec: sourcev1.GitRepositorySpec{URL: "https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/app",
						Provider: "aws", ServiceAccountName: "flux-tenant"}})
			},
			object: failing(&iacv1.ImageUpdateAutomation{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "update"},
				Spec: iacv1.ImageUpdateAutomationSpec{SourceRef: iacv1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"}}},
				meta.ReadyCondition, "SourceManagerFailed", "failed configuring source manager: "+tokenRefused),
			name: "ImageUpdateAutomation/update", cause: "the cloud refused the token of ServiceAccount team-a/flux-tenant",
			fix: "--namespaces team-a --service-accounts flux-tenant",
		},
		"a ResourceSetInputProvider borrowing Flux Operator's identity": {
			object: failing(&fluxcdv1.ResourceSetInputProvider{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "tags"},
				Spec: fluxcdv1.ResourceSetInputProviderSpec{Type: fluxcdv1.InputProviderECRArtifactTag, URL: "oci://123456789012.dkr.ecr.eu-west-1.amazonaws.com/app"}},
				meta.ReadyCondition, "ReconciliationFailed", "failed to get artifact registry credentials for 'x', provider 'aws': boom"),
			name: "ResourceSetInputProvider/tags", cause: "it uses flux-operator's own identity, and ServiceAccount flux-system/flux-operator is not mapped by the policy",
			fix: "name a ServiceAccount the policy maps in team-a on the object, or map flux-system/flux-operator in posture.yaml",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := correctPosture()
			base(p)
			if tc.change != nil {
				tc.change(p)
			}
			p.extra = append(p.extra, tc.object)
			r := diagnosePosture(t, statusPolicy, p.objects())
			var status []Finding
			for _, f := range r.Findings {
				if f.Check == CheckStatus {
					status = append(status, f)
				}
				if strings.Contains(f.Problem+f.Fix, "hunter2") {
					t.Errorf("a condition's message is printed: %+v", f)
				}
			}
			if len(status) != 1 {
				t.Fatalf("%d status findings, want 1:\n%s", len(status), describe(r.Findings))
			}
			f := status[0]
			_, cause, _ := strings.Cut(f.Problem, "; likely cause: ")
			if f.Name != tc.name || f.Namespace != tc.object.GetNamespace() || !strings.Contains(cause, tc.cause) ||
				!strings.Contains(f.Fix, tc.fix) {
				t.Errorf("finding:\n%s\nwant %s: likely cause %q, fix containing %q", describe(status), tc.name, tc.cause, tc.fix)
			}
		})
	}
	t.Run("objects that are ready, or fail for another reason, are not reported", func(t *testing.T) {
		p := correctPosture()
		base(p)
		ready := ociRepo("team-a", "ready", "aws", "flux-tenant")
		ready.Status.Conditions = []metav1.Condition{{Type: meta.ReadyCondition, Status: metav1.ConditionTrue,
			Reason: meta.SucceededReason, Message: "stored artifact"}}
		p.extra = append(p.extra, ready,
			failing(ociRepo("team-a", "down", "aws", "flux-tenant"), meta.ReadyCondition, "OCIArtifactPullFailed",
				"failed to pull artifact: connection refused"),
			// A recovered object keeps its old FetchFailed as False.
			func() client.Object {
				o := ociRepo("team-a", "recovered", "aws", "flux-tenant")
				o.Status.Conditions = []metav1.Condition{{Type: sourcev1.FetchFailedCondition, Status: metav1.ConditionFalse,
					Reason: sourcev1.AuthenticationFailedReason, Message: tokenRefused}}
				return o
			}())
		r := diagnosePosture(t, statusPolicy, p.objects())
		if i := slices.IndexFunc(r.Findings, func(f Finding) bool { return f.Check == CheckStatus }); i >= 0 {
			t.Errorf("reported %+v", r.Findings[i])
		}
	})
}

func TestMarkers(t *testing.T) {
	// The markers come from pkg/auth's error texts; test/fluxcompat holds them to the errors pkg/auth returns.
	for _, tc := range []struct {
		message string
		want    cause
	}{
		{"ObjectLevelWorkloadIdentity feature gate is not enabled", causeGate},
		{"failed to get service account 'a/b': the specified default service account does not exist in the object namespace", causeDefaultServiceAccount},
		{"failed to get provider identity from service account 'a/b' annotations: azure client ID is not set in the service account annotation azure.workload.identity/client-id", causeAnnotations},
		{"failed to get service account 'a/b': serviceaccounts \"b\" not found", causeServiceAccount},
		{"failed to create kubernetes token for service account 'a/b': forbidden", causeTokenRequest},
		{"failed to create provider access token for the controller: missing environment variables for workload identity. Check webhook and pod configuration", causeControllerEnv},
		{tokenRefused, causeExchange},
		{"failed to get secret 'a/b': not found", causeSecret},
		{"connection refused", causeUnknown},
	} {
		got := causeUnknown
		if m := markerIn(tc.message); m != nil {
			got = m.cause
		}
		if got != tc.want {
			t.Errorf("%q: cause %d, want %d", tc.message, got, tc.want)
		}
	}
}
