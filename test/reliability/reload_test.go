package reliability

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/fluxidentity/flux-identity-webhook/test/harness"
)

// policyVersion is version n of the reload test's policy. Every valid version maps team-a/flux-source to identity
// "v-n" with role ARN ".../role/v-n" and token lifetime 3600+n seconds: three fields the server patches with three
// separate operations, so an answer mixing two versions would show.
func policyVersion(n int) string {
	return fmt.Sprintf(`apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: reload
identities:
  - name: v-%[1]d
    namespaces: [team-a]
    serviceAccounts: [flux-source]
    aws:
      roleARN: arn:aws:iam::111122223333:role/v-%[1]d
      tokenExpirationSeconds: %[2]d
`, n, 3600+n)
}

// invalidPolicyVersion is a broken version n; the four kinds of breakage take turns. Each still names v-n, so an
// invalid version that ever answered a request would be caught by the consistency check.
func invalidPolicyVersion(n int) string {
	valid := policyVersion(n)
	switch n % 4 {
	case 0:
		return strings.Replace(valid, "    aws:", "    colour: blue\n    aws:", 1) // unknown field
	case 1:
		return strings.Replace(valid, "arn:aws:iam::111122223333", "arn:aws:iam::12", 1) // malformed ARN
	case 2:
		return valid + "  - name: v-" + strconv.Itoa(n) + "\n    namespaces: [\n" // YAML syntax error
	default:
		return valid + strings.SplitN(valid, "identities:\n", 2)[1] // duplicate identity name
	}
}

func digestOf(content string) string {
	sum := sha256.Sum256([]byte(content))
	return hex.EncodeToString(sum[:])[:12]
}

// answeredVersion reads the policy version an answer was computed from and fails when its fields disagree.
func answeredVersion(resp *admissionv1.AdmissionResponse) (int, error) {
	ops, err := patchStrings(resp)
	if err != nil {
		return 0, err
	}
	identity := ops["/metadata/annotations/fluxidentity.dev~1identity"]
	role := ops["/metadata/annotations/eks.amazonaws.com~1role-arn"]
	lifetime := ops["/metadata/annotations/eks.amazonaws.com~1token-expiration"]
	n, err := strconv.Atoi(strings.TrimPrefix(identity, "v-"))
	if err != nil || !strings.HasPrefix(identity, "v-") {
		return 0, fmt.Errorf("identity %q is not a version (patch %s)", identity, resp.Patch)
	}
	if role != fmt.Sprintf("arn:aws:iam::111122223333:role/v-%d", n) || lifetime != strconv.Itoa(3600+n) {
		return 0, fmt.Errorf("mixed versions in one answer: identity %s, role %s, token lifetime %s", identity, role,
			lifetime)
	}
	return n, nil
}

// TestPolicyReloadUnderLoad swaps the policy file 100 times (a quarter of the versions invalid) through a ConfigMap's
// ..data symlink swap while clients keep posting reviews. Every request succeeds; every answer is computed from
// exactly one valid version; a client never sees an older version after a newer one; invalid versions are rejected,
// counted in fluxidentity_policy_reload_errors_total and logged, and fluxidentity_policy_info carries the digest of
// the version in force.
func TestPolicyReloadUnderLoad(t *testing.T) {
	swaps, clients := 100, 4
	if *soak {
		swaps, clients = 1000, 16
	}
	m := newMounts(t, 2, policyVersion(0))
	srv := startServer(t, m.policyFile(), m.certs.dir, nil)
	ctx := t.Context()

	errorsBefore, err := srv.metric(ctx, "fluxidentity_policy_reload_errors_total", nil)
	if err != nil {
		t.Fatal(err)
	}
	logMark := logs.len()

	valid := map[int]bool{0: true}
	var validMu sync.RWMutex
	var seenMu sync.Mutex
	seen := map[int]bool{}
	lastSeen := make([]int, clients)
	loadCtx, stopLoad := context.WithTimeout(ctx, 10*time.Minute)
	defer stopLoad()
	loaded := make(chan *loadResult, 1)
	go func() {
		loaded <- runLoad(loadCtx, srv.URL, m.ca.pool, loadOptions{clients: clients,
			check: func(c int, resp *admissionv1.AdmissionResponse) error {
				n, err := answeredVersion(resp)
				if err != nil {
					return err
				}
				validMu.RLock()
				ok := valid[n]
				validMu.RUnlock()
				if !ok {
					return fmt.Errorf("answered from version %d, which was never a valid policy", n)
				}
				if n < lastSeen[c] {
					return fmt.Errorf("went back from version %d to %d", lastSeen[c], n)
				}
				lastSeen[c] = n
				seenMu.Lock()
				seen[n] = true
				seenMu.Unlock()
				return nil
			}})
	}()

	var invalid int
	var latencies []time.Duration
	inForce := digestOf(policyVersion(0))
	for n := 1; n <= swaps; n++ {
		content := policyVersion(n)
		bad := n%4 == 0
		if bad {
			content = invalidPolicyVersion(n)
			invalid++
		} else {
			validMu.Lock()
			valid[n] = true // before the swap: the server may answer from it as soon as the file changes
			validMu.Unlock()
		}
		if err := m.policies.update(map[string][]byte{"policy.yaml": []byte(content)}); err != nil {
			t.Fatal(err)
		}
		wantErrors := errorsBefore + float64(invalid)
		took := waitFor(t, 10*time.Second, fmt.Sprintf("swap %d (invalid %v)", n, bad), func() (bool, error) {
			f, err := srv.metrics(ctx)
			if err != nil {
				return false, err
			}
			if !bad {
				inForce = digestOf(content)
			}
			info := harness.Value(f, "fluxidentity_policy_info", map[string]string{"name": "reload", "digest": inForce})
			errs := harness.Value(f, "fluxidentity_policy_reload_errors_total", nil)
			failed := harness.Value(f, "fluxidentity_policy_last_reload_failed", nil)
			if errs > wantErrors {
				return false, fmt.Errorf("%v reload errors, want %v", errs, wantErrors)
			}
			return info == 1 && errs == wantErrors && (failed == 1) == bad, nil
		})
		latencies = append(latencies, took)
	}
	stopLoad()
	res := <-loaded

	if res.failures.Load() != 0 {
		t.Errorf("load: %s", res)
	}
	if res.requests.Load() < int64(swaps) {
		t.Errorf("only %d requests during %d swaps: the load did not overlap the reloads", res.requests.Load(), swaps)
	}
	validVersions := swaps - invalid + 1
	if len(seen) < validVersions/2 {
		t.Errorf("answers came from only %d of %d valid versions: the load did not overlap the reloads", len(seen),
			validVersions)
	}
	rejected := 0
	for _, l := range logs.since(logMark) {
		if strings.Contains(l, "policy reload rejected") {
			rejected++
		}
	}
	if rejected != invalid {
		t.Errorf("%d rejections logged, want one per invalid version (%d)", rejected, invalid)
	}
	slices.Sort(latencies)
	t.Logf("RESULT reload: %d swaps (%d invalid, all rejected), %d requests, %d failed, answers from %d of %d valid "+
		"versions, none mixed; swap to in force: median %s, max %s", swaps, invalid, res.requests.Load(),
		res.failures.Load(), len(seen), validVersions, latencies[len(latencies)/2].Round(time.Millisecond),
		latencies[len(latencies)-1].Round(time.Millisecond))
}
