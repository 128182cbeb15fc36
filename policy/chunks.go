package policy

import (
	"bytes"
	"reflect"
	"regexp"
	"strconv"

	yaml "go.yaml.in/yaml/v3"
)

// A policy of ten thousand entries is a YAML document of a few megabytes, and yaml.v3 turns a document into a tree of
// nodes (about 150 bytes each) before anything is decoded: most of what loading costs at its peak. Policies are
// written in block style, one list item after the other, so the common shape is decoded one top-level key and one
// list item at a time, each from a node tree of its own that is garbage as soon as it is decoded. The whole tree is
// built only when a finding must be placed on a line (positions.root). Anything outside that shape (flow style at the
// top, anchors and aliases, tags, merge keys, several documents) takes the whole-document path, which decodes the
// same File with the same findings (TestChunkedDecodeMatchesWholeDocument).

// chunking is off in tests that compare both paths.
var chunking = true

// itemsPerParse is how many list items share one node tree.
const itemsPerParse = 200

// chunkedLists are the top-level lists decoded item by item.
var chunkedLists = map[string]bool{"identities": true, "mandates": true, "exceptions": true}

// notChunkable spots what makes a document unsafe to split by lines: anchors, aliases, tags, merge keys, document
// markers, and a top-level line that is not a plain key. False alarms only cost the faster path.
var notChunkable = regexp.MustCompile(`(^|[\s\[\{,])[&*!][^\s\]\},]|<<\s*:|(?m:^(---|\.\.\.)(\s|$))|(?m:^[^\sa-zA-Z#])`)

// topKey is a top-level key and the lines that hold it and its value.
type topKey struct {
	key        string
	line       int // 1-based line of the key
	start, end int // byte range of the key's lines in the document
}

// splitTopLevel finds the top-level keys of a block-style document, or says it cannot.
func splitTopLevel(data []byte) ([]topKey, bool) {
	if notChunkable.Match(data) {
		return nil, false
	}
	var keys []topKey
	line, off := 0, 0
	for off < len(data) {
		next := bytes.IndexByte(data[off:], '\n')
		end := len(data)
		if next >= 0 {
			end = off + next + 1
		}
		line++
		l := data[off:end]
		if len(l) > 0 && l[0] != ' ' && l[0] != '\t' && l[0] != '#' && l[0] != '\n' && l[0] != '\r' {
			colon := bytes.IndexByte(l, ':')
			if colon <= 0 || !plainKey(l[:colon]) {
				return nil, false
			}
			if len(keys) > 0 {
				keys[len(keys)-1].end = off
			}
			keys = append(keys, topKey{key: string(l[:colon]), line: line, start: off})
		} else if len(keys) == 0 && len(bytes.TrimSpace(l)) > 0 && l[0] != '#' {
			return nil, false // an indented line before any key
		}
		off = end
	}
	if len(keys) == 0 {
		return nil, false
	}
	keys[len(keys)-1].end = len(data)
	return keys, true
}

func plainKey(b []byte) bool {
	for _, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// decodeChunked decodes a document split by splitTopLevel into f. ok is false when a chunk does not parse on its own:
// the whole-document path then reports the syntax error where it really is.
func decodeChunked(data []byte, keys []topKey, d *decoder, f *File) (ok bool) {
	root := reflect.ValueOf(f).Elem()
	fields := yamlFields(root.Type())
	seen := map[string]bool{}
	for _, k := range keys {
		text := data[k.start:k.end]
		if seen[k.key] {
			d.ps.explicit[k.key+"#dup"] = pos{k.line, 1}
			d.fs.add(k.key+"#dup", "field %q is set twice", k.key)
			continue
		}
		seen[k.key] = true
		idx, known := fields[k.key]
		if !known || !chunkedLists[k.key] {
			n, parsed := parseChunk(text, k.line)
			if !parsed {
				return false
			}
			if n != nil {
				d.object(n, "", root) // a one-key mapping: unknown keys and wrong types are found as usual
			}
			continue
		}
		items, ok := splitItems(text, k.line)
		if !ok {
			return false
		}
		list := root.Field(idx)
		list.Set(reflect.MakeSlice(list.Type(), len(items), len(items)))
		// Items are parsed a batch at a time: a parser costs a few kilobytes to set up, a batch's tree little.
		for first := 0; first < len(items); first += itemsPerParse {
			last := min(first+itemsPerParse, len(items)) - 1
			n, parsed := parseChunk(text[items[first].start:items[last].end], items[first].line)
			if !parsed || n == nil || n.Kind != yaml.SequenceNode || len(n.Content) != last-first+1 {
				return false
			}
			for j, item := range n.Content {
				d.value(item, k.key+"["+strconv.Itoa(first+j)+"]", list.Index(first+j))
			}
		}
	}
	return true
}

// splitItems splits a top-level key holding a block sequence into its items, as byte ranges of text; ok is false for
// any other shape.
func splitItems(text []byte, firstLine int) ([]topKey, bool) {
	nl := bytes.IndexByte(text, '\n')
	if nl < 0 {
		return nil, false // "identities: [...]" on one line, or an empty list: not worth splitting
	}
	head := bytes.TrimSpace(text[:nl])
	if i := bytes.IndexByte(head, '#'); i >= 0 {
		head = bytes.TrimSpace(head[:i])
	}
	if !bytes.HasSuffix(head, []byte(":")) || bytes.IndexByte(head, ':') != len(head)-1 {
		return nil, false // a value on the key's line
	}
	var items []topKey
	indent := -1
	line, off := firstLine, nl+1
	for off < len(text) {
		next := bytes.IndexByte(text[off:], '\n')
		end := len(text)
		if next >= 0 {
			end = off + next + 1
		}
		line++
		l := text[off:end]
		trimmed := bytes.TrimLeft(l, " ")
		ind := len(l) - len(trimmed)
		blank := len(bytes.TrimSpace(trimmed)) == 0 || trimmed[0] == '#'
		switch {
		case blank:
		case indent < 0:
			if trimmed[0] != '-' {
				return nil, false
			}
			indent = ind
			items = append(items, topKey{line: line, start: off})
		case ind < indent:
			return nil, false
		case ind == indent:
			if trimmed[0] != '-' || len(trimmed) > 1 && trimmed[1] != ' ' && trimmed[1] != '\n' && trimmed[1] != '\r' {
				return nil, false
			}
			items[len(items)-1].end = off
			items = append(items, topKey{line: line, start: off})
		}
		off = end
	}
	if len(items) == 0 {
		return nil, false
	}
	items[len(items)-1].end = len(text)
	return items, true
}

// parseChunk parses part of the document into its own node tree, with the lines it has in the whole document. A
// chunk of only comments gives nil.
func parseChunk(text []byte, firstLine int) (*yaml.Node, bool) {
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil {
		return nil, false
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, true
	}
	shiftLines(doc.Content[0], firstLine-1)
	return doc.Content[0], true
}

func shiftLines(n *yaml.Node, by int) {
	n.Line += by
	for _, c := range n.Content {
		shiftLines(c, by)
	}
}
