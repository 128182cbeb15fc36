// Package harness starts a real control plane (kube-apiserver + etcd through controller-runtime's envtest) with
// Flux's real CRDs, runs the webhook server in-process on envtest's serving certificate, and registers the project's
// own webhook configurations (config/webhook/manifests.yaml) pointed at it. The integration suites and `make run`
// share it, so the local demo and the tests exercise the same wiring.
package harness

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/go-logr/logr"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/fluxidentity/flux-identity-webhook/cmd/flux-identity-webhook/app"
	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// Scheme knows the Kubernetes built-in types and the types of every Flux kind the credential model knows.
var Scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(Scheme))
	utilruntime.Must(fluxauth.AddToScheme(Scheme))
}

// Options say what to start. Only PolicyFile is required.
type Options struct {
	PolicyFile string
	// Mode is the server-wide --mode (enforce when empty).
	Mode string
	// WebhookManifests is the file with the webhook configurations; config/webhook/manifests.yaml by default.
	WebhookManifests string
	// ExtraWebhookManifests add optional registrations, e.g. config/webhook/deployments.yaml.
	ExtraWebhookManifests []string
	// CRDDirs hold CRDs to install; $FLUX_CRDS_DIR or bin/crds by default.
	CRDDirs []string
	// Log receives the server's logs.
	Log logr.Logger
	// Binary, when set, is a built flux-identity-webhook run as the webhook server (a process of its own, so its
	// memory can be measured) instead of the server in this process.
	Binary string
}

// Env is a running control plane with the webhook registered.
type Env struct {
	Config     *rest.Config
	Client     client.Client
	KubeConfig []byte
	// MetricsURL and HealthURL are the server's plain-HTTP endpoints on loopback.
	MetricsURL string
	HealthURL  string
	// CertDir holds the serving certificate the API server trusts.
	CertDir string
	// WebhookAddr is the host:port the API server calls the webhooks on.
	WebhookAddr string
	// Process is the webhook server's process when Options.Binary is set.
	Process *os.Process

	env        *envtest.Environment
	opts       Options
	policyFile string
	stopServe  context.CancelFunc
	served     chan error
	serving    bool
}

// RepoRoot finds the repository root (the directory holding go.mod) from the working directory up.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

func (o *Options) defaults() error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	if o.WebhookManifests == "" {
		o.WebhookManifests = filepath.Join(root, "config", "webhook", "manifests.yaml")
	}
	if len(o.CRDDirs) == 0 {
		dir := os.Getenv("FLUX_CRDS_DIR")
		if dir == "" {
			dir = filepath.Join(root, "bin", "crds")
		}
		o.CRDDirs = []string{dir}
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		if err := os.Setenv("KUBEBUILDER_ASSETS", filepath.Join(root, "bin", "k8s")); err != nil {
			return err
		}
	}
	for _, need := range []string{filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kube-apiserver"), o.CRDDirs[0]} {
		if _, err := os.Stat(need); err != nil {
			return fmt.Errorf("%s is missing: run `make envtest-bins flux-crds` first", need)
		}
	}
	if o.Mode == "" {
		o.Mode = "enforce"
	}
	return nil
}

// Start brings up the control plane and the webhook server; Stop tears both down.
func Start(ctx context.Context, o Options) (*Env, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	mutating, validating, err := ReadWebhookConfigurations(o.WebhookManifests)
	if err != nil {
		return nil, err
	}
	for _, extra := range o.ExtraWebhookManifests {
		m, v, err := ReadWebhookConfigurations(extra)
		if err != nil {
			return nil, err
		}
		mutating, validating = append(mutating, m...), append(validating, v...)
	}
	registered := map[string]bool{}
	for _, m := range mutating {
		for _, w := range m.Webhooks {
			registered[*w.ClientConfig.Service.Path] = true
		}
	}
	for _, v := range validating {
		for _, w := range v.Webhooks {
			registered[*w.ClientConfig.Service.Path] = true
		}
	}
	te := &envtest.Environment{
		CRDDirectoryPaths:     o.CRDDirs,
		ErrorIfCRDPathMissing: true,
		Scheme:                Scheme,
		WebhookInstallOptions: envtest.WebhookInstallOptions{
			MutatingWebhooks:   mutating,
			ValidatingWebhooks: validating,
			LocalServingHost:   "127.0.0.1",
		},
	}
	// envtest joins host:port and the service path with a '/', so a leading '/' would give "//path".
	for _, m := range mutating {
		for i := range m.Webhooks {
			trimPath(&m.Webhooks[i].ClientConfig)
		}
	}
	for _, v := range validating {
		for i := range v.Webhooks {
			trimPath(&v.Webhooks[i].ClientConfig)
		}
	}
	cfg, err := te.Start()
	if err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	e := &Env{
		Config: cfg, KubeConfig: te.KubeConfig, env: te, opts: o, policyFile: o.PolicyFile,
		CertDir: te.WebhookInstallOptions.LocalServingCertDir,
		WebhookAddr: net.JoinHostPort(te.WebhookInstallOptions.LocalServingHost,
			strconv.Itoa(te.WebhookInstallOptions.LocalServingPort)),
	}
	if e.Client, err = client.New(cfg, client.Options{Scheme: Scheme}); err != nil {
		_ = te.Stop()
		return nil, err
	}
	if err := e.startServer(ctx, o); err != nil {
		_ = te.Stop()
		return nil, err
	}
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := e.waitForWebhooks(waitCtx, registered); err != nil {
		_ = e.Stop()
		return nil, err
	}
	return e, nil
}

func trimPath(cc *admissionv1.WebhookClientConfig) {
	if cc.Service != nil && cc.Service.Path != nil {
		p := strings.TrimPrefix(*cc.Service.Path, "/")
		cc.Service.Path = &p
	}
}

func (e *Env) startServer(ctx context.Context, o Options) error {
	if o.Binary != "" {
		return e.startBinary(ctx, o)
	}
	opts := app.DefaultServeOptions()
	opts.PolicyFile = o.PolicyFile
	opts.Mode = o.Mode
	opts.CertDir = e.CertDir
	opts.Host = e.env.WebhookInstallOptions.LocalServingHost
	opts.Port = e.env.WebhookInstallOptions.LocalServingPort
	opts.MetricsBindAddress = "127.0.0.1:0"
	opts.HealthProbeBindAddress = "127.0.0.1:0"
	opts.PolicyPollInterval = time.Second
	ready := make(chan app.ServeAddresses, 1)
	opts.Ready = func(a app.ServeAddresses) { ready <- a }

	serveCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.stopServe = cancel
	e.served = make(chan error, 1)
	go func() { e.served <- app.RunServe(serveCtx, opts, o.Log) }()
	select {
	case a := <-ready:
		e.MetricsURL = "http://" + a.Metrics + "/metrics"
		e.HealthURL = "http://" + a.Health
		e.serving = true
		return nil
	case err := <-e.served:
		return fmt.Errorf("webhook server exited before it was ready: %w", err)
	case <-ctx.Done():
		cancel()
		return ctx.Err()
	}
}

// startBinary runs o.Binary as the webhook server and returns once it is ready.
func (e *Env) startBinary(ctx context.Context, o Options) error {
	ports := make([]string, 2)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ports[i] = ln.Addr().String()
		_ = ln.Close()
	}
	host, port, _ := net.SplitHostPort(e.WebhookAddr)
	cmd := exec.Command(o.Binary, "serve", "--policy", o.PolicyFile, "--mode", o.Mode, "--cert-dir", e.CertDir,
		"--host", host, "--port", port, "--metrics-bind-address", ports[0], "--health-probe-bind-address", ports[1],
		"--policy-poll-interval", "1s")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", o.Binary, err)
	}
	e.Process = cmd.Process
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	e.MetricsURL, e.HealthURL = "http://"+ports[0]+"/metrics", "http://"+ports[1]
	e.stopServe = func() { _ = cmd.Process.Signal(syscall.SIGTERM) }
	e.served = make(chan error, 1)
	go func() {
		err := <-exited
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == -1 { // killed: the test is over
			err = nil
		}
		e.served <- err
	}()
	for {
		resp, err := http.Get(e.HealthURL + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				e.serving = true
				return nil
			}
		}
		select {
		case err := <-e.served:
			return fmt.Errorf("webhook server exited before it was ready: %w", err)
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop stops the webhook server (unless StopServer already did), then the control plane.
func (e *Env) Stop() error {
	return errors.Join(e.StopServer(), e.env.Stop())
}

// StopServer stops only the webhook server, gracefully; the API server keeps running with the webhooks registered,
// so requests meet the configurations' failurePolicy. It returns the server's own error, and nil when not serving.
func (e *Env) StopServer() error {
	if !e.serving {
		return nil
	}
	e.serving = false
	e.stopServe()
	return <-e.served
}

// StartServer starts the webhook server again after StopServer, on the same address, certificate and policy file,
// and returns once it accepts TLS connections. MetricsURL and HealthURL change.
func (e *Env) StartServer(ctx context.Context) error {
	if e.serving {
		return errors.New("the webhook server is already running")
	}
	return e.startServer(ctx, e.opts)
}

// ReadWebhookConfigurations decodes the webhook configurations of a multi-document manifest, strictly.
func ReadWebhookConfigurations(path string) ([]*admissionv1.MutatingWebhookConfiguration,
	[]*admissionv1.ValidatingWebhookConfiguration, error,
) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var (
		mutating   []*admissionv1.MutatingWebhookConfiguration
		validating []*admissionv1.ValidatingWebhookConfiguration
	)
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		var meta struct{ Kind string }
		if err := utilyaml.Unmarshal(doc, &meta); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		switch meta.Kind {
		case "MutatingWebhookConfiguration":
			m := &admissionv1.MutatingWebhookConfiguration{}
			if err := utilyaml.UnmarshalStrict(doc, m); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", path, err)
			}
			mutating = append(mutating, m)
		case "ValidatingWebhookConfiguration":
			v := &admissionv1.ValidatingWebhookConfiguration{}
			if err := utilyaml.UnmarshalStrict(doc, v); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", path, err)
			}
			validating = append(validating, v)
		case "":
		default:
			return nil, nil, fmt.Errorf("%s: unexpected kind %q", path, meta.Kind)
		}
	}
	return mutating, validating, nil
}

// Metrics scrapes the server's /metrics endpoint.
func (e *Env) Metrics(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	return Scrape(ctx, e.MetricsURL)
}

// Scrape reads a Prometheus text endpoint.
func Scrape(ctx context.Context, url string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// Counter returns the value of a counter or gauge with exactly the given labels (0 when absent).
func (e *Env) Counter(ctx context.Context, name string, labels map[string]string) (float64, error) {
	families, err := e.Metrics(ctx)
	if err != nil {
		return 0, err
	}
	return Value(families, name, labels), nil
}

// Value finds a sample in scraped metrics: the sum over samples whose labels include the given ones.
func Value(families map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f, ok := families[name]
	if !ok {
		return 0
	}
	total := 0.0
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		}
	}
	return total
}

// waitForWebhooks returns once the API server calls each registered handler. Webhook configurations reach the API
// server's admission chain through an informer, a moment after they are created; dry-run requests (the webhooks
// declare sideEffects: None) probe that without leaving objects behind.
func (e *Env) waitForWebhooks(ctx context.Context, registered map[string]bool) error {
	probes := []struct {
		path string
		obj  func(n int) client.Object
	}{
		{"/mutate-v1-serviceaccount", func(n int) client.Object {
			return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("probe-%d", n), Namespace: "default"}}
		}},
		{"/mutate-v1-pod", func(n int) client.Object {
			return &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("probe-%d", n), Namespace: "default"},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			}
		}},
		{"/mutate-apps-v1-deployment", func(n int) client.Object {
			labels := map[string]string{"app": "probe"}
			return &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("probe-%d", n), Namespace: "default"},
				Spec: appsv1.DeploymentSpec{
					Selector: &metav1.LabelSelector{MatchLabels: labels},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels},
						Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
					},
				},
			}
		}},
		{"/validate-flux-sources", func(n int) client.Object {
			return &sourcev1.GitRepository{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("probe-%d", n), Namespace: "default"},
				Spec:       sourcev1.GitRepositorySpec{URL: "https://example.invalid/repo.git", Interval: metav1.Duration{Duration: time.Minute}},
			}
		}},
		{"/validate-flux-objects", func(n int) client.Object {
			return &kustomizev1.Kustomization{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("probe-%d", n), Namespace: "default"},
				Spec: kustomizev1.KustomizationSpec{Interval: metav1.Duration{Duration: time.Minute},
					SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "probe"}},
			}
		}},
		{"/validate-v1-secret", func(n int) client.Object { // the registration sends only SOPS decryption Secrets
			return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("probe-%d", n), Namespace: "default"},
				StringData: map[string]string{fluxauth.SOPSKeyVaultToken: "probe"}}
		}},
	}
	for _, p := range probes {
		if !registered[p.path] {
			continue
		}
		for n := 0; ; n++ {
			before, err := e.Counter(ctx, "fluxidentity_admission_decisions_total", map[string]string{"webhook": p.path})
			if err != nil {
				return err
			}
			// A denial is an answer too: under a policy covering Secrets the SOPS probe is refused, as it should be.
			if err := e.Client.Create(ctx, p.obj(n), client.DryRunAll); err != nil &&
				!strings.Contains(err.Error(), "denied the request") {
				return fmt.Errorf("probe %s: %w", p.path, err)
			}
			after, err := e.Counter(ctx, "fluxidentity_admission_decisions_total", map[string]string{"webhook": p.path})
			if err != nil {
				return err
			}
			if after > before {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("the API server never called %s: %w", p.path, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// SetPolicy replaces the served policy file the way a ConfigMap update does (write aside, rename over) and waits until
// the server has swapped the new version in, so the next request is answered from it. Use it in BeforeEach to give
// each spec the policy it needs.
func (e *Env) SetPolicy(ctx context.Context, content string) error {
	if _, err := policy.Parse(e.policyFile, []byte(content), time.Now()); err != nil {
		return fmt.Errorf("the server would reject this policy: %w", err)
	}
	tmp := e.policyFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, e.policyFile); err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(content))
	digest := hex.EncodeToString(sum[:])[:12]
	for {
		families, err := e.Metrics(ctx)
		if err != nil {
			return err
		}
		if Value(families, "fluxidentity_policy_info", map[string]string{"digest": digest}) == 1 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("policy %s was not loaded: %w", digest, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// PolicyFile is the file the server watches.
func (e *Env) PolicyFile() string { return e.policyFile }
