package app

import (
	"bytes"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

const doctorUnitPolicy = `apiVersion: fluxidentity.dev/v1alpha1
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

func doctorUnitMatch(t *testing.T, sa string) policy.Match {
	t.Helper()
	p, err := policy.Parse("doctor.yaml", []byte(doctorUnitPolicy), time.Now())
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
			f, bad := checkServiceAccountMetadata(sa, doctorUnitMatch(t, tc.sa))
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

func TestCheckPodIdentity(t *testing.T) {
	awsEnv := []corev1.EnvVar{{Name: "AWS_ROLE_ARN", Value: "arn:aws:iam::111122223333:role/flux"},
		{Name: "AWS_WEB_IDENTITY_TOKEN_FILE", Value: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"}}
	tests := map[string]struct {
		sa          string
		containers  []corev1.Container
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
			wantProblem: "runs with AWS_ROLE_ARN=arn:aws:iam::111122223333:role/old in container manager, want arn:aws:iam::111122223333:role/flux",
		},
		"an AWS pod with the role but no token file has no token": {
			sa: "source-controller", containers: []corev1.Container{{Name: "manager", Env: awsEnv[:1]}},
			wantProblem: "runs without AWS_WEB_IDENTITY_TOKEN_FILE",
		},
		"a container listed in skip-containers is not checked": {
			sa: "source-controller", annotations: map[string]string{"eks.amazonaws.com/skip-containers": "sidecar,other"},
			containers: []corev1.Container{{Name: "manager", Env: awsEnv}, {Name: "sidecar"}},
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
				Spec:   corev1.PodSpec{ServiceAccountName: tc.sa, Containers: tc.containers},
				Status: corev1.PodStatus{Phase: tc.phase}}
			problem, bad := checkPodIdentity(pod, doctorUnitMatch(t, tc.sa))
			if bad != (tc.wantProblem != "") || !strings.Contains(problem, tc.wantProblem) {
				t.Errorf("got %v %q, want %q", bad, problem, tc.wantProblem)
			}
		})
	}
}

func TestAnnotationWrittenAtReadsManagedFields(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{
		{Manager: "kubectl", Time: &metav1.Time{Time: at.Add(-time.Hour)},
			FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{"f:app":{}}}}`)}},
		{Manager: "flux", Time: &at,
			FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:annotations":{"f:eks.amazonaws.com/role-arn":{}}}}`)}},
	}}}
	got := annotationWrittenAt(sa, "eks.amazonaws.com/role-arn")
	if got == nil || !got.Equal(at.Time) {
		t.Errorf("got %v, want %v", got, at)
	}
	if annotationWrittenAt(sa, "azure.workload.identity/client-id") != nil {
		t.Error("an annotation nobody wrote has no time")
	}
}

func TestDoctorTextOutput(t *testing.T) {
	var out bytes.Buffer
	report := doctorReport{Findings: []doctorFinding{
		{Check: checkPod, Namespace: "ns", Name: "a", Problem: "x", Fix: "kubectl -n ns rollout restart deployment/d"},
		{Check: checkPod, Namespace: "ns", Name: "b", Problem: "y", Fix: "kubectl -n ns rollout restart deployment/d"},
	}}
	if err := writeDoctorText(&out, report); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "rollout restart deployment/d"); n != 1 {
		t.Errorf("the same fix printed %d times:\n%s", n, out.String())
	}
	out.Reset()
	if err := writeDoctorText(&out, doctorReport{}); err != nil || out.String() != "No problems found.\n" {
		t.Errorf("empty report printed %q (%v)", out.String(), err)
	}
}
