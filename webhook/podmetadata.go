package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// ownershipRule labels pod metadata violations in messages, metrics and the audit log, as it does for unmapped
// ServiceAccounts: no policy entry is involved.
const ownershipRule = "ownership"

// podMetadataValidator refuses pod updates (and bindings, which merge their annotations into the pod) that add,
// change or remove an owned annotation. Its registration sends it only such requests (a CEL matchCondition), and
// fails closed: stopping the webhook cannot let a change through, and ordinary pod updates never wait on it.
type podMetadataValidator struct {
	opts  Options
	count countedHandler
}

var _ admission.Handler = &podMetadataValidator{}

func (h *podMetadataValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	old, obj, changes, err := podMetadataChange(req)
	if err != nil {
		h.count.errored.Inc()
		return admission.Errored(http.StatusBadRequest, err)
	}
	if !changes {
		h.count.allowed.Inc()
		return admission.Allowed("")
	}
	v := evaluatePodMetadata(req.Namespace, req.Operation == admissionv1.Create, old, obj)
	if len(v.violations) > 0 {
		// The messages name keys, never values: a credential configuration stays out of the log.
		logf.FromContext(ctx).Info("owned pod annotation change", "namespace", req.Namespace, "name", req.Name,
			"subResource", req.SubResource, "user", req.UserInfo.Username, "violations", v.violations)
	}
	return v.answer(h.opts.Mode, h.count)
}

// podMetadataChange reads a pod's metadata before and after req: an update of the pod or of its status
// (k8s.io/kubernetes pkg/registry/core/pod/strategy.go: podStatusStrategy.PrepareForUpdate keeps metadata changes,
// while the ephemeralcontainers and resize strategies reset them with ResetObjectMetaForStatus), or a binding, whose
// annotations the API server merges into the pod (pod/storage/storage.go: BindingREST.setPodNodeAndMetadata; before
// is then empty). changes is false for any other request.
func podMetadataChange(req admission.Request) (old, new *objectMeta, changes bool, err error) {
	switch {
	case req.Operation == admissionv1.Update && (req.SubResource == "" || req.SubResource == "status"):
		if old, err = decodeMetadata("old object", req.OldObject.Raw); err != nil {
			return nil, nil, false, err
		}
	case req.Operation == admissionv1.Create && req.Kind.Kind == "Binding": // pods/binding or the legacy bindings
		old = &noMetadata
	default:
		return nil, nil, false, nil
	}
	if new, err = decodeMetadata("object", req.Object.Raw); err != nil {
		return nil, nil, false, err
	}
	return old, new, true, nil
}

// objectView is any object of which only the metadata matters.
type objectView struct {
	Metadata *objectMeta `json:"metadata"`
}

func decodeMetadata(what string, raw []byte) (*objectMeta, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("decode %s: the request carries none", what)
	}
	var o objectView
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, fmt.Errorf("decode %s: %w", what, err)
	}
	return metaOf(o.Metadata), nil
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
	v := verdict{mode: policy.ModeEnforce, kind: "Pod", namespace: namespace, rule: ownershipRule}
	// "[ownership] annotation fluxidentity.dev/gcp-credential-config is set by the webhook at pod creation, not by a
	// binding" is 117 bytes.
	fix := ": recreate the pod"
	if binding {
		fix = ", not by a binding"
	}
	for _, k := range changed {
		v.violations = append(v.violations,
			message(ownershipRule, "annotation "+k+" is set by the webhook at pod creation"+fix, ""))
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
