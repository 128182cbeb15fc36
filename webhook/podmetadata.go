package webhook

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// podMetadata refuses pod updates (and bindings, which merge their annotations into the pod) that add, change or
// remove an owned annotation. Its registration sends it only such requests (a CEL matchCondition), and fails closed:
// stopping the webhook cannot let a change through, and ordinary pod updates never wait on it.
//
// It reads a pod's metadata before and after the request: an update of the pod or of its status
// (k8s.io/kubernetes pkg/registry/core/pod/strategy.go: podStatusStrategy.PrepareForUpdate keeps metadata changes,
// while the ephemeralcontainers and resize strategies reset them with ResetObjectMetaForStatus), or a binding, whose
// annotations the API server merges into the pod (pod/storage/storage.go: BindingREST.setPodNodeAndMetadata; before
// is then empty). Any other request changes nothing it owns.
func (s *Server) podMetadata(_ context.Context, _ *policy.Policy, body []byte) (types.UID, verdict, error) {
	req, err := decodeReview[objectView, objectView](body)
	if err != nil {
		return uidOf(req), verdict{}, err
	}
	var old *objectMeta
	switch {
	case req.Operation == admissionv1.Update && (req.SubResource == "" || req.SubResource == "status"):
		if req.OldObject == nil {
			return req.UID, verdict{}, &badObject{errors.New("the update carries no old object")}
		}
		old = metaOf(req.OldObject.Metadata)
	case req.Operation == admissionv1.Create && req.Kind.Kind == "Binding": // pods/binding or the legacy bindings
		old = &noMetadata
	default:
		return req.UID, verdict{}, nil
	}
	if req.Object == nil {
		return req.UID, verdict{}, &badObject{errNoObject}
	}
	v := evaluatePodMetadata(req.Namespace, req.Operation == admissionv1.Create, old, metaOf(req.Object.Metadata))
	if len(v.violations) > 0 {
		// The messages name keys, never values: a credential configuration stays out of the log.
		msgs := make([]string, len(v.violations))
		for i, vi := range v.violations {
			msgs[i] = vi.message
		}
		s.opts.Log.Info("owned pod annotation change", "namespace", clip(req.Namespace), "name", clip(req.Name),
			"subResource", clip(req.SubResource), "user", clip(req.UserInfo.Username), "violations", msgs)
	}
	return req.UID, v, nil
}

// objectView is any object of which only the metadata matters.
type objectView struct {
	Metadata *objectMeta `json:"metadata"`
}

// evaluatePodMetadata decides about a pod whose metadata goes from old to new (for a binding, new is the Binding's
// metadata and old is empty: any owned key in a binding is a change). Each owned annotation added, changed or
// removed is a violation; the check is always enforced, so only --mode=warn turns it into a warning. Messages name the
// key, never its value.
func evaluatePodMetadata(namespace string, binding bool, old, new *objectMeta) verdict {
	changed := changedOwnedAnnotations(old.Annotations, new.Annotations)
	if len(changed) == 0 {
		return verdict{}
	}
	v := verdict{kind: "Pod", namespace: namespace}
	// "[ownership] annotation fluxidentity.dev/gcp-credential-config is set by the webhook at pod creation, not by a
	// binding" is 117 bytes.
	fix := ": recreate the pod"
	if binding {
		fix = ", not by a binding"
	}
	// A request can change any number of keys under the prefix: name a few, count the rest, so the denial and the
	// log line stay short.
	for _, k := range changed[:min(len(changed), maxContainerWarnings)] {
		v.violations = append(v.violations, violation{ruleType: RuleOwnership, mode: policy.ModeEnforce,
			message: fitMessage(RuleOwnership, "annotation "+clip(k)+" is set by the webhook at pod creation"+fix)})
	}
	if more := len(changed) - maxContainerWarnings; more > 0 {
		v.violations = append(v.violations, violation{ruleType: RuleOwnership, mode: policy.ModeEnforce,
			message: fitMessage(RuleOwnership, fmt.Sprintf("%d more %s annotations changed", more,
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
