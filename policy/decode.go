package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"

	yaml "go.yaml.in/yaml/v3"
)

// decode parses one YAML document into a File, strictly: unknown or duplicate keys and wrong types are findings. The
// returned positions keep the node tree so that later validation findings can name a line and column too; nothing
// per field is recorded up front, which keeps loading a large policy lean.
func decode(data []byte) (*File, positions, findings) {
	if chunking {
		if keys, ok := splitTopLevel(data); ok {
			var fs findings
			ps := positions{explicit: map[string]pos{"": {1, 1}}, tree: &lazyTree{data: data}}
			f := &File{}
			if decodeChunked(data, keys, &decoder{ps: ps, fs: &fs}, f) {
				return f, ps, fs
			}
		}
	}
	var fs findings
	ps := positions{explicit: map[string]pos{"": {1, 1}}}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			fs.add("", "the file is empty: expected an %s document", Kind)
		} else {
			fs.add("", "%s", syntaxMessage(err))
			ps.explicit[""] = syntaxPos(err)
		}
		return nil, ps, fs
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		ps.explicit["$document2"] = pos{extra.Line, extra.Column}
		fs.add("$document2", "a policy file holds exactly one YAML document; remove the second one")
	case !errors.Is(err, io.EOF):
		// The decoder reads one document at a time: a broken second document is only seen here.
		ps.explicit["$document2"] = syntaxPos(err)
		fs.add("$document2", "%s", syntaxMessage(err))
	}

	ps.root = &doc
	f := &File{}
	d := &decoder{ps: ps, fs: &fs}
	d.value(&doc, "", reflect.ValueOf(f).Elem())
	return f, ps, fs
}

// syntaxMessage trims the "yaml: line N:" prefix of a parser error, since the position is reported separately.
func syntaxMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if strings.HasPrefix(msg, "line ") {
		if i := strings.Index(msg, ": "); i > 0 {
			return "invalid YAML: " + msg[i+2:]
		}
	}
	return "invalid YAML: " + msg
}

func syntaxPos(err error) pos {
	var line int
	if _, scanErr := fmt.Sscanf(strings.TrimPrefix(err.Error(), "yaml: "), "line %d:", &line); scanErr == nil {
		return pos{line, 1}
	}
	return pos{1, 1}
}

type decoder struct {
	ps positions
	fs *findings
}

// value decodes n into v; path names it in findings. It walks the node tree itself (rather than calling
// yaml's Decode) so that every finding carries the path and position of the exact field.
func (d *decoder) value(n *yaml.Node, path string, v reflect.Value) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return
		}
		d.value(n.Content[0], path, v)
		return
	case yaml.AliasNode:
		d.value(n.Alias, path, v)
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an explicit null leaves the zero value, like an absent key
	}

	switch v.Kind() {
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		d.value(n, path, elem.Elem())
		v.Set(elem)
	case reflect.Struct:
		d.object(n, path, v)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fs.add(path, "expected a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.value(item, fmt.Sprintf("%s[%d]", path, i), s.Index(i))
		}
		v.Set(s)
	case reflect.String:
		// Unquoted dates resolve to !!timestamp; they are still strings to us (exceptions[].expires).
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!timestamp") {
			d.fs.add(path, "expected a string, got %s", describe(n))
			return
		}
		v.Set(reflect.ValueOf(n.Value).Convert(v.Type()))
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			d.fs.add(path, "expected true or false, got %s", describe(n))
			return
		}
		b, _ := strconv.ParseBool(strings.ToLower(n.Value))
		v.SetBool(b)
	case reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			d.fs.add(path, "expected a whole number, got %s", describe(n))
			return
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil {
			d.fs.add(path, "number %s is out of range", n.Value)
			return
		}
		v.SetInt(i)
	default:
		panic(fmt.Sprintf("policy: decoder has no rule for %s", v.Type()))
	}
}

// object decodes a mapping into a struct, rejecting unknown and repeated keys.
func (d *decoder) object(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fs.add(path, "expected an object, got %s", describe(n))
		return
	}
	fields := yamlFields(v.Type())
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		child := key.Value
		if path != "" {
			child = path + "." + key.Value
		}
		if key.Kind != yaml.ScalarNode {
			d.ps.explicit[child] = pos{key.Line, key.Column}
			d.fs.add(path, "keys must be plain names (line %d)", key.Line)
			continue
		}
		idx, known := fields[key.Value]
		if !known {
			d.ps.explicit[child] = pos{key.Line, key.Column}
			d.fs.add(child, "unknown field %q%s", key.Value, suggest(key.Value, fields))
			continue
		}
		if seen[key.Value] {
			d.ps.explicit[child+"#dup"] = pos{key.Line, key.Column}
			d.fs.add(child+"#dup", "field %q is set twice", key.Value)
			continue
		}
		seen[key.Value] = true
		d.value(val, child, v.Field(idx))
	}
}

// fieldCache holds yamlFields per struct type: the decoder visits the same few types tens of thousands of times.
var fieldCache sync.Map // reflect.Type -> map[string]int

// yamlFields maps each YAML key of a struct type to its field index.
func yamlFields(t reflect.Type) map[string]int {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]int)
	}
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			m[name] = i
		}
	}
	fieldCache.Store(t, m)
	return m
}

// suggest names a known key that differs from the unknown one only by case: the most common slip (roleArn).
func suggest(key string, fields map[string]int) string {
	for k := range fields {
		if strings.EqualFold(k, key) {
			return fmt.Sprintf(" (did you mean %q?)", k)
		}
	}
	return ""
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "an object"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.Tag {
	case "!!str":
		return fmt.Sprintf("string %q", n.Value)
	case "!!int", "!!float":
		return "number " + n.Value
	case "!!bool":
		return "boolean " + n.Value
	}
	return fmt.Sprintf("%q", n.Value)
}

// displayField turns an internal path into the one reported: "#dup" keeps a repeated key's own position and
// "$document2" a second document's; neither is a field people can look up.
func displayField(path string) string {
	path = strings.TrimSuffix(path, "#dup")
	if strings.HasPrefix(path, "$") {
		return ""
	}
	return path
}
