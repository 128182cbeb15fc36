package policy

import (
	"fmt"
	"sort"
	"strings"
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

// positions maps field paths to where their values stand in the source.
type positions map[string]pos

// of returns the position of path, or of its nearest ancestor that has one: a missing field is reported where its
// parent object starts.
func (ps positions) of(path string) pos {
	for {
		if p, ok := ps[path]; ok {
			return p
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return ps[""]
		}
		path = path[:i]
	}
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
