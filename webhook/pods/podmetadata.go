package pods

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/patch"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// AdmitMetadataChange refuses pod updates (and bindings, which merge their annotations into the pod) that add, change or
// remove an owned annotation. Its registration sends it only such requests (a CEL matchCondition), and fails closed:
// stopping the webhook cannot let a change through, and ordinary pod updates never wait on it.
//
// It reads a pod's metadata before and after the request: an update of the pod or of its status
// (k8s.io/kubernetes pkg/registry/core/pod/strategy.go: podStatusStrategy.PrepareForUpdate keeps metadata changes,
// while the ephemeralcontainers and resize strategies reset them with ResetObjectMetaForStatus), or a binding, whose
// annotations the API server merges into the pod (pod/storage/storage.go: BindingREST.setPodNodeAndMetadata; before
// is then empty). Any other request changes nothing it owns.
func AdmitMetadataChange(_ *policy.Policy, req *verdict.Request[MetadataView, MetadataView], _ time.Time) (verdict.Verdict, error) {
	var old *patch.Metadata
	switch {
	case req.Operation == admissionv1.Update && (req.SubResource == "" || req.SubResource == "status"):
		if req.OldObject == nil {
			return verdict.Verdict{}, &verdict.BadObject{Err: errors.New("the update carries no old object")}
		}
		old = patch.MetaOf(req.OldObject.Metadata)
	case req.Operation == admissionv1.Create && req.Kind.Kind == "Binding": // pods/binding or the legacy bindings
		old = patch.MetaOf(nil)
	default:
		return verdict.Verdict{}, nil
	}
	if req.Object == nil {
		return verdict.Verdict{}, &verdict.BadObject{Err: verdict.ErrNoObject}
	}
	v := evaluatePodMetadata(req.Namespace, req.Operation == admissionv1.Create, old, patch.MetaOf(req.Object.Metadata))
	if len(v.Violations) > 0 {
		// The messages name keys, never values: a credential configuration stays out of the log.
		msgs := make([]string, len(v.Violations))
		for i, vi := range v.Violations {
			msgs[i] = vi.Message
		}
		v.Log = &verdict.LogLine{Message: "owned pod annotation change", KeysAndValues: []any{
			"namespace", verdict.Clip(req.Namespace), "name", verdict.Clip(req.Name),
			"subResource", verdict.Clip(req.SubResource), "user", verdict.Clip(req.UserInfo.Username), "violations", msgs}}
	}
	return v, nil
}

// MetadataView is any object of which only the metadata matters.
type MetadataView struct {
	Metadata *patch.Metadata `json:"metadata"`
}

// evaluatePodMetadata decides about a pod whose metadata goes from old to new (for a binding, new is the Binding's
// metadata and old is empty: any owned key in a binding is a change). Each owned annotation added, changed or
// removed is a violation; the check is always enforced, so only --mode=warn turns it into a warning. Messages name the
// key, never its value.
func evaluatePodMetadata(namespace string, binding bool, old, new *patch.Metadata) verdict.Verdict {
	changed := changedOwnedAnnotations(old.Annotations, new.Annotations)
	if len(changed) == 0 {
		return verdict.Verdict{}
	}
	v := verdict.Verdict{Kind: "Pod", Namespace: namespace}
	// "[ownership] annotation fluxidentity.dev/gcp-credential-config is set by the webhook at pod creation, not by a
	// binding" is 117 bytes.
	fix := ": recreate the pod"
	if binding {
		fix = ", not by a binding"
	}
	// A request can change any number of keys under the prefix: name a few, count the rest, so the denial and the
	// log line stay short.
	for _, k := range changed[:min(len(changed), maxContainerWarnings)] {
		v.Violations = append(v.Violations, verdict.Violation{RuleType: verdict.RuleOwnership, Mode: policy.ModeEnforce,
			Message: verdict.FitMessage(verdict.RuleOwnership, "annotation "+verdict.Clip(k)+" is set by the webhook at pod creation"+fix)})
	}
	if more := len(changed) - maxContainerWarnings; more > 0 {
		v.Violations = append(v.Violations, verdict.Violation{RuleType: verdict.RuleOwnership, Mode: policy.ModeEnforce,
			Message: verdict.FitMessage(verdict.RuleOwnership, fmt.Sprintf("%d more %s annotations changed", more,
				keys.OwnedPodAnnotationPrefix))})
	}
	return v
}

// changedOwnedAnnotations returns, sorted, the owned annotation keys that are in one map and not the other or differ
// between them. A nil map is an empty one.
func changedOwnedAnnotations(old, new map[string]string) []string {
	var changed []string
	for k, v := range new {
		if ov, ok := old[k]; strings.HasPrefix(k, keys.OwnedPodAnnotationPrefix) && (!ok || ov != v) {
			changed = append(changed, k)
		}
	}
	for k := range old {
		if _, ok := new[k]; strings.HasPrefix(k, keys.OwnedPodAnnotationPrefix) && !ok {
			changed = append(changed, k)
		}
	}
	slices.Sort(changed)
	return changed
}
