package doctor

import (
	"context"
	"fmt"
	"slices"

	iacv1 "github.com/fluxcd/image-automation-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/audit"
	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// Every Flux object is read once, cluster-wide and a page at a time: the kinds a mandate covers are audited as the
// audit command does, and every kind is looked at for a status that says authentication failed, and for the
// ServiceAccounts objects name (which the controllers resolve only with the ObjectLevelWorkloadIdentity gate).
// Only the failing objects are kept.

// namer counts the objects of a controller's kinds that name a ServiceAccount for their identity.
type namer struct {
	count int
	first string
}

// readFluxObjects lists every kind of fluxauth.APIs, Secrets only where a mandate covers SOPS decryption Secrets
// (doctor never lists Secrets otherwise).
func (d *diagnosis) readFluxObjects(ctx context.Context) error {
	aud := audit.NewAuditor(d.l, d.p, d.now)
	err := d.readFluxKinds(ctx, aud)
	for _, f := range aud.Result().Findings {
		for _, v := range f.Violations {
			// Mandates in mode off only log; audit does not count them either.
			if v.Mode == policy.ModeOff {
				continue
			}
			d.findings = append(d.findings, Finding{Check: CheckAudit, Namespace: f.Namespace, Name: f.Kind + "/" + f.Name,
				Problem: v.Field + " violates mandate " + v.Mandate + " (" + string(v.Mode) + ")", Fix: v.Message})
		}
	}
	return err
}

func (d *diagnosis) readFluxKinds(ctx context.Context, aud *audit.Auditor) error {
	for _, api := range fluxauth.APIs {
		covered := d.p.CoversKind(api.Kind)
		if api.Kind == fluxauth.SecretKind && !covered {
			continue
		}
		err := kubelist.Pages(ctx, d.l, api.Kind, api.NewList, func(list client.ObjectList) error {
			if covered {
				if err := aud.Page(ctx, list); err != nil {
					return err
				}
			}
			if api.Kind == fluxauth.SecretKind {
				return nil
			}
			return d.scanPage(list)
		})
		switch {
		case apimeta.IsNoMatchError(err):
			if covered {
				d.notes = append(d.notes, "the cluster does not serve "+api.Kind+": its objects were not audited")
			}
		case apierrors.IsForbidden(err) && !covered:
			d.notes = append(d.notes, "no permission to list "+api.Resource+": their status was not checked")
		case err != nil:
			return err
		}
	}
	return nil
}

// scanPage keeps the objects of one page whose status says authentication failed, and counts those that name a
// ServiceAccount for their identity.
func (d *diagnosis) scanPage(list client.ObjectList) error {
	objs, err := kubelist.LiveObjects(list)
	if err != nil {
		return err
	}
	for _, obj := range objs {
		o, err := fluxauth.Of(obj)
		if err != nil {
			return err
		}
		api, _ := fluxauth.APIOf(o.Kind)
		for _, u := range fluxauth.Uses(o) {
			if u.Class == fluxauth.ObjectIdentity || u.Class == fluxauth.KMSIdentity {
				n := d.namers[api.Controller]
				if n.count == 0 {
					n.first = o.Namespace + "/" + o.Kind + "/" + o.Name
				}
				n.count++
				d.namers[api.Controller] = n
				break
			}
		}
		cond, m, failed := authCondition(obj)
		if !failed {
			continue
		}
		f := &authFailure{o: o, cond: cond, marker: m}
		if iua, ok := obj.(*iacv1.ImageUpdateAutomation); ok {
			f.source = client.ObjectKey{Namespace: iua.Spec.SourceRef.Namespace, Name: iua.Spec.SourceRef.Name}
			if f.source.Namespace == "" {
				f.source.Namespace = iua.Namespace
			}
		}
		d.failures = append(d.failures, f)
	}
	return nil
}

// conditioned is every Flux kind with status conditions (meta.ObjectWithConditions); notification-controller's
// v1beta3 Provider has none: its failures show as events on the Alerts that use it.
type conditioned interface {
	GetConditions() []metav1.Condition
}

// authCondition finds a condition saying the object could not authenticate: Ready False, or FetchFailed or Stalled
// True, with reason AuthenticationFailed (source-controller and image-reflector-controller: a Secret without the
// fields it needs, credentials refused, or identity options that could not be built) or FeatureGateDisabled, or with
// a message holding one of pkg/auth's errors (kustomize-controller, helm-controller and image-automation-controller
// wrap them in reasons of their own: BuildFailed, ReconciliationFailed, RESTClientError, SourceManagerFailed).
func authCondition(obj client.Object) (metav1.Condition, *authMarker, bool) {
	c, ok := obj.(conditioned)
	if !ok {
		return metav1.Condition{}, nil, false
	}
	conds := slices.Clone(c.GetConditions())
	// Ready first: it carries the latest failure's message.
	slices.SortStableFunc(conds, func(a, b metav1.Condition) int {
		return boolToInt(b.Type == meta.ReadyCondition) - boolToInt(a.Type == meta.ReadyCondition)
	})
	for _, cond := range conds {
		failing := cond.Type == meta.ReadyCondition && cond.Status == metav1.ConditionFalse ||
			(cond.Type == sourcev1.FetchFailedCondition || cond.Type == meta.StalledCondition) &&
				cond.Status == metav1.ConditionTrue
		if !failing {
			continue
		}
		m := markerIn(cond.Message)
		if m != nil || cond.Reason == sourcev1.AuthenticationFailedReason || cond.Reason == meta.FeatureGateDisabledReason {
			if m == nil && cond.Reason == meta.FeatureGateDisabledReason {
				m = &markers[0]
			}
			return cond, m, true
		}
	}
	return metav1.Condition{}, nil, false
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// resolveFailures finds whose identity each failing object uses (reading the GitRepository an ImageUpdateAutomation
// pushes with and the kubeconfig ConfigMaps, a GET each, once) and which ServiceAccounts must be read for it.
func (d *diagnosis) resolveFailures(ctx context.Context) error {
	for _, f := range d.failures {
		if err := d.resolveSubject(ctx, f); err != nil {
			return err
		}
		if s := f.subject; s != nil {
			d.wanted[s.namespace+"/"+s.name] = nil
		}
	}
	return nil
}

// gitRepository reads an ImageUpdateAutomation's GitRepository; nil when it does not exist.
func (d *diagnosis) gitRepository(ctx context.Context, key client.ObjectKey) (*fluxauth.Object, error) {
	var repo sourcev1.GitRepository
	err := d.l.Reader.Get(ctx, key, &repo)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read GitRepository %s: %w", key, err)
	}
	o, err := fluxauth.Of(&repo)
	return &o, err
}

// kubeConfigMap reads the keys of a kubeconfig ConfigMap pkg/auth utils GetRESTConfig reads: provider and
// serviceAccountName (meta.KubeConfigKeyProvider, KubeConfigKeyServiceAccountName).
func (d *diagnosis) kubeConfigMap(ctx context.Context, namespace, name string) (provider, serviceAccount string,
	found bool, err error,
) {
	var cm corev1.ConfigMap
	err = d.l.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &cm)
	switch {
	case apierrors.IsNotFound(err):
		return "", "", false, nil
	case err != nil:
		return "", "", false, fmt.Errorf("read kubeconfig ConfigMap %s/%s: %w", namespace, name, err)
	}
	return cm.Data[meta.KubeConfigKeyProvider], cm.Data[meta.KubeConfigKeyServiceAccountName], true, nil
}
