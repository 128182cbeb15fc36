package patch

import "testing"

func TestEscapeKey(t *testing.T) {
	for in, want := range map[string]string{
		"eks.amazonaws.com/role-arn": "eks.amazonaws.com~1role-arn",
		"a~b/c":                      "a~0b~1c",
		"plain":                      "plain",
	} {
		if got := EscapeKey(in); got != want {
			t.Errorf("EscapeKey(%q) = %q, want %q", in, got, want)
		}
	}
}
