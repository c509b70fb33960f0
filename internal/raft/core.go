package raft

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	etcdraft "go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Limits on what the core accepts and holds.
const (
	// MaxProposalBytes bounds one proposal's data (Kafka's default
	// max.message.bytes is of the same order).
	MaxProposalBytes = 1 << 20
	// maxPendingProposals bounds the proposals a core tracks at once:
	// waiting for a leader, forwarded, or appended and not yet applied.
	maxPendingProposals = 4096
	// maxProposalBatch bounds the entries of one Raft proposal, so one
	// Ready (and one fsync) never carries an unbounded amount.
	maxProposalBatch      = 1024
	maxProposalBatchBytes = 8 << 20
	// remoteProposalElections is how many election timeouts a leader
	// keeps a forwarded proposal before giving up on it; the proposer has
	// usually given up long before.
	remoteProposalElections = 10
)

// Raft's flow-control settings: one append message carries at most
// maxMessageBytes of entries (one larger entry goes alone); at most
// maxInflightBytes of appends are unacknowledged per follower, which also
// bounds what waits in a transport's queue for it; and a leader cut off
// from the quorum stops accepting proposals after maxUncommittedBytes
// instead of growing its log without bound.
const (
	maxMessageBytes      = 1 << 20
	maxInflightMessages  = 256
	maxInflightBytes     = 32 << 20
	maxUncommittedBytes  = 64 << 20
	maxCommittedPerReady = 8 << 20
)

// errNotLeader tells a follower to forward its proposal again, to whoever
// leads now. It reaches a caller only through ProposeAsLeader.
var errNotLeader = ErrNotLeader

// sender is what the core needs of a Transport: queue and return.
type sender interface {
	Send(msgs []*raftpb.Message)
	SendProposal(to uint64, p ForwardedProposal)
	SendReply(to uint64, r ProposalReply)
}

// proposal is one entry on its way into the log, proposed on this node or
// forwarded here by another member.
type proposal struct {
	data []byte
	// done is called exactly once, on the driver goroutine, with the index
	// the entry was committed at or why it was not.
	done func(index uint64, err error)
	// expired reports that the waiter gave up, so the core may forget it.
	expired func() bool
	remote  bool // forwarded here: never forwarded again
	// leaderTerm, if set, is the only term in which this node may append
	// the proposal, as leader; otherwise it fails with ErrNotLeader and is
	// never forwarded (a decision made by a leader must not be committed
	// by another).
	leaderTerm uint64

	index, term uint64 // once in this leader's log
	requestID   uint64 // once forwarded
	forwardedTo uint64
	notBefore   uint64 // tick before which it is not forwarded again
}

// coreConfig is the part of Config the core needs, with defaults applied.
type coreConfig struct {
	id              uint64
	learner         bool
	electionTicks   int
	heartbeatTicks  int
	snapshotEntries uint64
	requestIDBase   uint64 // differs per incarnation, so a late reply never matches
	logger          *slog.Logger
}

// core is the driver state around one etcdraft.RawNode: it turns ticks,
// messages and proposals into Readies and handles each as Raft requires.
// It is single-threaded and does no I/O but through Storage and sender, so
// a Node's goroutine or the simulator drives it.
type core struct {
	cfg     coreConfig
	rn      *etcdraft.RawNode
	storage *Storage
	sm      StateMachine
	send    sender

	confState      *raftpb.ConfState
	applied        uint64
	nextSnapshotAt uint64
	leader         uint64
	state          etcdraft.StateType
	ticks          uint64
	lastJoinTick   uint64
	// maxProposalBytes is MaxProposalBytes, or less if the log's segments
	// are too small for that: an entry must fit one segment.
	maxProposalBytes int
	// heardTick and caughtUpTick are, per member, the tick this node last
	// got a message from it and the last tick (while leading) its log
	// held the leader's whole log: what Status reports as times.
	heardTick    map[uint64]uint64
	caughtUpTick map[uint64]uint64

	incoming      []*proposal
	queued        []*proposal          // waiting for a leader
	forwarded     map[uint64]*proposal // by request id: awaiting the leader's reply
	appended      map[uint64]*proposal // by index: in this leader's log, awaiting apply
	pending       int                  // proposals not yet done
	nextRequestID uint64
}

// newCore starts Raft on storage and restores sm from the newest snapshot.
func newCore(cfg coreConfig, storage *Storage, sm StateMachine, send sender) (*core, error) {
	snap, _ := storage.Snapshot()
	snapIndex := snap.GetMetadata().GetIndex()
	_, cs, _ := storage.InitialState()
	rn, err := etcdraft.NewRawNode(raftConfig(cfg, storage, snapIndex))
	if err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}
	if snapIndex > 0 {
		if err := sm.Restore(snapIndex, snap.GetData()); err != nil {
			return nil, fmt.Errorf("restore snapshot at index %d: %w", snapIndex, err)
		}
	}
	c := &core{
		cfg: cfg, rn: rn, storage: storage, sm: sm, send: send,
		confState: cs, applied: snapIndex, nextSnapshotAt: snapIndex + cfg.snapshotEntries,
		forwarded: map[uint64]*proposal{}, appended: map[uint64]*proposal{},
		nextRequestID:    cfg.requestIDBase,
		maxProposalBytes: min(MaxProposalBytes, int(storage.segmentBytes)-entryOverheadBytes),
	}
	st := rn.BasicStatus()
	c.leader, c.state = st.Lead, st.RaftState
	if len(cs.GetVoters()) == 1 && cs.GetVoters()[0] == cfg.id {
		// A quorum of one need not wait an election timeout to lead.
		if err := rn.Campaign(); err != nil {
			return nil, fmt.Errorf("campaign: %w", err)
		}
	}
	return c, nil
}

// raftConfig is how we run etcd Raft. The state machine is restored from
// the snapshot only, so Raft hands back every committed entry after it.
// PreVote keeps a member that was cut off from disrupting the leader when
// it returns; CheckQuorum makes a leader that lost the quorum step down, so
// it stops taking proposals it cannot commit.
func raftConfig(cfg coreConfig, storage *Storage, applied uint64) *etcdraft.Config {
	return &etcdraft.Config{
		ID:                        cfg.id,
		ElectionTick:              cfg.electionTicks,
		HeartbeatTick:             cfg.heartbeatTicks,
		Storage:                   storage,
		Applied:                   applied,
		MaxSizePerMsg:             maxMessageBytes,
		MaxCommittedSizePerReady:  maxCommittedPerReady,
		MaxUncommittedEntriesSize: maxUncommittedBytes,
		MaxInflightMsgs:           maxInflightMessages,
		MaxInflightBytes:          maxInflightBytes,
		CheckQuorum:               true,
		PreVote:                   true,
		Logger:                    raftLogger{cfg.logger},
		DisableProposalForwarding: true, // we forward, and learn the index
		StepDownOnRemoval:         true,
	}
}

// tick advances Raft's logical clock and expires abandoned proposals.
func (c *core) tick() {
	c.ticks++
	c.rn.Tick()
	c.noteCaughtUp()
	c.expireProposals()
	c.maybeJoin()
}

// step hands Raft a message from the network. Raft rejects local message
// types and responses from strangers itself; neither is worth more than a
// debug line.
func (c *core) step(m *raftpb.Message) {
	if m.GetTo() != c.cfg.id {
		return
	}
	c.noteHeard(m.GetFrom())
	if err := c.rn.Step(m); err != nil {
		c.cfg.logger.Debug("raft rejected a message", "type", m.GetType(), "from", m.GetFrom(), "err", err)
	}
}

func (c *core) reportUnreachable(id uint64) { c.rn.ReportUnreachable(id) }

func (c *core) reportSnapshot(id uint64, status etcdraft.SnapshotStatus) {
	c.rn.ReportSnapshot(id, status)
}

// propose accepts a proposal; process proposes or forwards it.
func (c *core) propose(p *proposal) {
	switch {
	case len(p.data) == 0:
		p.done(0, ErrEmptyProposal)
	case len(p.data) > c.maxProposalBytes:
		p.done(0, ErrProposalTooLarge)
	case c.pending >= maxPendingProposals:
		p.done(0, ErrTooManyProposals)
	default:
		c.pending++
		c.incoming = append(c.incoming, p)
	}
}

func (c *core) finish(p *proposal, index uint64, err error) {
	c.pending--
	p.done(index, err)
}

// receiveProposal handles a frame from another member: a proposal to
// append (if this node leads) or a learner asking to join.
func (c *core) receiveProposal(from uint64, fp ForwardedProposal) {
	if fp.Join {
		c.admitLearner(from)
		return
	}
	if c.state != etcdraft.StateLeader {
		c.send.SendReply(from, ProposalReply{RequestID: fp.RequestID, Code: ReplyNotLeader})
		return
	}
	deadline := c.ticks + uint64(remoteProposalElections*c.cfg.electionTicks)
	id := fp.RequestID
	c.propose(&proposal{
		data:    fp.Data,
		remote:  true,
		done:    func(index uint64, err error) { c.send.SendReply(from, replyFor(id, index, err)) },
		expired: func() bool { return c.ticks > deadline },
	})
}

// receiveReply completes a proposal this node forwarded.
func (c *core) receiveReply(from uint64, r ProposalReply) {
	p := c.forwarded[r.RequestID]
	if p == nil || p.forwardedTo != from {
		return // it expired, or the reply is from an earlier incarnation
	}
	delete(c.forwarded, r.RequestID)
	if r.Code == ReplyNotLeader {
		// Certainly not appended: forward again once a leader is known,
		// but not before the next tick, so a stale leader hint cannot
		// make two nodes bounce it back and forth.
		p.notBefore = c.ticks + 1
		c.queued = append(c.queued, p)
		return
	}
	c.finish(p, r.Index, r.Code.err())
}

// process proposes or forwards what arrived, then handles every Ready.
func (c *core) process() error {
	for {
		if err := c.flushProposals(); err != nil {
			return err
		}
		if !c.rn.HasReady() {
			return nil
		}
		if err := c.handleReady(c.rn.Ready()); err != nil {
			return err
		}
	}
}

// flushProposals sends the proposals that can go somewhere: into the log
// on the leader, to the leader on a follower. Without a leader, local
// proposals wait and forwarded ones go back.
func (c *core) flushProposals() error {
	for len(c.incoming) > 0 || c.hasDueQueued() {
		switch {
		case c.state == etcdraft.StateLeader:
			if err := c.proposeBatch(c.refuseOtherTerms(c.takeBatch())); err != nil {
				return err
			}
		case c.leader != etcdraft.None:
			c.forwardToLeader(c.takeBatch())
		default:
			for _, p := range c.incoming {
				c.holdOrRefuse(p)
			}
			clear(c.incoming)
			c.incoming = c.incoming[:0]
			return nil
		}
	}
	return nil
}

func (c *core) hasDueQueued() bool {
	return slices.ContainsFunc(c.queued, func(p *proposal) bool { return p.notBefore <= c.ticks })
}

// takeBatch removes up to one batch of proposals ready to go: the queued
// ones first (they are older), then new ones.
func (c *core) takeBatch() []*proposal {
	var batch []*proposal
	size := 0
	full := func(p *proposal) bool {
		return len(batch) >= maxProposalBatch || len(batch) > 0 && size+len(p.data) > maxProposalBatchBytes
	}
	keep := c.queued[:0]
	for _, p := range c.queued {
		if p.notBefore > c.ticks || full(p) {
			keep = append(keep, p)
			continue
		}
		batch, size = append(batch, p), size+len(p.data)
	}
	clear(c.queued[len(keep):])
	c.queued = keep
	n := 0
	for n < len(c.incoming) && !full(c.incoming[n]) {
		batch, size = append(batch, c.incoming[n]), size+len(c.incoming[n].data)
		n++
	}
	c.incoming = append(c.incoming[:0], c.incoming[n:]...)
	return batch
}

// refuseOtherTerms fails the proposals bound to a term this node does not
// lead in (Raft may have moved on since the last Ready set c.state).
func (c *core) refuseOtherTerms(batch []*proposal) []*proposal {
	st := c.rn.BasicStatus()
	return slices.DeleteFunc(batch, func(p *proposal) bool {
		if p.leaderTerm == 0 || st.RaftState == etcdraft.StateLeader && st.GetTerm() == p.leaderTerm {
			return false
		}
		c.finish(p, 0, ErrNotLeader)
		return true
	})
}

// holdOrRefuse keeps a local proposal until a leader is known; a forwarded
// one goes back to its sender, which knows better, and one bound to this
// node's leadership fails.
func (c *core) holdOrRefuse(p *proposal) {
	if p.remote || p.leaderTerm != 0 {
		c.finish(p, 0, errNotLeader)
		return
	}
	c.queued = append(c.queued, p)
}

// proposeBatch appends a batch to this leader's log as one Raft proposal.
// Raft appends the entries at the end of its unstable log, so they are the
// last ones of the Ready that follows, which tells each its index and term.
func (c *core) proposeBatch(batch []*proposal) error {
	if len(batch) == 0 {
		return nil
	}
	ents := make([]*raftpb.Entry, len(batch))
	for i, p := range batch {
		ents[i] = &raftpb.Entry{Data: p.data}
	}
	err := c.rn.Step(&raftpb.Message{Type: raftpb.MsgProp.Enum(), From: new(c.cfg.id), Entries: ents})
	if err != nil {
		for _, p := range batch {
			c.finish(p, 0, ErrProposalDropped)
		}
		return nil
	}
	rd := c.rn.Ready()
	if len(rd.Entries) < len(batch) {
		return fmt.Errorf("raft accepted %d proposals but the Ready holds %d entries", len(batch), len(rd.Entries))
	}
	tail := rd.Entries[len(rd.Entries)-len(batch):]
	for i, p := range batch {
		p.index, p.term = tail[i].GetIndex(), tail[i].GetTerm()
		if old := c.appended[p.index]; old != nil {
			// This leader's log no longer holds old's entry.
			c.finish(old, 0, ErrProposalLost)
		}
		c.appended[p.index] = p
	}
	return c.handleReady(rd)
}

// forwardToLeader sends local proposals to the leader, each under a fresh
// request id; forwarded ones are refused (no forwarding chains).
func (c *core) forwardToLeader(batch []*proposal) {
	for _, p := range batch {
		if p.remote || p.leaderTerm != 0 {
			c.finish(p, 0, errNotLeader)
			continue
		}
		c.nextRequestID++
		p.requestID, p.forwardedTo = c.nextRequestID, c.leader
		c.forwarded[p.requestID] = p
		c.send.SendProposal(c.leader, ForwardedProposal{RequestID: p.requestID, Data: p.data})
	}
}

// handleReady does what a Ready asks, in the order Raft requires: make the
// snapshot, hard state and entries durable; only then send messages (a vote
// or an append acknowledgement must survive a crash); apply what is
// committed; then Advance.
func (c *core) handleReady(rd etcdraft.Ready) error {
	if rd.SoftState != nil {
		c.leader, c.state = rd.SoftState.Lead, rd.SoftState.RaftState
	}
	snapshot := !etcdraft.IsEmptySnap(rd.Snapshot)
	if snapshot {
		// Before the hard state: its commit index may cover the snapshot,
		// and a commit index past the log is refused at start-up.
		if err := c.storage.ApplySnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	if !etcdraft.IsEmptyHardState(rd.HardState) {
		if err := c.storage.SetHardState(rd.HardState); err != nil {
			return err
		}
	}
	if err := c.storage.Append(rd.Entries); err != nil {
		return err
	}
	c.send.Send(rd.Messages)
	if snapshot {
		if err := c.restore(rd.Snapshot); err != nil {
			return err
		}
	}
	if err := c.apply(rd.CommittedEntries); err != nil {
		return err
	}
	if err := c.maybeSnapshot(); err != nil {
		return err
	}
	c.rn.Advance(rd)
	return nil
}

// restore replaces the state machine with a snapshot from the leader.
// Proposals waiting on indexes it covers cannot learn whether their entry
// made it.
func (c *core) restore(snap *raftpb.Snapshot) error {
	index := snap.GetMetadata().GetIndex()
	if err := c.sm.Restore(index, snap.GetData()); err != nil {
		return fmt.Errorf("restore snapshot at index %d: %w", index, err)
	}
	c.applied = index
	c.nextSnapshotAt = index + c.cfg.snapshotEntries
	c.confState = proto.CloneOf(snap.GetMetadata().GetConfState())
	c.forgetRemoved()
	for _, i := range slices.Sorted(maps.Keys(c.appended)) {
		if i <= index {
			p := c.appended[i]
			delete(c.appended, i)
			c.finish(p, 0, ErrOutcomeUnknown)
		}
	}
	return nil
}

// apply hands committed entries to the state machine in order, applies
// membership changes to Raft, and completes the proposals they answer.
func (c *core) apply(ents []*raftpb.Entry) error {
	for _, e := range ents {
		switch e.GetType() {
		case raftpb.EntryNormal:
			// Empty entries are Raft's own, appended by each new leader.
			if len(e.GetData()) > 0 {
				if err := c.sm.Apply(e.GetIndex(), e.GetData()); err != nil {
					return fmt.Errorf("apply index %d: %w", e.GetIndex(), err)
				}
			}
		case raftpb.EntryConfChange:
			cc := &raftpb.ConfChange{}
			if err := proto.Unmarshal(e.GetData(), cc); err != nil {
				return fmt.Errorf("conf change at index %d: %w", e.GetIndex(), err)
			}
			c.confState = c.rn.ApplyConfChange(cc)
			c.forgetRemoved()
		case raftpb.EntryConfChangeV2:
			cc := &raftpb.ConfChangeV2{}
			if err := proto.Unmarshal(e.GetData(), cc); err != nil {
				return fmt.Errorf("conf change at index %d: %w", e.GetIndex(), err)
			}
			c.confState = c.rn.ApplyConfChange(cc)
			c.forgetRemoved()
		}
		c.applied = e.GetIndex()
		if p := c.appended[e.GetIndex()]; p != nil {
			delete(c.appended, e.GetIndex())
			if p.term == e.GetTerm() {
				c.finish(p, e.GetIndex(), nil)
			} else {
				c.finish(p, 0, ErrProposalLost)
			}
		}
	}
	return nil
}

// maybeSnapshot takes a snapshot every snapshotEntries applied entries and
// compacts the log behind it. A snapshot too large to store is skipped
// (the log keeps growing until the state machine shrinks); any other
// failure is the storage's and stops the node.
func (c *core) maybeSnapshot() error {
	if c.applied < c.nextSnapshotAt {
		return nil
	}
	c.nextSnapshotAt = c.applied + c.cfg.snapshotEntries
	data, err := c.sm.Snapshot()
	if err != nil {
		c.cfg.logger.Error("state machine snapshot failed; will retry", "index", c.applied, "err", err)
		return nil
	}
	err = c.storage.CreateSnapshot(c.applied, c.confState, data)
	if errors.Is(err, ErrSnapshotTooLarge) {
		c.cfg.logger.Error("snapshot skipped", "index", c.applied, "err", err)
		return nil
	}
	return err
}

// expireProposals forgets proposals whose waiters gave up. The order is by
// key so that a simulation replays identically.
func (c *core) expireProposals() {
	keep := c.queued[:0]
	for _, p := range c.queued {
		if p.expired() {
			c.finish(p, 0, ErrProposalDropped) // never left this node
			continue
		}
		keep = append(keep, p)
	}
	clear(c.queued[len(keep):])
	c.queued = keep
	for _, m := range []map[uint64]*proposal{c.forwarded, c.appended} {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if p := m[k]; p.expired() {
				delete(m, k)
				c.finish(p, 0, ErrOutcomeUnknown)
			}
		}
	}
}

// isMember reports whether this node is in the configuration it applied.
func (c *core) isMember() bool { return c.isMemberID(c.cfg.id) }

// isMemberID reports whether id is in the configuration this node applied.
func (c *core) isMemberID(id uint64) bool {
	return slices.Contains(c.confState.GetVoters(), id) || slices.Contains(c.confState.GetLearners(), id)
}

// maybeJoin asks the voters, once per election timeout, to add this learner
// to the configuration; only the leader acts on it. A learner already in
// the configuration that hears from no leader asks too: after a restart it
// may listen on another port, and only a frame from it tells the voters
// (the transport's hello); the leader ignores the request itself.
func (c *core) maybeJoin() {
	if !c.cfg.learner || c.isMember() && c.leader != 0 || c.ticks%uint64(c.cfg.electionTicks) != 1 {
		return
	}
	for _, v := range c.confState.GetVoters() {
		c.send.SendProposal(v, ForwardedProposal{Join: true})
	}
}

// admitLearner proposes adding a node as a learner, at most once per
// election timeout: Raft holds one configuration change at a time anyway.
func (c *core) admitLearner(id uint64) {
	if c.state != etcdraft.StateLeader || slices.Contains(c.confState.GetVoters(), id) || slices.Contains(c.confState.GetLearners(), id) {
		return
	}
	if c.lastJoinTick != 0 && c.ticks < c.lastJoinTick+uint64(c.cfg.electionTicks) {
		return
	}
	c.lastJoinTick = max(c.ticks, 1)
	cc := &raftpb.ConfChange{Type: raftpb.ConfChangeAddLearnerNode.Enum(), NodeId: new(id)}
	if err := c.rn.ProposeConfChange(cc); err != nil {
		c.cfg.logger.Warn("cannot propose adding a learner", "node", id, "err", err)
	}
}
