package netserver

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// stressHandler finishes Deferred responses from other goroutines after a
// random short delay (or before Serve returns), answers pipelinable and
// other requests at once, and lets acks=0-like requests (no response) be
// pipelined, as a produce pipeline sees them.
type stressHandler struct {
	*testHandler
}

func (h *stressHandler) Serve(ctx context.Context, addr string, frame []byte) (Response, error) {
	id := binary.BigEndian.Uint32(frame)
	switch frame[4] {
	case opDeferred:
		d := &deferredResponse{frame: frame, ready: make(chan struct{})}
		switch id % 3 {
		case 0:
			d.complete() // finished before Serve returns
		default:
			delay := time.Duration(rand.IntN(300)) * time.Microsecond
			time.AfterFunc(delay, d.complete)
		}
		return d, nil
	case opPipelinedEcho:
		frame[4] = opEcho
	}
	return h.testHandler.Serve(ctx, addr, frame)
}

func (h *stressHandler) CanPipeline(_ context.Context, frame []byte) bool {
	return frame[4] == opDeferred || frame[4] == opPipelinedEcho || frame[4] == opNoReply
}

// Many pipelined requests on several connections, Deferred responses
// finishing out of order from other goroutines, mixed with requests that
// may not be pipelined and requests without a response, and a client that
// leaves mid-stream: every response comes back once, in request order,
// from the frame it was served from; every slot, frame and response is
// released; and Shutdown finds no goroutine left behind. Run with -race:
// it is the wake and linger protocol of conn.go under load.
func TestNetserverDeferredStress(t *testing.T) {
	h := &stressHandler{testHandler: newTestHandler()}
	s := startServer(t, Config{MaxInFlightPerConn: 5}, h)
	const conns, requests = 4, 1500
	var wg sync.WaitGroup
	for ci := range conns {
		c := dial(t, s)
		rng := rand.New(rand.NewPCG(uint64(ci), 17))
		ops := make([]byte, requests)
		for i := range ops {
			switch r := rng.IntN(20); {
			case r < 14:
				ops[i] = opDeferred
			case r < 16:
				ops[i] = opPipelinedEcho
			case r < 18:
				ops[i] = opNoReply
			default:
				ops[i] = opEcho
			}
		}
		leaves := ci == conns-1 // this client closes half-way
		wg.Go(func() {
			for i := 0; i < requests; {
				n := min(1+rng.IntN(8), requests-i)
				var b []byte
				for j := range n {
					b = append(b, frame(payload(uint32(i+j), ops[i+j], 16+rng.IntN(64)))...)
				}
				i += n
				c.nc.SetWriteDeadline(time.Now().Add(waitLimit))
				if _, err := c.nc.Write(b); err != nil {
					if !leaves {
						t.Errorf("connection %d: send: %v", ci, err)
					}
					return
				}
				if rng.IntN(50) == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		})
		wg.Go(func() {
			answered := 0
			for i := range requests {
				if ops[i] == opNoReply {
					continue
				}
				if leaves && answered == requests/3 {
					c.nc.Close()
					return
				}
				b, err := c.readFrame()
				if err != nil {
					t.Errorf("connection %d: reading the response to %d: %v", ci, i, err)
					return
				}
				if got := binary.BigEndian.Uint32(b); len(b) != 4 || got != uint32(i) {
					t.Errorf("connection %d: response %d (%d bytes), want %d", ci, got, len(b), i)
					return
				}
				answered++
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with every client done: %v", err)
	}
	h.resp.checkAllReleased(t)
	if q := s.QueuedRequestBytes(); q != 0 {
		t.Errorf("QueuedRequestBytes = %d after shutdown, want 0", q)
	}
	if n := s.NumConnections(); n != 0 {
		t.Errorf("%d connections left after shutdown", n)
	}
}
