// Package promql reads the metric selectors out of PromQL expressions, as far as needed to hold alert rules and
// dashboards to what a server really exports: which metrics an expression selects, with which label matchers, and
// which labels it groups by. It is a lexer with PromQL's shapes (strings, matchers, ranges, aggregations, grouping
// clauses), not an evaluator; it refuses what it cannot read (unbalanced brackets, an unterminated string).
package promql

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// Expr is what an expression selects.
type Expr struct {
	Selectors []Selector
	// Grouping holds the labels of by, without, on, ignoring, group_left and group_right clauses.
	Grouping []string
}

// Selector is one metric name with its label matchers.
type Selector struct {
	Metric   string
	Matchers []Matcher
}

// Matcher is label op value, op one of = != =~ !~.
type Matcher struct {
	Label, Op, Value string
}

var (
	aggregations = []string{"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
		"bottomk", "topk", "quantile", "limitk", "limit_ratio"}
	groupingKeywords = []string{"by", "without", "on", "ignoring", "group_left", "group_right"}
	otherKeywords    = []string{"bool", "and", "or", "unless", "offset", "atan2", "inf", "nan"}
)

// Parse reads an expression.
func Parse(expr string) (Expr, error) {
	l := &lexer{s: expr}
	var out Expr
	depth := 0
	for {
		l.skipSpace()
		if l.done() {
			break
		}
		c := l.peek()
		switch {
		case c == '(':
			depth++
			l.i++
		case c == ')':
			if depth--; depth < 0 {
				return out, fmt.Errorf("unbalanced ')' at %d in %q", l.i, expr)
			}
			l.i++
		case c == '[':
			if err := l.skipRange(); err != nil {
				return out, err
			}
		case c == '{':
			// A selector without a name: {__name__="x"}.
			m, err := l.matchers()
			if err != nil {
				return out, err
			}
			sel := Selector{Matchers: m}
			for _, mm := range m {
				if mm.Label == "__name__" && mm.Op == "=" {
					sel.Metric = mm.Value
				}
			}
			out.Selectors = append(out.Selectors, sel)
		case c == '"' || c == '\'' || c == '`':
			if _, err := l.str(); err != nil {
				return out, err
			}
		case isIdentStart(c):
			id := l.ident()
			l.skipSpace()
			next := byte(0)
			if !l.done() {
				next = l.peek()
			}
			lower := strings.ToLower(id)
			switch {
			case slices.Contains(groupingKeywords, lower):
				if next == '(' {
					labels, err := l.labelList()
					if err != nil {
						return out, err
					}
					out.Grouping = append(out.Grouping, labels...)
				}
			case slices.Contains(aggregations, lower), slices.Contains(otherKeywords, lower):
			case next == '(':
				// a function call: its arguments are read as the loop goes on
			default:
				sel := Selector{Metric: id}
				if next == '{' {
					m, err := l.matchers()
					if err != nil {
						return out, err
					}
					sel.Matchers = m
				}
				out.Selectors = append(out.Selectors, sel)
			}
		case c >= '0' && c <= '9' || c == '.':
			l.number()
		case c == '$':
			return out, fmt.Errorf("unsubstituted variable at %d in %q", l.i, expr)
		case strings.IndexByte("+-*/%^=!<>,@:", c) >= 0:
			l.i++
		default:
			return out, fmt.Errorf("unexpected %q at %d in %q", c, l.i, expr)
		}
	}
	if depth != 0 {
		return out, fmt.Errorf("unbalanced '(' in %q", expr)
	}
	if len(out.Selectors) == 0 {
		return out, fmt.Errorf("%q selects no metric", expr)
	}
	return out, nil
}

type lexer struct {
	s string
	i int
}

func (l *lexer) done() bool { return l.i >= len(l.s) }
func (l *lexer) peek() byte { return l.s[l.i] }

func (l *lexer) skipSpace() {
	for !l.done() && strings.IndexByte(" \t\r\n", l.peek()) >= 0 {
		l.i++
	}
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func (l *lexer) ident() string {
	start := l.i
	for !l.done() && (isIdentStart(l.peek()) || (l.peek() >= '0' && l.peek() <= '9')) {
		l.i++
	}
	return l.s[start:l.i]
}

func (l *lexer) number() {
	for !l.done() && strings.IndexByte("0123456789.eE+-xXabcdefABCDEFsmhdwy", l.peek()) >= 0 {
		l.i++
	}
}

// str reads a quoted string and returns its value (escapes of double and single quoted strings resolved).
func (l *lexer) str() (string, error) {
	q := l.peek()
	l.i++
	var b strings.Builder
	for !l.done() {
		c := l.peek()
		l.i++
		switch {
		case c == q:
			return b.String(), nil
		case c == '\\' && q != '`' && !l.done():
			b.WriteByte(l.peek())
			l.i++
		default:
			b.WriteByte(c)
		}
	}
	return "", errors.New("unterminated string")
}

// skipRange skips a range or subquery: [5m], [1h:5m].
func (l *lexer) skipRange() error {
	end := strings.IndexByte(l.s[l.i:], ']')
	if end < 0 {
		return fmt.Errorf("unterminated '[' in %q", l.s)
	}
	if strings.Contains(l.s[l.i:l.i+end], "$") {
		return fmt.Errorf("unsubstituted variable in %q", l.s[l.i:l.i+end+1])
	}
	l.i += end + 1
	return nil
}

// matchers reads {label op "value", ...}.
func (l *lexer) matchers() ([]Matcher, error) {
	l.i++ // '{'
	var out []Matcher
	for {
		l.skipSpace()
		if l.done() {
			return nil, errors.New("unterminated '{'")
		}
		if l.peek() == '}' {
			l.i++
			return out, nil
		}
		if l.peek() == ',' {
			l.i++
			continue
		}
		if !isIdentStart(l.peek()) {
			return nil, fmt.Errorf("unexpected %q in a label matcher of %q", l.peek(), l.s)
		}
		m := Matcher{Label: l.ident()}
		l.skipSpace()
		for _, op := range []string{"=~", "!~", "!=", "="} {
			if strings.HasPrefix(l.s[l.i:], op) {
				m.Op = op
				l.i += len(op)
				break
			}
		}
		if m.Op == "" {
			return nil, fmt.Errorf("label %s has no operator in %q", m.Label, l.s)
		}
		l.skipSpace()
		if l.done() || strings.IndexByte("\"'`", l.peek()) < 0 {
			return nil, fmt.Errorf("label %s has no quoted value in %q", m.Label, l.s)
		}
		v, err := l.str()
		if err != nil {
			return nil, err
		}
		m.Value = v
		out = append(out, m)
	}
}

// labelList reads (a, b, c).
func (l *lexer) labelList() ([]string, error) {
	l.i++ // '('
	var out []string
	for {
		l.skipSpace()
		if l.done() {
			return nil, errors.New("unterminated label list")
		}
		switch c := l.peek(); {
		case c == ')':
			l.i++
			return out, nil
		case c == ',':
			l.i++
		case isIdentStart(c):
			out = append(out, l.ident())
		default:
			return nil, fmt.Errorf("unexpected %q in a label list of %q", c, l.s)
		}
	}
}

// Family is what one exported metric family offers a query: its type and, per label, the values seen.
type Family struct {
	Name   string
	Type   dto.MetricType
	Labels map[string]map[string]bool
}

// Families indexes scraped metric families. targetLabels are the labels a scrape attaches to every series (the
// Prometheus operator's namespace, pod, service, ...); a scraped label of the same name becomes exported_<name>, as
// Prometheus does without honor_labels.
func Families(scraped map[string]*dto.MetricFamily, targetLabels map[string]string) map[string]Family {
	out := map[string]Family{}
	for name, mf := range scraped {
		f := Family{Name: name, Type: mf.GetType(), Labels: map[string]map[string]bool{}}
		add := func(k, v string) {
			if f.Labels[k] == nil {
				f.Labels[k] = map[string]bool{}
			}
			f.Labels[k][v] = true
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				k := lp.GetName()
				if _, clash := targetLabels[k]; clash {
					k = "exported_" + k
				}
				add(k, lp.GetValue())
			}
			for k, v := range targetLabels {
				add(k, v)
			}
		}
		out[name] = f
	}
	return out
}

// Check holds an expression to the families a server exports: every selected metric exists (a histogram's
// _bucket, _sum and _count included), every matcher names a label it has, an equality matcher a value some series
// has, a regular expression matcher matches one; every grouping label is one of the selected metrics' (or le).
func Check(e Expr, families map[string]Family) []error {
	var errs []error
	labels := map[string]bool{}
	for _, s := range e.Selectors {
		f, suffix, ok := resolve(s.Metric, families)
		if !ok {
			errs = append(errs, fmt.Errorf("metric %s is not exported", s.Metric))
			continue
		}
		for l := range f.Labels {
			labels[l] = true
		}
		if suffix == "_bucket" {
			labels["le"] = true
		}
		for _, m := range s.Matchers {
			if m.Label == "__name__" {
				continue
			}
			values, ok := f.Labels[m.Label]
			if !ok {
				errs = append(errs, fmt.Errorf("%s has no label %s", s.Metric, m.Label))
				continue
			}
			switch m.Op {
			case "=":
				if !values[m.Value] {
					errs = append(errs, fmt.Errorf("%s has no series with %s=%q (values: %v)", s.Metric, m.Label, m.Value, keys(values)))
				}
			case "=~":
				re, err := regexp.Compile("^(?:" + m.Value + ")$")
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %s=~%q: %w", s.Metric, m.Label, m.Value, err))
					continue
				}
				if !slices.ContainsFunc(keys(values), re.MatchString) {
					errs = append(errs, fmt.Errorf("%s has no series with %s=~%q (values: %v)", s.Metric, m.Label, m.Value, keys(values)))
				}
			}
		}
	}
	for _, g := range e.Grouping {
		if !labels[g] {
			errs = append(errs, fmt.Errorf("grouping label %s is on none of the selected metrics", g))
		}
	}
	return errs
}

func resolve(name string, families map[string]Family) (Family, string, bool) {
	if f, ok := families[name]; ok {
		return f, "", true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		if f, ok := families[base]; ok && (f.Type == dto.MetricType_HISTOGRAM || f.Type == dto.MetricType_SUMMARY) {
			return f, suffix, true
		}
	}
	return Family{}, "", false
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
