package doctor

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist"
)

// perNamespaceMax is the most namespaces doctor reads one by one. A List per namespace sends only what is needed but
// costs a request each, three kinds per namespace; one cluster-wide List in pages costs a request per 500 objects of
// the whole cluster. With a handful of mapped namespaces (Flux's own, a few tenants) per-namespace Lists read far
// less; with a thousand they would be 3,000 requests where a cluster-wide read takes a few dozen.
const perNamespaceMax = 16

// scope is where namespaced objects are read: in each of namespaces, or cluster-wide, the caller then skipping objects
// outside namespaces (every check asks the policy about each object's namespace anyway).
type scope struct {
	namespaces  []string
	clusterWide bool
}

// scopeFor reads namespaces one by one when they are few and a minority of the cluster's total, cluster-wide
// otherwise.
func scopeFor(namespaces []string, total int) scope {
	return scope{namespaces: namespaces,
		clusterWide: len(namespaces) > perNamespaceMax || 2*len(namespaces) > total}
}

// listIn reads newList's kind in s, a page at a time. A cluster-wide List that RBAC refuses before any page arrived
// falls back to one List per namespace, with a note: doctor needs no more than namespaced rights.
func listIn[L client.ObjectList](ctx context.Context, d *diagnosis, s scope, step string, newList func() L,
	page func(L) error,
) error {
	if s.clusterWide {
		read := false
		err := kubelist.Pages(ctx, d.l, step, newList, func(list L) error {
			read = true
			return page(list)
		})
		if read || !apierrors.IsForbidden(err) {
			return err
		}
		d.notes = append(d.notes, "no permission to list "+step+" cluster-wide: read them namespace by namespace")
	}
	for _, ns := range s.namespaces {
		if err := kubelist.Pages(ctx, d.l, step, newList, page, client.InNamespace(ns)); err != nil {
			return err
		}
	}
	return nil
}
