package pods

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// A mapped pod's volumes and containers are read twice: the review decode validates the whole body and keeps the lists
// raw, and full injection then reads them into views. Through encoding/json that second read validated the lists again
// and matched every key by reflection, which was most of what injecting a pod cost. listScanner is that second read for
// input already validated: it knows only the fields the views hold and skips everything else by counting brackets.
// Whatever is not plain, it leaves to the decoder (verdict.DecodeObject, the API server's: encoding/json but for case):
// a key that differs from a field's name only in case (an unknown field there, a field to encoding/json), an escaped
// or non-ASCII key, a repeated field (the last one wins, over what the first one filled), a null or a value of another
// type. On what it reads itself the views are encoding/json's (TestListScannerMatchesEncodingJSON, FuzzListScanner),
// and input the scanner does not expect costs only speed.

// listScanner reads JSON that encoding/json has validated. It never panics on other input; it stops and reports odd.
type listScanner struct {
	b   []byte
	i   int
	odd bool // something encoding/json must read
}

// scanList reads the raw JSON array raw with read (absent or null reads as a nil list); ok is false when the scan
// was odd and encoding/json must read the list instead.
func scanList[T any](raw []byte, read func(*listScanner, *T)) (list []T, ok bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, true
	}
	s := &listScanner{b: raw}
	list = nestedList(s, read)
	if s.ws(); s.i != len(s.b) {
		s.odd = true
	}
	return list, !s.odd
}

// countElements counts the elements of a raw JSON array without reading them; anything but an array counts 0.
func countElements(raw []byte) int {
	s := &listScanner{b: raw}
	n := 0
	if s.peek() == '[' {
		s.elements(func() {
			n++
			s.skip()
		})
	}
	return n
}

func (s *listScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek is the next byte after white space, 0 at the end.
func (s *listScanner) peek() byte {
	if s.ws(); s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *listScanner) expect(c byte) bool {
	if s.peek() == c {
		s.i++
		return true
	}
	s.odd = true
	return false
}

// elements calls read for each element of the array at the scanner.
func (s *listScanner) elements(read func()) {
	if !s.expect('[') {
		return
	}
	if s.peek() == ']' {
		s.i++
		return
	}
	for !s.odd {
		read()
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return
		default:
			s.odd = true
		}
	}
}

// fields reads the object at the scanner as encoding/json reads it into a struct whose fields are names (at most 32):
// read(i) reads the value of names[i], any other key's value is skipped. A key encoding/json might match otherwise
// (escaped, not ASCII, or equal to a name but for case) and a repeated name make the scan odd.
func (s *listScanner) fields(names []string, read func(i int)) {
	if !s.expect('{') {
		return
	}
	if s.peek() == '}' {
		s.i++
		return
	}
	var seen uint32
	for !s.odd {
		key := s.key()
		if !s.expect(':') {
			return
		}
		field := -1
		for i, n := range names {
			if string(key) == n {
				field = i
			} else if asciiEqualFold(key, n) {
				s.odd = true
				return
			}
		}
		switch {
		case field < 0:
			s.skip()
		case seen&(1<<field) != 0:
			s.odd = true
			return
		default:
			seen |= 1 << field
			read(field)
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return
		default:
			s.odd = true
		}
	}
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// key reads an object key: printable ASCII without escapes, or the scan is odd.
func (s *listScanner) key() []byte {
	if s.peek() != '"' {
		s.odd = true
		return nil
	}
	raw, plain := s.rawString()
	if !plain {
		s.odd = true
	}
	for _, c := range raw {
		if c >= utf8.RuneSelf {
			s.odd = true
		}
	}
	return raw
}

// rawString moves past the string at the scanner and returns what is between its quotes; plain is false when that
// holds an escape.
func (s *listScanner) rawString() (raw []byte, plain bool) {
	s.i++ // the opening quote
	start, plain := s.i, true
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '"':
			s.i++
			return s.b[start : s.i-1], plain
		case '\\':
			plain = false
			s.i++
		}
		s.i++
	}
	s.odd = true
	return nil, false
}

// str reads a string value. One with escapes or bytes outside ASCII is unquoted by encoding/json, which decides what
// invalid UTF-8 becomes.
func (s *listScanner) str() string {
	if s.peek() != '"' {
		s.odd = true
		return ""
	}
	start := s.i
	raw, plain := s.rawString()
	if plain {
		ascii := true
		for _, c := range raw {
			ascii = ascii && c < utf8.RuneSelf
		}
		if ascii {
			return string(raw)
		}
	}
	var v string
	if s.odd || json.Unmarshal(s.b[start:s.i], &v) != nil {
		s.odd = true
	}
	return v
}

func (s *listScanner) boolean() bool {
	s.ws()
	switch rest := s.b[s.i:]; {
	case bytes.HasPrefix(rest, []byte("true")):
		s.i += 4
		return true
	case bytes.HasPrefix(rest, []byte("false")):
		s.i += 5
		return false
	}
	s.odd = true
	return false
}

// integer reads a number that fits bits as encoding/json reads it into an int; anything else is odd.
func (s *listScanner) integer(bits int) int64 {
	s.ws()
	start := s.i
	s.skipLiteral()
	n, err := strconv.ParseInt(string(s.b[start:s.i]), 10, bits)
	if err != nil {
		s.odd = true
	}
	return n
}

// int32 reads an integer that must fit in 32 bits.
func (s *listScanner) int32() int32 {
	return int32(s.integer(32)) //nolint:gosec // G115: ParseInt with bitSize 32 keeps the value within int32, clamping it on overflow
}

// raw reads any value but null, as a json.RawMessage holds it.
func (s *listScanner) raw() json.RawMessage {
	s.ws()
	start := s.i
	s.skip()
	v := s.b[start:s.i]
	if string(v) == "null" {
		s.odd = true
	}
	return bytes.Clone(v)
}

// skip moves past one value.
func (s *listScanner) skip() {
	switch s.peek() {
	case '"':
		s.rawString()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				s.rawString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					s.i++
					return
				}
			}
			s.i++
		}
		s.odd = true
	case 0:
		s.odd = true
	default:
		s.skipLiteral()
	}
}

func (s *listScanner) skipLiteral() {
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			if s.i == start {
				s.odd = true
			}
			return
		}
		s.i++
	}
	if s.i == start {
		s.odd = true
	}
}

// The views, field by field: each reads exactly the fields its struct's json tags name.

func (s *listScanner) container(c *containerView) {
	s.fields([]string{"name", "env", "volumeMounts"}, func(i int) {
		switch i {
		case 0:
			c.Name = s.str()
		case 1:
			c.Env = nestedList(s, (*listScanner).env)
		case 2:
			c.VolumeMounts = nestedList(s, (*listScanner).mount)
		}
	})
}

func (s *listScanner) env(e *envView) {
	s.fields([]string{"name", "value", "valueFrom"}, func(i int) {
		switch i {
		case 0:
			e.Name = s.str()
		case 1:
			e.Value = s.str()
		case 2:
			e.ValueFrom = s.raw()
		}
	})
}

func (s *listScanner) mount(m *mountView) {
	s.fields([]string{"name", "mountPath", "readOnly", "subPath", "subPathExpr"}, func(i int) {
		switch i {
		case 0:
			m.Name = s.str()
		case 1:
			m.MountPath = s.str()
		case 2:
			m.ReadOnly = s.boolean()
		case 3:
			m.SubPath = s.str()
		case 4:
			m.SubPathExpr = s.str()
		}
	})
}

// volume reads a volume as volumeView.UnmarshalJSON does: its keys as a map's (exactly), Kind the least non-empty key
// other than name whose value is not null, and the projected source.
func (s *listScanner) volume(v *volumeView) {
	if !s.expect('{') {
		return
	}
	if s.peek() == '}' {
		s.i++
		return
	}
	var seen [4][]byte // a volume has a name and one source
	for n := 0; !s.odd; n++ {
		key := s.key()
		if !s.expect(':') {
			return
		}
		for _, k := range seen[:min(n, len(seen))] {
			if bytes.Equal(k, key) {
				s.odd = true
				return
			}
		}
		if n >= len(seen) {
			s.odd = true
			return
		}
		seen[n] = key
		switch {
		case string(key) == "name":
			v.Name = s.str()
		case s.peek() == 'n':
			s.odd = true // a null source: left to encoding/json
			return
		case string(key) == "projected":
			v.Projected = &projectedView{}
			s.projected(v.Projected)
		default:
			s.skip()
		}
		if string(key) != "name" && len(key) > 0 && (v.Kind == "" || string(key) < v.Kind) {
			v.Kind = string(key)
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return
		default:
			s.odd = true
		}
	}
}

func (s *listScanner) projected(p *projectedView) {
	s.fields([]string{"defaultMode", "sources"}, func(i int) {
		switch i {
		case 0:
			mode := s.int32()
			p.DefaultMode = &mode
		case 1:
			p.Sources = nestedList(s, (*listScanner).projection)
		}
	})
}

func (s *listScanner) projection(p *projectionView) {
	s.fields([]string{"serviceAccountToken", "downwardAPI"}, func(i int) {
		switch i {
		case 0:
			t := &tokenProjectionView{}
			p.ServiceAccountToken = t
			s.fields([]string{"audience", "expirationSeconds", "path"}, func(i int) {
				switch i {
				case 0:
					t.Audience = s.str()
				case 1:
					seconds := s.integer(64)
					t.ExpirationSeconds = &seconds
				case 2:
					t.Path = s.str()
				}
			})
		case 1:
			p.DownwardAPI = &struct {
				Items []downwardAPIFileView `json:"items"`
			}{}
			s.fields([]string{"items"}, func(int) {
				p.DownwardAPI.Items = nestedList(s, (*listScanner).downwardAPIFile)
			})
		}
	})
}

func (s *listScanner) downwardAPIFile(f *downwardAPIFileView) {
	s.fields([]string{"path", "fieldRef"}, func(i int) {
		switch i {
		case 0:
			f.Path = s.str()
		case 1:
			f.FieldRef = &struct {
				FieldPath string `json:"fieldPath"`
			}{}
			s.fields([]string{"fieldPath"}, func(int) { f.FieldRef.FieldPath = s.str() })
		}
	})
}

// nestedList reads the array at the scanner; a null is left to encoding/json.
func nestedList[T any](s *listScanner, read func(*listScanner, *T)) []T {
	list := []T{} // encoding/json makes [] an empty list, not a nil one
	s.elements(func() {
		list = append(list, *new(T))
		read(s, &list[len(list)-1])
	})
	return list
}
