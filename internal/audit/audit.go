// Package audit reads every Flux object a mandate covers in a cluster and decides each exactly as the admission
// webhook would (fluxobjects.Evaluate on fluxauth.Of of the object; fluxobjects.EvaluateSecret for a SOPS decryption
// Secret), plus what admission cannot see: the kubeconfig ConfigMaps Kustomizations and HelmReleases name
// (fluxobjects.EvaluateKubeConfig). Objects are read a page at a time and only the violating ones are kept, with the
// credentials Flux offers no identity alternative for, so a platform sees what remains. Only the kinds some mandate
// covers are read: without a mandate over Secrets, no Secret is listed.
package audit

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxcd/pkg/apis/meta"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/fluxobjects"
)

// Finding is one Flux object with at least one violation.
type Finding struct {
	Kind       string                  `json:"kind"`
	Namespace  string                  `json:"namespace"`
	Name       string                  `json:"name"`
	UID        types.UID               `json:"uid,omitempty"`
	Violations []fluxobjects.Violation `json:"violations"`
}

// Remaining is a credential a mandated namespace keeps because Flux offers no workload identity for it (a Slack
// webhook, a GitHub token for commit statuses): never denied, listed so a platform sees what remains.
type Remaining struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Field     string `json:"field"`
	// Reads says what Flux reads there (fluxauth.Row.Reads).
	Reads string `json:"reads"`
}

// Result is what Run found.
type Result struct {
	// Findings are the violating objects, ordered by namespace, kind and name.
	Findings []Finding `json:"findings"`
	// Remaining are the credentials without an identity alternative in mandated namespaces, in the same order.
	Remaining []Remaining `json:"remaining,omitempty"`
	// Checked counts the objects evaluated.
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

// Run lists every object of the kinds fluxauth knows that some mandate covers, cluster-wide, through l (whose client's
// scheme knows them: fluxauth.AddToScheme), and evaluates each as admission does at now. Objects being deleted are
// left out, as admission never evaluates them; a kind whose CRD is not installed is skipped. On an error the result
// holds what was found before it, with Incomplete set.
func Run(ctx context.Context, l *kubelist.Lister, p *policy.Policy, now time.Time) (Result, error) {
	a := NewAuditor(l, p, now)
	err := a.run(ctx)
	res := a.Result()
	if err != nil {
		res.Incomplete = err.Error()
	}
	return res, err
}

func (a *Auditor) run(ctx context.Context) error {
	for _, api := range fluxauth.APIs {
		if !a.p.CoversKind(api.Kind) {
			continue
		}
		err := kubelist.Pages(ctx, a.l, api.Kind, api.NewList, func(list client.ObjectList) error {
			return a.Page(ctx, list)
		})
		if apimeta.IsNoMatchError(err) {
			a.res.SkippedKinds = append(a.res.SkippedKinds, api.Kind)
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Auditor decides Flux objects a page at a time and keeps what Run reports. Run reads the pages itself; doctor, which
// reads every Flux kind for its status too, hands it the pages of the kinds some mandate covers, so each kind is
// listed once.
type Auditor struct {
	l   *kubelist.Lister
	p   *policy.Policy
	now time.Time
	res *Result
	// configMaps are the kubeconfig ConfigMaps read so far, by namespace/name.
	configMaps map[string]fluxobjects.KubeConfigMap
}

// NewAuditor decides objects as admission would at now; l reads the kubeconfig ConfigMaps objects name.
func NewAuditor(l *kubelist.Lister, p *policy.Policy, now time.Time) *Auditor {
	return &Auditor{l: l, p: p, now: now, res: &Result{}, configMaps: map[string]fluxobjects.KubeConfigMap{}}
}

// Result is what was found so far, in Run's order.
func (a *Auditor) Result() Result {
	res := *a.res
	res.Findings = slices.Clone(res.Findings)
	res.Remaining = slices.Clone(res.Remaining)
	slices.SortFunc(res.Findings, func(a, b Finding) int {
		return strings.Compare(a.Namespace+"\x00"+a.Kind+"\x00"+a.Name, b.Namespace+"\x00"+b.Kind+"\x00"+b.Name)
	})
	slices.SortStableFunc(res.Remaining, func(a, b Remaining) int {
		return strings.Compare(a.Namespace+"\x00"+a.Kind+"\x00"+a.Name, b.Namespace+"\x00"+b.Kind+"\x00"+b.Name)
	})
	return res
}

// Page decides every object of one page of a Flux kind's list (or of Secrets) and keeps the violating ones.
func (a *Auditor) Page(ctx context.Context, list client.ObjectList) error {
	objs, err := kubelist.LiveObjects(list)
	if err != nil {
		return err
	}
	for _, obj := range objs {
		if secret, ok := obj.(*corev1.Secret); ok {
			uses := fluxauth.SecretUses(secret.Data)
			if len(uses) == 0 {
				continue // not a SOPS decryption Secret: admission never sees it either
			}
			a.res.Checked++
			a.keep(fluxobjects.EvaluateSecret(a.p, secret.Namespace, secret.Name, secret.Data, a.now), secret.UID)
			continue
		}
		o, err := fluxauth.Of(obj)
		if err != nil {
			return err
		}
		a.res.Checked++
		d := fluxobjects.Evaluate(a.p, o, a.now)
		if o.KubeConfigConfigMapRef != "" && len(d.Mandates) > 0 {
			cm, err := a.configMap(ctx, o.Namespace, o.KubeConfigConfigMapRef)
			if err != nil {
				return err
			}
			d.Violations = append(d.Violations, fluxobjects.EvaluateKubeConfig(a.p, o, cm, a.now).Violations...)
		}
		a.keep(d, obj.GetUID())
		if len(d.Mandates) > 0 {
			for _, u := range fluxauth.Uses(o) {
				if u.Class == fluxauth.NoAlternative {
					a.res.Remaining = append(a.res.Remaining, Remaining{Kind: o.Kind, Namespace: o.Namespace,
						Name: o.Name, Field: fluxauth.Path(u.Field), Reads: u.Row.Reads})
				}
			}
		}
	}
	return nil
}

func (a *Auditor) keep(d fluxobjects.Decision, uid types.UID) {
	if len(d.Violations) > 0 {
		a.res.Findings = append(a.res.Findings, Finding{Kind: d.Kind, Namespace: d.Namespace, Name: d.Name,
			UID: uid, Violations: d.Violations})
	}
}

// configMap reads a kubeconfig ConfigMap once (pkg/auth utils GetRESTConfig reads its provider and
// serviceAccountName keys, in the object's namespace).
func (a *Auditor) configMap(ctx context.Context, namespace, name string) (fluxobjects.KubeConfigMap, error) {
	key := namespace + "/" + name
	if cm, ok := a.configMaps[key]; ok {
		return cm, nil
	}
	var obj corev1.ConfigMap
	err := a.l.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &obj)
	var cm fluxobjects.KubeConfigMap
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return cm, fmt.Errorf("read kubeconfig ConfigMap %s: %w", key, err)
	default:
		cm = fluxobjects.KubeConfigMap{Found: true, Provider: obj.Data[meta.KubeConfigKeyProvider],
			ServiceAccountName: obj.Data[meta.KubeConfigKeyServiceAccountName]}
	}
	a.configMaps[key] = cm
	return cm, nil
}
