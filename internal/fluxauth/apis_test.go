package fluxauth

import (
	"slices"
	"strings"
	"testing"

	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	imagev1beta1 "github.com/fluxcd/image-reflector-controller/api/v1beta1"
	imagev1beta2 "github.com/fluxcd/image-reflector-controller/api/v1beta2"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	sourcev1beta1 "github.com/fluxcd/source-controller/api/v1beta1"
	sourcev1beta2 "github.com/fluxcd/source-controller/api/v1beta2"
	"k8s.io/apimachinery/pkg/runtime"
)

// A cluster whose CRD serves only an old version sends requests for it only if a rule names that version (matchPolicy
// Equivalent converts only between versions the cluster serves). The webhook's rules name APIs' versions, so every
// version of each kind that Flux's API modules still carry (the versions in go.mod) must be in APIs, and nothing else.
func TestAPIsNameEveryVersionOfFluxAPIModules(t *testing.T) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{sourcev1.AddToScheme, sourcev1beta2.AddToScheme,
		sourcev1beta1.AddToScheme, imagev1.AddToScheme, imagev1beta2.AddToScheme, imagev1beta1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for gvk := range scheme.AllKnownTypes() {
		if slices.Contains(Kinds, gvk.Kind) {
			want = append(want, gvk.Group+"/"+gvk.Version+"/"+gvk.Kind)
		}
	}
	slices.Sort(want)
	if len(want) < 14 { // 3 versions of four kinds, OCIRepository from v1beta2 on
		t.Fatalf("the API modules define only %v", want)
	}
	var got []string
	for _, a := range APIs {
		for _, v := range a.Versions {
			got = append(got, a.Group+"/"+v+"/"+a.Kind)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("APIs name\n  %s\nFlux's API modules define\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
