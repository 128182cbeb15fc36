package reliability

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/fluxidentity/flux-identity-webhook/cmd/flux-identity-webhook/app"
	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
)

const hostileLimit = 64 << 10

// TestHostileInputAgainstARunningServer sends broken and oversized requests to a running server over TLS. Each gets
// its real HTTP status and an AdmissionReview saying why; the server keeps answering valid reviews afterwards; and no
// log line, at full verbosity, holds an object body or an annotation value.
func TestHostileInputAgainstARunningServer(t *testing.T) {
	m := newMounts(t, 2, policyVersion(7)+hostileMandate)
	srv := startServer(t, m.policyFile(), m.certs.dir, func(o *app.ServeOptions) {
		o.MaxRequestBytes = hostileLimit
	})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: m.ca.pool, MinVersion: tls.VersionTLS12}}}
	logMark := logs.len()
	valid := string(serviceAccountReview("hostile-valid"))

	tests := map[string]struct {
		method, contentType, body string
		path                      string // the ServiceAccount webhook when empty
		wantStatus                int
		wantMessage               string
		wantRefused               bool
	}{
		"malformed JSON gets 400": {
			method: http.MethodPost, contentType: "application/json", body: valid[:len(valid)/2],
			wantStatus: http.StatusBadRequest, wantMessage: "decode AdmissionReview",
		},
		"JSON of the wrong shape gets 400": {
			method: http.MethodPost, contentType: "application/json", body: `{"request":[1,2,3]}`,
			wantStatus: http.StatusBadRequest, wantMessage: "decode AdmissionReview",
		},
		"an admission.k8s.io/v1beta1 review gets 400": {
			method: http.MethodPost, contentType: "application/json",
			body:       strings.Replace(valid, "admission.k8s.io/v1", "admission.k8s.io/v1beta1", 1),
			wantStatus: http.StatusBadRequest, wantMessage: "expected admission.k8s.io/v1",
		},
		"a review without a uid gets 400": {
			method: http.MethodPost, contentType: "application/json",
			body:       strings.Replace(valid, `"uid":"hostile-valid"`, `"uid":""`, 1),
			wantStatus: http.StatusBadRequest, wantMessage: "no request uid",
		},
		"a body over the cap gets 413": {
			method: http.MethodPost, contentType: "application/json",
			body:       strings.Replace(valid, "team-a", strings.Repeat("x", hostileLimit), 1),
			wantStatus: http.StatusRequestEntityTooLarge, wantMessage: "byte limit",
		},
		"a YAML body gets 415": {
			method: http.MethodPost, contentType: "application/yaml", body: valid,
			wantStatus: http.StatusUnsupportedMediaType, wantMessage: "expected application/json",
		},
		"a GET gets 405": {
			method: http.MethodGet, contentType: "application/json", wantStatus: http.StatusMethodNotAllowed,
			wantMessage: "POST",
		},
		"an object that is not a ServiceAccount is an error result, not a crash": {
			method: http.MethodPost, contentType: "application/json",
			body: strings.Replace(valid, `"labels":{"app":"flux"},"name":"flux-source"`,
				`"labels":{"app":"flux"},"name":["x"]`, 1),
			wantStatus: http.StatusOK, wantMessage: "cannot unmarshal", wantRefused: true,
		},
		"a GitRepository with a secretRef is denied, and logged without the Secret's name": {
			method: http.MethodPost, contentType: "application/json", path: routes.PathValidateFluxSources,
			body:       gitRepositoryReview("hostile-git", `{"name":"`+secretAnnotationValue+`"}`),
			wantStatus: http.StatusOK, wantMessage: "no-static-git-credentials", wantRefused: true,
		},
		"a GitRepository whose secretRef has the wrong type is an error result, logged without the value": {
			method: http.MethodPost, contentType: "application/json", path: routes.PathValidateFluxSources,
			body:       gitRepositoryReview("hostile-git-broken", `"`+secretAnnotationValue+`"`),
			wantStatus: http.StatusOK, wantMessage: "", wantRefused: true,
		},
		"a valid review is answered": {
			method: http.MethodPost, contentType: "application/json", body: valid, wantStatus: http.StatusOK,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := routes.PathMutateServiceAccount
			if tc.path != "" {
				path = tc.path
			}
			req, err := http.NewRequestWithContext(t.Context(), tc.method, srv.URL+path,
				strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", tc.contentType)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			defer func() { _ = resp.Body.Close() }()
			review := decodeAnswer(t, resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("HTTP %d, want %d: %+v", resp.StatusCode, tc.wantStatus, review.Response.Result)
			}
			if tc.wantMessage != "" && !strings.Contains(review.Response.Result.Message, tc.wantMessage) {
				t.Errorf("message %q does not say %q", review.Response.Result.Message, tc.wantMessage)
			}
			if (tc.wantStatus != http.StatusOK || tc.wantRefused) && review.Response.Allowed {
				t.Error("a refused request must not be allowed")
			}
		})
	}

	t.Run("a declared length over the cap gets 413 before a byte of the body is sent", func(t *testing.T) {
		conn := dialTLS(t, srv, m.ca)
		if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"+
			"Content-Length: %d\r\n\r\n", routes.PathMutateServiceAccount, int64(1)<<30); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer before the body (the server waited to read it): %v", err)
		}
		defer func() { _ = resp.Body.Close() }()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("HTTP %d, want 413", resp.StatusCode)
		}
	})

	t.Run("a chunked body over the cap gets 413 after at most the cap is read", func(t *testing.T) {
		conn := dialTLS(t, srv, m.ca)
		if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"+
			"Transfer-Encoding: chunked\r\n\r\n", routes.PathMutateServiceAccount); err != nil {
			t.Fatal(err)
		}
		const total = 256 << 20
		written := make(chan int64, 1)
		go func() {
			chunk := append(fmt.Appendf(nil, "%x\r\n", 32<<10), append(bytes.Repeat([]byte{' '}, 32<<10), '\r', '\n')...)
			var n int64
			for n < total {
				if _, err := conn.Write(chunk); err != nil {
					break
				}
				n += 32 << 10
			}
			written <- n
		}()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("read answer: %v", err)
		}
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("HTTP %d, want 413", resp.StatusCode)
		}
		_ = resp.Body.Close()
		_ = conn.Close()
		if n := <-written; n >= total {
			t.Errorf("the server let the client send all %d bytes", n)
		} else {
			t.Logf("RESULT chunked: the client could send %d KiB of a %d MiB body before the 413 (cap %d KiB)",
				n>>10, total>>20, hostileLimit>>10)
		}
	})

	t.Run("the server still answers and is healthy after the hostile requests", func(t *testing.T) {
		resp, err := http.Get(srv.HealthURL + "/healthz")
		if err != nil {
			t.Fatalf("healthz: %v", err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz HTTP %d", resp.StatusCode)
		}
		res := runLoad(timeBox(t, 300*time.Millisecond), srv.URL, m.ca.pool, loadOptions{clients: 2})
		if res.failures.Load() != 0 || res.requests.Load() == 0 {
			t.Fatalf("load after hostile input: %s", res)
		}
	})

	t.Run("no log line holds an object body or an annotation value", func(t *testing.T) {
		// A rejected reload inside the window shows that the capture is live: it must appear, the secrets must not.
		if err := m.policies.update(map[string][]byte{"policy.yaml": []byte(invalidPolicyVersion(8))}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "rejected reload logged", func() (bool, error) {
			for _, l := range logs.since(logMark) {
				if strings.Contains(l, "policy reload rejected") {
					return true, nil
				}
			}
			return false, nil
		})
		lines := logs.since(logMark)
		decisionLogged := false
		for _, l := range lines {
			if strings.Contains(l, "Flux source decision") && strings.Contains(l, "hostile-git") {
				decisionLogged = true
			}
			for _, leak := range []string{secretAnnotationValue, "team.example.com/owner", `"kind":"ServiceAccount"`,
				`\"metadata\"`, strings.Repeat("x", 64)} {
				if strings.Contains(l, leak) {
					t.Errorf("log line holds %q: %.300s", leak, l)
				}
			}
		}
		if !decisionLogged {
			t.Error("the denied GitRepository's decision was not logged: the check would prove nothing")
		}
		t.Logf("RESULT logs: %d lines at verbosity 10 during hostile input and load, none with a body or value",
			len(lines))
	})
}

// hostileMandate makes GitRepositories in team-a need identity, so a secretRef is denied and its decision logged.
const hostileMandate = `mandates:
  - name: no-static-git-credentials
    namespaces: [team-a]
`

// gitRepositoryReview is a GitRepository CREATE in team-a with the given JSON as spec.secretRef, and the secret value
// in an annotation too.
func gitRepositoryReview(name, secretRef string) string {
	return `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"` + name + `",` +
		`"kind":{"group":"source.toolkit.fluxcd.io","version":"v1","kind":"GitRepository"},` +
		`"resource":{"group":"source.toolkit.fluxcd.io","version":"v1","resource":"gitrepositories"},` +
		`"namespace":"team-a","name":"` + name + `","operation":"CREATE","userInfo":{"username":"tenant"},` +
		`"object":{"apiVersion":"source.toolkit.fluxcd.io/v1","kind":"GitRepository","metadata":{"name":"` + name +
		`","namespace":"team-a","annotations":{"team.example.com/owner":"` + secretAnnotationValue + `"}},` +
		`"spec":{"url":"https://example.invalid/r.git","interval":"1m","secretRef":` + secretRef + `}}}}`
}

func decodeAnswer(t *testing.T, body io.Reader) admissionv1.AdmissionReview {
	t.Helper()
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(body).Decode(&review); err != nil {
		t.Fatalf("the answer is not an AdmissionReview: %v", err)
	}
	if review.Response == nil || review.Response.Result == nil && !review.Response.Allowed {
		t.Fatalf("the answer has no response or no reason: %+v", review.Response)
	}
	return review
}

func dialTLS(t *testing.T, srv *server, a *ca) *tls.Conn {
	t.Helper()
	d := &tls.Dialer{Config: &tls.Config{RootCAs: a.pool, MinVersion: tls.VersionTLS12}}
	conn, err := d.DialContext(t.Context(), "tcp", srv.URL[len("https://"):])
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return conn.(*tls.Conn)
}

func timeBox(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
