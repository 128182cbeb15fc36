package verdict

import (
	"errors"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kjson "sigs.k8s.io/json"
)

// Request is an admission.k8s.io/v1 AdmissionRequest reduced to what a decision reads, with the object decoded
// straight into the decision's view O (and the old object into OO): the front decodes the review once into it.
type Request[O, OO any] struct {
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

// IsDryRun says whether the request will not be persisted.
func (r *Request[O, OO]) IsDryRun() bool { return r.DryRun != nil && *r.DryRun }

// None stands for an object a decision does not read.
type None struct{}

// BadObject is a well-formed review whose object is not what the decision reads: the front answers 200 with a 400
// result.
type BadObject struct{ Err error }

func (e *BadObject) Error() string { return e.Err.Error() }
func (e *BadObject) Unwrap() error { return e.Err }

// ErrNoObject answers a review without the object the decision is about.
var ErrNoObject = errors.New("the request carries no object")

// DecodeObject decodes an object, or a part of one, as kube-apiserver decodes objects: with
// sigs.k8s.io/json.UnmarshalCaseSensitivePreserveInts, as k8s.io/apimachinery pkg/runtime/serializer/json
// Serializer.unmarshal does, so a key must be a field's name exactly. encoding/json would also take "metadatA" for metadata or "Env" for env, and a patch planned
// from that reading names paths the object does not have. The API server sends only its own serialization, so only
// a caller that is not the API server sends such keys; to a decision they are unknown fields, as to the API server.
func DecodeObject(b []byte, v any) error { return kjson.UnmarshalCaseSensitivePreserveInts(b, v) }
