package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist"
)

// What doctor and audit share: reaching the cluster, showing progress, and saying why a run stopped early.

// ClusterOptions say how doctor and audit reach the cluster.
type ClusterOptions struct {
	Kubeconfig string
	Context    string
	Timeout    time.Duration
	// ChunkSize is the number of objects a List page holds (kubectl's --chunk-size).
	ChunkSize int64
}

func defaultClusterOptions() ClusterOptions {
	return ClusterOptions{Timeout: time.Minute, ChunkSize: kubelist.DefaultPageSize}
}

func (o *ClusterOptions) bindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig,
		"Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).")
	fs.StringVar(&o.Context, "context", o.Context, "Kubeconfig context (default: the current context).")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout,
		"Stop reading the cluster after this long; what was found by then is printed, marked incomplete (exit 2).")
	fs.Int64Var(&o.ChunkSize, "chunk-size", o.ChunkSize,
		"Read lists in pages of this many objects, as kubectl does; memory holds one page at a time.")
}

func (o *ClusterOptions) validate() error {
	var errs []error
	if o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout must be positive, got %s", o.Timeout))
	}
	if o.ChunkSize <= 0 {
		errs = append(errs, fmt.Errorf("--chunk-size must be positive, got %d", o.ChunkSize))
	}
	return errors.Join(errs...)
}

// clusterScheme knows the built-in kinds and the Flux source kinds.
var clusterScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(fluxauth.AddToScheme(s))
	return s
}()

// reader loads the kubeconfig the way kubectl does (--kubeconfig, else $KUBECONFIG and ~/.kube/config, else the
// in-cluster ServiceAccount) and builds a client for command (the user agent's suffix).
func (o *ClusterOptions) reader(command string) (client.Reader, error) { return o.client(command) }

// client is reader's client, for a command that also writes (audit --apply).
func (o *ClusterOptions) client(command string) (client.Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: o.Context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.UserAgent = "flux-identity-webhook-" + command
	// No client-side rate limit. These commands send one request at a time, a page of 500 objects each, so a
	// 10,000-source cluster costs a few dozen requests: a limiter cannot lower that load, only add waits (client-go's
	// default of 5 requests/s made the old per-namespace reads take 200 s on 1,000 namespaces) and, near the
	// deadline, fail with its own error instead of the deadline's. The API server's priority and fairness queues protect
	// it from every client, this one included; controller-runtime's GetConfig disables the limiter for the same reason.
	cfg.QPS = -1
	c, err := client.New(cfg, client.Options{Scheme: clusterScheme})
	if err != nil {
		return nil, fmt.Errorf("create Kubernetes client for %s: %w", cfg.Host, err)
	}
	return c, nil
}

// read runs fn under --timeout with a Lister over c that pages by --chunk-size and shows progress on stderr when it is
// a terminal. fn's error comes back explained for the user (stopped), to return once fn's partial result is printed.
func (o *ClusterOptions) read(ctx context.Context, c client.Reader, stderr io.Writer, command string,
	fn func(context.Context, *kubelist.Lister) error,
) error {
	onPage, done := progress(stderr, command)
	l := &kubelist.Lister{Reader: c, PageSize: o.ChunkSize, OnPage: onPage}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	err := fn(ctx, l)
	done()
	if err != nil {
		return stopped(ctx, err, o.Timeout, l.Progress())
	}
	return nil
}

// progress shows where a read stands on stderr, one line rewritten after every page, when stderr is a terminal;
// elsewhere (a pipe, a file, a test) it writes nothing. The returned function clears the line.
func progress(stderr io.Writer, command string) (func(kubelist.Progress), func()) {
	if !isTerminal(stderr) {
		return nil, func() {}
	}
	return func(p kubelist.Progress) {
			_, _ = fmt.Fprintf(stderr, "\r\x1b[K%s: %s", command, progressLine(p))
		}, func() {
			_, _ = fmt.Fprint(stderr, "\r\x1b[K")
		}
}

func progressLine(p kubelist.Progress) string {
	return fmt.Sprintf("reading %s: %d read (%d requests)", p.Step, p.Read, p.Requests)
}

// isTerminal says whether w is a character device, as a terminal is (so is /dev/null, where nothing is seen anyway).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// stopped explains an error that ended a read early, for after what was found has been printed: a deadline names
// --timeout, Ctrl-C says so, anything else keeps its own text. It exits 2.
func stopped(ctx context.Context, err error, timeout time.Duration, at kubelist.Progress) error {
	where := "while " + progressLine(at)
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		err = fmt.Errorf("gave up after --timeout %s %s: the report above is incomplete; a longer --timeout reads "+
			"the rest", timeout, where)
	case errors.Is(ctx.Err(), context.Canceled):
		err = fmt.Errorf("interrupted %s: the report above is incomplete", where)
	default:
		err = fmt.Errorf("%w: the report above is incomplete", err)
	}
	return &exitError{code: 2, err: err}
}
