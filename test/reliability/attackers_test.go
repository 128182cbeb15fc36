package reliability

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
)

// The attacks of issue 20, from one ordinary pod that can reach the webhook port (the chart's NetworkPolicy admits
// any pod there by default). The attacker dials from attackerIP, another loopback address than the API server's
// 127.0.0.1, as a pod's address differs from the API server's in a cluster. Every attacker is persistent: a
// connection the server closes is opened again.

// attackerIP is the attacking pod's address; Linux routes all of 127.0.0.0/8 to the loopback device.
var attackerIP = net.IPv4(127, 0, 0, 2)

// attackBackoff spaces each of an attacker's connections' attempts after the server closed or refused it: with 5,000
// connections that is still 5,000 connection attempts a second, and the test machine's two cores, which the attacker
// shares with the server, are not spent on the attacker's own reconnect loop alone.
const attackBackoff = time.Second

// attacker opens connections to the webhook port from attackerIP.
type attacker struct {
	addr string // host:port of the webhook
	tls  *tls.Config
	// answered counts requests the server answered; open counts connections currently held; refused counts
	// connections the server closed or refused.
	answered, open, refused atomic.Int64
}

func newAttacker(addr string, tlsConfig *tls.Config) *attacker {
	return &attacker{addr: addr, tls: tlsConfig}
}

func (a *attacker) dial(ctx context.Context) (*tls.Conn, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: attackerIP}, Timeout: 10 * time.Second},
		Config: a.tls}
	c, err := d.DialContext(ctx, "tcp", a.addr)
	if err != nil {
		return nil, err
	}
	return c.(*tls.Conn), nil
}

// pause waits attackBackoff, false when ctx ended.
func pause(ctx context.Context) bool {
	t := time.NewTimer(attackBackoff)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// trickle runs the body-budget attack: eleven connections declaring small bodies (ten of 256 KiB, one of 170 KiB,
// which reserved the whole small-body pool of the server before issue 20) and sending one byte a second. A connection
// the server cuts is opened again. It returns at once; the attack runs until ctx ends.
func (a *attacker) trickle(ctx context.Context, wg *sync.WaitGroup) {
	lengths := slices.Repeat([]int{256 << 10}, 10)
	lengths = append(lengths, 170<<10)
	for _, length := range lengths {
		wg.Go(func() {
			for ctx.Err() == nil {
				a.trickleOnce(ctx, length)
				if !pause(ctx) {
					return
				}
			}
		})
	}
}

func (a *attacker) trickleOnce(ctx context.Context, length int) {
	conn, err := a.dial(ctx)
	if err != nil {
		a.refused.Add(1)
		return
	}
	a.open.Add(1)
	defer a.open.Add(-1)
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	defer func() { _ = conn.Close() }()
	if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\n\r\n{", routes.PathValidateFluxSources, length); err != nil {
		a.refused.Add(1)
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for sent := 1; sent < length; sent++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if _, err := conn.Write([]byte{' '}); err != nil {
			a.refused.Add(1)
			return
		}
	}
}

// idle runs the connection attack: n keep-alive connections, each with one answered request, then held idle. A
// connection the server closes is opened again. It returns once every connection has been tried once; the attack
// runs until ctx ends.
func (a *attacker) idle(ctx context.Context, wg *sync.WaitGroup, n int) {
	var tried sync.WaitGroup
	tried.Add(n)
	for i := range n {
		wg.Go(func() {
			once := sync.OnceFunc(tried.Done)
			defer once()
			for ctx.Err() == nil {
				a.idleOnce(ctx, i, once)
				if !pause(ctx) {
					return
				}
			}
		})
	}
	tried.Wait()
}

// idleOnce holds one idle connection until the server closes it; tried is called once the request was answered or
// failed.
func (a *attacker) idleOnce(ctx context.Context, i int, tried func()) {
	defer tried()
	conn, err := a.dial(ctx)
	if err != nil {
		a.refused.Add(1)
		return
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	defer func() { _ = conn.Close() }()
	body := serviceAccountReview("idle-" + strconv.Itoa(i))
	if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\n\r\n%s", routes.PathMutateServiceAccount, len(body), body); err != nil {
		a.refused.Add(1)
		return
	}
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		a.refused.Add(1)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	a.answered.Add(1)
	tried()
	a.open.Add(1)
	defer a.open.Add(-1)
	_, _ = r.ReadByte() // held idle until the server closes it or the attack ends
	if ctx.Err() == nil {
		a.refused.Add(1)
	}
}

// attack is one scenario of issue 20: what the attacker runs while the API server's requests go on.
type attack struct {
	name string
	// start begins the attack and returns once it is established.
	start func(ctx context.Context, a *attacker, wg *sync.WaitGroup)
}

var attacks = []attack{
	{"trickled bodies", func(ctx context.Context, a *attacker, wg *sync.WaitGroup) {
		a.trickle(ctx, wg)
		established(ctx, 3*time.Second) // every trickling connection holds its reservation by then
	}},
	{"512 idle connections", func(ctx context.Context, a *attacker, wg *sync.WaitGroup) { a.idle(ctx, wg, 512) }},
	{"5,000 idle connections", func(ctx context.Context, a *attacker, wg *sync.WaitGroup) { a.idle(ctx, wg, 5000) }},
	{"trickled bodies and 5,000 idle connections at once", func(ctx context.Context, a *attacker, wg *sync.WaitGroup) {
		a.trickle(ctx, wg)
		a.idle(ctx, wg, 5000)
		established(ctx, 3*time.Second)
	}},
}

// established waits d or until ctx ends.
func established(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// apiServerLoad records the API server's side: every request, whether it was answered within the webhook timeout,
// and how long it took.
type apiServerLoad struct {
	mu        sync.Mutex
	latencies []time.Duration // of every request, answered or not
	failed    []string        // the first failures
	failures  int
}

func (l *apiServerLoad) record(d time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.latencies = append(l.latencies, d)
	if err != nil {
		l.failures++
		if len(l.failed) < 5 {
			l.failed = append(l.failed, err.Error())
		}
	}
}

// summary is the answered fraction and latency percentiles of the recorded requests.
func (l *apiServerLoad) summary() (n int, answered float64, p50, p99, worst time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n = len(l.latencies)
	if n == 0 {
		return 0, 0, 0, 0, 0
	}
	sorted := slices.Clone(l.latencies)
	slices.Sort(sorted)
	at := func(q float64) time.Duration { return sorted[min(n-1, int(q*float64(n)))] }
	return n, float64(n-l.failures) / float64(n), at(0.50), at(0.99), sorted[n-1]
}

func (l *apiServerLoad) String() string {
	n, answered, p50, p99, worst := l.summary()
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("%d requests, %.1f %% answered within the webhook timeout, p50 %s, p99 %s, max %s; "+
		"first failures: %s", n, 100*answered, p50.Round(time.Millisecond), p99.Round(time.Millisecond),
		worst.Round(time.Millisecond), strings.Join(l.failed, " | "))
}

// underAttack runs each attack from a fresh attacker, and during each, after the attack is established, calls load
// for loadFor; load records into the apiServerLoad it is given. before and after, when set, run around each attack.
// It reports per attack and returns the loads.
func underAttack(t *testing.T, addr string, tlsConfig *tls.Config, loadFor time.Duration, before func(name string),
	load func(ctx context.Context, l *apiServerLoad), after func(name string),
) map[string]*apiServerLoad {
	t.Helper()
	out := map[string]*apiServerLoad{}
	for _, at := range attacks {
		if before != nil {
			before(at.name)
		}
		l := &apiServerLoad{}
		out[at.name] = l
		a := newAttacker(addr, tlsConfig)
		ctx, stop := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		began := time.Now()
		at.start(ctx, a, &wg)
		setup := time.Since(began)
		loadCtx, cancel := context.WithTimeout(t.Context(), loadFor)
		load(loadCtx, l)
		cancel()
		held, answered, refused := a.open.Load(), a.answered.Load(), a.refused.Load()
		stop()
		wg.Wait()
		t.Logf("RESULT %s: %s (attacker: %d requests answered, %d connections held at the end, %d cut or refused; "+
			"set up in %s)", at.name, l, answered, held, refused, setup.Round(time.Millisecond))
		if after != nil {
			after(at.name)
		}
	}
	return out
}

// serverBinary is the binary under test: $FIW_RELIABILITY_BIN when set (to measure another build, such as the one
// before a change, with the same attacks), else a fresh build of this tree.
func serverBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("FIW_RELIABILITY_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	return buildBinary(t)
}

// runBinary starts bin with args, its output collected, and kills it at the end of the test.
func runBinary(t *testing.T, bin string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	var output syncBuffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("server output (last 4 KiB):\n%s", tail(output.String(), 4<<10))
		}
	})
	return cmd, &output
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// postReview posts body to url+path on client and returns the status and the answer.
func postReview(ctx context.Context, client *http.Client, url, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}
