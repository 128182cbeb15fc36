package patch

// Metadata is the part of an object's metadata the decisions read, and the patches are computed against: the
// webhook decodes only the fields it reads, so fields outside its views (including ones this k8s.io/api does not
// know) are never re-serialised and never lost. A nil map means the field is absent (or null).
type Metadata struct {
	Name         string            `json:"name"`
	GenerateName string            `json:"generateName"`
	Namespace    string            `json:"namespace"`
	Annotations  map[string]string `json:"annotations"`
	Labels       map[string]string `json:"labels"`
}

// noMetadata stands in for an absent metadata object (the API server always sends one; other callers may not).
var noMetadata Metadata

// MetaOf returns m, or an empty Metadata when the object has none. The empty one is shared: never write to it.
func MetaOf(m *Metadata) *Metadata {
	if m == nil {
		return &noMetadata
	}
	return m
}
