package webhook

import (
	"maps"
	"slices"
	"testing"

	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
)

// Every path of the route table is bound to a decision, and nothing else is served: a registration that names a path
// the server does not answer would fail every request it sends.
func TestEveryRouteHasItsDecision(t *testing.T) {
	bound := slices.Sorted(maps.Keys(decisions))
	want := slices.Sorted(slices.Values(routes.Paths))
	if !slices.Equal(bound, want) {
		t.Errorf("decisions are bound to %v, the route table lists %v", bound, want)
	}
	for _, w := range routes.Webhooks {
		if !slices.Contains(routes.Paths, w.Path) {
			t.Errorf("registration %s calls %s, which is not in routes.Paths", w.Name, w.Path)
		}
	}
	s := NewServer(Options{Policy: Fixed{}})
	for _, p := range routes.Paths {
		if s.Handler(p) == nil {
			t.Errorf("the server does not serve %s", p)
		}
	}
}
