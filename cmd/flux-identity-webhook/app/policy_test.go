package app

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const goodPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: lint
identities:
  - name: flux
    namespaces: [flux-system]
    serviceAccounts: [source-controller]
    azure:
      clientID: 00000000-0000-0000-0000-000000000001
      tenantID: 00000000-0000-0000-0000-0000000000aa
`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyLint(t *testing.T) {
	soon := time.Now().Add(3 * 24 * time.Hour).UTC().Format("2006-01-02")
	tests := map[string]struct {
		files      map[string]string
		wantCode   int
		wantStdout []string
		wantStderr []string
	}{
		"a valid policy exits 0 and prints nothing": {
			files:    map[string]string{"good.yaml": goodPolicy},
			wantCode: 0,
		},
		"a bad value exits 1 with FILE:LINE:COL: field: message": {
			files: map[string]string{"bad.yaml": strings.Replace(goodPolicy,
				"clientID: 00000000-0000-0000-0000-000000000001", "clientID: not-a-uuid", 1)},
			wantCode: 1,
			wantStdout: []string{"bad.yaml:10:17: identities[0].azure.clientID: \"not-a-uuid\" is not a UUID\n" +
				"1 of 1 policy files are invalid\n"},
		},
		"an unknown field names its key's position": {
			files:      map[string]string{"typo.yaml": strings.Replace(goodPolicy, "    azure:", "    azur:", 1)},
			wantCode:   1,
			wantStdout: []string{"typo.yaml:9:5: identities[0].azur: unknown field \"azur\""},
		},
		"every file is checked, not only the first bad one": {
			files: map[string]string{
				"a.yaml": "kind: nope\n",
				"b.yaml": goodPolicy,
				"c.yaml": strings.Replace(goodPolicy, "name: flux\n", "name: Flux_Controllers\n", 1),
			},
			wantCode: 1,
			wantStdout: []string{"a.yaml:1:1: apiVersion:", "c.yaml:6:11: identities[0].name:",
				"\n2 of 3 policy files are invalid\n"},
		},
		"an exception expiring soon is a warning on stderr and still exits 0": {
			files: map[string]string{"soon.yaml": goodPolicy + `exceptions:
  - namespace: flux-system
    kind: GitRepository
    name: legacy
    reason: migration PLAT-1
    expires: "` + soon + `"
`},
			wantCode:   0,
			wantStderr: []string{"warning: ", "soon.yaml:", "expires on " + soon},
		},
		"a missing file exits 1 and names it": {
			files:      map[string]string{},
			wantCode:   1,
			wantStdout: []string{"missing.yaml: read policy"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"policy", "lint"}
			for f, content := range tc.files {
				p := filepath.Join(dir, f)
				if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, p)
			}
			if len(tc.files) == 0 {
				args = append(args, filepath.Join(dir, "missing.yaml"))
			}
			var stdout, stderr bytes.Buffer
			code := Execute(t.Context(), args, &stdout, &stderr)
			if code != tc.wantCode {
				t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, stdout.String(), stderr.String())
			}
			if tc.wantStdout == nil && stdout.Len() > 0 {
				t.Errorf("unexpected stdout: %s", stdout.String())
			}
			// The summary closes the report on stdout: an "Error:" line on stderr would be glued to the last finding
			// wherever the two streams are captured apart and joined.
			if tc.wantStderr == nil && stderr.Len() > 0 {
				t.Errorf("unexpected stderr: %s", stderr.String())
			}
			for _, want := range tc.wantStdout {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout does not contain %q:\n%s", want, stdout.String())
				}
			}
			for _, want := range tc.wantStderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr does not contain %q:\n%s", want, stderr.String())
				}
			}
		})
	}
}

func TestSamplePoliciesLint(t *testing.T) {
	samples, err := filepath.Glob("../../../config/samples/policy*.yaml")
	if err != nil || len(samples) == 0 {
		t.Fatalf("no samples found: %v", err)
	}
	var stdout, stderr bytes.Buffer
	if code := Execute(t.Context(), append([]string{"policy", "lint"}, samples...), &stdout, &stderr); code != 0 {
		t.Fatalf("samples do not lint (exit %d):\n%s%s", code, stdout.String(), stderr.String())
	}
}
