package fluxobjects

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// SecretView is what the decision reads of a Secret: its name and the raw entries, of which only those
// kustomize-controller's Decryptor.ImportKeys reads are decoded (the registration's matchCondition sends only Secrets
// that carry one; no value is ever logged or answered).
type SecretView struct {
	Metadata struct {
		Name              string  `json:"name"`
		DeletionTimestamp *string `json:"deletionTimestamp"`
	} `json:"metadata"`
	Data       map[string]json.RawMessage `json:"data"`
	StringData map[string]json.RawMessage `json:"stringData"`
}

// entries are the SOPS entries of the Secret: data, with stringData written over it as the API server merges them
// (core v1 Convert_v1_Secret_To_core_Secret), for a manifest that `policy explain` reads as written.
func (s *SecretView) entries() (map[string][]byte, error) {
	out := map[string][]byte{}
	for key, raw := range s.Data {
		if fluxauth.SOPSField(key) == "" {
			continue
		}
		var b []byte // base64 in JSON
		if err := json.Unmarshal(raw, &b); err != nil {
			return nil, fmt.Errorf("decode data[%s]: %w", verdict.Clip(key), err)
		}
		out[key] = b
	}
	for key, raw := range s.StringData {
		if fluxauth.SOPSField(key) == "" {
			continue
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("decode stringData[%s]: %w", verdict.Clip(key), err)
		}
		out[key] = []byte(v)
	}
	return out, nil
}

// AdmitSecret decides about a SOPS decryption Secret being created or updated, under the mandates covering kind
// Secret in its namespace (EvaluateSecret). A Secret without SOPS entries is not evaluated; neither are deletions,
// subresources and Secrets being deleted. An update that brings no credential the Secret did not already hold is
// reported, not denied.
func AdmitSecret(p *policy.Policy, req *verdict.Request[SecretView, SecretView], now time.Time) (verdict.Verdict, error) {
	if (req.Operation != admissionv1.Create && req.Operation != admissionv1.Update) || req.SubResource != "" {
		return verdict.Verdict{Skipped: true}, nil
	}
	if req.Object == nil {
		return verdict.Verdict{}, &verdict.BadObject{Err: verdict.ErrNoObject}
	}
	if req.Object.Metadata.DeletionTimestamp != nil {
		return verdict.Verdict{Skipped: true}, nil
	}
	data, err := req.Object.entries()
	if err != nil {
		return verdict.Verdict{}, &verdict.BadObject{Err: err}
	}
	if len(data) == 0 {
		return verdict.Verdict{Skipped: true}, nil
	}
	name := req.Object.Metadata.Name
	if name == "" {
		name = req.Name
	}
	d := EvaluateSecret(p, req.Namespace, name, data, now)
	v := d.Verdict()
	if req.Operation == admissionv1.Update && len(d.Violations) > 0 && req.OldObject != nil {
		if old, err := req.OldObject.entries(); err == nil {
			v.Unchanged = d.BringsNothingNew(EvaluateSecret(p, req.Namespace, name, old, now))
		}
	}
	if len(d.Violations) > 0 || d.Exception != nil {
		v.Log = decisionLog("SOPS Secret decision", d, req.Operation, req.IsDryRun())
	}
	return v, nil
}

// decisionLog is the log line of a decision: where, which fields broke which mandate, never a value or a Secret's
// name from inside the object.
func decisionLog(message string, d Decision, op admissionv1.Operation, dryRun bool) *verdict.LogLine {
	var fields []string // each once: every entry of a Secret that breaks a row is a violation of its own
	for _, sv := range d.Violations {
		if f := sv.Mandate + " " + sv.Field; !slices.Contains(fields, f) {
			fields = append(fields, f)
		}
	}
	return &verdict.LogLine{Message: message, KeysAndValues: []any{"kind", d.Kind,
		"namespace", verdict.Clip(d.Namespace), "name", verdict.Clip(d.Name), "operation", verdict.Clip(string(op)),
		"violations", fields, "excepted", d.Exception != nil, "dryRun", dryRun}}
}
