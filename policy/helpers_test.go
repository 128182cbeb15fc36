package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// testNow is the clock of every test that does not say otherwise.
var testNow = time.Date(2026, time.June, 15, 12, 0, 0, 0, time.UTC)

// doc joins lines into a YAML document, so that a test's line numbers are the argument positions.
func doc(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// header is lines 1-3 of most test documents.
var header = []string{
	"apiVersion: fluxidentity.dev/v1alpha1",
	"kind: IdentityPolicy",
	"identities:",
}

// entry is one AWS identity in four lines: name, namespaces (the first item at column 18), serviceAccounts (the first
// item at column 23) and aws. Entry k of a document that starts with header stands on lines 4+4k..7+4k.
func entry(name, namespaces, serviceAccounts string) []string {
	return []string{
		"  - name: " + name,
		"    namespaces: " + namespaces,
		"    serviceAccounts: " + serviceAccounts,
		`    aws: {roleARN: "arn:aws:iam::111122223333:role/` + name + `"}`,
	}
}

// entries builds a document from header and the given entries.
func entries(es ...[]string) string {
	lines := append([]string(nil), header...)
	for _, e := range es {
		lines = append(lines, e...)
	}
	return doc(lines...)
}

// wantProblem is an expected finding: exact position and field, and a fragment of the message.
type wantProblem struct {
	line, col int
	field     string
	msg       string
}

// checkProblems compares problems with the expected ones, in order.
func checkProblems(t *testing.T, file string, got []Problem, want []wantProblem) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		g, w := got[i], want[i]
		ok = g.File == file && g.Line == w.line && g.Column == w.col && g.Field == w.field &&
			strings.Contains(g.Message, w.msg)
	}
	if ok {
		return
	}
	var b strings.Builder
	b.WriteString("got:\n")
	for _, g := range got {
		b.WriteString("  " + g.String() + "\n")
	}
	b.WriteString("want:\n")
	for _, w := range want {
		fmt.Fprintf(&b, "  %s:%d:%d: %s: ...%s...\n", file, w.line, w.col, w.field, w.msg)
	}
	t.Error(b.String())
}

// mustParse parses a document that must load.
func mustParse(t testing.TB, yaml string) *Policy {
	t.Helper()
	p, err := Parse("policy.yaml", []byte(yaml), testNow)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

// loadErrorProblems returns the problems of a *LoadError, failing the test for any other outcome.
func loadErrorProblems(t *testing.T, err error) []Problem {
	t.Helper()
	if err == nil {
		t.Fatal("Parse succeeded, want a load error")
	}
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("error is %T (%v), want *LoadError", err, err)
	}
	return le.Problems
}
