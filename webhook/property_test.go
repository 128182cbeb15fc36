package webhook

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"testing"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
)

// Property tests: over thousands of generated objects, (1) the patch applies, (2) it changes only paths the webhook
// owns, appending to arrays and never rewriting what is there, and (3) the webhook applied to its own output asks for
// nothing more (reinvocation is a no-op).

const propertyCases = 10000

var (
	propNamespaces = []string{"flux-system", "flux-system", "flux-system", "team-a", "team-b", "sealed", "other"}
	propSAs        = []string{"source-controller", "kustomize-controller", "helm-controller", "image-reflector-controller",
		"notification-controller", "image-automation-controller", "flux-source", "flux-x", "default", ""}
	propEnvNames = []string{keys.EnvAWSRoleARN, keys.EnvAWSWebIdentityTokenFile, keys.EnvAWSRegion, keys.EnvAWSDefaultRegion,
		keys.EnvAWSSTSRegionalEndpoints, keys.EnvAzureClientID, keys.EnvAzureTenantID, keys.EnvAzureFederatedTokenFile,
		keys.EnvAzureAuthorityHost, keys.EnvGoogleApplicationCredentials, "HOME", "HTTPS_PROXY"}
	propMountPaths = []string{keys.AWSTokenMountPath, keys.AzureTokenMountPath, keys.AzureLegacyTokenMountPath, keys.GCPMountPath, "/data", "/tmp"}
	propVolumes    = []string{keys.AWSTokenVolume, keys.AzureLegacyTokenVolume, keys.GCPVolume, "data", "tmp"}
	propAnnotKeys  = append(append(slices.Clone(ownedKeys), keys.AnnotationAWSSkipContainers, keys.AnnotationAzureSkipContainers,
		keys.AnnotationGCPCredentialConfig, "team", "a/b~c"), "")
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// maybeMap returns an absent key, null, an empty map or a random map, the four shapes a request can carry.
func maybeMap(r *rand.Rand, m map[string]any, key string, gen func() map[string]any) {
	switch r.IntN(4) {
	case 0:
	case 1:
		m[key] = nil
	case 2:
		m[key] = map[string]any{}
	default:
		m[key] = gen()
	}
}

func genAnnotations(r *rand.Rand) map[string]any {
	out := map[string]any{}
	for range r.IntN(4) {
		k := pick(r, propAnnotKeys)
		if k == "" {
			continue
		}
		switch k {
		case keys.AnnotationAWSSkipContainers:
			out[k] = "c0, c1"
		case keys.AnnotationAzureSkipContainers:
			out[k] = "c1;i0"
		default:
			out[k] = fmt.Sprintf("v%d", r.IntN(3))
		}
	}
	return out
}

func genContainer(r *rand.Rand, name string, init bool) map[string]any {
	c := map[string]any{"name": name, "image": "img"}
	if init && r.IntN(2) == 0 {
		c["restartPolicy"] = "Always" // native sidecar
	}
	switch r.IntN(3) {
	case 0:
	case 1:
		c["env"] = nil
	default:
		var env []any
		for range r.IntN(4) {
			env = append(env, map[string]any{"name": pick(r, propEnvNames), "value": "user"})
		}
		c["env"] = env
	}
	if r.IntN(2) == 0 {
		var mounts []any
		for range r.IntN(3) {
			mounts = append(mounts, map[string]any{"name": pick(r, propVolumes), "mountPath": pick(r, propMountPaths)})
		}
		c["volumeMounts"] = mounts
	}
	if r.IntN(5) == 0 {
		c["futureContainerField"] = map[string]any{"x": r.IntN(9)}
	}
	return c
}

func genPod(r *rand.Rand) map[string]any {
	meta := map[string]any{"name": "p"}
	maybeMap(r, meta, "annotations", func() map[string]any { return genAnnotations(r) })
	maybeMap(r, meta, "labels", func() map[string]any {
		return map[string]any{"app": "x", keys.LabelAzureUse: pick(r, []string{"true", "false"})}
	})
	spec := map[string]any{}
	if sa := pick(r, propSAs); sa != "" {
		spec["serviceAccountName"] = sa
	}
	var containers, inits []any
	for i := range 1 + r.IntN(3) {
		containers = append(containers, genContainer(r, fmt.Sprintf("c%d", i), false))
	}
	spec["containers"] = containers
	if n := r.IntN(3); n > 0 {
		for i := range n {
			inits = append(inits, genContainer(r, fmt.Sprintf("i%d", i), true))
		}
		spec["initContainers"] = inits
	}
	if r.IntN(2) == 0 {
		var vols []any
		for range r.IntN(3) {
			vols = append(vols, map[string]any{"name": pick(r, propVolumes), "emptyDir": map[string]any{}})
		}
		spec["volumes"] = vols
	}
	if r.IntN(5) == 0 {
		spec["futureSpecField"] = []any{"keep"}
	}
	return map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
}

// ownedPath lists where the webhook may write: maps it may create or fill (annotations, labels) and arrays it may
// create or append to (volumes, env, volumeMounts).
var (
	ownedAnnotation = regexp.MustCompile(`^/metadata/annotations/(.+)$`)
	ownedLabel      = "/metadata/labels/" + escapeKey(keys.LabelAzureUse)
	appendOnly      = regexp.MustCompile(`^/spec/(volumes|(init)?[cC]ontainers/\d+/(env|volumeMounts))$`)
	webhookKeys     = append(slices.Clone(ownedKeys), keys.AnnotationGCPCredentialConfig)
)

// onlyOwnedChanges reports the first change from in to out outside what the webhook owns.
func onlyOwnedChanges(in, out any, path string) error {
	if m := ownedAnnotation.FindStringSubmatch(path); m != nil {
		key := m[1]
		for _, k := range webhookKeys {
			if escapeKey(k) == key {
				return nil
			}
		}
	}
	if path == ownedLabel {
		return nil
	}
	if appendOnly.MatchString(path) {
		inArr, _ := in.([]any)
		outArr, ok := out.([]any)
		if !ok && out != nil {
			return fmt.Errorf("%s: not an array after the patch", path)
		}
		if len(outArr) < len(inArr) || !reflect.DeepEqual(outArr[:len(inArr)], inArr) && in != nil {
			return fmt.Errorf("%s: existing elements changed", path)
		}
		if in == nil {
			return nil
		}
		for i := range inArr {
			if err := onlyOwnedChanges(inArr[i], outArr[i], fmt.Sprintf("%s/%d", path, i)); err != nil {
				return err
			}
		}
		return nil
	}
	switch inV := in.(type) {
	case map[string]any:
		outV, ok := out.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: changed type", path)
		}
		for k, v := range inV {
			ov, present := outV[k]
			if !present {
				return fmt.Errorf("%s/%s: removed", path, k)
			}
			if err := onlyOwnedChanges(v, ov, path+"/"+escapeKey(k)); err != nil {
				return err
			}
		}
		for k, v := range outV {
			if _, present := inV[k]; !present {
				if err := onlyOwnedChanges(nil, v, path+"/"+escapeKey(k)); err != nil {
					return err
				}
			}
		}
		return nil
	case []any:
		outV, ok := out.([]any)
		if !ok || len(outV) != len(inV) {
			return fmt.Errorf("%s: array changed", path)
		}
		for i := range inV {
			if err := onlyOwnedChanges(inV[i], outV[i], fmt.Sprintf("%s/%d", path, i)); err != nil {
				return err
			}
		}
		return nil
	case nil:
		// A map the webhook created (annotations/labels that were absent or null) may only hold owned keys.
		if m, ok := out.(map[string]any); ok && (path == "/metadata/annotations" || path == "/metadata/labels") {
			for k, v := range m {
				if err := onlyOwnedChanges(nil, v, path+"/"+escapeKey(k)); err != nil {
					return err
				}
			}
			return nil
		}
	}
	if !reflect.DeepEqual(in, out) {
		return fmt.Errorf("%s: changed from %v to %v", path, in, out)
	}
	return nil
}

func TestPodPatchProperties(t *testing.T) {
	p := loadFixturePolicy(t)
	r := rand.New(rand.NewPCG(1, 2))
	patched := 0
	for i := range propertyCases {
		obj := genPod(r)
		ns := pick(r, propNamespaces)
		raw, _ := json.Marshal(obj)
		ops := mutatePodOps(t, p, ns, raw)
		out := applyPatch(t, raw, ops)
		var outObj any
		if err := json.Unmarshal(out, &outObj); err != nil {
			t.Fatal(err)
		}
		var inObj any
		_ = json.Unmarshal(raw, &inObj)
		if err := onlyOwnedChanges(inObj, outObj, ""); err != nil {
			t.Fatalf("case %d (%s): %v\ninput: %s\npatch: %v", i, ns, err, raw, ops)
		}
		if again := mutatePodOps(t, p, ns, out); len(again) != 0 {
			t.Fatalf("case %d (%s): not idempotent, second patch %v\ninput: %s", i, ns, again, raw)
		}
		if len(ops) > 0 {
			patched++
		}
	}
	// The generator must exercise the interesting paths, not only no-ops.
	if patched < propertyCases/4 {
		t.Errorf("only %d of %d generated pods were patched: the generator is too narrow", patched, propertyCases)
	}
}

func TestServiceAccountPatchProperties(t *testing.T) {
	p := loadFixturePolicy(t)
	r := rand.New(rand.NewPCG(3, 4))
	patched, violating := 0, 0
	for i := range propertyCases {
		meta := map[string]any{"name": pick(r, propSAs[:len(propSAs)-1])}
		maybeMap(r, meta, "annotations", func() map[string]any { return genAnnotations(r) })
		maybeMap(r, meta, "labels", func() map[string]any { return map[string]any{"team": "x"} })
		if r.IntN(5) == 0 {
			meta["futureMetaField"] = "keep"
		}
		obj := map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta,
			"secrets": []any{map[string]any{"name": "s"}}}
		ns := pick(r, propNamespaces)
		raw, _ := json.Marshal(obj)
		var sa serviceAccountView
		if err := json.Unmarshal(raw, &sa); err != nil {
			t.Fatal(err)
		}
		v := evaluateServiceAccount(p, ns, &sa)
		assertNoRemoveOrWholeListReplace(t, v.patch)
		out := applyPatch(t, raw, v.patch)
		var inObj, outObj any
		_ = json.Unmarshal(raw, &inObj)
		_ = json.Unmarshal(out, &outObj)
		if err := onlyOwnedChanges(inObj, outObj, ""); err != nil {
			t.Fatalf("case %d (%s): %v\ninput: %s", i, ns, err, raw)
		}
		var again serviceAccountView
		_ = json.Unmarshal(out, &again)
		v2 := evaluateServiceAccount(p, ns, &again)
		if len(v2.patch) != 0 {
			t.Fatalf("case %d (%s): not idempotent: %v\ninput: %s", i, ns, v2.patch, raw)
		}
		if !reflect.DeepEqual(v.violations, v2.violations) {
			t.Fatalf("case %d: the patch changed the violations: %q then %q", i, v.violations, v2.violations)
		}
		if m, ok := p.IdentityFor(ns, sa.Metadata.Name); ok {
			want, _ := ServiceAccountMetadata(m)
			for k, val := range want {
				if again.Metadata.Annotations[k] != val {
					t.Fatalf("case %d: mapped ServiceAccount ends with %s=%q, want %q", i, k, again.Metadata.Annotations[k], val)
				}
			}
		}
		if len(v.patch) > 0 {
			patched++
		}
		if len(v.violations) > 0 {
			violating++
		}
	}
	if patched < propertyCases/10 || violating < propertyCases/20 {
		t.Errorf("generator too narrow: %d patched, %d violating of %d", patched, violating, propertyCases)
	}
}
