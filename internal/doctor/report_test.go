package doctor

import (
	"bytes"
	"strings"
	"testing"
)

func TestWriteText(t *testing.T) {
	t.Run("every finding gets its own fix line naming its object, even where the fixes read alike", func(t *testing.T) {
		var out bytes.Buffer
		fix := "[no-static-git-credentials] spec.secretRef: remove it, set spec.provider: azure"
		report := Report{Findings: []Finding{
			{Check: CheckPod, Namespace: "ns", Name: "a", Problem: "x", Fix: "kubectl -n ns rollout restart deployment/d"},
			{Check: CheckAudit, Namespace: "team-a", Name: "GitRepository/one", Problem: "y", Fix: fix},
			{Check: CheckAudit, Namespace: "team-a", Name: "GitRepository/two", Problem: "y", Fix: fix},
		}}
		if err := WriteText(&out, report); err != nil {
			t.Fatal(err)
		}
		_, fixes, ok := strings.Cut(out.String(), "\nTo fix:\n")
		if !ok {
			t.Fatalf("no fix section:\n%s", out.String())
		}
		want := "  ns/a: kubectl -n ns rollout restart deployment/d\n" +
			"  team-a/GitRepository/one: " + fix + "\n" +
			"  team-a/GitRepository/two: " + fix + "\n"
		if fixes != want {
			t.Errorf("fixes:\n%s\nwant:\n%s", fixes, want)
		}
	})
	t.Run("an empty report says so", func(t *testing.T) {
		var out bytes.Buffer
		if err := WriteText(&out, Report{}); err != nil || out.String() != "No problems found.\n" {
			t.Errorf("printed %q (%v)", out.String(), err)
		}
	})
	t.Run("an incomplete report says where it stopped and does not claim the cluster is healthy", func(t *testing.T) {
		var out bytes.Buffer
		if err := WriteText(&out, Report{Notes: []string{"n"}, Incomplete: "list pods: context deadline exceeded"}); err != nil {
			t.Fatal(err)
		}
		want := "note: n\nincomplete: list pods: context deadline exceeded; what follows is what was found until then\n" +
			"No problems found in what was read.\n"
		if out.String() != want {
			t.Errorf("printed %q, want %q", out.String(), want)
		}
	})
}
