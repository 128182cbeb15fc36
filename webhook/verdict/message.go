package verdict

import "unicode/utf8"

// Every message a decision writes has one shape and one bound, and every request-controlled string that reaches a
// message or a log line is shortened here first: the webhook port is reachable from every pod, so a request can carry
// names of any length and any bytes.

// MaxMessageLength bounds every message, so that a denial or warning reads on one terminal line.
const MaxMessageLength = 120

// FitMessage is the one message shape: "[rule] text", the first candidate that fits MaxMessageLength bytes, from the
// most detailed; the last one is cut, between characters, when even it does not fit. rule is a mandate's or an
// identity entry's name, or "ownership".
func FitMessage(rule string, candidates ...string) string {
	prefix := "[" + rule + "] "
	for _, c := range candidates {
		if len(prefix)+len(c) <= MaxMessageLength {
			return prefix + c
		}
	}
	s := prefix + candidates[len(candidates)-1]
	return CutUTF8(s, MaxMessageLength-3) + "..."
}

// WithDetail is a message with an optional detail in parentheses, dropped first when it does not fit.
func WithDetail(text, detail string) []string {
	if detail == "" {
		return []string{text}
	}
	return []string{text + " (" + detail + ")", text}
}

// MaxLoggedBytes caps a request-controlled string in a log line.
const MaxLoggedBytes = 256

// Clip shortens a request-controlled string for a log line or a message.
func Clip(s string) string {
	if len(s) <= MaxLoggedBytes {
		return s
	}
	return s[:MaxLoggedBytes] + "...(truncated)"
}

// Short keeps a name readable in a message of bounded length: the Azure webhook's reserved volume names run to 63
// characters, most of them a hash.
func Short(name string) string {
	if len(name) <= 40 {
		return name
	}
	return CutUTF8(name, 37) + "..."
}

// CutUTF8 is s cut to at most n bytes without splitting a character: mutation runs before validation, so a name in a
// request may hold any UTF-8, and a warning must stay valid text.
func CutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
