package raft

import (
	"bytes"
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	etcdraft "go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/auth/authtest"
)

func frameBytes(kind byte, payload []byte) []byte {
	return append(appendFrameHeader(nil, kind, len(payload)), payload...)
}

// TestRaftFrameRoundTrip encodes each kind of frame and reads it back.
func TestRaftFrameRoundTrip(t *testing.T) {
	msg := &raftpb.Message{Type: raftpb.MsgApp.Enum(), To: new(uint64(2)), From: new(uint64(1)), Term: new(uint64(3)),
		Entries: []*raftpb.Entry{{Index: new(uint64(7)), Term: new(uint64(3)), Data: []byte("x")}}}
	raw, err := proto.Marshal(msg)
	require(t, err)
	var buf bytes.Buffer
	buf.Write(frameBytes(kindRaft, raw))
	buf.Write(frameBytes(kindProposal, encodeProposal(ForwardedProposal{RequestID: 9, Data: []byte("data")})))
	buf.Write(frameBytes(kindProposal, encodeProposal(ForwardedProposal{RequestID: 10, Join: true})))
	buf.Write(frameBytes(kindReply, encodeReply(ProposalReply{RequestID: 9, Index: 42, Code: ReplyLost})))
	var got []any
	for {
		kind, payload, err := readFrame(&buf)
		if errors.Is(err, io.EOF) {
			break
		}
		require(t, err)
		v, err := decodeFrame(kind, payload)
		require(t, err)
		got = append(got, v)
	}
	if m, ok := got[0].(*raftpb.Message); !ok || !proto.Equal(m, msg) {
		t.Fatalf("raft message: %v", got[0])
	}
	if p := got[1].(ForwardedProposal); p.RequestID != 9 || p.Join || string(p.Data) != "data" {
		t.Fatalf("proposal: %+v", p)
	}
	if p := got[2].(ForwardedProposal); p.RequestID != 10 || !p.Join || len(p.Data) != 0 {
		t.Fatalf("join: %+v", p)
	}
	if r := got[3].(ProposalReply); r.RequestID != 9 || r.Index != 42 || !errors.Is(r.Code.err(), ErrProposalLost) {
		t.Fatalf("reply: %+v", r)
	}
	id, addr, err := decodeHello(encodeHello(5, "10.0.0.5:9093"))
	if err != nil || id != 5 || addr != "10.0.0.5:9093" {
		t.Fatalf("hello: %d %q %v", id, addr, err)
	}
	for _, err := range []error{nil, ErrProposalDropped, ErrProposalLost, ErrOutcomeUnknown, ErrTooManyProposals, ErrProposalTooLarge, errNotLeader} {
		if back := replyFor(1, 2, err).Code.err(); !errors.Is(back, err) && !(err == nil && back == nil) {
			t.Fatalf("reply code for %v comes back as %v", err, back)
		}
	}
}

// TestRaftFrameLimits refuses frames outside the bounds, and a length
// prefix alone does not make the reader allocate what it claims.
func TestRaftFrameLimits(t *testing.T) {
	for _, n := range []uint32{0, maxFrameBytes + 1, 1 << 31} {
		b := binary.BigEndian.AppendUint32(nil, n)
		if _, _, err := readFrame(bytes.NewReader(append(b, 1, 2, 3))); !errors.Is(err, errFrame) {
			t.Fatalf("length %d: %v", n, err)
		}
	}
	claim := binary.BigEndian.AppendUint32(nil, maxFrameBytes)
	claim = append(claim, kindRaft, 1, 2, 3)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, _, err := readFrame(bytes.NewReader(claim)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short frame: %v", err)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4*frameReadChunk { // the race detector doubles large allocations
		t.Fatalf("a 7-byte frame claiming %d bytes allocated %d", maxFrameBytes, grew)
	}
	// Flag bits: 1 join, 2 request; any other bit, or both, is malformed.
	for _, bad := range [][]byte{nil, {1}, make([]byte, 16), append(make([]byte, 8), 4), append(make([]byte, 8), 3)} {
		if _, err := decodeReply(bad); err == nil && len(bad) < 17 {
			t.Fatalf("reply %x accepted", bad)
		}
		if _, err := decodeProposal(bad); err == nil && (len(bad) < 9 || bad[8] > 2) {
			t.Fatalf("proposal %x accepted", bad)
		}
	}
	if _, err := decodeFrame(9, nil); !errors.Is(err, errFrame) {
		t.Fatalf("unknown kind: %v", err)
	}
}

func FuzzQuorumFrame(f *testing.F) {
	f.Add(frameBytes(kindReply, encodeReply(ProposalReply{RequestID: 1, Index: 2})))
	f.Add(frameBytes(kindProposal, encodeProposal(ForwardedProposal{RequestID: 1, Data: []byte("x")})))
	f.Add(frameBytes(kindHello, encodeHello(1, "a:1")))
	raw, _ := proto.Marshal(&raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), To: new(uint64(1))})
	f.Add(frameBytes(kindRaft, raw))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			kind, payload, err := readFrame(r)
			if err != nil {
				return
			}
			if kind == kindHello {
				decodeHello(payload)
				continue
			}
			decodeFrame(kind, payload)
		}
	})
}

// recordingHandler collects what a transport delivers.
type recordingHandler struct {
	mu          sync.Mutex
	messages    []*raftpb.Message
	proposals   []ForwardedProposal
	replies     []ProposalReply
	unreachable map[uint64]int
	snapshots   map[etcdraft.SnapshotStatus]int
}

func newRecordingHandler() *recordingHandler {
	return &recordingHandler{unreachable: map[uint64]int{}, snapshots: map[etcdraft.SnapshotStatus]int{}}
}

func (h *recordingHandler) Receive(m *raftpb.Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.messages = append(h.messages, m)
}

func (h *recordingHandler) ReceiveProposal(from uint64, p ForwardedProposal) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.proposals = append(h.proposals, p)
}

func (h *recordingHandler) ReceiveReply(from uint64, r ProposalReply) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.replies = append(h.replies, r)
}

func (h *recordingHandler) ReportUnreachable(id uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unreachable[id]++
}

func (h *recordingHandler) ReportSnapshot(id uint64, status etcdraft.SnapshotStatus) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.snapshots[status]++
}

func (h *recordingHandler) counts() (messages, proposals, replies int, unreachable map[uint64]int, snapshots map[etcdraft.SnapshotStatus]int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.messages), len(h.proposals), len(h.replies), maps.Clone(h.unreachable), maps.Clone(h.snapshots)
}

func snapMessage(from, to uint64) *raftpb.Message {
	return &raftpb.Message{Type: raftpb.MsgSnap.Enum(), From: new(from), To: new(to), Term: new(uint64(1)),
		Snapshot: &raftpb.Snapshot{Data: bytes.Repeat([]byte("s"), 3<<20), Metadata: &raftpb.SnapshotMetadata{
			Index: new(uint64(10)), Term: new(uint64(1)), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}}}}}
}

// TestRaftTCPTransport sends every kind of frame between two transports,
// learns a learner's address from its hello, and reports what cannot be
// delivered.
func TestRaftTCPTransport(t *testing.T) {
	ln1, ln2, ln3 := listen(t, "127.0.0.1:0"), listen(t, "127.0.0.1:0"), listen(t, "127.0.0.1:0")
	peers := map[uint64]string{1: ln1.Addr().String(), 2: ln2.Addr().String()}
	h1, h2, h3 := newRecordingHandler(), newRecordingHandler(), newRecordingHandler()
	start := func(id uint64, ln net.Listener, h Handler) *TCPTransport {
		tr, err := NewTCPTransport(TCPConfig{NodeID: id, Listener: ln, Peers: peers, Logger: testLogger()}, h)
		require(t, err)
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	t1, t2, t3 := start(1, ln1, h1), start(2, ln2, h2), start(3, ln3, h3)

	t1.Send([]*raftpb.Message{{Type: raftpb.MsgHeartbeat.Enum(), From: new(uint64(1)), To: new(uint64(2)), Term: new(uint64(1))}})
	t1.SendProposal(2, ForwardedProposal{RequestID: 1, Data: []byte("p")})
	t2.SendReply(1, ProposalReply{RequestID: 1, Index: 5})
	t1.Send([]*raftpb.Message{snapMessage(1, 2)})
	eventually(t, testTimeout, "frames to arrive", func() bool {
		messages, proposals, _, _, _ := h2.counts()
		_, _, replies, _, snapshots := h1.counts()
		return messages == 2 && proposals == 1 && replies == 1 && snapshots[etcdraft.SnapshotFinish] == 1
	})

	// Node 3 is nobody's configured peer: 1 can reach it only once 3 has
	// dialed 1 and said hello.
	t1.SendReply(3, ProposalReply{RequestID: 7})
	if _, _, _, u, _ := h1.counts(); u[3] != 0 {
		t.Fatalf("a reply counted as unreachable raft traffic: %v", u)
	}
	t3.SendProposal(1, ForwardedProposal{Join: true})
	eventually(t, testTimeout, "the join to arrive", func() bool { _, p, _, _, _ := h1.counts(); return p == 1 })
	t1.SendReply(3, ProposalReply{RequestID: 8, Index: 1})
	eventually(t, testTimeout, "the reply to the learner", func() bool { _, _, r, _, _ := h3.counts(); return r == 1 })

	// A stopped peer: messages to it are reported unreachable, a snapshot
	// as failed.
	require(t, t2.Close())
	for range 3 {
		t1.Send([]*raftpb.Message{{Type: raftpb.MsgHeartbeat.Enum(), From: new(uint64(1)), To: new(uint64(2)), Term: new(uint64(1))}})
		t1.Send([]*raftpb.Message{snapMessage(1, 2)})
	}
	eventually(t, testTimeout, "unreachable reports", func() bool {
		_, _, _, u, s := h1.counts()
		return u[2] > 0 && s[etcdraft.SnapshotFailure] > 0
	})
}

// TestRaftTCPTransportBadPeer sends garbage to a transport: it drops the
// connection and keeps serving others.
func TestRaftTCPTransportBadPeer(t *testing.T) {
	h := newRecordingHandler()
	tr, err := NewTCPTransport(TCPConfig{NodeID: 1, Listener: listen(t, "127.0.0.1:0"), Logger: testLogger()}, h)
	require(t, err)
	defer tr.Close()
	for _, garbage := range [][]byte{
		{0xff, 0xff, 0xff, 0xff, 0},                    // oversized
		frameBytes(kindRaft, []byte("no hello first")), // not a hello
		append(frameBytes(kindHello, encodeHello(2, "x:1")), frameBytes(kindRaft, []byte{0xff, 0xff})...), // bad protobuf
	} {
		conn, err := net.Dial("tcp", tr.Addr())
		require(t, err)
		conn.Write(garbage)
		conn.SetReadDeadline(time.Now().Add(testTimeout))
		if _, err := conn.Read(make([]byte, 1)); err == nil {
			t.Fatal("the transport answered garbage")
		}
		conn.Close()
	}
	// A message claiming another sender than the hello is refused too.
	conn, err := net.Dial("tcp", tr.Addr())
	require(t, err)
	defer conn.Close()
	raw, _ := proto.Marshal(&raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: new(uint64(3)), To: new(uint64(1))})
	conn.Write(append(frameBytes(kindHello, encodeHello(2, "x:1")), frameBytes(kindRaft, raw)...))
	conn.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("the transport answered a forged sender")
	}
	if m, _, _, _, _ := h.counts(); m != 0 {
		t.Fatalf("%d bad messages delivered", m)
	}
}

// TestRaftTCPTransportTLS runs the quorum's frames over mutual TLS, and
// checks a peer without a certificate from the CA gets nothing through.
func TestRaftTCPTransportTLS(t *testing.T) {
	ca := authtest.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, pkix.Name{CommonName: "controller"})
	server, client, err := auth.MutualTLS(certPEM, keyPEM, ca.CertPEM)
	require(t, err)
	ln1, ln2 := listen(t, "127.0.0.1:0"), listen(t, "127.0.0.1:0")
	peers := map[uint64]string{1: ln1.Addr().String(), 2: ln2.Addr().String()}
	h1, h2 := newRecordingHandler(), newRecordingHandler()
	start := func(id uint64, ln net.Listener, h Handler, client *tls.Config) *TCPTransport {
		tr, err := NewTCPTransport(TCPConfig{NodeID: id, Listener: ln, Peers: peers, Logger: testLogger(), TLSServer: server, TLSClient: client}, h)
		require(t, err)
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	t1, _ := start(1, ln1, h1, client), start(2, ln2, h2, client)
	t1.SendProposal(2, ForwardedProposal{RequestID: 1, Data: []byte("p")})
	eventually(t, testTimeout, "a proposal over TLS", func() bool { _, p, _, _, _ := h2.counts(); return p == 1 })

	// A peer with another CA's certificate is refused by the handshake:
	// the server closes the connection before reading a frame from it.
	other := authtest.NewCA(t)
	otherCert, otherKey := other.Issue(t, pkix.Name{CommonName: "intruder"})
	_, badClient, err := auth.MutualTLS(otherCert, otherKey, ca.CertPEM)
	require(t, err)
	conn, err := tls.Dial("tcp", ln2.Addr().String(), badClient)
	if err == nil {
		conn.SetDeadline(time.Now().Add(testTimeout))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil {
		t.Fatal("a peer without a valid certificate kept its connection")
	}
}
