// Package kubelist reads Kubernetes lists a page at a time, for the commands that read a whole cluster (doctor,
// audit): each page is handed to the caller and dropped before the next is requested, so memory holds one page and
// what the caller keeps, never the cluster's objects. It counts the requests and reports progress as it goes.
package kubelist

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// DefaultPageSize is the number of objects a page holds unless Lister.PageSize says otherwise: kubectl's own
// --chunk-size default, large enough that 10,000 objects take 20 requests, small enough that a page of pods stays a
// few MB.
const DefaultPageSize = 500

// Progress is where a read stands, reported after every page.
type Progress struct {
	// Step names what is being read ("pods", "GitRepository", ...).
	Step string
	// Read counts the objects of Step read so far.
	Read int
	// Requests counts the List requests sent so far, all steps together.
	Requests int
}

// Lister sends paged List requests through Reader. It is not safe for concurrent use.
type Lister struct {
	Reader client.Reader
	// PageSize is the limit of each request; DefaultPageSize when zero.
	PageSize int64
	// OnPage, when set, is called after every page.
	OnPage func(Progress)

	progress Progress
}

// Progress is the state after the last page read.
func (l *Lister) Progress() Progress { return l.progress }

// Pages lists newList's kind page by page with opts (a namespace, a selector) and calls page with each page, in the
// API server's order. It stops at the first error, its own or page's.
func Pages[L client.ObjectList](ctx context.Context, l *Lister, step string, newList func() L, page func(L) error,
	opts ...client.ListOption,
) error {
	size := l.PageSize
	if size <= 0 {
		size = DefaultPageSize
	}
	if l.progress.Step != step {
		l.progress.Step, l.progress.Read = step, 0
	}
	opts = append(opts[:len(opts):len(opts)], client.Limit(size))
	token := ""
	for {
		list := newList()
		l.progress.Requests++
		if err := l.Reader.List(ctx, list, append(opts, client.Continue(token))...); err != nil {
			return fmt.Errorf("list %s: %w", step, err)
		}
		l.progress.Read += meta.LenList(list)
		if l.OnPage != nil {
			l.OnPage(l.progress)
		}
		if err := page(list); err != nil {
			return err
		}
		if token = list.GetContinue(); token == "" {
			return nil
		}
	}
}

// LiveObjects returns the objects of one page that are not being deleted (admission never judges those, and their
// controllers are only removing finalizers).
func LiveObjects(list client.ObjectList) ([]client.Object, error) {
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, fmt.Errorf("read %T: %w", list, err)
	}
	out := make([]client.Object, 0, len(items))
	for _, item := range items {
		obj, ok := item.(client.Object)
		if !ok {
			return nil, fmt.Errorf("%T holds a %T", list, item)
		}
		if obj.GetDeletionTimestamp() == nil {
			out = append(out, obj)
		}
	}
	return out, nil
}
