package app

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

func TestNamespaceCondition(t *testing.T) {
	tests := map[string]struct {
		patterns []string
		want     string
		wantOK   bool
	}{
		"exact names become one sorted, de-duplicated list": {
			patterns: []string{"team-b", "flux-system", "team-b"},
			want:     "request.namespace in ['flux-system', 'team-b']", wantOK: true,
		},
		"globs become anchored matches after the list": {
			patterns: []string{"team-*", "flux-system", "ns-?"},
			want:     "request.namespace in ['flux-system'] || request.namespace.matches('^ns-.$') || request.namespace.matches('^team-.*$')",
			wantOK:   true,
		},
		"no namespace matches nothing": {patterns: nil, want: "false", wantOK: true},
		"too many names give no condition": {patterns: func() []string {
			var ns []string
			for i := range maxConditionNames + 1 {
				ns = append(ns, fmt.Sprintf("ns-%d", i))
			}
			return ns
		}(), wantOK: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := NamespaceCondition(tc.patterns)
			if ok != tc.wantOK || got != tc.want {
				t.Errorf("got %q, %v; want %q, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

// The regular expression of a glob must accept exactly what the policy's glob matching accepts.
func TestGlobToRE2AgreesWithPolicyGlobs(t *testing.T) {
	for glob, cases := range map[string]map[string]bool{
		"team-*": {"team-": true, "team-a": true, "team": false, "xteam-a": false},
		"t?-a*":  {"tx-a": true, "tx-abc": true, "t-a": false, "txx-a": false},
		"*":      {"anything": true, "": true},
	} {
		re := regexp.MustCompile(globToRE2(glob))
		for ns, want := range cases {
			if got := re.MatchString(ns); got != want {
				t.Errorf("%s (%s) on %q: %v, want %v", glob, globToRE2(glob), ns, got, want)
			}
		}
	}
}

func TestMatchConditionsCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Execute(t.Context(), []string{"policy", "match-conditions", "--policy", "../../../webhook/testdata/policy.yaml"},
		&stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"/mutate-v1-pod:\n- expression: request.namespace in ['flux-system', 'team-a'] || request.namespace.matches('^team-.*$')",
		// ServiceAccounts also in the namespace only a mandate names.
		"/mutate-v1-serviceaccount:\n- expression: request.namespace in ['flux-system', 'sealed', 'team-a'] ||",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
