// Package reliability proves the server's claims under faults, hostile input and hot changes: policy reload and
// certificate rotation under load, graceful shutdown of the real binary, hostile HTTP input against a running server,
// and the failure behaviour of the installed webhook configurations on a real API server.
//
// The short forms run in `make test`; `make soak` runs the long forms (go test ./test/reliability/ -soak).
package reliability

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	admissionv1 "k8s.io/api/admission/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/fluxidentity/flux-identity-webhook/cmd/flux-identity-webhook/app"
	"github.com/fluxidentity/flux-identity-webhook/test/harness"
)

var soak = flag.Bool("soak", false, "run the long forms (more swaps, rotations and load)")

// logs captures everything every logger in the process writes, controller-runtime's included, at full verbosity,
// so tests can assert what never reaches a log.
var logs = &logBuffer{}

func TestMain(m *testing.M) {
	flag.Parse()
	ctrl.SetLogger(funcr.New(func(prefix, args string) { logs.add(prefix + " " + args) },
		funcr.Options{Verbosity: 10}))
	os.Exit(m.Run())
}

type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (b *logBuffer) add(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, line)
}

// since returns the lines written after mark (a value from len).
func (b *logBuffer) since(mark int) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.lines[mark:]...)
}

func (b *logBuffer) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.lines)
}

// ca is a test certificate authority that issues loopback serving certificates.
type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T) *ca {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate CA key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "reliability test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse CA certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &ca{cert: cert, key: key, pool: pool}
}

// leaf issues a serving certificate for 127.0.0.1 with the given serial, PEM-encoded.
func (c *ca) leaf(t *testing.T, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate serving key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "flux-identity-webhook"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatalf("create serving certificate: %v", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatalf("marshal serving key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// projectedDir is a directory laid out the way the kubelet mounts a ConfigMap or Secret: every file is a symlink
// through ..data to a timestamped directory, and an update writes a new directory and renames a new ..data symlink
// over the old one, so readers see either every old file or every new file.
type projectedDir struct {
	dir  string
	gen  int
	last string
}

func newProjectedDir(t *testing.T, files map[string][]byte) *projectedDir {
	t.Helper()
	d := &projectedDir{dir: t.TempDir()}
	if err := d.update(files); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(d.dir, name)); err != nil {
			t.Fatalf("link %s: %v", name, err)
		}
	}
	return d
}

// update swaps in a new version of every file atomically and removes the old version, as the kubelet does.
func (d *projectedDir) update(files map[string][]byte) error {
	d.gen++
	gen := fmt.Sprintf("..%d", d.gen)
	if err := os.Mkdir(filepath.Join(d.dir, gen), 0o700); err != nil {
		return fmt.Errorf("create version directory: %w", err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(d.dir, gen, name), data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	tmp := filepath.Join(d.dir, "..data_tmp")
	if err := os.Symlink(gen, tmp); err != nil {
		return fmt.Errorf("link new version: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(d.dir, "..data")); err != nil {
		return fmt.Errorf("swap ..data: %w", err)
	}
	if d.last != "" {
		if err := os.RemoveAll(filepath.Join(d.dir, d.last)); err != nil {
			return fmt.Errorf("remove old version: %w", err)
		}
	}
	d.last = gen
	return nil
}

func (d *projectedDir) path(name string) string { return filepath.Join(d.dir, name) }

// mounts are what the server's pod would have mounted: a serving certificate from a CA the clients trust (a Secret
// volume) and a policy file (a ConfigMap volume).
type mounts struct {
	ca       *ca
	certs    *projectedDir
	policies *projectedDir
}

// newMounts issues a serving certificate with serial and writes policy, both in the kubelet's layout.
func newMounts(t *testing.T, serial int64, policy string) *mounts {
	t.Helper()
	authority := newCA(t)
	crt, key := authority.leaf(t, serial)
	return &mounts{
		ca:       authority,
		certs:    newProjectedDir(t, map[string][]byte{"tls.crt": crt, "tls.key": key}),
		policies: newProjectedDir(t, map[string][]byte{"policy.yaml": []byte(policy)}),
	}
}

func (m *mounts) policyFile() string { return m.policies.path("policy.yaml") }

// freePort asks the kernel for a free loopback port (the webhook server takes a fixed port).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port
}

// server is RunServe running in-process on loopback.
type server struct {
	URL        string // https://127.0.0.1:port
	MetricsURL string
	HealthURL  string
	stop       context.CancelFunc
	done       chan error
}

func startServer(t *testing.T, policyFile, certDir string, tune func(*app.ServeOptions)) *server {
	t.Helper()
	o := app.DefaultServeOptions()
	o.PolicyFile = policyFile
	o.CertDir = certDir
	o.Host = "127.0.0.1"
	o.Port = freePort(t)
	o.MetricsBindAddress = "127.0.0.1:0"
	o.HealthProbeBindAddress = "127.0.0.1:0"
	if tune != nil {
		tune(&o)
	}
	ready := make(chan app.ServeAddresses, 1)
	o.Ready = func(a app.ServeAddresses) { ready <- a }
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	s := &server{URL: fmt.Sprintf("https://127.0.0.1:%d", o.Port), stop: cancel, done: make(chan error, 1)}
	go func() { s.done <- app.RunServe(ctx, o, ctrl.Log.WithName("serve")) }()
	t.Cleanup(func() {
		cancel()
		if err := <-s.done; err != nil {
			t.Errorf("server returned an error: %v", err)
		}
	})
	select {
	case a := <-ready:
		s.MetricsURL = "http://" + a.Metrics + "/metrics"
		s.HealthURL = "http://" + a.Health
	case err := <-s.done:
		s.done <- err
		t.Fatalf("server exited before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server was not ready within 30s")
	}
	return s
}

func (s *server) metrics(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.MetricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

func (s *server) metric(ctx context.Context, name string, labels map[string]string) (float64, error) {
	f, err := s.metrics(ctx)
	if err != nil {
		return 0, err
	}
	return harness.Value(f, name, labels), nil
}

// waitFor polls cond every 10ms until it holds or the deadline passes, and returns how long it took.
func waitFor(t *testing.T, within time.Duration, what string, cond func() (bool, error)) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("%s: %v", what, t.Context().Err())
		case <-tick.C:
		}
	}
}

// secretAnnotationValue is set on every object the load sends; no log line may ever contain it.
const secretAnnotationValue = "s3cr3t-value-that-must-never-be-logged"

// serviceAccountReview is a realistic AdmissionReview for a ServiceAccount CREATE in namespace team-a. The object
// carries unrelated annotations, so the server patches each identity key separately (several operations per answer).
func serviceAccountReview(uid string) []byte {
	review := map[string]any{
		"apiVersion": "admission.k8s.io/v1",
		"kind":       "AdmissionReview",
		"request": map[string]any{
			"uid":       uid,
			"kind":      map[string]string{"group": "", "version": "v1", "kind": "ServiceAccount"},
			"resource":  map[string]string{"group": "", "version": "v1", "resource": "serviceaccounts"},
			"namespace": "team-a",
			"name":      "flux-source",
			"operation": "CREATE",
			"userInfo":  map[string]any{"username": "system:serviceaccount:team-a:deployer"},
			"object": map[string]any{
				"apiVersion": "v1",
				"kind":       "ServiceAccount",
				"metadata": map[string]any{
					"name":      "flux-source",
					"namespace": "team-a",
					"annotations": map[string]string{
						"team.example.com/owner":      "team-a",
						"team.example.com/deploy-key": secretAnnotationValue,
					},
					"labels": map[string]string{"app": "flux"},
				},
			},
		},
	}
	body, err := json.Marshal(review)
	if err != nil {
		panic(err) // a static map always encodes
	}
	return body
}

// loadResult counts what the load saw.
type loadResult struct {
	requests, failures, handshakeFailures atomic.Int64
	mu                                    sync.Mutex
	errs                                  []string
}

func (r *loadResult) fail(handshake bool, format string, args ...any) {
	r.failures.Add(1)
	if handshake {
		r.handshakeFailures.Add(1)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) < 10 {
		r.errs = append(r.errs, fmt.Sprintf(format, args...))
	}
}

func (r *loadResult) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("%d requests, %d failed (%d TLS handshakes); first errors: %s", r.requests.Load(),
		r.failures.Load(), r.handshakeFailures.Load(), strings.Join(r.errs, " | "))
}

// loadOptions shape the load: clients HTTPS clients on loopback, half of them keeping connections alive and half
// opening a new connection (a new TLS handshake) for every request when newConnections is set.
type loadOptions struct {
	clients        int
	newConnections bool
	// check inspects each 200 answer for client c; an error counts as a failed request.
	check func(c int, resp *admissionv1.AdmissionResponse) error
}

// runLoad posts ServiceAccount reviews to url until ctx ends and waits for every client to stop.
func runLoad(ctx context.Context, url string, pool *x509.CertPool, o loadOptions) *loadResult {
	res := &loadResult{}
	var wg sync.WaitGroup
	for c := range o.clients {
		tr := &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 1,
			DisableKeepAlives:   o.newConnections && c%2 == 1,
		}
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		wg.Go(func() {
			defer tr.CloseIdleConnections()
			for n := 0; ctx.Err() == nil; n++ {
				uid := fmt.Sprintf("load-%d-%d", c, n)
				req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost,
					url+"/mutate-v1-serviceaccount", bytes.NewReader(serviceAccountReview(uid)))
				if err != nil {
					res.fail(false, "build request: %v", err)
					return
				}
				req.Header.Set("Content-Type", "application/json")
				res.requests.Add(1)
				resp, err := client.Do(req)
				if err != nil {
					res.fail(isHandshakeError(err), "client %d request %d: %v", c, n, err)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if err != nil {
					res.fail(false, "client %d request %d: read answer: %v", c, n, err)
					continue
				}
				if resp.StatusCode != http.StatusOK {
					res.fail(false, "client %d request %d: HTTP %d: %s", c, n, resp.StatusCode, body)
					continue
				}
				var review admissionv1.AdmissionReview
				if err := json.Unmarshal(body, &review); err != nil || review.Response == nil {
					res.fail(false, "client %d request %d: not an AdmissionReview: %v", c, n, err)
					continue
				}
				if string(review.Response.UID) != uid || !review.Response.Allowed {
					res.fail(false, "client %d request %d: uid %q allowed %v: %v", c, n, review.Response.UID,
						review.Response.Allowed, review.Response.Result)
					continue
				}
				if o.check != nil {
					if err := o.check(c, review.Response); err != nil {
						res.fail(false, "client %d request %d: %v", c, n, err)
					}
				}
			}
		})
	}
	wg.Wait()
	return res
}

func isHandshakeError(err error) bool {
	var (
		recErr  tls.RecordHeaderError
		certErr *tls.CertificateVerificationError
		alert   tls.AlertError
	)
	return errors.As(err, &recErr) || errors.As(err, &certErr) || errors.As(err, &alert) ||
		strings.Contains(err.Error(), "handshake") || strings.Contains(err.Error(), "tls:")
}

// jsonPatch is one operation of a JSON Patch answer.
type jsonPatch struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
}

// patchStrings decodes a patch into path → string value (operations with non-string values are kept raw).
func patchStrings(resp *admissionv1.AdmissionResponse) (map[string]string, error) {
	var ops []jsonPatch
	if err := json.Unmarshal(resp.Patch, &ops); err != nil {
		return nil, fmt.Errorf("decode patch: %w", err)
	}
	out := map[string]string{}
	for _, op := range ops {
		var s string
		if err := json.Unmarshal(op.Value, &s); err != nil {
			out[op.Path] = string(op.Value)
			continue
		}
		out[op.Path] = s
	}
	return out, nil
}
