// Package fluxauth knows how Flux authenticates: which fields of Flux's objects make a controller read a stored Secret,
// send a credential written in the object itself, borrow another namespace's credentials, or authenticate with a cloud
// identity (the object's ServiceAccount, or the controller's own), and how kustomize-controller reads the credentials in
// a SOPS decryption Secret. It is a table of facts read from Flux's code (source-controller v1.9.6,
// image-reflector-controller v1.1.0, kustomize-controller v1.9.6, helm-controller v1.6.x, notification-controller
// v1.9.x, image-automation-controller v1.2.x, Flux Operator v0.58.1 and the github.com/fluxcd/pkg modules they use),
// each row citing the function it mirrors. It holds no policy: the webhook decides what a mandate makes of each use.
package fluxauth

import (
	"encoding/json"
	"fmt"

	fluxcdv1 "github.com/controlplaneio-fluxcd/flux-operator/api/v1"
	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	iacv1 "github.com/fluxcd/image-automation-controller/api/v1"
	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Object is what Flux's controllers read to authenticate a Flux object, whatever its kind and API version. Secret
// names are kept only to tell whether an update changed the credentials; they are never printed.
type Object struct {
	Kind      string
	Namespace string
	Name      string
	// Deleting is true once metadata.deletionTimestamp is set: finalizer removals must never be blocked.
	Deleting bool

	// Provider is spec.provider as written (sources); empty means generic (every CRD defaults it so). Kinds without
	// the field authenticate with the cloud their Type implies (EffectiveProvider).
	Provider string
	// Type is spec.type of a notification Provider, a Receiver or a ResourceSetInputProvider.
	Type string
	// Address is where Flux connects: spec.url (GitRepository, OCIRepository, HelmRepository,
	// ResourceSetInputProvider), spec.endpoint (Bucket), spec.image (ImageRepository) or spec.address (Provider).
	Address string
	// Proxy is a notification Provider's deprecated spec.proxy address.
	Proxy string
	// HelmType is a HelmRepository's spec.type: HelmTypeDefault or HelmTypeOCI.
	HelmType string

	ServiceAccountName string // spec.serviceAccountName (a cloud identity for the kinds whose rows say so)
	SecretRef          string // spec.secretRef.name
	CertSecretRef      string // spec.certSecretRef.name
	ProxySecretRef     string // spec.proxySecretRef.name
	STSProvider        string // Bucket spec.sts.provider
	STSSecretRef       string // Bucket spec.sts.secretRef.name
	STSCertSecretRef   string // Bucket spec.sts.certSecretRef.name

	// Decryption is set when a Kustomization has spec.decryption.
	Decryption                   bool
	DecryptionSecretRef          string // spec.decryption.secretRef.name
	DecryptionServiceAccountName string // spec.decryption.serviceAccountName
	KubeConfigSecretRef          string // spec.kubeConfig.secretRef.name (Kustomization, HelmRelease)
	KubeConfigConfigMapRef       string // spec.kubeConfig.configMapRef.name (Kustomization, HelmRelease)
	// SourceRefNamespace is an ImageUpdateAutomation's spec.sourceRef.namespace as written.
	SourceRefNamespace string
}

// HelmRepository types.
const (
	HelmTypeDefault = sourcev1.HelmRepositoryTypeDefault
	HelmTypeOCI     = sourcev1.HelmRepositoryTypeOCI
)

// Short names of the kinds, to keep the tables readable.
const (
	git        = sourcev1.GitRepositoryKind
	oci        = sourcev1.OCIRepositoryKind
	helm       = sourcev1.HelmRepositoryKind
	bucket     = sourcev1.BucketKind
	image      = imagev1.ImageRepositoryKind
	kustomize  = kustomizev1.KustomizationKind
	release    = helmv2.HelmReleaseKind
	provider   = notificationv1beta3.ProviderKind
	receiver   = notificationv1.ReceiverKind
	automation = iacv1.ImageUpdateAutomationKind
	inputs     = fluxcdv1.ResourceSetInputProviderKind
	// SecretKind stands for SOPS decryption Secrets: Secrets carrying a credential key kustomize-controller's
	// Decryptor.ImportKeys reads (sops.go). No other Secret is a kind of this package.
	SecretKind = "Secret"
)

// Category says which admission route decides a kind: the Flux sources, Flux's other objects, or the SOPS decryption
// Secrets (internal/routes builds one registration per category).
type Category string

// The categories.
const (
	CategorySource  Category = "source"
	CategoryObject  Category = "object"
	CategorySecrets Category = "secrets"
)

// API is a kind as the API server serves it: its group, its resource and every version Flux has served of it.
type API struct {
	Kind, Group, Resource string
	// Versions, newest first. The webhook's rules name them all: a cluster whose CRD serves only an old one still
	// sends its requests (matchPolicy Equivalent converts only between versions the cluster serves).
	Versions []string
	Category Category
	// Controller is the ServiceAccount of the controller that reads the kind's credentials (in Flux's namespace):
	// whose identity an object without one of its own borrows.
	Controller string
	// object and list are Flux's own Go types of the newest version. Decode reads every version with object: every
	// version Flux has served keeps the fields the model reads at the same JSON paths (the CRDs convert with strategy
	// None; TestDecodeReadsEveryVersion), and unknown fields are ignored, so older and newer bodies decode as well.
	object func() client.Object
	list   func() client.ObjectList
}

// NewList is an empty list of the kind, for a client that reads a whole cluster (audit, doctor).
func (a API) NewList() client.ObjectList { return a.list() }

// APIs are the kinds this package knows, in the order Flux documents them: the sources, then the objects that
// reconcile, notify and automate, then the SOPS decryption Secrets. Every version the Flux API modules in go.mod carry
// is named (TestAPIsNameEveryVersionOfFluxAPIModules); OCIRepository never had a v1beta1.
var APIs = []API{
	{git, SourceGroup, "gitrepositories", []string{"v1", "v1beta2", "v1beta1"}, CategorySource, "source-controller",
		func() client.Object { return &sourcev1.GitRepository{} },
		func() client.ObjectList { return &sourcev1.GitRepositoryList{} }},
	{oci, SourceGroup, "ocirepositories", []string{"v1", "v1beta2"}, CategorySource, "source-controller",
		func() client.Object { return &sourcev1.OCIRepository{} },
		func() client.ObjectList { return &sourcev1.OCIRepositoryList{} }},
	{helm, SourceGroup, "helmrepositories", []string{"v1", "v1beta2", "v1beta1"}, CategorySource, "source-controller",
		func() client.Object { return &sourcev1.HelmRepository{} },
		func() client.ObjectList { return &sourcev1.HelmRepositoryList{} }},
	{bucket, SourceGroup, "buckets", []string{"v1", "v1beta2", "v1beta1"}, CategorySource, "source-controller",
		func() client.Object { return &sourcev1.Bucket{} },
		func() client.ObjectList { return &sourcev1.BucketList{} }},
	{image, ImageGroup, "imagerepositories", []string{"v1", "v1beta2", "v1beta1"}, CategorySource, "image-reflector-controller",
		func() client.Object { return &imagev1.ImageRepository{} },
		func() client.ObjectList { return &imagev1.ImageRepositoryList{} }},
	{kustomize, kustomizev1.GroupVersion.Group, "kustomizations", []string{"v1", "v1beta2", "v1beta1"}, CategoryObject, "kustomize-controller",
		func() client.Object { return &kustomizev1.Kustomization{} },
		func() client.ObjectList { return &kustomizev1.KustomizationList{} }},
	{release, helmv2.GroupVersion.Group, "helmreleases", []string{"v2", "v2beta2", "v2beta1"}, CategoryObject, "helm-controller",
		func() client.Object { return &helmv2.HelmRelease{} },
		func() client.ObjectList { return &helmv2.HelmReleaseList{} }},
	{provider, notificationv1beta3.GroupVersion.Group, "providers", []string{"v1beta3", "v1beta2", "v1beta1"},
		CategoryObject, "notification-controller", func() client.Object { return &notificationv1beta3.Provider{} },
		func() client.ObjectList { return &notificationv1beta3.ProviderList{} }},
	{receiver, notificationv1.GroupVersion.Group, "receivers", []string{"v1", "v1beta2", "v1beta1"}, CategoryObject, "notification-controller",
		func() client.Object { return &notificationv1.Receiver{} },
		func() client.ObjectList { return &notificationv1.ReceiverList{} }},
	{automation, ImageGroup, "imageupdateautomations", []string{"v1", "v1beta2", "v1beta1"}, CategoryObject, "image-automation-controller",
		func() client.Object { return &iacv1.ImageUpdateAutomation{} },
		func() client.ObjectList { return &iacv1.ImageUpdateAutomationList{} }},
	{inputs, fluxcdv1.GroupVersion.Group, "resourcesetinputproviders", []string{"v1"}, CategoryObject, "flux-operator",
		func() client.Object { return &fluxcdv1.ResourceSetInputProvider{} },
		func() client.ObjectList { return &fluxcdv1.ResourceSetInputProviderList{} }},
	{SecretKind, "", "secrets", []string{"v1"}, CategorySecrets, "kustomize-controller", nil,
		func() client.ObjectList { return &corev1.SecretList{} }},
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

// AddToScheme registers the Go types of every kind of APIs, at the versions they are read in, with s: what a client
// that lists them needs.
func AddToScheme(s *runtime.Scheme) error {
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, sourcev1.AddToScheme, imagev1.AddToScheme,
		kustomizev1.AddToScheme, helmv2.AddToScheme, notificationv1beta3.AddToScheme, notificationv1.AddToScheme,
		iacv1.AddToScheme, fluxcdv1.AddToScheme} {
		if err := add(s); err != nil {
			return err
		}
	}
	return nil
}

// APIOf is the API of a kind; ok is false for a kind this package does not know.
func APIOf(kind string) (API, bool) {
	for _, a := range APIs {
		if a.Kind == kind {
			return a, true
		}
	}
	return API{}, false
}

// Decode reads a Flux object of the given kind from its JSON with Flux's own Go types.
func Decode(gvk schema.GroupVersionKind, raw []byte) (Object, error) {
	a, ok := APIOf(gvk.Kind)
	if !ok || a.object == nil || a.Group != gvk.Group {
		return Object{}, fmt.Errorf("%s is not a Flux object this webhook validates", gvk)
	}
	if len(raw) == 0 {
		return Object{}, fmt.Errorf("decode %s: the request carries no object", gvk.Kind)
	}
	obj := a.object()
	if err := json.Unmarshal(raw, obj); err != nil {
		return Object{}, fmt.Errorf("decode %s: %w", gvk.Kind, err)
	}
	return Of(obj)
}

// Of extracts the authentication fields of a Flux object read through a client.
func Of(obj client.Object) (Object, error) {
	o := Object{Namespace: obj.GetNamespace(), Name: obj.GetName(), Deleting: obj.GetDeletionTimestamp() != nil}
	switch v := obj.(type) {
	case *sourcev1.GitRepository:
		o.Kind, o.Provider, o.Address = git, v.Spec.Provider, v.Spec.URL
		o.ServiceAccountName = v.Spec.ServiceAccountName
		o.SecretRef, o.ProxySecretRef = refName(v.Spec.SecretRef), refName(v.Spec.ProxySecretRef)
	case *sourcev1.OCIRepository:
		o.Kind, o.Provider, o.Address = oci, v.Spec.Provider, v.Spec.URL
		o.ServiceAccountName = v.Spec.ServiceAccountName
		o.SecretRef, o.CertSecretRef = refName(v.Spec.SecretRef), refName(v.Spec.CertSecretRef)
		o.ProxySecretRef = refName(v.Spec.ProxySecretRef)
	case *sourcev1.HelmRepository:
		o.Kind, o.Provider, o.Address, o.HelmType = helm, v.Spec.Provider, v.Spec.URL, v.Spec.Type
		if o.HelmType == "" {
			o.HelmType = HelmTypeDefault
		}
		o.SecretRef, o.CertSecretRef = refName(v.Spec.SecretRef), refName(v.Spec.CertSecretRef)
	case *sourcev1.Bucket:
		o.Kind, o.Provider, o.Address = bucket, v.Spec.Provider, v.Spec.Endpoint
		o.ServiceAccountName = v.Spec.ServiceAccountName
		o.SecretRef, o.CertSecretRef = refName(v.Spec.SecretRef), refName(v.Spec.CertSecretRef)
		o.ProxySecretRef = refName(v.Spec.ProxySecretRef)
		if sts := v.Spec.STS; sts != nil {
			o.STSProvider, o.STSSecretRef, o.STSCertSecretRef = sts.Provider, refName(sts.SecretRef), refName(sts.CertSecretRef)
		}
	case *imagev1.ImageRepository:
		o.Kind, o.Provider, o.Address = image, v.Spec.Provider, v.Spec.Image
		o.ServiceAccountName = v.Spec.ServiceAccountName
		o.SecretRef, o.CertSecretRef = refName(v.Spec.SecretRef), refName(v.Spec.CertSecretRef)
		o.ProxySecretRef = refName(v.Spec.ProxySecretRef)
	case *kustomizev1.Kustomization:
		o.Kind = kustomize
		if d := v.Spec.Decryption; d != nil {
			o.Decryption, o.DecryptionSecretRef, o.DecryptionServiceAccountName = true, refName(d.SecretRef), d.ServiceAccountName
		}
		o.KubeConfigSecretRef, o.KubeConfigConfigMapRef = kubeConfigRefs(v.Spec.KubeConfig)
	case *helmv2.HelmRelease:
		o.Kind = release
		o.KubeConfigSecretRef, o.KubeConfigConfigMapRef = kubeConfigRefs(v.Spec.KubeConfig)
	case *notificationv1beta3.Provider:
		o.Kind, o.Type, o.Address, o.Proxy = provider, v.Spec.Type, v.Spec.Address, v.Spec.Proxy
		o.ServiceAccountName = v.Spec.ServiceAccountName
		o.SecretRef, o.CertSecretRef = refName(v.Spec.SecretRef), refName(v.Spec.CertSecretRef)
		o.ProxySecretRef = refName(v.Spec.ProxySecretRef)
	case *notificationv1.Receiver:
		o.Kind, o.Type, o.SecretRef = receiver, v.Spec.Type, refName(v.Spec.SecretRef)
	case *iacv1.ImageUpdateAutomation:
		o.Kind, o.SourceRefNamespace = automation, v.Spec.SourceRef.Namespace
	case *fluxcdv1.ResourceSetInputProvider:
		o.Kind, o.Type, o.Address = inputs, v.Spec.Type, v.Spec.URL
		o.ServiceAccountName = v.Spec.ServiceAccountName
		o.SecretRef, o.CertSecretRef = refName(v.Spec.SecretRef), refName(v.Spec.CertSecretRef)
	default:
		return Object{}, fmt.Errorf("%T is not a Flux object this webhook validates", obj)
	}
	return o, nil
}

func refName(r *meta.LocalObjectReference) string {
	if r == nil {
		return ""
	}
	return r.Name
}

func kubeConfigRefs(k *meta.KubeConfigReference) (secret, configMap string) {
	if k == nil {
		return "", ""
	}
	if k.SecretRef != nil {
		secret = k.SecretRef.Name
	}
	return secret, refName(k.ConfigMapRef)
}

// EffectiveProvider is the cloud provider Flux authenticates the object with: spec.provider with Flux's default
// (generic) for the sources; for a notification Provider or a ResourceSetInputProvider the cloud its type implies
// (TypeProvider); generic for every other kind.
func (o Object) EffectiveProvider() string {
	switch o.Kind {
	case provider, inputs:
		return TypeProvider(o.Kind, o.Type)
	}
	if o.Provider == "" {
		return ProviderGeneric
	}
	return o.Provider
}
