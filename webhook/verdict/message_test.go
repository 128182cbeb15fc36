package verdict

import (
	"strings"
	"testing"
)

func TestFitMessage(t *testing.T) {
	if m := FitMessage("x", WithDetail("short rule: fix it", "detail")...); m != "[x] short rule: fix it (detail)" {
		t.Errorf("a detail that fits is kept: %q", m)
	}
	long := strings.Repeat("d", 100)
	if m := FitMessage("ownership", WithDetail("annotation eks.amazonaws.com/role-arn is reserved: remove it", long)...); m != "[ownership] annotation eks.amazonaws.com/role-arn is reserved: remove it" {
		t.Errorf("a detail that does not fit is dropped: %q", m)
	}
	m := FitMessage(strings.Repeat("e", 63), strings.Repeat("r", 200))
	if len(m) != MaxMessageLength || !strings.HasSuffix(m, "...") {
		t.Errorf("an overlong message is cut to %d bytes: %d %q", MaxMessageLength, len(m), m)
	}
}

func TestClipBoundsLoggedStrings(t *testing.T) {
	if got := Clip(strings.Repeat("n", 3<<20)); len(got) > MaxLoggedBytes+20 {
		t.Errorf("a 3 MB string is logged as %d bytes", len(got))
	}
}
