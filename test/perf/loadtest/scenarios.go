package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// scenario is one kind of request, posted to its handler path.
type scenario struct {
	name, path string
	body       []byte
}

// loadPolicy maps flux-system's source-controller (full AWS injection, the heaviest pod path) and n-1 tenant
// entries, so lookups run against a policy of realistic size.
func loadPolicy(n int) string {
	var b strings.Builder
	b.WriteString(`apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata: {name: loadtest}
identities:
  - name: flux-controllers
    namespaces: [flux-system]
    serviceAccounts: [source-controller, kustomize-controller]
    aws:
      roleARN: arn:aws:iam::111122223333:role/flux-{serviceAccount}
      region: eu-west-1
      stsRegionalEndpoints: true
    injection: full
`)
	for i := range n - 1 {
		fmt.Fprintf(&b, `  - name: tenant-%d
    namespaces: [tenant-%d]
    serviceAccounts: [flux-source]
    azure:
      clientID: 00000000-0000-0000-0000-%012d
      tenantID: 00000000-0000-0000-0000-0000000000aa
`, i, i, i)
	}
	b.WriteString(`mandates:
  - name: no-static-git-credentials
    namespaces: [flux-system, "tenant-*"]
`)
	return b.String()
}

func review(kind metav1.GroupVersionKind, resource metav1.GroupVersionResource, ns string, obj any) ([]byte, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	r := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "705ab4f5-6393-11e8-b7cc-42010a800002", Kind: kind, Resource: resource,
			RequestKind: &kind, RequestResource: &resource, Namespace: ns, Operation: admissionv1.Create,
			UserInfo: authenticationv1.UserInfo{Username: "system:serviceaccount:kube-system:replicaset-controller",
				UID: "c3f1f0a0-1111-2222-3333-444455556666", Groups: []string{"system:serviceaccounts",
					"system:serviceaccounts:kube-system", "system:authenticated"}},
			Object:  runtime.RawExtension{Raw: raw},
			DryRun:  new(bool),
			Options: runtime.RawExtension{Raw: []byte(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1"}`)},
		},
	}
	return json.Marshal(r)
}

// controllerPod is a Flux source-controller pod as its ReplicaSet creates it.
func controllerPod(ns, sa string) *corev1.Pod {
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: path, Port: intstr.FromString("healthz")}}, InitialDelaySeconds: 5, PeriodSeconds: 10}
	}
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "source-controller-7d5f8c9b6d-", Namespace: ns,
			Labels: map[string]string{"app": "source-controller", "pod-template-hash": "7d5f8c9b6d",
				"app.kubernetes.io/part-of": "flux", "app.kubernetes.io/component": "source-controller"},
			Annotations: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "8080"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet",
				Name: "source-controller-7d5f8c9b6d", UID: "9f0e1d2c-aaaa-bbbb-cccc-1234567890ab"}},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName: sa, TerminationGracePeriodSeconds: new(int64), PriorityClassName: "system-cluster-critical",
			SecurityContext: &corev1.PodSecurityContext{FSGroup: new(int64)},
			Containers: []corev1.Container{{
				Name: "manager", Image: "ghcr.io/fluxcd/source-controller:v1.9.6", ImagePullPolicy: corev1.PullIfNotPresent,
				Args: []string{"--events-addr=http://notification-controller.flux-system.svc.cluster.local./",
					"--watch-all-namespaces=true", "--log-level=info", "--log-encoding=json", "--enable-leader-election",
					"--storage-path=/data", "--storage-adv-addr=source-controller.$(RUNTIME_NAMESPACE).svc.cluster.local."},
				Env: []corev1.EnvVar{
					{Name: "RUNTIME_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
					{Name: "TUF_ROOT", Value: "/tmp/.sigstore"},
					{Name: "GOMAXPROCS", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{
						ContainerName: "manager", Resource: "limits.cpu"}}},
				},
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9090}, {Name: "http-prom", ContainerPort: 8080},
					{Name: "healthz", ContainerPort: 9440}},
				LivenessProbe: probe("/healthz"), ReadinessProbe: probe("/"),
				Resources: corev1.ResourceRequirements{
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "tmp", MountPath: "/tmp"}},
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: new(bool), ReadOnlyRootFilesystem: ptrTrue(),
					RunAsNonRoot: ptrTrue(), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
}

func ptrTrue() *bool { t := true; return &t }

func scenarios() ([]scenario, error) {
	podKind := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	podRes := metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
	mapped, err := review(podKind, podRes, "flux-system", controllerPod("flux-system", "source-controller"))
	if err != nil {
		return nil, err
	}
	tenantPod := controllerPod("apps", "default")
	tenantPod.Labels = map[string]string{"app": "web"}
	unmapped, err := review(podKind, podRes, "apps", tenantPod)
	if err != nil {
		return nil, err
	}
	sa, err := review(metav1.GroupVersionKind{Version: "v1", Kind: "ServiceAccount"},
		metav1.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}, "flux-system",
		&corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: metav1.ObjectMeta{Name: "source-controller", Namespace: "flux-system",
				Labels: map[string]string{"app.kubernetes.io/part-of": "flux"}}})
	if err != nil {
		return nil, err
	}
	repo, err := review(metav1.GroupVersionKind{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "GitRepository"},
		metav1.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "gitrepositories"},
		"flux-system", &sourcev1.GitRepository{
			TypeMeta:   metav1.TypeMeta{APIVersion: "source.toolkit.fluxcd.io/v1", Kind: "GitRepository"},
			ObjectMeta: metav1.ObjectMeta{Name: "flux-system", Namespace: "flux-system"},
			Spec: sourcev1.GitRepositorySpec{URL: "https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/fleet",
				Provider: "aws", Interval: metav1.Duration{Duration: time.Minute},
				Reference: &sourcev1.GitRepositoryRef{Branch: "main"}},
		})
	if err != nil {
		return nil, err
	}
	return []scenario{
		{"pod mapped (full)", "/mutate-v1-pod", mapped},
		{"pod unmapped", "/mutate-v1-pod", unmapped},
		{"serviceaccount", "/mutate-v1-serviceaccount", sa},
		{"gitrepository", "/validate-flux-sources", repo},
	}, nil
}
