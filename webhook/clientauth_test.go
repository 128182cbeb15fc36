package webhook

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr"

	"github.com/fluxidentity/flux-identity-webhook/internal/testpki"
)

func newTestCA(t *testing.T) *testpki.CA {
	t.Helper()
	ca, err := testpki.NewCA("client CA")
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issue(t *testing.T, ca *testpki.CA, cn string, usage x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	cert, err := ca.IssueTLS(cn, usage)
	if err != nil {
		t.Fatal(err)
	}
	return cert.Leaf
}

func TestClientAuthVerify(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	file := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(file, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	auth, err := newClientAuth(file, "kube-apiserver", logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		certs []*x509.Certificate
		ok    bool
	}{
		"the API server's certificate from the CA is accepted": {
			certs: []*x509.Certificate{issue(t, ca, "kube-apiserver", x509.ExtKeyUsageClientAuth)}, ok: true},
		"no certificate is refused": {},
		"a certificate from another CA is refused": {
			certs: []*x509.Certificate{issue(t, other, "kube-apiserver", x509.ExtKeyUsageClientAuth)}},
		"another common name from the CA is refused": {
			certs: []*x509.Certificate{issue(t, ca, "system:node:worker-1", x509.ExtKeyUsageClientAuth)}},
		"a serving certificate from the CA is refused": {
			certs: []*x509.Certificate{issue(t, ca, "kube-apiserver", x509.ExtKeyUsageServerAuth)}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := auth.verify(tls.ConnectionState{PeerCertificates: tc.certs})
			if (err == nil) != tc.ok {
				t.Fatalf("verify: %v, want accepted %v", err, tc.ok)
			}
		})
	}

	t.Run("a new CA file replaces the old one on reload, and a broken one keeps it", func(t *testing.T) {
		apiServer := issue(t, other, "kube-apiserver", x509.ExtKeyUsageClientAuth)
		if err := os.WriteFile(file, other.PEM(), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := auth.load(); err != nil {
			t.Fatal(err)
		}
		if err := auth.verify(tls.ConnectionState{PeerCertificates: []*x509.Certificate{apiServer}}); err != nil {
			t.Fatalf("a certificate of the new CA: %v", err)
		}
		if err := os.WriteFile(file, []byte("not a certificate"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := auth.load(); err == nil {
			t.Fatal("a file without a certificate loaded")
		}
		if err := auth.verify(tls.ConnectionState{PeerCertificates: []*x509.Certificate{apiServer}}); err != nil {
			t.Fatalf("the last good CA was dropped: %v", err)
		}
	})
}
