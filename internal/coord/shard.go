package coord

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/coord/group"
	"github.com/sluicelog/sluice/internal/partition"
	"github.com/sluicelog/sluice/internal/record"
)

const (
	// inboxSize bounds the steps queued for one shard; senders block
	// (until their ctx ends) beyond it.
	inboxSize = 1024
	// maxStepsPerFlush bounds how many queued steps share one append (and
	// one fsync).
	maxStepsPerFlush = 1024
	// loadReadBytes is how much of the partition one read returns on load.
	loadReadBytes = 1 << 20
	// maxDecompressedBytes bounds one batch's records when replaying.
	maxDecompressedBytes = 64 << 20
)

// request is one step for a shard's owner: step drives the state machine
// and the reply comes through its Waiter, or read answers at once.
type request struct {
	step  func(m *group.Shard, nowMs int64, w group.Waiter)
	read  func(m *group.Shard) any
	reply chan group.Reply
	// txnGuard is a TxnOffsetCommit's KIP-890 verification guard (none
	// when zero): the flush appends its producer's records under it, if
	// the step found it still valid.
	txnGuard txnGuard
}

// txnGuard is the verification guard (partition.BeginTxnVerification) a
// producer's transactional offset commit was verified under.
type txnGuard struct {
	producerID int64
	guard      uint64
	// passed is set by the step, on the shard's goroutine, once the guard
	// passed partition.CheckTxnVerification. A guard that failed it (a
	// later verification of the producer replaced it) must not become the
	// one the producer's accepted records are appended under: that append
	// would refuse them and fail the shard.
	passed *bool
}

// shard is one loaded __consumer_offsets partition: its owner goroutine is
// the only one touching machine and waiters.
type shard struct {
	shardBase
	c *Coordinator
	// loadedGroups is how many groups the load found, for WaitLoaded's
	// summary line.
	loadedGroups atomic.Int64
	inbox        chan request

	machine    *group.Shard
	part       *partition.Partition
	waiters    map[group.Waiter]chan group.Reply
	nextWaiter group.Waiter
	buf        []byte
	// txnGuards are the verification guards of the transactional offset
	// commits decided since the last flush, by producer id (the first one
	// whose guard passed its check, see txnGuard.passed): the flush
	// appends each producer's batch under its guard, so a marker written
	// since the verification makes the append refuse it, and clears them.
	// The producer id is key enough, as it is for the partition's guards
	// and Kafka's VerificationStateEntry: a batch of another epoch is a
	// batch of its own, and one of an older epoch than the partition
	// knows is refused whatever its guard.
	txnGuards map[int64]uint64
}

func (c *Coordinator) startShardLocked(p, leaderEpoch int32) *shard {
	s := &shard{shardBase: newShardBase(p, leaderEpoch), c: c, inbox: make(chan request, inboxSize),
		waiters: map[group.Waiter]chan group.Reply{}, txnGuards: map[int64]uint64{}}
	c.set.goLocked(s.run)
	return s
}

func (s *shard) nowMs() int64 { return clock.UnixMs(s.c.clock) }

func (s *shard) run() {
	defer close(s.done)
	defer s.failAll()
	if err := s.load(); err != nil {
		s.c.logger.Warn("loading __consumer_offsets partition failed", "partition", s.partition, "err", err)
		s.drop(ErrCoordinatorLoadInProgress)
		return
	}
	s.loaded.Store(true)
	timer := s.c.clock.NewTimer(time.Hour)
	defer timer.Stop()
	retention := s.c.clock.NewTicker(time.Duration(s.c.cfg.OffsetsRetentionCheckIntervalMs) * time.Millisecond)
	defer retention.Stop()
	for {
		if err := s.tickDue(); err != nil {
			s.failed(err)
			return
		}
		s.arm(timer)
		select {
		case <-s.stop:
			return
		case req := <-s.inbox:
			handleQueued(s.inbox, req, s.handle)
		case <-timer.C():
			s.machine.Tick(s.nowMs(), s.c.opts.Image())
		case <-retention.C():
			s.machine.ExpireOffsets(s.nowMs())
		}
		if err := s.flush(); err != nil {
			s.failed(err)
			return
		}
	}
}

// tickDue runs the deadlines already due (a zero initial delay, a member
// expiring while steps were handled) without waiting for the timer.
func (s *shard) tickDue() error {
	for range 3 {
		d := s.machine.NextDeadline()
		now := s.nowMs()
		if d < 0 || d > now {
			return nil
		}
		s.machine.Tick(now, s.c.opts.Image())
		if err := s.flush(); err != nil {
			return err
		}
	}
	return nil
}

// arm sets the shard's one timer to its earliest deadline.
func (s *shard) arm(timer clock.Timer) {
	timer.Stop()
	d := s.machine.NextDeadline()
	if d < 0 {
		return
	}
	timer.Reset(time.Duration(max(d-s.nowMs(), 1)) * time.Millisecond)
}

func (s *shard) handle(req request) {
	if req.read != nil {
		req.reply <- group.Reply{Value: req.read(s.machine)}
		return
	}
	s.nextWaiter++
	w := s.nextWaiter
	s.waiters[w] = req.reply
	req.step(s.machine, s.nowMs(), w)
	if g := req.txnGuard; g.guard != 0 && g.passed != nil && *g.passed {
		// The first guard noted stays: a producer's guard changes between
		// two of its commits only when the first one's was forgotten (a
		// marker ended its transaction), and under the later guard the
		// batch would carry that commit into the next transaction.
		if _, ok := s.txnGuards[g.producerID]; !ok {
			s.txnGuards[g.producerID] = g.guard
		}
	}
}

// offsetsCommitTimeout is Kafka's offsets.commit.timeout.ms default: how
// long a group write waits for the ISR of its __consumer_offsets partition.
const offsetsCommitTimeout = 5 * time.Second

// flush appends the decided records (one append, one fsync) and releases
// the replies that waited on them.
func (s *shard) flush() error {
	defer clear(s.txnGuards)
	records := s.machine.TakeRecords()
	// Plain records go in one append; a transactional offset commit is a
	// batch of its own producer (one producer batch per append), in the
	// order the records were decided.
	for len(records) > 0 {
		n := 1
		for n < len(records) && sameBatchKind(records[n], records[0]) {
			n++
		}
		if err := s.appendRecords(records[:n]); err != nil {
			return err
		}
		records = records[n:]
	}
	for _, r := range s.machine.Durable() {
		if ch, ok := s.waiters[r.Waiter]; ok {
			delete(s.waiters, r.Waiter)
			ch <- r
		}
	}
	return nil
}

// sameBatchKind says whether two records may share an append: both plain,
// or both of one producer's transaction.
func sameBatchKind(a, b group.Record) bool {
	return a.Transactional == b.Transactional && (!a.Transactional || a.ProducerID == b.ProducerID && a.ProducerEpoch == b.ProducerEpoch)
}

// appendRecords appends records of one kind and waits for the ISR.
func (s *shard) appendRecords(records []group.Record) error {
	batches, err := s.encode(records)
	if err != nil {
		return err
	}
	// Replies wait for the whole ISR (acks=all), as Kafka's group
	// coordinator writes: a commit acknowledged here survives the
	// loss of this broker. offsetsCommitTimeout bounds the wait.
	ctx, cancel := context.WithTimeout(context.Background(), offsetsCommitTimeout)
	defer cancel()
	if r := records[0]; r.Transactional {
		// A marker written since the commit was verified (and checked on
		// the step) refuses the append and fails the shard, which loads
		// again from the log: rare, and never a transaction left open.
		_, err = s.part.AppendAllAsCoordinator(ctx, batches, s.txnGuards[r.ProducerID])
	} else {
		_, err = s.part.AppendAll(ctx, batches)
	}
	if err != nil {
		return fmt.Errorf("append to %s-%d: %w", OffsetsTopic, s.partition, err)
	}
	return nil
}

// encode builds the flush's record batches; a transactional producer's
// records always make one batch (the partition takes one producer batch
// per append).
func (s *shard) encode(records []group.Record) ([]byte, error) {
	opts := coordinatorBatchOptions(s.nowMs())
	if r := records[0]; r.Transactional {
		opts.ProducerID, opts.ProducerEpoch, opts.Transactional = r.ProducerID, r.ProducerEpoch, true
	}
	var err error
	s.buf, err = encodeBatches(s.buf[:0], opts, len(records), func(i int) ([]byte, []byte) { return records[i].Key, records[i].Value })
	return s.buf, err
}

// failed ends a shard whose append failed: its memory may now differ from
// the log, so it is dropped, to be loaded again by the next Refresh.
func (s *shard) failed(err error) {
	s.c.logger.Warn("group coordinator shard unloaded", "partition", s.partition, "err", err)
	code := ErrCoordinatorNotAvailable
	if errors.Is(err, partition.ErrNotLeader) || errors.Is(err, partition.ErrUnknownTopicOrPartition) {
		code = ErrNotCoordinator
	}
	s.drop(code)
}

// drop removes the shard from the coordinator (if still there).
func (s *shard) drop(err error) { s.c.set.drop(s, err) }

// failAll answers every waiting caller and queued step as the shard ends.
func (s *shard) failAll() {
	err := s.exitErr()
	for w, ch := range s.waiters {
		ch <- group.Reply{Waiter: w, Err: err}
	}
	s.waiters = nil
	answerQueued(s.inbox, func(req request) { req.reply <- group.Reply{Err: err} })
}

// load replays the partition from its start to rebuild the shard's groups.
func (s *shard) load() error {
	p, err := s.c.opts.Partitions.Partition(OffsetsTopic, s.partition)
	if err != nil {
		return err
	}
	s.part = p
	s.machine = group.NewShard(s.c.groupCfg)
	now := s.nowMs()
	skipped := 0
	s.buf, err = replayPartition(p, OffsetsTopic, s.partition, s.stop, s.buf, func(batch []byte, h *record.Header) error {
		n, err := s.loadBatch(batch, h, now)
		skipped += n
		return err
	})
	if err != nil {
		return err
	}
	if skipped > 0 {
		s.c.logger.Warn("skipped unreadable __consumer_offsets records", "partition", s.partition, "records", skipped)
	}
	// Debug: a start loads up to offsets.topic.num.partitions (50) shards,
	// which WaitLoaded sums up in one line.
	s.loadedGroups.Store(int64(s.machine.NumGroups()))
	s.c.logger.Debug("loaded group coordinator shard", "partition", s.partition, "groups", s.machine.NumGroups())
	return nil
}
