package webhook

import (
	"context"
	"encoding/json"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/fluxauth"
)

// source keeps long-lived credentials off Flux sources where identity is mandated: it decodes the source with Flux's
// own types, asks EvaluateSource, and hands the violations to the answer pipeline, each in its mandate's mode.
// Deletions, status updates and objects being deleted are never evaluated.
func (s *Server) source(_ context.Context, p *policy.Policy, body []byte) (types.UID, verdict, error) {
	req, err := decodeReview[json.RawMessage, json.RawMessage](body)
	if err != nil {
		return uidOf(req), verdict{}, err
	}
	if (req.Operation != admissionv1.Create && req.Operation != admissionv1.Update) || req.SubResource != "" {
		return req.UID, verdict{skipped: true}, nil
	}
	if req.Object == nil {
		return req.UID, verdict{}, &badObject{errNoObject}
	}
	gvk := schema.GroupVersionKind{Group: req.Kind.Group, Version: req.Kind.Version, Kind: req.Kind.Kind}
	obj, err := fluxauth.Decode(gvk, *req.Object)
	if err != nil {
		return req.UID, verdict{}, &badObject{err}
	}
	if obj.Namespace == "" {
		obj.Namespace = req.Namespace
	}
	if obj.Name == "" {
		obj.Name = req.Name
	}
	if obj.Deleting { // removing the last finalizer of an object being deleted is part of deleting it
		return req.UID, verdict{skipped: true}, nil
	}
	now := s.now()
	d := EvaluateSource(p, obj, now)
	v := d.verdict()
	// An update that brings no violation the object did not already have is reported, not denied: Flux's own
	// finalizer and reconcile-request updates must not lock an object that predates the mandate.
	if req.Operation == admissionv1.Update && len(d.Violations) > 0 && req.OldObject != nil {
		if old, err := fluxauth.Decode(gvk, *req.OldObject); err == nil {
			old.Namespace, old.Name = obj.Namespace, obj.Name
			v.unchanged = d.BringsNothingNew(EvaluateSource(p, old, now))
		}
	}
	if len(d.Violations) > 0 || d.Exception != nil {
		fields := make([]string, len(d.Violations))
		for i, sv := range d.Violations {
			fields[i] = sv.Mandate + " " + sv.Field
		}
		s.opts.Log.Info("Flux source decision", "kind", d.Kind, "namespace", clip(d.Namespace), "name", clip(d.Name),
			"operation", clip(string(req.Operation)), "violations", fields, "excepted", d.Exception != nil, "dryRun", req.dryRun())
	}
	return req.UID, v, nil
}
