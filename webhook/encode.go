package webhook

import (
	"encoding/base64"
	"slices"
	"strconv"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fluxidentity/flux-identity-webhook/webhook/patch"
)

// appendReview writes the AdmissionReview answering a request, by hand: every answer takes this path, and encoding
// the few fields an answer has without reflection is a good part of what a request costs. It writes what
// encoding/json would write for admissionv1.AdmissionReview (TestAppendReviewMatchesEncodingJSON).
func appendReview(b []byte, uid types.UID, r *admissionv1.AdmissionResponse) []byte {
	b = append(b, `{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","response":{"uid":`...)
	b = patch.AppendString(b, string(uid))
	b = append(b, `,"allowed":`...)
	b = strconv.AppendBool(b, r.Allowed)
	if s := r.Result; s != nil {
		b = append(b, `,"status":{"metadata":{}`...)
		if s.Status != "" {
			b = append(b, `,"status":`...)
			b = patch.AppendString(b, s.Status)
		}
		if s.Message != "" {
			b = append(b, `,"message":`...)
			b = patch.AppendString(b, s.Message)
		}
		if s.Reason != "" {
			b = append(b, `,"reason":`...)
			b = patch.AppendString(b, string(s.Reason))
		}
		if s.Code != 0 {
			b = append(b, `,"code":`...)
			b = strconv.AppendInt(b, int64(s.Code), 10)
		}
		b = append(b, '}')
	}
	if len(r.Patch) > 0 {
		b = append(b, `,"patch":"`...)
		b = base64.StdEncoding.AppendEncode(b, r.Patch)
		b = append(b, '"')
	}
	if r.PatchType != nil {
		b = append(b, `,"patchType":`...)
		b = patch.AppendString(b, string(*r.PatchType))
	}
	if len(r.AuditAnnotations) > 0 {
		b = append(b, `,"auditAnnotations":{`...)
		keys := make([]string, 0, len(r.AuditAnnotations))
		for k := range r.AuditAnnotations {
			keys = append(keys, k)
		}
		slices.Sort(keys) // as encoding/json orders map keys
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = patch.AppendString(b, k)
			b = append(b, ':')
			b = patch.AppendString(b, r.AuditAnnotations[k])
		}
		b = append(b, '}')
	}
	if len(r.Warnings) > 0 {
		b = append(b, `,"warnings":[`...)
		for i, w := range r.Warnings {
			if i > 0 {
				b = append(b, ',')
			}
			b = patch.AppendString(b, w)
		}
		b = append(b, ']')
	}
	return append(b, "}}"...)
}
