package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/fluxidentity/flux-identity-webhook/test/harness"
	"github.com/fluxidentity/flux-identity-webhook/test/promql"
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
	return harness.Scrape(ctx, "http://"+webhookIP+":8080/metrics")
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

func newUnstructured(apiVersion, kind string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	return u
}

// scrapeAsPrometheus returns what Prometheus would hold from the replica's metrics endpoint through the chart's
// ServiceMonitor (the Prometheus operator's target labels added, clashing labels renamed exported_*) and from the
// API server's /metrics.
func scrapeAsPrometheus(ctx context.Context) map[string]promql.Family {
	GinkgoHelper()
	replica, err := metrics(ctx)
	Expect(err).NotTo(HaveOccurred())
	families := promql.Families(replica, map[string]string{
		"namespace": releaseNS, "pod": fullname + "-0", "service": fullname + "-metrics", "endpoint": "metrics",
		"job": fullname + "-metrics", "instance": webhookIP + ":8080", "container": "webhook",
	})
	cs, err := kubernetes.NewForConfig(c.config)
	Expect(err).NotTo(HaveOccurred())
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	Expect(err).NotTo(HaveOccurred())
	parser := expfmt.NewTextParser(model.UTF8Validation)
	apiserver, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	Expect(err).NotTo(HaveOccurred())
	for name, f := range promql.Families(apiserver, map[string]string{"job": "apiserver", "instance": apiServerIP + ":443"}) {
		if strings.HasPrefix(name, "apiserver_") { // the Go runtime's metrics are in both
			Expect(families).NotTo(HaveKey(name), "a metric both export")
			families[name] = f
		}
	}
	return families
}

// dashboardTargets returns the dashboard's queries, by panel title, with Grafana's variables substituted.
func dashboardTargets(raw string) map[string]string {
	GinkgoHelper()
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	Expect(json.Unmarshal([]byte(raw), &d)).To(Succeed())
	sub := strings.NewReplacer("$namespace", releaseNS, "$__rate_interval", "5m", "$__range", "1h")
	out := map[string]string{}
	for _, p := range d.Panels {
		for i, t := range p.Targets {
			out[fmt.Sprintf("%s#%d", p.Title, i)] = sub.Replace(t.Expr)
		}
	}
	return out
}
