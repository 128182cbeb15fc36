package pods

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
)

// TestDocsNameThePodAnnotationsFullInjectionHonours keeps README.md and docs/contracts.md saying which pod annotations
// full injection reads (tokenSeconds, skipList, azureInjection) and within which bounds.
func TestDocsNameThePodAnnotationsFullInjectionHonours(t *testing.T) {
	for _, doc := range []string{"README.md", filepath.Join("docs", "contracts.md")} {
		data, err := os.ReadFile(filepath.Join("..", "..", doc))
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		for _, want := range []string{
			"`" + keys.AnnotationAWSTokenExpiration + "`", "`" + keys.AnnotationAWSSkipContainers + "`",
			"`" + keys.AnnotationAzureTokenExpiration + "`", "`" + keys.AnnotationAzureSkipContainers + "`",
			"`" + keys.AnnotationAzureInjectProxySidecar + "`",
			"600..2^32", "3600..86400", "not CSV", "under 600", "not a number",
			keys.AzurePublicCloud, keys.AzureUSGovernmentCloud, keys.AzureChinaCloud,
		} {
			if !strings.Contains(text, want) {
				t.Errorf("%s does not say %q", doc, want)
			}
		}
	}
}
