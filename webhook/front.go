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
	"os"
	"slices"
	"time"

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
// admission.k8s.io/v1 AdmissionReview, 405 for another method, 408 for a body that arrives too slowly, 413 for a body
// over the cap (refused from Content-Length before reading it), 415 for another content type, 503 when its client's
// share of the body budget or of the handler slots stays taken.

// DefaultMaxRequestBytes caps an AdmissionReview body. The API server sends at most two objects of 3 MiB each (old and
// new) plus the request envelope, so 7 MiB is the same bound controller-runtime uses.
const DefaultMaxRequestBytes = 7 << 20

// Body budget: the memory request bodies may hold at once. A body costs about three times its size while it is read
// and decoded, and it is charged for what has arrived, never for what its Content-Length declares: its buffer grows
// as bytes come in (the first step holds up to firstBodyBuffer), and each step is charged before it is allocated. A
// body of up to smallBodyBytes (every ordinary API server request: a pod, a ServiceAccount, a Flux source) is charged
// to the small pool; one that grows past it (rare in a cluster, and the only way to make the server hold megabytes)
// gives its share back and waits for the large slot, which one body at a time holds. Both are shared per client
// (share.go), so callers that hold bodies open or send huge ones hold at most their share and never starve the
// cluster's own requests. A request that cannot get what it needs within budgetWait is answered 503.
//
// A body must also keep arriving: it gets bodyGrace, and one second more for each minBodyRate bytes received, up to
// ReadTimeout (as Apache's mod_reqtimeout: body=5,MinRate=65536). The API server sends a review in one go; a body
// trickled in a byte a second is cut after bodyGrace.
//
// Handler slots bound the decisions in flight: the decode, decision and answer of a request run only while it holds
// one, shared per client the same way.
const (
	smallBodyBytes    = 256 << 10
	smallPoolBytes    = 8 << 20
	bodyCostFactor    = 3
	minBodyCost       = 1 << 10
	budgetWait        = 2 * time.Second
	defaultReadWindow = 10 * time.Second
	firstBodyBuffer   = 16 << 10
	bodyGrace         = 5 * time.Second
	minBodyRate       = 64 << 10 // bytes a second
	handlerSlots      = 128
)

// Server serves the admission handlers at their paths.
type Server struct {
	opts   Options
	routes map[string]*route
	small  *fairShare // bytes of small bodies, charged bodyCostFactor per byte
	large  *fairShare // the large-body slot
	slots  *fairShare // handler slots
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
		small: newFairShare(smallPoolBytes), large: newFairShare(1), slots: newFairShare(handlerSlots)}
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
	client := clientOf(req)
	charge := bodyCharge{s: r.srv, client: client, ctx: req.Context()}
	defer charge.release() // after the answer is written: the body and what was decoded from it are dead by then
	buf := buffers.get(int(min(max(req.ContentLength, 0), firstBodyBuffer)))
	defer buffers.put(buf)
	body, err := readBody(w, req, limit, r.srv.opts.ReadTimeout, *buf, &charge)
	if body != nil {
		*buf = body[:0] // it may have grown
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			r.refuse(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body is over the %d byte limit", limit))
		case errors.Is(err, errBodyBudget):
			requestsShed.WithLabelValues("body").Inc()
			r.refuse(w, http.StatusServiceUnavailable, errors.New("too many request bodies in flight; retry"))
		case errors.Is(err, os.ErrDeadlineExceeded):
			requestsShed.WithLabelValues("rate").Inc()
			r.refuse(w, http.StatusRequestTimeout, errors.New("request body arrived too slowly"))
		default:
			r.refuse(w, http.StatusBadRequest, fmt.Errorf("read request body: %w", err))
		}
		return
	}
	if !r.srv.slots.acquire(req.Context(), client, 1, budgetWait) {
		requestsShed.WithLabelValues("slot").Inc()
		r.refuse(w, http.StatusServiceUnavailable, errors.New("too many requests in flight; retry"))
		return
	}
	defer r.srv.slots.release(client, 1)

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

// errBodyBudget is a body that could not get its share of the body budget in time.
var errBodyBudget = errors.New("body budget exhausted")

// readBody reads a request body of at most limit bytes into body, growing it only as bytes arrive and charging each
// step to charge before it is allocated: one declared at megabytes and sent a byte at a time holds what was sent, not
// what was declared. A body of up to firstBodyBuffer bytes, as the API server's reviews are, is read into one buffer
// of its length, charged once. The read deadline starts at bodyGrace and moves out with what arrives
// (minBodyRate), never past window.
func readBody(w http.ResponseWriter, req *http.Request, limit int64, window time.Duration, body []byte,
	charge *bodyCharge,
) ([]byte, error) {
	rc := http.NewResponseController(w)
	start := time.Now()
	deadline := bodyDeadline(start, 0, window)
	_ = rc.SetReadDeadline(deadline)
	r := http.MaxBytesReader(w, req.Body, limit)
	n := req.ContentLength
	end := limit + 1 // the most a body of unknown length may grow to: MaxBytesReader fails past limit
	if n >= 0 {
		end = n
	}
	body = body[:0]
	room := 0 // what the charge covers
	for int64(len(body)) < end {
		if len(body) == room {
			next := int(min(end, max(firstBodyBuffer, 2*int64(room))))
			if !charge.allow(int64(next)) {
				return nil, errBodyBudget
			}
			room = next
			if cap(body) < room {
				body = slices.Grow(body, room-len(body))
			}
		}
		m, err := r.Read(body[len(body):room])
		body = body[:len(body)+m]
		switch {
		case err == io.EOF && n < 0:
			return body, nil
		case err == io.EOF && int64(len(body)) < n:
			return nil, io.ErrUnexpectedEOF
		case err != nil && err != io.EOF:
			return nil, err
		}
		if m > 0 && int64(len(body)) < end {
			if next := bodyDeadline(start, len(body), window); next.Sub(deadline) >= 100*time.Millisecond {
				deadline = next
				_ = rc.SetReadDeadline(deadline)
			}
		}
	}
	return body, nil
}

// bodyDeadline is when a body that started arriving at start, and of which arrived bytes came, must have arrived:
// bodyGrace, and a second more for each minBodyRate bytes, never past window. A body arriving at minBodyRate or
// faster keeps its deadline ahead of it.
func bodyDeadline(start time.Time, arrived int, window time.Duration) time.Time {
	return start.Add(min(window, bodyGrace+time.Duration(arrived)*time.Second/minBodyRate))
}

// bodyCharge is what one request's body holds of the budget.
type bodyCharge struct {
	s      *Server
	client string
	ctx    context.Context
	small  int64 // of the small pool
	large  bool  // the large slot
}

// allow makes room for a body of size bytes: from the small pool while it is at most smallBodyBytes, then the large
// slot (and the small pool's share is given back).
func (c *bodyCharge) allow(size int64) bool {
	if size > smallBodyBytes {
		if !c.large {
			if !c.s.large.acquire(c.ctx, c.client, 1, budgetWait) {
				return false
			}
			c.large = true
			c.s.small.release(c.client, c.small)
			c.small = 0
		}
		return true
	}
	cost := bodyCostFactor * max(size, minBodyCost)
	if cost > c.small {
		if !c.s.small.acquire(c.ctx, c.client, cost-c.small, budgetWait) {
			return false
		}
		c.small = cost
	}
	return true
}

func (c *bodyCharge) release() {
	c.s.small.release(c.client, c.small)
	if c.large {
		c.s.large.release(c.client, 1)
	}
}

// refuse answers a request the front cannot take with a real status code and an error review.
func (r *route) refuse(w http.ResponseWriter, code int32, err error) {
	r.count.inc(DecisionErrored)
	writeReview(w, int(code), "", errorResponse(code, err.Error()))
}

func writeReview(w http.ResponseWriter, code int, uid types.UID, resp *admissionv1.AdmissionResponse) {
	buf := buffers.get(512 + len(resp.Patch)*4/3)
	*buf = appendReview(*buf, uid, resp)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(*buf) // a ResponseWriter copies what it is given before Write returns
	buffers.put(buf)
}
