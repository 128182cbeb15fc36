package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// The webhook port is reachable from every pod, so the TLS server is bounded by design: a client that sends its
// headers or its body slowly, or keeps a connection idle, is cut off; the open connections are capped, and room is
// made by closing those of the client holding the most (conns.go), never by making new ones wait; and the front's
// body budget and handler slots are shared per client. controller-runtime's own server leaves the body unbounded in
// time (no ReadTimeout) and the connections uncapped, which is why this one implements its Server interface instead.

// Bounds of the TLS server. The API server sends a review in one go and answers within its webhook timeout (at most
// 30 s), so these only ever cut off a client that is not the API server.
const (
	serverReadHeaderTimeout = 5 * time.Second
	serverReadTimeout       = 15 * time.Second // headers and body; the front sets a tighter deadline on the body
	serverWriteTimeout      = 15 * time.Second
	serverIdleTimeout       = 60 * time.Second
	serverMaxHeaderBytes    = 64 << 10
	// serverMaxConnections caps open connections (about 60 KiB each with their goroutine and TLS buffers): past it,
	// connections of the client holding the most are closed to make room (connLimiter).
	serverMaxConnections = 512
)

// TLSServerOptions say where and how to serve.
type TLSServerOptions struct {
	Host, CertDir string
	Port          int
	// TLSOpts adjust the TLS configuration (minimum version, protocols).
	TLSOpts []func(*tls.Config)
	// ClientCAFile, when set, is a PEM bundle: only callers presenting a certificate it signed for client
	// authentication are served, and ClientCN, when set, is the common name that certificate must carry.
	ClientCAFile, ClientCN string
	Log                    logr.Logger
}

// TLSServer serves admission webhooks over TLS with bounded timeouts and connections, reloading tls.crt and tls.key
// when they change. It implements controller-runtime's webhook.Server.
type TLSServer struct {
	opts    TLSServerOptions
	mux     *http.ServeMux
	mu      sync.Mutex
	started bool
	auth    *clientAuth
}

var _ ctrlwebhook.Server = &TLSServer{}

// NewTLSServer builds a server; Start serves it. It fails only on a client CA that does not load.
func NewTLSServer(o TLSServerOptions) (*TLSServer, error) {
	s := &TLSServer{opts: o, mux: http.NewServeMux()}
	if o.ClientCAFile != "" {
		auth, err := newClientAuth(o.ClientCAFile, o.ClientCN, o.Log)
		if err != nil {
			return nil, err
		}
		s.auth = auth
	}
	return s, nil
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
	if s.auth != nil {
		s.auth.configure(cfg)
		go s.auth.watch(ctx)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port)))
	if err != nil {
		return err
	}
	conns := newConnLimiter(ln, serverMaxConnections)
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: serverReadHeaderTimeout,
		ReadTimeout:       serverReadTimeout,
		WriteTimeout:      serverWriteTimeout,
		IdleTimeout:       serverIdleTimeout,
		MaxHeaderBytes:    serverMaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnState:         conns.connState,
		// TLS handshake noise from probes, scanners and refused callers is not worth a log line each (nil would
		// write each to stderr through the log package).
		ErrorLog: log.New(io.Discard, "", 0),
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
	err = srv.Serve(tls.NewListener(conns, cfg))
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
		switch {
		case err != nil && s.auth != nil && isRemoteAlert(err):
			return nil // TLS is served; this check has no client certificate to offer
		case err != nil:
			return fmt.Errorf("webhook server is not reachable: %w", err)
		}
		if s.auth != nil {
			// With TLS 1.3 a missing client certificate is refused after the handshake, on the first read.
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := conn.Read(make([]byte, 1)); err != nil && !isRemoteAlert(err) &&
				!errors.Is(err, os.ErrDeadlineExceeded) {
				_ = conn.Close()
				return fmt.Errorf("webhook server is not reachable: %w", err)
			}
		}
		return conn.Close()
	}
}

// isRemoteAlert reports a TLS alert the server sent (crypto/tls reports one as a net.OpError "remote error").
func isRemoteAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}
