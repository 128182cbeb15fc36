package webhook

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

// testCA signs certificates for the client authentication tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key}
}

func (c *testCA) pem() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw})
}

func (c *testCA) issue(t *testing.T, cn string, usage x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

func TestClientAuthVerify(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	file := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(file, ca.pem(), 0o600); err != nil {
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
			certs: []*x509.Certificate{ca.issue(t, "kube-apiserver", x509.ExtKeyUsageClientAuth)}, ok: true},
		"no certificate is refused": {},
		"a certificate from another CA is refused": {
			certs: []*x509.Certificate{other.issue(t, "kube-apiserver", x509.ExtKeyUsageClientAuth)}},
		"another common name from the CA is refused": {
			certs: []*x509.Certificate{ca.issue(t, "system:node:worker-1", x509.ExtKeyUsageClientAuth)}},
		"a serving certificate from the CA is refused": {
			certs: []*x509.Certificate{ca.issue(t, "kube-apiserver", x509.ExtKeyUsageServerAuth)}},
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
		apiServer := other.issue(t, "kube-apiserver", x509.ExtKeyUsageClientAuth)
		if err := os.WriteFile(file, other.pem(), 0o600); err != nil {
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
