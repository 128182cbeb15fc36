package reliability

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/internal/testpki"
)

// TestClientAuthentication runs the binary with --client-ca-file, with callers on TLS 1.2 and on TLS 1.3 (and the
// server's minimum at 1.3): it reports ready (its own check has no certificate to offer), serves a caller presenting the API server's certificate from that CA, and
// refuses one with no certificate, one from another CA and one from the CA with another common name, each in the TLS
// handshake or on its first read (TLS 1.3 refuses a client certificate after the client's handshake is done).
func TestClientAuthentication(t *testing.T) {
	bin := serverBinary(t)
	for _, version := range []string{"1.2", "1.3"} {
		t.Run("TLS "+version, func(t *testing.T) {
			m := newMounts(t, 2, fairnessPolicy)
			clientCA, otherCA := newCA(t), newCA(t)
			caFile := filepath.Join(t.TempDir(), "client-ca.crt")
			if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: clientCA.cert.Raw}),
				0o600); err != nil {
				t.Fatal(err)
			}
			port, health := freePort(t), freePort(t)
			url := "https://127.0.0.1:" + strconv.Itoa(port)
			runBinary(t, bin, "serve", "--policy", m.policyFile(), "--cert-dir", m.certs.dir,
				"--host", "127.0.0.1", "--port", strconv.Itoa(port), "--metrics-bind-address", "0",
				"--health-probe-bind-address", "127.0.0.1:"+strconv.Itoa(health), "--tls-min-version", version,
				"--client-ca-file", caFile)
			waitFor(t, 30*time.Second, "server ready with client authentication", func() (bool, error) {
				return readyStatus(fmt.Sprintf("http://127.0.0.1:%d/readyz", health)) == 200, nil
			})
			tests := map[string]struct {
				cert   *tls.Certificate
				served bool
			}{
				"the API server's certificate is served":          {cert: clientCA.client(t, "kube-apiserver"), served: true},
				"a caller without a certificate is refused":       {},
				"a certificate from another CA is refused":        {cert: otherCA.client(t, "kube-apiserver")},
				"another common name from the CA is refused":      {cert: clientCA.client(t, "system:node:worker")},
				"a serving certificate of the CA is not a client": {cert: clientCA.serving(t)},
			}
			for name, tc := range tests {
				t.Run(name, func(t *testing.T) {
					cfg := &tls.Config{RootCAs: m.ca.pool, MinVersion: tls.VersionTLS12}
					if version == "1.2" {
						cfg.MaxVersion = tls.VersionTLS12
					}
					if tc.cert != nil {
						cfg.Certificates = []tls.Certificate{*tc.cert}
					}
					client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
					status, _, err := postReview(t.Context(), client, url, routes.PathMutateServiceAccount,
						serviceAccountReview("client-auth"))
					switch {
					case tc.served && (err != nil || status != http.StatusOK):
						t.Fatalf("not served: HTTP %d, %v", status, err)
					case !tc.served && err == nil:
						t.Fatalf("served: HTTP %d", status)
					case !tc.served:
						t.Logf("refused: %v", err)
					}
				})
			}
		})
	}
}

// client issues a client certificate for cn.
func (c *ca) client(t *testing.T, cn string) *tls.Certificate {
	return c.issue(t, cn, x509.ExtKeyUsageClientAuth)
}

// serving issues a serving certificate, which is no client certificate.
func (c *ca) serving(t *testing.T) *tls.Certificate {
	return c.issue(t, "kube-apiserver", x509.ExtKeyUsageServerAuth)
}

func (c *ca) issue(t *testing.T, cn string, usage x509.ExtKeyUsage) *tls.Certificate {
	t.Helper()
	cert, err := (&testpki.CA{Cert: c.cert, Key: c.key}).IssueTLS(cn, usage)
	if err != nil {
		t.Fatal(err)
	}
	return &cert
}
