package app

import (
	"bytes"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/policy/conditions"
)

func TestMatchConditionsCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Execute(t.Context(), []string{"policy", "match-conditions", "--policy", "testdata/match-conditions.yaml"},
		&stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var got map[string][]conditions.Condition
	if err := yaml.UnmarshalStrict(stdout.Bytes(), &got); err != nil {
		t.Fatalf("the output is not a map of webhook names to matchConditions: %v\n%s", err, stdout.String())
	}
	for webhook, want := range map[string]string{
		routes.WebhookPods: "request.namespace in ['flux-system', 'team-a'] || request.namespace.matches('^team-.*$')",
		// ServiceAccounts also in the namespace only a mandate names.
		routes.WebhookServiceAccounts: "request.namespace in ['flux-system', 'sealed', 'team-a'] || request.namespace.matches('^team-.*$')",
		routes.WebhookSources:         "request.namespace in ['sealed']",
	} {
		if len(got[webhook]) == 0 || got[webhook][0].Expression != want {
			t.Errorf("%s: got %v, want first condition %q", webhook, got[webhook], want)
		}
	}
	full := got[routes.WebhookPodsFullInjection]
	if len(full) != 1 || !strings.Contains(full[0].Expression,
		"request.namespace + '/' + sa in ['flux-system/image-reflector-controller', 'flux-system/source-controller']") {
		t.Errorf("the full-injection webhook's condition does not list the two full-injection pairs: %v", full)
	}
	if pods := got[routes.WebhookPods]; len(pods) != 2 || pods[1].Expression != "!"+full[0].Expression {
		t.Errorf("the fail-open pod webhook must exclude exactly the pods of the fail-closed one: %v", pods)
	}
}
