package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"time"

	"golang.org/x/sync/semaphore"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	admissionmetrics "sigs.k8s.io/controller-runtime/pkg/webhook/admission/metrics"

	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// The HTTP front is the one road every request takes, in production, in `policy explain`, in the fuzz targets and in
// the threat tests: method, content type and size checks, a memory budget for bodies, a read deadline, one decode of
// the review straight into the handler's view, the decision, one answer pipeline (answer.go), one encode; and panic
// recovery around all of it. It answers broken requests with real status codes: 400 for a body that is not an
// admission.k8s.io/v1 AdmissionReview, 405 for another method, 413 for a body over the cap (refused from
// Content-Length before reading it), 415 for another content type, 503 when the body budget stays full.

// DefaultMaxRequestBytes caps an AdmissionReview body. The API server sends at most two objects of 3 MiB each (old and
// new) plus the request envelope, so 7 MiB is the same bound controller-runtime uses.
const DefaultMaxRequestBytes = 7 << 20

// Body budget: the memory request bodies may hold at once. A body costs about three times its size while it is read
// and decoded. Small bodies (every ordinary API server request: a pod, a ServiceAccount, a Flux source) share a pool
// by that cost; a large body (over smallBodyBytes, rare in a cluster and the only way to make the server hold
// megabytes) is answered one at a time. So callers declaring huge bodies hold at most one large body's memory and
// never starve the cluster's own requests. A request that cannot reserve within budgetWait is answered 503 without
// its body being read.
const (
	smallBodyBytes    = 256 << 10
	smallPoolBytes    = 8 << 20
	bodyCostFactor    = 3
	budgetWait        = 2 * time.Second
	defaultReadWindow = 10 * time.Second
	firstBodyBuffer   = maxPooledBuffer
)

// Server serves the admission handlers at their paths.
type Server struct {
	opts   Options
	routes map[string]*route
	small  *semaphore.Weighted
	large  *semaphore.Weighted
}

// route is one path behind the front, bound to its decision (routes.go).
type route struct {
	srv    *Server
	path   string
	count  countedHandler
	decide decider
}

// NewServer builds the front and every handler.
func NewServer(o Options) *Server {
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = defaultReadWindow
	}
	s := &Server{opts: o, routes: map[string]*route{},
		small: semaphore.NewWeighted(smallPoolBytes), large: semaphore.NewWeighted(1)}
	for path, decide := range decisions {
		s.routes[path] = &route{srv: s, path: path, count: newCountedHandler(path), decide: decide}
	}
	return s
}

// Register serves every handler on srv at its fixed path.
func (s *Server) Register(srv ctrlwebhook.Server) {
	for path, r := range s.routes {
		srv.Register(path, r)
	}
}

// Handler is the HTTP handler of a path, nil for an unknown one.
func (s *Server) Handler(path string) http.Handler {
	if r, ok := s.routes[path]; ok {
		return r
	}
	return nil
}

// Answer runs a review body through the front of path, as the API server's request would: `policy explain` and the
// tests enter here. It returns the HTTP status and the response review.
func (s *Server) Answer(ctx context.Context, path string, body []byte) (int, *admissionv1.AdmissionReview, error) {
	h := s.Handler(path)
	if h == nil {
		return 0, nil, fmt.Errorf("no handler at %s", path)
	}
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		return rec.Code, nil, fmt.Errorf("decode answer: %w", err)
	}
	return rec.Code, &out, nil
}

// AnswerRequest wraps req in an AdmissionReview and answers it through the front of path.
func (s *Server) AnswerRequest(ctx context.Context, path string, req admissionv1.AdmissionRequest) (*admissionv1.AdmissionResponse, error) {
	review := admissionv1.AdmissionReview{Request: &req}
	review.SetGroupVersionKind(admissionv1.SchemeGroupVersion.WithKind("AdmissionReview"))
	body, err := json.Marshal(review)
	if err != nil {
		return nil, fmt.Errorf("encode review: %w", err)
	}
	_, out, err := s.Answer(ctx, path, body)
	if err != nil {
		return nil, err
	}
	if out.Response == nil {
		return nil, errors.New("the answer has no response")
	}
	return out.Response, nil
}

func (r *route) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var uid types.UID
	defer func() {
		// The whole request is covered: reading the policy, decoding, deciding, answering. A panic is an error
		// answer, never a crash.
		if p := recover(); p != nil {
			admissionmetrics.WebhookPanics.WithLabelValues().Inc()
			r.count.inc(DecisionErrored)
			r.srv.opts.Log.Error(fmt.Errorf("panic: %s", verdict.Clip(fmt.Sprint(p))), "admission handler panicked", "webhook", r.path)
			writeReview(w, http.StatusInternalServerError, uid, errorResponse(http.StatusInternalServerError,
				"internal error while answering the request"))
		}
	}()
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.refuse(w, http.StatusMethodNotAllowed, errors.New("admission reviews are POSTed"))
		return
	}
	if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		r.refuse(w, http.StatusUnsupportedMediaType, fmt.Errorf("content type %q: expected application/json",
			verdict.Clip(req.Header.Get("Content-Type"))))
		return
	}
	limit := r.srv.opts.MaxRequestBytes
	if req.ContentLength > limit {
		r.refuse(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body of %d bytes is over the %d byte limit",
			req.ContentLength, limit))
		return
	}
	release, ok := r.srv.reserve(req.Context(), req.ContentLength)
	if !ok {
		r.refuse(w, http.StatusServiceUnavailable, errors.New("too many large requests in flight; retry"))
		return
	}
	defer release()
	// A body trickled in slowly holds its reservation only this long.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(r.srv.opts.ReadTimeout))
	buf := buffers.get(int(min(max(req.ContentLength, 0), firstBodyBuffer)))
	defer buffers.put(buf) // after the answer is written: the body is dead by then
	body, err := readBody(w, req, limit, *buf)
	if body != nil {
		*buf = body[:0] // it may have grown
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			r.refuse(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body is over the %d byte limit", limit))
			return
		}
		r.refuse(w, http.StatusBadRequest, fmt.Errorf("read request body: %w", err))
		return
	}

	p := r.srv.opts.Policy.Current() // one policy version answers the whole request
	uid, v, err := r.decide(p, body, r.srv.now())
	var bad *badRequest
	var badObj *verdict.BadObject
	switch {
	case errors.As(err, &bad):
		r.refuse(w, http.StatusBadRequest, err)
		return
	case errors.As(err, &badObj):
		r.count.inc(DecisionErrored)
		writeReview(w, http.StatusOK, uid, errorResponse(http.StatusBadRequest, err.Error()))
		return
	case err != nil:
		r.count.inc(DecisionErrored)
		r.srv.opts.Log.Error(errors.New(verdict.Clip(err.Error())), "cannot evaluate the request", "webhook", r.path)
		writeReview(w, http.StatusOK, uid, errorResponse(http.StatusInternalServerError, err.Error()))
		return
	}
	if v.Log != nil {
		r.srv.opts.Log.Info(v.Log.Message, v.Log.KeysAndValues...)
	}
	resp, _ := respond(&v, r.srv.opts.Mode, r.count)
	writeReview(w, http.StatusOK, uid, resp)
	if resp.Patch != nil {
		patch := resp.Patch[:0]
		buffers.put(&patch)
	}
}

// readBody reads a request body of at most limit bytes. A declared length sizes the buffer only as far as the body
// arrives: one declared at megabytes and sent a byte at a time holds what was sent, not what was declared. A body of
// up to firstBodyBuffer bytes, as the API server's reviews are, is read into one buffer of its length.
func readBody(w http.ResponseWriter, req *http.Request, limit int64, body []byte) ([]byte, error) {
	r := http.MaxBytesReader(w, req.Body, limit)
	n := req.ContentLength
	if n < 0 {
		return io.ReadAll(r)
	}
	if first := int(min(n, firstBodyBuffer)); cap(body) < first {
		body = make([]byte, 0, first)
	}
	body = body[:0]
	for int64(len(body)) < n {
		if len(body) == cap(body) {
			body = slices.Grow(body, int(min(n, 2*int64(cap(body))))-len(body))
		}
		m, err := r.Read(body[len(body):min(int64(cap(body)), n)])
		body = body[:len(body)+m]
		switch {
		case int64(len(body)) == n:
		case err == io.EOF:
			return nil, io.ErrUnexpectedEOF
		case err != nil:
			return nil, err
		}
	}
	return body, nil
}

// refuse answers a request the front cannot take with a real status code and an error review.
func (r *route) refuse(w http.ResponseWriter, code int32, err error) {
	r.count.inc(DecisionErrored)
	writeReview(w, int(code), "", errorResponse(code, err.Error()))
}

// reserve takes a body's share of the budget; release gives it back. A body of unknown length (chunked) is a large
// one.
func (s *Server) reserve(ctx context.Context, contentLength int64) (release func(), ok bool) {
	pool, cost := s.large, int64(1)
	if contentLength >= 0 && contentLength <= smallBodyBytes {
		pool, cost = s.small, bodyCostFactor*max(contentLength, 1<<10)
	}
	if !pool.TryAcquire(cost) {
		ctx, cancel := context.WithTimeout(ctx, budgetWait)
		defer cancel()
		if err := pool.Acquire(ctx, cost); err != nil {
			return nil, false
		}
	}
	return func() { pool.Release(cost) }, true
}

func writeReview(w http.ResponseWriter, code int, uid types.UID, resp *admissionv1.AdmissionResponse) {
	buf := buffers.get(512 + len(resp.Patch)*4/3)
	*buf = appendReview(*buf, uid, resp)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(*buf) // a ResponseWriter copies what it is given before Write returns
	buffers.put(buf)
}
