package webhook

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/webhook/internal/admissiontest"
)

func TestBodyDeadline(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		arrived int
		window  time.Duration
		want    time.Duration
	}{
		"nothing arrived yet: the grace":                       {0, 10 * time.Second, bodyGrace},
		"five bytes earn next to nothing":                      {5, 10 * time.Second, bodyGrace + 5*time.Second/minBodyRate},
		"each minBodyRate bytes earn a second":                 {2 * minBodyRate, 10 * time.Second, bodyGrace + 2*time.Second},
		"never past the read window":                           {100 * minBodyRate, 10 * time.Second, 10 * time.Second},
		"a read window shorter than the grace is the deadline": {0, time.Second, time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := bodyDeadline(start, tc.arrived, tc.window).Sub(start); got != tc.want {
				t.Errorf("deadline after %s, want %s", got, tc.want)
			}
		})
	}
}

// TestTrickledBodiesDoNotStarveOtherClients: two hundred requests from one pod that declare 256 KiB bodies and send a
// byte each hold what their buffers hold, not what they declared, and at most the pod's share of the pool, so the API
// server's review is answered at once beside them. Before bodies were charged on arrival, eleven such requests held
// the whole small-body pool.
func TestTrickledBodiesDoNotStarveOtherClients(t *testing.T) {
	srv := NewServer(Options{Policy: Fixed{Policy: admissiontest.FixturePolicy(t)}})
	h := srv.Handler(routes.PathMutateServiceAccount)
	var wg sync.WaitGroup
	held := make(chan struct{})
	defer func() {
		close(held)
		wg.Wait()
	}()
	for range 200 {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, routes.PathMutateServiceAccount,
			io.MultiReader(strings.NewReader("{"), heldOpen(held)))
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = smallBodyBytes
		req.RemoteAddr = "10.244.1.7:40000"
		wg.Go(func() { h.ServeHTTP(httptest.NewRecorder(), req) })
	}
	waitUntil(t, func() bool { // the pod holds as much as it may, and the rest of its requests wait
		srv.small.mu.Lock()
		defer srv.small.mu.Unlock()
		return srv.small.waiting > 0
	})
	body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"api","namespace":` +
		`"flux-system","operation":"CREATE","object":{"apiVersion":"v1","kind":"ServiceAccount","metadata":` +
		`{"name":"source-controller","namespace":"flux-system"}}}}`
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, routes.PathMutateServiceAccount,
		strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = "10.0.0.1:50000"
	rec := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || time.Since(start) > budgetWait/2 {
		t.Fatalf("the API server's review: HTTP %d after %s: %s", rec.Code, time.Since(start), rec.Body)
	}
}

// TestASlowBodyIsCut: a body trickled a byte a second is answered 408 once its grace is over, and the connection is
// free again (the read deadline moves only with what arrives).
func TestASlowBodyIsCut(t *testing.T) {
	srv := NewServer(Options{Policy: Fixed{Policy: admissiontest.FixturePolicy(t)}})
	ts := httptest.NewServer(srv.Handler(routes.PathMutateServiceAccount))
	defer ts.Close()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	start := time.Now()
	if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\n\r\n{", routes.PathMutateServiceAccount, smallBodyBytes); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(bodyGrace + 5*time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to the slow body: %v", err)
	}
	_ = resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusRequestTimeout || took < bodyGrace || took > bodyGrace+2*time.Second {
		t.Fatalf("HTTP %d after %s, want 408 after the %s grace", resp.StatusCode, took, bodyGrace)
	}
}

// heldOpen is a body that never sends more: a read blocks until held is closed.
type heldOpen chan struct{}

func (h heldOpen) Read([]byte) (int, error) {
	<-h
	return 0, io.ErrUnexpectedEOF
}
