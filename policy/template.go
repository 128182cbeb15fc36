package policy

import (
	"bytes"
	"strings"
)

// Templates that cannot collide.
//
// A templated value may give two ServiceAccounts one identity only when they agree on every placeholder the template
// uses: role/flux-{namespace} is one role per namespace on purpose, but role/{namespace}-{serviceAccount} renders
// role/a-b-c for both a/b-c and a-b/c, two tenants on one role. distinctTemplate refuses such a template at load time.
//
// The rule. A namespace is made of [a-z0-9-] (a DNS label has no '.'), a ServiceAccount name of [a-z0-9.-]. Let the
// template hold {namespace} a times and {serviceAccount} b times.
//
// With one of the two (a or b is 0), however often it repeats, nothing collides: the output's length fixes the name's
// length, and then every character of it.
//
// With both, the two names are fixed once their lengths are, and the output's length gives one equation,
// a*len(ns) + b*len(sa) = len(output) - len(literals). The template is accepted when every output gives a second,
// independent one, in either of two ways:
//
//  1. An anchor after x {namespace} and y {serviceAccount} with x*b != y*a. Anchors are literals that stand at one
//     place of the output in any reading of it: a character neither name can hold ('/', '_', '@': the i-th such
//     character of the output is the template's i-th), and a '.' (a namespace holds none, and the output's count of
//     dots fixes how many each {serviceAccount} holds, so the i-th literal '.' is the same '.' of the output in any
//     reading). The start and the end are anchors too.
//  2. From an anchor, in either direction, a run of one placeholder (repeated, with literals it can hold in between)
//     that ends at a literal it cannot hold: that literal is the first such character of the output past the anchor,
//     so the run's length, and with it the placeholder's, is read off. {namespace}.{serviceAccount} is read from the
//     start, {serviceAccount}.{namespace} from the end.
//
// Otherwise the template is refused. The argument above makes the rule sound. It is exact when each placeholder occurs
// once: it accepts exactly when the literal between them holds a character a namespace cannot, and collisionExample
// builds a collision otherwise. With repeats, TestTemplateRuleMatchesRendering shows it exact on every template of up
// to five tokens. A longer one can be refused needlessly: of the six-token templates it refuses a few contrived ones
// that repeat both placeholders around two different literal characters, such as
// {namespace}{namespace}a{serviceAccount}-{serviceAccount}, where no two pairs of names of up to 24 characters
// collide. IAM role names ignore case, so literals are compared in lower case: an upper-case letter separates nothing.
func distinctTemplate(cloud Cloud, value, path string, errs *findings) bool {
	t, trivial := templateMarks(value)
	if trivial || distinct(t) {
		return true
	}
	example := ""
	if ns, sa, ns2, sa2, found := collisionExample(t); found {
		example = " (" + ns + "/" + sa + ", " + ns2 + "/" + sa2 + ")"
	}
	id, _, _ := strings.Cut(value, "@")
	if cloud == CloudGCP && strings.Contains(id, "{") && !strings.Contains(value[len(id):], "{") {
		errs.add(path, "two ServiceAccounts could share an account%s; an id has no separator: "+
			"keep one placeholder in it or move one to the project", example)
		return false
	}
	noun := "a role"
	if cloud == CloudGCP {
		noun = "an account"
	}
	errs.add(path, "two ServiceAccounts could share %s%s: separate the names with '.', e.g. %s.%s",
		noun, example, placeholderNamespace, placeholderServiceAccount)
	return false
}

// distinctRoleName applies the rule to an IAM role's name alone: role names are unique in an account whatever their
// path (arn:aws:iam::ACCOUNT:role/PATH/NAME), so role/{namespace}/flux gives every namespace the one role named flux.
// The name must hold every placeholder the ARN uses, and not collide by itself.
func distinctRoleName(arn, path string, errs *findings) bool {
	name := arn[strings.LastIndex(arn, "/")+1:]
	ns, sa := Placeholders(arn)
	nameNS, nameSA := Placeholders(name)
	if ns && !nameNS || sa && !nameSA {
		errs.add(path, "IAM role names are unique whatever the path: the name after the last '/' must hold every placeholder")
		return false
	}
	return distinctTemplate(CloudAWS, name, path, errs)
}

// Placeholders reports which placeholders a templated identity value uses.
func Placeholders(value string) (namespace, serviceAccount bool) {
	return strings.Contains(value, placeholderNamespace), strings.Contains(value, placeholderServiceAccount)
}

// Marks stand for the placeholders in a template being checked; no identity value holds these bytes.
const (
	markNamespace      = '\x01'
	markServiceAccount = '\x02'
)

var marks = strings.NewReplacer(placeholderNamespace, string(markNamespace),
	placeholderServiceAccount, string(markServiceAccount))

// templateMarks returns value in lower case with marks for its placeholders; trivial is true when it does not hold
// both placeholders, so it cannot collide.
func templateMarks(value string) (t []byte, trivial bool) {
	ns, sa := Placeholders(value)
	if !ns || !sa {
		return nil, true
	}
	return []byte(strings.ToLower(marks.Replace(value))), false
}

// inNamespace reports whether c can occur in a namespace; a ServiceAccount name can also hold '.'.
func inNamespace(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' }

func holds(mark, c byte) bool {
	return inNamespace(c) || mark == markServiceAccount && c == '.'
}

// distinct applies the rule above to a marked template holding both placeholders.
func distinct(t []byte) bool {
	a, b := bytes.Count(t, []byte{markNamespace}), bytes.Count(t, []byte{markServiceAccount})
	anchors := []int{-1, len(t)}
	alpha, beta := 0, 0
	for i, c := range t {
		switch {
		case c == markNamespace:
			alpha++
		case c == markServiceAccount:
			beta++
		case !inNamespace(c): // '.' or a character neither name holds
			if alpha*b != beta*a {
				return true
			}
			anchors = append(anchors, i)
		}
	}
	for _, i := range anchors {
		if endsRun(t, i, 1) || endsRun(t, i, -1) {
			return true
		}
	}
	return false
}

// endsRun reports whether, walking from anchor i in direction dir, a run of one placeholder ends at a literal that
// placeholder cannot hold. Literals before the run stand at fixed distances from the anchor.
func endsRun(t []byte, i, dir int) bool {
	var run byte
	for j := i + dir; j >= 0 && j < len(t); j += dir {
		switch c := t[j]; {
		case c == markNamespace || c == markServiceAccount:
			if run != 0 && run != c {
				return false
			}
			run = c
		case run != 0 && !holds(run, c):
			return true
		}
	}
	return false
}

// collisionExample returns two pairs that render the same value, for a refused template holding each placeholder
// once: with L the literal between them (which a namespace can hold), the first placeholder taken as "a" and the second
// as "b"+L+"c" renders like "a"+L+"b" and "c", e.g. a/b-c and a-b/c for {namespace}-{serviceAccount}.
func collisionExample(t []byte) (ns, sa, ns2, sa2 string, ok bool) {
	if bytes.Count(t, []byte{markNamespace}) != 1 || bytes.Count(t, []byte{markServiceAccount}) != 1 {
		return "", "", "", "", false
	}
	first := bytes.IndexAny(t, string([]byte{markNamespace, markServiceAccount}))
	last := bytes.LastIndexAny(t, string([]byte{markNamespace, markServiceAccount}))
	mid := string(t[first+1 : last])
	x, y, x2, y2 := "a", "b"+mid+"c", "a"+mid+"b", "c"
	if t[first] == markNamespace {
		return x, y, x2, y2, true
	}
	return y, x, y2, x2, true
}
