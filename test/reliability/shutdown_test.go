package reliability

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/test/harness"
)

// buildBinary compiles the real binary into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "flux-identity-webhook")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./cmd/flux-identity-webhook")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestGracefulShutdownOfTheBinary runs the real binary, starts a request whose body arrives slowly, and sends SIGTERM
// in the middle of it. Readiness turns 503 first while new TLS connections are still accepted; the listener closes
// only after --shutdown-delay; the in-flight request completes with 200; the process exits 0 within the delay plus
// the grace period.
func TestGracefulShutdownOfTheBinary(t *testing.T) {
	const delay = 2 * time.Second
	const grace = 10 * time.Second
	bin := buildBinary(t)
	m := newMounts(t, 2, policyVersion(3))
	port, health := freePort(t), freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	healthURL := fmt.Sprintf("http://127.0.0.1:%d/readyz", health)

	var stderr bytes.Buffer
	cmd := exec.Command(bin, "serve", "--policy", m.policyFile(), "--cert-dir", m.certs.dir,
		"--host", "127.0.0.1", "--port", strconv.Itoa(port), "--metrics-bind-address", "0",
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", health), "--shutdown-delay", delay.String())
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited //nolint:errcheck // a killed server's exit status says nothing
		}
		if t.Failed() {
			t.Logf("server output:\n%s", stderr.String())
		}
	})

	waitFor(t, 30*time.Second, "server ready", func() (bool, error) { return readyStatus(healthURL) == 200, nil })

	// The slow request: headers and half of the body now, the rest after the listener has closed.
	body := serviceAccountReview("in-flight")
	conn := dialTLS(t, &server{URL: "https://" + addr}, m.ca)
	if err := conn.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		routes.PathMutateServiceAccount, addr, len(body)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(body[:len(body)/2]); err != nil {
		t.Fatalf("send the first half: %v", err)
	}

	sigterm := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	notReady := waitFor(t, delay, "readiness false after SIGTERM", func() (bool, error) {
		return readyStatus(healthURL) == http.StatusServiceUnavailable, nil
	})
	if err := acceptsTLS(t.Context(), addr, m.ca); err != nil {
		t.Fatalf("the listener refused a connection while readiness was just turning false: %v", err)
	}
	waitFor(t, delay+grace, "listener closed", func() (bool, error) {
		return acceptsTLS(t.Context(), addr, m.ca) != nil, nil
	})
	closed := time.Since(sigterm)
	if closed < delay-100*time.Millisecond {
		t.Errorf("the listener closed %s after SIGTERM, before the %s shutdown delay", closed, delay)
	}

	if _, err := conn.Write(body[len(body)/2:]); err != nil {
		t.Fatalf("send the second half of the in-flight request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the in-flight request got no answer: %v", err)
	}
	review := decodeAnswer(t, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || review.Response.UID != "in-flight" || !review.Response.Allowed {
		t.Fatalf("in-flight request: HTTP %d, %+v", resp.StatusCode, review.Response)
	}

	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("want exit 0: %v", err)
		}
	case <-time.After(delay + grace - time.Since(sigterm)):
		t.Fatalf("still running %s after SIGTERM", delay+grace)
	}
	t.Logf("RESULT shutdown: readiness 503 after %s, listener closed after %s (delay %s), in-flight request 200, "+
		"exit 0 after %s", notReady.Round(time.Millisecond), closed.Round(time.Millisecond), delay,
		time.Since(sigterm).Round(time.Millisecond))
}

// readyStatus is the /readyz status code, 0 when the endpoint does not answer.
func readyStatus(url string) int {
	client := &http.Client{Timeout: time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// acceptsTLS completes a TLS handshake with addr, nil when the listener accepts.
func acceptsTLS(ctx context.Context, addr string, a *ca) error {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: time.Second},
		Config: &tls.Config{RootCAs: a.pool, MinVersion: tls.VersionTLS12}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return conn.Close()
}
