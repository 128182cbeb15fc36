package reports

import (
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// WriteYAML prints reports as a stream of YAML documents, each after a "---" line, the way `kubectl apply -f -` reads
// them; nothing when there are none.
func WriteYAML(w io.Writer, reports []*unstructured.Unstructured) error {
	for _, r := range reports {
		doc, err := yaml.Marshal(r.Object)
		if err != nil {
			return fmt.Errorf("encode the %s of %s: %w", r.GetKind(), r.GetNamespace(), err)
		}
		if _, err := fmt.Fprintf(w, "---\n%s", doc); err != nil {
			return err
		}
	}
	return nil
}
