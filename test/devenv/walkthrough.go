package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/test/harness"
	"github.com/fluxidentity/flux-identity-webhook/webhook/serviceaccounts"
)

// The walkthrough's objects. The identity and mandates they meet come from the served policy, so the expectations
// follow config/samples/policy.yaml as it changes; a policy without them is reported, not silently passed.
const (
	fluxNamespace   = "flux-system"
	tenantNamespace = "team-apps"
	fluxSA          = "source-controller"
)

// step is one thing to try: a manifest to apply and what the API server must answer.
type step struct {
	Title    string
	File     string
	Manifest string
	// Then is the kubectl command that shows the result (printed by make run).
	Then   string
	Expect string
	Check  func(r applyResult) error
}

// applyResult is what the API server answered to creating a manifest's objects.
type applyResult struct {
	Objects  []*unstructured.Unstructured
	Err      error
	Warnings []string
}

// answer is what a mandate makes the webhook do with a violating object.
type answer string

const (
	deny  answer = "deny"
	warn  answer = "warn"
	allow answer = "allow"
)

// mandateAnswer is how the server answers a violation of the mandates covering namespace/kind: the strictest
// mandate's mode, softened to warn by an audit-only server.
func mandateAnswer(p *policy.Policy, serverMode policy.Mode, namespace, kind string) (answer, []string) {
	var names []string
	a := allow
	for _, m := range p.MandatesFor(namespace, kind) {
		names = append(names, m.Name)
		switch m.Mode {
		case policy.ModeEnforce, "":
			a = deny
		case policy.ModeWarn:
			if a != deny {
				a = warn
			}
		}
	}
	if a == deny && serverMode == policy.ModeWarn {
		a = warn
	}
	return a, names
}

func walkthrough(p *policy.Policy, serverMode policy.Mode) ([]step, error) {
	match, ok := p.IdentityFor(fluxNamespace, fluxSA)
	if !ok {
		return nil, fmt.Errorf("the policy maps no identity to %s/%s: the walkthrough needs one (config/samples/policy.yaml has it)",
			fluxNamespace, fluxSA)
	}
	wantAnnotations, wantLabels := serviceaccounts.Metadata(match)

	gitAnswer, gitMandates := mandateAnswer(p, serverMode, fluxNamespace, "GitRepository")
	if gitAnswer == allow {
		return nil, fmt.Errorf("no mandate covers GitRepository in %s: the walkthrough needs one", fluxNamespace)
	}
	ociAnswer, ociMandates := mandateAnswer(p, serverMode, tenantNamespace, "OCIRepository")
	if ociAnswer == allow {
		return nil, fmt.Errorf("no mandate covers OCIRepository in %s: the walkthrough needs one", tenantNamespace)
	}

	return []step{
		{
			Title: "create the namespaces",
			File:  "00-namespaces.yaml",
			Manifest: fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %s
---
apiVersion: v1
kind: Namespace
metadata:
  name: %s
`, fluxNamespace, tenantNamespace),
			Then:   "kubectl get namespaces",
			Expect: "both namespaces are created",
			Check:  func(r applyResult) error { return r.Err },
		},
		{
			Title: "a Flux controller's ServiceAccount gets its cloud identity from the policy",
			File:  "10-flux-serviceaccount.yaml",
			Manifest: fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata:
  name: %s
  namespace: %s
`, fluxSA, fluxNamespace),
			Then:   fmt.Sprintf("kubectl -n %s get serviceaccount %s -o yaml", fluxNamespace, fluxSA),
			Expect: "annotated with " + describe(wantAnnotations),
			Check: func(r applyResult) error {
				if r.Err != nil {
					return fmt.Errorf("the ServiceAccount was not admitted: %w", r.Err)
				}
				got := r.Objects[0]
				if _, ok := got.GetAnnotations()[keys.AnnotationIdentity]; !ok {
					return fmt.Errorf("the webhook left the ServiceAccount without %s: the ServiceAccount mutation is not "+
						"implemented or is broken (annotations: %v)", keys.AnnotationIdentity, got.GetAnnotations())
				}
				if missing := missingEntries(got.GetAnnotations(), wantAnnotations); len(missing) > 0 {
					return fmt.Errorf("annotations %v lack or differ on %v", got.GetAnnotations(), missing)
				}
				if missing := missingEntries(got.GetLabels(), wantLabels); len(missing) > 0 {
					return fmt.Errorf("labels %v lack or differ on %v", got.GetLabels(), missing)
				}
				return nil
			},
		},
		{
			Title: "a GitRepository with a long-lived secretRef where identity is mandated is " + verb(gitAnswer),
			File:  "20-gitrepository-secretref.yaml",
			Manifest: fmt.Sprintf(`apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: podinfo-static-credentials
  namespace: %s
spec:
  url: https://github.com/stefanprodan/podinfo
  interval: 5m
  ref:
    branch: master
  secretRef:
    name: podinfo-git-token
`, fluxNamespace),
			Then:   "(kubectl apply prints the answer)",
			Expect: expectText(gitAnswer, gitMandates),
			Check:  checkMandate(gitAnswer, gitMandates, "the Flux source validation"),
		},
		{
			Title: "the same GitRepository without credentials is admitted",
			File:  "30-gitrepository-public.yaml",
			Manifest: fmt.Sprintf(`apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: podinfo
  namespace: %s
spec:
  url: https://github.com/stefanprodan/podinfo
  interval: 5m
  ref:
    branch: master
`, fluxNamespace),
			Then:   fmt.Sprintf("kubectl -n %s get gitrepositories", fluxNamespace),
			Expect: "admitted without warnings",
			Check: func(r applyResult) error {
				if r.Err != nil {
					return fmt.Errorf("a GitRepository without credentials was refused: %w", r.Err)
				}
				if len(r.Warnings) > 0 {
					return fmt.Errorf("a GitRepository without credentials drew warnings: %q", r.Warnings)
				}
				return nil
			},
		},
		{
			Title: "an OCIRepository with a secretRef under an audit-only mandate is " + verb(ociAnswer),
			File:  "40-ocirepository-secretref.yaml",
			Manifest: fmt.Sprintf(`apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: podinfo-manifests
  namespace: %s
spec:
  url: oci://ghcr.io/stefanprodan/manifests/podinfo
  interval: 5m
  ref:
    tag: latest
  secretRef:
    name: ghcr-pull-token
`, tenantNamespace),
			Then:   "(kubectl apply prints the warning)",
			Expect: expectText(ociAnswer, ociMandates),
			Check:  checkMandate(ociAnswer, ociMandates, "the Flux source validation"),
		},
	}, nil
}

func verb(a answer) string {
	if a == deny {
		return "rejected"
	}
	return "admitted with a warning"
}

func expectText(a answer, mandates []string) string {
	if a == deny {
		return "denied, naming " + strings.Join(mandates, " or ")
	}
	return "admitted with a warning naming " + strings.Join(mandates, " or ")
}

// checkMandate checks a violating object was denied (or admitted with a warning) with a message naming a mandate.
func checkMandate(a answer, mandates []string, feature string) func(applyResult) error {
	names := func(s string) bool {
		return slices.ContainsFunc(mandates, func(m string) bool { return strings.Contains(s, m) })
	}
	return func(r applyResult) error {
		switch {
		case a == deny && r.Err == nil:
			return fmt.Errorf("it was admitted: %s is not implemented or is broken", feature)
		case a == deny && !apierrors.IsForbidden(r.Err) && !apierrors.IsInvalid(r.Err):
			return fmt.Errorf("refused for another reason than the mandate: %w", r.Err)
		case a == deny && !names(r.Err.Error()):
			return fmt.Errorf("denied without naming %v: %w", mandates, r.Err)
		case a == warn && r.Err != nil:
			return fmt.Errorf("refused although the mandate only warns: %w", r.Err)
		case a == warn && !slices.ContainsFunc(r.Warnings, names):
			return fmt.Errorf("admitted without a warning naming %v (warnings: %q): %s is not implemented or is broken",
				mandates, r.Warnings, feature)
		}
		return nil
	}
}

// missingEntries lists the keys of want that got lacks or holds with another value.
func missingEntries(got, want map[string]string) []string {
	var missing []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got[k] != want[k] {
			missing = append(missing, k+"="+want[k])
		}
	}
	return missing
}

func describe(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ", ")
}

// warningCollector keeps the API server's warnings for the step being applied.
type warningCollector struct {
	mu       sync.Mutex
	warnings []string
}

func (w *warningCollector) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.warnings = append(w.warnings, text)
}

func (w *warningCollector) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.warnings
	w.warnings = nil
	return out
}

// runDemo applies every step through the API server, as `kubectl apply` would, and checks each answer.
func runDemo(ctx context.Context, out io.Writer, env *harness.Env, steps []step) error {
	warnings := &warningCollector{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = nil
	cfg.WarningHandlerWithContext = warnings
	c, err := client.New(cfg, client.Options{Scheme: harness.Scheme})
	if err != nil {
		return fmt.Errorf("client for the demo: %w", err)
	}
	// The walkthrough's progress goes to a terminal: a failed write there has nobody left to tell.
	say := func(format string, args ...any) { _, _ = fmt.Fprintf(out, format, args...) }
	failed := 0
	for i, s := range steps {
		r := apply(ctx, c, s.Manifest)
		r.Warnings = warnings.take()
		say("[%d/%d] %s\n      %s: expect %s\n", i+1, len(steps), s.Title, s.File, s.Expect)
		if r.Err != nil {
			say("      API server: %v\n", r.Err)
		}
		for _, w := range r.Warnings {
			say("      warning: %s\n", w)
		}
		if err := s.Check(r); err != nil {
			failed++
			say("      FAIL: %v\n", err)
			continue
		}
		say("      ok\n")
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d walkthrough steps did not behave as expected", failed, len(steps))
	}
	say("all %d walkthrough steps behaved as expected\n", len(steps))
	return nil
}

// apply creates every object of a manifest and reads each back, stopping at the first error.
func apply(ctx context.Context, c client.Client, manifest string) applyResult {
	var r applyResult
	reader := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := reader.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return r
			}
			r.Err = fmt.Errorf("decode manifest: %w", err)
			return r
		}
		if len(u.Object) == 0 {
			continue
		}
		if err := c.Create(ctx, u); err != nil {
			r.Err = err
			return r
		}
		r.Objects = append(r.Objects, u)
	}
}

type walkthroughInfo struct {
	Policy, Mode, Kubeconfig, Dir, MetricsURL, HealthURL string
}

func printWalkthrough(out io.Writer, steps []step, info walkthroughInfo) {
	say := func(format string, args ...any) { _, _ = fmt.Fprintf(out, format, args...) } // a terminal's write errors have nobody to tell
	say(`
flux-identity-webhook is serving %s against a local API server (mode %s).
Flux's CRDs are installed; the webhooks are registered exactly as in config/webhook/.

In another terminal:

  export KUBECONFIG=%s

`, info.Policy, info.Mode, info.Kubeconfig)
	for i, s := range steps {
		say("%d. %s\n   kubectl apply -f %s/%s\n", i+1, s.Title, info.Dir, s.File)
		if !strings.HasPrefix(s.Then, "(") {
			say("   %s\n", s.Then)
		}
		say("   expect: %s\n\n", s.Expect)
	}
	say(`Metrics:    curl -s %s | grep fluxidentity_
Readiness:  curl -s '%s/readyz?verbose'

Edit %s and save: the server reloads it (a broken edit is rejected and the last good policy stays).
make demo runs these steps and checks every answer. Ctrl-C stops everything.
`, info.MetricsURL, info.HealthURL, info.Policy)
}
