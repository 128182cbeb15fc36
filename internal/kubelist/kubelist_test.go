package kubelist_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist"
	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist/pagingfake"
)

func serviceAccounts(n int, ns string) []client.Object {
	out := make([]client.Object, n)
	for i := range n {
		out[i] = &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("sa-%02d", i)}}
	}
	return out
}

func newList() *corev1.ServiceAccountList { return &corev1.ServiceAccountList{} }

func TestPages(t *testing.T) {
	t.Run("every object arrives exactly once, in pages no larger than the limit, each page asking for the next", func(t *testing.T) {
		c := pagingfake.New(clientgoscheme.Scheme, serviceAccounts(7, "a")...)
		var progress []kubelist.Progress
		l := &kubelist.Lister{Reader: c, PageSize: 3, OnPage: func(p kubelist.Progress) { progress = append(progress, p) }}
		var seen []string
		err := kubelist.Pages(t.Context(), l, "serviceaccounts", newList, func(list *corev1.ServiceAccountList) error {
			if len(list.Items) > 3 {
				t.Errorf("page of %d objects, limit 3", len(list.Items))
			}
			for _, sa := range list.Items {
				seen = append(seen, sa.Name)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) != 7 || seen[0] != "sa-00" || seen[6] != "sa-06" {
			t.Errorf("seen %v, want sa-00 … sa-06 once each", seen)
		}
		calls := c.Calls()
		if len(calls) != 3 || calls[0].Continue != "" || calls[1].Continue == "" || calls[2].Continue == calls[1].Continue {
			t.Errorf("calls %+v: want three, the later ones sending the token of the one before", calls)
		}
		for _, call := range calls {
			if call.Limit != 3 {
				t.Errorf("call %+v without the page size as its limit", call)
			}
		}
		want := []kubelist.Progress{{"serviceaccounts", 3, 1}, {"serviceaccounts", 6, 2}, {"serviceaccounts", 7, 3}}
		if fmt.Sprint(progress) != fmt.Sprint(want) || l.Progress() != want[2] {
			t.Errorf("progress %v (last %v), want %v", progress, l.Progress(), want)
		}
	})
	t.Run("the default page size is 500", func(t *testing.T) {
		c := pagingfake.New(clientgoscheme.Scheme)
		l := &kubelist.Lister{Reader: c}
		if err := kubelist.Pages(t.Context(), l, "sa", newList, func(*corev1.ServiceAccountList) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if calls := c.Calls(); len(calls) != 1 || calls[0].Limit != kubelist.DefaultPageSize {
			t.Errorf("calls %+v", calls)
		}
	})
	t.Run("options such as the namespace apply to every page", func(t *testing.T) {
		c := pagingfake.New(clientgoscheme.Scheme, append(serviceAccounts(3, "a"), serviceAccounts(5, "b")...)...)
		l := &kubelist.Lister{Reader: c, PageSize: 2}
		n := 0
		err := kubelist.Pages(t.Context(), l, "sa", newList, func(list *corev1.ServiceAccountList) error {
			for _, sa := range list.Items {
				if sa.Namespace != "b" {
					t.Errorf("%s/%s outside namespace b", sa.Namespace, sa.Name)
				}
				n++
			}
			return nil
		}, client.InNamespace("b"))
		if err != nil || n != 5 {
			t.Errorf("read %d (%v), want 5", n, err)
		}
	})
	t.Run("an error of the page function stops the read", func(t *testing.T) {
		c := pagingfake.New(clientgoscheme.Scheme, serviceAccounts(5, "a")...)
		stop := errors.New("stop")
		err := kubelist.Pages(t.Context(), &kubelist.Lister{Reader: c, PageSize: 2}, "sa", newList,
			func(*corev1.ServiceAccountList) error { return stop })
		if !errors.Is(err, stop) || len(c.Calls()) != 1 {
			t.Errorf("err %v after %d calls, want stop after 1", err, len(c.Calls()))
		}
	})
	t.Run("an API error names the step and keeps its status", func(t *testing.T) {
		c := pagingfake.New(clientgoscheme.Scheme)
		c.Fail = func(call pagingfake.Call) error { return pagingfake.Forbidden(call.Kind) }
		err := kubelist.Pages(t.Context(), &kubelist.Lister{Reader: c}, "serviceaccounts", newList,
			func(*corev1.ServiceAccountList) error { return nil })
		if !apierrors.IsForbidden(err) || !strings.HasPrefix(err.Error(), "list serviceaccounts: ") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestFakeRefusesAForeignContinueToken(t *testing.T) {
	c := pagingfake.New(clientgoscheme.Scheme, serviceAccounts(3, "a")...)
	err := c.List(t.Context(), newList(), client.Limit(1), client.Continue("not-mine"))
	if !apierrors.IsBadRequest(err) {
		t.Errorf("err = %v, want BadRequest", err)
	}
}

func TestLiveObjectsLeavesOutObjectsBeingDeleted(t *testing.T) {
	deleting := metav1.Now()
	list := &corev1.ServiceAccountList{Items: []corev1.ServiceAccount{
		{ObjectMeta: metav1.ObjectMeta{Name: "a"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "gone", DeletionTimestamp: &deleting, Finalizers: []string{"x"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "b"}},
	}}
	objs, err := kubelist.LiveObjects(list)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.GetName())
	}
	if strings.Join(names, ",") != "a,b" {
		t.Errorf("live objects %q, want a,b", names)
	}
}
