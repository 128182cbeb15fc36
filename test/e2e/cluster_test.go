package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/fluxidentity/flux-identity-webhook/test/harness"
)

var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(sourcev1.AddToScheme(scheme))
	utilruntime.Must(cmapi.AddToScheme(scheme))
}

// The controllers a cluster needs for what this suite does: Deployments become ReplicaSets and Pods, namespaces get
// their default ServiceAccount and the root CA ConfigMap, uninstalled owners take their dependents with them.
var kcmControllers = []string{
	"deployment-controller", "replicaset-controller", "serviceaccount-controller", "garbage-collector-controller",
	"namespace-controller", "root-ca-certificate-publisher-controller",
}

// paths are the inputs the Makefile prepares; each one missing fails with the target that makes it.
type paths struct {
	root, assets, fluxCRDs, manifests, image, helm, certManager, artifacts string
}

func inputs() (paths, error) {
	root, err := harness.RepoRoot()
	if err != nil {
		return paths{}, err
	}
	env := func(key, def string) string {
		if v := os.Getenv(key); v != "" {
			return v
		}
		return def
	}
	p := paths{
		root:      root,
		assets:    env("KUBEBUILDER_ASSETS", filepath.Join(root, "bin", "k8s")),
		fluxCRDs:  env("FLUX_CRDS_DIR", filepath.Join(root, "bin", "crds")),
		manifests: env("FIW_E2E_MANIFESTS", filepath.Join(root, "bin", "e2e-manifests")),
		image:     env("FIW_IMAGE_DIR", filepath.Join(root, "bin", "image")),
		helm:      env("HELM", filepath.Join(root, "bin", "helm")),
		// cert-manager's controllers and CA injector, built by hack/cert-manager-bins.sh.
		certManager: env("FIW_CERT_MANAGER_BIN", filepath.Join(root, "bin", "cert-manager")),
		// One directory per run: the logs of the control plane and of every webhook process.
		artifacts: filepath.Join(root, "bin", "e2e", fmt.Sprintf("run-%s-%d", time.Now().UTC().Format("20060102-150405"), os.Getpid())),
	}
	for need, target := range map[string]string{
		filepath.Join(p.assets, "kube-apiserver"):          "envtest-bins",
		filepath.Join(p.assets, "kube-controller-manager"): "envtest-bins",
		p.fluxCRDs: "flux-crds",
		filepath.Join(p.manifests, "source-controller"): "e2e-manifests",
		filepath.Join(p.image, "oci", "index.json"):     "image",
		p.helm:        "helm",
		p.certManager: "cert-manager-bins",
	} {
		if _, err := os.Stat(need); err != nil {
			return p, fmt.Errorf("%s is missing: run `make %s` first", need, target)
		}
	}
	if err := os.MkdirAll(p.artifacts, 0o755); err != nil {
		return p, err
	}
	return p, os.Setenv("KUBEBUILDER_ASSETS", p.assets)
}

// cluster is kube-apiserver (with etcd, through envtest) and kube-controller-manager.
type cluster struct {
	paths      paths
	env        *envtest.Environment
	config     *rest.Config
	client     client.Client
	kubeconfig string
	kcm        *process
}

// startCluster starts the control plane as a cluster would run it for this suite: the ServiceAccount admission
// plugin on (envtest turns it off), webhook calls to a Service routed through its EndpointSlices
// (--enable-aggregator-routing), the admission configuration (--admission-control-config-file: a client certificate
// for the release's Service), Flux's, cert-manager's and the Prometheus operator's real CRDs, and the controller
// manager.
func startCluster(ctx context.Context, p paths, dir, admissionConfig string) (*cluster, error) {
	te := &envtest.Environment{
		CRDDirectoryPaths: []string{p.fluxCRDs, filepath.Join(p.manifests, "cert-manager-crds"),
			filepath.Join(p.manifests, "monitoring-crds")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	api := te.ControlPlane.GetAPIServer()
	api.Configure().Set("enable-aggregator-routing", "true")
	api.Configure().Set("advertise-address", apiServerIP)
	api.Configure().Disable("disable-admission-plugins")
	api.Configure().Set("admission-control-config-file", admissionConfig)
	apiLog, err := os.Create(filepath.Join(p.artifacts, "kube-apiserver.log"))
	if err != nil {
		return nil, err
	}
	api.Out, api.Err = apiLog, apiLog
	cfg, err := te.Start()
	if err != nil {
		_ = apiLog.Close()
		return nil, fmt.Errorf("start kube-apiserver (log: %s): %w", apiLog.Name(), err)
	}
	c := &cluster{paths: p, env: te, config: cfg, kubeconfig: filepath.Join(dir, "kubeconfig")}
	fail := func(err error) (*cluster, error) {
		_ = c.stop()
		return nil, err
	}
	if c.client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(c.kubeconfig, te.KubeConfig, 0o600); err != nil {
		return fail(err)
	}
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, cfg.CAData, 0o600); err != nil {
		return fail(err)
	}
	c.kcm, err = startProcess(filepath.Join(p.assets, "kube-controller-manager"), []string{
		"--kubeconfig=" + c.kubeconfig,
		"--bind-address=127.0.0.1", "--secure-port=0",
		"--leader-elect=false",
		"--use-service-account-credentials=false",
		"--root-ca-file=" + ca,
		"--controllers=" + strings.Join(kcmControllers, ","),
	}, nil, filepath.Join(p.artifacts, "kube-controller-manager.log"), nil)
	if err != nil {
		return fail(fmt.Errorf("start kube-controller-manager: %w", err))
	}
	// Ready when the ServiceAccount controller has given the default namespace its ServiceAccount: /healthz answers
	// before the informers have synced.
	if err := poll(ctx, time.Minute, func() (bool, error) {
		err := c.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "default"}, &corev1.ServiceAccount{})
		return err == nil, client.IgnoreNotFound(err)
	}); err != nil {
		return fail(fmt.Errorf("kube-controller-manager never created default/default: %w (log: %s)", err, c.kcm.logPath))
	}
	return c, nil
}

func (c *cluster) stop() error {
	var errs []error
	if c.kcm != nil {
		_, err := c.kcm.stop(10 * time.Second)
		errs = append(errs, err)
	}
	return errors.Join(append(errs, c.env.Stop())...)
}

// process is a child process with its output in a log file and in memory.
type process struct {
	cmd     *exec.Cmd
	logPath string
	out     *syncBuffer
	done    chan struct{}
	err     error
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startProcess starts bin with args; setup may adjust the command (user, directory) before it starts.
func startProcess(bin string, args, env []string, logPath string, setup func(*exec.Cmd)) (*process, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p := &process{cmd: exec.Command(bin, args...), logPath: logPath, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = env
	w := io.MultiWriter(f, p.out)
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if setup != nil {
		setup(p.cmd)
	}
	if err := p.cmd.Start(); err != nil {
		_ = f.Close()
		return nil, err
	}
	go func() {
		p.err = p.cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits up to grace for the exit, then kills. It returns the exit code.
func (p *process) stop(grace time.Duration) (int, error) {
	if p.running() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = p.cmd.Process.Kill()
			<-p.done
			return -1, fmt.Errorf("%s did not exit within %s of SIGTERM", p.cmd.Path, grace)
		}
	}
	return p.cmd.ProcessState.ExitCode(), nil
}

// poll calls check until it reports done, returns an error, or timeout passes.
func poll(ctx context.Context, timeout time.Duration, check func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		done, err := check()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// ensureNamespace creates a namespace unless it exists.
func (c *cluster) ensureNamespace(ctx context.Context, name string) error {
	err := c.client.Create(ctx, &corev1.Namespace{ObjectMeta: objectMeta("", name)})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// settle waits until kube-controller-manager has given each namespace its default ServiceAccount. Creating a
// namespace sends the webhook a request later, from that controller, so a spec that counts the webhook's decisions
// waits for the earlier specs' namespaces first instead of counting their requests as its own.
func (c *cluster) settle(ctx context.Context, namespaces ...string) error {
	return poll(ctx, time.Minute, func() (bool, error) {
		for _, ns := range namespaces {
			err := c.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "default"}, &corev1.ServiceAccount{})
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			if err != nil {
				return false, err
			}
		}
		return true, nil
	})
}
