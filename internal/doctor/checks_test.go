package doctor

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

const unitPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: doctor-unit
identities:
  - name: aws
    namespaces: [flux-system]
    serviceAccounts: [source-controller]
    aws:
      roleARN: arn:aws:iam::111122223333:role/flux
      audience: sts.eu-west-1.amazonaws.com
  - name: azure
    namespaces: [flux-system]
    serviceAccounts: [image-automation-controller]
    azure:
      clientID: 00000000-0000-0000-0000-000000000001
      tenantID: 00000000-0000-0000-0000-0000000000aa
  - name: azure-full
    namespaces: [flux-system]
    serviceAccounts: [kustomize-controller]
    azure:
      clientID: 00000000-0000-0000-0000-000000000002
      tenantID: 00000000-0000-0000-0000-0000000000aa
    injection: full
  - name: gke
    namespaces: [flux-system]
    serviceAccounts: [notification-controller]
    gcp:
      serviceAccount: fluxcd@proj-1234.iam.gserviceaccount.com
  - name: gcp-full
    namespaces: [flux-system]
    serviceAccounts: [helm-controller]
    gcp:
      serviceAccount: fluxcd@proj-1234.iam.gserviceaccount.com
      workloadIdentityProvider: projects/1/locations/global/workloadIdentityPools/pool/providers/prov
    injection: full
`

func unitMatch(t *testing.T, sa string) policy.Match {
	t.Helper()
	p, err := policy.Parse("doctor.yaml", []byte(unitPolicy), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m, ok := p.IdentityFor("flux-system", sa)
	if !ok {
		t.Fatalf("%s is not mapped", sa)
	}
	return m
}

func TestCheckServiceAccountMetadata(t *testing.T) {
	tests := map[string]struct {
		sa          string
		annotations map[string]string
		labels      map[string]string
		wantProblem []string // empty: no finding
		wantFix     []string
	}{
		"an AWS ServiceAccount with exactly the webhook's annotations is fine": {
			sa: "source-controller", annotations: map[string]string{"fluxidentity.dev/identity": "aws",
				"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/flux", "eks.amazonaws.com/audience": "sts.eu-west-1.amazonaws.com",
				"unrelated": "kept"},
		},
		"a missing audience the policy sets is reported with the command that adds it": {
			sa: "source-controller", annotations: map[string]string{"fluxidentity.dev/identity": "aws",
				"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/flux"},
			wantProblem: []string{"annotation eks.amazonaws.com/audience is missing"},
			wantFix:     []string{"kubectl -n flux-system annotate serviceaccount source-controller --overwrite 'eks.amazonaws.com/audience=sts.eu-west-1.amazonaws.com'"},
		},
		"an Azure ServiceAccount without the use label is reported": {
			sa: "image-automation-controller", annotations: map[string]string{"fluxidentity.dev/identity": "azure",
				"azure.workload.identity/client-id": "00000000-0000-0000-0000-000000000001",
				"azure.workload.identity/tenant-id": "00000000-0000-0000-0000-0000000000aa"},
			wantProblem: []string{`label azure.workload.identity/use is "", want "true"`},
			wantFix:     []string{"label serviceaccount image-automation-controller --overwrite 'azure.workload.identity/use=true'"},
		},
		"a GKE ServiceAccount carrying an AWS role is told to drop it": {
			sa: "notification-controller", annotations: map[string]string{"fluxidentity.dev/identity": "gke",
				"iam.gke.io/gcp-service-account": "fluxcd@proj-1234.iam.gserviceaccount.com",
				"eks.amazonaws.com/role-arn":     "arn:aws:iam::111122223333:role/x"},
			wantProblem: []string{"annotation eks.amazonaws.com/role-arn is set but the policy does not grant it"},
			wantFix:     []string{"'eks.amazonaws.com/role-arn-'"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: tc.sa, Namespace: "flux-system",
				Annotations: tc.annotations, Labels: tc.labels}}
			f, bad := checkServiceAccountMetadata(sa, unitMatch(t, tc.sa))
			if bad != (len(tc.wantProblem) > 0) {
				t.Fatalf("finding %v (%+v), want %v", bad, f, len(tc.wantProblem) > 0)
			}
			for _, w := range tc.wantProblem {
				if !strings.Contains(f.Problem, w) {
					t.Errorf("problem %q lacks %q", f.Problem, w)
				}
			}
			for _, w := range tc.wantFix {
				if !strings.Contains(f.Fix, w) {
					t.Errorf("fix %q lacks %q", f.Fix, w)
				}
			}
		})
	}
}

func TestCheckPod(t *testing.T) {
	tests := map[string]struct {
		sa          string
		containers  []corev1.Container
		init        []corev1.Container
		annotations map[string]string
		phase       corev1.PodPhase
		wantProblem string // empty: fine
	}{
		"an injected AWS pod is fine": {
			sa: "source-controller", containers: []corev1.Container{{Name: "manager", Env: awsEnv}},
		},
		"an AWS pod without the role variable started before the annotation": {
			sa: "source-controller", containers: []corev1.Container{{Name: "manager"}},
			wantProblem: "runs without AWS_ROLE_ARN in container manager: it started before its ServiceAccount was mapped",
		},
		"an AWS pod with an old role started before the change": {
			sa: "source-controller", containers: []corev1.Container{{Name: "manager", Env: []corev1.EnvVar{
				{Name: "AWS_ROLE_ARN", Value: "arn:aws:iam::111122223333:role/old"}}}},
			wantProblem: `runs with AWS_ROLE_ARN="arn:aws:iam::111122223333:role/old" in container manager, want arn:aws:iam::111122223333:role/flux`,
		},
		"an AWS pod with the role but no token file has no token": {
			sa: "source-controller", containers: []corev1.Container{{Name: "manager", Env: awsEnv[:1]}},
			wantProblem: "runs without AWS_WEB_IDENTITY_TOKEN_FILE",
		},
		"an init container without the identity is reported: webhooks inject init containers too": {
			sa: "source-controller", containers: []corev1.Container{{Name: "manager", Env: awsEnv}},
			init:        []corev1.Container{{Name: "fetch"}},
			wantProblem: "runs without AWS_ROLE_ARN in init container fetch",
		},
		"an injected init container is fine": {
			sa: "source-controller", containers: []corev1.Container{{Name: "manager", Env: awsEnv}},
			init: []corev1.Container{{Name: "fetch", Env: awsEnv}},
		},
		"a container listed in AWS's skip-containers (comma-separated) is not checked": {
			sa: "source-controller", annotations: map[string]string{"eks.amazonaws.com/skip-containers": "sidecar, fetch"},
			containers: []corev1.Container{{Name: "manager", Env: awsEnv}, {Name: "sidecar"}},
			init:       []corev1.Container{{Name: "fetch"}},
		},
		"AWS's skip list does not apply to an Azure pod": {
			sa: "image-automation-controller", annotations: map[string]string{"eks.amazonaws.com/skip-containers": "sidecar"},
			containers:  []corev1.Container{{Name: "manager", Env: azureEnv}, {Name: "sidecar"}},
			wantProblem: "runs without AZURE_CLIENT_ID in container sidecar",
		},
		"a container listed in Azure's skip-containers (semicolon-separated) is not checked": {
			sa: "image-automation-controller", annotations: map[string]string{"azure.workload.identity/skip-containers": "a;sidecar"},
			containers: []corev1.Container{{Name: "manager", Env: azureEnv}, {Name: "sidecar"}},
		},
		"a finished pod is not checked": {
			sa: "source-controller", containers: []corev1.Container{{Name: "manager"}}, phase: corev1.PodSucceeded,
		},
		"an Azure pod without the client ID is reported": {
			sa: "image-automation-controller", containers: []corev1.Container{{Name: "manager"}},
			wantProblem: "runs without AZURE_CLIENT_ID in container manager",
		},
		"a GKE pod carries nothing to check": {
			sa: "notification-controller", containers: []corev1.Container{{Name: "manager"}},
		},
		"a GCP pod under full injection needs GOOGLE_APPLICATION_CREDENTIALS": {
			sa: "helm-controller", containers: []corev1.Container{{Name: "manager"}},
			wantProblem: "runs without GOOGLE_APPLICATION_CREDENTIALS",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "flux-system", Annotations: tc.annotations},
				Spec:   corev1.PodSpec{ServiceAccountName: tc.sa, Containers: tc.containers, InitContainers: tc.init},
				Status: corev1.PodStatus{Phase: tc.phase}}
			problem, bad := checkPod(pod, unitMatch(t, tc.sa))
			if bad != (tc.wantProblem != "") || !strings.Contains(problem, tc.wantProblem) {
				t.Errorf("got %v %q, want %q", bad, problem, tc.wantProblem)
			}
		})
	}
}

func TestCheckDeployment(t *testing.T) {
	p, err := policy.Parse("doctor.yaml", []byte(unitPolicy), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dep := func(sa string, labels map[string]string) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "flux-system"},
			Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{DeprecatedServiceAccount: sa}}}}
	}
	f, bad := checkDeployment(p, dep("image-automation-controller", map[string]string{"app": "x"}))
	if !bad || f.Problem != `pod template lacks label azure.workload.identity/use: "true"; the Azure webhook never sees its pods` ||
		f.Fix != `kubectl -n flux-system patch deployment d --type merge -p '{"spec":{"template":{"metadata":{"labels":{"azure.workload.identity/use":"true"}}}}}' (in Git: a kustomize patch on the Deployment, as Flux's bootstrap repository would carry it)` {
		t.Errorf("an Azure template named by its deprecated serviceAccount field: %v %+v", bad, f)
	}
	for name, d := range map[string]*appsv1.Deployment{
		"labelled":                   dep("image-automation-controller", map[string]string{"azure.workload.identity/use": "true"}),
		"full injection":             dep("kustomize-controller", nil),
		"AWS":                        dep("source-controller", nil),
		"unmapped ServiceAccount":    dep("someone", nil),
		"default ServiceAccount too": dep("", nil),
	} {
		if f, bad := checkDeployment(p, d); bad {
			t.Errorf("%s: unexpected finding %+v", name, f)
		}
	}
}

func TestAnnotationWrittenAtTakesTheLatestWrite(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	field := metav1.NewFieldsV1
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{
		{Manager: "kubectl", Time: &metav1.Time{Time: at.Add(-time.Hour)},
			FieldsV1: field(`{"f:metadata":{"f:annotations":{"f:eks.amazonaws.com/role-arn":{}}}}`)},
		{Manager: "flux", Time: &at, FieldsV1: field(`{"f:metadata":{"f:annotations":{"f:eks.amazonaws.com/role-arn":{}}}}`)},
		{Manager: "other", Time: &metav1.Time{Time: at.Add(time.Hour)}, FieldsV1: field(`{"f:metadata":{"f:labels":{"f:app":{}}}}`)},
	}}}
	got := annotationWrittenAt(sa, "eks.amazonaws.com/role-arn")
	if got == nil || !got.Equal(at.Time) {
		t.Errorf("got %v, want %v", got, at)
	}
	if annotationWrittenAt(sa, "azure.workload.identity/client-id") != nil {
		t.Error("an annotation nobody wrote has no time")
	}
}

func TestCheckPullSecrets(t *testing.T) {
	p, err := policy.Parse("p.yaml", []byte(`apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
identities:
  - name: tenant
    namespaces: [team-a, team-b]
    serviceAccounts: [flux-source]
    aws: {roleARN: "arn:aws:iam::111122223333:role/tenant"}
mandates:
  - name: registries
    namespaces: [team-a]
    kinds: [OCIRepository]
`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sa := func(ns string, secrets ...string) *corev1.ServiceAccount {
		s := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "flux-source", Namespace: ns}}
		for _, name := range secrets {
			s.ImagePullSecrets = append(s.ImagePullSecrets, corev1.LocalObjectReference{Name: name})
		}
		return s
	}
	m, _ := p.IdentityFor("team-a", "flux-source")
	f, bad := checkPullSecrets(p, sa("team-a", "regcred", "other"), m)
	if !bad || !strings.Contains(f.Problem, "carries 2 imagePullSecrets") || !strings.Contains(f.Fix, `"/imagePullSecrets"`) {
		t.Errorf("finding = %+v, %v", f, bad)
	}
	if strings.Contains(f.Problem+f.Fix, "regcred") {
		t.Errorf("the finding names a Secret: %+v", f)
	}
	for _, s := range []*corev1.ServiceAccount{sa("team-a"), sa("team-b", "regcred")} {
		if f, bad := checkPullSecrets(p, s, m); bad {
			t.Errorf("%s/%v: unexpected finding %+v", s.Namespace, s.ImagePullSecrets, f)
		}
	}
}

func TestRestartCommand(t *testing.T) {
	for workload, want := range map[string]string{
		"deployment/a":  "kubectl -n ns rollout restart deployment/a",
		"statefulset/a": "kubectl -n ns rollout restart statefulset/a",
		"pod/p":         "kubectl -n ns delete pod p # then recreate it from its manifest",
		"replicaset/r":  "kubectl -n ns delete pod p # its replicaset recreates it",
		"job/j":         "kubectl -n ns delete pod p # its job recreates it",
	} {
		if got := restartCommand("ns", workload, "p"); got != want {
			t.Errorf("%s: %q, want %q", workload, got, want)
		}
	}
}
