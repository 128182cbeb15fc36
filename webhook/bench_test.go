package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// benchPod is a Flux controller pod as its ReplicaSet creates it: one manager container with args, env, ports,
// probes, resources and two volumes.
func benchPod(sa string) *corev1.Pod {
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz",
		Port: intstr.FromString("healthz")}}}
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: sa + "-7d5f8c9b6d-",
			Labels:      map[string]string{"app": sa, "pod-template-hash": "7d5f8c9b6d"},
			Annotations: map[string]string{"prometheus.io/scrape": "true"}},
		Spec: corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{
			Name: "manager", Image: "ghcr.io/fluxcd/" + sa + ":v1.9.6",
			Args: []string{"--watch-all-namespaces=true", "--log-level=info", "--log-encoding=json",
				"--enable-leader-election", "--storage-path=/data"},
			Env: []corev1.EnvVar{{Name: "RUNTIME_NAMESPACE", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}, {Name: "TUF_ROOT", Value: "/tmp/.sigstore"}},
			Ports:         []corev1.ContainerPort{{Name: "http", ContainerPort: 9090}, {Name: "healthz", ContainerPort: 9440}},
			LivenessProbe: probe, ReadinessProbe: probe,
			Resources: corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")}},
			VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "tmp", MountPath: "/tmp"}},
		}}, Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}},
	}
}

func benchReview(b *testing.B, ns string, obj any) []byte {
	b.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		b.Fatal(err)
	}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "705ab4f5-6393-11e8-b7cc-42010a800002", Namespace: ns,
			Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
			UserInfo: authenticationv1.UserInfo{Username: "system:serviceaccount:kube-system:replicaset-controller",
				Groups: []string{"system:serviceaccounts", "system:authenticated"}}},
	}
	body, err := json.Marshal(review)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkHandlers measures each handler's decision and patch on realistic requests, through the HTTP front the
// server uses (body read, one decode, decision, answer, encode), without TLS.
func BenchmarkHandlers(b *testing.B) {
	p := loadFixturePolicy(b)
	front := NewServer(Options{Policy: fixedPolicy{p}, Mode: policy.ModeEnforce})
	cases := []struct {
		name, path, ns string
		obj            any
	}{
		{"pod mapped full injection", PathMutatePod, "flux-system", benchPod("source-controller")},
		{"pod mapped annotate", PathMutatePod, "flux-system", benchPod("helm-controller")},
		{"pod unmapped", PathMutatePod, "apps", benchPod("default")},
		{"serviceaccount mapped", PathMutateServiceAccount, "flux-system", &corev1.ServiceAccount{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: metav1.ObjectMeta{Name: "source-controller", Namespace: "flux-system"}}},
	}
	for _, c := range cases {
		body := benchReview(b, c.ns, c.obj)
		h := front.Handler(c.path)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, c.path, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
	b.Run("floor: decode and answer allowed", func(b *testing.B) {
		body := benchReview(b, "flux-system", benchPod("source-controller"))
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var review admissionv1.AdmissionReview
			if err := json.Unmarshal(body, &review); err != nil {
				b.Fatal(err)
			}
			out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta,
				Response: &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}}
			if _, err := json.Marshal(out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
