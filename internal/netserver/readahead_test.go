package netserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/sluicelog/sluice/internal/auth/authtest"
)

// countingListener hands out connections that count the Reads that
// returned bytes: how many read system calls the server made for them.
type countingListener struct {
	net.Listener
	reads atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: nc, reads: &l.reads}, nil
}

type countingConn struct {
	net.Conn
	reads *atomic.Int64
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.reads.Add(1)
	}
	return n, err
}

func startCountingServer(t *testing.T, cfg Config, h Handler) (*Server, *countingListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	s := New(cl, cfg, h)
	t.Cleanup(func() { s.Close() })
	return s, cl
}

// checksumHandler answers each request with its id and the CRC of the
// whole frame, so a test sees that every byte reached the handler.
type checksumHandler struct{ resp responses }

func (h *checksumHandler) Serve(_ context.Context, _ string, frame []byte) (Response, error) {
	b := make([]byte, 12)
	binary.BigEndian.PutUint32(b, 8)
	binary.BigEndian.PutUint32(b[4:], binary.BigEndian.Uint32(frame))
	binary.BigEndian.PutUint32(b[8:], crc32.ChecksumIEEE(frame))
	return h.resp.new(b), nil
}

// expectChecksums reads one response per payload, in order, and checks
// each carries that payload's id and checksum.
func (c *testClient) expectChecksums(payloads [][]byte) {
	c.t.Helper()
	for i, p := range payloads {
		b, err := c.readFrame()
		if err != nil {
			c.t.Fatalf("response %d of %d: %v", i, len(payloads), err)
		}
		id, sum := binary.BigEndian.Uint32(p), crc32.ChecksumIEEE(p)
		if len(b) != 8 || binary.BigEndian.Uint32(b) != id || binary.BigEndian.Uint32(b[4:]) != sum {
			c.t.Fatalf("response %d is %x, want id %d checksum %08x", i, b, id, sum)
		}
	}
}

// TestNetserverReadAheadOneReadPerSmallRequest: a small request that is
// all in when the reader wakes is read with one read system call, size
// and body together; it took two (the size, then the body), each a
// system call and runtime work on every long poll.
func TestNetserverReadAheadOneReadPerSmallRequest(t *testing.T) {
	s, cl := startCountingServer(t, Config{}, newTestHandler())
	c := dial(t, s)
	const rounds = 20
	for id := range uint32(rounds) {
		c.roundTrip(id)
	}
	if n := cl.reads.Load(); n > rounds {
		t.Fatalf("%d reads for %d requests, want one each", n, rounds)
	}
}

// TestNetserverReadAheadPipelinedInOneWrite: many small requests of
// varied sizes, some across the read-ahead's bound, in one write and
// more than the in-flight slots: all answered, in order, byte for byte,
// while the reader waits for slots with later frames read ahead.
func TestNetserverReadAheadPipelinedInOneWrite(t *testing.T) {
	h := &checksumHandler{}
	s := startServer(t, Config{MaxInFlightPerConn: 4}, h)
	c := dial(t, s)
	var payloads [][]byte
	var all []byte
	for id := range uint32(60) {
		p := payload(id, opEcho, int(id*37%700))
		for i := payloadMin; i < len(p); i++ {
			p[i] = byte(int(id) + i)
		}
		payloads = append(payloads, p)
		all = append(all, frame(p)...)
	}
	c.send(all)
	c.expectChecksums(payloads)
	h.resp.checkAllReleased(t)
	eventually(t, "pool empty", func() bool { return s.QueuedRequestBytes() == 0 })
}

// TestNetserverReadAheadTinyWrites: frames written a byte or two at a
// time, so that every read ends inside a size or a body.
func TestNetserverReadAheadTinyWrites(t *testing.T) {
	h := &checksumHandler{}
	s := startServer(t, Config{}, h)
	c := dial(t, s)
	var payloads [][]byte
	var all []byte
	for id := range uint32(5) {
		p := payload(id, opEcho, 20+int(id)*10)
		payloads = append(payloads, p)
		all = append(all, frame(p)...)
	}
	for i := 0; i < len(all); i += 1 + i%2 {
		c.send(all[i:min(i+1+i%2, len(all))])
		time.Sleep(50 * time.Microsecond) // lets most writes arrive alone
	}
	c.expectChecksums(payloads)
}

// TestNetserverReadAheadPartialBody: the size and part of a body arrive,
// the reader has read them, then the rest: for a frame under the
// read-ahead's bound and one far above it (read into its own buffer).
func TestNetserverReadAheadPartialBody(t *testing.T) {
	for _, size := range []int{100, 200000} {
		h := &checksumHandler{}
		s, cl := startCountingServer(t, Config{}, h)
		c := dial(t, s)
		p := payload(uint32(size), opEcho, size)
		for i := payloadMin; i < len(p); i++ {
			p[i] = byte(i * 7)
		}
		f := frame(p)
		cut := 4 + size/2
		c.send(f[:cut])
		eventually(t, "first part read", func() bool { return cl.reads.Load() > 0 })
		c.send(f[cut:], frame(payload(1, opEcho, 10)))
		c.expectChecksums([][]byte{p, payload(1, opEcho, 10)})
	}
}

// TestNetserverReadAheadLargeFrames: frames larger than the read-ahead,
// pipelined with small ones in one write, arrive whole and in order.
func TestNetserverReadAheadLargeFrames(t *testing.T) {
	h := &checksumHandler{}
	s := startServer(t, Config{MaxRequestBytes: 4 << 20}, h)
	c := dial(t, s)
	payloads, all := echoFrames([]int{10, readAheadBytes - 4, readAheadBytes - 3, readAheadBytes, 3000, 10, 3 << 20, 7}, 31)
	c.writeInBackground(all)
	c.expectChecksums(payloads)
}

// TestNetserverReadAheadBadSizeBehindFrame: an oversize size read ahead
// with the frame before it still closes the connection once that frame
// is answered, and a size cut short behind a frame still idles out.
func TestNetserverReadAheadBadSizeBehindFrame(t *testing.T) {
	const idle = 200 * time.Millisecond
	h := newTestHandler()
	s := startServer(t, Config{MaxRequestBytes: 1024, IdleTimeout: idle}, h)

	c := dial(t, s)
	c.send(frame(payload(1, opEcho, 10)), binary.BigEndian.AppendUint32(nil, 1025), make([]byte, 10))
	if got := c.readID(); got != 1 {
		t.Fatalf("response %d, want 1", got)
	}
	c.expectClosed()

	c = dial(t, s)
	c.send(frame(payload(2, opEcho, 10)), []byte{0, 0})
	if got := c.readID(); got != 2 {
		t.Fatalf("response %d, want 2", got)
	}
	c.expectClosed()
	eventually(t, "connections unregistered", func() bool { return s.NumConnections() == 0 })
	if q := s.QueuedRequestBytes(); q != 0 {
		t.Errorf("QueuedRequestBytes = %d, want 0", q)
	}
}

// TestNetserverReadAheadTLS: over TLS the read-ahead takes what the TLS
// layer has decrypted instead of the socket's bytes: pipelined frames of
// every size in one write, and frames in tiny writes (a TLS record each),
// are answered whole and in order.
func TestNetserverReadAheadTLS(t *testing.T) {
	h := &checksumHandler{}
	s, roots := startTLSServer(t, Config{MaxRequestBytes: 4 << 20}, h)
	c := dial(t, s)
	c.nc = tls.Client(c.nc, &tls.Config{RootCAs: roots, ServerName: "localhost"})

	payloads, all := echoFrames([]int{10, readAheadBytes - 4, 100, readAheadBytes + 1, 3000, 10, 1 << 20, 7, 300}, 13)
	c.writeInBackground(all)
	c.expectChecksums(payloads)

	small := all[:len(frame(payloads[0]))+len(frame(payloads[1]))+len(frame(payloads[2]))]
	for i := 0; i < len(small); i += 3 {
		c.send(small[i:min(i+3, len(small))])
	}
	c.expectChecksums(payloads[:3])
}

// TestNetserverReadAheadStopsAtShutdown: requests that came in with one
// the reader is serving itself are not served once Shutdown stopped the
// reader, as they were not when they waited in the socket: with a free
// slot and the stop both ready, the wait for a slot alone would pick
// either.
func TestNetserverReadAheadStopsAtShutdown(t *testing.T) {
	h := &inlineHandler{testHandler: newTestHandler(), block: true}
	h.entered = make(chan uint32, 1)
	s := startServer(t, Config{}, h)
	c := dial(t, s)
	var frames []byte
	for id := range uint32(8) {
		frames = append(frames, frame(payload(id, opInline, 10))...)
	}
	c.send(frames)
	if id := <-h.entered; id != 0 {
		t.Fatalf("request %d served first, want 0", id)
	}
	shutdown := runAsync(func() error { return s.Shutdown(context.Background()) })
	if got := c.readID(); got != 0 {
		t.Fatalf("response %d, want 0", got)
	}
	c.expectClosed()
	if err := waitErr(t, shutdown); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := h.served.Load(); n != 1 {
		t.Errorf("%d requests served, want only the one in service at Shutdown", n)
	}
	h.resp.checkAllReleased(t)
}

// TestNetserverReadAheadShutdownBeforeTheSlot: a frame that came whole
// with the one before it was served when Shutdown stopped the reader
// after readSizePrefix's check and before the wait for a slot, in about
// half the rounds: that wait, with a free slot and the stop both ready,
// picks either, and no Read follows to notice the stop. The reader now
// looks at the stop again once it holds the slot and the memory.
func TestNetserverReadAheadShutdownBeforeTheSlot(t *testing.T) {
	defer func() { testHookBeforeFrameSlot = nil }() // after the last Shutdown: no reader left
	for round := range 16 {
		frames, stopped := 0, make(chan struct{}) // frames: the reader's until Shutdown returns
		testHookBeforeFrameSlot = func(c *conn) {
			if frames++; frames == 2 {
				c.stopReading() // what Shutdown does to each connection first
				close(stopped)
			}
		}
		h := &inlineHandler{testHandler: newTestHandler()}
		s := startServer(t, Config{MaxInFlightPerConn: 4}, h)
		c := dial(t, s)
		c.send(frame(payload(0, opInline, 10)), frame(payload(1, opInline, 10)))
		if got := c.readID(); got != 0 {
			t.Fatalf("round %d: response %d, want 0", round, got)
		}
		select {
		case <-stopped:
		case <-time.After(waitLimit):
			t.Fatalf("round %d: the second frame's size never read", round)
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		err := s.Shutdown(ctx)
		cancel()
		if err != nil {
			t.Fatalf("round %d: Shutdown: %v", round, err)
		}
		if n := h.served.Load(); frames != 2 || n != 1 {
			t.Fatalf("round %d: %d requests served of %d sized, want only the one read before the stop", round, n, frames)
		}
		c.expectClosed()
		h.resp.checkAllReleased(t)
	}
}

// heldWriter holds what is written to it once hold is set, until flush
// sends it in one write: a test's TLS records then reach the server
// together, in one segment.
type heldWriter struct {
	net.Conn
	hold bool
	held []byte
}

func (w *heldWriter) Write(b []byte) (int, error) {
	if w.hold {
		w.held = append(w.held, b...)
		return len(b), nil
	}
	return w.Conn.Write(b)
}

func (w *heldWriter) flush() error {
	// crypto/tls ends a CloseWrite with a write deadline of now.
	if err := w.Conn.SetWriteDeadline(time.Now().Add(waitLimit)); err != nil {
		return err
	}
	_, err := w.Conn.Write(w.held)
	w.held = nil
	return err
}

// TestNetserverReadAheadLastFrameWithCloseNotify: a client that sends a
// request and then TLS's close_notify (a Kafka client closing its
// connection after an acks=0 produce) has, over TLS 1.2, the alert read
// with the request's last bytes: crypto/tls returns them with io.EOF.
// The request is served all the same, whether those last bytes came with
// its size (the read-ahead) or were its body's rest, read on their own.
func TestNetserverReadAheadLastFrameWithCloseNotify(t *testing.T) {
	h := &checksumHandler{}
	s, roots := startTLSServer(t, Config{}, h)
	for _, size := range []int{100, readAheadBytes + 100, 3000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) { closeNotifyAfterFrame(t, s, roots, size) })
	}
	h.resp.checkAllReleased(t)
}

// closeNotifyAfterFrame sends a size-byte request, then close_notify, in
// one TCP segment, over TLS 1.2, and expects the request answered.
func closeNotifyAfterFrame(t *testing.T, s *Server, roots *x509.CertPool, size int) {
	c := dial(t, s)
	hw := &heldWriter{Conn: c.nc}
	tc := tls.Client(hw, &tls.Config{RootCAs: roots, ServerName: "localhost", MaxVersion: tls.VersionTLS12})
	c.nc = tc
	tc.SetDeadline(time.Now().Add(waitLimit))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	p := payload(uint32(size), opEcho, size)
	for i := payloadMin; i < len(p); i++ {
		p[i] = byte(i * 11)
	}
	hw.hold = true
	if _, err := tc.Write(frame(p)); err != nil {
		t.Fatal(err)
	}
	if err := tc.CloseWrite(); err != nil { // close_notify
		t.Fatal(err)
	}
	if err := hw.flush(); err != nil {
		t.Fatal(err)
	}
	c.expectChecksums([][]byte{p})
	c.expectClosed()
}

// TestNetserverReadAheadConnSizeClass: every connection, idle or not,
// holds a conn, read-ahead included. An object with pointers over 512
// bytes is allocated with an 8-byte header, so 904 bytes took the
// runtime's 1,024-byte size class; up to 888 fit the 896-byte one, 128
// bytes less per connection. A field that must be added moves the bound
// and docs/testing.md's figures.
func TestNetserverReadAheadConnSizeClass(t *testing.T) {
	// internal/runtime/gc: sizeclasses.go (768, 896, 1024) and
	// MallocHeaderSize.
	const sizeClass, mallocHeader = 896, 8
	if n := unsafe.Sizeof(conn{}); n+mallocHeader > sizeClass {
		t.Fatalf("conn is %d bytes, %d with its malloc header: over the %d-byte size class",
			n, n+mallocHeader, sizeClass)
	}
}

// echoFrames builds one echo request of each size, id = its index, its
// body bytes a pattern of mult that differs between frames, and returns
// the payloads and all their frames back to back.
func echoFrames(sizes []int, mult int) (payloads [][]byte, all []byte) {
	for id, size := range sizes {
		p := payload(uint32(id), opEcho, size)
		for i := payloadMin; i < len(p); i++ {
			p[i] = byte(i*mult + id)
		}
		payloads = append(payloads, p)
		all = append(all, frame(p)...)
	}
	return payloads, all
}

// writeInBackground writes b on its own goroutine, for frames larger
// than the socket buffers, which the server answers while they are
// still being written; a failed write shows as missing responses.
func (c *testClient) writeInBackground(b []byte) {
	go func() {
		c.nc.SetWriteDeadline(time.Now().Add(waitLimit))
		c.nc.Write(b)
	}()
}

// startTLSServer starts a server on cfg whose listener speaks TLS
// (security.protocol SSL) with a certificate for localhost from a test
// CA, and returns it with the pool a client trusts that CA through.
func startTLSServer(t *testing.T, cfg Config, h Handler) (*Server, *x509.CertPool) {
	t.Helper()
	ca := authtest.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, pkix.Name{CommonName: "localhost"})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.CertPEM)
	cfg.Security = Security{SecurityProtocol: "SSL", TLS: &tls.Config{Certificates: []tls.Certificate{cert}}}
	return startServer(t, cfg, h), roots
}

// TestNetserverReadAheadShutdownDuringTheBody: a frame whose body is
// read after its size (larger than the read-ahead) was served when
// Shutdown stopped the reader once the frame held its slot and memory:
// over TLS the body's rest is in crypto/tls's buffer after the record's
// first read, and a Read from there ignores the socket's passed deadline.
// The reader now looks at the stop once the body is in. Over plain TCP
// the body's Read fails at once; both are checked.
func TestNetserverReadAheadShutdownDuringTheBody(t *testing.T) {
	defer func() { testHookBeforeFrameBody = nil }() // after the last Shutdown: no reader left
	for _, overTLS := range []bool{true, false} {
		t.Run(fmt.Sprint("tls=", overTLS), func(t *testing.T) { shutdownDuringTheBody(t, overTLS) })
	}
}

func shutdownDuringTheBody(t *testing.T, overTLS bool) {
	stopped := make(chan struct{})
	testHookBeforeFrameBody = func(c *conn) {
		c.stopReading() // what Shutdown does to each connection first
		close(stopped)
	}
	h := newTestHandler()
	var s *Server
	var c *testClient
	if overTLS {
		var roots *x509.CertPool
		s, roots = startTLSServer(t, Config{}, h)
		c = dial(t, s)
		// One record for the whole frame: the client would send the
		// first ones after the handshake at about 1,200 bytes each.
		c.nc = tls.Client(c.nc, &tls.Config{RootCAs: roots, ServerName: "localhost", DynamicRecordSizingDisabled: true})
	} else {
		s = startServer(t, Config{}, h)
		c = dial(t, s)
	}
	// 3,000 bytes: one TLS record, read whole by the read of its size.
	c.send(frame(payload(1, opEcho, 3000)))
	select {
	case <-stopped:
	case <-time.After(waitLimit):
		t.Fatal("the frame's body never read")
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := h.served.Load(); n != 0 {
		t.Fatalf("%d requests served, want none: the stop came before the body was in", n)
	}
	c.expectClosed()
	h.resp.checkAllReleased(t)
	if q := s.QueuedRequestBytes(); q != 0 {
		t.Errorf("QueuedRequestBytes = %d, want 0", q)
	}
}
