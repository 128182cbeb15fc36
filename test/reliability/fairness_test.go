package reliability

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
)

// fairnessPolicy maps team-a's flux-* ServiceAccounts with full injection and mandates identity for team-a's Flux sources: the
// API server's requests in this policy namespace are ServiceAccounts (mutated), pods (injected) and sources (a
// secretRef denied), and the ServiceAccount and source webhooks fail closed.
const fairnessPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: fairness
identities:
  - name: tenant
    namespaces: [team-a]
    serviceAccounts: ["flux-*"]
    aws:
      roleARN: arn:aws:iam::111122223333:role/tenant
      region: eu-west-1
    injection: full
mandates:
  - name: no-static-git-credentials
    namespaces: [team-a]
`

// webhookTimeout is the longest webhook timeout of the registrations (ServiceAccounts, sources): an answer later
// than this is a failed request for the API server.
const webhookTimeout = 10 * time.Second

// TestOneClientCannotShutAdmissionOff runs the real binary and, from one attacking client, each attack of issue 20
// (bodies trickled a byte a second, 512 idle keep-alive connections, 5,000 of them, and trickling plus 5,000 at once)
// while the API server's client keeps sending ServiceAccounts, pods and Flux sources of a policy namespace, half of
// its workers on kept-alive connections and half on a new connection per request. Every one of the API server's
// requests must be answered within the webhook timeout, and the server's peak memory stays within maxGrowth of its
// idle footprint; the attacker's requests may fail.
func TestOneClientCannotShutAdmissionOff(t *testing.T) {
	bin := serverBinary(t)
	m := newMounts(t, 2, fairnessPolicy)
	port, health := freePort(t), freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	url := "https://" + addr
	cmd, _ := runBinary(t, bin, "serve", "--policy", m.policyFile(), "--cert-dir", m.certs.dir,
		"--host", "127.0.0.1", "--port", strconv.Itoa(port), "--metrics-bind-address", "0",
		"--health-probe-bind-address", "127.0.0.1:"+strconv.Itoa(health))
	waitFor(t, 30*time.Second, "server ready", func() (bool, error) {
		return readyStatus(fmt.Sprintf("http://127.0.0.1:%d/readyz", health)) == 200, nil
	})
	tlsConfig := &tls.Config{RootCAs: m.ca.pool, MinVersion: tls.VersionTLS12}
	api := newReviewClient(url, tlsConfig, nil)
	for i := range 100 { // warm every path up, then take the idle footprint
		if err := api.review(t.Context(), i, i); err != nil {
			t.Fatalf("warm-up: %v", err)
		}
	}
	idle := procStatusKiB(t, cmd.Process.Pid, "VmRSS")

	loads := underAttack(t, addr, tlsConfig, 10*time.Second, nil, api.run, func(name string) {
		t.Logf("after %s: peak %d MiB (idle %d MiB)", name, procStatusKiB(t, cmd.Process.Pid, "VmHWM")>>10, idle>>10)
	})
	for name, l := range loads {
		if n, answered, _, _, _ := l.summary(); n == 0 || answered < 1 {
			t.Errorf("%s: the API server's requests were not all answered: %s", name, l)
		}
	}
	peak := procStatusKiB(t, cmd.Process.Pid, "VmHWM")
	t.Logf("RESULT memory: idle %d MiB, peak %d MiB over every attack", idle>>10, peak>>10)
	if growth := (peak - idle) << 10; growth > maxGrowth {
		t.Errorf("peak resident memory %d MiB is %d MiB above idle (%d MiB); the bound is %d MiB", peak>>10,
			growth>>20, idle>>10, maxGrowth>>20)
	}
}

// reviewClient sends what the API server sends in a policy namespace, as its webhook client does: POSTed reviews
// with the webhook timeout, some workers on kept-alive connections and some on a new connection each time.
type reviewClient struct {
	url       string
	keepAlive *http.Client
	fresh     *http.Client
}

// newReviewClient sends from the address from (any loopback address when nil).
func newReviewClient(url string, tlsConfig *tls.Config, from net.IP) *reviewClient {
	dial := (&net.Dialer{Timeout: webhookTimeout}).DialContext
	if from != nil {
		dial = (&net.Dialer{Timeout: webhookTimeout, LocalAddr: &net.TCPAddr{IP: from}}).DialContext
	}
	return &reviewClient{
		url: url,
		keepAlive: &http.Client{Timeout: webhookTimeout,
			Transport: &http.Transport{TLSClientConfig: tlsConfig, MaxIdleConnsPerHost: 8, DialContext: dial}},
		fresh: &http.Client{Timeout: webhookTimeout,
			Transport: &http.Transport{TLSClientConfig: tlsConfig, DisableKeepAlives: true, DialContext: dial}},
	}
}

// run sends reviews from four workers until ctx ends, recording each. Each worker sends one request every
// apiServerPace, or at once when the previous one took longer, as a cluster's steady stream of creates: a request
// held up by the server holds up its worker, instead of being outnumbered by a fast client's answers.
func (c *reviewClient) run(ctx context.Context, l *apiServerLoad) {
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			paced(ctx, func(n int) {
				start := time.Now()
				err := c.review(context.WithoutCancel(ctx), w, n)
				l.record(time.Since(start), err)
			})
		})
	}
	wg.Wait()
}

// apiServerPace is how often each of the API server's workers sends a request.
const apiServerPace = 25 * time.Millisecond

// paced calls do(0), do(1), ... at most once per apiServerPace until ctx ends.
func paced(ctx context.Context, do func(n int)) {
	tick := time.NewTicker(apiServerPace)
	defer tick.Stop()
	for n := 0; ctx.Err() == nil; n++ {
		do(n)
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// review sends request n of worker w: a ServiceAccount, a pod or a GitRepository of team-a in turn, on a kept-alive
// connection for even workers and on a new one for odd workers, and checks the answer.
func (c *reviewClient) review(ctx context.Context, w, n int) error {
	client := c.keepAlive
	if w%2 == 1 {
		client = c.fresh
	}
	uid := fmt.Sprintf("api-%d-%d", w, n)
	var path string
	var body []byte
	switch n % 3 {
	case 0:
		path, body = routes.PathMutateServiceAccount, serviceAccountReview(uid)
	case 1:
		path, body = routes.PathMutatePod, podReview(uid)
	default:
		path, body = routes.PathValidateFluxSources, []byte(gitRepositoryReview(uid, `{"name":"git"}`))
	}
	status, data, err := postReview(ctx, client, c.url, path, body)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d: %.200s", path, status, data)
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(data, &review); err != nil || review.Response == nil {
		return fmt.Errorf("%s: not an AdmissionReview: %w", path, err)
	}
	r := review.Response
	switch {
	case string(r.UID) != uid:
		return fmt.Errorf("%s: answer for %q, want %q", path, r.UID, uid)
	case path == routes.PathValidateFluxSources && (r.Allowed || r.Result == nil ||
		!strings.Contains(r.Result.Message, "no-static-git-credentials")):
		return fmt.Errorf("%s: want the mandate's denial, got %+v", path, r.Result)
	case path != routes.PathValidateFluxSources && (!r.Allowed || len(r.Patch) == 0):
		return errors.New(path + ": want an allowed answer with the identity patch")
	}
	return nil
}

// podReview is a pod CREATE of team-a/flux-source with one container, which gets full injection.
func podReview(uid string) []byte {
	review := map[string]any{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{
			"uid": uid, "kind": map[string]string{"version": "v1", "kind": "Pod"},
			"resource":  map[string]string{"version": "v1", "resource": "pods"},
			"namespace": "team-a", "operation": "CREATE",
			"userInfo": map[string]any{"username": "system:serviceaccount:kube-system:replicaset-controller"},
			"object": map[string]any{"apiVersion": "v1", "kind": "Pod",
				"metadata": map[string]any{"generateName": "source-controller-", "namespace": "team-a"},
				"spec": map[string]any{"serviceAccountName": "flux-source", "containers": []map[string]any{{
					"name": "manager", "image": "ghcr.io/fluxcd/source-controller:v1.9.6",
					"args": []string{"--watch-all-namespaces", "--log-level=info"},
				}}}},
		},
	}
	body, err := json.Marshal(review)
	if err != nil {
		panic(err) // a static map always encodes
	}
	return body
}
