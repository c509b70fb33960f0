package netserver

import (
	"context"
	"encoding/binary"
	"io"
	"sync"
	"testing"
	"time"
)

// opDeferred requests get a Deferred response that becomes ready when the
// test says, and may be pipelined; the others may not.
const opDeferred = 100

// opPipelinedEcho requests may be pipelined but are answered at once, as
// an acks=0 or refused produce is.
const opPipelinedEcho = 101

// deferredResponse answers with the id read from the request frame when it
// became ready: a frame recycled before then would give another id.
type deferredResponse struct {
	frame []byte
	ready chan struct{}
	id    []byte
}

func (d *deferredResponse) Ready() <-chan struct{} { return d.ready }

func (d *deferredResponse) complete() {
	d.id = append([]byte(nil), d.frame[:4]...)
	close(d.ready)
}

func (d *deferredResponse) WriteTo(w io.Writer) (int64, error) {
	<-d.ready
	b := binary.BigEndian.AppendUint32(nil, 4)
	n, err := w.Write(append(b, d.id...))
	return int64(n), err
}

func (d *deferredResponse) Release() {}

type pipelineHandler struct {
	*testHandler
	mu       sync.Mutex
	deferred map[uint32]*deferredResponse
	served   chan uint32
}

func (h *pipelineHandler) Serve(ctx context.Context, addr string, frame []byte) (Response, error) {
	id := binary.BigEndian.Uint32(frame)
	defer func() { h.served <- id }()
	if frame[4] == opPipelinedEcho {
		frame[4] = opEcho
	}
	if frame[4] != opDeferred {
		return h.testHandler.Serve(ctx, addr, frame)
	}
	d := &deferredResponse{frame: frame, ready: make(chan struct{})}
	h.mu.Lock()
	h.deferred[id] = d
	h.mu.Unlock()
	return d, nil
}

func (h *pipelineHandler) nextServed(t *testing.T) uint32 {
	t.Helper()
	select {
	case id := <-h.served:
		return id
	case <-time.After(waitLimit):
		t.Fatal("no request served")
		return 0
	}
}

func (h *pipelineHandler) CanPipeline(_ context.Context, frame []byte) bool {
	return frame[4] == opDeferred || frame[4] == opPipelinedEcho
}

func (h *pipelineHandler) complete(id uint32) {
	h.mu.Lock()
	d := h.deferred[id]
	h.mu.Unlock()
	d.complete()
}

// A connection serves pipelinable requests behind a Deferred response,
// keeps their frames until they are ready, writes the responses in request
// order whichever finishes first, and holds a request that may not be
// pipelined until the pending responses are out.
func TestNetserverDeferredResponsesInOrder(t *testing.T) {
	h := &pipelineHandler{testHandler: newTestHandler(), deferred: map[uint32]*deferredResponse{}, served: make(chan uint32, 8)}
	s := startServer(t, Config{MaxInFlightPerConn: 8}, h)
	c := dial(t, s)
	c.send(frame(payload(0, opDeferred, 64)), frame(payload(1, opDeferred, 64)), frame(payload(2, opEcho, 64)))
	for want := range uint32(2) {
		if got := h.nextServed(t); got != want {
			t.Fatalf("served %d, want %d", got, want)
		}
	}
	// Request 2 may not be pipelined: it is served only once 0 and 1
	// are written. Finishing 1 first must not let it out before 0.
	h.complete(1)
	select {
	case id := <-h.served:
		t.Fatalf("request %d served while deferred responses were pending", id)
	default:
	}
	h.complete(0)
	for want := range uint32(3) {
		if got := c.readID(); got != want {
			t.Fatalf("response %d, want %d", got, want)
		}
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.resp.checkAllReleased(t)
	if q := s.QueuedRequestBytes(); q != 0 {
		t.Errorf("QueuedRequestBytes = %d after all answered, want 0", q)
	}
}

// A response answered at once but queued behind a Deferred one goes out as
// soon as the Deferred one does, without waiting for another request.
func TestNetserverImmediateResponseBehindDeferred(t *testing.T) {
	h := &pipelineHandler{testHandler: newTestHandler(), deferred: map[uint32]*deferredResponse{}, served: make(chan uint32, 8)}
	s := startServer(t, Config{MaxInFlightPerConn: 8}, h)
	c := dial(t, s)
	c.send(frame(payload(0, opDeferred, 64)), frame(payload(1, opPipelinedEcho, 64)))
	for want := range uint32(2) {
		if got := h.nextServed(t); got != want {
			t.Fatalf("served %d, want %d", got, want)
		}
	}
	h.complete(0)
	for want := range uint32(2) {
		if got := c.readID(); got != want {
			t.Fatalf("response %d, want %d", got, want)
		}
	}
}

// A client that leaves while responses are deferred does not free their
// frames early: the connection waits for them, then drops the responses.
func TestNetserverDeferredResponseOutlivesClient(t *testing.T) {
	h := &pipelineHandler{testHandler: newTestHandler(), deferred: map[uint32]*deferredResponse{}, served: make(chan uint32, 8)}
	s := startServer(t, Config{MaxInFlightPerConn: 8}, h)
	c := dial(t, s)
	c.send(frame(payload(7, opDeferred, 64)))
	h.nextServed(t)
	c.nc.Close()
	eventually(t, "the frame still held", func() bool { return s.QueuedRequestBytes() > 0 })
	h.complete(7)
	h.mu.Lock()
	id := binary.BigEndian.Uint32(h.deferred[7].id)
	h.mu.Unlock()
	if id != 7 {
		t.Fatalf("deferred response read id %d from its frame, want 7", id)
	}
	eventually(t, "the frame released", func() bool { return s.QueuedRequestBytes() == 0 })
}

// A pipelined request whose handler fails (an acks=0 produce that failed:
// the connection must close) behind pending responses ends the serving:
// the earlier responses still go out, in order, but no later request is
// served, as none would be had it been served alone. A later produce
// appended with its response dropped by the close would be appended again
// by the client's retry.
func TestNetserverPipelinedFailureServesNothingAfter(t *testing.T) {
	h := &stressHandler{testHandler: newTestHandler()}
	failing := &failPipeliner{stressHandler: h}
	s := startServer(t, Config{MaxInFlightPerConn: 8}, failing)
	c := dial(t, s)
	// 1 is Deferred, finished shortly after Serve returns.
	c.send(frame(payload(1, opDeferred, 16)), frame(payload(5, opFail, 16)), frame(payload(7, opPipelinedEcho, 16)))
	if got := c.readID(); got != 1 {
		t.Fatalf("response %d, want 1", got)
	}
	c.expectClosed()
	if n := h.served.Load(); n != 1 {
		t.Errorf("the handler served %d requests besides the deferred one, want only the failing one", n)
	}
}

// failPipeliner lets a failing request be pipelined, as an acks=0 produce
// is.
type failPipeliner struct{ *stressHandler }

func (h *failPipeliner) CanPipeline(ctx context.Context, frame []byte) bool {
	return frame[4] == opFail || h.stressHandler.CanPipeline(ctx, frame)
}
