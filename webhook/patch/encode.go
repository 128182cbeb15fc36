package patch

import (
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"unicode/utf8"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
)

// AppendString writes s as a JSON string the way encoding/json does: invalid UTF-8 becomes U+FFFD, control
// characters and the HTML-sensitive <, > and & are escaped, and so are U+2028 and U+2029.
func AppendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Append writes a JSON Patch as encoding/json writes []jsonpatch.Operation (TestAppendPatchMatchesEncodingJSON):
// by hand for the values patches are made of (strings, string maps, env vars and mounts), through encoding/json for
// anything else. Marshalling every operation through jsonpatch's MarshalJSON was most of what a patch cost.
func Append(b []byte, ops []jsonpatch.Operation) ([]byte, error) {
	return appendList(b, ops, appendOperation)
}

func appendOperation(b []byte, op jsonpatch.Operation) ([]byte, error) {
	b = append(b, `{"op":`...)
	b = AppendString(b, op.Operation)
	b = append(b, `,"path":`...)
	b = AppendString(b, op.Path)
	// jsonpatch.Operation.MarshalJSON: add and replace always carry a value, null included.
	if op.Value != nil || op.Operation == "add" || op.Operation == "replace" {
		b = append(b, `,"value":`...)
		var err error
		if b, err = appendValue(b, op.Value); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func appendValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return AppendString(b, v), nil
	case map[string]string:
		return appendMap(b, v, func(b []byte, s string) ([]byte, error) { return AppendString(b, s), nil })
	case map[string]any:
		return appendMap(b, v, appendValue)
	case []corev1.EnvVar:
		return appendList(b, v, appendEnvVar)
	case corev1.EnvVar:
		return appendEnvVar(b, v)
	case *corev1.EnvVar:
		return appendEnvVar(b, *v)
	case []corev1.VolumeMount:
		return appendList(b, v, appendVolumeMount)
	case corev1.VolumeMount:
		return appendVolumeMount(b, v)
	case *corev1.VolumeMount:
		return appendVolumeMount(b, *v)
	case []corev1.Volume:
		return appendList(b, v, appendVolume)
	case corev1.Volume:
		return appendVolume(b, v)
	case *corev1.Volume:
		return appendVolume(b, *v)
	}
	raw, err := json.Marshal(v)
	return append(b, raw...), err
}

func appendMap[V any](b []byte, m map[string]V, value func([]byte, V) ([]byte, error)) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = value(b, m[k]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func appendList[V any](b []byte, items []V, item func([]byte, V) ([]byte, error)) ([]byte, error) {
	if items == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = item(b, it); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

// appendEnvVar writes a literal variable by hand; one from a source goes through encoding/json.
func appendEnvVar(b []byte, e corev1.EnvVar) ([]byte, error) {
	if e.ValueFrom != nil {
		raw, err := json.Marshal(e)
		return append(b, raw...), err
	}
	b = append(b, `{"name":`...)
	b = AppendString(b, e.Name)
	if e.Value != "" {
		b = append(b, `,"value":`...)
		b = AppendString(b, e.Value)
	}
	return append(b, '}'), nil
}

// appendVolumeMount writes a mount by hand in corev1.VolumeMount's field order; one with a propagation setting goes
// through encoding/json.
func appendVolumeMount(b []byte, m corev1.VolumeMount) ([]byte, error) {
	if m.RecursiveReadOnly != nil || m.MountPropagation != nil {
		raw, err := json.Marshal(m)
		return append(b, raw...), err
	}
	b = append(b, `{"name":`...)
	b = AppendString(b, m.Name)
	if m.ReadOnly {
		b = append(b, `,"readOnly":true`...)
	}
	b = append(b, `,"mountPath":`...)
	b = AppendString(b, m.MountPath)
	if m.SubPath != "" {
		b = append(b, `,"subPath":`...)
		b = AppendString(b, m.SubPath)
	}
	if m.SubPathExpr != "" {
		b = append(b, `,"subPathExpr":`...)
		b = AppendString(b, m.SubPathExpr)
	}
	return append(b, '}'), nil
}

// appendVolume writes the volumes full injection adds, projections of ServiceAccount tokens and downward API files, by
// hand; any other volume, or one with a field those never set, goes through encoding/json.
func appendVolume(b []byte, v corev1.Volume) ([]byte, error) {
	if !tokenProjectionOnly(v) {
		raw, err := json.Marshal(v)
		return append(b, raw...), err
	}
	b = append(b, `{"name":`...)
	b = AppendString(b, v.Name)
	b = append(b, `,"projected":{"sources":`...)
	b, _ = appendList(b, v.Projected.Sources, appendProjection)
	if m := v.Projected.DefaultMode; m != nil {
		b = append(b, `,"defaultMode":`...)
		b = strconv.AppendInt(b, int64(*m), 10)
	}
	return append(b, "}}"...), nil
}

func appendProjection(b []byte, p corev1.VolumeProjection) ([]byte, error) {
	if t := p.ServiceAccountToken; t != nil {
		b = append(b, `{"serviceAccountToken":{`...)
		if t.Audience != "" {
			b = append(b, `"audience":`...)
			b = AppendString(b, t.Audience)
			b = append(b, ',')
		}
		if t.ExpirationSeconds != nil {
			b = append(b, `"expirationSeconds":`...)
			b = strconv.AppendInt(b, *t.ExpirationSeconds, 10)
			b = append(b, ',')
		}
		b = append(b, `"path":`...)
		b = AppendString(b, t.Path)
		return append(b, "}}"...), nil
	}
	b = append(b, `{"downwardAPI":{`...)
	if items := p.DownwardAPI.Items; len(items) > 0 {
		b = append(b, `"items":[`...)
		for i, f := range items {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"path":`...)
			b = AppendString(b, f.Path)
			if r := f.FieldRef; r != nil {
				b = append(b, `,"fieldRef":{`...)
				if r.APIVersion != "" {
					b = append(b, `"apiVersion":`...)
					b = AppendString(b, r.APIVersion)
					b = append(b, ',')
				}
				b = append(b, `"fieldPath":`...)
				b = AppendString(b, r.FieldPath)
				b = append(b, '}')
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, "}}"...), nil
}

// tokenProjectionOnly reports whether v is a projected volume whose every set field appendVolume writes: each source
// one ServiceAccount token or downward API files read from fields.
func tokenProjectionOnly(v corev1.Volume) bool {
	p := v.Projected
	if p == nil || !zeroBut(v.VolumeSource, func(s *corev1.VolumeSource) { s.Projected = nil }) ||
		!zeroBut(*p, func(p *corev1.ProjectedVolumeSource) { p.Sources, p.DefaultMode = nil, nil }) {
		return false
	}
	for _, src := range p.Sources {
		switch {
		case src.ServiceAccountToken != nil:
			if !zeroBut(src, func(s *corev1.VolumeProjection) { s.ServiceAccountToken = nil }) ||
				!zeroBut(*src.ServiceAccountToken, func(t *corev1.ServiceAccountTokenProjection) {
					t.Audience, t.ExpirationSeconds, t.Path = "", nil, ""
				}) {
				return false
			}
		case src.DownwardAPI != nil:
			if !zeroBut(src, func(s *corev1.VolumeProjection) { s.DownwardAPI = nil }) {
				return false
			}
			for _, f := range src.DownwardAPI.Items {
				if !zeroBut(f, func(f *corev1.DownwardAPIVolumeFile) { f.Path, f.FieldRef = "", nil }) {
					return false
				}
			}
		default:
			return false
		}
	}
	return true
}

// zeroBut reports whether v is the zero value once clear has zeroed the fields the caller writes.
func zeroBut[T any](v T, clear func(*T)) bool {
	clear(&v)
	return reflect.ValueOf(v).IsZero()
}

// AppendEnv writes a list of variables as encoding/json does: what full injection adds to a container.
func AppendEnv(b []byte, env []corev1.EnvVar) ([]byte, error) {
	return appendList(b, env, appendEnvVar)
}
