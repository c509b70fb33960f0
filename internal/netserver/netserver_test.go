package netserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestNetserverPipelinedOrder pipelines requests whose service time varies
// on several connections at once: each connection's responses come back in
// request order, and one connection's requests are never served
// concurrently.
func TestNetserverPipelinedOrder(t *testing.T) {
	h := newTestHandler()
	var mu sync.Mutex
	inService := map[string]int{}
	var overlap atomic.Int64
	s := startServer(t, Config{MaxInFlightPerConn: 8}, handlerFunc(func(ctx context.Context, addr string, f []byte) (Response, error) {
		mu.Lock()
		inService[addr]++
		if inService[addr] > 1 {
			overlap.Add(1)
		}
		mu.Unlock()
		defer func() {
			mu.Lock()
			inService[addr]--
			mu.Unlock()
		}()
		return h.Serve(ctx, addr, f)
	}))

	const conns, perConn = 4, 100
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for range conns {
		c := dial(t, s)
		wg.Go(func() {
			var all []byte
			for id := range uint32(perConn) {
				all = append(all, frame(payload(id, opSlow, int(id%3)*300))...)
			}
			c.send(all)
			for want := range uint32(perConn) {
				b, err := c.readFrame()
				if err != nil {
					errs <- fmt.Errorf("response %d: %w", want, err)
					return
				}
				if got := binary.BigEndian.Uint32(b); got != want {
					errs <- fmt.Errorf("response for request %d, want %d", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := overlap.Load(); n != 0 {
		t.Errorf("%d times a connection had two requests in service at once", n)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.resp.checkAllReleased(t)
	if q := s.QueuedRequestBytes(); q != 0 {
		t.Errorf("QueuedRequestBytes = %d after all answered, want 0", q)
	}
}

// TestNetserverNilResponse: a nil response (acks=0) writes nothing and the
// responses after it still come in order.
func TestNetserverNilResponse(t *testing.T) {
	h := newTestHandler()
	s := startServer(t, Config{}, h)
	c := dial(t, s)
	var all []byte
	for id := range uint32(10) {
		op := byte(opEcho)
		if id%2 == 0 {
			op = opNoReply
		}
		all = append(all, frame(payload(id, op, 0))...)
	}
	c.send(all)
	for _, want := range []uint32{1, 3, 5, 7, 9} {
		if got := c.readID(); got != want {
			t.Fatalf("response %d, want %d", got, want)
		}
	}
	// Nothing follows: the next bytes are the answer to a fresh request.
	c.roundTrip(42)
	if n := h.served.Load(); n != 11 {
		t.Errorf("served %d requests, want 11", n)
	}
}

// TestNetserverHandlerError: an error closes the connection after the
// earlier responses are written; later requests are not served.
func TestNetserverHandlerError(t *testing.T) {
	for _, op := range []byte{opFail, opPanic} {
		t.Run(fmt.Sprint("op", op), func(t *testing.T) {
			h := newTestHandler()
			s := startServer(t, Config{}, h)
			c := dial(t, s)
			c.send(frame(payload(0, opEcho, 0)), frame(payload(1, opEcho, 0)),
				frame(payload(2, op, 0)), frame(payload(3, opEcho, 0)))
			for want := range uint32(2) {
				if got := c.readID(); got != want {
					t.Fatalf("response %d, want %d", got, want)
				}
			}
			c.expectClosed()
			eventually(t, "connection unregistered", func() bool { return s.NumConnections() == 0 })
			if n := h.served.Load(); n != 3 {
				t.Errorf("served %d requests, want 3 (none after the failure)", n)
			}
			if q := s.QueuedRequestBytes(); q != 0 {
				t.Errorf("QueuedRequestBytes = %d, want 0", q)
			}
			// The server still serves others.
			dial(t, s).roundTrip(7)
			h.resp.checkAllReleased(t)
		})
	}
}

// TestNetserverBadFrameSize: an oversized, zero or negative size prefix
// closes the connection, after answering what was read before it, and
// leaves no request memory held.
func TestNetserverBadFrameSize(t *testing.T) {
	const maxBytes = 1024
	for _, size := range []int32{maxBytes + 1, 1 << 30, 0, -1, -1 << 31} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			h := newTestHandler()
			s := startServer(t, Config{MaxRequestBytes: maxBytes, QueuedMaxRequestBytes: 4 * maxBytes}, h)
			c := dial(t, s)
			bad := binary.BigEndian.AppendUint32(nil, uint32(size))
			c.send(frame(payload(1, opEcho, maxBytes)), bad, make([]byte, 100))
			if got := c.readID(); got != 1 {
				t.Fatalf("response %d, want 1", got)
			}
			c.expectClosed()
			eventually(t, "connection unregistered", func() bool { return s.NumConnections() == 0 })
			if q := s.QueuedRequestBytes(); q != 0 {
				t.Errorf("QueuedRequestBytes = %d, want 0", q)
			}
		})
	}
}

// TestNetserverTruncatedFrameFreesMemory: a client that leaves in the middle
// of a frame gives back the frame's request memory.
func TestNetserverTruncatedFrameFreesMemory(t *testing.T) {
	h := newTestHandler()
	s := startServer(t, Config{MaxRequestBytes: 1 << 20}, h)
	c := dial(t, s)
	f := frame(payload(1, opEcho, 100000))
	c.send(f[:50000])
	eventually(t, "frame memory acquired", func() bool { return s.QueuedRequestBytes() == 100000 })
	c.nc.Close()
	eventually(t, "frame memory released", func() bool { return s.QueuedRequestBytes() == 0 })
	eventually(t, "connection unregistered", func() bool { return s.NumConnections() == 0 })
	if n := h.served.Load(); n != 0 {
		t.Errorf("served %d requests, want 0", n)
	}
}

// TestNetserverStalledClients: a client that stops half-way through a
// frame, and one that does not read its responses, do not delay another
// client. Timeouts are long here, so the others can only be served if
// connections are truly independent.
func TestNetserverStalledClients(t *testing.T) {
	h := newTestHandler()
	h.bigResp = make([]byte, 4<<20)
	binary.BigEndian.PutUint32(h.bigResp, uint32(len(h.bigResp)-4))
	s := startServer(t, Config{IdleTimeout: time.Minute, WriteTimeout: time.Minute, MaxInFlightPerConn: 4}, h)

	halfFrame := dial(t, s)
	f := frame(payload(1, opEcho, 1000))
	halfFrame.send(f[:500])

	notReading := dial(t, s)
	var big []byte
	for id := range uint32(32) {
		big = append(big, frame(payload(id, opBig, 0))...)
	}
	notReading.send(big)
	eventually(t, "non-reading client served", func() bool { return h.served.Load() >= 1 })

	other := dial(t, s)
	for id := range uint32(50) {
		other.roundTrip(id)
	}
	// 128 MiB of responses cannot fit in loopback socket buffers, so the
	// non-reading client's writer was stuck all along.
	if n := h.served.Load(); n >= 32+50 {
		t.Fatalf("all %d requests served: the non-reading client never stalled", n)
	}
	if n := s.NumConnections(); n != 3 {
		t.Errorf("NumConnections = %d, want 3 (the stalled ones still open)", n)
	}
	// Close forcibly: the writer stuck on the non-reading client is freed.
	s.Close()
	notReading.drainUntilClosed()
	halfFrame.expectClosed()
	h.resp.checkAllReleased(t)
}

// TestNetserverWriteTimeout: a client that never reads its responses is
// disconnected after WriteTimeout and everything it held is freed.
func TestNetserverWriteTimeout(t *testing.T) {
	h := newTestHandler()
	h.bigResp = make([]byte, 4<<20)
	binary.BigEndian.PutUint32(h.bigResp, uint32(len(h.bigResp)-4))
	s := startServer(t, Config{WriteTimeout: 200 * time.Millisecond}, h)
	c := dial(t, s)
	var big []byte
	for id := range uint32(32) {
		big = append(big, frame(payload(id, opBig, 0))...)
	}
	c.send(big)
	eventually(t, "non-reading client disconnected", func() bool { return s.NumConnections() == 0 })
	if q := s.QueuedRequestBytes(); q != 0 {
		t.Errorf("QueuedRequestBytes = %d, want 0", q)
	}
	h.resp.checkAllReleased(t)
	dial(t, s).roundTrip(1)
}

// TestNetserverIdleTimeout: an idle connection is closed; one whose request
// takes longer than the timeout is not; a client trickling a frame byte by
// byte is cut off.
func TestNetserverIdleTimeout(t *testing.T) {
	const idle = 200 * time.Millisecond
	h := newTestHandler()
	s := startServer(t, Config{IdleTimeout: idle}, h)

	t.Run("idle", func(t *testing.T) {
		c := dial(t, s)
		c.roundTrip(1)
		c.expectClosed()
	})
	t.Run("slow request", func(t *testing.T) {
		c := dial(t, s)
		c.send(frame(payload(1, opBlock, 0)))
		// The request is pending for well over the idle timeout.
		time.Sleep(3 * idle)
		h.gate <- struct{}{} // not closed: only this request passes
		if got := c.readID(); got != 1 {
			t.Fatalf("response %d, want 1", got)
		}
	})
	t.Run("trickle", func(t *testing.T) {
		c := dial(t, s)
		f := frame(payload(1, opEcho, 1000))
		done := make(chan struct{})
		defer close(done)
		go func() {
			for i := range f {
				select {
				case <-done:
					return
				case <-time.After(idle / 10):
				}
				if _, err := c.nc.Write(f[i : i+1]); err != nil {
					return
				}
			}
		}()
		c.expectClosed()
	})
	eventually(t, "all connections closed", func() bool { return s.NumConnections() == 0 })
}

// TestNetserverFrameOutlivesEarlierDeadline: the socket's read deadline
// is moved only when it passes, so it may fire while a frame is half in;
// the frame still has its full IdleTimeout from its first byte (here the
// body's), and a request started just before the connection would have
// idled out is served. The margins are IdleTimeout/4 either way.
func TestNetserverFrameOutlivesEarlierDeadline(t *testing.T) {
	const idle = 2 * time.Second
	h := newTestHandler()
	s := startServer(t, Config{IdleTimeout: idle}, h)
	c := dial(t, s)
	c.roundTrip(1)
	// The deadline in force was set before that answer; now send half a
	// frame at IdleTimeout/2, the rest after the idle timeout but within
	// IdleTimeout of the first half.
	time.Sleep(idle / 2)
	f := frame(payload(2, opEcho, 64))
	c.send(f[:8])
	time.Sleep(3 * idle / 4)
	c.send(f[8:])
	b, err := c.readFrame()
	if err != nil || len(b) < 4 || binary.BigEndian.Uint32(b) != 2 {
		t.Fatalf("response %x, %v; want request 2 answered", b, err)
	}
}

// TestNetserverIdleTimeoutNever: a negative IdleTimeout (Kafka's
// connections.max.idle.ms -1) means connections never idle out; it used
// to become the 10-minute default, and must not become a deadline in the
// past either.
func TestNetserverIdleTimeoutNever(t *testing.T) {
	h := newTestHandler()
	s := startServer(t, Config{IdleTimeout: -time.Millisecond}, h)
	if s.cfg.IdleTimeout >= 0 {
		t.Fatalf("IdleTimeout = %v, want it kept negative", s.cfg.IdleTimeout)
	}
	c := dial(t, s)
	c.roundTrip(1)
	f := frame(payload(2, opEcho, 64))
	c.send(f[:2]) // a partial size prefix, then the rest
	time.Sleep(10 * time.Millisecond)
	c.send(f[2:])
	if got := c.readID(); got != 2 {
		t.Fatalf("response %d, want 2", got)
	}
}

// TestNetserverMaxConnections: beyond MaxConnections a new connection is
// closed at once; when one leaves, a new one is accepted.
func TestNetserverMaxConnections(t *testing.T) {
	h := newTestHandler()
	s := startServer(t, Config{MaxConnections: 2}, h)
	a, b := dial(t, s), dial(t, s)
	a.roundTrip(1)
	b.roundTrip(2)
	dial(t, s).expectClosed()
	if n := s.NumConnections(); n != 2 {
		t.Fatalf("NumConnections = %d, want 2", n)
	}
	a.nc.Close()
	eventually(t, "closed connection unregistered", func() bool { return s.NumConnections() == 1 })
	dial(t, s).roundTrip(3)
	b.roundTrip(4)
}

// TestNetserverShutdown: requests already read are served (with a cancelled
// ctx) and answered, then every connection is closed, including one
// stalled mid-frame and an idle one; new connections are refused.
func TestNetserverShutdown(t *testing.T) {
	h := newTestHandler()
	h.entered = make(chan uint32, 16)
	s := startServer(t, Config{}, h)

	busy := dial(t, s)
	var frames []byte
	for id := range uint32(3) {
		frames = append(frames, frame(payload(id, opBlock, 100))...)
	}
	busy.send(frames)
	<-h.entered
	eventually(t, "all three requests read", func() bool { return s.QueuedRequestBytes() == 300 })

	half := dial(t, s)
	half.send(frame(payload(9, opEcho, 100))[:50])
	idle := dial(t, s)
	idle.roundTrip(8)

	shutdown := runAsync(func() error { return s.Shutdown(context.Background()) })
	for want := range uint32(3) {
		if got := busy.readID(); got != want {
			t.Fatalf("response %d, want %d", got, want)
		}
	}
	busy.expectClosed()
	half.expectClosed()
	idle.expectClosed()
	if err := waitErr(t, shutdown); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := s.NumConnections(); n != 0 {
		t.Errorf("NumConnections = %d after Shutdown", n)
	}
	if q := s.QueuedRequestBytes(); q != 0 {
		t.Errorf("QueuedRequestBytes = %d after Shutdown", q)
	}
	if nc, err := net.DialTimeout("tcp", s.Addr().String(), waitLimit); err == nil {
		(&testClient{t: t, nc: nc}).expectClosed()
		nc.Close()
	}
	h.resp.checkAllReleased(t)
}

// TestNetserverShutdownDeadline: a handler that ignores its ctx cannot hold
// Shutdown beyond its ctx; the connection is closed forcibly and the late
// response released unwritten.
func TestNetserverShutdownDeadline(t *testing.T) {
	h := newTestHandler()
	h.entered = make(chan uint32, 1)
	stubborn := handlerFunc(func(_ context.Context, addr string, f []byte) (Response, error) {
		return h.Serve(context.Background(), addr, f) // ignores the server's ctx
	})
	s := startServer(t, Config{}, stubborn)
	c := dial(t, s)
	c.send(frame(payload(1, opBlock, 0)))
	<-h.entered

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	c.expectClosed()
	close(h.gate)
	h.resp.checkAllReleased(t)
	eventually(t, "connection unregistered", func() bool { return s.NumConnections() == 0 })
}

// TestNetserverMemoryPool: request memory in use never exceeds
// QueuedMaxRequestBytes; readers blocked on it resume when it is freed.
func TestNetserverMemoryPool(t *testing.T) {
	const frameBytes, limit = 1000, 3000
	h := newTestHandler()
	var maxSeen atomic.Int64
	var s *Server
	observe := func() {
		q := s.QueuedRequestBytes()
		for {
			m := maxSeen.Load()
			if q <= m || maxSeen.CompareAndSwap(m, q) {
				return
			}
		}
	}
	s = startServer(t, Config{MaxRequestBytes: frameBytes, QueuedMaxRequestBytes: limit},
		handlerFunc(func(ctx context.Context, addr string, f []byte) (Response, error) {
			observe()
			return h.Serve(ctx, addr, f)
		}))

	const conns, perConn = 5, 2
	clients := make([]*testClient, conns)
	for i := range clients {
		clients[i] = dial(t, s)
		var all []byte
		for j := range perConn {
			all = append(all, frame(payload(uint32(j), opBlock, frameBytes))...)
		}
		clients[i].send(all)
	}
	// Three frames fit; the other readers wait on the pool.
	eventually(t, "pool full", func() bool { observe(); return s.QueuedRequestBytes() == limit })
	if n := h.served.Load(); n > 3 {
		t.Fatalf("served %d requests with room for 3", n)
	}
	close(h.gate)
	for _, c := range clients {
		for want := range uint32(perConn) {
			observe()
			if got := c.readID(); got != want {
				t.Fatalf("response %d, want %d", got, want)
			}
		}
	}
	if m := maxSeen.Load(); m > limit {
		t.Errorf("QueuedRequestBytes reached %d, limit %d", m, limit)
	}
	eventually(t, "pool empty", func() bool { return s.QueuedRequestBytes() == 0 })
}

// TestNetserverNoGoroutineLeak: after Shutdown every goroutine the server
// started has exited.
func TestNetserverNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		h := newTestHandler()
		s, err := Listen("127.0.0.1:0", Config{Logger: quietLogger()}, h)
		if err != nil {
			t.Fatal(err)
		}
		var clients []*testClient
		for i := range 5 {
			c := dial(t, s)
			c.roundTrip(uint32(i))
			clients = append(clients, c)
		}
		clients[0].send(frame(payload(1, opEcho, 100))[:20])
		clients[1].send(frame(payload(1, opBlock, 100)))
		eventually(t, "blocked request read", func() bool { return s.QueuedRequestBytes() > 0 })
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, c := range clients {
			c.nc.Close()
		}
	}()
	eventually(t, fmt.Sprintf("goroutines back to %d", before), func() bool {
		return runtime.NumGoroutine() <= before
	})
}

// TestNetserverIdleConnectionHoldsOnlyItsReader: once a connection has
// been answered and stays quiet, its processor exits, and a later request
// starts a new one.
func TestNetserverIdleConnectionHoldsOnlyItsReader(t *testing.T) {
	s := startServer(t, Config{}, newTestHandler())
	c := dial(t, s)
	for i := range 2 {
		c.roundTrip(uint32(i))
		eventually(t, "no processor left", func() bool { return goroutinesIn("(*conn).processLoop") == 0 })
		if n := goroutinesIn("(*conn).readLoop"); n != 1 || s.NumConnections() != 1 {
			t.Fatalf("%d readers, %d connections; want the idle connection's reader", n, s.NumConnections())
		}
	}
}

// goroutinesIn counts the goroutines with fn on their stack.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "netserver."+fn+"(")
}

func TestNetserverConfigValidate(t *testing.T) {
	if err := (Config{MaxRequestBytes: 2000, QueuedMaxRequestBytes: 1000}).Validate(); err == nil {
		t.Error("queued below max request bytes accepted")
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("defaults rejected: %v", err)
	}
	if _, err := Listen("127.0.0.1:0", Config{MaxRequestBytes: 2000, QueuedMaxRequestBytes: 1000}, newTestHandler()); err == nil {
		t.Error("Listen accepted an invalid config")
	}
}

// TestNetserverConnectionsChanged: the hook the node resizes its segment
// file budget from runs when a client connects and when it leaves, and
// NumConnections is current by then.
func TestNetserverConnectionsChanged(t *testing.T) {
	counts := make(chan int, 8)
	var s *Server
	var ready sync.WaitGroup
	ready.Add(1)
	s = startServer(t, Config{ConnectionsChanged: func() {
		ready.Wait()
		counts <- len(s.conns) // the hook runs with s.mu held
	}}, newTestHandler())
	ready.Done()
	c := dial(t, s)
	c.roundTrip(1)
	if n := <-counts; n != 1 {
		t.Fatalf("hook saw %d connections after one connected", n)
	}
	c.nc.Close()
	select {
	case n := <-counts:
		if n != 0 {
			t.Fatalf("hook saw %d connections after the only one left", n)
		}
	case <-time.After(waitLimit):
		t.Fatal("no hook call after the client left")
	}
}
