package raft

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	etcdraft "go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/sluicelog/sluice/internal/clock"
)

// Transport carries frames between quorum members. The send methods queue
// and return at once; a frame may be dropped (a full queue, a peer that
// cannot be reached): Raft retransmits, and a proposer times out. A dropped
// or failed Raft message is reported to the Handler (ReportUnreachable, and
// ReportSnapshot for a snapshot), so Raft stops streaming to the peer.
type Transport interface {
	Send(msgs []*raftpb.Message)
	SendProposal(to uint64, p ForwardedProposal)
	SendReply(to uint64, r ProposalReply)
	Close() error
}

// Handler receives what a Transport delivers, from the transport's
// goroutines. Receive* may block (back-pressure on the connection); the
// Report* methods must not, since a transport may call them from Send.
type Handler interface {
	Receive(m *raftpb.Message)
	ReceiveProposal(from uint64, p ForwardedProposal)
	ReceiveReply(from uint64, r ProposalReply)
	ReportUnreachable(id uint64)
	ReportSnapshot(id uint64, status etcdraft.SnapshotStatus)
}

// ForwardedProposal is sent by a member to the leader: an entry to append
// on its behalf, or (Join) a learner asking to be added to the
// configuration.
type ForwardedProposal struct {
	RequestID uint64
	Join      bool
	// Request marks data for the leader's Config.HandleForward rather
	// than an entry to append; the reply carries the handler's answer.
	Request bool
	Data    []byte
}

// ProposalReply answers a ForwardedProposal once the leader has applied the
// entry (Code ReplyOK, with its index) or failed it.
type ProposalReply struct {
	RequestID uint64
	Index     uint64
	Code      ReplyCode
	Payload   []byte // a request's answer, or its error message
}

// ReplyCode says how a forwarded proposal ended. Its values are on the wire.
type ReplyCode uint8

const (
	ReplyOK        ReplyCode = 0
	ReplyNotLeader ReplyCode = 1 // forward again to the current leader
	ReplyDropped   ReplyCode = 2 // ErrProposalDropped
	ReplyLost      ReplyCode = 3 // ErrProposalLost
	ReplyUnknown   ReplyCode = 4 // ErrOutcomeUnknown
	ReplyTooMany   ReplyCode = 5 // ErrTooManyProposals
	ReplyTooLarge  ReplyCode = 6 // ErrProposalTooLarge or ErrEmptyProposal
	ReplyFailed    ReplyCode = 7 // a request's handler failed; Payload says why
)

var replyErrors = map[ReplyCode]error{
	ReplyNotLeader: errNotLeader,
	ReplyDropped:   ErrProposalDropped,
	ReplyLost:      ErrProposalLost,
	ReplyUnknown:   ErrOutcomeUnknown,
	ReplyTooMany:   ErrTooManyProposals,
	ReplyTooLarge:  ErrProposalTooLarge,
}

func (c ReplyCode) err() error {
	if c == ReplyOK {
		return nil
	}
	if err, ok := replyErrors[c]; ok {
		return err
	}
	return ErrOutcomeUnknown
}

// replyFor is the reply a leader sends when a forwarded proposal is done.
func replyFor(requestID, index uint64, err error) ProposalReply {
	r := ProposalReply{RequestID: requestID, Index: index, Code: ReplyUnknown}
	if err == nil {
		r.Code = ReplyOK
		return r
	}
	if errors.Is(err, ErrEmptyProposal) {
		r.Code = ReplyTooLarge
		return r
	}
	for code, e := range replyErrors {
		if errors.Is(err, e) {
			r.Code = code
		}
	}
	return r
}

// The frame format of the controller listener. It must not change; a new
// layout needs a new hello version.
//
//	[4] n: length of kind + payload, big-endian, 1 <= n <= maxFrameBytes
//	[1] kind
//	[n-1] payload
//
//	kind 0 hello     [1 version = 1][8 node id][2 address length][address]
//	                 the first frame on every connection, from the dialer,
//	                 which then only writes; the acceptor only reads
//	kind 1 raft      raftpb.Message, protobuf
//	kind 2 proposal  [8 request id][1 flags: bit 0 = join, bit 1 = request][data]
//	kind 3 reply     [8 request id][8 index][1 reply code][payload: a request's answer]
const (
	kindHello    = 0
	kindRaft     = 1
	kindProposal = 2
	kindReply    = 3

	helloVersion = 1
	// maxFrameBytes bounds a frame: snapshots travel in one.
	maxFrameBytes  = 64 << 20
	maxAddressLen  = 255
	frameReadChunk = 1 << 20 // a frame's buffer grows as its bytes arrive
)

// DefaultPort is the controller listener's port when none is configured.
const DefaultPort = "9093"

var errFrame = errors.New("malformed quorum frame")

func appendFrameHeader(dst []byte, kind byte, payloadLen int) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(payloadLen+1))
	return append(dst, kind)
}

func encodeHello(id uint64, addr string) []byte {
	b := []byte{helloVersion}
	b = binary.BigEndian.AppendUint64(b, id)
	b = binary.BigEndian.AppendUint16(b, uint16(len(addr)))
	return append(b, addr...)
}

func decodeHello(b []byte) (id uint64, addr string, err error) {
	if len(b) < 11 || b[0] != helloVersion {
		return 0, "", fmt.Errorf("hello: %w", errFrame)
	}
	id, n := binary.BigEndian.Uint64(b[1:]), int(binary.BigEndian.Uint16(b[9:]))
	if len(b) != 11+n || n > maxAddressLen || id == 0 {
		return 0, "", fmt.Errorf("hello: %w", errFrame)
	}
	return id, string(b[11:]), nil
}

func encodeProposal(p ForwardedProposal) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 9+len(p.Data)), p.RequestID)
	var flags byte
	if p.Join {
		flags |= 1
	}
	if p.Request {
		flags |= 2
	}
	return append(append(b, flags), p.Data...)
}

// decodeProposal parses a proposal frame; the data aliases b.
func decodeProposal(b []byte) (ForwardedProposal, error) {
	if len(b) < 9 || b[8]&^3 != 0 || b[8] == 3 {
		return ForwardedProposal{}, fmt.Errorf("proposal: %w", errFrame)
	}
	return ForwardedProposal{RequestID: binary.BigEndian.Uint64(b), Join: b[8]&1 != 0, Request: b[8]&2 != 0, Data: b[9:]}, nil
}

func encodeReply(r ProposalReply) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 17+len(r.Payload)), r.RequestID)
	b = binary.BigEndian.AppendUint64(b, r.Index)
	return append(append(b, byte(r.Code)), r.Payload...)
}

// decodeReply parses a reply frame; the payload aliases b.
func decodeReply(b []byte) (ProposalReply, error) {
	if len(b) < 17 {
		return ProposalReply{}, fmt.Errorf("reply: %w", errFrame)
	}
	r := ProposalReply{RequestID: binary.BigEndian.Uint64(b), Index: binary.BigEndian.Uint64(b[8:]), Code: ReplyCode(b[16])}
	if len(b) > 17 {
		r.Payload = b[17:]
	}
	return r, nil
}

// readFrame reads one frame. The payload buffer grows with the bytes that
// actually arrive, so a length prefix alone cannot make it allocate.
func readFrame(r io.Reader) (kind byte, payload []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:4]))
	if n < 1 || n > maxFrameBytes {
		return 0, nil, fmt.Errorf("frame of %d bytes: %w", n, errFrame)
	}
	n-- // the kind byte is read
	for len(payload) < n {
		chunk := min(n-len(payload), frameReadChunk)
		payload = slices.Grow(payload, chunk)
		payload = payload[:len(payload)+chunk]
		if _, err := io.ReadFull(r, payload[len(payload)-chunk:]); err != nil {
			return 0, nil, err
		}
	}
	if payload == nil {
		payload = []byte{}
	}
	return hdr[4], payload, nil
}

// decodeFrame turns a frame's payload into what it carries: a
// *raftpb.Message, a ForwardedProposal or a ProposalReply.
func decodeFrame(kind byte, payload []byte) (any, error) {
	switch kind {
	case kindRaft:
		m := &raftpb.Message{}
		if err := proto.Unmarshal(payload, m); err != nil {
			return nil, fmt.Errorf("raft message: %v: %w", err, errFrame)
		}
		return m, nil
	case kindProposal:
		return decodeProposal(payload)
	case kindReply:
		return decodeReply(payload)
	}
	return nil, fmt.Errorf("kind %d: %w", kind, errFrame)
}

// Connection limits and timings of the TCP transport.
const (
	peerQueueFrames  = 1024 // per peer; beyond it frames are dropped
	maxInboundConns  = 128
	dialTimeout      = 3 * time.Second
	writeTimeout     = 10 * time.Second
	helloTimeout     = 10 * time.Second
	minDialBackoff   = 50 * time.Millisecond
	maxDialBackoff   = 2 * time.Second
	connBufferBytes  = 64 << 10
	acceptRetryDelay = 100 * time.Millisecond
)

// TCPConfig configures a TCPTransport.
type TCPConfig struct {
	NodeID uint64
	// Listener, if set, is used as is; otherwise ListenAddr is listened on.
	Listener   net.Listener
	ListenAddr string
	// AdvertisedAddr is what this node's hello tells peers to dial back;
	// empty means the listener's address.
	AdvertisedAddr string
	// Peers are the configured members' addresses (the voters). Learners'
	// addresses are learned from their hello frames.
	Peers  map[uint64]string
	Clock  clock.Clock
	Logger *slog.Logger
	// TLSServer wraps the listener in TLS and TLSClient every dial: the
	// controllers' connections are then mutual TLS, each end checking the
	// other's certificate against the CA. Both or neither.
	TLSServer, TLSClient *tls.Config
}

// TCPTransport is the Transport of a real cluster: each member dials every
// peer it sends to and keeps that connection for its own frames, one
// direction only; what it receives comes in on connections the peers
// dialed. Per peer, one goroutine writes from a bounded queue.
type TCPTransport struct {
	id         uint64
	ln         net.Listener
	advertised string
	clock      clock.Clock
	logger     *slog.Logger
	handler    Handler
	configured map[uint64]string
	tlsClient  *tls.Config
	ctx        context.Context // cancels dials on Close
	cancel     context.CancelFunc
	closing    chan struct{}
	wg         sync.WaitGroup

	mu      sync.Mutex
	addrs   map[uint64]string
	peers   map[uint64]*peerSender
	conns   map[net.Conn]bool // open connections; true for inbound
	inbound int
	closed  bool
}

var _ Transport = (*TCPTransport)(nil)

// NewTCPTransport listens and starts accepting peers' connections.
func NewTCPTransport(cfg TCPConfig, h Handler) (*TCPTransport, error) {
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.ListenAddr); err != nil {
			return nil, fmt.Errorf("quorum listener: %w", err)
		}
	}
	if cfg.TLSServer != nil {
		// The handshake runs on the first read, under the hello's
		// deadline, so a peer that never finishes it is dropped.
		ln = tls.NewListener(ln, cfg.TLSServer)
	}
	t := &TCPTransport{
		id: cfg.NodeID, ln: ln, advertised: cfg.AdvertisedAddr, clock: cfg.Clock, logger: cfg.Logger, tlsClient: cfg.TLSClient,
		handler: h, configured: cfg.Peers, closing: make(chan struct{}),
		addrs: map[uint64]string{}, peers: map[uint64]*peerSender{}, conns: map[net.Conn]bool{},
	}
	if t.clock == nil {
		t.clock = clock.Real()
	}
	if t.logger == nil {
		t.logger = slog.Default()
	}
	if t.advertised == "" {
		t.advertised = ln.Addr().String()
	}
	for id, addr := range cfg.Peers {
		t.addrs[id] = addr
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

// Addr is the listener's address.
func (t *TCPTransport) Addr() string { return t.ln.Addr().String() }

// Send queues Raft messages for their peers.
func (t *TCPTransport) Send(msgs []*raftpb.Message) {
	for _, m := range msgs {
		if m.GetTo() != t.id {
			t.enqueue(m.GetTo(), outFrame{kind: kindRaft, msg: m})
		}
	}
}

// SendProposal queues a forwarded proposal.
func (t *TCPTransport) SendProposal(to uint64, p ForwardedProposal) {
	t.enqueue(to, outFrame{kind: kindProposal, payload: encodeProposal(p)})
}

// SendReply queues the answer to a forwarded proposal.
func (t *TCPTransport) SendReply(to uint64, r ProposalReply) {
	t.enqueue(to, outFrame{kind: kindReply, payload: encodeReply(r)})
}

// outFrame is a frame waiting in a peer's queue. A Raft message is
// marshalled by the peer's goroutine, off the driver's.
type outFrame struct {
	kind    byte
	msg     *raftpb.Message
	payload []byte
}

func (f *outFrame) isSnapshot() bool { return f.msg.GetType() == raftpb.MsgSnap }

func (t *TCPTransport) enqueue(to uint64, f outFrame) {
	p := t.peer(to)
	if p == nil {
		t.dropped(to, &f)
		return
	}
	select {
	case p.queue <- f:
	default:
		t.dropped(to, &f)
	}
}

// dropped tells Raft a message did not go out, so it stops streaming to
// the peer (and retries a snapshot later).
func (t *TCPTransport) dropped(to uint64, f *outFrame) {
	if f.msg == nil {
		return
	}
	if f.isSnapshot() {
		t.handler.ReportSnapshot(to, etcdraft.SnapshotFailure)
	}
	t.handler.ReportUnreachable(to)
}

// peer returns the sender for a peer with a known address, starting it on
// first use; nil after Close or for an unknown peer.
func (t *TCPTransport) peer(id uint64) *peerSender {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.peers[id]; p != nil || t.closed {
		return p
	}
	if t.addrs[id] == "" {
		return nil
	}
	p := &peerSender{t: t, id: id, queue: make(chan outFrame, peerQueueFrames)}
	t.peers[id] = p
	t.wg.Add(1)
	go p.run()
	return p
}

func (t *TCPTransport) addr(id uint64) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.addrs[id]
}

// learn records where a peer that dialed us listens, unless configuration
// says otherwise: configured voters' addresses are not overridden.
func (t *TCPTransport) learn(id uint64, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.configured[id]; !ok && addr != "" && id != t.id {
		t.addrs[id] = addr
	}
}

// track registers a connection so Close can interrupt it; false means the
// transport is closed or has too many inbound connections.
func (t *TCPTransport) track(c net.Conn, inbound bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || inbound && t.inbound >= maxInboundConns {
		return false
	}
	t.conns[c] = inbound
	if inbound {
		t.inbound++
	}
	return true
}

func (t *TCPTransport) untrack(c net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if inbound, ok := t.conns[c]; ok {
		delete(t.conns, c)
		if inbound {
			t.inbound--
		}
	}
	c.Close()
}

// Close stops accepting, closes every connection and waits for the
// transport's goroutines. Queued frames are dropped.
func (t *TCPTransport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.closing)
	conns := make([]net.Conn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	t.cancel()
	err := t.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	t.wg.Wait()
	return err
}

func (t *TCPTransport) acceptLoop() {
	defer t.wg.Done()
	for {
		conn, err := t.ln.Accept()
		if err != nil {
			select {
			case <-t.closing:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			t.logger.Warn("quorum listener accept failed", "err", err)
			if !t.pause(acceptRetryDelay) {
				return
			}
			continue
		}
		if !t.track(conn, true) {
			conn.Close()
			continue
		}
		t.wg.Add(1)
		go t.serve(conn)
	}
}

// pause waits d on the transport's clock; false if the transport closed.
func (t *TCPTransport) pause(d time.Duration) bool {
	timer := t.clock.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C():
		return true
	case <-t.closing:
		return false
	}
}

// serve reads one inbound connection: a hello, then frames for the handler.
// A malformed frame ends the connection; the peer reconnects.
func (t *TCPTransport) serve(conn net.Conn) {
	defer t.wg.Done()
	defer t.untrack(conn)
	r := bufio.NewReaderSize(conn, connBufferBytes)
	conn.SetReadDeadline(time.Now().Add(helloTimeout))
	kind, payload, err := readFrame(r)
	if err == nil && kind != kindHello {
		err = fmt.Errorf("first frame of kind %d: %w", kind, errFrame)
	}
	var from uint64
	var addr string
	if err == nil {
		from, addr, err = decodeHello(payload)
	}
	if err != nil {
		t.logger.Debug("quorum connection without hello", "remote", conn.RemoteAddr(), "err", err)
		return
	}
	conn.SetReadDeadline(time.Time{})
	t.learn(from, addr)
	for {
		kind, payload, err := readFrame(r)
		if err != nil {
			return
		}
		if err := t.dispatch(from, kind, payload); err != nil {
			t.logger.Warn("bad frame from quorum peer; closing", "peer", from, "err", err)
			return
		}
	}
}

func (t *TCPTransport) dispatch(from uint64, kind byte, payload []byte) error {
	v, err := decodeFrame(kind, payload)
	if err != nil {
		return err
	}
	switch v := v.(type) {
	case *raftpb.Message:
		if v.GetFrom() != from {
			return fmt.Errorf("message from %d on %d's connection: %w", v.GetFrom(), from, errFrame)
		}
		t.handler.Receive(v)
	case ForwardedProposal:
		t.handler.ReceiveProposal(from, v)
	case ProposalReply:
		t.handler.ReceiveReply(from, v)
	}
	return nil
}

// peerSender writes one peer's frames, dialing (and redialing, with
// backoff) as needed. Its fields belong to its goroutine.
type peerSender struct {
	t        *TCPTransport
	id       uint64
	queue    chan outFrame
	conn     net.Conn
	w        *bufio.Writer
	backoff  time.Duration
	nextDial time.Time
}

func (p *peerSender) run() {
	defer p.t.wg.Done()
	defer p.disconnect()
	for {
		var f outFrame
		select {
		case f = <-p.queue:
		case <-p.t.closing:
			return
		}
		err := p.write(&f)
		// Flush when the queue runs dry, or at once for a snapshot, whose
		// status Raft waits for.
		if err == nil && (len(p.queue) == 0 || f.isSnapshot()) {
			err = p.flush()
		}
		if err != nil {
			p.t.dropped(p.id, &f)
			continue
		}
		if f.isSnapshot() {
			p.t.handler.ReportSnapshot(p.id, etcdraft.SnapshotFinish)
		}
	}
}

// write encodes a frame and writes it to the connection's buffer.
func (p *peerSender) write(f *outFrame) error {
	payload := f.payload
	if f.msg != nil {
		var err error
		if payload, err = proto.Marshal(f.msg); err != nil {
			return err
		}
	}
	if len(payload)+1 > maxFrameBytes {
		p.t.logger.Error("quorum frame too large; dropped", "peer", p.id, "bytes", len(payload))
		return fmt.Errorf("frame of %d bytes: %w", len(payload)+1, errFrame)
	}
	if err := p.connect(); err != nil {
		return err
	}
	p.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	var hdr [5]byte
	p.w.Write(appendFrameHeader(hdr[:0], f.kind, len(payload)))
	if _, err := p.w.Write(payload); err != nil {
		p.disconnect()
		return err
	}
	return nil
}

func (p *peerSender) flush() error {
	if p.w == nil {
		return nil
	}
	if err := p.w.Flush(); err != nil {
		p.disconnect()
		return err
	}
	return nil
}

var errBackoff = errors.New("peer unreachable; waiting to redial")

// connect dials the peer unless connected or backing off after a failure,
// and says hello.
func (p *peerSender) connect() error {
	if p.conn != nil {
		return nil
	}
	now := p.t.clock.Now()
	if now.Before(p.nextDial) {
		return errBackoff
	}
	addr := p.t.addr(p.id)
	conn, err := p.t.dial(addr)
	if err == nil && !p.t.track(conn, false) {
		conn.Close()
		err = net.ErrClosed
	}
	if err != nil {
		p.backoff = min(max(2*p.backoff, minDialBackoff), maxDialBackoff)
		p.nextDial = now.Add(p.backoff)
		p.t.logger.Debug("cannot reach quorum peer", "peer", p.id, "addr", addr, "err", err)
		return err
	}
	p.conn, p.w = conn, bufio.NewWriterSize(conn, connBufferBytes)
	hello := encodeHello(p.t.id, p.t.advertised)
	var hdr [5]byte
	p.w.Write(appendFrameHeader(hdr[:0], kindHello, len(hello)))
	p.w.Write(hello)
	p.backoff = 0
	return nil
}

// dial connects to a peer, over TLS when configured (the handshake is
// done here, within dialTimeout, so a failure backs off like a refused
// connection).
func (t *TCPTransport) dial(addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	if t.tlsClient == nil {
		return d.DialContext(t.ctx, "tcp", addr)
	}
	cfg := t.tlsClient.Clone()
	if host, _, err := net.SplitHostPort(addr); err == nil && cfg.ServerName == "" {
		cfg.ServerName = host
	}
	td := tls.Dialer{NetDialer: &d, Config: cfg}
	return td.DialContext(t.ctx, "tcp", addr)
}

// disconnect drops the connection after a failure; the next frame redials
// after the backoff.
func (p *peerSender) disconnect() {
	if p.conn == nil {
		return
	}
	p.t.untrack(p.conn)
	p.conn, p.w = nil, nil
	p.backoff = min(max(2*p.backoff, minDialBackoff), maxDialBackoff)
	p.nextDial = p.t.clock.Now().Add(p.backoff)
}
