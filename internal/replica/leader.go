package replica

import (
	"errors"
	"fmt"
	"slices"
)

// ErrNotReplica: a fetch came from a broker outside the partition's replica
// set (or from the leader itself, which does not fetch from itself).
var ErrNotReplica = errors.New("broker is not a replica of this partition")

// LeaderState is a partition leader's view of its replicas (Kafka's Partition
// + ReplicaState on the leader): each follower's log end offset, when it last
// caught up, the ISR the controller committed, an ISR change in flight, and the
// high watermark. Not safe for concurrent use: its owner locks.
//
// Replica sets are a handful of brokers, so followers live in a slice in
// replica order and are found by a linear scan: cheaper than a map at this
// size, and it gives every listing a deterministic order for free.
type LeaderState struct {
	localID          int32
	leaderEpoch      int32
	partitionEpoch   int32
	epochStartOffset int64
	replicas         []int32 // the assignment, leader included, controller's order
	isr              []int32 // as the controller committed it
	followers        []FollowerState
	pending          *ISRChange
	logEndOffset     int64
	highWatermark    int64
	// latestNowMs is the newest time any call brought in. UpdateCommitted
	// takes no time, yet a follower the controller puts straight into the
	// ISR needs a lag window that starts somewhere recent, not at 0.
	latestNowMs int64
}

// FollowerState is what the leader knows of one follower.
type FollowerState struct {
	ID                          int32
	LogEndOffset                int64 // -1 until the follower's first fetch
	LastCaughtUpTimeMs          int64
	LastFetchTimeMs             int64
	LastFetchLeaderLogEndOffset int64
}

// LeaderStateConfig is the committed partition state a leader starts from.
type LeaderStateConfig struct {
	LocalID          int32 // this broker, the leader
	LeaderEpoch      int32
	PartitionEpoch   int32
	Replicas         []int32 // includes LocalID
	ISR              []int32 // committed by the controller; includes LocalID
	LogEndOffset     int64   // the leader's durable log end offset now
	HighWatermark    int64   // the HW the replica had before becoming leader (may be below LEO)
	EpochStartOffset int64   // where this leader epoch starts in the log (the LEO when it became leader)
}

// ISRChange is a proposal for the controller (AlterPartition).
type ISRChange struct {
	NewISR         []int32 // in replica order
	PartitionEpoch int32   // the committed partition epoch it is based on
	Shrink         bool    // true: members fell behind; false: members caught up
}

// NewLeaderState starts a leader's bookkeeping. Every follower starts with
// an unknown log end offset (-1): whatever it had under the previous leader
// may have been truncated since. ISR members get nowMs as their last
// caught-up time, a full lag window to show up, as a new leader in Kafka
// gives them; the others start at 0. The HW starts at the replica's old HW
// (never above the LEO) and is recomputed at once, so a leader alone in its
// ISR has HW = LEO from the start.
func NewLeaderState(cfg LeaderStateConfig, nowMs int64) *LeaderState {
	s := &LeaderState{
		localID:          cfg.LocalID,
		leaderEpoch:      cfg.LeaderEpoch,
		partitionEpoch:   cfg.PartitionEpoch,
		epochStartOffset: cfg.EpochStartOffset,
		logEndOffset:     cfg.LogEndOffset,
		highWatermark:    max(0, min(cfg.HighWatermark, cfg.LogEndOffset)),
		latestNowMs:      nowMs,
	}
	s.setMembers(cfg.Replicas, cfg.ISR)
	s.updateHighWatermark()
	return s
}

// setMembers adopts a replica set and committed ISR, keeping what is known
// of followers that stay and creating the newcomers.
func (s *LeaderState) setMembers(replicas, isr []int32) {
	s.replicas = s.replicas[:0]
	for _, id := range replicas {
		if !slices.Contains(s.replicas, id) { // a duplicate would be counted twice
			s.replicas = append(s.replicas, id)
		}
	}
	s.isr = slices.Clone(isr)
	followers := make([]FollowerState, 0, len(s.replicas))
	for _, id := range s.replicas {
		if id == s.localID {
			continue
		}
		if f := s.follower(id); f != nil {
			followers = append(followers, *f)
			continue
		}
		f := FollowerState{ID: id, LogEndOffset: -1, LastFetchLeaderLogEndOffset: -1}
		if slices.Contains(isr, id) {
			f.LastCaughtUpTimeMs = s.latestNowMs
		}
		followers = append(followers, f)
	}
	s.followers = followers
}

func (s *LeaderState) follower(id int32) *FollowerState {
	for i := range s.followers {
		if s.followers[i].ID == id {
			return &s.followers[i]
		}
	}
	return nil
}

// UpdateCommitted adopts a new committed state for the same leader epoch (the
// controller committed an ISR change, ours or its own, or the replica set
// changed). A pending change that the committed ISR now equals, or whose
// partition epoch is stale (partitionEpoch moved past the one the proposal was
// based on), is cleared. Followers that left Replicas are forgotten; new ones added.
// Returns whether the HW advanced.
//
// A partition epoch older than the one we hold is a delayed message and is
// ignored: adopting it would resurrect an ISR the controller replaced.
func (s *LeaderState) UpdateCommitted(partitionEpoch int32, replicas, isr []int32) (hwAdvanced bool) {
	if partitionEpoch < s.partitionEpoch {
		return false
	}
	s.partitionEpoch = partitionEpoch
	s.setMembers(replicas, isr)
	if p := s.pending; p != nil && (sameMembers(p.NewISR, isr) || partitionEpoch > p.PartitionEpoch) {
		s.pending = nil
	}
	return s.updateHighWatermark()
}

// SetLogEndOffset records the leader's own durable log end offset after an
// append. Returns whether the HW advanced.
//
// A leader's log only grows while it leads, so a smaller value (a report
// overtaken by a newer one) is ignored: taking it would put the HW above
// the LEO.
func (s *LeaderState) SetLogEndOffset(leo int64) (hwAdvanced bool) {
	if leo <= s.logEndOffset {
		return false
	}
	s.logEndOffset = leo
	return s.updateHighWatermark()
}

// FollowerFetched records a follower's fetch at fetchOffset (which is the
// follower's log end offset) at nowMs, against the leader's current LEO,
// updating LastCaughtUpTimeMs the way Kafka's ReplicaState.updateFetchState
// does: if fetchOffset >= leaderLEO then lastCaughtUp = max(lastCaughtUp, nowMs);
// else if fetchOffset >= the leader LEO at the follower's previous fetch then
// lastCaughtUp = max(lastCaughtUp, previous fetch time); then remember this
// fetch's time and leader LEO. Unknown replica ids return ErrNotReplica.
// Returns whether the HW advanced.
//
// The second rule is what keeps a follower in the ISR under constant
// appends: it can never equal a moving LEO, but reaching where the LEO was
// at its previous fetch proves it was caught up as of that fetch. The
// follower's LEO is taken as given, even below what it said before (it
// restarted and truncated): the HW stays put, since it never moves back.
// The caller rejects a fetch offset above the leader's LEO (out of range)
// before calling.
func (s *LeaderState) FollowerFetched(id int32, fetchOffset int64, nowMs int64) (hwAdvanced bool, err error) {
	f := s.follower(id)
	if f == nil {
		return false, fmt.Errorf("broker %d: %w", id, ErrNotReplica)
	}
	s.latestNowMs = max(s.latestNowMs, nowMs)
	switch {
	case fetchOffset >= s.logEndOffset:
		f.LastCaughtUpTimeMs = max(f.LastCaughtUpTimeMs, nowMs)
	case fetchOffset >= f.LastFetchLeaderLogEndOffset:
		f.LastCaughtUpTimeMs = max(f.LastCaughtUpTimeMs, f.LastFetchTimeMs)
	}
	f.LogEndOffset = fetchOffset
	f.LastFetchTimeMs = nowMs
	f.LastFetchLeaderLogEndOffset = s.logEndOffset
	return s.updateHighWatermark(), nil
}

// updateHighWatermark moves the HW up to the smallest LEO in the maximal
// ISR, the leader's own included. The maximal ISR, not the committed one:
// a member we proposed to add must hold the HW at once (the controller may
// commit it, and it must then have every record below the HW), and a
// member we proposed to remove must hold it until the controller commits
// the removal (it may refuse, and the member stays a candidate leader).
// Members that are not replicas have no state here and are skipped, as
// Kafka does.
func (s *LeaderState) updateHighWatermark() bool {
	candidate := s.logEndOffset
	for _, id := range s.MaximalISR() {
		if id == s.localID {
			continue
		}
		f := s.follower(id)
		if f == nil {
			continue
		}
		if f.LogEndOffset < 0 {
			return false // unknown LEO: it may have nothing past the HW yet
		}
		candidate = min(candidate, f.LogEndOffset)
	}
	if candidate <= s.highWatermark {
		return false
	}
	s.highWatermark = candidate
	return true
}

// HighWatermark: min over the maximal ISR (committed ISR ∪ pending
// proposal's ISR: an expansion counts the newcomer at once, a shrink keeps
// counting the member leaving until the controller commits it — Kafka's
// "maximal ISR") of each member's LEO, the leader's own LEO included.
// A follower with LogEndOffset -1 (never fetched) in the maximal ISR holds the
// HW where it is. The HW never moves backwards and never passes the leader LEO.
func (s *LeaderState) HighWatermark() int64 { return s.highWatermark }

// LogEndOffset is the leader's own durable log end offset.
func (s *LeaderState) LogEndOffset() int64 { return s.logEndOffset }

// LeaderEpoch is the epoch this state leads in; it never changes (a new
// leader epoch is a new LeaderState).
func (s *LeaderState) LeaderEpoch() int32 { return s.leaderEpoch }

// PartitionEpoch is the committed partition epoch; proposals are based on it.
func (s *LeaderState) PartitionEpoch() int32 { return s.partitionEpoch }

// EpochStartOffset is where this leader epoch starts in the log.
func (s *LeaderState) EpochStartOffset() int64 { return s.epochStartOffset }

// Replicas is the assignment, leader included, a copy.
func (s *LeaderState) Replicas() []int32 { return slices.Clone(s.replicas) }

// ISR is the ISR the controller committed, a copy.
func (s *LeaderState) ISR() []int32 { return slices.Clone(s.isr) }

// ISRLen is the size of the ISR the controller committed: len(ISR())
// without the copy, for callers that count members on every refresh.
func (s *LeaderState) ISRLen() int { return len(s.isr) }

// MaximalISR is the committed ISR with the pending proposal's members added,
// in replica order (members that are not replicas last), a copy.
func (s *LeaderState) MaximalISR() []int32 {
	members := slices.Clone(s.isr)
	if s.pending != nil {
		for _, id := range s.pending.NewISR {
			if !slices.Contains(members, id) {
				members = append(members, id)
			}
		}
	}
	return s.inReplicaOrder(members)
}

// inReplicaOrder sorts ids in place by their position in the replica set;
// ids outside it keep their relative order after the replicas.
func (s *LeaderState) inReplicaOrder(ids []int32) []int32 {
	rank := func(id int32) int {
		if i := slices.Index(s.replicas, id); i >= 0 {
			return i
		}
		return len(s.replicas)
	}
	slices.SortStableFunc(ids, func(a, b int32) int { return rank(a) - rank(b) })
	return ids
}

// Followers is what the leader knows of each follower (every replica but
// itself), in replica order, a copy.
func (s *LeaderState) Followers() []FollowerState { return slices.Clone(s.followers) }

// Pending returns the proposal in flight, if any.
func (s *LeaderState) Pending() (ISRChange, bool) {
	if s.pending == nil {
		return ISRChange{}, false
	}
	return cloneChange(*s.pending), true
}

func cloneChange(c ISRChange) ISRChange {
	c.NewISR = slices.Clone(c.NewISR)
	return c
}

// ProposeShrink returns a proposal removing every ISR follower that is out of
// sync: its LEO differs from the leader's LEO AND nowMs - LastCaughtUpTimeMs >
// lagTimeMaxMs (Kafka's isCaughtUp negated). No proposal (ok=false) when none
// is out of sync or a proposal is already pending. The leader itself never
// leaves. On ok it becomes the pending proposal.
//
// One proposal at a time: the controller checks each against the partition
// epoch it is based on, so a second one built on the same epoch would be
// rejected anyway, and the maximal ISR would be ambiguous.
func (s *LeaderState) ProposeShrink(nowMs, lagTimeMaxMs int64) (ISRChange, bool) {
	s.latestNowMs = max(s.latestNowMs, nowMs)
	if s.pending != nil {
		return ISRChange{}, false
	}
	var keep []int32
	for _, id := range s.isr {
		f := s.follower(id)
		outOfSync := id != s.localID && f != nil &&
			f.LogEndOffset != s.logEndOffset && nowMs-f.LastCaughtUpTimeMs > lagTimeMaxMs
		if !outOfSync {
			keep = append(keep, id)
		}
	}
	if len(keep) == len(s.isr) {
		return ISRChange{}, false
	}
	return s.propose(keep, true), true
}

// ProposeExpand returns a proposal adding every replica outside the ISR whose
// LEO >= HighWatermark() AND LEO >= EpochStartOffset (Kafka's
// isFollowerInSync: caught up within this leader's epoch), none if nothing
// qualifies or a proposal is pending. On ok it becomes the pending proposal.
//
// The epoch-start condition matters: a follower at the HW but below the
// epoch start may hold records from an older epoch that this leader
// truncated away, not yet replaced by ours; in the ISR it could be elected
// and lose them.
//
// Two more conditions keep a dead follower out (KIP-841): it must have
// fetched within lagTimeMaxMs of nowMs (its LEO is a memory, not a fact,
// once it stops fetching), and eligible (nil: everyone) must accept it —
// the caller passes the brokers the metadata has registered and unfenced.
// Without them a follower that died while caught up would be proposed on
// every fetch of the others, refused each time, and, counted in the
// maximal ISR while pending, would hold the HW.
func (s *LeaderState) ProposeExpand(nowMs, lagTimeMaxMs int64, eligible func(id int32) bool) (ISRChange, bool) {
	if s.pending != nil {
		return ISRChange{}, false
	}
	grown := slices.Clone(s.isr)
	for _, f := range s.followers {
		if slices.Contains(s.isr, f.ID) || nowMs-f.LastFetchTimeMs > lagTimeMaxMs || (eligible != nil && !eligible(f.ID)) {
			continue
		}
		if f.LogEndOffset >= 0 && f.LogEndOffset >= s.highWatermark && f.LogEndOffset >= s.epochStartOffset {
			grown = append(grown, f.ID)
		}
	}
	if len(grown) == len(s.isr) {
		return ISRChange{}, false
	}
	return s.propose(grown, false), true
}

func (s *LeaderState) propose(newISR []int32, shrink bool) ISRChange {
	change := ISRChange{NewISR: s.inReplicaOrder(newISR), PartitionEpoch: s.partitionEpoch, Shrink: shrink}
	s.pending = &change
	return cloneChange(change)
}

// ProposalFailed clears the pending proposal (the controller rejected it or
// the request failed) so a later call can propose again.
//
// Dropping a failed expansion shrinks the maximal ISR, which can let the HW
// advance (the newcomer no longer holds it); the HW is recomputed here, so
// a caller that wakes waiters on the HW compares HighWatermark before and
// after.
func (s *LeaderState) ProposalFailed() {
	s.pending = nil
	s.updateHighWatermark()
}

// sameMembers reports whether a and b hold the same ids, in any order.
func sameMembers(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for _, id := range a {
		if !slices.Contains(b, id) {
			return false
		}
	}
	return true
}
