package netserver

import (
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
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
