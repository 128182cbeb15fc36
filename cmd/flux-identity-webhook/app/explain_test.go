package app

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

const explainManifest = `# a comment-only document is skipped
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: helm-controller
  namespace: flux-system
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: intruder
  namespace: flux-system
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::111122223333:role/x
---
apiVersion: v1
kind: Pod
metadata:
  generateName: src-
spec:
  serviceAccountName: source-controller
  containers: [{name: m, image: x}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: flux-system}
`

func TestExplain(t *testing.T) {
	policyFile := "../../../webhook/testdata/policy.yaml"
	manifest := writeFile(t, "m.yaml", explainManifest)

	t.Run("text output names the decision, the entry and the patch, and a denial exits 1", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		code := Execute(t.Context(), []string{"policy", "explain", "--policy", policyFile, "-f", manifest,
			"-n", "flux-system"}, &stdout, &stderr)
		if code != 1 {
			t.Fatalf("exit %d, want 1 (one object is denied); stderr: %s", code, stderr.String())
		}
		out := stdout.String()
		for _, want := range []string{
			"ServiceAccount flux-system/helm-controller: patched (identity azure-annotate)\n",
			`  add /metadata/labels {"azure.workload.identity/use":"true"}`,
			"ServiceAccount flux-system/intruder: denied\n",
			"  ✗ [ownership] annotation eks.amazonaws.com/role-arn is reserved: remove it",
			"Pod flux-system/src-: patched (identity aws-full)\n",
			"  add /spec/volumes [{\"name\":\"aws-iam-token\"",
			"ConfigMap flux-system/c: not-handled\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("warn mode admits with the same text as warnings and exits 0", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		code := Execute(t.Context(), []string{"policy", "explain", "--policy", policyFile, "-f", manifest,
			"--mode", "warn", "-o", "json"}, &stdout, &stderr)
		if code != 0 {
			t.Fatalf("exit %d, want 0; stderr: %s", code, stderr.String())
		}
		var got []Explanation
		if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, stdout.String())
		}
		if len(got) != 4 {
			t.Fatalf("%d explanations, want 4", len(got))
		}
		intruder := got[1]
		if intruder.Decision != "warned" || len(intruder.Warnings) != 1 ||
			!strings.HasPrefix(intruder.Warnings[0], "[ownership] annotation eks.amazonaws.com/role-arn is reserved") {
			t.Errorf("intruder: %+v", intruder)
		}
		if pod := got[2]; pod.Namespace != "default" || pod.Decision != "allowed" {
			t.Errorf("pod without namespace takes -n (default) where source-controller is unmapped: %+v", pod)
		}
	})

	t.Run("reads stdin with -f -", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		cmd := NewCommand(&stdout, &stderr)
		cmd.SetIn(strings.NewReader("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: helm-controller, namespace: flux-system}\n"))
		cmd.SetArgs([]string{"policy", "explain", "--policy", policyFile, "-f", "-"})
		if err := cmd.ExecuteContext(t.Context()); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stdout.String(), "helm-controller: patched") {
			t.Errorf("stdout: %s", stdout.String())
		}
	})
}
