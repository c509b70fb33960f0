package partition

import (
	"context"
	"fmt"

	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/replica"
)

// The leader side of replication: the leader tracks each follower's log
// end offset through its fetches (replica.LeaderState), derives the high
// watermark from the ISR the controller committed, proposes ISR changes
// through AlterPartition, and releases acks=all produces once the high
// watermark passes them.

// ISRProposal is a leader's AlterPartition item for the controller.
type ISRProposal struct {
	TopicID        metadata.UUID
	Topic          string
	Partition      int32
	LeaderEpoch    int32
	PartitionEpoch int32
	NewISR         []int32
}

// AppendAll appends like Append, then waits until every ISR member has the
// records (the high watermark passes them): Kafka's acks=all. It refuses
// to append while the committed ISR is below min.insync.replicas
// (ErrNotEnoughReplicas), and reports ErrNotEnoughReplicasAfterAppend if
// the ISR shrank below it by the time the records were committed. The wait
// ends with ctx (the produce timeout) or when leadership moves.
func (p *Partition) AppendAll(ctx context.Context, records []byte) (AppendResult, error) {
	return p.appendAllFrom(ctx, records, appendOrigin{})
}

// AppendAllAsCoordinator is AppendAll for batches a coordinator writes
// (see appendOrigin): the group coordinator's transactional offset
// commits, verified under guard (see BeginTxnVerification; 0: none).
func (p *Partition) AppendAllAsCoordinator(ctx context.Context, records []byte, guard uint64) (AppendResult, error) {
	return p.appendAllFrom(ctx, records, appendOrigin{coordinator: true, guard: guard})
}

// AppendAllVerified is AppendAll for a transactional batch verified under
// guard (see BeginTxnVerification).
func (p *Partition) AppendAllVerified(ctx context.Context, records []byte, guard uint64) (AppendResult, error) {
	return p.appendAllFrom(ctx, records, appendOrigin{guard: guard})
}

// ProduceOptions shape a client's produce append.
type ProduceOptions struct {
	// AcksAll waits for the ISR (AppendAll) instead of the local append.
	AcksAll bool
	// Guard is the KIP-890 verification guard of a transactional batch
	// (BeginTxnVerification); 0: none.
	Guard uint64
}

// PendingProduce is a produce whose batches are queued in the log, in the
// order StartProduce was called: Wait completes it.
type PendingProduce struct {
	pa      pendingAppend
	acksAll bool
}

// StartProduce is the first half of a client's append (Append,
// AppendVerified, AppendAll or AppendAllVerified as opts say): it checks
// the batches and queues them in the log, and returns before their write.
// The produce handler calls it for each partition of a request in turn,
// then waits for them all together, while the connection's next request
// queues its batches behind these and shares their write round. Wait must
// be called unless it fails; until then the partition's leadership cannot
// change (the append holds the gate shared).
func (p *Partition) StartProduce(records []byte, opts ProduceOptions) (*PendingProduce, error) {
	if opts.AcksAll {
		if err := p.checkMinISR(); err != nil {
			return nil, err
		}
	}
	pa, err := p.startAppend(records, appendOrigin{guard: opts.Guard})
	if err != nil {
		return nil, err
	}
	return &PendingProduce{pa: pa, acksAll: opts.AcksAll}, nil
}

// Write writes the produce's batches to the log's file now if no other
// goroutine is writing, without waiting for their sync. The produce
// handler writes every partition of a request this way before it waits on
// any, so that their syncs begin after all their writes and one syncfs of
// the log directory can cover them all.
func (pp *PendingProduce) Write() {
	if pp.pa.dup != nil {
		return // nothing of its own to write
	}
	pp.pa.p.log.Write(pp.pa.info.LastOffset + 1)
}

// Wait waits until the produce is durable and, for acks=all, replicated
// (at most until ctx ends): Durable, then Replicated.
func (pp *PendingProduce) Wait(ctx context.Context) (AppendResult, error) {
	res, err := pp.Durable()
	if err != nil {
		return res, err
	}
	return res, pp.Replicated(ctx, res)
}

// Durable waits until the produce's batches are durable under the
// topic's flush policy, the first half of Wait, and lets go of the
// partition's gate: from then on a leadership change or a checkpoint no
// longer waits for this produce. A request of many partitions calls it
// for every one of them before it waits for any replication (Replicated),
// so that no partition's gate is held while another waits for its ISR.
func (pp *PendingProduce) Durable() (AppendResult, error) {
	return pp.pa.finish()
}

// Replicated waits, for an acks=all produce, until the ISR has the
// batches Durable returned res for (at most until ctx ends); for other
// acks it returns at once.
func (pp *PendingProduce) Replicated(ctx context.Context, res AppendResult) error {
	if !pp.acksAll {
		return nil
	}
	// The epoch the batches were appended in, read under the gate by
	// StartProduce: one read before it may be older, if a leadership
	// change (this node leading again in a new epoch) took the gate first.
	return pp.pa.p.waitCommitted(ctx, res.LastOffset+1, pp.pa.role.leaderEpoch)
}

func (p *Partition) appendAllFrom(ctx context.Context, records []byte, origin appendOrigin) (AppendResult, error) {
	if err := p.checkMinISR(); err != nil {
		return AppendResult{LogAppendTimeMs: -1}, err
	}
	pa, err := p.startAppend(records, origin)
	if err != nil {
		return AppendResult{LogAppendTimeMs: -1}, err
	}
	res, err := pa.finish()
	if err != nil {
		return res, err
	}
	// In the epoch the batches were appended in (see PendingProduce.Wait).
	if err := p.waitCommitted(ctx, res.LastOffset+1, pa.role.leaderEpoch); err != nil {
		return res, err
	}
	return res, nil
}

// checkMinISR refuses an acks=all append while the committed ISR is below
// min.insync.replicas. Not leading passes: the append then refuses with
// NOT_LEADER_OR_FOLLOWER, the error a client must see rather than
// NOT_ENOUGH_REPLICAS.
func (p *Partition) checkMinISR() error {
	settings := p.settings.Load()
	if n, leading := p.isrSize(); leading && n < settings.minInsyncReplicas {
		return fmt.Errorf("partition %s: ISR has %d of min.insync.replicas %d: %w",
			p.tp, n, settings.minInsyncReplicas, ErrNotEnoughReplicas)
	}
	return nil
}

// waitCommitted waits until the high watermark reaches offset while this
// node leads the partition in leaderEpoch (records it appended then may be
// truncated once another leader takes over, so only that epoch's HW counts).
func (p *Partition) waitCommitted(ctx context.Context, offset int64, leaderEpoch int32) error {
	// Checked before registering: on a single replica the append already
	// moved the high watermark past offset, and a produce should not pay
	// for a channel and a place among the watchers every other append
	// then signals.
	if done, err := p.committed(offset, leaderEpoch); done {
		return err
	}
	wake := make(chan struct{}, 1)
	cancel := p.watchers.Add(wake)
	defer cancel()
	for {
		if done, err := p.committed(offset, leaderEpoch); done {
			return err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("partition %s: waiting for the ISR to replicate offset %d (high watermark %d): %w",
				p.tp, offset, p.highWatermark.Load(), ctx.Err())
		}
	}
}

// committed says whether waitCommitted is done: the high watermark reached
// offset in leaderEpoch (err says whether with enough replicas), or
// leadership moved (err is ErrNotLeader).
func (p *Partition) committed(offset int64, leaderEpoch int32) (bool, error) {
	role := p.role.Load()
	if !role.isLeader || role.leaderEpoch != leaderEpoch {
		return true, fmt.Errorf("partition %s: leadership moved (epoch %d, now leader %d at epoch %d) before offset %d was replicated: %w",
			p.tp, leaderEpoch, role.leader, role.leaderEpoch, offset, ErrNotLeader)
	}
	if p.highWatermark.Load() < offset {
		return false, nil
	}
	n, leading := p.isrSize()
	if !leading {
		return true, fmt.Errorf("partition %s: leadership moved before offset %d was acknowledged: %w", p.tp, offset, ErrNotLeader)
	}
	if want := p.settings.Load().minInsyncReplicas; n < want {
		return true, fmt.Errorf("partition %s: offset %d committed by an ISR of %d, min.insync.replicas %d: %w",
			p.tp, offset, n, want, ErrNotEnoughReplicasAfterAppend)
	}
	return true, nil
}

// isrSize is the size of the ISR the controller committed, as the leader
// state holds it; leading is false when this node does not lead.
func (p *Partition) isrSize() (n int, leading bool) {
	n1 := p.isrLen.Load()
	return int(n1) - 1, n1 > 0
}

// noteISRLocked keeps isrLen in step with leaderState (replMu held).
func (p *Partition) noteISRLocked() {
	if p.leaderState == nil {
		p.isrLen.Store(0)
		return
	}
	p.isrLen.Store(int32(p.leaderState.ISRLen()) + 1)
}

// ISR returns the ISR the controller committed; nil when this node does
// not lead the partition.
func (p *Partition) ISR() []int32 {
	p.replMu.Lock()
	defer p.replMu.Unlock()
	if p.leaderState == nil {
		return nil
	}
	return p.leaderState.ISR()
}

// leaderAppended records the leader's durable log end offset after an
// append, wakes parked follower fetches, and advances the high watermark
// if the ISR allows.
func (p *Partition) leaderAppended(logEndOffset int64, leaderEpoch int32) {
	p.replMu.Lock()
	hw := int64(-1)
	if s := p.leaderState; s != nil && s.LeaderEpoch() == leaderEpoch && logEndOffset > s.LogEndOffset() {
		if s.SetLogEndOffset(logEndOffset) {
			hw = s.HighWatermark()
		}
	}
	p.replMu.Unlock()
	p.appendWatchers.Notify()
	if hw >= 0 {
		p.advanceHighWatermark(hw)
	}
}

// ReadAsReplica serves a follower's fetch: it records the follower's log
// end offset (its fetch offset), which may advance the high watermark or
// let the follower back into the ISR, then reads up to the log end offset,
// not the high watermark: the follower needs what is not yet committed.
func (p *Partition) ReadAsReplica(replicaID int32, offset int64, opts ReadOptions) (ReadResult, error) {
	if err := p.CheckLeaderEpoch(opts.CurrentLeaderEpoch); err != nil {
		return ReadResult{}, err
	}
	if _, err := p.leaderRole(); err != nil {
		return ReadResult{}, err
	}
	if leo := p.log.LogEndOffset(); offset > leo || offset < p.log.LogStartOffset() {
		// A follower ahead of us diverged (it truncates after
		// OffsetForLeaderEpoch); one behind our log start starts over.
		// Either way its offset says nothing about what it holds of ours.
		return ReadResult{}, fmt.Errorf("partition %s: replica %d fetch offset %d not in [%d, %d]: %w",
			p.tp, replicaID, offset, p.log.LogStartOffset(), leo, log.ErrOffsetOutOfRange)
	}
	if err := p.followerFetched(replicaID, offset); err != nil {
		return ReadResult{}, err
	}
	// The log end is taken before the read and bounds it: a parked fetch
	// compares it with the partition's later log end to see whether an
	// append slipped in before its watch was set. Taken after, an append
	// between the two would be counted as read, and its wake-up lost.
	leo := p.log.LogEndOffset()
	slice, err := p.log.Read(offset, readOptionsTo(opts, leo))
	if err != nil {
		return ReadResult{}, fmt.Errorf("partition %s: replica %d read at %d: %w", p.tp, replicaID, offset, err)
	}
	hw := p.highWatermark.Load()
	return ReadResult{Records: slice, HighWatermark: hw, LastStableOffset: p.lastStableOffset(hw),
		LogStartOffset: p.log.LogStartOffset(), LogEndOffset: leo}, nil
}

// followerFetched updates the leader state with a follower's fetch and
// acts on what follows: a higher HW, an ISR expansion to propose.
func (p *Partition) followerFetched(replicaID int32, offset int64) error {
	nowMs := p.nowMs()
	p.replMu.Lock()
	s := p.leaderState
	if s == nil {
		p.replMu.Unlock()
		return fmt.Errorf("partition %s: %w", p.tp, ErrNotLeader)
	}
	advanced, err := s.FollowerFetched(replicaID, offset, nowMs)
	if err != nil {
		p.replMu.Unlock()
		return fmt.Errorf("partition %s: fetch from broker %d: %w (%w)", p.tp, replicaID, err, ErrNotFollower)
	}
	hw := s.HighWatermark()
	change, propose := s.ProposeExpand(nowMs, p.lagTimeMaxMs, p.brokerEligible)
	p.replMu.Unlock()
	if advanced {
		p.advanceHighWatermark(hw)
	}
	if propose {
		p.proposeISR(s, change)
	}
	return nil
}

// MaybeShrinkISR proposes removing followers that have not caught up for
// longer than lagTimeMaxMs (replica.lag.time.max.ms). The Manager calls it
// on a timer for every partition it leads.
func (p *Partition) MaybeShrinkISR(lagTimeMaxMs int64) {
	p.replMu.Lock()
	s := p.leaderState
	if s == nil {
		p.replMu.Unlock()
		return
	}
	change, ok := s.ProposeShrink(p.nowMs(), lagTimeMaxMs)
	p.replMu.Unlock()
	if ok {
		p.logger.Info("proposing to shrink the ISR", "isr", s.ISR(), "new_isr", change.NewISR)
		p.proposeISR(s, change)
	}
}

// proposeISR hands a proposal to the controller in the background; the
// committed result arrives with the next metadata image (applyCommitted).
// A refused or failed proposal is forgotten so a later check proposes
// again from the state it finds then.
func (p *Partition) proposeISR(s *replica.LeaderState, change replica.ISRChange) {
	submit := p.alterISR
	if submit == nil {
		p.proposalFailed(s)
		return
	}
	proposal := ISRProposal{TopicID: p.topicID, Topic: p.tp.Topic, Partition: p.tp.Partition,
		LeaderEpoch: s.LeaderEpoch(), PartitionEpoch: change.PartitionEpoch, NewISR: change.NewISR}
	go func() {
		if err := submit(proposal); err != nil {
			p.logger.Warn("ISR change not committed", "new_isr", change.NewISR, "err", err)
			p.proposalFailed(s)
		}
	}()
}

// proposalFailed drops the proposal in flight. Dropping an expansion
// takes its newcomer out of the maximal ISR, which may let the HW advance
// (replica.LeaderState.ProposalFailed): publish it, or acks=all produces
// wait for an event that may never come.
func (p *Partition) proposalFailed(s *replica.LeaderState) {
	p.replMu.Lock()
	if p.leaderState != s {
		p.replMu.Unlock()
		return
	}
	before := s.HighWatermark()
	s.ProposalFailed()
	hw := s.HighWatermark()
	p.replMu.Unlock()
	if hw > before {
		p.advanceHighWatermark(hw)
	}
}

// WatchAppends registers ch for a signal whenever the leader appends (its
// log end offset moves) or the partition stops being led here: what a
// parked follower fetch waits for.
func (p *Partition) WatchAppends(ch chan<- struct{}) (cancel func()) {
	cancel = p.appendWatchers.Add(ch)
	if !p.role.Load().isLeader {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	return cancel
}

// applyCommitted adopts the image's ISR, replicas and partition epoch into
// the leader state, which may advance the high watermark (a member left
// the ISR).
// Called by the Manager's Refresh, after setRole.
func (p *Partition) applyCommitted(pi *metadata.PartitionImage) {
	p.replMu.Lock()
	hw := int64(-1)
	isrBefore := -1
	if s := p.leaderState; s != nil && s.LeaderEpoch() == pi.LeaderEpoch {
		isrBefore = s.ISRLen()
		if s.UpdateCommitted(pi.PartitionEpoch, pi.Replicas, pi.ISR) {
			hw = s.HighWatermark()
		}
		p.noteISRLocked()
	}
	p.replMu.Unlock()
	if hw >= 0 {
		p.advanceHighWatermark(hw)
	}
	// Counted where the leader adopts the committed ISR, as Kafka counts
	// on the AlterPartition response: a proposal the controller refused
	// changed nothing.
	if p.isrChanged != nil && isrBefore >= 0 && isrBefore != len(pi.ISR) {
		p.isrChanged(len(pi.ISR) < isrBefore)
	}
	p.watchers.Notify() // acks=all waiters re-check min.insync.replicas
}

// becomeLeaderLocked starts the leader state for a new leader epoch (gate
// held exclusively, so no append runs): followers start unknown, the HW
// starts where this replica's was and advances once followers fetch.
func (p *Partition) becomeLeaderLocked(pi *metadata.PartitionImage, localID int32) {
	leo := p.log.LogEndOffset()
	s := replica.NewLeaderState(replica.LeaderStateConfig{
		LocalID: localID, LeaderEpoch: pi.LeaderEpoch, PartitionEpoch: pi.PartitionEpoch,
		Replicas: pi.Replicas, ISR: pi.ISR, LogEndOffset: leo,
		HighWatermark: min(p.highWatermark.Load(), leo), EpochStartOffset: leo,
	}, p.nowMs())
	p.replMu.Lock()
	p.leaderState = s
	p.noteISRLocked()
	hw := s.HighWatermark()
	p.replMu.Unlock()
	p.advanceHighWatermark(hw)
}

// stopLeadingLocked drops the leader state (gate held exclusively).
func (p *Partition) stopLeadingLocked() {
	p.replMu.Lock()
	p.leaderState = nil
	p.noteISRLocked()
	p.replMu.Unlock()
}

// ReplicaStates returns the followers as the leader sees them; nil when
// this node does not lead the partition.
func (p *Partition) ReplicaStates() []replica.FollowerState {
	p.replMu.Lock()
	defer p.replMu.Unlock()
	if p.leaderState == nil {
		return nil
	}
	return p.leaderState.Followers()
}
