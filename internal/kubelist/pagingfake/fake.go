// Package pagingfake is controller-runtime's fake client with the paging the real API server does: a List with a
// limit returns at most that many objects and a continue token, which the next List must send back. (The fake client
// alone ignores limit and continue, so paging bugs would pass unnoticed.) It records every List it serves.
package pagingfake

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// Call is one List the client served.
type Call struct {
	// Kind is the listed kind without "List" (Pod, GitRepository); metadata-only lists name their kind too.
	Kind      string
	Namespace string // empty: cluster-wide
	Limit     int64
	Continue  string
}

// Client is a fake client that pages.
type Client struct {
	client.WithWatch

	// Fail, when set, answers a List with the error it returns for it instead of serving it (nil: serve), e.g.
	// Forbidden as RBAC would, or a NoKindMatchError for a CRD that is not installed.
	Fail func(Call) error

	mu    sync.Mutex
	calls []Call
}

// New builds a paging fake client holding objs. The objects keep their managedFields.
func New(scheme *runtime.Scheme, objs ...client.Object) *Client {
	c := &Client{}
	c.WithWatch = fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithReturnManagedFields().
		WithInterceptorFuncs(interceptor.Funcs{List: c.list}).Build()
	return c
}

// Forbidden is the error RBAC answers a List of kind with, for Fail.
func Forbidden(kind string) error {
	return apierrors.NewForbidden(schema.GroupResource{Resource: strings.ToLower(kind) + "s"}, "",
		errors.New("pagingfake: forbidden"))
}

// Calls returns the Lists served so far, in order.
func (c *Client) Calls() []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// continuePrefix marks this fake's tokens; anything else is refused, as the API server refuses a foreign token.
const continuePrefix = "pagingfake:"

func (c *Client) list(ctx context.Context, inner client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
	o := (&client.ListOptions{}).ApplyOptions(opts)
	gvk, err := apiutil.GVKForObject(list, inner.Scheme())
	if err != nil {
		return err
	}
	call := Call{Kind: strings.TrimSuffix(gvk.Kind, "List"), Namespace: o.Namespace, Limit: o.Limit, Continue: o.Continue}
	c.mu.Lock()
	c.calls = append(c.calls, call)
	c.mu.Unlock()
	if c.Fail != nil {
		if err := c.Fail(call); err != nil {
			return err
		}
	}
	offset := 0
	if o.Continue != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(o.Continue, continuePrefix))
		if !strings.HasPrefix(o.Continue, continuePrefix) || err != nil || n < 0 {
			return apierrors.NewBadRequest("pagingfake: invalid continue token " + strconv.Quote(o.Continue))
		}
		offset = n
	}
	unpaged := *o
	unpaged.Limit, unpaged.Continue = 0, ""
	if err := inner.List(ctx, list, &unpaged); err != nil {
		return err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return err
	}
	// The API server returns objects in key order (namespace, then name); so does every page here.
	slices.SortFunc(items, func(a, b runtime.Object) int {
		ma, mb := a.(client.Object), b.(client.Object)
		return cmp.Or(cmp.Compare(ma.GetNamespace(), mb.GetNamespace()), cmp.Compare(ma.GetName(), mb.GetName()))
	})
	offset = min(offset, len(items))
	end := len(items)
	list.SetContinue("")
	if o.Limit > 0 && int64(end-offset) > o.Limit {
		end = offset + int(o.Limit)
		list.SetContinue(continuePrefix + strconv.Itoa(end))
	}
	return meta.SetList(list, items[offset:end])
}
