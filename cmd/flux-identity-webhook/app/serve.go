package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook"
)

// ServeOptions configure the admission server.
type ServeOptions struct {
	PolicyFile         string
	PolicyPollInterval time.Duration
	Mode               string

	CertDir       string
	Host          string
	Port          int
	TLSMinVersion string
	EnableHTTP2   bool
	// ClientCAFile and ClientCNName turn on client authentication: only callers presenting a certificate the CA
	// signed, with that common name (any when empty), are served.
	ClientCAFile string
	ClientCNName string

	MetricsBindAddress     string
	HealthProbeBindAddress string
	MaxRequestBytes        int64
	// ShutdownDelay keeps serving after SIGTERM with readiness already false, so the endpoints controller can take the
	// pod out of the Service before connections are refused.
	ShutdownDelay time.Duration

	// Ready, when set, is called once every listener is up (tests use it instead of polling ports).
	Ready func(ServeAddresses)
}

// ServeAddresses are the bound addresses, useful when ports were chosen by the system (":0").
type ServeAddresses struct {
	Metrics, Health string
}

// DefaultServeOptions are the flag defaults.
func DefaultServeOptions() ServeOptions {
	return ServeOptions{
		PolicyPollInterval:     10 * time.Second,
		Mode:                   string(policy.ModeEnforce),
		Port:                   9443,
		TLSMinVersion:          "1.2",
		MetricsBindAddress:     ":8080",
		HealthProbeBindAddress: ":8081",
		MaxRequestBytes:        webhook.DefaultMaxRequestBytes,
		ClientCNName:           "kube-apiserver",
	}
}

func (o *ServeOptions) bindPolicyFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.PolicyFile, "policy", o.PolicyFile, "Policy file (IdentityPolicy YAML); reloaded when it changes.")
	fs.DurationVar(&o.PolicyPollInterval, "policy-poll-interval", o.PolicyPollInterval,
		"Re-read the policy file this often even without filesystem events.")
	fs.StringVar(&o.Mode, "mode", o.Mode,
		"enforce: answer violations as the policy says; warn: audit-only, every denial becomes a warning.")
}

func (o *ServeOptions) bindServingFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.CertDir, "cert-dir", o.CertDir, "Directory holding tls.crt and tls.key; reloaded when they change.")
	fs.StringVar(&o.Host, "host", o.Host, "Address to serve admission requests on (empty: all).")
	fs.IntVar(&o.Port, "port", o.Port, "Port to serve admission requests on.")
	fs.StringVar(&o.TLSMinVersion, "tls-min-version", o.TLSMinVersion, "Minimum TLS version: 1.2 or 1.3.")
	fs.BoolVar(&o.EnableHTTP2, "enable-http2", o.EnableHTTP2,
		"Serve HTTP/2 as well (off by default: HTTP/2 stream resets are a denial-of-service vector).")
	fs.StringVar(&o.ClientCAFile, "client-ca-file", o.ClientCAFile,
		"PEM bundle of the CA that signs the API server's client certificate; when set, only callers presenting a "+
			"certificate it signed are served (reloaded when it changes).")
	fs.StringVar(&o.ClientCNName, "client-cn-name", o.ClientCNName,
		"Common name the client certificate must carry with --client-ca-file (empty: any the CA signed).")
	fs.Int64Var(&o.MaxRequestBytes, "max-request-bytes", o.MaxRequestBytes,
		"Largest AdmissionReview body accepted; larger ones get HTTP 413 without being read.")
	fs.DurationVar(&o.ShutdownDelay, "shutdown-delay", o.ShutdownDelay,
		"After SIGTERM, report not ready and keep serving this long before closing listeners.")
}

func (o *ServeOptions) bindObservabilityFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress,
		"Address of the Prometheus metrics endpoint (/metrics); \"0\" disables it.")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress,
		"Address of the /healthz and /readyz endpoints.")
}

// Validate checks the options before anything starts.
func (o *ServeOptions) Validate() error {
	var errs []error
	if o.PolicyFile == "" {
		errs = append(errs, errors.New("--policy is required"))
	}
	if o.CertDir == "" {
		errs = append(errs, errors.New("--cert-dir is required"))
	}
	if o.Mode != string(policy.ModeEnforce) && o.Mode != string(policy.ModeWarn) {
		errs = append(errs, fmt.Errorf("--mode must be enforce or warn, got %q", o.Mode))
	}
	if _, err := tlsVersion(o.TLSMinVersion); err != nil {
		errs = append(errs, err)
	}
	if o.Port < 1 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("--port must be 1..65535, got %d", o.Port))
	}
	if o.PolicyPollInterval <= 0 {
		errs = append(errs, errors.New("--policy-poll-interval must be positive"))
	}
	if o.MaxRequestBytes < 1<<10 {
		errs = append(errs, fmt.Errorf("--max-request-bytes must be at least 1024, got %d", o.MaxRequestBytes))
	}
	return errors.Join(errs...)
}

func tlsVersion(v string) (uint16, error) {
	switch v {
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("--tls-min-version must be 1.2 or 1.3, got %q", v)
}

func newServeCommand() *cobra.Command {
	o := DefaultServeOptions()
	policyFlags := pflag.NewFlagSet("policy", pflag.ContinueOnError)
	servingFlags := pflag.NewFlagSet("serving", pflag.ContinueOnError)
	obsFlags := pflag.NewFlagSet("observability", pflag.ContinueOnError)
	o.bindPolicyFlags(policyFlags)
	o.bindServingFlags(servingFlags)
	o.bindObservabilityFlags(obsFlags)
	logFlags := bindLogFlags()

	cmd := &cobra.Command{
		Use:   "serve --policy FILE --cert-dir DIR",
		Short: "Serve the admission webhooks",
		Long: `Serve the mutating and validating admission webhooks over TLS. The server needs no Kubernetes API access
(no RBAC): everything it decides comes from the admission request and the policy file.`,
		Example: `  flux-identity-webhook serve --policy /etc/flux-identity/policy.yaml --cert-dir /tls`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			log := setupLogger(logFlags)
			return RunServe(cmd.Context(), o, log)
		},
	}
	addSections(cmd,
		flagSection{"Policy", policyFlags},
		flagSection{"Serving", servingFlags},
		flagSection{"Observability", obsFlags},
		flagSection{"Logging", logFlags.flags},
	)
	return cmd
}

// RunServe runs the admission server until ctx ends, then shuts down gracefully: readiness turns false, requests
// keep being served for ShutdownDelay, in-flight requests finish, and it returns nil.
func RunServe(ctx context.Context, o ServeOptions, log logr.Logger) error {
	if err := o.Validate(); err != nil {
		return err
	}
	announceBuild(log)
	minTLS, _ := tlsVersion(o.TLSMinVersion)
	for _, f := range []string{"tls.crt", "tls.key"} {
		if _, err := os.Stat(filepath.Join(o.CertDir, f)); err != nil {
			return fmt.Errorf("serving certificate: %w", err)
		}
	}

	policyLog := log.WithName("policy")
	reloader, err := policy.NewReloader(o.PolicyFile, func(e policy.ReloadEvent) { observeReload(policyLog, e) })
	if err != nil {
		return fmt.Errorf("load policy: %w", err)
	}
	observeReload(policyLog, policy.ReloadEvent{Policy: reloader.Current(), Changed: true})

	srv, err := webhook.NewTLSServer(webhook.TLSServerOptions{
		Host:         o.Host,
		Port:         o.Port,
		CertDir:      o.CertDir,
		ClientCAFile: o.ClientCAFile,
		ClientCN:     o.ClientCNName,
		Log:          log.WithName("server"),
		TLSOpts: []func(*tls.Config){func(c *tls.Config) {
			c.MinVersion = minTLS
			if !o.EnableHTTP2 {
				c.NextProtos = []string{"http/1.1"}
			}
		}},
	})
	if err != nil {
		return err
	}
	webhook.NewServer(webhook.Options{
		Policy:          reloader,
		Mode:            policy.Mode(o.Mode),
		MaxRequestBytes: o.MaxRequestBytes,
		Log:             log.WithName("admission"),
	}).Register(srv)

	var stopping atomic.Bool
	health := newHealthHandler(srv.StartedChecker(), reloader, &stopping)

	healthLn, err := net.Listen("tcp", o.HealthProbeBindAddress)
	if err != nil {
		return fmt.Errorf("health probe listener: %w", err)
	}
	var metricsLn net.Listener
	if o.MetricsBindAddress != "0" {
		if metricsLn, err = net.Listen("tcp", o.MetricsBindAddress); err != nil {
			_ = healthLn.Close()
			return fmt.Errorf("metrics listener: %w", err)
		}
	}

	// The webhook server runs on its own context so that SIGTERM first flips readiness and waits ShutdownDelay.
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	g, gctx := errgroup.WithContext(serveCtx)
	g.Go(func() error { return srv.Start(gctx) })
	g.Go(func() error { return reloader.Watch(gctx, 200*time.Millisecond, o.PolicyPollInterval) })
	g.Go(func() error { return serveHTTP(gctx, healthLn, health) })
	addrs := ServeAddresses{Health: healthLn.Addr().String()}
	if metricsLn != nil {
		addrs.Metrics = metricsLn.Addr().String()
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}))
		g.Go(func() error { return serveHTTP(gctx, metricsLn, mux) })
	}
	g.Go(func() error {
		select {
		case <-ctx.Done():
			log.Info("shutting down", "delay", o.ShutdownDelay.String())
			stopping.Store(true)
			if o.ShutdownDelay > 0 {
				t := time.NewTimer(o.ShutdownDelay)
				select {
				case <-t.C:
				case <-gctx.Done():
					t.Stop()
				}
			}
			stopServing()
		case <-gctx.Done():
		}
		return nil
	})
	log.Info("serving", "port", o.Port, "mode", o.Mode, "policy", o.PolicyFile,
		"metrics", addrs.Metrics, "health", addrs.Health, "clientAuth", o.ClientCAFile != "")
	if o.Ready != nil {
		go waitStarted(gctx, srv, func() { o.Ready(addrs) })
	}
	return g.Wait()
}

// waitStarted calls ready once the webhook server accepts TLS connections.
func waitStarted(ctx context.Context, srv ctrlwebhook.Server, ready func()) {
	check := srv.StartedChecker()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if check(nil) == nil {
			ready()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// serveHTTP serves plain HTTP on ln until ctx ends (health probes and metrics; never anything secret).
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler) error {
	s := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(shutdownCtx)
	}()
	if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
