package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/wire"
)

// Server turns request frames into response frames for the network server.
type Server struct {
	broker *Broker
	// deferResponses lets Serve return a produce's response before its
	// appends are durable (see DeferResponses).
	deferResponses bool
}

// DeferResponses makes Serve answer a produce (acks 1 or all) with a
// response that is not ready yet, once its batches are queued in their
// logs but before they are written and fsynced, so the connection can
// serve its next produce meanwhile: the pipelined requests of one producer
// then share write rounds instead of paying an fsync each, in turn. The
// caller must keep the request frame unchanged until the response's Ready
// channel is closed, and write responses in request order (WriteTo waits
// for Ready). Call it before serving.
func (s *Server) DeferResponses() { s.deferResponses = true }

// CanPipeline reports whether the frame may be served while responses to
// earlier requests on its connection are still pending: a produce, whose
// effects are ordered by the log queue. Any other request waits until
// they are written, so, for one, a long-polling fetch never holds back a
// produce response, and a request whose handling depends on the
// connection's state (SASL) sees it settled.
func (s *Server) CanPipeline(ctx context.Context, frame []byte) bool {
	if sess := auth.SessionFromContext(ctx); sess != nil && sess.ExpectsRawToken() {
		return false
	}
	peek, err := wire.PeekHeader(frame)
	return err == nil && peek.APIKey == produceHandler.key
}

// CanInline reports whether the connection's reader may serve the frame
// itself while nothing else of its connection is being served: a fetch,
// whose response is never deferred and whose wait ends at its max wait
// (netserver.Inliner). A consumer long-polls with one fetch after another,
// and each handed to another goroutine cost a wake-up.
func (s *Server) CanInline(ctx context.Context, frame []byte) bool {
	if sess := auth.SessionFromContext(ctx); sess != nil && sess.ExpectsRawToken() {
		return false
	}
	peek, err := wire.PeekHeader(frame)
	return err == nil && peek.APIKey == fetchHandler.key
}

// deferredResponse is a response whose request was still being served
// when Serve returned; frame (or failed) is set before ready is closed.
type deferredResponse struct {
	ready  chan struct{}
	frame  wire.Frame
	failed bool // finishing it panicked: the connection must close
}

// Ready is closed once the response can be written.
func (d *deferredResponse) Ready() <-chan struct{} { return d.ready }

// errDeferredFailed makes the network server close a connection whose
// response could not be finished: the client's request would otherwise
// wait for an answer that never comes.
var errDeferredFailed = errors.New("the response could not be finished (see the broker's log)")

// WriteTo waits until the response is ready, then writes it.
func (d *deferredResponse) WriteTo(w io.Writer) (int64, error) {
	<-d.ready
	if d.failed {
		return 0, errDeferredFailed
	}
	if d.frame == nil {
		return 0, nil
	}
	return d.frame.WriteTo(w)
}

// finish builds the frame and closes ready. It runs on the goroutine that
// completed the request (a produce's last partition wait), outside the
// connection's panic recovery: a panic in throttling, audit or framing
// would take the broker down, so it is logged and fails this response
// instead, which closes its connection.
func (d *deferredResponse) finish(logger *slog.Logger, apiKey int16, build func() wire.Frame) {
	defer close(d.ready)
	defer func() {
		if p := recover(); p != nil {
			logger.Error("finishing a response panicked; closing its connection", "api_key", apiKey, "panic", p, "stack", string(debug.Stack()))
			d.frame, d.failed = nil, true
		}
	}()
	d.frame = build()
}

// Release does nothing: the frame is garbage once written.
func (d *deferredResponse) Release() {}

// NewServer returns a Server for b.
func NewServer(b *Broker) *Server {
	if b.Logger == nil {
		b.Logger = slog.Default()
	}
	b.fetchSessions = newFetchSessionCache(b.Config.MaxIncrementalFetchSessionCacheSlots)
	return &Server{broker: b}
}

// Request is one decoded request.
type Request struct {
	Header wire.RequestHeader
	Body   kmsg.Request // decoded, with its version set
	// ClientAddr is the client's address, for logs and DescribeProducers.
	ClientAddr string
	// Principal is who the connection authenticated as (auth.Anonymous on
	// a PLAINTEXT listener); the network server puts it in the context.
	Principal auth.Principal

	// received is when the request was decoded: its handling time, for
	// the request_percentage quota, counts from here.
	received time.Time
	// waited is how long the handler waited rather than worked (a
	// produce's waits for durability, replication and verification, the
	// coordinator calls of awaitCoordinator), set before it finishes: the
	// request_percentage quota does not charge it.
	waited time.Duration

	// errors are the error codes a hand-framed response carries (Fetch),
	// counted by its handler because there is no kmsg.Response to walk.
	errors errorCounts
	// authz is the request's authorization context, built on first use
	// (authzReady); kept by value so building it allocates nothing.
	authz      authz
	authzReady bool
}

// handlingTime is the time the request_percentage quota charges r by now:
// since it was received, less its handler's waits.
func (r *Request) handlingTime(now time.Time) time.Duration {
	return max(now.Sub(r.received)-r.waited, 0)
}

// noteError counts an error code of a hand-framed response.
func (r *Request) noteError(code int16) { r.errors.add(code) }

// Serve handles one request frame. It returns nil when the request gets no
// response (Produce with acks=0), and an error when the connection must be
// closed (a frame that does not parse).
func (s *Server) Serve(ctx context.Context, clientAddr string, frame []byte) (wire.Response, error) {
	sess := auth.SessionFromContext(ctx)
	if sess != nil && sess.ExpectsRawToken() {
		return s.serveRawToken(sess, clientAddr, frame)
	}
	peek, err := wire.PeekHeader(frame)
	if err != nil {
		return nil, err
	}
	clk := fetchClock(s.broker)
	start := clk.Now()
	var r *Request
	var resp kmsg.Response
	out, err := s.serve(ctx, clientAddr, frame, peek, &r, &resp)
	if _, deferred := out.(*deferredResponse); !deferred {
		// A deferred response is observed when it is finished.
		s.broker.observeRequest(peek.APIKey, clk.Now().Sub(start), r, resp, err)
	}
	return out, err
}

// serve is Serve after the header peek; it leaves the decoded request and
// the response in *rp and *respp for the request metrics.
func (s *Server) serve(ctx context.Context, clientAddr string, frame []byte, peek wire.RequestHeader, rp **Request, respp *kmsg.Response) (wire.Response, error) {
	if err := s.checkSaslState(auth.SessionFromContext(ctx), peek.APIKey, clientAddr); err != nil {
		return nil, err
	}
	h := lookup(peek.APIKey)
	if h == nil {
		// Kafka closes the connection for an unknown key: there is no
		// response shape to answer it with.
		return nil, fmt.Errorf("%w: unknown API key %d", wire.ErrMalformed, peek.APIKey)
	}
	if peek.APIVersion < h.minVersion || peek.APIVersion > h.maxVersion {
		if peek.APIKey == apiVersionsHandler.key {
			return unsupportedAPIVersions(peek), nil
		}
		return nil, fmt.Errorf("%w: %s v%d is outside v%d-%d", wire.ErrMalformed,
			kmsg.NameForKey(peek.APIKey), peek.APIVersion, h.minVersion, h.maxVersion)
	}
	header, body, err := wire.ParseRequestHeader(frame, wire.IsFlexible(peek.APIKey, peek.APIVersion))
	if err != nil {
		return nil, err
	}
	if err := wire.CheckRequest(header.APIKey, header.APIVersion, body); err != nil {
		return nil, err
	}
	req := kmsg.RequestForKey(header.APIKey)
	req.SetVersion(header.APIVersion)
	if err := req.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("%w: %s v%d: %v", wire.ErrMalformed, kmsg.NameForKey(header.APIKey), header.APIVersion, err)
	}
	r := &Request{Header: header, Body: req, ClientAddr: clientAddr, Principal: auth.FromContext(ctx),
		received: fetchClock(s.broker).Now()}
	*rp = r
	if h.serveFrame != nil {
		return h.serveFrame(ctx, s.broker, r)
	}
	if h.serveDeferred != nil && s.deferResponses {
		return s.serveDeferred(ctx, h, r, len(frame), respp)
	}
	resp, err := h.serve(ctx, s.broker, r)
	*respp = resp
	if err == nil {
		s.broker.throttleResponse(ctx, r, len(frame), r.handlingTime(fetchClock(s.broker).Now()), resp)
	}
	if (err != nil && !errors.Is(err, errCloseAfterResponse)) || resp == nil {
		return nil, err
	}
	s.broker.audit(r, resp)
	return wire.Frame(wire.AppendResponse(nil, header.APIKey, header.APIVersion, header.CorrelationID, resp)), err
}

// serveDeferred runs a handler that may finish after it returns. The
// response is throttled, audited, framed and observed once finished, from
// the goroutine that finished it; until then the caller holds a
// deferredResponse whose Ready is open.
func (s *Server) serveDeferred(ctx context.Context, h *handler, r *Request, frameBytes int, respp *kmsg.Response) (wire.Response, error) {
	d := &deferredResponse{ready: make(chan struct{})}
	start := fetchClock(s.broker).Now()
	finish := func(resp kmsg.Response) {
		d.finish(s.broker.Logger, r.Header.APIKey, func() wire.Frame {
			s.broker.throttleResponse(ctx, r, frameBytes, r.handlingTime(fetchClock(s.broker).Now()), resp)
			s.broker.audit(r, resp)
			frame := wire.Frame(wire.AppendResponse(nil, r.Header.APIKey, r.Header.APIVersion, r.Header.CorrelationID, resp))
			s.broker.observeRequest(r.Header.APIKey, fetchClock(s.broker).Now().Sub(start), r, resp, nil)
			return frame
		})
	}
	resp, pending, err := h.serveDeferred(ctx, s.broker, r, finish)
	if pending {
		return d, nil
	}
	*respp = resp
	if err == nil {
		s.broker.throttleResponse(ctx, r, frameBytes, r.handlingTime(fetchClock(s.broker).Now()), resp)
	}
	if (err != nil && !errors.Is(err, errCloseAfterResponse)) || resp == nil {
		return nil, err
	}
	s.broker.audit(r, resp)
	return wire.Frame(wire.AppendResponse(nil, r.Header.APIKey, r.Header.APIVersion, r.Header.CorrelationID, resp)), err
}
