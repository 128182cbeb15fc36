// Command loadtest measures flux-identity-webhook's admission server side by side with the floor: a net/http no-op
// admission server and controller-runtime's webhook.Server with an allow-all handler, all three with the same TLS
// settings, on loopback. It posts realistic AdmissionReviews over TLS keep-alive at several concurrencies, bounded by
// request count and time, and reports throughput, latency percentiles, errors, server CPU per 10k requests and peak
// RSS, with each figure's ratio to the floor. Servers run pinned to CPU 0 and the client to CPU 1 when taskset exists.
//
// The three servers run at once (idle but for the one under load) and each measurement loads them one after another,
// in a rotating order, for several rounds; the report keeps each server's median round. Measuring one server after
// the other for minutes each made the ratios follow the machine's speed drifting on a shared host (the same build
// measured 0.53x and 0.71x the floor an hour apart).
package main

import (
	"bytes"
	"cmp"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type options struct {
	webhookBin, floorBin string
	out                  string
	requests             int
	maxDuration          time.Duration
	concurrency          []int
	rounds               int
	entries              int
	pin                  bool
}

func main() {
	var o options
	var conc string
	flag.StringVar(&o.webhookBin, "webhook-bin", "bin/flux-identity-webhook", "flux-identity-webhook binary")
	flag.StringVar(&o.floorBin, "floor-bin", "bin/perf-floor", "floor servers binary (test/perf/floor)")
	flag.StringVar(&o.out, "out", "", "write the report (markdown) here as well as to stdout")
	flag.IntVar(&o.requests, "requests", 20000, "requests per measurement (upper bound)")
	flag.DurationVar(&o.maxDuration, "max-duration", 4*time.Second, "time per measurement round (upper bound)")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds per measurement, servers interleaved; the median round is reported")
	flag.StringVar(&conc, "concurrency", "1,8,32", "comma-separated client concurrencies")
	flag.IntVar(&o.entries, "policy-entries", 10000, "identity entries in the served policy")
	flag.BoolVar(&o.pin, "pin", true, "pin servers to CPU 0 and this client to CPU 1 (needs taskset and 2 CPUs)")
	flag.Parse()
	for _, c := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			fatal(fmt.Errorf("bad concurrency %q", c))
		}
		o.concurrency = append(o.concurrency, n)
	}
	if o.rounds < 1 {
		fatal(fmt.Errorf("bad rounds %d", o.rounds))
	}
	if err := run(o); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "loadtest:", err)
	os.Exit(1)
}

// server is one admission server under test.
type server struct {
	name string
	args []string
}

// result is one measurement.
type result struct {
	server, scenario string
	concurrency      int
	requests, errors int
	elapsed          time.Duration
	p50, p90, p99    time.Duration
	max              time.Duration
	cpu              time.Duration // server CPU time spent during the measurement
}

func (r result) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

func (r result) cpuPer10k() float64 {
	if r.requests == 0 {
		return 0
	}
	return r.cpu.Seconds() * 10000 / float64(r.requests)
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "fiw-loadtest-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	pool, err := writeCertificates(dir)
	if err != nil {
		return err
	}
	policyFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(loadPolicy(o.entries)), 0o600); err != nil {
		return err
	}
	pinned := o.pin && runtime.NumCPU() >= 2 && hasTaskset()
	if pinned {
		if err := pinSelf(1); err != nil {
			return err
		}
	}
	scenarios, err := scenarios()
	if err != nil {
		return err
	}

	servers := []server{
		{"noop (floor)", []string{o.floorBin, "--mode=noop", "--cert-dir=" + dir}},
		{"controller-runtime allow-all", []string{o.floorBin, "--mode=cr-allow", "--cert-dir=" + dir}},
		{"flux-identity-webhook", []string{o.webhookBin, "serve", "--policy=" + policyFile, "--cert-dir=" + dir,
			"--metrics-bind-address=127.0.0.1:0", "--health-probe-bind-address=127.0.0.1:0", "--zap-log-level=error"}},
	}
	running := make([]*running, 0, len(servers))
	defer func() {
		for _, r := range running {
			r.stop()
		}
	}()
	for _, s := range servers {
		r, err := start(s, pool, scenarios[0], slices.Max(o.concurrency), pinned)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		running = append(running, r)
	}
	var results []result
	for _, sc := range scenarios {
		for _, c := range o.concurrency {
			rounds := make([][]result, len(running))
			for round := range o.rounds {
				for i := range running {
					k := (i + round) % len(running) // rotate who goes first
					r, err := running[k].measure(sc, c, o)
					if err != nil {
						return fmt.Errorf("%s: %w", running[k].name, err)
					}
					rounds[k] = append(rounds[k], r)
				}
			}
			for k, rs := range rounds {
				r := median(rs)
				results = append(results, r)
				fmt.Fprintf(os.Stderr, "%-30s %-16s c=%-3d %8.0f req/s p99 %v errors %d (median of %d)\n",
					running[k].name, sc.name, c, r.rps(), r.p99, r.errors, len(rs))
			}
		}
	}
	peakRSS := map[string]int64{}
	for _, r := range running {
		peak, err := statusBytes(r.pid, "VmHWM:")
		if err != nil {
			return err
		}
		now, err := statusBytes(r.pid, "VmRSS:")
		if err != nil {
			return err
		}
		peakRSS[r.name] = peak
		fmt.Fprintf(os.Stderr, "%s: peak RSS %.1f MiB, RSS after the run %.1f MiB\n", r.name,
			float64(peak)/(1<<20), float64(now)/(1<<20))
	}
	report := renderReport(o, pinned, servers, scenarios, results, peakRSS)
	fmt.Print(report)
	if o.out != "" {
		return os.WriteFile(o.out, []byte(report), 0o644)
	}
	return nil
}

// median is the round with the median throughput.
func median(rs []result) result {
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b result) int { return cmp.Compare(a.rps(), b.rps()) })
	return sorted[len(sorted)/2]
}

// running is a started server.
type running struct {
	name   string
	cmd    *exec.Cmd
	pid    int
	url    string
	client *http.Client
}

func start(s server, pool *x509.CertPool, first scenario, conns int, pinned bool) (*running, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := append(slices.Clone(s.args), "--port="+strconv.Itoa(port))
	if pinned {
		args = append([]string{"taskset", "-c", "0"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// taskset execs the server, so this is the server's pid either way.
	r := &running{name: s.name, cmd: cmd, pid: cmd.Process.Pid, url: fmt.Sprintf("https://127.0.0.1:%d", port),
		client: newClient(pool, conns)}
	if err := waitReady(r.client, r.url+first.path, first.body); err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}

func (r *running) stop() {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	_ = r.cmd.Wait()
}

// measure warms the server up on the scenario, then loads it and takes the server's CPU time around the load.
func (r *running) measure(sc scenario, c int, o options) (result, error) {
	if _, err := load(r.client, r.url+sc.path, sc.body, c, 300, 5*time.Second); err != nil {
		return result{}, err
	}
	cpuBefore, err := processCPU(r.pid)
	if err != nil {
		return result{}, err
	}
	res, err := load(r.client, r.url+sc.path, sc.body, c, o.requests, o.maxDuration)
	if err != nil {
		return result{}, err
	}
	cpuAfter, err := processCPU(r.pid)
	if err != nil {
		return result{}, err
	}
	res.server, res.scenario, res.concurrency, res.cpu = r.name, sc.name, c, cpuAfter-cpuBefore
	return res, nil
}

func newClient(pool *x509.CertPool, conns int) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
	}
}

func waitReady(c *http.Client, url string, body []byte) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := post(c, url, body)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server not ready: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var errNotAllowed = errors.New("response is not an allowed AdmissionReview")

func post(c *http.Client, url string, body []byte) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(data, []byte(`"allowed":true`)) {
		return fmt.Errorf("%w: HTTP %d %.200s", errNotAllowed, resp.StatusCode, data)
	}
	return nil
}

// load sends up to n requests with c workers, for at most d, and measures each one.
func load(client *http.Client, url string, body []byte, c, n int, d time.Duration) (result, error) {
	var (
		next    atomic.Int64
		errs    atomic.Int64
		mu      sync.Mutex
		lat     = make([]time.Duration, 0, n)
		wg      sync.WaitGroup
		firstEr error
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, n/c+1)
			for next.Add(1) <= int64(n) && time.Now().Before(deadline) {
				t0 := time.Now()
				if err := post(client, url, body); err != nil {
					errs.Add(1)
					mu.Lock()
					if firstEr == nil {
						firstEr = err
					}
					mu.Unlock()
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(lat) == 0 {
		return result{}, fmt.Errorf("no successful request: %w", firstEr)
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	return result{requests: len(lat), errors: int(errs.Load()), elapsed: elapsed,
		p50: pct(0.50), p90: pct(0.90), p99: pct(0.99), max: lat[len(lat)-1]}, nil
}

// processCPU reads user+system CPU time of a process from /proc (clock ticks of 10 ms).
func processCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may contain spaces.
	rest := string(data[bytes.LastIndexByte(data, ')')+2:])
	f := strings.Fields(rest)
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// statusBytes reads a kB field of /proc/PID/status (VmHWM: peak RSS, VmRSS: current RSS).
func statusBytes(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func hasTaskset() bool {
	_, err := exec.LookPath("taskset")
	return err == nil
}

// pinSelf moves every thread of this process to one CPU (taskset -a), so client work never lands on the server's.
func pinSelf(cpu int) error {
	out, err := exec.Command("taskset", "-a", "-p", "-c", strconv.Itoa(cpu), strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset: %w: %s", err, out)
	}
	return nil
}

// writeCertificates writes a CA and a serving certificate for 127.0.0.1 into dir and returns a pool trusting the CA.
func writeCertificates(dir string) (*x509.CertPool, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "loadtest CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, nil
}
