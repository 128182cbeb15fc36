package admissiontest

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// FluxControllerPod is a Flux controller pod as its ReplicaSet creates it: one manager container with args, env, ports,
// probes, resources and two volumes.
func FluxControllerPod(sa string) *corev1.Pod {
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

// FuzzLimit bounds the inputs the fuzz targets try: larger ones only cost time.
const FuzzLimit = 16 << 10
