// Package fluxauth knows how Flux's controllers authenticate a source: which fields of a GitRepository,
// OCIRepository, HelmRepository, Bucket or ImageRepository make them read a stored Secret, send a credential written
// in the object itself, or authenticate with a cloud identity (the object's ServiceAccount, or the controller's own).
// It is a table of facts read from Flux's code (source-controller v1.9.6, image-reflector-controller v1.1.0 and the
// github.com/fluxcd/pkg modules they use), each row citing the function it mirrors. It holds no policy: the webhook
// decides what a mandate makes of each use.
package fluxauth

import (
	"encoding/json"
	"fmt"

	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Source is what Flux's controllers read to authenticate a source, whatever its kind and API version. Secret names
// are kept only to tell whether an update changed the credentials; they are never printed.
type Source struct {
	Kind      string
	Namespace string
	Name      string
	// Deleting is true once metadata.deletionTimestamp is set: finalizer removals must never be blocked.
	Deleting bool

	// Provider is spec.provider as written; empty means generic (every CRD defaults it so).
	Provider string
	// Address is where Flux connects: spec.url (GitRepository, OCIRepository, HelmRepository), spec.endpoint
	// (Bucket) or spec.image (ImageRepository).
	Address string
	// HelmType is a HelmRepository's spec.type: HelmTypeDefault or HelmTypeOCI.
	HelmType string

	ServiceAccountName string // spec.serviceAccountName
	SecretRef          string // spec.secretRef.name
	CertSecretRef      string // spec.certSecretRef.name
	ProxySecretRef     string // spec.proxySecretRef.name
	STSProvider        string // Bucket spec.sts.provider
	STSSecretRef       string // Bucket spec.sts.secretRef.name
	STSCertSecretRef   string // Bucket spec.sts.certSecretRef.name
}

// HelmRepository types.
const (
	HelmTypeDefault = sourcev1.HelmRepositoryTypeDefault
	HelmTypeOCI     = sourcev1.HelmRepositoryTypeOCI
)

// API is a Flux kind as the API server serves it: its group, its resource and every version Flux has served of it.
type API struct {
	Kind, Group, Resource string
	// Versions, newest first. The webhook's rules name them all: a cluster whose CRD serves only an old one still
	// sends its requests (matchPolicy Equivalent converts only between versions the cluster serves).
	Versions []string
}

// APIs are the Flux kinds this package knows, in the order Flux documents them. Every version of the source kinds
// keeps the credential fields at the same JSON paths (Decode); OCIRepository never had a v1beta1.
var APIs = []API{
	{sourcev1.GitRepositoryKind, SourceGroup, "gitrepositories", []string{"v1", "v1beta2", "v1beta1"}},
	{sourcev1.OCIRepositoryKind, SourceGroup, "ocirepositories", []string{"v1", "v1beta2"}},
	{sourcev1.HelmRepositoryKind, SourceGroup, "helmrepositories", []string{"v1", "v1beta2", "v1beta1"}},
	{sourcev1.BucketKind, SourceGroup, "buckets", []string{"v1", "v1beta2", "v1beta1"}},
	{imagev1.ImageRepositoryKind, ImageGroup, "imagerepositories", []string{"v1", "v1beta2", "v1beta1"}},
}

// Kinds are the kinds of APIs, in their order.
var Kinds = func() []string {
	kinds := make([]string, len(APIs))
	for i, a := range APIs {
		kinds[i] = a.Kind
	}
	return kinds
}()

// The API groups of the Flux sources.
var (
	SourceGroup = sourcev1.GroupVersion.Group
	ImageGroup  = imagev1.GroupVersion.Group
)

// Decode reads a Flux source of the given kind from its JSON with Flux's own Go types. Every version Flux has served
// of these kinds (v1beta1, v1beta2, v1) keeps the credential fields at the same JSON paths (the CRDs convert with
// strategy None), so the v1 types read older bodies too; unknown fields are ignored, so newer versions decode as well.
func Decode(gvk schema.GroupVersionKind, raw []byte) (Source, error) {
	var obj client.Object
	switch {
	case gvk.Group == SourceGroup && gvk.Kind == sourcev1.GitRepositoryKind:
		obj = &sourcev1.GitRepository{}
	case gvk.Group == SourceGroup && gvk.Kind == sourcev1.OCIRepositoryKind:
		obj = &sourcev1.OCIRepository{}
	case gvk.Group == SourceGroup && gvk.Kind == sourcev1.HelmRepositoryKind:
		obj = &sourcev1.HelmRepository{}
	case gvk.Group == SourceGroup && gvk.Kind == sourcev1.BucketKind:
		obj = &sourcev1.Bucket{}
	case gvk.Group == ImageGroup && gvk.Kind == imagev1.ImageRepositoryKind:
		obj = &imagev1.ImageRepository{}
	default:
		return Source{}, fmt.Errorf("%s is not a Flux source this webhook validates", gvk)
	}
	if len(raw) == 0 {
		return Source{}, fmt.Errorf("decode %s: the request carries no object", gvk.Kind)
	}
	if err := json.Unmarshal(raw, obj); err != nil {
		return Source{}, fmt.Errorf("decode %s: %w", gvk.Kind, err)
	}
	return Of(obj)
}

// Of extracts the authentication fields of a Flux source read through a client.
func Of(obj client.Object) (Source, error) {
	s := Source{Namespace: obj.GetNamespace(), Name: obj.GetName(), Deleting: obj.GetDeletionTimestamp() != nil}
	switch o := obj.(type) {
	case *sourcev1.GitRepository:
		s.Kind, s.Provider, s.Address = sourcev1.GitRepositoryKind, o.Spec.Provider, o.Spec.URL
		s.ServiceAccountName = o.Spec.ServiceAccountName
		s.SecretRef, s.ProxySecretRef = refName(o.Spec.SecretRef), refName(o.Spec.ProxySecretRef)
	case *sourcev1.OCIRepository:
		s.Kind, s.Provider, s.Address = sourcev1.OCIRepositoryKind, o.Spec.Provider, o.Spec.URL
		s.ServiceAccountName = o.Spec.ServiceAccountName
		s.SecretRef, s.CertSecretRef = refName(o.Spec.SecretRef), refName(o.Spec.CertSecretRef)
		s.ProxySecretRef = refName(o.Spec.ProxySecretRef)
	case *sourcev1.HelmRepository:
		s.Kind, s.Provider, s.Address, s.HelmType = sourcev1.HelmRepositoryKind, o.Spec.Provider, o.Spec.URL, o.Spec.Type
		if s.HelmType == "" {
			s.HelmType = HelmTypeDefault
		}
		s.SecretRef, s.CertSecretRef = refName(o.Spec.SecretRef), refName(o.Spec.CertSecretRef)
	case *sourcev1.Bucket:
		s.Kind, s.Provider, s.Address = sourcev1.BucketKind, o.Spec.Provider, o.Spec.Endpoint
		s.ServiceAccountName = o.Spec.ServiceAccountName
		s.SecretRef, s.CertSecretRef = refName(o.Spec.SecretRef), refName(o.Spec.CertSecretRef)
		s.ProxySecretRef = refName(o.Spec.ProxySecretRef)
		if sts := o.Spec.STS; sts != nil {
			s.STSProvider, s.STSSecretRef, s.STSCertSecretRef = sts.Provider, refName(sts.SecretRef), refName(sts.CertSecretRef)
		}
	case *imagev1.ImageRepository:
		s.Kind, s.Provider, s.Address = imagev1.ImageRepositoryKind, o.Spec.Provider, o.Spec.Image
		s.ServiceAccountName = o.Spec.ServiceAccountName
		s.SecretRef, s.CertSecretRef = refName(o.Spec.SecretRef), refName(o.Spec.CertSecretRef)
		s.ProxySecretRef = refName(o.Spec.ProxySecretRef)
	default:
		return Source{}, fmt.Errorf("%T is not a Flux source this webhook validates", obj)
	}
	return s, nil
}

func refName(r *meta.LocalObjectReference) string {
	if r == nil {
		return ""
	}
	return r.Name
}

// EffectiveProvider is spec.provider with Flux's default applied.
func (s Source) EffectiveProvider() string {
	if s.Provider == "" {
		return ProviderGeneric
	}
	return s.Provider
}
