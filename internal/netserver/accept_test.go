package netserver

import (
	"context"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// shortListener fails Accept as a process out of descriptors does while
// short is set: the connection waits in the kernel's backlog.
type shortListener struct {
	net.Listener
	short  atomic.Bool
	failed atomic.Int64
}

func (l *shortListener) Accept() (net.Conn, error) {
	if l.short.Load() {
		l.failed.Add(1)
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestNetserverAcceptShortOfDescriptors: an accept that fails with EMFILE
// only backed off and tried again, while the segment file cache kept the
// descriptors it had: a new client got in only when another left. The
// server now reports each such failure (DescriptorShortage) so the node
// can free descriptors, here a fake budget that gives them all back.
func TestNetserverAcceptShortOfDescriptors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl := &shortListener{Listener: ln}
	sl.short.Store(true)
	var reported atomic.Int64
	s := New(sl, Config{Logger: quietLogger(), DescriptorShortage: func() {
		reported.Add(1)
		sl.short.Store(false) // descriptors given back
	}}, newTestHandler())
	defer s.Close()
	c := dial(t, s)
	c.roundTrip(7)
	if sl.failed.Load() == 0 {
		t.Fatal("no accept failed: the test tests nothing")
	}
	if got, failed := reported.Load(), sl.failed.Load(); got != failed {
		t.Fatalf("%d failed accepts reported, of %d", got, failed)
	}
}

// TestNetserverAcceptFailureOtherThanDescriptors: an accept failing for
// another reason is retried without a descriptor shortage reported, so
// the node does not close segment files for nothing.
func TestNetserverAcceptFailureOtherThanDescriptors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	s := New(&failOnceListener{Listener: ln}, Config{Logger: quietLogger(), DescriptorShortage: func() { calls.Add(1) }}, newTestHandler())
	defer s.Close()
	dial(t, s).roundTrip(3)
	if calls.Load() != 0 {
		t.Fatalf("%d descriptor shortages reported for an ECONNABORTED accept", calls.Load())
	}
}

type failOnceListener struct {
	net.Listener
	failed atomic.Bool
}

func (l *failOnceListener) Accept() (net.Conn, error) {
	if l.failed.CompareAndSwap(false, true) {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept4", syscall.ECONNABORTED)}
	}
	return l.Listener.Accept()
}

// pipeListener accepts the server ends of net.Pipe connections handed to
// it, and fails every Accept with EMFILE while short is set, as a process
// out of descriptors does. It needs no socket, so a test can run it in a
// synctest bubble.
type pipeListener struct {
	conns     chan net.Conn
	short     atomic.Bool
	failed    atomic.Int64
	closed    chan struct{}
	closeOnce sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	if l.short.Load() {
		l.failed.Add(1)
		return nil, &net.OpError{Op: "accept", Net: "pipe", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	select {
	case nc := <-l.conns:
		return nc, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// countingLogHandler counts the records logged at each level.
type countingLogHandler struct {
	mu     sync.Mutex
	levels map[slog.Level]int
}

func (h *countingLogHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingLogHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingLogHandler) WithGroup(string) slog.Handler            { return h }

func (h *countingLogHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.levels[r.Level]++
	return nil
}

func (h *countingLogHandler) count(level slog.Level) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.levels[level]
}

// TestNetserverAcceptPersistentDescriptorShortage: where the segment file
// budget is at its floor, a failed accept frees no descriptor and EMFILE
// persists. The accept loop must neither spin nor give up, and say so once:
// it logged a warning on every failed accept, once a second for as long as
// the shortage lasted. Over ten seconds of the bubble's clock it now backs
// off from 5 ms to 1 s, keeps trying, logs one warning, and accepts as
// soon as descriptors come back, saying so once.
func TestNetserverAcceptPersistentDescriptorShortage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := newPipeListener()
		ln.short.Store(true)
		logs := &countingLogHandler{levels: make(map[slog.Level]int)}
		var reported atomic.Int64
		s := New(ln, Config{Logger: slog.New(logs), DescriptorShortage: func() { reported.Add(1) }}, newTestHandler())

		time.Sleep(5 * time.Second)
		halfway := ln.failed.Load()
		time.Sleep(5 * time.Second)
		failed := ln.failed.Load()
		// 5, 10, ... 640 ms, then 1 s: 17 attempts in 10 s.
		if failed > 25 {
			t.Fatalf("%d failed accepts in 10 s: the loop spins", failed)
		}
		if failed <= halfway {
			t.Fatalf("no accept tried in the last 5 s (%d failed in all): the loop gave up", failed)
		}
		if got := reported.Load(); got != failed {
			t.Errorf("%d descriptor shortages reported, of %d failed accepts", got, failed)
		}
		if n := logs.count(slog.LevelWarn); n != 1 {
			t.Errorf("%d warnings for %d failed accepts in a row, want 1", n, failed)
		}

		ln.short.Store(false) // descriptors came back
		client, server := net.Pipe()
		ln.conns <- server
		c := &testClient{t: t, nc: client}
		c.roundTrip(7)
		if n := logs.count(slog.LevelInfo); n != 1 {
			t.Errorf("%d info lines once accepts resumed, want 1", n)
		}

		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		client.Close()
	})
}
