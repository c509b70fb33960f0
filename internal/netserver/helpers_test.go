package netserver

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// waitLimit bounds every wait in these tests; it is a failure bound, never a
// performance assertion.
const waitLimit = 5 * time.Second

// Test request payloads: a 4-byte id, a 1-byte op, then padding.
const (
	opEcho     = iota // respond with the id
	opNoReply         // nil response
	opFail            // handler error
	opBlock           // wait for ctx or the test's gate, then respond
	opBig             // respond with a large frame
	opSlow            // sleep a little (varies with id), then respond
	opPanic           // handler panics
	payloadMin = 5
)

func payload(id uint32, op byte, size int) []byte {
	p := make([]byte, max(size, payloadMin))
	binary.BigEndian.PutUint32(p, id)
	p[4] = op
	return p
}

func frame(p []byte) []byte {
	f := make([]byte, 4, 4+len(p))
	binary.BigEndian.PutUint32(f, uint32(len(p)))
	return append(f, p...)
}

type handlerFunc func(ctx context.Context, clientAddr string, frame []byte) (Response, error)

func (f handlerFunc) Serve(ctx context.Context, clientAddr string, frame []byte) (Response, error) {
	return f(ctx, clientAddr, frame)
}

// responses tracks every testResponse so a test can check each is released
// exactly once.
type responses struct {
	created  atomic.Int64
	released atomic.Int64
	twice    atomic.Int64
}

type testResponse struct {
	b        []byte
	tracker  *responses
	released atomic.Bool
}

func (r *responses) new(b []byte) *testResponse {
	r.created.Add(1)
	return &testResponse{b: b, tracker: r}
}

// idResponse is a response frame carrying id.
func (r *responses) idResponse(id uint32) *testResponse {
	b := make([]byte, 8)
	binary.BigEndian.PutUint32(b, 4)
	binary.BigEndian.PutUint32(b[4:], id)
	return r.new(b)
}

func (r *testResponse) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(r.b)
	return int64(n), err
}

func (r *testResponse) Release() {
	if r.released.Swap(true) {
		r.tracker.twice.Add(1)
	}
	r.tracker.released.Add(1)
}

func (r *responses) checkAllReleased(t *testing.T) {
	t.Helper()
	eventually(t, "every response released", func() bool {
		return r.released.Load() == r.created.Load()
	})
	if n := r.twice.Load(); n != 0 {
		t.Fatalf("%d responses released more than once", n)
	}
}

// testHandler implements the ops above.
type testHandler struct {
	resp    responses
	gate    chan struct{} // opBlock returns when closed (or ctx ends)
	entered chan uint32   // opBlock sends its id on entry, if not nil
	bigResp []byte        // opBig's frame, shared
	served  atomic.Int64
}

func newTestHandler() *testHandler {
	return &testHandler{gate: make(chan struct{})}
}

func (h *testHandler) Serve(ctx context.Context, _ string, frame []byte) (Response, error) {
	h.served.Add(1)
	id := binary.BigEndian.Uint32(frame)
	switch frame[4] {
	case opNoReply:
		return nil, nil
	case opFail:
		return nil, errors.New("test handler failure")
	case opBlock:
		if h.entered != nil {
			h.entered <- id
		}
		select {
		case <-h.gate:
		case <-ctx.Done():
		}
	case opBig:
		return h.resp.new(h.bigResp), nil
	case opSlow:
		time.Sleep(time.Duration(id%7) * 100 * time.Microsecond)
	case opPanic:
		panic("test handler panic")
	}
	return h.resp.idResponse(id), nil
}

func quietLogger() *slog.Logger {
	if os.Getenv("NETSERVER_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func startServer(t testing.TB, cfg Config, h Handler) *Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	s, err := Listen("127.0.0.1:0", cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type testClient struct {
	t  testing.TB
	nc net.Conn
}

func dial(t testing.TB, s *Server) *testClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.Addr().String(), waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &testClient{t: t, nc: nc}
}

func (c *testClient) send(frames ...[]byte) {
	c.t.Helper()
	var b []byte
	for _, f := range frames {
		b = append(b, f...)
	}
	c.nc.SetWriteDeadline(time.Now().Add(waitLimit))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// readFrame reads one response frame's payload.
func (c *testClient) readFrame() ([]byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(waitLimit))
	var prefix [4]byte
	if _, err := io.ReadFull(c.nc, prefix[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(prefix[:]))
	_, err := io.ReadFull(c.nc, b)
	return b, err
}

// readID reads a response frame made by idResponse.
func (c *testClient) readID() uint32 {
	c.t.Helper()
	b, err := c.readFrame()
	if err != nil {
		c.t.Fatalf("reading response: %v", err)
	}
	if len(b) != 4 {
		c.t.Fatalf("response of %d bytes, want 4", len(b))
	}
	return binary.BigEndian.Uint32(b)
}

// expectClosed waits for the server to close the connection.
func (c *testClient) expectClosed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(waitLimit))
	var b [1]byte
	n, err := c.nc.Read(b[:])
	var netErr net.Error
	switch {
	case n > 0:
		c.t.Fatalf("got a byte, want the connection closed")
	case errors.As(err, &netErr) && netErr.Timeout():
		c.t.Fatalf("connection still open after %v", waitLimit)
	case err == nil:
		c.t.Fatalf("read returned nothing and no error")
	}
}

// drainUntilClosed discards what the server sent until it closes the
// connection.
func (c *testClient) drainUntilClosed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(waitLimit))
	_, err := io.Copy(io.Discard, c.nc)
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		c.t.Fatalf("connection still open after %v", waitLimit)
	}
}

func (c *testClient) roundTrip(id uint32) {
	c.t.Helper()
	c.send(frame(payload(id, opEcho, 0)))
	if got := c.readID(); got != id {
		c.t.Fatalf("response id %d, want %d", got, id)
	}
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// runAsync runs f in a goroutine and returns a channel that yields its result.
func runAsync(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

func waitErr(t testing.TB, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(waitLimit):
		t.Fatal("timed out waiting for result")
		return nil
	}
}
