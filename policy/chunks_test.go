package policy

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestChunkedDecodeMatchesWholeDocument holds the item-by-item decode to the whole-document one: on the sample
// policies, generated large ones, and thousands of random mutations of them (lines dropped, doubled, re-indented,
// characters changed), both give the same File, or the same problems at the same lines, columns and fields.
func TestChunkedDecodeMatchesWholeDocument(t *testing.T) {
	var corpus []string
	for _, pattern := range []string{"../config/samples/*.yaml", "testdata/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, f := range files {
			if strings.HasSuffix(f, "kustomization.yaml") {
				continue
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			corpus = append(corpus, string(data))
		}
	}
	corpus = append(corpus, string(genPolicy(40, shapeExact)), string(genPolicy(40, shapeGlob)))
	if len(corpus) < 4 {
		t.Fatalf("only %d documents in the corpus", len(corpus))
	}
	r := rand.New(rand.NewPCG(17, 23))
	docs := append([]string{}, corpus...)
	mutations := 2000
	if raceEnabled {
		mutations = 200
	}
	for range mutations {
		docs = append(docs, mutate(r, corpus[r.IntN(len(corpus))]))
	}
	// More items than one parse takes (itemsPerParse), so that batch boundaries are crossed, mutations included.
	large := string(genPolicy(2*itemsPerParse+50, shapeGlob))
	docs = append(docs, large)
	for range mutations / 50 {
		docs = append(docs, mutate(r, large))
	}
	chunked := 0
	for i, doc := range docs {
		if keys, ok := splitTopLevel([]byte(doc)); ok {
			if decodeChunked([]byte(doc), keys, &decoder{ps: positions{explicit: map[string]pos{}}, fs: &findings{}}, &File{}) {
				chunked++
			}
		}
		chunking = true
		a, errA := Parse("p.yaml", []byte(doc), testNow)
		chunking = false
		b, errB := Parse("p.yaml", []byte(doc), testNow)
		chunking = true
		if (errA == nil) != (errB == nil) {
			t.Fatalf("document %d: chunked error %v, whole-document error %v\n%s", i, errA, errB, doc)
		}
		if errA != nil {
			var la, lb *LoadError
			if !errors.As(errA, &la) || !errors.As(errB, &lb) || !reflect.DeepEqual(la.Problems, lb.Problems) {
				t.Fatalf("document %d: problems differ\nchunked: %v\nwhole:   %v\n%s", i, errA, errB, doc)
			}
			continue
		}
		if !reflect.DeepEqual(a.Spec, b.Spec) || !reflect.DeepEqual(a.Warnings, b.Warnings) {
			t.Fatalf("document %d: decoded differently\n%s", i, doc)
		}
	}
	if chunked < len(docs)/3 {
		t.Errorf("only %d of %d documents took the chunked path: the comparison proves little", chunked, len(docs))
	}
	t.Logf("%d documents, %d decoded chunk by chunk", len(docs), chunked)
}

// mutate changes a document the way hand edits go wrong.
func mutate(r *rand.Rand, doc string) string {
	lines := strings.Split(doc, "\n")
	for range 1 + r.IntN(3) {
		i := r.IntN(len(lines))
		switch r.IntN(6) {
		case 0:
			lines = append(lines[:i], lines[i+1:]...)
		case 1:
			lines = append(lines[:i+1], lines[i:]...)
		case 2:
			lines[i] = "  " + lines[i]
		case 3:
			lines[i] = strings.TrimPrefix(lines[i], "  ")
		case 4:
			if len(lines[i]) > 0 {
				j := r.IntN(len(lines[i]))
				lines[i] = lines[i][:j] + string("x:-[]&*#\"'"[r.IntN(10)]) + lines[i][j+1:]
			}
		default:
			lines[i] += pickOne(r, " # comment", ": extra", "  ", "\t")
		}
		if len(lines) == 0 {
			lines = []string{""}
		}
	}
	return strings.Join(lines, "\n")
}

func pickOne(r *rand.Rand, xs ...string) string { return xs[r.IntN(len(xs))] }
