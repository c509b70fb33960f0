package netserver

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"
)

// opInline is served like opBlock when the test's gate is set, else like
// opEcho, and inlineHandler lets the reader serve it itself.
const opInline = opPanic + 1

type inlineHandler struct {
	*testHandler
	block bool // opInline waits for the gate or ctx
}

func (h *inlineHandler) CanInline(_ context.Context, frame []byte) bool {
	return frame[4] == opInline
}

func (h *inlineHandler) Serve(ctx context.Context, addr string, frame []byte) (Response, error) {
	if frame[4] != opInline {
		return h.testHandler.Serve(ctx, addr, frame)
	}
	h.served.Add(1)
	id := binary.BigEndian.Uint32(frame)
	if h.block {
		if h.entered != nil {
			h.entered <- id
		}
		select {
		case <-h.gate:
		case <-ctx.Done():
		}
	}
	return h.resp.idResponse(id), nil
}

// TestNetserverInlineKeepsOrder: requests the reader serves itself and
// requests a processor serves, pipelined in a random mix, are answered in
// request order.
func TestNetserverInlineKeepsOrder(t *testing.T) {
	h := &inlineHandler{testHandler: newTestHandler()}
	s := startServer(t, Config{}, h)
	c := dial(t, s)
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 400
	var frames [][]byte
	for id := range uint32(n) {
		op := byte(opInline)
		if rng.IntN(2) == 0 {
			op = opSlow
		}
		frames = append(frames, frame(payload(id, op, 0)))
	}
	go func() {
		for _, f := range frames {
			if _, err := c.nc.Write(f); err != nil {
				return
			}
		}
	}()
	for id := range uint32(n) {
		if got := c.readID(); got != id {
			t.Fatalf("response %d, want %d", got, id)
		}
	}
	h.resp.checkAllReleased(t)
}

// TestNetserverInlineMutesReading: while the reader serves a request, the
// connection is not read (a later request stays in the socket), and the
// later request is served once the first is answered; Close ends an
// inline wait.
func TestNetserverInlineMutesReading(t *testing.T) {
	h := &inlineHandler{testHandler: newTestHandler(), block: true}
	h.entered = make(chan uint32, 1)
	s := startServer(t, Config{}, h)
	c := dial(t, s)
	c.send(frame(payload(1, opInline, 0)))
	<-h.entered
	c.send(frame(payload(2, opInline, 100)))
	// Not a timing assertion: had the reader read on, the frame would be
	// queued by now on any machine not stalled; never reading it cannot
	// make this fail.
	time.Sleep(50 * time.Millisecond)
	if q := s.QueuedRequestBytes(); q != payloadMin {
		t.Fatalf("QueuedRequestBytes = %d while the reader serves, want %d: the served frame's only", q, payloadMin)
	}
	h.gate <- struct{}{}
	if got := c.readID(); got != 1 {
		t.Fatalf("response %d, want 1", got)
	}
	<-h.entered // request 2, read and served once 1 was answered
	s.Close()
	c.drainUntilClosed()
	h.resp.checkAllReleased(t)
}

// TestNetserverInlineBehindLingeringProcessor: a request the processor
// served leaves it lingering; the inline requests that follow are served
// by the reader all the same (not read ahead), in order.
func TestNetserverInlineBehindLingeringProcessor(t *testing.T) {
	h := &inlineHandler{testHandler: newTestHandler(), block: true}
	h.entered = make(chan uint32, 1)
	s := startServer(t, Config{}, h)
	c := dial(t, s)
	c.roundTrip(1) // served by a processor, which then lingers
	eventually(t, "the processor lingers", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for sc := range s.conns {
			sc.mu.Lock()
			lingering := sc.lingering && sc.answered
			sc.mu.Unlock()
			return lingering
		}
		return false
	})
	c.send(frame(payload(2, opInline, 0)))
	<-h.entered
	c.send(frame(payload(3, opEcho, 100)))
	time.Sleep(50 * time.Millisecond) // as in TestNetserverInlineMutesReading
	if q := s.QueuedRequestBytes(); q != payloadMin {
		t.Fatalf("QueuedRequestBytes = %d while the reader serves, want %d: the served frame's only", q, payloadMin)
	}
	h.gate <- struct{}{}
	for _, want := range []uint32{2, 3} {
		if got := c.readID(); got != want {
			t.Fatalf("response %d, want %d", got, want)
		}
	}
	h.resp.checkAllReleased(t)
}
