package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/netutil"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// The webhook port is reachable from every pod, so the TLS server is bounded by design: a client that sends its
// headers or its body slowly, or keeps a connection idle, is cut off; the number of open connections is capped; and
// the front's body budget bounds what bodies in flight may hold. controller-runtime's own server leaves the body
// unbounded in time (no ReadTimeout) and the connections uncapped, which is why this one implements its Server
// interface instead.

// Bounds of the TLS server. The API server sends a review in one go and answers within its webhook timeout (at most
// 30 s), so these only ever cut off a client that is not the API server.
const (
	serverReadHeaderTimeout = 5 * time.Second
	serverReadTimeout       = 15 * time.Second // headers and body; the front sets a tighter deadline on the body
	serverWriteTimeout      = 15 * time.Second
	serverIdleTimeout       = 60 * time.Second
	serverMaxHeaderBytes    = 64 << 10
	// serverMaxConnections caps open connections: an attacker holding connections open keeps at most this many,
	// about 40 KiB each; the API server's connections wait in the kernel's accept queue meanwhile.
	serverMaxConnections = 512
)

// TLSServerOptions say where and how to serve.
type TLSServerOptions struct {
	Host, CertDir string
	Port          int
	// TLSOpts adjust the TLS configuration (minimum version, protocols).
	TLSOpts []func(*tls.Config)
	Log     logr.Logger
}

// TLSServer serves admission webhooks over TLS with bounded timeouts and connections, reloading tls.crt and tls.key
// when they change. It implements controller-runtime's webhook.Server.
type TLSServer struct {
	opts    TLSServerOptions
	mux     *http.ServeMux
	mu      sync.Mutex
	started bool
}

var _ ctrlwebhook.Server = &TLSServer{}

// NewTLSServer builds a server; Start serves it.
func NewTLSServer(o TLSServerOptions) *TLSServer {
	return &TLSServer{opts: o, mux: http.NewServeMux()}
}

// Request metrics of the TLS server, per webhook path.
var (
	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "fluxidentity_admission_request_duration_seconds",
		Help:    "Time to answer an admission request, from its headers to the last byte of the answer, by webhook path.",
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5},
	}, []string{"webhook"})
	requestsInFlight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fluxidentity_admission_requests_in_flight",
		Help: "Admission requests being answered, by webhook path.",
	}, []string{"webhook"})
)

func init() {
	metrics.Registry.MustRegister(requestDuration, requestsInFlight)
}

// Register serves hook at path, measured per path.
func (s *TLSServer) Register(path string, hook http.Handler) {
	duration, inFlight := requestDuration.WithLabelValues(path), requestsInFlight.WithLabelValues(path)
	s.mux.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight.Inc()
		defer inFlight.Dec()
		start := time.Now()
		hook.ServeHTTP(w, r)
		duration.Observe(time.Since(start).Seconds())
	}))
}

// NeedLeaderElection is false: every replica serves.
func (s *TLSServer) NeedLeaderElection() bool { return false }

// WebhookMux is the mux the webhooks are registered on.
func (s *TLSServer) WebhookMux() *http.ServeMux { return s.mux }

// Start serves until ctx ends, then shuts down gracefully: in-flight requests finish.
func (s *TLSServer) Start(ctx context.Context) error {
	watcher, err := certwatcher.New(filepath.Join(s.opts.CertDir, "tls.crt"), filepath.Join(s.opts.CertDir, "tls.key"))
	if err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	go func() {
		if err := watcher.Start(ctx); err != nil {
			s.opts.Log.Error(err, "certificate watcher stopped")
		}
	}()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: watcher.GetCertificate,
		NextProtos: []string{"h2", "http/1.1"}}
	for _, o := range s.opts.TLSOpts {
		o(cfg)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port)))
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: serverReadHeaderTimeout,
		ReadTimeout:       serverReadTimeout,
		WriteTimeout:      serverWriteTimeout,
		IdleTimeout:       serverIdleTimeout,
		MaxHeaderBytes:    serverMaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          nil, // TLS handshake noise from probes and scanners is not worth a log line each
	}
	if len(cfg.NextProtos) == 1 && cfg.NextProtos[0] == "http/1.1" {
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){} // no HTTP/2
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			s.opts.Log.Error(err, "shutting down the webhook server")
		}
	}()
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	err = srv.Serve(tls.NewListener(netutil.LimitListener(ln, serverMaxConnections), cfg))
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-done
	return nil
}

// StartedChecker is healthy once the server accepts TLS connections.
func (s *TLSServer) StartedChecker() healthz.Checker {
	return func(*http.Request) error {
		s.mu.Lock()
		started := s.started
		s.mu.Unlock()
		if !started {
			return errors.New("webhook server has not been started yet")
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp",
			net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port)), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only checks that TLS is served
		if err != nil {
			return fmt.Errorf("webhook server is not reachable: %w", err)
		}
		return conn.Close()
	}
}
