package webhook

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// review is an admission.k8s.io/v1 AdmissionReview reduced to what a decision reads, decoded in one pass with the
// object straight into the decision's view O (and the old object into OO): nothing else of the body is kept.
type review[O, OO any] struct {
	APIVersion string                  `json:"apiVersion"`
	Kind       string                  `json:"kind"`
	Request    *verdict.Request[O, OO] `json:"request"`
}

// badRequest is a body no decision can read: answered HTTP 400.
type badRequest struct{ err error }

func (e *badRequest) Error() string { return e.err.Error() }
func (e *badRequest) Unwrap() error { return e.err }

// decodeReview accepts only what the webhook configurations ask for: an admission.k8s.io/v1 AdmissionReview with a
// request carrying a uid. The body is read as the API server reads objects (verdict.DecodeObject), in one pass.
func decodeReview[O, OO any](body []byte) (*verdict.Request[O, OO], error) {
	var r review[O, OO]
	err := verdict.DecodeObject(body, &r)
	// A value of the wrong type inside the object does not stop the decoder (it skips the field and reports the first
	// such error): the review is well formed, only the object is not what the decision reads.
	objectErr := inObject(err)
	if err != nil && !objectErr {
		return nil, &badRequest{fmt.Errorf("decode AdmissionReview: %w", err)}
	}
	if r.APIVersion != admissionv1.SchemeGroupVersion.String() || r.Kind != "AdmissionReview" {
		return nil, &badRequest{fmt.Errorf("expected admission.k8s.io/v1 AdmissionReview, got %q %q",
			verdict.Clip(r.APIVersion), verdict.Clip(r.Kind))}
	}
	if r.Request == nil || r.Request.UID == "" {
		return nil, &badRequest{errors.New("AdmissionReview has no request or no request uid")}
	}
	if objectErr {
		return r.Request, &verdict.BadObject{Err: fmt.Errorf("decode the object: %w", err)}
	}
	return r.Request, nil
}

// inObject says whether err is a value of the wrong type inside the object or the old object. sigs.k8s.io/json keeps
// encoding/json's UnmarshalTypeError in an internal package (decode.go, the fork's UnmarshalTypeError: Field is the
// path from the root), so its Field is read by name.
func inObject(err error) bool {
	v := reflect.ValueOf(err)
	if err == nil || v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct ||
		!strings.HasSuffix(v.Type().String(), "json.UnmarshalTypeError") {
		return false
	}
	field := v.Elem().FieldByName("Field")
	return field.Kind() == reflect.String &&
		(strings.HasPrefix(field.String(), "request.object") || strings.HasPrefix(field.String(), "request.oldObject"))
}

// uidOf is the request's uid, or none when there is no request.
func uidOf[O, OO any](r *verdict.Request[O, OO]) types.UID {
	if r == nil {
		return ""
	}
	return r.UID
}
