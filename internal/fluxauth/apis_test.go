package fluxauth

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	fluxcdv1 "github.com/controlplaneio-fluxcd/flux-operator/api/v1"
	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	helmv2beta1 "github.com/fluxcd/helm-controller/api/v2beta1"
	helmv2beta2 "github.com/fluxcd/helm-controller/api/v2beta2"
	iacv1 "github.com/fluxcd/image-automation-controller/api/v1"
	iacv1beta1 "github.com/fluxcd/image-automation-controller/api/v1beta1"
	iacv1beta2 "github.com/fluxcd/image-automation-controller/api/v1beta2"
	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	imagev1beta1 "github.com/fluxcd/image-reflector-controller/api/v1beta1"
	imagev1beta2 "github.com/fluxcd/image-reflector-controller/api/v1beta2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	kustomizev1beta1 "github.com/fluxcd/kustomize-controller/api/v1beta1"
	kustomizev1beta2 "github.com/fluxcd/kustomize-controller/api/v1beta2"
	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
	notificationv1beta1 "github.com/fluxcd/notification-controller/api/v1beta1"
	notificationv1beta2 "github.com/fluxcd/notification-controller/api/v1beta2"
	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	sourcev1beta1 "github.com/fluxcd/source-controller/api/v1beta1"
	sourcev1beta2 "github.com/fluxcd/source-controller/api/v1beta2"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// A cluster whose CRD serves only an old version sends requests for it only if a rule names that version (matchPolicy
// Equivalent converts only between versions the cluster serves). The webhook's rules name APIs' versions, so every
// version of each kind that Flux's API modules still carry (the versions in go.mod) must be in APIs, and nothing else.
// The decoders read every version with the newest Go type: the same JSON paths hold the fields the model reads
// (TestDecodeReadsEveryVersion).
func TestAPIsNameEveryVersionOfFluxAPIModules(t *testing.T) {
	scheme := fluxAPIsScheme(t)
	var want []string
	for gvk := range scheme.AllKnownTypes() {
		if slices.Contains(Kinds, gvk.Kind) {
			want = append(want, gvk.Group+"/"+gvk.Version+"/"+gvk.Kind)
		}
	}
	slices.Sort(want)
	if len(want) < 30 { // 3 versions of most kinds, OCIRepository from v1beta2 on, ResourceSetInputProvider v1 only
		t.Fatalf("the API modules define only %v", want)
	}
	var got []string
	for _, a := range APIs {
		if a.Kind == SecretKind {
			continue // core v1, not a Flux API
		}
		for _, v := range a.Versions {
			got = append(got, a.Group+"/"+v+"/"+a.Kind)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("APIs name\n  %s\nFlux's API modules define\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestDecodeReadsEveryVersion: Decode reads every version of a kind with the newest Go type, which is right only if
// every version keeps the fields the model reads at the same JSON paths. Every reference or credential-sounding field
// of every older Go type in the API modules must be at a path the model or notCredentials knows, and a body of the
// older version carrying the model's fields must decode to the same object as the newest version's.
func TestDecodeReadsEveryVersion(t *testing.T) {
	scheme := fluxAPIsScheme(t)
	known := map[string]bool{}
	for _, r := range Model {
		for p := Path(r.Field); strings.Contains(p, "."); p = p[:strings.LastIndex(p, ".")] {
			known[r.Kind+" "+p] = true
		}
	}
	// A body with every field the model reads, as the newest version spells them.
	full := map[string]any{"metadata": map[string]any{"name": "n", "namespace": "ns"}, "spec": map[string]any{
		"provider": "aws", "type": "azuredevops", "url": "https://u:p@h/r", "endpoint": "h", "image": "h/i",
		"address": "https://u:p@h", "proxy": "http://u:p@proxy", "serviceAccountName": "sa",
		"secretRef": map[string]any{"name": "s"}, "certSecretRef": map[string]any{"name": "c"},
		"proxySecretRef": map[string]any{"name": "p"},
		"sts":            map[string]any{"provider": "ldap", "secretRef": map[string]any{"name": "l"}, "certSecretRef": map[string]any{"name": "lc"}},
		"decryption":     map[string]any{"provider": "sops", "serviceAccountName": "d", "secretRef": map[string]any{"name": "ds"}},
		"kubeConfig":     map[string]any{"secretRef": map[string]any{"name": "k"}, "configMapRef": map[string]any{"name": "km"}},
		"sourceRef":      map[string]any{"kind": "GitRepository", "name": "g", "namespace": "other"},
	}}
	body, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	for gvk, typ := range scheme.AllKnownTypes() {
		a, ok := APIOf(gvk.Kind)
		if !ok {
			continue
		}
		spec, ok := typ.FieldByName("Spec")
		if !ok {
			t.Fatalf("%s has no Spec", gvk)
		}
		for _, path := range jsonPaths("spec", spec.Type, 0) {
			lower := strings.ToLower(path[strings.LastIndex(path, ".")+1:])
			credentialish := strings.Contains(lower, "secret") || strings.Contains(lower, "serviceaccount") ||
				strings.Contains(lower, "kubeconfig") || strings.Contains(lower, "credential")
			if credentialish && !known[gvk.Kind+" "+path] && notCredentials[gvk.Kind+" "+path] == "" {
				t.Errorf("%s %s: a reference the model does not read at this path", gvk, path)
			}
		}
		if gvk.Version == a.Versions[0] {
			continue
		}
		// The older version keeps what it has of the body; the newest type must read exactly that.
		old := reflect.New(typ).Interface()
		if err := json.Unmarshal(body, old); err != nil {
			t.Fatalf("%s: %v", gvk, err)
		}
		kept, err := json.Marshal(old)
		if err != nil {
			t.Fatal(err)
		}
		fromOld, err := Decode(schema.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind}, kept)
		if err != nil {
			t.Fatalf("%s: %v", gvk, err)
		}
		newest := reflect.New(scheme.AllKnownTypes()[schema.GroupVersionKind{Group: gvk.Group, Version: a.Versions[0], Kind: gvk.Kind}]).Interface()
		if err := json.Unmarshal(kept, newest); err != nil {
			t.Fatal(err)
		}
		want, err := Of(newest.(client.Object))
		if err != nil {
			t.Fatal(err)
		}
		if fromOld != want {
			t.Errorf("%s decodes to\n  %+v\nthe newest version reads\n  %+v", gvk, fromOld, want)
		}
	}
}

// jsonPaths are the JSON paths of a Go type's fields, below prefix.
func jsonPaths(prefix string, t reflect.Type, depth int) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || depth > 6 {
		return nil
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		path := prefix
		if name != "" {
			path = prefix + "." + name
			out = append(out, path)
		}
		if !strings.HasSuffix(strings.ToLower(name), "secretref") {
			out = append(out, jsonPaths(path, f.Type, depth+1)...)
		}
	}
	return out
}

// fluxAPIsScheme holds every version of every Flux API module this module requires.
func fluxAPIsScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{sourcev1.AddToScheme, sourcev1beta2.AddToScheme,
		sourcev1beta1.AddToScheme, imagev1.AddToScheme, imagev1beta2.AddToScheme, imagev1beta1.AddToScheme,
		kustomizev1.AddToScheme, kustomizev1beta2.AddToScheme, kustomizev1beta1.AddToScheme, helmv2.AddToScheme,
		helmv2beta2.AddToScheme, helmv2beta1.AddToScheme, notificationv1.AddToScheme, notificationv1beta3.AddToScheme,
		notificationv1beta2.AddToScheme, notificationv1beta1.AddToScheme, iacv1.AddToScheme, iacv1beta2.AddToScheme,
		iacv1beta1.AddToScheme, fluxcdv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	return scheme
}
