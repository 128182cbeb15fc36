// Package audit reads every Flux source in a cluster and decides each exactly as the admission webhook would
// (fluxobjects.Evaluate on fluxauth.Of of the object): the backlog of sources that violate the policy's mandates.
// Sources are read a page at a time and only the violating ones are kept.
package audit

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/fluxobjects"
)

// Finding is one Flux source with at least one violation.
type Finding struct {
	Kind       string                        `json:"kind"`
	Namespace  string                        `json:"namespace"`
	Name       string                        `json:"name"`
	UID        types.UID                     `json:"uid,omitempty"`
	Violations []fluxobjects.SourceViolation `json:"violations"`
}

// Result is what Run found.
type Result struct {
	// Findings are the violating sources, ordered by namespace, kind and name.
	Findings []Finding `json:"findings"`
	// Checked counts the sources evaluated.
	Checked int `json:"checked"`
	// SkippedKinds are kinds whose CRD the cluster does not serve.
	SkippedKinds []string `json:"skippedKinds,omitempty"`
	// Incomplete says why the read stopped before the end, when it did; Findings then hold what was found until then.
	Incomplete string `json:"incomplete,omitempty"`
}

// Blocking counts the violations whose mandate is not off: what enforcement would deny or warn about.
func (r Result) Blocking() int {
	n := 0
	for _, f := range r.Findings {
		for _, v := range f.Violations {
			if v.Mode != policy.ModeOff {
				n++
			}
		}
	}
	return n
}

// lists are the list types of the Flux source kinds, keyed by fluxauth.Kinds.
var lists = map[string]func() client.ObjectList{
	sourcev1.GitRepositoryKind:  func() client.ObjectList { return &sourcev1.GitRepositoryList{} },
	sourcev1.OCIRepositoryKind:  func() client.ObjectList { return &sourcev1.OCIRepositoryList{} },
	sourcev1.HelmRepositoryKind: func() client.ObjectList { return &sourcev1.HelmRepositoryList{} },
	sourcev1.BucketKind:         func() client.ObjectList { return &sourcev1.BucketList{} },
	imagev1.ImageRepositoryKind: func() client.ObjectList { return &imagev1.ImageRepositoryList{} },
}

// Run lists every Flux source of the kinds fluxauth knows, cluster-wide, through l (whose client's scheme knows
// sourcev1 and imagev1), and evaluates each with fluxobjects.Evaluate at now. Objects being deleted are left out,
// as admission never evaluates them; a kind whose CRD is not installed is skipped. On an error the result holds
// what was found before it, with Incomplete set.
func Run(ctx context.Context, l *kubelist.Lister, p *policy.Policy, now time.Time) (Result, error) {
	var res Result
	err := run(ctx, l, p, now, &res)
	slices.SortFunc(res.Findings, func(a, b Finding) int {
		return strings.Compare(a.Namespace+"\x00"+a.Kind+"\x00"+a.Name, b.Namespace+"\x00"+b.Kind+"\x00"+b.Name)
	})
	if err != nil {
		res.Incomplete = err.Error()
	}
	return res, err
}

func run(ctx context.Context, l *kubelist.Lister, p *policy.Policy, now time.Time, res *Result) error {
	for _, kind := range fluxauth.Kinds {
		newList, ok := lists[kind]
		if !ok {
			return fmt.Errorf("audit does not know the list type of %s", kind)
		}
		err := kubelist.Pages(ctx, l, kind, newList, func(list client.ObjectList) error {
			return evaluate(list, p, now, res)
		})
		if apimeta.IsNoMatchError(err) {
			res.SkippedKinds = append(res.SkippedKinds, kind)
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// evaluate decides every source of one page and keeps the violating ones.
func evaluate(list client.ObjectList, p *policy.Policy, now time.Time, res *Result) error {
	items, err := apimeta.ExtractList(list)
	if err != nil {
		return fmt.Errorf("read %T: %w", list, err)
	}
	for _, item := range items {
		obj, ok := item.(client.Object)
		if !ok {
			return fmt.Errorf("%T holds a %T", list, item)
		}
		src, err := fluxauth.Of(obj)
		if err != nil {
			return err
		}
		if src.Deleting {
			continue
		}
		res.Checked++
		if d := fluxobjects.Evaluate(p, src, now); len(d.Violations) > 0 {
			res.Findings = append(res.Findings, Finding{Kind: d.Kind, Namespace: d.Namespace, Name: d.Name,
				UID: obj.GetUID(), Violations: d.Violations})
		}
	}
	return nil
}
