package raft

import (
	"context"
	"maps"
	"slices"

	etcdraft "go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/tracker"

	"github.com/sluicelog/sluice/internal/clock"
)

// Status is one member's view of the quorum at one moment, as operators'
// tools (Kafka's DescribeQuorum) show it. It is a copy: nothing in it
// changes afterwards.
type Status struct {
	NodeID      uint64
	Term        uint64 // the Raft term (Kafka's leader epoch)
	Leader      uint64 // 0 when this member knows of none
	IsLeader    bool
	CommitIndex uint64 // the highest index known committed
	// LastIndex is the index of the last entry in this member's durable
	// log (what it would report as its log end).
	LastIndex uint64
	Voters    []uint64 // the applied configuration, sorted
	Learners  []uint64
	// Progress is, on the leader only, each member's replication state
	// (the leader's own included), by node id; nil on other members, which
	// do not know it.
	Progress map[uint64]MemberProgress
}

// MemberProgress is what the leader knows of one member. The times are
// Unix milliseconds, exact to one tick of the Raft clock; -1 when the
// leader has not heard from the member since it started, or never saw it
// caught up.
type MemberProgress struct {
	Match uint64 // the highest index known to be in the member's log
	// LastHeardMs is when this node last received a message from it.
	LastHeardMs int64
	// LastCaughtUpMs is the last tick at which, while this node led, the
	// member's log held every entry of the leader's.
	LastCaughtUpMs int64
}

// Status reads this member's view of the quorum. The core is owned by the
// driver goroutine, so the read runs there, between two rounds, like a
// proposal; it returns once the driver got to it.
func (n *Node) Status(ctx context.Context) (Status, error) {
	res := make(chan Status, 1)
	tickMs := n.cfg.TickInterval.Milliseconds()
	read := func(c *core) { res <- c.status(clock.UnixMs(n.cfg.Clock), tickMs) }
	if err := n.enqueue(ctx, read); err != nil {
		return Status{}, err
	}
	select {
	case st := <-res:
		return st, nil
	case <-ctx.Done():
		return Status{}, ctx.Err()
	case <-n.done:
		return Status{}, n.stoppedErr()
	}
}

// noteHeard records that a member sent this node a message. Only members
// are tracked, so a stranger's messages cannot grow the map.
func (c *core) noteHeard(from uint64) {
	if from == c.cfg.id || !c.isMemberID(from) {
		return
	}
	if c.heardTick == nil {
		c.heardTick = map[uint64]uint64{}
	}
	c.heardTick[from] = c.ticks
}

// noteCaughtUp records, once per tick on the leader, which members hold
// the leader's whole log. WithProgress visits the trackers without
// copying them.
func (c *core) noteCaughtUp() {
	if c.state != etcdraft.StateLeader {
		return
	}
	last := c.storage.lastIndex()
	c.rn.WithProgress(func(id uint64, _ etcdraft.ProgressType, pr tracker.Progress) {
		if pr.Match < last {
			return
		}
		if c.caughtUpTick == nil {
			c.caughtUpTick = map[uint64]uint64{}
		}
		c.caughtUpTick[id] = c.ticks
	})
}

// forgetRemoved drops what the core tracks of members no longer in the
// configuration.
func (c *core) forgetRemoved() {
	for _, m := range []map[uint64]uint64{c.heardTick, c.caughtUpTick} {
		maps.DeleteFunc(m, func(id uint64, _ uint64) bool { return !c.isMemberID(id) })
	}
}

// status builds a Status. Ticks become wall-clock times through nowMs
// and the tick length, since the core keeps no clock of its own. The
// leader reports itself heard from and caught up now, as Kafka's leader
// does for its own replica.
func (c *core) status(nowMs, tickMs int64) Status {
	st := c.rn.BasicStatus()
	s := Status{
		NodeID: c.cfg.id, Term: st.GetTerm(), Leader: st.Lead, IsLeader: st.RaftState == etcdraft.StateLeader,
		CommitIndex: st.GetCommit(), LastIndex: c.storage.lastIndex(),
		Voters:   slices.Sorted(slices.Values(c.confState.GetVoters())),
		Learners: slices.Sorted(slices.Values(c.confState.GetLearners())),
	}
	if !s.IsLeader {
		return s
	}
	at := func(ticks map[uint64]uint64, id uint64) int64 {
		t, ok := ticks[id]
		if !ok {
			return -1
		}
		return nowMs - int64(c.ticks-t)*tickMs
	}
	s.Progress = map[uint64]MemberProgress{}
	c.rn.WithProgress(func(id uint64, _ etcdraft.ProgressType, pr tracker.Progress) {
		p := MemberProgress{Match: pr.Match, LastHeardMs: at(c.heardTick, id), LastCaughtUpMs: at(c.caughtUpTick, id)}
		if id == c.cfg.id {
			p.LastHeardMs, p.LastCaughtUpMs = nowMs, nowMs
		}
		s.Progress[id] = p
	})
	return s
}
