package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// review is an admission.k8s.io/v1 AdmissionReview reduced to what a handler reads, decoded in one pass with the
// object straight into the handler's view O (and the old object into OO): nothing else of the body is kept.
type review[O, OO any] struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Request    *request[O, OO] `json:"request"`
}

type request[O, OO any] struct {
	UID         types.UID               `json:"uid"`
	Kind        metav1.GroupVersionKind `json:"kind"`
	SubResource string                  `json:"subResource"`
	Name        string                  `json:"name"`
	Namespace   string                  `json:"namespace"`
	Operation   admissionv1.Operation   `json:"operation"`
	UserInfo    struct {
		Username string `json:"username"`
	} `json:"userInfo"`
	DryRun    *bool `json:"dryRun"`
	Object    *O    `json:"object"`
	OldObject *OO   `json:"oldObject"`
}

// badObject is a well-formed review whose object is not what the handler reads: answered 200 with a 400 result.
type badObject struct{ err error }

func (e *badObject) Error() string { return e.err.Error() }
func (e *badObject) Unwrap() error { return e.err }

// none stands for an object a handler does not read.
type none struct{}

// decodeReview accepts only what the webhook configurations ask for: an admission.k8s.io/v1 AdmissionReview with a
// request carrying a uid.
func decodeReview[O, OO any](body []byte) (*request[O, OO], error) {
	var r review[O, OO]
	err := json.Unmarshal(body, &r)
	// A value of the wrong type inside the object does not stop the decoder (it skips the field and reports the first
	// such error): the review is well formed, only the object is not what the handler reads.
	var typeErr *json.UnmarshalTypeError
	objectErr := errors.As(err, &typeErr) &&
		(strings.HasPrefix(typeErr.Field, "request.object") || strings.HasPrefix(typeErr.Field, "request.oldObject"))
	if err != nil && !objectErr {
		return nil, &badRequest{fmt.Errorf("decode AdmissionReview: %w", err)}
	}
	if r.APIVersion != admissionv1.SchemeGroupVersion.String() || r.Kind != "AdmissionReview" {
		return nil, &badRequest{fmt.Errorf("expected admission.k8s.io/v1 AdmissionReview, got %q %q", clip(r.APIVersion),
			clip(r.Kind))}
	}
	if r.Request == nil || r.Request.UID == "" {
		return nil, &badRequest{errors.New("AdmissionReview has no request or no request uid")}
	}
	if objectErr {
		return r.Request, &badObject{fmt.Errorf("decode the object: %w", err)}
	}
	return r.Request, nil
}

// uidOf is the request's uid, or none when there is no request.
func uidOf[O, OO any](r *request[O, OO]) types.UID {
	if r == nil {
		return ""
	}
	return r.UID
}

// dryRun says whether the request will not be persisted.
func (r *request[O, OO]) dryRun() bool { return r.DryRun != nil && *r.DryRun }
