package netserver

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/quota"
)

var (
	// errStopped ends a reader that was told to stop (Shutdown or a close);
	// it is not a connection error and is not logged.
	errStopped   = errors.New("reading stopped")
	errIdle      = errors.New("connection idle longer than connections.max.idle.ms")
	errFrameSize = errors.New("invalid request frame size")
	aLongTimeAgo = time.Unix(1, 0)
)

// sizePrefixLen is the length of the big-endian int32 before every frame.
const sizePrefixLen = 4

// readAheadBytes bounds what the reader reads with a frame's size: the
// size and whatever is in behind it, up to this many bytes, in one read
// system call. A small request (a fetch, a heartbeat: 60 to 300 bytes) is
// then read whole in that one call instead of a second for its body, which
// every long poll paid. The bytes live in the connection, so every
// connection holds them, idle or not (its goroutine parks in Read on
// them): 512 bytes is under a tenth of an idle connection's memory
// (bench/connections.sh). Larger frames read their rest straight into
// their own buffer.
const readAheadBytes = 512

// conn is one client connection, served by a reader goroutine and, while
// it has requests to serve, a processor goroutine (except the requests an
// Inliner lets the reader serve itself while no processor runs):
//
//   - readLoop cuts frames off the socket and queues them. Before reading a
//     frame's body it takes one of MaxInFlightPerConn slots and the frame's
//     bytes from the server's memory pool, so it never holds more than that
//     many requests nor allocates beyond the pool. It starts a processor
//     when it queues a request and none is running.
//   - processLoop serves the queued requests one at a time, in order, and
//     writes each response before taking the next request, which is what
//     keeps responses in request order; the exception is a Deferred
//     response (a produce waiting for its fsync), behind which the handler
//     may let later requests be served while their responses queue. It
//     frees a request's slot once the response is written, and exits once
//     the queue has been empty, with no response pending, for
//     processorLinger.
//
// An idle connection thus costs one goroutine parked in Read, its small
// stack, and no buffer but the connection's own readAheadBytes: with
// thousands of idle clients, a second parked goroutine each would be most
// of their memory.
//
// A read error, an idle timeout, a bad frame size or Shutdown stop the
// reader only: requests already read are still served (as Kafka's request
// handlers still handle requests queued before a channel closed; an acks=0
// produce sent just before a client exits is appended), and whichever of
// reader and processor ends last closes the socket. A write error, a
// handler error or Close make the connection dead: the socket is closed and
// queued requests are dropped unserved.
type conn struct {
	s          *Server
	nc         net.Conn
	clientAddr string
	ip         string // the client's address, for the per-IP limits

	// mutedUntil (Unix ns) is when a quota mute ends (Throttle); 0: never
	// muted. delayUntil is the same for holding a response back.
	mutedUntil atomic.Int64
	delayUntil atomic.Int64

	// ctx is every Serve's ctx: cancelled when the reader stops (the client
	// left or will be disconnected: nobody waits for a long poll), at close,
	// and with the server's ctx.
	ctx    context.Context
	cancel context.CancelFunc

	// mu guards queue, processing, lingering and readDone: whether the
	// reader must start or wake a processor for the request it queues,
	// and which of the two finishes the connection.
	mu         sync.Mutex
	queue      []request     // read, not yet served; at most MaxInFlightPerConn
	processing bool          // a processLoop is running (serving or lingering)
	lingering  bool          // it waits on wake, the queue empty
	answered   bool          // while lingering, no response is pending either: the reader may serve inline
	readDone   bool          // the reader has stopped: nothing more is queued
	readStart  uint16        // readAhead[readStart:readEnd]: read, not yet cut into frames;
	readEnd    uint16        // reader-owned, not guarded by mu (see readAhead)
	slots      chan struct{} // one token per request read and not yet answered
	// wake carries the one wake-up of a lingering processor, sent by
	// whoever cleared lingering; made with the first processor.
	wake chan struct{}

	stopRead     chan struct{} // closed to stop the reader, see stopReading
	stopOnce     sync.Once
	readStopping atomic.Bool
	dead         atomic.Bool // responses cannot be written: drop queued requests
	closeOnce    sync.Once

	// lastActivity (Unix ns) is when the last request was answered, or the
	// connection accepted: the idle clock's start once nothing is pending.
	lastActivity atomic.Int64

	// session is the connection's security state; every request's ctx
	// carries it. authTimer closes a SASL connection that has not
	// authenticated within the handshake timeout.
	sec       Security // the listener's
	session   *auth.Session
	authTimer *time.Timer

	// partialPrefixDeadline is when a size prefix whose first bytes are in
	// must be complete. Reader-owned.
	partialPrefixDeadline time.Time
	// writeDeadline is the socket's write deadline as last set. Written
	// only by whoever writes responses: the processor, or the reader
	// serving inline while none runs (handed over under mu).
	writeDeadline time.Time

	// readAhead[readStart:readEnd] are the bytes read off the socket and
	// not yet cut into frames, the start of the next frame. Reader-owned.
	// readStart and readEnd are uint16s in what was padding after mu's
	// bools: with its 8-byte malloc header, the conn then fits the
	// runtime's 896-byte size class instead of 1,024, 128 bytes less per
	// connection (TestNetserverReadAheadConnSizeClass).
	//
	// readAhead is last, past the struct's pointers: the garbage
	// collector does not scan it. Its bytes are the connection's own, not
	// the memory pool's: they are a fixed part of every connection, not
	// memory that grows with what clients send; a frame's bytes are
	// acquired from the pool, as for any frame, before they are copied
	// out of it.
	readAhead [readAheadBytes]byte
}

// request is a frame read off the socket. It holds frame bytes of the
// memory pool and a read-ahead slot until processed.
type request struct {
	buf  *[]byte // from getFrameBuffer; (*buf)[:size] is the frame
	size int32
}

func newConn(s *Server, nc net.Conn, sec Security) *conn {
	session := auth.NewSession(sec.Listener, sec.SecurityProtocol, auth.Anonymous)
	session.Mechanisms, session.ReauthMs = sec.SASLMechanisms, sec.ReauthMs
	if sec.usesTLS() {
		nc = tls.Server(nc, sec.TLS)
	}
	ctx, cancel := context.WithCancel(auth.WithSession(s.ctx, session))
	c := &conn{
		s:          s,
		nc:         nc,
		clientAddr: nc.RemoteAddr().String(),
		cancel:     cancel,
		slots:      make(chan struct{}, s.cfg.MaxInFlightPerConn),
		stopRead:   make(chan struct{}),
		sec:        sec,
		session:    session,
	}
	// Handlers mute this connection through its context when a client
	// quota throttles it.
	c.ctx = quota.WithThrottler(ctx, c)
	c.lastActivity.Store(time.Now().UnixNano())
	if session.UsesSASL() {
		// Armed here, before the connection's goroutines start, so that
		// close (from any goroutine) always sees it.
		c.authTimer = time.AfterFunc(sec.HandshakeTimeout, func() {
			if !session.IsAuthenticated() {
				c.s.log.Info("closing connection: SASL authentication not finished in time",
					"client", c.clientAddr, "listener", sec.Listener, "timeout", sec.HandshakeTimeout)
				c.close()
			}
		})
	}
	return c
}

// errHandshake ends a reader whose TLS handshake failed; it was logged.
var errHandshake = errors.New("TLS handshake failed")

// startSecurity runs the TLS handshake, with its deadline, before the
// first frame is read. A failed handshake (a plaintext client on a TLS
// listener, a certificate the CA did not sign) is logged once and closes
// the connection; no request is read from it.
func (c *conn) startSecurity() error {
	sec := c.sec
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, sec.HandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		if !c.readStopping.Load() {
			c.s.log.Info("closing connection: TLS handshake failed", "client", c.clientAddr, "listener", sec.Listener, "err", err)
		}
		return errHandshake
	}
	if sec.SecurityProtocol == "SSL" {
		c.session.SetCertificatePrincipal(auth.CertificatePrincipal(tc.ConnectionState(), sec.PrincipalRules))
	}
	return nil
}

// maxFrameBytes is the largest frame the connection may send next: a SASL
// connection that has not authenticated is held to the smaller bound.
func (c *conn) maxFrameBytes() int32 {
	if !c.session.IsAuthenticated() {
		return min(c.s.cfg.MaxRequestBytes, c.sec.MaxUnauthenticatedRequestBytes)
	}
	return c.s.cfg.MaxRequestBytes
}

// stopReading makes the reader stop at its next step: it wakes a blocked
// Read with a deadline in the past and a wait for a slot or pool memory
// with stopRead. A frame read half-way is dropped; it was not yet a request.
func (c *conn) stopReading() {
	c.stopOnce.Do(func() {
		c.readStopping.Store(true)
		close(c.stopRead)
		_ = c.nc.SetReadDeadline(aLongTimeAgo)
	})
}

// close makes the connection dead and closes the socket at once. Safe to
// call more than once and from any goroutine.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.dead.Store(true)
		c.cancel()
		c.stopReading()
		if c.authTimer != nil {
			c.authTimer.Stop()
		}
		if err := c.nc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			c.s.log.Debug("closing connection", "client", c.clientAddr, "err", err)
		}
	})
}

func (c *conn) readLoop() {
	defer c.s.wg.Done()
	defer c.readStopped()
	if err := c.startSecurity(); err != nil {
		c.cancel()
		return
	}
	// The read deadline is set here once and then moved only when it
	// passes (sizePrefixRead, readFrameBody): setting it before every
	// read modified a runtime timer twice per request, 6% of the broker's
	// CPU with 1,000 consumers long-polling (bench/idleconsumers).
	if err := c.setReadDeadline(c.idleAfter(time.Now())); err != nil {
		c.readEnded(err)
		return
	}
	for {
		c.waitMuted(c.ctx)
		// The wait for the size is where an idle connection spends its
		// life, so nothing on this path keeps a large frame on the stack:
		// the garbage collector halves an idle reader's stack only while
		// it uses under a quarter of it.
		err := c.readSizePrefix()
		var req request
		if err == nil {
			req, err = c.readRequest()
		}
		if err != nil {
			c.readEnded(err)
			return
		}
		if !c.serveInline(req) {
			c.enqueue(req)
		}
	}
}

// serveInline serves req on the reader when the handler allows it (see
// Inliner) and no processor is running, or one lingers with everything
// answered: then nothing of the connection is queued or pending, so req's
// response is next in order anyway.
func (c *conn) serveInline(req request) bool {
	in, ok := c.s.handler.(Inliner)
	if !ok || c.dead.Load() || !in.CanInline(c.ctx, (*req.buf)[:req.size]) {
		return false
	}
	c.mu.Lock()
	// A processor lingering with everything answered serves nothing
	// until woken, which only this reader does: once a processor exists
	// (the connection served some other request) the fetches that follow
	// would otherwise keep it and its hand-offs alive.
	busy := c.processing && !(c.lingering && c.answered)
	c.mu.Unlock()
	if busy {
		return false
	}
	sv := c.process(req)
	if sv.ready != nil {
		<-sv.ready // an Inliner promises none; waiting keeps the order if one comes
	}
	c.respond(sv)
	return true
}

func (c *conn) readEnded(err error) {
	c.cancel()
	if !errors.Is(err, errStopped) {
		c.s.log.Debug("connection read ended", "client", c.clientAddr, "err", err)
	}
}

// processorLinger is how long a processor waits for the next request
// once the queue is empty before it exits. A producer that sends every
// linger.ms (or a consumer whose fetches are not served inline) sends its
// next request within it, and so keeps one processor whose stack has
// grown to what serving needs: a new goroutine per request grows its
// stack again each time (stack copying was 8% of a CPU profile of the
// broker with 1,000 consumers long-polling, bench/longpoll.sh). Short, because the runtime
// keeps the memory of the most processors ever alive at once: 10,000
// clients that connect within a second and go idle would otherwise leave
// 10,000 grown stacks' worth of resident memory behind
// (bench/connections.sh).
const processorLinger = 100 * time.Millisecond

// enqueue queues a request (it holds a slot, so the queue stays bounded)
// and wakes the processor, or starts one unless one is running.
func (c *conn) enqueue(req request) {
	c.mu.Lock()
	c.queue = append(c.queue, req)
	start := !c.processing
	if start && c.wake == nil {
		c.wake = make(chan struct{}, 1)
	}
	wake := c.lingering
	c.processing, c.lingering = true, false
	c.mu.Unlock()
	if wake {
		c.wake <- struct{}{}
	}
	if start {
		// The reader is counted in wg while it adds the processor, so
		// Add never races with a Wait that could see zero.
		c.s.wg.Add(1)
		go c.processLoop()
	}
}

// readStopped records that nothing more will be queued. With no processor
// running, nothing is queued either: the reader finishes the connection;
// a lingering processor is woken to finish it.
func (c *conn) readStopped() {
	c.mu.Lock()
	c.readDone = true
	finish := !c.processing
	wake := c.lingering
	c.lingering = false
	c.mu.Unlock()
	if wake {
		c.wake <- struct{}{}
	}
	if finish {
		c.finish()
	}
}

// nextStep is what next tells the processor to do.
type nextStep int

const (
	serveRequest nextStep = iota
	lingerForRequest
	finishConnection
)

// next takes the next queued request. With none, the processor lingers,
// or finishes the connection if the reader is gone.
func (c *conn) next(pending int) (req request, step nextStep) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		if c.readDone {
			c.processing = false
			return request{}, finishConnection
		}
		c.lingering, c.answered = true, pending == 0
		return request{}, lingerForRequest
	}
	req = c.queue[0]
	n := copy(c.queue, c.queue[1:])
	c.queue[n] = request{}
	c.queue = c.queue[:n]
	return req, serveRequest
}

// stopLingering ends a processor whose linger ran out, unless a request
// or the reader's stop woke it meanwhile: then its wake is on the way.
func (c *conn) stopLingering() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.lingering {
		return false
	}
	c.processing, c.lingering = false, false
	return true
}

// stopWaiting ends a processor's wait for a request that something else
// ended: it clears lingering, unless a request or the reader's stop
// cleared it meanwhile, whose wake is then on the way and is taken, so
// the next wait does not end on a stale one.
func (c *conn) stopWaiting() {
	c.mu.Lock()
	wakeSent := !c.lingering
	c.lingering = false
	c.mu.Unlock()
	if wakeSent {
		<-c.wake
	}
}

// finish closes the connection once the reader has stopped and everything
// it read is answered.
func (c *conn) finish() {
	c.close()
	c.s.unregister(c)
}

// readRequest reads the frame whose size readSizePrefix read: its first
// bytes from the read-ahead, the rest, if any, off the socket. On error it
// holds nothing.
func (c *conn) readRequest() (request, error) {
	size := int32(binary.BigEndian.Uint32(c.readAhead[c.readStart:]))
	c.readStart += sizePrefixLen
	if err := c.checkFrameSize(size); err != nil {
		return request{}, err
	}
	if testHookBeforeFrameSlot != nil {
		testHookBeforeFrameSlot(c)
	}
	select {
	case c.slots <- struct{}{}:
	case <-c.stopRead:
		return request{}, errStopped
	}
	if !c.s.pool.acquire(int64(size), c.stopRead) {
		<-c.slots
		return request{}, errStopped
	}
	bp := getFrameBuffer(int(size))
	n := copy(*bp, c.readAhead[c.readStart:c.readEnd])
	c.readStart += uint16(n) // at most readAheadBytes
	if n < int(size) {
		if testHookBeforeFrameBody != nil {
			testHookBeforeFrameBody(c)
		}
		// The time spent waiting for a slot or memory is ours, not the
		// client's: the body's deadline starts now.
		if err := c.readFrameBody(*bp, n, c.idleAfter(time.Now())); err != nil {
			c.dropFrame(bp, size)
			return request{}, err
		}
	}
	// The frame is in and no Read may have noticed a stop that came
	// since readSizePrefix's check: the waits above take a free slot and
	// memory as readily as they see one, a frame whole in the read-ahead
	// had no Read left, and a body read from crypto/tls's buffer ignores
	// the socket's passed deadline. Look again, or the frame is served
	// after Shutdown stopped reading. One look covers every path.
	if c.readStopping.Load() {
		c.dropFrame(bp, size)
		return request{}, errStopped
	}
	return request{buf: bp, size: size}, nil
}

// dropFrame gives back what a frame that will not be served holds: its
// buffer, its memory and its slot.
func (c *conn) dropFrame(bp *[]byte, size int32) {
	putFrameBuffer(bp)
	c.s.pool.release(int64(size))
	<-c.slots
}

// checkFrameSize refuses a frame larger than the connection may send.
// Before a SASL connection authenticated that is the smaller bound; but
// a frame pipelined behind the final SaslAuthenticate is the client's
// first after authentication, as Kafka, which reads no frame while one is
// being served during authentication, sees it. So a frame over the
// smaller bound waits for every request before it to be answered, and
// is held to the bound that applies then: still unauthenticated, it is
// refused, its body unread.
func (c *conn) checkFrameSize(size int32) error {
	limit := c.maxFrameBytes()
	if size > limit && size <= c.s.cfg.MaxRequestBytes {
		err := c.awaitAnswered()
		if err == nil && c.readStopping.Load() {
			// An answer closed the connection as it freed its slot;
			// awaitAnswered's select may have taken the slot over the
			// stop.
			err = errStopped
		}
		if err != nil {
			c.logClosedBeforeFrame(size)
			return err
		}
		limit = c.maxFrameBytes()
	}
	if size > 0 && size <= limit {
		return nil
	}
	switch {
	case size <= 0:
		c.s.log.Info("closing connection: invalid frame size", "client", c.clientAddr, "bytes", size)
	case limit < c.s.cfg.MaxRequestBytes:
		c.s.log.Info("closing connection: frame before authentication larger than sasl.server.max.receive.size",
			"client", c.clientAddr, "bytes", size, "limit", limit)
	}
	return fmt.Errorf("%w: %d bytes, the limit is %d", errFrameSize, size, limit)
}

// logClosedBeforeFrame says why a frame that waited for the answers
// before it is not read, when an answer closed the connection: on a SASL
// connection not yet authenticated, that answer was a failed
// authentication (the handler logged its reason), not the frame's size.
func (c *conn) logClosedBeforeFrame(size int32) {
	if c.dead.Load() && c.session.UsesSASL() && !c.session.IsAuthenticated() {
		c.s.log.Debug("closing connection: SASL authentication failed; the frame after it is not read",
			"client", c.clientAddr, "bytes", size)
	}
}

// awaitAnswered waits until every request read so far is answered: it
// takes all of the connection's slots, which responses give back only
// once written, and returns them. The wait is bounded: a connection that
// has not authenticated is closed at the handshake timeout, which stops
// it.
func (c *conn) awaitAnswered() error {
	if testHookAwaitingAnswers != nil {
		testHookAwaitingAnswers(c)
	}
	held := 0
	defer func() {
		for ; held > 0; held-- {
			<-c.slots
		}
	}()
	for held < cap(c.slots) {
		select {
		case c.slots <- struct{}{}:
			held++
		case <-c.stopRead:
			return errStopped
		}
	}
	return nil
}

// testHookAwaitingAnswers, set by a test only, runs when the reader
// starts waiting for earlier requests' answers before it sizes a frame.
var testHookAwaitingAnswers func(*conn)

// testHookBeforeFrameSlot, set by a test only, runs after a frame's size
// is read and before the wait for its slot.
var testHookBeforeFrameSlot func(*conn)

// testHookBeforeFrameBody, set by a test only, runs once a frame holds
// its slot and memory, before the rest of its body is read.
var testHookBeforeFrameBody func(*conn)

// readFrameBody reads the rest of a frame's body, of which n bytes are
// in; it must be in by deadline. It never reads past the frame: the
// read-ahead is empty when a frame needs more than it holds.
func (c *conn) readFrameBody(buf []byte, n int, deadline time.Time) error {
	for n < len(buf) {
		m, err := c.nc.Read(buf[n:])
		n += m
		if err == nil || n == len(buf) {
			// A Read that completed the frame with an error (TLS 1.2's
			// close_notify behind a last request, as in sizePrefixRead)
			// leaves it to the next Read: the frame is served first.
			continue
		}
		if c.readStopping.Load() {
			return errStopped
		}
		if isTimeout(err) && deadline.After(time.Now()) {
			// The socket's deadline was an earlier one's.
			if err := c.setReadDeadline(deadline); err != nil {
				return err
			}
			continue
		}
		if errors.Is(err, io.EOF) && n > 0 {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("reading %d-byte request frame: %w", len(buf), err)
	}
	return nil
}

// readSizePrefix makes sure the next frame's 4-byte size is in the
// read-ahead, reading it off the socket together with whatever follows,
// up to readAheadBytes, when it is not. Waiting for it is where a
// connection is idle: the wait ends with errIdle once IdleTimeout has
// passed with nothing pending. Once the first byte is in, the frame must
// complete within IdleTimeout, so a client trickling bytes is cut off too.
//
// The socket's read deadline is never later than the one that applies,
// but often earlier: it is moved only when it passes, to the one that
// applies then (the idle one, from the last answer, or the frame's).
func (c *conn) readSizePrefix() error {
	n := c.readEnd - c.readStart
	if n >= sizePrefixLen {
		// Read ahead with an earlier frame: no Read to notice a stop.
		if c.readStopping.Load() {
			return errStopped
		}
		return nil
	}
	// Under a size's worth left: moved to the front, read in behind.
	copy(c.readAhead[:], c.readAhead[c.readStart:c.readEnd])
	c.readStart, c.readEnd = 0, n
	if n > 0 {
		// A size's first bytes came with the frame before: they count from
		// now, as they would had they waited in the socket until this read.
		c.partialPrefixDeadline = c.idleAfter(time.Now())
	}
	for c.readEnd < sizePrefixLen {
		m, err := c.nc.Read(c.readAhead[c.readEnd:])
		var stop bool
		if c.readEnd, stop, err = c.sizePrefixRead(c.readEnd, m, err); stop {
			return err
		}
	}
	return nil
}

// sizePrefixRead handles one Read of the size prefix that had n bytes and
// read m more: it returns the new count and whether the read must stop,
// with the error why. Apart from readSizePrefix to keep the parked frame
// small.
func (c *conn) sizePrefixRead(n uint16, m int, err error) (uint16, bool, error) {
	if n == 0 && m > 0 && m < sizePrefixLen {
		c.partialPrefixDeadline = c.idleAfter(time.Now())
	}
	n += uint16(m) // at most readAheadBytes
	if err == nil || n >= sizePrefixLen {
		// A Read that brought the size in with an error (TLS's
		// close_notify behind a last request) leaves the error to the
		// next Read, which returns it again: the frame is served first.
		return n, false, nil
	}
	if c.readStopping.Load() {
		return n, true, errStopped
	}
	if isTimeout(err) {
		next, ok := c.idleDeadline()
		if n > 0 {
			next, ok = c.partialPrefixDeadline, c.partialPrefixDeadline.After(time.Now())
		}
		if ok {
			if err := c.setReadDeadline(next); err != nil {
				return n, true, err
			}
			return n, false, nil
		}
		if n == 0 {
			return n, true, errIdle
		}
	}
	if n == 0 && errors.Is(err, io.EOF) {
		return n, true, io.EOF // the client closed between requests
	}
	return n, true, fmt.Errorf("reading request size (%d of 4 bytes): %w", n, err)
}

func isTimeout(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

// idleDeadline decides, when a wait for a request times out, whether the
// connection is idle. It is not while a request is pending (being served or
// its response written: the write deadline guards that), nor until
// IdleTimeout after the last answer.
func (c *conn) idleDeadline() (time.Time, bool) {
	now := time.Now()
	if len(c.slots) > 0 {
		return c.idleAfter(now), true
	}
	if c.s.cfg.IdleTimeout < 0 {
		return time.Time{}, true
	}
	next := time.Unix(0, c.lastActivity.Load()).Add(c.s.cfg.IdleTimeout)
	return next, next.After(now)
}

// idleAfter is IdleTimeout after t: the zero time, which sets no
// deadline, when connections never idle out (connections.max.idle.ms -1).
func (c *conn) idleAfter(t time.Time) time.Time {
	if c.s.cfg.IdleTimeout < 0 {
		return time.Time{}
	}
	return t.Add(c.s.cfg.IdleTimeout)
}

// setReadDeadline sets the read deadline unless the reader is stopping.
// stopReading sets its flag before its own deadline, so whichever deadline
// wins, the reader sees the stop: either its Read fails at once or this
// check catches it.
func (c *conn) setReadDeadline(t time.Time) error {
	if err := c.nc.SetReadDeadline(t); err != nil {
		if c.readStopping.Load() {
			return errStopped
		}
		return fmt.Errorf("setting read deadline: %w", err)
	}
	if c.readStopping.Load() {
		return errStopped
	}
	return nil
}

func (c *conn) processLoop() {
	defer c.s.wg.Done()
	var linger *time.Timer
	defer func() {
		if linger != nil {
			linger.Stop()
		}
	}()
	// pending holds the responses not yet written, in request order, once
	// a handler returned a Deferred one: later pipelinable requests are
	// served meanwhile and their responses queue behind it. It is bounded
	// by the read-ahead slots, which are freed only as responses go out.
	var pending []served
	for {
		pending = c.respondReady(pending)
		req, step := c.next(len(pending))
		switch step {
		case finishConnection:
			c.drain(pending)
			c.finish()
			return
		case lingerForRequest:
			if len(pending) > 0 {
				// Waiting for the head's fsync or the next request,
				// whichever comes first; never lingering out meanwhile.
				select {
				case <-c.wake:
				case <-pending[0].ready:
					c.stopWaiting()
					c.respond(pending[0])
					pending[0] = served{}
					pending = pending[1:]
				}
				continue
			}
			if linger == nil {
				linger = time.NewTimer(processorLinger)
			} else {
				linger.Reset(processorLinger)
			}
			select {
			case <-c.wake:
			case <-linger.C:
				if c.stopLingering() {
					return
				}
				<-c.wake
			}
			continue
		}
		if len(pending) > 0 && !c.canPipeline(req) {
			pending = c.drain(pending)
		}
		sv := c.process(req)
		if sv.err != nil && len(pending) > 0 {
			// The handler closes the connection (an acks=0 produce
			// failed): the earlier responses go out first, and no later
			// request may be served meanwhile, since the close would
			// drop its response after its effects (a produce appended
			// twice once the client retries it).
			pending = c.drain(pending)
		}
		if sv.ready == nil && len(pending) == 0 {
			c.respond(sv)
			continue
		}
		if sv.ready == nil {
			sv.ready = closedReady // answered at once, but queued behind the others
		}
		pending = append(pending, sv)
	}
}

// served is a request served, and its response (nil: none) waiting to be
// written; ready is open while a Deferred response is not finished.
type served struct {
	req   request
	resp  Response
	err   error
	ready <-chan struct{}
}

// closedReady stands for a response that is ready.
var closedReady = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// process serves one request. A Deferred response keeps the frame.
func (c *conn) process(req request) served {
	sv := served{req: req}
	if !c.dead.Load() {
		sv.resp, sv.err = c.serve((*req.buf)[:req.size])
	}
	if d, ok := sv.resp.(Deferred); ok {
		sv.ready = d.Ready()
	}
	return sv
}

// drain writes every pending response, in order, waiting for each.
func (c *conn) drain(pending []served) []served {
	for i := range pending {
		if pending[i].ready != nil {
			<-pending[i].ready
		}
		c.respond(pending[i])
		pending[i] = served{}
	}
	return pending[:0]
}

// respondReady writes the pending responses that are ready, up to the
// first that is not, so a stream of pipelined produces does not hold back
// the answers of those whose rounds are done.
func (c *conn) respondReady(pending []served) []served {
	for len(pending) > 0 {
		select {
		case <-pending[0].ready:
		default:
			return pending
		}
		c.respond(pending[0])
		pending[0] = served{}
		pending = pending[1:]
	}
	return pending
}

// respond writes a served request's response, whose handler is done with
// the frame, and frees the frame and the request's slot.
func (c *conn) respond(sv served) {
	putFrameBuffer(sv.req.buf)
	c.s.pool.release(int64(sv.req.size))
	if sv.resp != nil {
		c.waitDelayed(c.ctx)
		c.write(sv.resp)
	}
	if sv.err != nil {
		c.s.log.Debug("closing connection after handler error", "client", c.clientAddr, "err", sv.err)
		c.close()
	}
	c.lastActivity.Store(time.Now().UnixNano())
	<-c.slots
	// A throttled client's next request waits out the mute: its
	// response went out at once, with throttle_time_ms (KIP-219).
	c.waitMuted(c.ctx)
}

// canPipeline asks the handler whether req may be served while earlier
// responses are pending.
func (c *conn) canPipeline(req request) bool {
	p, ok := c.s.handler.(Pipeliner)
	return ok && !c.dead.Load() && p.CanPipeline(c.ctx, (*req.buf)[:req.size])
}

// serve calls the handler. A panic is turned into an error that closes
// this connection: one bad request must not take the broker down.
func (c *conn) serve(frame []byte) (resp Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.s.log.Error("request handler panicked; closing connection",
				"client", c.clientAddr, "panic", r, "stack", string(debug.Stack()))
			resp, err = nil, fmt.Errorf("request handler panicked: %v", r)
		}
	}()
	ctx := c.ctx
	// Only a connection that authenticated as someone carries a principal:
	// auth.FromContext gives Anonymous without one, so PLAINTEXT requests
	// pay nothing for it.
	if p := c.session.Principal(); !p.IsAnonymous() {
		ctx = auth.WithPrincipal(ctx, p)
	}
	return c.s.handler.Serve(ctx, c.clientAddr, frame)
}

// minWriteBytesPerSecond is the slowest a client may read a large
// response: its write deadline grows by the response's size at this rate.
// A fixed deadline would cut off a steady consumer on a slow link (50 MiB
// in 30 s needs 1.7 MB/s), which would then refetch the same offset
// forever.
const minWriteBytesPerSecond = 64 << 10

// write sends resp unless the connection is dead, and releases it either
// way. The write deadline bounds how long a client that does not read its
// responses can hold its connection's goroutines and buffers: WriteTimeout,
// plus time for the response's size at minWriteBytesPerSecond when the
// response says its size.
func (c *conn) write(resp Response) {
	defer resp.Release()
	if c.dead.Load() {
		return
	}
	timeout := c.s.cfg.WriteTimeout
	if sized, ok := resp.(interface{ Size() int64 }); ok {
		timeout += time.Duration(sized.Size()/minWriteBytesPerSecond) * time.Second
	}
	err := c.armWriteDeadline(time.Now().Add(timeout))
	if err == nil {
		_, err = resp.WriteTo(c.nc)
	}
	if err != nil {
		if !c.dead.Load() {
			c.s.log.Debug("writing response", "client", c.clientAddr, "err", err)
		}
		c.close()
	}
}

// armWriteDeadline makes sure the write deadline is no earlier than need.
// Setting it before every response modified a runtime timer each time;
// instead it is moved, when it would come too early, to half a
// WriteTimeout beyond need, so a connection answering steadily moves it
// once in that long. A response that cannot be written is thus cut off
// between its timeout and half a WriteTimeout later.
func (c *conn) armWriteDeadline(need time.Time) error {
	if !c.writeDeadline.Before(need) {
		return nil
	}
	c.writeDeadline = need.Add(c.s.cfg.WriteTimeout / 2)
	if err := c.nc.SetWriteDeadline(c.writeDeadline); err != nil {
		return fmt.Errorf("setting write deadline: %w", err)
	}
	return nil
}
