package raft

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	etcdraft "go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/vfs"
)

// StateMachine is what the quorum replicates into: the metadata image on a
// controller or broker. The driver goroutine calls it, one call at a time.
type StateMachine interface {
	// Apply applies a committed entry. It is called for each committed
	// normal entry in index order, on every member, exactly once per
	// incarnation of the node; after a restart the entries after the
	// newest snapshot are applied again on top of Restore. data must not
	// be modified. An error stops the node: the state machine cannot skip
	// an entry and stay in step with the others.
	Apply(index uint64, data []byte) error
	// Snapshot returns the state as of the last applied index.
	Snapshot() ([]byte, error)
	// Restore replaces the state with a snapshot taken at index: at start
	// from the newest snapshot on disk, and when the leader sends one.
	Restore(index uint64, data []byte) error
}

// Config configures a quorum member. The comments name the Kafka settings
// the values come from.
type Config struct {
	NodeID uint64 // node.id
	// Voters are controller.quorum.voters: node id -> host:port.
	Voters map[uint64]string
	// Learner makes this node follow the log without voting (a broker that
	// is not a controller). It must not be among Voters; it asks the leader
	// to add it as a Raft learner.
	Learner bool
	Dir     string      // metadata.log.dir
	FS      vfs.FS      // nil: the operating system's
	Clock   clock.Clock // nil: the real clock
	// TickInterval is Raft's logical clock period (default 100ms);
	// ElectionTicks (10) and HeartbeatTicks (1) count in it.
	TickInterval   time.Duration
	ElectionTicks  int
	HeartbeatTicks int
	// SnapshotEntries is how many applied entries between snapshots
	// (default 10000); each snapshot compacts the log.
	SnapshotEntries uint64
	// ListenAddr is the controller listener; default ":<port of this
	// node's voter address>", or ":9093".
	ListenAddr string
	// Listener, if set, is used instead of listening on ListenAddr.
	Listener net.Listener
	// AdvertisedAddr is the address a learner tells the voters to dial;
	// default: the listener's address. Voters are dialed at their
	// configured addresses.
	AdvertisedAddr string
	// TLSServer and TLSClient, when set, put the quorum's connections on
	// mutual TLS (controller.listener.security.protocol=SSL).
	TLSServer, TLSClient *tls.Config
	// SegmentBytes is the Raft log's segment size; 0: DefaultSegmentBytes.
	SegmentBytes int64
	// NewTransport, if set, replaces the TCP transport (tests, simulation).
	NewTransport func(Handler) (Transport, error)
	// HandleForward answers requests other members Forward to this node
	// while it leads (the active controller deciding a command submitted
	// on a follower). It runs on its own goroutine and may Propose.
	HandleForward func(ctx context.Context, payload []byte) ([]byte, error)
	Logger        *slog.Logger // nil: slog.Default()
}

// Defaults of Config.
const (
	DefaultTickInterval    = 100 * time.Millisecond
	DefaultElectionTicks   = 10
	DefaultHeartbeatTicks  = 1
	DefaultSnapshotEntries = 10000
)

// withDefaults validates the configuration and fills in defaults.
func (cfg Config) withDefaults() (Config, error) {
	_, voter := cfg.Voters[cfg.NodeID]
	switch {
	case cfg.NodeID == 0:
		return cfg, errors.New("quorum: node id 0 is reserved")
	case len(cfg.Voters) == 0:
		return cfg, errors.New("quorum: no voters (controller.quorum.voters)")
	case cfg.Dir == "":
		return cfg, errors.New("quorum: no directory (metadata.log.dir)")
	case voter && cfg.Learner:
		return cfg, fmt.Errorf("quorum: node %d is a voter and cannot be a learner", cfg.NodeID)
	case !voter && !cfg.Learner:
		return cfg, fmt.Errorf("quorum: node %d is not among the voters %v", cfg.NodeID, slices.Sorted(maps.Keys(cfg.Voters)))
	}
	if cfg.FS == nil {
		cfg.FS = vfs.OS()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.TickInterval = cmp.Or(cfg.TickInterval, DefaultTickInterval)
	cfg.ElectionTicks = cmp.Or(cfg.ElectionTicks, DefaultElectionTicks)
	cfg.HeartbeatTicks = cmp.Or(cfg.HeartbeatTicks, DefaultHeartbeatTicks)
	cfg.SnapshotEntries = cmp.Or(cfg.SnapshotEntries, DefaultSnapshotEntries)
	if cfg.ElectionTicks <= cfg.HeartbeatTicks {
		return cfg, fmt.Errorf("quorum: election ticks %d must exceed heartbeat ticks %d", cfg.ElectionTicks, cfg.HeartbeatTicks)
	}
	if cfg.ListenAddr == "" {
		port := DefaultPort
		if _, p, err := net.SplitHostPort(cfg.Voters[cfg.NodeID]); err == nil && voter {
			port = p
		}
		cfg.ListenAddr = ":" + port
	}
	return cfg, nil
}

// maxEventsPerRound bounds how many queued events the driver takes before
// it handles a Ready, so proposals batch without starving the Ready loop.
const maxEventsPerRound = 1024

// Node is a running quorum member: one goroutine owns the core (and with it
// Raft, the storage and the state machine), fed by the clock's ticker, the
// transport and Propose. The other methods read what it publishes.
type Node struct {
	cfg       Config
	core      *core // the driver goroutine's; after it exits, Stop's
	transport Transport
	logger    *slog.Logger

	events chan func(*core)
	stopc  chan struct{}
	done   chan struct{}
	halt   sync.Once
	closed sync.Once

	// Transport reports wait here rather than in events: they must never
	// block, and are idempotent, so a set per peer is enough.
	reportMu       sync.Mutex
	unreachable    map[uint64]bool
	snapshotStatus map[uint64]etcdraft.SnapshotStatus
	reportWake     chan struct{}

	leader     atomic.Uint64
	isLeader   atomic.Bool
	leaderTerm atomic.Uint64 // the term this node leads in; 0 when it does not

	requests forwardRequests // Forward calls waiting for the leader's reply
	// serving tracks the forwarded requests this node runs as leader: at
	// most maxServedRequests at once (a slot each in servingSlots), and
	// Stop and Kill wait for them, so none outlives the node.
	serving      sync.WaitGroup
	servingSlots chan struct{}
	servingMu    sync.Mutex // orders serving.Add before Stop's Wait
	servingShut  bool       // under servingMu: no request starts any more

	mu        sync.Mutex // guards applied, appliedCh and err
	applied   uint64
	appliedCh chan struct{} // closed and replaced when applied moves
	err       error
}

// Start opens the storage in cfg.Dir, restores sm from the newest snapshot,
// starts the transport and the driver goroutine.
func Start(cfg Config, sm StateMachine) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger.With("node", cfg.NodeID)
	storage, err := OpenStorage(StorageOptions{
		FS: cfg.FS, Dir: cfg.Dir, Clock: cfg.Clock, Logger: logger,
		InitialConfState: &raftpb.ConfState{Voters: slices.Sorted(maps.Keys(cfg.Voters))},
		SegmentBytes:     cfg.SegmentBytes,
	})
	if err != nil {
		return nil, err
	}
	c, err := newCore(coreConfig{
		id: cfg.NodeID, learner: cfg.Learner, electionTicks: cfg.ElectionTicks, heartbeatTicks: cfg.HeartbeatTicks,
		snapshotEntries: cfg.SnapshotEntries, requestIDBase: rand.Uint64() >> 1, logger: logger,
	}, storage, sm, nil)
	if err != nil {
		storage.Close()
		return nil, err
	}
	n := &Node{
		cfg: cfg, core: c, logger: logger,
		events: make(chan func(*core), maxEventsPerRound), stopc: make(chan struct{}), done: make(chan struct{}),
		servingSlots: make(chan struct{}, maxServedRequests),
		unreachable:  map[uint64]bool{}, snapshotStatus: map[uint64]etcdraft.SnapshotStatus{}, reportWake: make(chan struct{}, 1),
		appliedCh: make(chan struct{}),
	}
	if n.transport, err = n.newTransport(); err != nil {
		storage.Close()
		return nil, err
	}
	c.send = n.transport
	n.publish()
	go n.run()
	return n, nil
}

func (n *Node) newTransport() (Transport, error) {
	h := nodeHandler{n}
	if n.cfg.NewTransport != nil {
		return n.cfg.NewTransport(h)
	}
	peers := maps.Clone(n.cfg.Voters)
	delete(peers, n.cfg.NodeID)
	advertised := n.cfg.AdvertisedAddr
	if addr, ok := n.cfg.Voters[n.cfg.NodeID]; ok && advertised == "" {
		advertised = addr
	}
	return NewTCPTransport(TCPConfig{
		NodeID: n.cfg.NodeID, Listener: n.cfg.Listener, ListenAddr: n.cfg.ListenAddr, AdvertisedAddr: advertised,
		Peers: peers, Clock: n.cfg.Clock, Logger: n.logger, TLSServer: n.cfg.TLSServer, TLSClient: n.cfg.TLSClient,
	}, h)
}

// run is the driver loop: take an event (a tick, a message, a proposal),
// take what else is queued, then let the core propose and handle Readies.
func (n *Node) run() {
	defer close(n.done)
	defer func() {
		if r := recover(); r != nil {
			n.fail(fmt.Errorf("quorum driver panic: %v\n%s", r, debug.Stack()))
		}
	}()
	ticker := n.cfg.Clock.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	// Start-up may already have work: a campaign, committed entries to
	// apply again.
	if err := n.core.process(); err != nil {
		n.fail(err)
		return
	}
	n.publish()
	for {
		select {
		case <-n.stopc:
			return
		case <-ticker.C():
			n.core.tick()
		case f := <-n.events:
			f(n.core)
			n.drainEvents()
		case <-n.reportWake:
		}
		n.deliverReports()
		select {
		case <-n.stopc:
			return // killed: write nothing more
		default:
		}
		if err := n.core.process(); err != nil {
			n.fail(err)
			return
		}
		n.publish()
	}
}

func (n *Node) drainEvents() {
	for range maxEventsPerRound {
		select {
		case f := <-n.events:
			f(n.core)
		default:
			return
		}
	}
}

// deliverReports hands the transport's reports to Raft, in id order.
func (n *Node) deliverReports() {
	n.reportMu.Lock()
	unreachable, snapshots := n.unreachable, n.snapshotStatus
	if len(unreachable) == 0 && len(snapshots) == 0 {
		n.reportMu.Unlock()
		return
	}
	n.unreachable, n.snapshotStatus = map[uint64]bool{}, map[uint64]etcdraft.SnapshotStatus{}
	n.reportMu.Unlock()
	for _, id := range slices.Sorted(maps.Keys(snapshots)) {
		n.core.reportSnapshot(id, snapshots[id])
	}
	for _, id := range slices.Sorted(maps.Keys(unreachable)) {
		n.core.reportUnreachable(id)
	}
}

// publish makes the core's state visible to other goroutines.
func (n *Node) publish() {
	n.leader.Store(n.core.leader)
	n.isLeader.Store(n.core.state == etcdraft.StateLeader)
	var term uint64
	if st := n.core.rn.BasicStatus(); st.RaftState == etcdraft.StateLeader {
		term = st.GetTerm()
	}
	n.leaderTerm.Store(term)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.core.applied != n.applied {
		n.applied = n.core.applied
		close(n.appliedCh)
		n.appliedCh = make(chan struct{})
	}
}

// fail stops the node after an error the driver cannot get past: a storage
// failure, a state machine that cannot apply, a Raft panic. Leadership
// moves to the other members.
func (n *Node) fail(err error) {
	n.mu.Lock()
	if n.err == nil {
		n.err = err
	}
	n.mu.Unlock()
	n.logger.Error("quorum node failed; stopping", "err", err)
	n.halt.Do(func() { close(n.stopc) })
}

// Err returns the error that stopped the node, if one did.
func (n *Node) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

// Done is closed when the driver goroutine has exited (Stop, Kill, or a
// failure: see Err).
func (n *Node) Done() <-chan struct{} { return n.done }

func (n *Node) stoppedErr() error {
	if err := n.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrStopped, err)
	}
	return ErrStopped
}

// enqueue hands f to the driver goroutine.
func (n *Node) enqueue(ctx context.Context, f func(*core)) error {
	select {
	case n.events <- f:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.stopc:
		return n.stoppedErr()
	}
}

type proposeResult struct {
	index uint64
	err   error
}

// Propose appends data to the log and returns its index once it is
// committed and applied on this node. On a follower the proposal is
// forwarded to the leader, which answers with the index after applying it;
// then this node waits to apply it too. Without a leader it waits for one.
// On error, see the error's comment for whether it may have been committed.
func (n *Node) Propose(ctx context.Context, data []byte) (uint64, error) {
	return n.propose(ctx, data, 0)
}

// ProposeAsLeader is Propose for a leader acting on what it read while
// leading: the entry is appended only if this node still leads in term (from
// LeaderTerm) when it reaches Raft, and never forwarded. Otherwise it fails
// with ErrNotLeader, certainly not committed.
func (n *Node) ProposeAsLeader(ctx context.Context, term uint64, data []byte) (uint64, error) {
	if term == 0 {
		return 0, ErrNotLeader
	}
	return n.propose(ctx, data, term)
}

func (n *Node) propose(ctx context.Context, data []byte, leaderTerm uint64) (uint64, error) {
	if len(data) == 0 {
		return 0, ErrEmptyProposal
	}
	if len(data) > MaxProposalBytes {
		return 0, fmt.Errorf("%d bytes: %w (%d)", len(data), ErrProposalTooLarge, MaxProposalBytes)
	}
	res := make(chan proposeResult, 1)
	p := &proposal{
		data:       slices.Clone(data),
		done:       func(index uint64, err error) { res <- proposeResult{index, err} },
		expired:    func() bool { return ctx.Err() != nil },
		leaderTerm: leaderTerm,
	}
	if err := n.enqueue(ctx, func(c *core) { c.propose(p) }); err != nil {
		return 0, err
	}
	select {
	case r := <-res:
		if r.err != nil {
			return 0, r.err
		}
		return r.index, n.WaitApplied(ctx, r.index)
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-n.done:
		return 0, n.stoppedErr()
	}
}

// WaitApplied waits until this node has applied the entry at index.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	for {
		n.mu.Lock()
		applied, ch := n.applied, n.appliedCh
		n.mu.Unlock()
		if applied >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.done:
			if n.AppliedIndex() >= index {
				return nil
			}
			return n.stoppedErr()
		}
	}
}

// AppliedIndex is the index of the last entry the state machine applied.
func (n *Node) AppliedIndex() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.applied
}

// Leader is the leader's node id as this node last knew it; 0 for none.
func (n *Node) Leader() uint64 { return n.leader.Load() }

// IsLeader reports whether this node leads.
func (n *Node) IsLeader() bool { return n.isLeader.Load() }

// LeaderTerm is the Raft term this node leads in, 0 when it does not lead;
// see ProposeAsLeader.
func (n *Node) LeaderTerm() uint64 { return n.leaderTerm.Load() }

// ID is this node's id.
func (n *Node) ID() uint64 { return n.cfg.NodeID }

// Stop stops the node gracefully: the driver finishes its round, the
// transport closes, the storage writes the latest commit index and closes
// the log. Pending proposals fail with ErrStopped.
func (n *Node) Stop() error {
	n.halt.Do(func() { close(n.stopc) })
	<-n.done
	n.stopServing()
	var err error
	n.closed.Do(func() {
		err = n.transport.Close()
		if closeErr := n.core.storage.Close(); err == nil {
			err = closeErr
		}
	})
	return err
}

// Kill stops the node as a crash would, for tests: the driver stops before
// its next write, connections close, and nothing is flushed or closed on
// disk (open files are left to the garbage collector). Restart it from the
// same directory (after vfs.MemFS.Crash, for a power cut).
func (n *Node) Kill() {
	n.halt.Do(func() { close(n.stopc) })
	<-n.done
	n.stopServing()
	n.closed.Do(func() { n.transport.Close() })
}

// stopServing lets no forwarded request start and waits for those running.
func (n *Node) stopServing() {
	n.servingMu.Lock()
	n.servingShut = true
	n.servingMu.Unlock()
	n.serving.Wait()
}

// nodeHandler is the Node's face to its transport: deliveries become events
// for the driver, reports go to the report sets.
type nodeHandler struct{ n *Node }

func (h nodeHandler) Receive(m *raftpb.Message) {
	h.n.enqueue(context.Background(), func(c *core) { c.step(m) })
}

func (h nodeHandler) ReceiveProposal(from uint64, p ForwardedProposal) {
	if p.Request {
		h.n.startServing(from, p)
		return
	}
	h.n.enqueue(context.Background(), func(c *core) { c.receiveProposal(from, p) })
}

func (h nodeHandler) ReceiveReply(from uint64, r ProposalReply) {
	if r.RequestID&forwardRequestBit != 0 {
		h.n.requests.deliver(from, r)
		return
	}
	h.n.enqueue(context.Background(), func(c *core) { c.receiveReply(from, r) })
}

func (h nodeHandler) ReportUnreachable(id uint64) {
	h.n.reportMu.Lock()
	h.n.unreachable[id] = true
	h.n.reportMu.Unlock()
	h.n.wake()
}

func (h nodeHandler) ReportSnapshot(id uint64, status etcdraft.SnapshotStatus) {
	h.n.reportMu.Lock()
	h.n.snapshotStatus[id] = status
	h.n.reportMu.Unlock()
	h.n.wake()
}

func (n *Node) wake() {
	select {
	case n.reportWake <- struct{}{}:
	default:
	}
}
