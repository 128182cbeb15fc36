package webhook

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fluxidentity/flux-identity-webhook/webhook/internal/admissiontest"
)

// TestAppendReviewMatchesEncodingJSON holds the hand-written encoder to encoding/json, byte for byte, on generated
// answers: every field present or not, strings with quotes, control characters, HTML characters, invalid UTF-8 and
// the line separators encoding/json escapes.
func TestAppendReviewMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 8))
	str := admissiontest.HostileStrings(r)
	for i := range 5000 {
		resp := &admissionv1.AdmissionResponse{Allowed: r.IntN(2) == 0}
		if r.IntN(2) == 0 {
			resp.Result = &metav1.Status{Message: str(), Code: int32(r.IntN(600))}
			if r.IntN(2) == 0 {
				resp.Result.Status, resp.Result.Reason = metav1.StatusFailure, metav1.StatusReasonForbidden
			}
		}
		if r.IntN(2) == 0 {
			resp.Patch = []byte(str() + `[{"op":"add"}]`)
			pt := admissionv1.PatchTypeJSONPatch
			resp.PatchType = &pt
		}
		if n := r.IntN(4); n > 0 {
			resp.AuditAnnotations = map[string]string{}
			for range n {
				resp.AuditAnnotations[str()] = str()
			}
		}
		for range r.IntN(3) {
			resp.Warnings = append(resp.Warnings, str())
		}
		uid := types.UID(str())
		resp.UID = uid
		out := admissionv1.AdmissionReview{Response: resp}
		out.SetGroupVersionKind(admissionv1.SchemeGroupVersion.WithKind("AdmissionReview"))
		want, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendReview(nil, uid, resp); string(got) != string(want) {
			t.Fatalf("case %d:\n got %s\nwant %s", i, got, want)
		}
	}
}
