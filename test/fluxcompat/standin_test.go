package fluxcompat

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// cloudEndpoints stand in for the clouds' token endpoints on one local TLS listener, under their real host names: a
// test CA signs a certificate for those hosts, and transport dials every host to the listener and trusts only that CA.
// The libraries under test therefore use the endpoints they would use in production, unchanged, and the test sees
// each request they make.
type cloudEndpoints struct {
	srv  *httptest.Server
	pool *x509.CertPool

	mu       sync.Mutex
	requests []recordedRequest
}

// recordedRequest is one request a library made.
type recordedRequest struct {
	Host, Method, Path, Authorization string
	Form                              url.Values
	Body                              []byte
}

// newCloudEndpoints serves handler for hosts; the handler gets each request after it is recorded.
func newCloudEndpoints(t *testing.T, hosts []string, handler func(w http.ResponseWriter, r *recordedRequest)) *cloudEndpoints {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTemplate := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cloud stand-in CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2),
		Subject: pkix.Name{CommonName: hosts[0]}, DNSNames: hosts, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	e := &cloudEndpoints{pool: x509.NewCertPool()}
	e.pool.AddCert(ca)
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := recordedRequest{Host: r.Host, Method: r.Method, Path: r.URL.Path,
			Authorization: r.Header.Get("Authorization"), Body: body}
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			rec.Form, _ = url.ParseQuery(string(body))
		}
		e.mu.Lock()
		e.requests = append(e.requests, rec)
		e.mu.Unlock()
		handler(w, &rec)
	}))
	e.srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}}
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	return e
}

// transport reaches every host at the stand-in and trusts only its CA.
func (e *cloudEndpoints) transport() *http.Transport {
	addr := e.srv.Listener.Addr().String()
	return &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: e.pool, MinVersion: tls.VersionTLS12},
	}
}

// recorded returns the requests made to host with method and a path that starts with prefix.
func (e *cloudEndpoints) recorded(host, method, prefix string) []recordedRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []recordedRequest
	for _, r := range e.requests {
		if strings.EqualFold(strings.Split(r.Host, ":")[0], host) && r.Method == method && strings.HasPrefix(r.Path, prefix) {
			out = append(out, r)
		}
	}
	return out
}

func (e *cloudEndpoints) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, r := range e.requests {
		out = append(out, r.Method+" "+r.Host+r.Path)
	}
	return out
}

// jwtClaims reads the audience and subject of a JWT without verifying it (the API server signed it; the stand-ins
// only read what the library sent).
func jwtClaims(t *testing.T, token string) (audience []string, subject string) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	var claims struct {
		Aud json.RawMessage `json:"aud"`
		Sub string          `json:"sub"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(claims.Aud, &audience); err != nil {
		var one string
		if err := json.Unmarshal(claims.Aud, &one); err != nil {
			t.Fatalf("JWT aud %s", claims.Aud)
		}
		audience = []string{one}
	}
	return audience, claims.Sub
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
