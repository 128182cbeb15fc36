package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist"
	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist/pagingfake"
	"github.com/fluxidentity/flux-identity-webhook/policy/trust"
)

func TestDoctorOptionsValidate(t *testing.T) {
	ok := DoctorOptions{PolicyFile: "p.yaml", Output: trust.FormatYAML, Cluster: defaultClusterOptions()}
	if err := ok.Validate(); err != nil {
		t.Errorf("defaults with a policy: %v", err)
	}
	bad := DoctorOptions{Output: "table"}
	err := bad.Validate()
	for _, want := range []string{"--policy is required", `-o must be text, json or yaml, got "table"`,
		"--timeout must be positive", "--chunk-size must be positive"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// doctorCluster is team-a with a ServiceAccount that lacks its role and three GitRepositories that keep a Secret.
func doctorCluster() []client.Object {
	return append([]client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "flux-source"}},
	}, staticRepos(3)...)
}

func TestRunDoctor(t *testing.T) {
	p := wiringSetup(t)
	o := DoctorOptions{PolicyFile: "wiring.yaml", Output: trust.FormatText, Cluster: defaultClusterOptions()}
	o.Cluster.ChunkSize = 2
	t.Run("text output gives every finding its own fix line; exit 1; paged by --chunk-size", func(t *testing.T) {
		c := pagingfake.New(clusterScheme, doctorCluster()...)
		var stdout, stderr bytes.Buffer
		err := runDoctor(t.Context(), o, p, c, &stdout, &stderr)
		if exitCode(err) != 1 || err.Error() != "4 problems found" {
			t.Fatalf("err = %v", err)
		}
		_, fixes, found := strings.Cut(stdout.String(), "\nTo fix:\n")
		if !found || strings.Count(fixes, "\n") != 4 ||
			!strings.Contains(fixes, "  team-a/flux-source: kubectl -n team-a annotate serviceaccount flux-source") {
			t.Errorf("stdout:\n%s", stdout.String())
		}
		for i := range 3 {
			if !strings.Contains(fixes, fmt.Sprintf("  team-a/GitRepository/repo-%d: [no-static-git-credentials] ", i)) {
				t.Errorf("no fix line for repo-%d:\n%s", i, fixes)
			}
		}
		for _, call := range c.Calls() {
			if call.Limit != 2 {
				t.Errorf("%+v not paged by --chunk-size", call)
			}
		}
		if stderr.Len() != 0 {
			t.Errorf("progress written to a stderr that is not a terminal: %q", stderr.String())
		}
	})
	t.Run("a deadline part-way prints the findings so far as JSON, marked incomplete, and exits 2", func(t *testing.T) {
		c := pagingfake.New(clusterScheme, doctorCluster()...)
		c.Fail = deadlineAt("Pod")
		js := o
		js.Output = trust.FormatJSON
		var stdout, stderr bytes.Buffer
		err := runDoctor(t.Context(), js, p, c, &stdout, &stderr)
		if exitCode(err) != 2 || !strings.HasPrefix(err.Error(), "gave up after --timeout 1m0s while reading pods: 0 read") {
			t.Fatalf("err = %v", err)
		}
		var report struct {
			Findings   []struct{ Check, Name string }
			Incomplete string
		}
		if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
			t.Fatalf("%v:\n%s", err, stdout.String())
		}
		// The Flux objects (audited) and the ServiceAccounts are read before the pods.
		if len(report.Findings) != 4 || report.Findings[0].Name != "flux-source" ||
			!strings.HasPrefix(report.Incomplete, "list pods: ") {
			t.Errorf("report %+v", report)
		}
	})
}

func TestProgressLine(t *testing.T) {
	got := progressLine(kubelist.Progress{Step: "GitRepository", Read: 3500, Requests: 12})
	if got != "reading GitRepository: 3500 read (12 requests)" {
		t.Errorf("progress line %q", got)
	}
	onPage, done := progress(&bytes.Buffer{}, "doctor")
	done()
	if onPage != nil {
		t.Error("progress shown on a writer that is not a terminal")
	}
}
