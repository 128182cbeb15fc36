package reliability

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
)

// boundedPolicy maps team-a/flux-source to an AWS identity with full injection and mandates identity for every Flux
// source everywhere, so that a source in any namespace, however long its name, is a violation.
const boundedPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: bounded
identities:
  - name: tenant
    namespaces: [team-a]
    serviceAccounts: [flux-source]
    aws:
      roleARN: arn:aws:iam::111122223333:role/tenant
      region: eu-west-1
    injection: full
mandates:
  - name: everywhere
    namespaces: ["*"]
`

// maxGrowth is how much the server may grow above its idle footprint, whatever callers send.
const maxGrowth = 64 << 20

// TestHostileInputKeepsMemoryBounded runs the real binary and attacks it the ways a pod that can reach the webhook
// port could: violating sources whose namespace is a 1 MB string (which used to become a metric label and a log line
// each), 1,500 connections trickling a body declared at 7 MB (which used to stay open), and pods of 16,000 containers
// asking for full injection (which used to get a 10 MiB patch). Throughout, a client on a kept-alive connection, as
// the API server's, must get every answer, and the server's peak resident memory must stay within maxGrowth of its
// idle footprint. Nothing is timed: the bounds are on memory, sizes and answers.
func TestHostileInputKeepsMemoryBounded(t *testing.T) {
	bin := buildBinary(t)
	m := newMounts(t, 2, boundedPolicy)
	port, metricsPort, health := freePort(t), freePort(t), freePort(t)
	url := "https://127.0.0.1:" + strconv.Itoa(port)
	cmd, output := runBinary(t, bin, "serve", "--policy", m.policyFile(), "--cert-dir", m.certs.dir,
		"--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--metrics-bind-address", "127.0.0.1:"+strconv.Itoa(metricsPort),
		"--health-probe-bind-address", "127.0.0.1:"+strconv.Itoa(health))
	waitFor(t, 30*time.Second, "server ready", func() (bool, error) {
		return readyStatus(fmt.Sprintf("http://127.0.0.1:%d/readyz", health)) == 200, nil
	})

	tlsConfig := &tls.Config{RootCAs: m.ca.pool, MinVersion: tls.VersionTLS12}
	apiServer := &http.Client{Timeout: 10 * time.Second, // the longest webhook timeout this project configures
		Transport: &http.Transport{TLSClientConfig: tlsConfig, MaxIdleConnsPerHost: 4}}
	legit := func(uid string) error {
		resp, err := apiServer.Post(url+"/mutate-v1-serviceaccount", "application/json",
			bytes.NewReader(serviceAccountReview(uid)))
		if err != nil {
			return err
		}
		defer func() { _ = resp.Body.Close() }()
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(resp.Body).Decode(&review); err != nil || resp.StatusCode != 200 ||
			review.Response == nil || !review.Response.Allowed || len(review.Response.Patch) == 0 {
			return fmt.Errorf("status %d, decode %w, response %+v", resp.StatusCode, err, review.Response)
		}
		return nil
	}
	for i := range 200 { // warm up every path the attacks take, then take the idle footprint
		if err := legit(fmt.Sprintf("warm-%d", i)); err != nil {
			t.Fatalf("warm-up request: %v", err)
		}
	}
	idle := procStatusKiB(t, cmd.Process.Pid, "VmRSS")

	// While the attacks run, the cluster's own requests keep coming and must all be answered.
	ctx, stopLegit := context.WithCancel(t.Context())
	var legitWG sync.WaitGroup
	var legitCount, legitFailed atomic.Int64
	var legitErr atomic.Value
	legitWG.Add(1)
	go func() {
		defer legitWG.Done()
		for i := 0; ctx.Err() == nil; i++ {
			if err := legit(fmt.Sprintf("legit-%d", i)); err != nil && ctx.Err() == nil {
				legitFailed.Add(1)
				legitErr.Store(err.Error())
			}
			legitCount.Add(1)
		}
	}()

	t.Run("violating sources in 1 MB namespaces", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for i := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ns := strings.Repeat(string(rune('a'+i%26)), 1<<20-4) + fmt.Sprintf("%04d", i)
				body := strings.ReplaceAll(gitRepositoryReview("big-ns-"+strconv.Itoa(i), `{"name":"s"}`), "team-a", ns)
				resp, err := apiServer.Post(url+"/validate-flux-sources", "application/json", strings.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				defer func() { _ = resp.Body.Close() }()
				var review admissionv1.AdmissionReview
				if err := json.NewDecoder(resp.Body).Decode(&review); err != nil || review.Response == nil ||
					review.Response.Allowed {
					errs <- fmt.Errorf("status %d: want a denial, got %+v (%w)", resp.StatusCode, review.Response, err)
				}
			}()
			if i%8 == 7 {
				wg.Wait()
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		metrics, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
		if err != nil {
			t.Fatal(err)
		}
		size, _ := io.Copy(io.Discard, metrics.Body)
		_ = metrics.Body.Close()
		if size > 256<<10 {
			t.Errorf("/metrics is %d bytes after 100 namespaces of 1 MB: a namespace became a label", size)
		}
		longest := 0
		sc := bufio.NewScanner(strings.NewReader(output.String()))
		sc.Buffer(make([]byte, 64<<10), 8<<20)
		for sc.Scan() {
			longest = max(longest, len(sc.Text()))
		}
		if longest > 8<<10 {
			t.Errorf("a log line of %d bytes: a request-controlled string was logged whole", longest)
		}
	})

	t.Logf("peak after the namespaces: %d MiB", procStatusKiB(t, cmd.Process.Pid, "VmHWM")>>10)
	t.Run("1,500 connections trickling a 7 MB body", func(t *testing.T) {
		var conns []*tls.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		// From another address than the API server's client, as from a pod.
		dialer := &tls.Dialer{Config: tlsConfig, NetDialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: attackerIP}}}
		for i := range 1500 {
			dctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			c, err := dialer.DialContext(dctx, "tcp", url[len("https://"):])
			cancel()
			if err != nil {
				// Past the connection cap the attacker's connections are refused; one that cannot connect is fine.
				t.Logf("attacker %d could not connect: %v", i, err)
				break
			}
			conn := c.(*tls.Conn)
			conns = append(conns, conn)
			_, _ = fmt.Fprintf(conn, "POST /validate-flux-sources HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
				"Content-Length: %d\r\n\r\n%s", 7<<20-1024, strings.Repeat(" ", 1024))
		}
		t.Logf("%d attacking connections opened", len(conns))
		// Let the legitimate client run through the attack for a while: count a fixed number of its answers.
		target := legitCount.Load() + 30
		waitFor(t, 60*time.Second, "30 legitimate answers during the attack", func() (bool, error) {
			return legitCount.Load() >= target, nil
		})
	})

	t.Logf("peak after the trickling connections: %d MiB", procStatusKiB(t, cmd.Process.Pid, "VmHWM")>>10)
	t.Run("pods of 16,000 containers asking for full injection", func(t *testing.T) {
		body := hugePodReview(t, 16000)
		var wg sync.WaitGroup
		errs := make(chan error, 6)
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := apiServer.Post(url+"/mutate-v1-pod", "application/json", bytes.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				defer func() { _ = resp.Body.Close() }()
				var review admissionv1.AdmissionReview
				if err := json.NewDecoder(resp.Body).Decode(&review); err != nil || review.Response == nil {
					errs <- fmt.Errorf("pod %d: status %d: %w", i, resp.StatusCode, err)
					return
				}
				r := review.Response
				if resp.StatusCode == 503 {
					return // the body budget was full: refused without being read, which is a bound too
				}
				if !r.Allowed || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "nothing was injected") ||
					len(r.Patch) > 4<<10 {
					errs <- fmt.Errorf("pod %d: allowed %v, warnings %q, patch of %d bytes: want a warning and no "+
						"injection", i, r.Allowed, r.Warnings, len(r.Patch))
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	stopLegit()
	legitWG.Wait()
	if n := legitFailed.Load(); n > 0 {
		t.Errorf("%d of %d legitimate requests failed during the attacks, the last: %v", n, legitCount.Load(),
			legitErr.Load())
	}
	peak := procStatusKiB(t, cmd.Process.Pid, "VmHWM")
	t.Logf("idle %d MiB, peak %d MiB, %d legitimate requests answered during the attacks", idle>>10, peak>>10,
		legitCount.Load())
	if growth := (peak - idle) << 10; growth > maxGrowth {
		t.Errorf("peak resident memory %d MiB is %d MiB above idle (%d MiB); the bound is %d MiB", peak>>10,
			growth>>20, idle>>10, maxGrowth>>20)
	}
}

// hugePodReview is a pod CREATE of team-a/flux-source with n containers.
func hugePodReview(t *testing.T, n int) []byte {
	t.Helper()
	containers := make([]map[string]any, n)
	for i := range containers {
		containers[i] = map[string]any{"name": "c" + strconv.Itoa(i), "image": "busybox"}
	}
	review := map[string]any{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{
			"uid": "huge", "kind": map[string]string{"version": "v1", "kind": "Pod"},
			"namespace": "team-a", "operation": "CREATE",
			"object": map[string]any{"apiVersion": "v1", "kind": "Pod",
				"metadata": map[string]any{"name": "huge", "namespace": "team-a"},
				"spec":     map[string]any{"serviceAccountName": "flux-source", "containers": containers}},
		},
	}
	body, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// procStatusKiB reads a memory figure (VmRSS, VmHWM) of a process, in KiB.
func procStatusKiB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kib
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// syncBuffer collects a process's output from two pipes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
