package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
)

// Client authentication, as Gatekeeper offers it (--client-ca-name, --client-cn-name): with a client CA configured,
// the TLS handshake asks the caller for a certificate, and only one that the CA signed for client authentication,
// with the expected common name, gets a request served. The API server presents one when its admission
// configuration names a kubeconfig for the webhook's Service (WebhookAdmissionConfiguration.kubeConfigFile). Pods
// that can reach the port then cannot complete a handshake at all, and whatever they still do costs them a refused
// handshake.

// clientCAPoll is how often the client CA file is read again for changes (a mounted ConfigMap is replaced, never
// written in place, so a poll sees every version).
const clientCAPoll = 10 * time.Second

// clientAuth verifies callers' certificates against a CA bundle that is reloaded when its file changes.
type clientAuth struct {
	file, cn string
	log      logr.Logger
	pool     atomic.Pointer[x509.CertPool]
	last     []byte
}

// newClientAuth loads the CA bundle at file; cn, when set, is the common name a caller's certificate must carry.
func newClientAuth(file, cn string, log logr.Logger) (*clientAuth, error) {
	a := &clientAuth{file: file, cn: cn, log: log}
	if err := a.load(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *clientAuth) load() error {
	data, err := os.ReadFile(a.file)
	if err != nil {
		return fmt.Errorf("client CA: %w", err)
	}
	if bytes.Equal(data, a.last) {
		return nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return fmt.Errorf("client CA %s holds no PEM certificate", a.file)
	}
	a.pool.Store(pool)
	a.last = data
	return nil
}

// watch reloads the bundle until ctx ends; a file that no longer loads keeps the last good bundle in force.
func (a *clientAuth) watch(ctx context.Context) {
	t := time.NewTicker(clientCAPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.load(); err != nil {
				a.log.Error(err, "client CA not reloaded; the previous one stays in force")
			}
		}
	}
}

// configure makes cfg ask every caller for a certificate and verify it here (tls.RequireAnyClientCert: the bundle is
// read per handshake, so a reloaded one applies to the next connection).
func (a *clientAuth) configure(cfg *tls.Config) {
	cfg.ClientAuth = tls.RequireAnyClientCert
	cfg.VerifyConnection = a.verify
}

// verify accepts a caller whose leaf certificate chains to the bundle for client authentication and carries the
// expected common name.
func (a *clientAuth) verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("client certificate required")
	}
	opts := x509.VerifyOptions{Roots: a.pool.Load(), Intermediates: x509.NewCertPool(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(opts); err != nil {
		return fmt.Errorf("client certificate: %w", err)
	}
	if a.cn != "" && leaf.Subject.CommonName != a.cn {
		return fmt.Errorf("client certificate for %q, want %q", leaf.Subject.CommonName, a.cn)
	}
	return nil
}
