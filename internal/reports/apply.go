package reports

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist"
)

// FieldManager owns, through server-side apply, every field of the reports audit writes.
const FieldManager = "flux-identity-webhook-audit"

// Applied is what Apply did for one format.
type Applied struct {
	API API
	// Written counts the reports applied, Deleted those of earlier runs in namespaces that have no findings now.
	Written, Deleted int
}

// Apply writes reports (Build's, all of api's format) through c and removes what earlier runs wrote and this one
// does not: each report is server-side applied, with ownership forced, as the one object keys.ReportSource of its
// namespace, so its results are exactly this run's (results is an atomic list in both CRDs: an apply replaces it
// whole); then every report labelled keys.LabelManagedBy=keys.ReportSource, listed page by page through l, whose
// namespace got none is deleted (with its UID as precondition, so a report written meanwhile survives). Reports of
// other tools are never touched. Fields are validated strictly: the API server refuses a field its CRD does not know
// instead of dropping it. It stops at the first error; what was done until then is in Applied.
//
// The caller must hand it the reports of a complete audit: a partial one would replace whole namespaces' results
// with some of them.
func Apply(ctx context.Context, c client.Client, l *kubelist.Lister, api API, reports []*unstructured.Unstructured,
) (Applied, error) {
	done := Applied{API: api}
	c = client.WithFieldValidation(c, metav1.FieldValidationStrict)
	keep := map[string]bool{}
	for _, r := range reports {
		if r.GroupVersionKind() != api.GroupVersionKind() {
			return done, fmt.Errorf("apply %s: got a %s", api.Kind, r.GroupVersionKind().Kind)
		}
		err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(r), client.FieldOwner(FieldManager),
			client.ForceOwnership)
		if err != nil {
			return done, fmt.Errorf("apply the %s of namespace %s: %w", api.Kind, r.GetNamespace(), err)
		}
		keep[r.GetNamespace()] = true
		done.Written++
	}
	var stale []metav1.PartialObjectMetadata
	err := kubelist.Pages(ctx, l, api.Kind, func() *metav1.PartialObjectMetadataList {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(api.GroupVersionKind().GroupVersion().WithKind(api.Kind + "List"))
		return list
	}, func(list *metav1.PartialObjectMetadataList) error {
		for _, item := range list.Items {
			if item.Name == keys.ReportSource && !keep[item.Namespace] {
				stale = append(stale, item)
			}
		}
		return nil
	}, client.MatchingLabels{keys.LabelManagedBy: keys.ReportSource})
	if err != nil {
		return done, err
	}
	for i := range stale {
		obj := &stale[i]
		obj.SetGroupVersionKind(api.GroupVersionKind())
		err := c.Delete(ctx, obj, client.Preconditions{UID: &obj.UID})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return done, fmt.Errorf("delete the %s of namespace %s: %w", api.Kind, obj.Namespace, err)
		}
		if err == nil {
			done.Deleted++
		}
	}
	return done, nil
}
