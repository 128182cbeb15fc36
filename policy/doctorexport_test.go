package policy

import "testing"

func TestIsGlob(t *testing.T) {
	for pattern, want := range map[string]bool{"team-*": true, "team-?": true, "flux-system": false, "": false} {
		if got := IsGlob(pattern); got != want {
			t.Errorf("IsGlob(%q) = %v, want %v", pattern, got, want)
		}
	}
}
