// Package chart renders charts/flux-identity-webhook with the real helm binary (bin/helm, built by `make helm`),
// decodes every object strictly into its Go type and checks what a platform team relies on: security settings,
// selectors, paths, TLS wiring and availability. It also keeps config/ (kustomize) and the chart equivalent, and
// registers the chart's webhook configurations on a real API server to prove the selectors.
package chart

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/test/harness"
)

const (
	releaseName = "flux-identity-webhook"
	releaseNS   = "flux-identity-system"
)

// testingT is what the helpers need from *testing.T and from ginkgo's GinkgoT().
type testingT interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	TempDir() string
}

// repoRoot is the repository root; chartDir the chart under test.
func repoRoot(t testingT) string {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatalf("find repository root: %v", err)
	}
	return root
}

func chartDir(t testingT) string {
	return filepath.Join(repoRoot(t), "charts", "flux-identity-webhook")
}

// helmBin is $HELM or bin/helm. A missing binary fails the test: `make test` builds it, and a skipped render test
// would hide a broken chart.
func helmBin(t testingT) string {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		bin = filepath.Join(repoRoot(t), "bin", "helm")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("helm is missing (%v): run `make helm` first", err)
	}
	return bin
}

// runHelm runs helm with an isolated home, so the developer's repositories and plugins play no part.
func runHelm(t testingT, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(helmBin(t), args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "no-kubeconfig"),
	)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// render runs `helm template` with the given values (YAML) and returns the manifest.
func render(t testingT, namespace, values string) (string, error) {
	t.Helper()
	f := valuesFile(t, values)
	defer func() { _ = os.Remove(f) }()
	out, errOut, err := runHelm(t, "template", releaseName, chartDir(t), "--namespace", namespace, "--values", f)
	if err != nil {
		return "", fmt.Errorf("helm template: %w: %s", err, errOut)
	}
	return out, nil
}

// objects is a rendered manifest decoded strictly, by kind and name.
type objects struct {
	all []client.Object
}

func (o objects) get(kind, name string) client.Object {
	for _, obj := range o.all {
		if obj.GetObjectKind().GroupVersionKind().Kind == kind && obj.GetName() == name {
			return obj
		}
	}
	return nil
}

func (o objects) count(kind string) int {
	n := 0
	for _, obj := range o.all {
		if obj.GetObjectKind().GroupVersionKind().Kind == kind {
			n++
		}
	}
	return n
}

// newTyped returns the Go type for apiVersion/kind; unknown kinds are an error, so a new template needs a decision
// here about how it is checked.
func newTyped(apiVersion, kind string) (client.Object, error) {
	switch apiVersion + "/" + kind {
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1/Secret":
		return &corev1.Secret{}, nil
	case "v1/Service":
		return &corev1.Service{}, nil
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, nil
	case "batch/v1/CronJob":
		return &batchv1.CronJob{}, nil
	case "rbac.authorization.k8s.io/v1/ClusterRole":
		return &rbacv1.ClusterRole{}, nil
	case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}, nil
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, nil
	case "admissionregistration.k8s.io/v1/MutatingWebhookConfiguration":
		return &admissionv1.MutatingWebhookConfiguration{}, nil
	case "admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration":
		return &admissionv1.ValidatingWebhookConfiguration{}, nil
	case "cert-manager.io/v1/Issuer":
		return &cmapi.Issuer{}, nil
	case "cert-manager.io/v1/Certificate":
		return &cmapi.Certificate{}, nil
	case "monitoring.coreos.com/v1/ServiceMonitor", "monitoring.coreos.com/v1/PrometheusRule":
		// prometheus-operator's Go types would pull another large module; the fields that matter are checked by path.
		return &unstructured.Unstructured{}, nil
	}
	return nil, fmt.Errorf("no Go type registered for %s %s", apiVersion, kind)
}

// decode splits a multi-document manifest and decodes each document strictly (unknown fields are errors).
func decode(manifest string) (objects, error) {
	var objs objects
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return objs, fmt.Errorf("split manifest: %w", err)
		}
		var meta struct{ APIVersion, Kind string }
		if err := utilyaml.Unmarshal(doc, &meta); err != nil {
			return objs, fmt.Errorf("read kind: %w", err)
		}
		if meta.Kind == "" {
			continue // comment-only document
		}
		obj, err := newTyped(meta.APIVersion, meta.Kind)
		if err != nil {
			return objs, err
		}
		if u, ok := obj.(*unstructured.Unstructured); ok {
			if err := utilyaml.Unmarshal(doc, &u.Object); err != nil {
				return objs, fmt.Errorf("decode %s: %w", meta.Kind, err)
			}
		} else if err := utilyaml.UnmarshalStrict(doc, obj); err != nil {
			return objs, fmt.Errorf("decode %s strictly: %w\n%s", meta.Kind, err, doc)
		}
		objs.all = append(objs.all, obj)
	}
}

// mustRender renders and decodes, failing the test on any error.
func mustRender(t testingT, namespace, values string) objects {
	t.Helper()
	manifest, err := render(t, namespace, values)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decode(manifest)
	if err != nil {
		t.Fatalf("decode rendered chart: %v", err)
	}
	return objs
}

// valuesFile writes values to a file whose path has no comma (helm splits --values on commas, and test names, which
// t.TempDir uses, have them). The caller removes it.
func valuesFile(t testingT, values string) string {
	t.Helper()
	f, err := os.CreateTemp("", "chart-values-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(values)
	if err := errors.Join(err, f.Close()); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}
