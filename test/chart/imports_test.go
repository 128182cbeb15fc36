package chart

import (
	"os/exec"
	"strings"
	"testing"
)

// The chart tests pull cert-manager's and kustomize's APIs into go.mod, the condition tests CEL, the image build
// go-containerregistry; they must stay test-only, out of the image.
func TestServerBinaryDoesNotImportTestOnlyModules(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./cmd/flux-identity-webhook")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 {
		t.Fatalf("go list found only %d packages; the check would prove nothing", len(deps))
	}
	for _, pkg := range deps {
		for _, banned := range []string{
			"github.com/cert-manager/", "sigs.k8s.io/kustomize/", "sigs.k8s.io/gateway-api/", "github.com/onsi/",
			"sigs.k8s.io/controller-runtime/pkg/envtest", "github.com/fluxidentity/flux-identity-webhook/test/",
			"github.com/google/cel-go/", "github.com/google/go-containerregistry/",
		} {
			if strings.HasPrefix(pkg, banned) {
				t.Errorf("the server binary imports %s", pkg)
			}
		}
	}
}
