package app

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// stamp sets the link-time variables for one test, as -ldflags -X would.
func stamp(t *testing.T, v, c string) {
	t.Helper()
	oldV, oldC := version, commit
	version, commit = v, c
	t.Cleanup(func() { version, commit = oldV, oldC })
}

func TestVersionPrintsTheStampedBuild(t *testing.T) {
	stamp(t, "v1.2.3-test", "0123456789abcdef")
	want := "flux-identity-webhook v1.2.3-test\ncommit: 0123456789abcdef\ngo: " + runtime.Version() + " " +
		runtime.GOOS + "/" + runtime.GOARCH + "\n"
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var stdout, stderr bytes.Buffer
		if code := Execute(t.Context(), args, &stdout, &stderr); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr.String())
		}
		if stdout.String() != want {
			t.Errorf("%v printed %q, want %q", args, stdout.String(), want)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := Execute(t.Context(), []string{"version", "-o", "json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("version -o json: exit %d: %s", code, stderr.String())
	}
	var got BuildInfo
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("version -o json is not JSON: %v\n%s", err, stdout.String())
	}
	if got != Build() || got.Version != "v1.2.3-test" || got.Commit != "0123456789abcdef" {
		t.Errorf("version -o json = %+v, want %+v", got, Build())
	}
}

func TestUnstampedBuildsSayWhatTheyAre(t *testing.T) {
	stamp(t, "", "")
	b := Build()
	// A test binary has no module version and, with -buildvcs=false, no revision: the fallbacks must show.
	if b.Version == "" || b.Commit == "" || b.GoVersion != runtime.Version() {
		t.Errorf("unstamped build info has empty fields: %+v", b)
	}
}

func TestServerAnnouncesItsBuild(t *testing.T) {
	stamp(t, "v9.8.7", "feedbeef")
	var lines []string
	log := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{})
	announceBuild(log)
	if len(lines) != 1 || !strings.Contains(lines[0], `"version"="v9.8.7"`) || !strings.Contains(lines[0], `"commit"="feedbeef"`) {
		t.Errorf("start-up log lines: %q", lines)
	}
	if got := testutil.ToFloat64(buildInfo.WithLabelValues("v9.8.7", "feedbeef", runtime.Version())); got != 1 {
		t.Errorf("fluxidentity_build_info{version=v9.8.7} = %v, want 1", got)
	}
	if n := testutil.CollectAndCount(buildInfo); n != 1 {
		t.Errorf("fluxidentity_build_info has %d series, want exactly the running build", n)
	}
}

// Errors and reports end their line on every stream, so nothing the CLI prints is glued to what follows it, whether
// the streams are joined by a terminal or captured apart and concatenated.
func TestEveryCLIErrorEndsItsLine(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, "bad.yaml", strings.Replace(goodPolicy, "clientID: 00000000-0000-0000-0000-000000000001",
		"clientID: not-a-uuid", 1))
	cases := map[string][]string{
		"policy lint with an invalid file":   {"policy", "lint", bad},
		"policy lint with a missing file":    {"policy", "lint", dir + "/missing.yaml"},
		"an unknown flag":                    {"policy", "lint", "--bogus", bad},
		"an unknown command":                 {"frobnicate"},
		"serve without its required flags":   {"serve"},
		"match-conditions without --policy":  {"policy", "match-conditions"},
		"match-conditions with a bad policy": {"policy", "match-conditions", "--policy", bad},
		"version with a bad output format":   {"version", "-o", "yaml"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Execute(t.Context(), args, &stdout, &stderr)
			if code == 0 {
				t.Fatalf("exit 0; the case must fail")
			}
			if stdout.Len()+stderr.Len() == 0 {
				t.Fatal("a failure printed nothing")
			}
			for stream, out := range map[string]string{"stdout": stdout.String(), "stderr": stderr.String()} {
				if out != "" && !strings.HasSuffix(out, "\n") {
					t.Errorf("%s does not end its line: %q", stream, out)
				}
				if strings.Contains(out, "\n\n") {
					t.Errorf("%s holds an empty line: %q", stream, out)
				}
			}
			joined := stdout.String() + stderr.String()
			for i, line := range strings.Split(joined, "\n") {
				if j := strings.Index(line, "Error:"); j > 0 {
					t.Errorf("line %d has \"Error:\" glued to other output: %q", i+1, line)
				}
			}
		})
	}
}
