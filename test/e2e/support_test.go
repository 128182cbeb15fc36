package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/fluxidentity/flux-identity-webhook/test/harness"
)

func objectMeta(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name}
}

// helm runs the project's helm against the cluster, with an isolated home so nothing of the machine's plays a part.
func (c *cluster) helm(ctx context.Context, args ...string) (string, error) {
	home := filepath.Join(c.paths.artifacts, "helm-home")
	cmd := exec.CommandContext(ctx, c.paths.helm, args...)
	cmd.Env = append(os.Environ(),
		"KUBECONFIG="+c.kubeconfig,
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// metrics scrapes the emulated replica's metrics port, as Prometheus would through the metrics Service.
func metrics(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+webhookIP+":8080/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(resp.Body)
}

// metricValue is the sum of the samples of name whose labels include the given ones.
func metricValue(ctx context.Context, name string, labels map[string]string) (float64, error) {
	families, err := metrics(ctx)
	if err != nil {
		return 0, err
	}
	return harness.Value(families, name, labels), nil
}

// servedDigest is the policy digest the running server reports (fluxidentity_policy_info{digest}).
func servedDigest(ctx context.Context) (string, error) {
	families, err := metrics(ctx)
	if err != nil {
		return "", err
	}
	f := families["fluxidentity_policy_info"]
	for _, m := range f.GetMetric() {
		if m.GetGauge().GetValue() != 1 {
			continue
		}
		for _, l := range m.GetLabel() {
			if l.GetName() == "digest" {
				return l.GetValue(), nil
			}
		}
	}
	return "", fmt.Errorf("no fluxidentity_policy_info sample")
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// fluxDeployment builds a Flux controller's config/manager kustomization (its image tag set by Flux's own
// kustomization) and returns its Deployment, placed as Flux's install manifests place it: in flux-system, running as
// the ServiceAccount named after the controller.
func fluxDeployment(p paths, controller string) (*appsv1.Deployment, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(p.manifests, controller))
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", controller, err)
	}
	for _, r := range res.Resources() {
		if r.GetKind() != "Deployment" {
			continue
		}
		y, err := r.AsYAML()
		if err != nil {
			return nil, err
		}
		var d appsv1.Deployment
		if err := utilyaml.UnmarshalStrict(y, &d); err != nil {
			return nil, err
		}
		d.Namespace = "flux-system"
		d.Spec.Template.Spec.ServiceAccountName = controller
		return &d, nil
	}
	return nil, fmt.Errorf("%s's config/manager holds no Deployment", controller)
}

// tlsClient trusts only the CA of a webhook configuration and checks the Service's DNS name, as the API server does.
func tlsDial(caBundle []byte, serverName string) (*x509.Certificate, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caBundle) {
		return nil, fmt.Errorf("caBundle holds no certificate")
	}
	conn, err := tls.Dial("tcp", webhookIP+":9443", &tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// podsOf lists the pods a Deployment's selector selects.
func podsOf(ctx context.Context, c *cluster, d *appsv1.Deployment) ([]corev1.Pod, error) {
	var pods corev1.PodList
	err := c.client.List(ctx, &pods, client.InNamespace(d.Namespace), client.MatchingLabels(d.Spec.Selector.MatchLabels))
	return pods.Items, err
}

// envValue is the literal value of an environment variable of the container, "<unset>" when it has none.
func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return "<unset>"
}
