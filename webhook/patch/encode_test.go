package patch_test

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/fluxidentity/flux-identity-webhook/webhook/internal/admissiontest"
	"github.com/fluxidentity/flux-identity-webhook/webhook/patch"
	"github.com/fluxidentity/flux-identity-webhook/webhook/pods"
)

// TestAppendPatchMatchesEncodingJSON holds the hand-written patch encoder to encoding/json's encoding of
// []jsonpatch.Operation, byte for byte, on generated operations of every value kind a patch holds, and on the values
// it hands to encoding/json (a variable from a source, a volume). The injection property tests check it on the
// patches of 30,000 generated pods as well.
func TestAppendPatchMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 9))
	str := admissiontest.HostileStrings(r)
	strMap := func() map[string]string {
		if r.IntN(5) == 0 {
			return nil
		}
		m := map[string]string{}
		for range r.IntN(4) {
			m[str()] = str()
		}
		return m
	}
	env := func() corev1.EnvVar {
		e := corev1.EnvVar{Name: str(), Value: str()}
		if r.IntN(4) == 0 {
			e.ValueFrom = &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: str()}}
		}
		return e
	}
	mount := func() corev1.VolumeMount {
		m := corev1.VolumeMount{Name: str(), MountPath: str(), ReadOnly: r.IntN(2) == 0, SubPath: str(),
			SubPathExpr: str()}
		if r.IntN(4) == 0 {
			m.MountPropagation = ptr.To(corev1.MountPropagationHostToContainer)
		}
		if r.IntN(4) == 0 {
			m.RecursiveReadOnly = ptr.To(corev1.RecursiveReadOnlyIfPossible)
		}
		return m
	}
	// volume is a token volume as full injection adds one, sometimes with downward API files (GCP) or with a field it
	// never sets, which the encoder must hand to encoding/json.
	volume := func() corev1.Volume {
		v := pods.TokenVolume(str(), r.Int64(), str())
		v.Name = str()
		p := v.Projected
		if r.IntN(4) == 0 {
			p.DefaultMode = nil
		}
		if r.IntN(4) == 0 {
			p.Sources[0].ServiceAccountToken.ExpirationSeconds = nil
		}
		if r.IntN(2) == 0 {
			file := corev1.DownwardAPIVolumeFile{Path: str(), FieldRef: &corev1.ObjectFieldSelector{FieldPath: str()}}
			if r.IntN(3) == 0 {
				file.FieldRef.APIVersion = str()
			}
			if r.IntN(5) == 0 {
				file.FieldRef = nil
			}
			items := []corev1.DownwardAPIVolumeFile{file}
			if r.IntN(5) == 0 {
				items = nil
			}
			p.Sources = append(p.Sources, corev1.VolumeProjection{DownwardAPI: &corev1.DownwardAPIProjection{Items: items}})
		}
		switch r.IntN(12) {
		case 0:
			p.DefaultUser = ptr.To[int64](1000)
		case 1:
			p.Sources = append(p.Sources, corev1.VolumeProjection{ConfigMap: &corev1.ConfigMapProjection{}})
		case 2:
			v.EmptyDir = &corev1.EmptyDirVolumeSource{}
		case 3:
			p.Sources[0].ServiceAccountToken.User = ptr.To[int64](7)
		case 4:
			p.Sources = nil
		}
		return v
	}
	values := []func() any{
		func() any { return nil },
		func() any { return str() },
		func() any { return strMap() },
		func() any { return map[string]any{"annotations": strMap(), str(): str()} },
		func() any { return env() },
		func() any { return []corev1.EnvVar{env(), env()} },
		func() any { return []corev1.EnvVar(nil) },
		func() any { return mount() },
		func() any { return []corev1.VolumeMount{mount()} },
		func() any { return []corev1.Volume{volume()} },
		func() any { return []corev1.Volume{volume(), volume()} },
		// appendToArray appends one item at a time, boxed as a pointer.
		func() any { e := env(); return &e },
		func() any { m := mount(); return &m },
		func() any { return volume() },
		func() any { v := volume(); return &v },
	}
	for i := range 5000 {
		var ops []jsonpatch.Operation
		for range r.IntN(5) {
			ops = append(ops, jsonpatch.NewOperation([]string{"add", "replace", "remove", "test"}[r.IntN(4)],
				"/metadata/annotations/"+patch.EscapeKey(str()), values[r.IntN(len(values))]()))
		}
		want, err := json.Marshal(ops)
		if err != nil {
			t.Fatal(err)
		}
		got, err := patch.Append(nil, ops)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("case %d:\n got %s\nwant %s", i, got, want)
		}
	}
}
