// Package fluxobjects keeps long-lived credentials off Flux's objects where the policy mandates identity: it reads
// each object with Flux's own types, asks the credential model (internal/fluxauth) how Flux would authenticate it,
// and judges each use against the mandates covering the object. Admission, `audit` and `policy explain` all decide
// with Evaluate.
package fluxobjects

import (
	"encoding/json"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// Admit decides about a Flux object (a source, or another kind that reads credentials) being created or updated: it
// decodes the object with Flux's own types, asks Evaluate, and hands the violations to the answer, each in its
// mandate's mode. Deletions, status updates and objects
// being deleted are never evaluated.
func Admit(p *policy.Policy, req *verdict.Request[json.RawMessage, json.RawMessage], now time.Time) (verdict.Verdict, error) {
	if (req.Operation != admissionv1.Create && req.Operation != admissionv1.Update) || req.SubResource != "" {
		return verdict.Verdict{Skipped: true}, nil
	}
	if req.Object == nil {
		return verdict.Verdict{}, &verdict.BadObject{Err: verdict.ErrNoObject}
	}
	gvk := schema.GroupVersionKind{Group: req.Kind.Group, Version: req.Kind.Version, Kind: req.Kind.Kind}
	obj, err := fluxauth.Decode(gvk, *req.Object)
	if err != nil {
		return verdict.Verdict{}, &verdict.BadObject{Err: err}
	}
	if obj.Namespace == "" {
		obj.Namespace = req.Namespace
	}
	if obj.Name == "" {
		obj.Name = req.Name
	}
	if obj.Deleting { // removing the last finalizer of an object being deleted is part of deleting it
		return verdict.Verdict{Skipped: true}, nil
	}
	d := Evaluate(p, obj, now)
	v := d.Verdict()
	// An update that brings no violation the object did not already have is reported, not denied: Flux's own
	// finalizer and reconcile-request updates must not lock an object that predates the mandate.
	if req.Operation == admissionv1.Update && len(d.Violations) > 0 && req.OldObject != nil {
		if old, err := fluxauth.Decode(gvk, *req.OldObject); err == nil {
			old.Namespace, old.Name = obj.Namespace, obj.Name
			v.Unchanged = d.BringsNothingNew(Evaluate(p, old, now))
		}
	}
	if len(d.Violations) > 0 || d.Exception != nil {
		message := "Flux object decision"
		if a, _ := fluxauth.APIOf(d.Kind); a.Category == fluxauth.CategorySource {
			message = "Flux source decision"
		}
		v.Log = decisionLog(message, d, req.Operation, req.IsDryRun())
	}
	return v, nil
}
