// Package netserver is the broker's TCP edge: it accepts connections, cuts
// the byte stream into size-prefixed request frames and hands each frame to a
// Handler, writing the responses back. It knows nothing of Kafka's APIs.
//
// Invariants, as in Kafka's SocketServer:
//   - The requests of one connection are served one at a time, in the order
//     they arrived (Kafka mutes a channel while a request is in process; an
//     idempotent producer's batches rely on it), and their responses are
//     written in the same order. The reader reads ahead up to
//     MaxInFlightPerConn frames, so a pipelining client does not wait a round
//     trip per request.
//   - Connections are independent: each has its own reader goroutine and,
//     while it has requests, its own processor goroutine; reads of a frame
//     in progress and writes of a response have deadlines, so a client that
//     stalls, trickles or stops reading only ever holds up itself.
//   - An idle connection holds one parked goroutine and no buffer but a
//     fixed 512-byte read-ahead: cost grows with requests served, not with
//     clients connected.
//   - Memory is bounded: a frame's size is checked against MaxRequestBytes
//     before anything is allocated, and all frames read but not yet served
//     share one byte budget (QueuedMaxRequestBytes).
package netserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/quota"
)

// Handler serves one request frame: the bytes after the 4-byte size prefix.
// frame is valid only until Serve returns. A nil Response means "no response"
// (Produce acks=0). An error closes the connection (after responses to earlier
// requests are written, and after the Response returned with the error, if
// any).
type Handler interface {
	Serve(ctx context.Context, clientAddr string, frame []byte) (Response, error)
}

// Deferred is a Response that was not finished when Serve returned: the
// handler ordered the request's effects (a produce's batches queued in
// their logs) and finishes it on another goroutine, closing Ready. Until
// then the request's frame stays valid and unchanged, and the connection
// may serve its next requests, if the Handler is a Pipeliner that allows
// them; responses are still written in request order.
type Deferred interface {
	Response
	Ready() <-chan struct{}
}

// Pipeliner is a Handler that says which requests may be served while
// Deferred responses are pending on their connection; any other request
// waits until those are written.
type Pipeliner interface {
	CanPipeline(ctx context.Context, frame []byte) bool
}

// Inliner is a Handler that names the requests a connection's reader may
// serve itself when nothing else of the connection is queued or being
// served: requests that get no Deferred response and whose wait, if any,
// is bounded by the request itself (a long-polling fetch's max wait).
// Serving one on the reader saves handing it to a processor goroutine and
// waking that goroutine, which was a sixth or more of the broker's CPU with
// 1,000 consumers long-polling (bench/idleconsumers). Meanwhile the
// connection is not read, as Kafka mutes a connection while its request is
// served: a later request waits in the socket instead of the read-ahead
// queue (it could not be served earlier either; what of it came in with
// the inlined request's own read waits in the connection's 512 bytes of
// read-ahead), and a client that leaves is noticed once the request is
// answered.
type Inliner interface {
	CanInline(ctx context.Context, frame []byte) bool
}

// Response is a complete response frame (size prefix included). The server
// calls WriteTo with the *net.TCPConn itself (so an implementation can use
// sendfile on it), then Release exactly once, also when the write fails or
// the connection is gone.
type Response interface {
	WriteTo(w io.Writer) (int64, error)
	Release()
}

// Config holds the server's limits. A zero field takes its default.
type Config struct {
	MaxRequestBytes       int32         // socket.request.max.bytes, default 104857600; a larger size prefix closes the conn
	QueuedMaxRequestBytes int64         // queued.max.request.bytes: bound on request bytes read but not yet served, across all connections; default 512 MiB; must be >= MaxRequestBytes
	MaxInFlightPerConn    int           // requests read ahead per connection, default 16
	IdleTimeout           time.Duration // connections.max.idle.ms, default 10 min: a connection with no request and nothing pending is closed; negative: never (-1 in Kafka)
	WriteTimeout          time.Duration // a client that does not read its responses for this long is disconnected; default 30s
	MaxConnections        int           // max.connections; default 10000; beyond it new connections are closed at once
	Logger                *slog.Logger
	// ConnectionsChanged, if set, is called each time a client connection
	// is registered or unregistered, with the server's lock held: it must
	// not block nor call into the server (the node signals a goroutine
	// that reads NumConnections and resizes the segment file budget).
	ConnectionsChanged func()
	// DescriptorShortage, if set, is called each time accepting a
	// connection fails for want of descriptors (EMFILE, ENFILE), before
	// the accept loop backs off and tries again: the node has the segment
	// file cache give descriptors back, which it can and sockets cannot,
	// so that the retry finds one. Called from an accept loop without the
	// server's lock; it must not block.
	DescriptorShortage func()

	// MaxConnectionsPerIP is max.connections.per.ip: 0 means no limit,
	// a negative value none at all (Kafka's 0: only the addresses in the
	// overrides may connect). MaxConnectionsPerIPOverrides sets the limit
	// of single addresses (max.connections.per.ip.overrides).
	MaxConnectionsPerIP          int
	MaxConnectionsPerIPOverrides map[string]int
	// MaxConnectionCreationRate is max.connection.creation.rate: new
	// connections per second the broker accepts; above it the accept loop
	// waits. 0 means no limit.
	MaxConnectionCreationRate float64
	// IPConnectionRate returns the connection_creation_rate quota of a
	// client address (ip quota entities); nil or ok false: none.
	IPConnectionRate func(ip string) (rate float64, ok bool)
	// QuotaWindow samples the connection rates (quota.window.num,
	// quota.window.size.seconds).
	QuotaWindow quota.WindowConfig

	Security Security // what this listener speaks; the zero value is PLAINTEXT
}

// Security is a listener's protocol: TLS, SASL, or both, as Kafka's
// security protocols combine them. Each connection gets an auth.Session
// in its requests' context, which the SASL handlers advance and every
// handler reads the principal from.
type Security struct {
	Listener         string // the listener's name, e.g. PLAINTEXT, SASL_SSL, INTERNAL
	SecurityProtocol string // PLAINTEXT (when empty), SSL, SASL_PLAINTEXT, SASL_SSL
	// TLS is the server config of SSL and SASL_SSL listeners.
	TLS *tls.Config
	// PrincipalRules map a client certificate's subject to the principal
	// of an SSL connection (ssl.principal.mapping.rules).
	PrincipalRules auth.PrincipalRules
	// SASLMechanisms (sasl.enabled.mechanisms) and ReauthMs
	// (connections.max.reauth.ms) go into each connection's session.
	SASLMechanisms []string
	ReauthMs       int64
	// HandshakeTimeout bounds the TLS handshake and, on a SASL listener,
	// the time until the connection has authenticated; a client that
	// never finishes is disconnected. Default 10 s.
	HandshakeTimeout time.Duration
	// MaxUnauthenticatedRequestBytes (sasl.server.max.receive.size) bounds
	// each frame read before a SASL connection authenticated, so an
	// unauthenticated client cannot make the broker read 100 MiB frames.
	// Default 512 KiB.
	MaxUnauthenticatedRequestBytes int32
}

// Security defaults.
const (
	DefaultHandshakeTimeout               = 10 * time.Second
	DefaultMaxUnauthenticatedRequestBytes = 512 << 10 // sasl.server.max.receive.size
)

// Defaults, Kafka's where Kafka has the setting.
const (
	DefaultMaxRequestBytes       = 100 << 20 // socket.request.max.bytes
	DefaultQueuedMaxRequestBytes = 512 << 20 // queued.max.request.bytes
	DefaultMaxInFlightPerConn    = 16
	DefaultIdleTimeout           = 10 * time.Minute // connections.max.idle.ms
	DefaultWriteTimeout          = 30 * time.Second
	DefaultMaxConnections        = 10000
)

// Validate reports settings that contradict each other.
func (c Config) Validate() error {
	d := c.withDefaults()
	if d.Security.usesTLS() && d.Security.TLS == nil {
		return fmt.Errorf("listener %s is %s but has no TLS config", d.Security.Listener, d.Security.SecurityProtocol)
	}
	if c.QueuedMaxRequestBytes > 0 && d.QueuedMaxRequestBytes < int64(d.MaxRequestBytes) {
		// A frame larger than the whole pool could never be admitted.
		return fmt.Errorf("queued.max.request.bytes %d is below socket.request.max.bytes %d",
			d.QueuedMaxRequestBytes, d.MaxRequestBytes)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.QueuedMaxRequestBytes <= 0 {
		c.QueuedMaxRequestBytes = max(DefaultQueuedMaxRequestBytes, int64(c.MaxRequestBytes))
	}
	if c.MaxInFlightPerConn <= 0 {
		c.MaxInFlightPerConn = DefaultMaxInFlightPerConn
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Security = c.Security.withDefaults()
	switch {
	case c.MaxConnectionsPerIP == 0:
		c.MaxConnectionsPerIP = math.MaxInt
	case c.MaxConnectionsPerIP < 0:
		c.MaxConnectionsPerIP = 0
	}
	c.QuotaWindow = c.QuotaWindow.WithDefaults()
	return c
}

func (sec Security) withDefaults() Security {
	if sec.SecurityProtocol == "" {
		sec.SecurityProtocol = "PLAINTEXT"
	}
	if sec.Listener == "" {
		sec.Listener = sec.SecurityProtocol
	}
	if sec.HandshakeTimeout <= 0 {
		sec.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if sec.MaxUnauthenticatedRequestBytes <= 0 {
		sec.MaxUnauthenticatedRequestBytes = DefaultMaxUnauthenticatedRequestBytes
	}
	return sec
}

// usesTLS reports whether the listener's protocol is over TLS.
func (sec Security) usesTLS() bool {
	return sec.SecurityProtocol == "SSL" || sec.SecurityProtocol == "SASL_SSL"
}

// Server accepts connections on one listener and serves their requests.
type Server struct {
	listeners []Listener
	cfg       Config
	handler   Handler
	log       *slog.Logger
	pool      *memoryPool

	// ctx is the parent of every Serve ctx; cancelled at Shutdown and Close
	// so that long polls end early.
	ctx    context.Context
	cancel context.CancelFunc

	mu         sync.Mutex // guards conns, stopping, connsPerIP, ipRates
	conns      map[*conn]struct{}
	stopping   bool // no new connections; set by Shutdown and Close
	connsPerIP map[string]int
	ipRates    map[string]*ipRate
	refused    refusals
	// acceptRate meters max.connection.creation.rate; only the accept
	// loop uses it. nil when there is no limit.
	acceptRate *quota.Rate

	// wg counts the accept loop and the goroutines of every connection.
	// Readers are added by the accept loop and processors by their reader,
	// each while itself counted, so Add never races with a Wait that could
	// see zero.
	wg sync.WaitGroup
}

// Listen listens on addr (port 0 picks a free port) and starts accepting.
func Listen(addr string, cfg Config, h Handler) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return New(ln, cfg, h), nil
}

// Listener is one socket a Server accepts on, and what it speaks.
type Listener struct {
	Listener net.Listener
	Security Security
}

// New starts accepting on ln, which speaks cfg.Security. An inconsistent
// Config is corrected rather than refused (the pool is raised to hold one
// maximal frame); use Validate or Listen to have it refused.
func New(ln net.Listener, cfg Config, h Handler) *Server {
	return NewListeners([]Listener{{Listener: ln, Security: cfg.Security}}, cfg, h)
}

// NewListeners starts accepting on every listener, each with its own
// security, all sharing the Server's limits: max.connections, the
// per-address limits and rates, and the request memory pool are the
// broker's, as in Kafka, not one set per listener.
func NewListeners(listeners []Listener, cfg Config, h Handler) *Server {
	cfg = cfg.withDefaults()
	if cfg.QueuedMaxRequestBytes < int64(cfg.MaxRequestBytes) {
		cfg.Logger.Warn("queued.max.request.bytes raised to socket.request.max.bytes",
			"queued.max.request.bytes", cfg.QueuedMaxRequestBytes, "socket.request.max.bytes", cfg.MaxRequestBytes)
		cfg.QueuedMaxRequestBytes = int64(cfg.MaxRequestBytes)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:     cfg,
		handler: h,
		log:     cfg.Logger,
		pool:    newMemoryPool(cfg.QueuedMaxRequestBytes),
		ctx:     ctx,
		cancel:  cancel,
		conns:   make(map[*conn]struct{}),

		connsPerIP: make(map[string]int),
		ipRates:    make(map[string]*ipRate),
	}
	if cfg.MaxConnectionCreationRate > 0 {
		s.acceptRate = quota.NewRate(cfg.QuotaWindow)
	}
	for _, l := range listeners {
		l.Security = l.Security.withDefaults()
		s.listeners = append(s.listeners, l)
	}
	s.wg.Add(len(s.listeners))
	for i := range s.listeners {
		go s.acceptLoop(&s.listeners[i])
	}
	return s
}

// Addr is the first listener's address (with the real port when 0 was
// asked for).
func (s *Server) Addr() net.Addr { return s.listeners[0].Listener.Addr() }

// ListenerAddr is a listener's name and bound address.
type ListenerAddr struct {
	Name string // PLAINTEXT, SASL_SSL, INTERNAL, ...
	Addr net.Addr
}

// Listeners are the listeners' names and addresses, in the order given.
func (s *Server) Listeners() []ListenerAddr {
	out := make([]ListenerAddr, 0, len(s.listeners))
	for _, l := range s.listeners {
		out = append(out, ListenerAddr{Name: l.Security.Listener, Addr: l.Listener.Addr()})
	}
	return out
}

// NumConnectionsOn is the number of open connections of one listener.
func (s *Server) NumConnectionsOn(listener string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.sec.Listener == listener {
			n++
		}
	}
	return n
}

// NumConnections is the number of open client connections.
func (s *Server) NumConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// QueuedRequestBytes is the request memory in use: frames read (or being
// read) and not yet served.
func (s *Server) QueuedRequestBytes() int64 { return s.pool.inUse() }

// Shutdown stops accepting and reading new requests, lets every request
// already read be served and answered (their ctx is cancelled so long polls
// end early), then closes all connections. It returns when all connection
// goroutines have exited, or when ctx ends: then it closes everything
// forcibly and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	conns := s.stop()
	for _, c := range conns {
		c.stopReading()
	}
	s.cancel()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.Close()
		return fmt.Errorf("netserver shutdown: %w", ctx.Err())
	}
}

// Close stops accepting and closes every connection at once; requests being
// served see their ctx cancelled and their responses are released unwritten.
// It does not wait for handlers to return.
func (s *Server) Close() error {
	conns := s.stop()
	s.cancel()
	for _, c := range conns {
		c.close()
	}
	return nil
}

// stop marks the server as stopping, closes the listeners on the first call
// and returns the connections open at that moment. Connections accepted
// later are closed by register.
func (s *Server) stop() []*conn {
	s.mu.Lock()
	first := !s.stopping
	s.stopping = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	if first {
		for _, l := range s.listeners {
			if err := l.Listener.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				s.log.Debug("closing listener", "listener", l.Security.Listener, "err", err)
			}
		}
	}
	return conns
}

func (s *Server) acceptLoop(l *Listener) {
	defer s.wg.Done()
	var failing acceptFailures
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			if s.isStopping() || errors.Is(err, net.ErrClosed) {
				return
			}
			if !s.acceptFailed(l, &failing, err) {
				return
			}
			continue
		}
		if failing.count > 0 {
			s.log.Info("accepting connections again", "listener", l.Security.Listener,
				"failedAccepts", failing.count, "after", time.Since(failing.since).Round(time.Millisecond))
		}
		failing = acceptFailures{}
		s.register(nc, l.Security)
		s.throttleAccept()
	}
}

// acceptFailures is an episode of accepts failing in a row.
type acceptFailures struct {
	count   int
	since   time.Time
	backoff time.Duration
}

// Accept retries back off from minAcceptBackoff, doubling to
// maxAcceptBackoff, as net/http's do.
const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
)

// acceptFailed handles an accept that failed (out of file descriptors and
// the like): it backs off rather than spin, and keeps serving existing
// clients. Without descriptors, retrying alone waits for a client to
// leave, so the node is told to free some (DescriptorShortage); it may
// have none left to free (its segment file budget has a floor), so the
// backoff, not the node, is what keeps the loop from spinning. The
// failure is logged once per episode, not per accept: under a persistent
// EMFILE one line a second says nothing new. It returns false when the
// server stops meanwhile.
func (s *Server) acceptFailed(l *Listener, failing *acceptFailures, err error) bool {
	if isDescriptorShortage(err) && s.cfg.DescriptorShortage != nil {
		s.cfg.DescriptorShortage()
	}
	failing.backoff = min(max(2*failing.backoff, minAcceptBackoff), maxAcceptBackoff)
	if failing.count == 0 {
		failing.since = time.Now()
		s.log.Warn("accepting connections failed; retrying, logged again once they are accepted",
			"listener", l.Security.Listener, "err", err, "retryIn", failing.backoff)
	}
	failing.count++
	select {
	case <-time.After(failing.backoff):
		return true
	case <-s.ctx.Done():
		return false
	}
}

func isDescriptorShortage(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

func (s *Server) isStopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}

// register starts serving nc, or closes it at once when the server is
// stopping or a connection limit refuses it (limits.go).
func (s *Server) register(nc net.Conn, sec Security) {
	ip := clientIP(nc)
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		nc.Close()
		return
	}
	if reason, ok := s.admitLocked(ip, time.Now().UnixMilli()); !ok {
		s.mu.Unlock()
		s.log.Debug("connection refused", "client", nc.RemoteAddr().String(), "limit", reason)
		nc.Close()
		return
	}
	c := newConn(s, nc, sec)
	c.ip = ip
	s.conns[c] = struct{}{}
	s.noteConnectionsLocked()
	s.wg.Add(1)
	s.mu.Unlock()
	go c.readLoop() // which starts a processor when it has requests
}

func (s *Server) unregister(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.noteConnectionsLocked()
	s.releaseIPLocked(c.ip)
	s.mu.Unlock()
}

func (s *Server) noteConnectionsLocked() {
	if s.cfg.ConnectionsChanged != nil {
		s.cfg.ConnectionsChanged()
	}
}
