package webhook

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/types"
	admissionmetrics "sigs.k8s.io/controller-runtime/pkg/webhook/admission/metrics"

	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

const validReview = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
 "request":{"uid":"42","kind":{"group":"","version":"v1","kind":"ServiceAccount"},
 "resource":{"group":"","version":"v1","resource":"serviceaccounts"},"namespace":"ns","operation":"CREATE",
 "userInfo":{},"object":{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"sa","namespace":"ns"}}}}`

// serve sends a body to the ServiceAccount path of a front that maps nothing, so a valid review is simply allowed.
func serve(t *testing.T, s *Server, method, contentType, body string) (*httptest.ResponseRecorder, admissionv1.AdmissionReview) {
	t.Helper()
	if s == nil {
		s = NewServer(Options{Policy: Fixed{Policy: &policy.Policy{}}})
	}
	req := httptest.NewRequestWithContext(t.Context(), method, routes.PathMutateServiceAccount, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	rec := httptest.NewRecorder()
	s.Handler(routes.PathMutateServiceAccount).ServeHTTP(rec, req)
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("response is not an AdmissionReview: %v: %s", err, rec.Body.String())
	}
	if out.Response == nil {
		t.Fatalf("response review has no response: %s", rec.Body.String())
	}
	return rec, out
}

func TestReviewHandlerStatusCodes(t *testing.T) {
	tests := map[string]struct {
		method, contentType, body string
		limit                     int64
		wantStatus                int
		wantMessage               string
	}{
		"a valid review is answered 200 with its uid": {
			method: http.MethodPost, contentType: "application/json", body: validReview, wantStatus: http.StatusOK,
		},
		"a content type with parameters is accepted": {
			method: http.MethodPost, contentType: "application/json; charset=utf-8", body: validReview,
			wantStatus: http.StatusOK,
		},
		"malformed JSON gets 400": {
			method: http.MethodPost, contentType: "application/json", body: `{"apiVersion":`,
			wantStatus: http.StatusBadRequest, wantMessage: "decode AdmissionReview",
		},
		"a review of another version gets 400": {
			method: http.MethodPost, contentType: "application/json",
			body:       strings.Replace(validReview, "admission.k8s.io/v1", "admission.k8s.io/v1beta1", 1),
			wantStatus: http.StatusBadRequest, wantMessage: "expected admission.k8s.io/v1",
		},
		"a review without a request gets 400": {
			method: http.MethodPost, contentType: "application/json",
			body:       `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`,
			wantStatus: http.StatusBadRequest, wantMessage: "no request",
		},
		"an empty body gets 400": {
			method: http.MethodPost, contentType: "application/json", body: "",
			wantStatus: http.StatusBadRequest,
		},
		"a body over the cap gets 413": {
			method: http.MethodPost, contentType: "application/json", body: validReview, limit: 64,
			wantStatus: http.StatusRequestEntityTooLarge, wantMessage: "over the 64 byte limit",
		},
		"another content type gets 415": {
			method: http.MethodPost, contentType: "application/yaml", body: validReview,
			wantStatus: http.StatusUnsupportedMediaType,
		},
		"GET gets 405": {
			method: http.MethodGet, contentType: "application/json", body: "",
			wantStatus: http.StatusMethodNotAllowed,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var front *Server
			if tc.limit > 0 {
				front = NewServer(Options{Policy: Fixed{Policy: &policy.Policy{}}, MaxRequestBytes: tc.limit})
			}
			rec, out := serve(t, front, tc.method, tc.contentType, tc.body)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.wantStatus, rec.Body.String())
			}
			if tc.wantStatus != http.StatusOK && int(out.Response.Result.Code) != tc.wantStatus {
				t.Errorf("review result code %d, want %d", out.Response.Result.Code, tc.wantStatus)
			}
			if tc.wantStatus == http.StatusOK {
				if out.Response.UID != "42" || !out.Response.Allowed {
					t.Errorf("response %+v: want allowed with uid 42", out.Response)
				}
				if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" {
					t.Errorf("response typed %s %s", out.APIVersion, out.Kind)
				}
			}
			if out.Response.Result != nil && !strings.Contains(out.Response.Result.Message, tc.wantMessage) {
				t.Errorf("message %q does not contain %q", out.Response.Result.Message, tc.wantMessage)
			}
		})
	}
}

func TestReviewHandlerRefusesOversizedBodyFromContentLength(t *testing.T) {
	front := NewServer(Options{Policy: Fixed{Policy: &policy.Policy{}}, MaxRequestBytes: 1024})
	body := &countingReader{}
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/", body)
	req.ContentLength = 1 << 30
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	front.Handler(routes.PathMutateServiceAccount).ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", rec.Code)
	}
	if body.read != 0 {
		t.Errorf("read %d bytes of a body announced over the cap, want 0", body.read)
	}
}

type countingReader struct{ read int }

func (c *countingReader) Read(p []byte) (int, error) {
	c.read += len(p)
	return len(p), nil
}

// panickingPolicy panics where the front reads the policy: recovery must cover the whole request, not the handler only.
type panickingPolicy struct{}

func (panickingPolicy) Current() *policy.Policy { panic("policy source broke") }

func TestReviewHandlerTurnsPanicsIntoErrors(t *testing.T) {
	decidePanics := NewServer(Options{Policy: Fixed{Policy: &policy.Policy{}}})
	r := decidePanics.routes[routes.PathMutateServiceAccount]
	r.decide = func(*policy.Policy, []byte, time.Time) (types.UID, verdict.Verdict, error) { panic("boom") }
	for name, s := range map[string]*Server{
		"a panicking handler":       decidePanics,
		"a panicking policy source": NewServer(Options{Policy: panickingPolicy{}}),
	} {
		t.Run(name, func(t *testing.T) {
			before := testutil.ToFloat64(admissionmetrics.WebhookPanics.WithLabelValues())
			rec, out := serve(t, s, http.MethodPost, "application/json", validReview)
			if rec.Code != http.StatusInternalServerError {
				t.Fatalf("status %d, want 500", rec.Code)
			}
			if out.Response.Allowed || out.Response.Result.Code != http.StatusInternalServerError {
				t.Errorf("response %+v: want a 500 error result", out.Response.Result)
			}
			if got := testutil.ToFloat64(admissionmetrics.WebhookPanics.WithLabelValues()) - before; got != 1 {
				t.Errorf("panics counted %v times, want once", got)
			}
		})
	}
}

func TestReadBody(t *testing.T) {
	big := strings.Repeat("x", 300<<10) // past firstBodyBuffer: the buffer grows
	tests := map[string]struct {
		body     io.Reader
		declared int64
		into     []byte // a recycled buffer, holding an earlier body
		want     string
		wantErr  error
	}{
		"into a recycled buffer holding a longer body": {body: strings.NewReader("{}"), declared: 2,
			into: []byte(`{"an":"earlier, longer body"}`), want: "{}"},
		"into a recycled buffer too small": {body: strings.NewReader(big), declared: int64(len(big)),
			into: []byte("{}"), want: big},
		"declared and sent":            {body: strings.NewReader("{}"), declared: 2, want: "{}"},
		"large, in small reads":        {body: iotest.HalfReader(strings.NewReader(big)), declared: int64(len(big)), want: big},
		"chunked":                      {body: strings.NewReader(big), declared: -1, want: big},
		"shorter than declared":        {body: strings.NewReader("{}"), declared: 3, wantErr: io.ErrUnexpectedEOF},
		"large, shorter than declared": {body: strings.NewReader(big), declared: int64(len(big)) + 1, wantErr: io.ErrUnexpectedEOF},
		"a read error":                 {body: iotest.ErrReader(errors.New("reset")), declared: 10, wantErr: errors.New("reset")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/", tc.body)
			req.ContentLength = tc.declared
			got, err := readBody(httptest.NewRecorder(), req, DefaultMaxRequestBytes, time.Minute, tc.into, testCharge(t))
			if tc.wantErr != nil {
				if err == nil || err.Error() != tc.wantErr.Error() {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("read %d bytes (%v), want %d", len(got), err, len(tc.want))
			}
		})
	}
}

// TestReadBodyHoldsWhatArrivedNotWhatWasDeclared: a body declared at the cap but ending after 1 KiB costs about what
// arrived, not the 7 MiB it declared.
func TestReadBodyHoldsWhatArrivedNotWhatWasDeclared(t *testing.T) {
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/", strings.NewReader(strings.Repeat(" ", 1<<10)))
	req.ContentLength = DefaultMaxRequestBytes
	var before, after runtime.MemStats
	charge := testCharge(t)
	runtime.ReadMemStats(&before)
	if _, err := readBody(httptest.NewRecorder(), req, DefaultMaxRequestBytes, time.Minute, nil, charge); err == nil {
		t.Fatal("a body shorter than declared was read without error")
	}
	runtime.ReadMemStats(&after)
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 4*firstBodyBuffer {
		t.Errorf("allocated %d bytes for 1 KiB that arrived, want at most %d", allocated, 4*firstBodyBuffer)
	}
	if charge.small > bodyCostFactor*firstBodyBuffer || charge.large {
		t.Errorf("charged %d bytes (large slot %v) for 1 KiB that arrived, want at most %d", charge.small,
			charge.large, bodyCostFactor*firstBodyBuffer)
	}
}

// testCharge is a body charge on a server of its own.
func testCharge(t *testing.T) *bodyCharge {
	return &bodyCharge{s: NewServer(Options{}), client: "test", ctx: t.Context()}
}

// TestDecodeReviewReadsObjectsAsTheAPIServerDoes: a key must be a field's name exactly (a key in another case is an
// unknown field, as it is to kube-apiserver), and a value of the wrong type inside the object is a bad object (a 400
// result), not a bad request, whichever of the objects holds it.
func TestDecodeReviewReadsObjectsAsTheAPIServerDoes(t *testing.T) {
	type meta struct {
		Name string `json:"name"`
	}
	type view struct {
		Metadata *meta `json:"metadata"`
	}
	review := func(object, old string) []byte {
		return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1",` +
			`"object":` + object + `,"oldObject":` + old + `}}`)
	}
	tests := map[string]struct {
		object, old string
		wantName    string
		wantBad     bool
	}{
		"exact keys are read":                     {object: `{"metadata":{"name":"a"}}`, old: `null`, wantName: "a"},
		"a key in another case is unknown":        {object: `{"metadatA":{"name":"a"}}`, old: `null`},
		"a nested key in another case is unknown": {object: `{"metadata":{"Name":"a"}}`, old: `null`},
		"the object of the wrong type is bad":     {object: `{"metadata":{"name":7}}`, old: `null`, wantBad: true},
		"the old object of the wrong type is bad": {object: `{}`, old: `{"metadata":[]}`, wantBad: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req, err := decodeReview[view, view](review(tc.object, tc.old))
			var bad *verdict.BadObject
			if tc.wantBad != errors.As(err, &bad) || (err != nil && !tc.wantBad) {
				t.Fatalf("error %v, want a bad object: %v", err, tc.wantBad)
			}
			if req == nil || req.UID != "1" {
				t.Fatalf("request %+v: want uid 1", req)
			}
			got := ""
			if req.Object != nil && req.Object.Metadata != nil {
				got = req.Object.Metadata.Name
			}
			if !tc.wantBad && got != tc.wantName {
				t.Errorf("name %q, want %q", got, tc.wantName)
			}
		})
	}
}
