package webhook

import (
	"encoding/json"
	"fmt"

	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SourceObject is what the source mandates look at in a Flux source, whatever its kind and API version: the fields
// that carry or replace long-lived credentials. SecretRefName is kept only to tell whether an update changed the
// credentials; it is never printed.
type SourceObject struct {
	Kind      string
	Namespace string
	Name      string

	SecretRefName      string // spec.secretRef.name; empty when absent
	Provider           string // spec.provider as written; empty means generic
	ServiceAccountName string // spec.serviceAccountName
	// HelmType is spec.type of a HelmRepository ("default" or "oci"); empty for other kinds.
	HelmType string
	// Deleting is true once metadata.deletionTimestamp is set: finalizer removals must never be blocked.
	Deleting bool
}

// HasSecretRef says whether spec.secretRef is set.
func (o SourceObject) HasSecretRef() bool { return o.SecretRefName != "" }

// provider is spec.provider with Flux's default applied.
func (o SourceObject) provider() string {
	if o.Provider == "" {
		return sourcev1.GitProviderGeneric
	}
	return o.Provider
}

// sameCredentials says whether two versions of an object authenticate the same way.
func (o SourceObject) sameCredentials(old SourceObject) bool {
	return o.SecretRefName == old.SecretRefName && o.provider() == old.provider() &&
		o.ServiceAccountName == old.ServiceAccountName && o.HelmType == old.HelmType
}

// The API groups of the Flux sources the validating webhook knows.
var (
	sourceGroup = sourcev1.GroupVersion.Group
	imageGroup  = imagev1.GroupVersion.Group
)

// DecodeSource reads a Flux source of the given kind from its JSON with Flux's own Go types. Every served version of
// these kinds keeps the credential fields at the same JSON paths (the CRDs convert with strategy None), so the v1 types
// read v1beta2 bodies too; unknown fields are ignored, so newer Flux versions decode as well.
func DecodeSource(gvk schema.GroupVersionKind, raw []byte) (SourceObject, error) {
	var obj client.Object
	switch {
	case gvk.Group == sourceGroup && gvk.Kind == sourcev1.GitRepositoryKind:
		obj = &sourcev1.GitRepository{}
	case gvk.Group == sourceGroup && gvk.Kind == sourcev1.OCIRepositoryKind:
		obj = &sourcev1.OCIRepository{}
	case gvk.Group == sourceGroup && gvk.Kind == sourcev1.HelmRepositoryKind:
		obj = &sourcev1.HelmRepository{}
	case gvk.Group == sourceGroup && gvk.Kind == sourcev1.BucketKind:
		obj = &sourcev1.Bucket{}
	case gvk.Group == imageGroup && gvk.Kind == imagev1.ImageRepositoryKind:
		obj = &imagev1.ImageRepository{}
	default:
		return SourceObject{}, fmt.Errorf("%s is not a Flux source this webhook validates", gvk)
	}
	if len(raw) == 0 {
		return SourceObject{}, fmt.Errorf("decode %s: the request carries no object", gvk.Kind)
	}
	if err := json.Unmarshal(raw, obj); err != nil {
		return SourceObject{}, fmt.Errorf("decode %s: %w", gvk.Kind, err)
	}
	return SourceObjectOf(obj)
}

// SourceObjectOf extracts the credential fields of a Flux source read through a client.
func SourceObjectOf(obj client.Object) (SourceObject, error) {
	o := SourceObject{Namespace: obj.GetNamespace(), Name: obj.GetName(), Deleting: obj.GetDeletionTimestamp() != nil}
	switch s := obj.(type) {
	case *sourcev1.GitRepository:
		o.Kind, o.Provider, o.ServiceAccountName = sourcev1.GitRepositoryKind, s.Spec.Provider, s.Spec.ServiceAccountName
		if s.Spec.SecretRef != nil {
			o.SecretRefName = s.Spec.SecretRef.Name
		}
	case *sourcev1.OCIRepository:
		o.Kind, o.Provider, o.ServiceAccountName = sourcev1.OCIRepositoryKind, s.Spec.Provider, s.Spec.ServiceAccountName
		if s.Spec.SecretRef != nil {
			o.SecretRefName = s.Spec.SecretRef.Name
		}
	case *sourcev1.HelmRepository:
		o.Kind, o.Provider, o.HelmType = sourcev1.HelmRepositoryKind, s.Spec.Provider, s.Spec.Type
		if o.HelmType == "" {
			o.HelmType = "default"
		}
		if s.Spec.SecretRef != nil {
			o.SecretRefName = s.Spec.SecretRef.Name
		}
	case *sourcev1.Bucket:
		o.Kind, o.Provider, o.ServiceAccountName = sourcev1.BucketKind, s.Spec.Provider, s.Spec.ServiceAccountName
		if s.Spec.SecretRef != nil {
			o.SecretRefName = s.Spec.SecretRef.Name
		}
	case *imagev1.ImageRepository:
		o.Kind, o.Provider, o.ServiceAccountName = imagev1.ImageRepositoryKind, s.Spec.Provider, s.Spec.ServiceAccountName
		if s.Spec.SecretRef != nil {
			o.SecretRefName = s.Spec.SecretRef.Name
		}
	default:
		return SourceObject{}, fmt.Errorf("%T is not a Flux source this webhook validates", obj)
	}
	return o, nil
}
