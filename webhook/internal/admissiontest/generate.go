package admissiontest

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/webhook/patch"
)

// The property tests' generators: over thousands of generated objects, (1) the patch applies, (2) it changes only
// paths the webhook owns, appending to arrays and never rewriting what is there, and (3) the webhook applied to its
// own output asks for nothing more (reinvocation is a no-op).

// PropertyCases is how many objects a property test generates.
const PropertyCases = 10000

// Namespaces and ServiceAccounts are those the generated objects live in and run as (the fixture policy's and others).
var (
	Namespaces      = []string{"flux-system", "flux-system", "flux-system", "team-a", "team-b", "sealed", "other"}
	ServiceAccounts = []string{"source-controller", "kustomize-controller", "helm-controller", "image-reflector-controller",
		"notification-controller", "image-automation-controller", "flux-source", "flux-x", "default", ""}
	envNames = []string{keys.EnvAWSRoleARN, keys.EnvAWSWebIdentityTokenFile, keys.EnvAWSRegion, keys.EnvAWSDefaultRegion,
		keys.EnvAWSSTSRegionalEndpoints, keys.EnvAzureClientID, keys.EnvAzureTenantID, keys.EnvAzureFederatedTokenFile,
		keys.EnvAzureAuthorityHost, keys.EnvGoogleApplicationCredentials, "HOME", "HTTPS_PROXY"}
	mountPaths     = []string{keys.AWSTokenMountPath, keys.AzureTokenMountPath, keys.AzureLegacyTokenMountPath, keys.GCPMountPath, "/data", "/tmp"}
	volumeNames    = []string{keys.AWSTokenVolume, keys.AzureLegacyTokenVolume, keys.GCPVolume, "data", "tmp"}
	annotationKeys = append(append(slices.Clone(keys.OwnedServiceAccountAnnotations), keys.AnnotationAWSSkipContainers, keys.AnnotationAzureSkipContainers,
		keys.AnnotationGCPCredentialConfig, "team", "a/b~c"), "")
)

// Pick is one of xs.
func Pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// MaybeMap sets key of m to an absent key, null, an empty map or a random map, the four shapes a request can carry.
func MaybeMap(r *rand.Rand, m map[string]any, key string, gen func() map[string]any) {
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

// GenAnnotations makes pod or ServiceAccount annotations, owned keys and cloud keys among them.
func GenAnnotations(r *rand.Rand) map[string]any {
	out := map[string]any{}
	for range r.IntN(4) {
		k := Pick(r, annotationKeys)
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
			env = append(env, map[string]any{"name": Pick(r, envNames), "value": "user"})
		}
		c["env"] = env
	}
	if r.IntN(2) == 0 {
		var mounts []any
		for range r.IntN(3) {
			mounts = append(mounts, map[string]any{"name": Pick(r, volumeNames), "mountPath": Pick(r, mountPaths)})
		}
		c["volumeMounts"] = mounts
	}
	if r.IntN(5) == 0 {
		c["futureContainerField"] = map[string]any{"x": r.IntN(9)}
	}
	return c
}

// GenPod makes a pod of one of the ServiceAccounts, with containers, init containers (native sidecars among them),
// env, mounts and volumes named like the clouds', and fields this k8s.io/api does not know.
func GenPod(r *rand.Rand) map[string]any {
	meta := map[string]any{"name": "p"}
	MaybeMap(r, meta, "annotations", func() map[string]any { return GenAnnotations(r) })
	MaybeMap(r, meta, "labels", func() map[string]any {
		return map[string]any{"app": "x", keys.LabelAzureUse: Pick(r, []string{"true", "false"})}
	})
	spec := map[string]any{}
	if sa := Pick(r, ServiceAccounts); sa != "" {
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
			vols = append(vols, map[string]any{"name": Pick(r, volumeNames), "emptyDir": map[string]any{}})
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
	ownedLabel      = "/metadata/labels/" + patch.EscapeKey(keys.LabelAzureUse)
	appendOnly      = regexp.MustCompile(`^/spec/(volumes|(init)?[cC]ontainers/\d+/(env|volumeMounts))$`)
	webhookKeys     = append(slices.Clone(keys.OwnedServiceAccountAnnotations), keys.AnnotationGCPCredentialConfig)
)

// OnlyOwnedChanges reports the first change from in to out outside what the webhook owns.
func OnlyOwnedChanges(in, out any, path string) error {
	if m := ownedAnnotation.FindStringSubmatch(path); m != nil {
		key := m[1]
		for _, k := range webhookKeys {
			if patch.EscapeKey(k) == key {
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
			if err := OnlyOwnedChanges(inArr[i], outArr[i], fmt.Sprintf("%s/%d", path, i)); err != nil {
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
			if err := OnlyOwnedChanges(v, ov, path+"/"+patch.EscapeKey(k)); err != nil {
				return err
			}
		}
		for k, v := range outV {
			if _, present := inV[k]; !present {
				if err := OnlyOwnedChanges(nil, v, path+"/"+patch.EscapeKey(k)); err != nil {
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
			if err := OnlyOwnedChanges(inV[i], outV[i], fmt.Sprintf("%s/%d", path, i)); err != nil {
				return err
			}
		}
		return nil
	case nil:
		// A map the webhook created (annotations/labels that were absent or null) may only hold owned keys.
		if m, ok := out.(map[string]any); ok && (path == "/metadata/annotations" || path == "/metadata/labels") {
			for k, v := range m {
				if err := OnlyOwnedChanges(nil, v, path+"/"+patch.EscapeKey(k)); err != nil {
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

// HostileStrings makes strings of the pieces JSON encoders disagree on: quotes, control characters, HTML characters,
// invalid UTF-8 and the line separators encoding/json escapes.
func HostileStrings(r *rand.Rand) func() string {
	pieces := []string{"a", "é", "\"", "\\", "\n", "\t", "\x00", "\x1f", "<", ">", "&", "\u2028", "\u2029", "\xff",
		"\xe2\x80", "[mandate] spec.secretRef", " ", "日本", "\x7f"}
	return func() string {
		var b strings.Builder
		for range r.IntN(6) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		return b.String()
	}
}
