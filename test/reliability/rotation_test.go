package reliability

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"
)

// servedSerial opens a new TLS connection trusting only the CA and returns the serial of the certificate served.
func servedSerial(ctx context.Context, addr string, a *ca) (int64, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second},
		Config: &tls.Config{RootCAs: a.pool, MinVersion: tls.VersionTLS12}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, fmt.Errorf("TLS handshake: %w", err)
	}
	defer func() { _ = conn.Close() }()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
}

// TestCertificateRotationUnderLoad rotates the serving certificate 50 times the way a Secret volume changes (new
// tls.crt and tls.key behind one ..data symlink swap, each a new leaf from the same CA) while clients keep posting
// reviews, half of them over a new TLS connection per request. No request and no handshake fails, and each new
// certificate is served within seconds of the swap.
func TestCertificateRotationUnderLoad(t *testing.T) {
	rotations, clients := 50, 4
	if *soak {
		rotations, clients = 500, 16
	}
	m := newMounts(t, 100, policyVersion(0))
	srv := startServer(t, m.policyFile(), m.certs.dir, nil)
	addr := srv.URL[len("https://"):]
	ctx := t.Context()

	loadCtx, stopLoad := context.WithTimeout(ctx, 10*time.Minute)
	defer stopLoad()
	loaded := make(chan *loadResult, 1)
	go func() {
		loaded <- runLoad(loadCtx, srv.URL, m.ca.pool, loadOptions{clients: clients, newConnections: true})
	}()

	var latencies []time.Duration
	for r := 1; r <= rotations; r++ {
		serial := int64(100 + r)
		crt, key := m.ca.leaf(t, serial)
		if err := m.certs.update(map[string][]byte{"tls.crt": crt, "tls.key": key}); err != nil {
			t.Fatal(err)
		}
		latencies = append(latencies, waitFor(t, 15*time.Second, fmt.Sprintf("rotation %d served", r),
			func() (bool, error) {
				got, err := servedSerial(ctx, addr, m.ca)
				return got == serial, err
			}))
	}
	stopLoad()
	res := <-loaded

	if res.failures.Load() != 0 || res.handshakeFailures.Load() != 0 {
		t.Errorf("load: %s", res)
	}
	if res.requests.Load() < int64(rotations) {
		t.Errorf("only %d requests during %d rotations: the load did not overlap them", res.requests.Load(), rotations)
	}
	slices.Sort(latencies)
	if worst := latencies[len(latencies)-1]; worst > 5*time.Second {
		t.Errorf("a new certificate took %s to be served, want a few seconds at most", worst)
	}
	t.Logf("RESULT rotation: %d rotations, %d requests (half on a new TLS connection each), %d failed, %d TLS "+
		"handshake failures; swap to served: median %s, max %s", rotations, res.requests.Load(), res.failures.Load(),
		res.handshakeFailures.Load(), latencies[len(latencies)/2].Round(time.Millisecond),
		latencies[len(latencies)-1].Round(time.Millisecond))
}
