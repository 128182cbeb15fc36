package policy

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Problem is one finding about a policy file, positioned so an editor can jump to it:
// "FILE:LINE:COL: FIELD: MESSAGE".
type Problem struct {
	File    string
	Line    int
	Column  int
	Field   string // path in the document, e.g. identities[0].aws.roleARN; empty for document-level problems
	Message string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Line, p.Column)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// LoadError lists every problem that made a policy file unusable, in document order.
type LoadError struct {
	Problems []Problem
}

func (e *LoadError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// pos is a line and column in the source document (both 1-based).
type pos struct{ line, column int }

// positions find where a field path stands in the source: explicitly recorded places first (keys that are not
// fields, repeated keys, a second document), otherwise by walking the document's node tree. Walking only happens for
// the few paths that have findings, so a valid policy costs nothing here.
type positions struct {
	root     *yaml.Node
	explicit map[string]pos
	// tree, when set, builds root from the document the first time a finding needs it (the chunked decode keeps no
	// tree of the whole document).
	tree *lazyTree
}

type lazyTree struct {
	data   []byte
	root   *yaml.Node
	parsed bool
}

func (t *lazyTree) node() *yaml.Node {
	if !t.parsed {
		t.parsed = true
		var doc yaml.Node
		if yaml.Unmarshal(t.data, &doc) == nil {
			t.root = &doc
		}
	}
	return t.root
}

// of returns the position of path, or of its nearest ancestor that exists: a missing field is reported where its
// parent object starts.
func (ps positions) of(path string) pos {
	if p, ok := ps.explicit[path]; ok {
		return p
	}
	n := ps.root
	if n == nil && ps.tree != nil {
		n = ps.tree.node()
	}
	if n == nil {
		return ps.explicit[""]
	}
	found := pos{n.Line, n.Column}
	for _, seg := range splitPath(path) {
		n = resolve(n)
		var next *yaml.Node
		switch {
		case seg.index >= 0 && n.Kind == yaml.SequenceNode && seg.index < len(n.Content):
			next = n.Content[seg.index]
		case seg.index < 0 && n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == seg.name {
					next = n.Content[i+1]
					break
				}
			}
		}
		if next == nil {
			break
		}
		n = resolve(next)
		found = pos{n.Line, n.Column}
	}
	return found
}

// resolve steps through document and alias nodes to the node that holds the value.
func resolve(n *yaml.Node) *yaml.Node {
	for {
		switch {
		case n.Kind == yaml.DocumentNode && len(n.Content) > 0:
			n = n.Content[0]
		case n.Kind == yaml.AliasNode && n.Alias != nil:
			n = n.Alias
		default:
			return n
		}
	}
}

type pathSegment struct {
	name  string
	index int // -1 for a name
}

// splitPath turns "identities[2].aws.roleARN" into identities, [2], aws, roleARN.
func splitPath(path string) []pathSegment {
	var segs []pathSegment
	for path != "" {
		switch path[0] {
		case '.':
			path = path[1:]
		case '[':
			end := strings.IndexByte(path, ']')
			if end < 0 {
				return segs
			}
			i, err := strconv.Atoi(path[1:end])
			if err != nil {
				return segs
			}
			segs = append(segs, pathSegment{index: i})
			path = path[end+1:]
		default:
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			segs = append(segs, pathSegment{name: path[:end], index: -1})
			path = path[end:]
		}
	}
	return segs
}

// finding is a problem before it is placed in a file.
type finding struct {
	field   string
	message string
}

type findings []finding

func (fs *findings) add(field, format string, args ...any) {
	*fs = append(*fs, finding{field: field, message: fmt.Sprintf(format, args...)})
}

func (fs findings) place(file string, ps positions) []Problem {
	out := make([]Problem, 0, len(fs))
	for _, f := range fs {
		p := ps.of(f.field)
		out = append(out, Problem{File: file, Line: p.line, Column: p.column, Field: displayField(f.field), Message: f.message})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Line != out[j].Line {
			return out[i].Line < out[j].Line
		}
		return out[i].Column < out[j].Column
	})
	return out
}
