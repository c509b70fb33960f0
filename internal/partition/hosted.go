package partition

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/purgatory"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/replica"
	"github.com/sluicelog/sluice/internal/vfs"
)

// leadership is a partition's role as of the last Refresh. It is replaced
// whole (under the gate), so readers load it without a lock.
type leadership struct {
	leader      int32
	leaderEpoch int32
	isLeader    bool
	stopped     bool // deleted, or the Manager closed
}

// Partition is one hosted partition.
//
// Locks, in the order they are taken: a producer's appendMu, then gate, then
// the short leaf locks (producerTable.mu, epochMu) which are never held
// while taking another. snapshotMu is taken before gate.
type Partition struct {
	tp      log.TopicPartition
	topicID metadata.UUID
	log     *log.Log
	logs    *log.Manager
	fs      vfs.FS
	clock   clock.Clock
	logger  *slog.Logger

	// gate is Kafka's leaderIsrUpdateLock: every append holds it shared,
	// so appends run concurrently and share the log's group-commit fsync;
	// a leadership change and a producer-state snapshot hold it
	// exclusively, so neither sees an append half done (its batches in the
	// log but not yet in the producer state, or stamped with an old epoch
	// after the new epoch's cache entry).
	gate     sync.RWMutex
	role     atomic.Pointer[leadership]
	settings atomic.Pointer[appendSettings]
	// highWatermark is what readers are served up to. On the leader it is
	// replica.LeaderState's (the minimum log end offset over the ISR); on a
	// follower, the leader's as last fetched, capped by the local log end.
	highWatermark atomic.Int64

	// replMu guards the replication state; a leaf lock, like epochMu.
	replMu      sync.Mutex
	leaderState *replica.LeaderState // while this node leads the partition
	// isrLen is the size of leaderState's committed ISR plus one while
	// this node leads (0: not leading), set with leaderState under replMu,
	// so that an acks=all append checks min.insync.replicas, twice, without
	// taking replMu or copying the ISR (LeaderState.ISR).
	isrLen     atomic.Int32
	alterISR   func(ISRProposal) error
	isrChanged func(shrunk bool) // nil: nobody counts ISR changes
	// lagTimeMaxMs and brokerEligible (registered and unfenced in the
	// newest image) decide which followers may be proposed into the ISR.
	lagTimeMaxMs   int64
	brokerEligible func(id int32) bool

	producers *producerTable

	epochMu sync.Mutex
	epochs  replica.LeaderEpochCache
	// epochsUnpersisted: the cache differs from the checkpoint (becoming
	// leader added an epoch, or loading dropped entries past the log
	// end); the next append writes it, before its records (see
	// becomeLeaderEpoch, loadLeaderEpochs).
	epochsUnpersisted bool
	// epochsDeleted (under epochMu): the log is deleted, its path maybe a
	// new log's, so the cache is never written again (see unhost).
	epochsDeleted bool

	snapshotMu         sync.Mutex
	lastSnapshotOffset int64 // log end offset of the newest snapshot written or loaded
	deleted            bool  // under snapshotMu: the log is deleted, its path maybe a new log's
	// producerResets counts, under snapshotMu, the truncations that
	// reloaded the producer state: a snapshot captured before one is
	// dropped by its sweep (snapshot_sweep.go).
	producerResets uint64

	// watchers wake on a high watermark move (consumer fetches, acks=all
	// produces); appendWatchers on a leader append (follower fetches).
	// Both wake when the partition stops being led here.
	watchers       purgatory.Watchers
	appendWatchers purgatory.Watchers

	// enqueueFault, nil but in tests, runs once the log queued an append,
	// before enqueueLocked returns: tests panic in it, as a bug inside
	// log.Enqueue after it took the batches would.
	enqueueFault func()
	// deleteRecordsFault, nil but in tests, runs once DeleteRecordsBefore
	// found this node leading, before it moves the log start.
	deleteRecordsFault func()
}

// leaderEpochCheckpointFile is Kafka's name for the leader-epoch cache file
// in a partition directory (format in internal/replica).
const leaderEpochCheckpointFile = "leader-epoch-checkpoint"

// maxStateFileBytes bounds what loading reads of a leader-epoch checkpoint.
const maxStateFileBytes = 32 << 20

func (p *Partition) nowMs() int64 { return p.clock.Now().UnixMilli() }

func (p *Partition) path(name string) string { return p.log.Dir() + "/" + name }

// leaderRole returns the role if this node leads the partition.
func (p *Partition) leaderRole() (*leadership, error) {
	r := p.role.Load()
	if !r.isLeader {
		return r, fmt.Errorf("partition %s (leader %d, epoch %d): %w", p.tp, r.leader, r.leaderEpoch, ErrNotLeader)
	}
	return r, nil
}

// Append validates produce batches and appends them, deduplicating retries
// of idempotent producers. It returns once the batches are durable under
// the topic's flush policy; the high watermark then covers them.
func (p *Partition) Append(records []byte) (AppendResult, error) {
	return p.appendFrom(records, appendOrigin{})
}

// AppendVerified is Append for a transactional batch whose membership in
// its producer's transaction the coordinator confirmed under guard (see
// BeginTxnVerification).
func (p *Partition) AppendVerified(records []byte, guard uint64) (AppendResult, error) {
	return p.appendFrom(records, appendOrigin{guard: guard})
}

// appendOrigin says who appends, and under which checks.
type appendOrigin struct {
	// coordinator: a coordinator's batches (Kafka's
	// AppendOrigin.COORDINATOR): a group coordinator's transactional
	// offset commits carry their producer's id and epoch but no sequence,
	// so for them only the epoch and the transaction state are checked.
	coordinator bool
	// guard is the KIP-890 verification guard the batch was verified
	// under; 0: not verified.
	guard uint64
}

// pendingAppend is an append whose batches are queued in the log (or a
// duplicate whose original may still be): finish completes it. Until then
// it holds the gate shared, its producer's entry pinned, and the
// recompression buffer the queued bytes may live in.
type pendingAppend struct {
	p     *Partition
	info  log.AppendInfo
	role  *leadership
	dup   *producerBatch // a retry: wait for the original, append nothing
	entry *producerEntry
	buf   *recompressBuffer
}

// appendFrom appends batches from origin.
func (p *Partition) appendFrom(records []byte, origin appendOrigin) (AppendResult, error) {
	pa, err := p.startAppend(records, origin)
	if err != nil {
		return AppendResult{LogAppendTimeMs: -1}, err
	}
	return pa.finish()
}

// startAppend checks the batches and queues them in the log's next write
// round: the half of an append that must run in request order. On success
// the caller must call finish, from any goroutine.
func (p *Partition) startAppend(records []byte, origin appendOrigin) (pendingAppend, error) {
	nowMs := p.nowMs()
	settings := p.settings.Load()
	idempotent, err := p.checkBatches(records, settings, nowMs, origin.coordinator)
	if err != nil {
		return pendingAppend{}, err
	}
	records, buf, err := p.applyRecordRules(records, settings)
	if err != nil {
		return pendingAppend{}, err
	}
	var pa pendingAppend
	if idempotent != nil {
		pa, err = p.startIdempotent(records, idempotent, settings, nowMs, origin)
	} else {
		pa, err = p.startPlain(records, settings)
	}
	if err != nil {
		releaseRecompressBuffer(buf)
		return pendingAppend{}, err
	}
	pa.buf = buf
	return pa, nil
}

// startPlain queues batches of no idempotent producer.
func (p *Partition) startPlain(records []byte, settings *appendSettings) (pa pendingAppend, err error) {
	p.gate.RLock()
	queued := notQueued // the log fills it as it takes the batches
	defer p.recoverQueueing(&pa, &err, func() {
		p.waitQueuedAfterPanic(queued)
		p.gate.RUnlock()
	})
	role, err := p.leaderRole()
	if err == nil {
		var info log.AppendInfo
		if info, err = p.enqueueLocked(records, role, settings, &queued); err == nil {
			return pendingAppend{p: p, info: info, role: role}, nil
		}
	}
	p.gate.RUnlock()
	return pendingAppend{}, err
}

// startIdempotent checks the batch against its producer's state and
// queues it, holding the producer's lock until its offsets are assigned
// and recorded, so two batches of one producer cannot pass the check
// together; the wait for the write comes after (finish), so the
// producer's next batch (pipelined on its connection) can join the same
// write round.
func (p *Partition) startIdempotent(records []byte, h *record.Header, settings *appendSettings, nowMs int64, origin appendOrigin) (pa pendingAppend, err error) {
	entry := p.producers.acquire(h.ProducerID, nowMs)
	entry.appendMu.Lock()
	p.gate.RLock()
	queued := notQueued // the log fills it as it takes the batch
	defer p.recoverQueueing(&pa, &err, func() {
		p.settleIdempotentPanic(entry, h, queued, nowMs)
		entry.appendMu.Unlock()
		p.gate.RUnlock()
		p.producers.release(entry)
	})
	info, role, dup, err := p.enqueueIdempotentLocked(records, h, settings, nowMs, origin, entry, &queued)
	if err == nil && dup == nil {
		p.recordQueued(entry, h, info, nowMs)
	}
	entry.appendMu.Unlock()
	if err != nil {
		p.gate.RUnlock()
		p.producers.release(entry)
		return pendingAppend{}, err
	}
	return pendingAppend{p: p, info: info, role: role, dup: dup, entry: entry}, nil
}

// settleIdempotentPanic puts right what a panic while an idempotent
// batch was queued left behind (the gate and the producer's lock still
// held). Before the log took the batch: the transaction the append opened
// provisionally, or it stays in the open set for ever, holding the LSO,
// for a producer whose entry, still unknown, release drops (and whose
// marker is then ignored). It goes before the producer's lock: released
// first, the producer's next batch, waiting for that lock, could find the
// transaction open, pass its guard check on it (consumeGuard: an open
// transaction needs no guard, even one a marker voided) and take it over,
// or a marker could end it with no batch of it in the log. After, as
// the log said through queued (even when the panic came from inside
// log.Enqueue): the producer's state must hold the batch, whatever the
// panic cut short of recording it (settleRecordLocked), and the append
// waits for the batch's round (waitQueuedAfterPanic; the producer's next
// batch waits with it, on this path of a bug only).
func (p *Partition) settleIdempotentPanic(entry *producerEntry, h *record.Header, queued log.AppendInfo, nowMs int64) {
	if queued.LastOffset < 0 {
		p.producers.cancelProvisional(entry)
		return
	}
	p.producers.settleRecord(entry, h, queuedBatch(h, queued), nowMs)
	p.waitQueuedAfterPanic(queued)
}

// notQueued is a log.AppendOptions.Queued before the log took anything.
var notQueued = log.AppendInfo{FirstOffset: -1, LastOffset: -1, LogAppendTimeMs: -1}

// waitQueuedAfterPanic waits for the round of batches the log took
// (queued) before a panic failed their append (the gate still held):
// their bytes are the caller's, who recycles them once the append failed
// (the request's frame, the recompression buffer), so the log must be
// done with them first, as finish would have waited. Written, they count
// toward the high watermark as finish would have counted them: else it
// stays below them until the next append, and a retry answered as their
// duplicate with acks=all waits for it until its timeout.
func (p *Partition) waitQueuedAfterPanic(queued log.AppendInfo) {
	if queued.LastOffset < 0 {
		return
	}
	if _, err := p.log.WaitDurable(queued.LastOffset + 1); err != nil {
		p.logger.Warn("the append that panicked was not written", "partition", p.tp.String(), "err", err)
		return
	}
	p.leaderAppended(queued.LastOffset+1, p.role.Load().leaderEpoch)
}

// recoverQueueing turns a panic while an append is queued under the gate
// (a bug, not an I/O error) into the append's failure, after release
// gives back what the append held: the gate above all, or every later
// leadership change, checkpoint and producer-state snapshot of the
// partition would wait for it for ever, as would the producer's next
// batch for its lock. The batches may or may not be queued in the log
// (batches the log took are written before release returns,
// waitQueuedAfterPanic); the error tells the client nothing was
// acknowledged, as a timeout does.
// The produce path guards its own steps too (api.produceRun.guard), but
// by then the gate is leaked: only here is it known to be held.
func (p *Partition) recoverQueueing(pa *pendingAppend, err *error, release func()) {
	r := recover()
	if r == nil {
		return
	}
	release()
	p.logger.Error("queueing an append panicked", "partition", p.tp.String(), "panic", r, "stack", string(debug.Stack()))
	*pa = pendingAppend{}
	*err = fmt.Errorf("partition %s: panic while queueing an append: %v", p.tp, r)
}

// finish waits until the queued append is durable, advances the high
// watermark and lets go of what startAppend held.
func (pa *pendingAppend) finish() (AppendResult, error) {
	p := pa.p
	defer func() {
		p.gate.RUnlock()
		if pa.entry != nil {
			p.producers.release(pa.entry)
		}
		releaseRecompressBuffer(pa.buf)
	}()
	if dup := pa.dup; dup != nil {
		// The original may still be in its write round (queued by a
		// request that has not been answered): a retry is acknowledged
		// only once the original is durable, and fails if it never is.
		logStart, err := p.log.WaitDurable(dup.lastOffset + 1)
		if err != nil {
			return AppendResult{LogAppendTimeMs: -1}, fmt.Errorf("partition %s: %w", p.tp, err)
		}
		return AppendResult{BaseOffset: dup.firstOffset, LastOffset: dup.lastOffset, LogAppendTimeMs: -1,
			LogStartOffset: logStart, Duplicate: true}, nil
	}
	return p.completeLocked(pa.info, pa.role)
}

// enqueueIdempotentLocked is startIdempotent's part under the producer's
// lock (and the gate): the sequence check, then either the duplicate's
// original offsets, or the batch queued in the log, which startIdempotent
// then records in the producer's state with its assigned offsets
// (recordQueued). Recording it before it is
// durable is safe: a write or fsync failure fails the log for good (so
// nothing after it is acknowledged, a retried duplicate included), and a
// snapshot of the producer state takes the gate exclusively, so it never
// sees a batch whose append is still in flight.
func (p *Partition) enqueueIdempotentLocked(records []byte, h *record.Header, settings *appendSettings, nowMs int64,
	origin appendOrigin, entry *producerEntry, queued *log.AppendInfo) (log.AppendInfo, *leadership, *producerBatch, error) {
	role, err := p.leaderRole()
	if err != nil {
		return log.AppendInfo{}, nil, nil, err
	}
	dup, err := p.producers.check(entry, h, origin.coordinator)
	if err == nil && dup == nil && origin.guard != 0 {
		// A duplicate appends nothing, so opens nothing: it is answered
		// before the transaction is looked at, as Kafka answers it, even
		// when a marker ended the transaction since its produce began
		// (the retry of a batch under TxnOpenGuard), and it leaves a
		// pending guard to the batch that opens the transaction.
		err = p.producers.consumeGuard(entry, origin.guard)
	}
	if err != nil {
		return log.AppendInfo{}, nil, nil, fmt.Errorf("partition %s: producer %d epoch %d sequence %d: %w",
			p.tp, h.ProducerID, h.ProducerEpoch, h.BaseSequence, err)
	}
	if dup != nil {
		return log.AppendInfo{}, role, dup, nil
	}
	provisional := p.producers.beginProvisional(entry, h, p.log.LogEndOffset())
	info, err := p.enqueueLocked(records, role, settings, queued)
	if err != nil {
		if provisional {
			p.producers.cancelProvisional(entry)
		}
		return info, nil, nil, err
	}
	return info, role, nil, nil
}

// recordQueued records a batch the log queued in its producer's state,
// with its assigned offsets (the producer's lock and the gate held).
func (p *Partition) recordQueued(entry *producerEntry, h *record.Header, info log.AppendInfo, nowMs int64) {
	p.producers.record(entry, h, queuedBatch(h, info), nowMs)
}

// queuedBatch is what the producer's state remembers of a batch the log
// queued.
func queuedBatch(h *record.Header, info log.AppendInfo) producerBatch {
	maxTimestamp := h.MaxTimestamp
	if info.LogAppendTimeMs >= 0 {
		maxTimestamp = info.LogAppendTimeMs
	}
	return producerBatch{firstSeq: h.BaseSequence, lastSeq: lastSequence(h),
		firstOffset: info.FirstOffset, lastOffset: info.LastOffset, maxTimestamp: maxTimestamp}
}

// appendLocked appends to the log (gate held shared) and advances the high
// watermark.
func (p *Partition) appendLocked(records []byte, role *leadership, settings *appendSettings) (AppendResult, error) {
	info, err := p.enqueueLocked(records, role, settings, nil)
	if err != nil {
		return AppendResult{LogAppendTimeMs: -1}, err
	}
	return p.completeLocked(info, role)
}

// enqueueLocked queues the batches in the log's next write round (gate
// held shared), stamped with the leader epoch; completeLocked finishes
// the append. queued, if not nil, is filled as the log takes the batches
// (log.AppendOptions.Queued), for the recovery from a panic.
func (p *Partition) enqueueLocked(records []byte, role *leadership, settings *appendSettings, queued *log.AppendInfo) (log.AppendInfo, error) {
	// Records of an epoch the checkpoint does not know could outlive a
	// crash with the wrong epoch history, so the append waits for the
	// checkpoint: refused now, the producer retries.
	if err := p.persistPendingEpoch(); err != nil {
		// ErrStorage: clients retry a KAFKA_STORAGE_ERROR.
		return log.AppendInfo{}, fmt.Errorf("partition %s: %w: writing the leader epoch checkpoint before the epoch's first records: %w", p.tp, log.ErrStorage, err)
	}
	info, err := p.log.Enqueue(records, log.AppendOptions{LeaderEpoch: role.leaderEpoch, LogAppendTime: settings.logAppendTime, Queued: queued})
	if err != nil {
		return info, fmt.Errorf("partition %s: %w", p.tp, err)
	}
	if p.enqueueFault != nil {
		p.enqueueFault()
	}
	return info, nil
}

// completeLocked waits until the queued append is durable (gate still held
// shared) and advances the high watermark.
func (p *Partition) completeLocked(info log.AppendInfo, role *leadership) (AppendResult, error) {
	logStart, err := p.log.WaitDurable(info.LastOffset + 1)
	if err != nil {
		return AppendResult{LogAppendTimeMs: -1}, fmt.Errorf("partition %s: %w", p.tp, err)
	}
	// Becoming leader assigned this epoch already; this only matters if
	// persisting that entry failed.
	if err := p.assignEpoch(role.leaderEpoch, info.FirstOffset); err != nil {
		p.logger.Warn("leader epoch checkpoint failed", "err", err)
	}
	// The append is durable here; it is committed once the ISR has it
	// (at once for a single replica). Appends sharing a round may return
	// in any order: leaderAppended keeps the largest end.
	p.leaderAppended(info.LastOffset+1, role.leaderEpoch)
	return AppendResult{BaseOffset: info.FirstOffset, LastOffset: info.LastOffset,
		LogAppendTimeMs: info.LogAppendTimeMs, LogStartOffset: logStart}, nil
}

func (p *Partition) advanceHighWatermark(to int64) {
	for {
		cur := p.highWatermark.Load()
		if to <= cur {
			return
		}
		if p.highWatermark.CompareAndSwap(cur, to) {
			p.watchers.Notify()
			return
		}
	}
}

// checkBatches applies the produce rules to every batch header before
// anything is written. It returns the header of the batch when the append
// is one idempotent batch.
func (p *Partition) checkBatches(records []byte, settings *appendSettings, nowMs int64, coordinator bool) (*record.Header, error) {
	var idempotent *record.Header
	n := 0
	for rest := records; len(rest) > 0; n++ {
		_, next, h, err := record.NextBatch(rest)
		if err != nil {
			return nil, fmt.Errorf("partition %s: batch %d: %w", p.tp, n, err)
		}
		if err := checkBatch(&h, settings, nowMs, coordinator); err != nil {
			return nil, fmt.Errorf("partition %s: batch %d at offset %d: %w", p.tp, n, p.log.LogEndOffset(), err)
		}
		if h.HasProducerID() {
			idempotent = &h
		}
		rest = next
	}
	if n == 0 {
		return nil, fmt.Errorf("partition %s: no record batches: %w", p.tp, record.ErrInvalidRecord)
	}
	if idempotent != nil && n > 1 {
		// Kafka allows one batch per partition in produce v3+; for an
		// idempotent producer the sequence check depends on it.
		return nil, fmt.Errorf("partition %s: %d batches with an idempotent producer, want one: %w", p.tp, n, record.ErrInvalidRecord)
	}
	return idempotent, nil
}

func checkBatch(h *record.Header, settings *appendSettings, nowMs int64, coordinator bool) error {
	if size := int64(h.Size()); size > settings.maxMessageBytes {
		return fmt.Errorf("%d bytes, max.message.bytes %d: %w", size, settings.maxMessageBytes, ErrMessageTooLarge)
	}
	switch {
	case coordinator && h.IsControl():
		return fmt.Errorf("coordinators may not write control batches: %w", record.ErrInvalidRecord)
	case !coordinator:
		if err := h.CheckClientOrigin(); err != nil {
			return err
		}
	}
	if h.IsTransactional() && !h.HasProducerID() {
		return fmt.Errorf("transactional batch without a producer id: %w", record.ErrInvalidRecord)
	}
	if settings.logAppendTime {
		return nil // the broker's clock replaces the producer's
	}
	for _, ts := range []int64{h.FirstTimestamp, h.MaxTimestamp} {
		if !timestampInRange(ts, nowMs, settings) {
			return fmt.Errorf("timestamp %d, broker time %d, allowed %d ms before and %d ms after: %w",
				ts, nowMs, settings.timestampBeforeMaxMs, settings.timestampAfterMaxMs, ErrInvalidTimestamp)
		}
	}
	return nil
}

// timestampInRange checks a CreateTime timestamp against the broker's
// clock. Differences are taken unsigned, so producer timestamps near the
// int64 limits cannot overflow into acceptance. -1 means "no timestamp",
// which Kafka accepts.
func timestampInRange(ts, nowMs int64, s *appendSettings) bool {
	switch {
	case ts == -1:
		return true
	case ts < nowMs:
		return uint64(nowMs)-uint64(ts) <= uint64(s.timestampBeforeMaxMs)
	default:
		return uint64(ts)-uint64(nowMs) <= uint64(s.timestampAfterMaxMs)
	}
}

// Read returns batches from offset up to the high watermark.
func (p *Partition) Read(offset int64, opts ReadOptions) (ReadResult, error) {
	if err := p.CheckLeaderEpoch(opts.CurrentLeaderEpoch); err != nil {
		return ReadResult{}, err
	}
	if _, err := p.leaderRole(); err != nil {
		return ReadResult{}, err
	}
	hw := p.highWatermark.Load()
	lso := p.lastStableOffset(hw)
	bound := hw
	switch {
	case opts.ToLogEnd:
		bound = -1
	case opts.ReadCommitted:
		bound = lso
	}
	logOpts := readOptionsTo(opts, bound)
	logOpts.UpperOffset = opts.ReadCommitted
	slice, err := p.log.Read(offset, logOpts)
	if err != nil {
		return ReadResult{}, fmt.Errorf("partition %s: read at %d: %w", p.tp, offset, err)
	}
	res := ReadResult{Records: slice, HighWatermark: hw, LastStableOffset: lso,
		LogStartOffset: p.log.LogStartOffset(), LogEndOffset: p.log.LogEndOffset()}
	if opts.ReadCommitted && slice.Size > 0 {
		res.AbortedTxns = p.log.AbortedTxns(offset, min(lso, slice.UpperOffset))
	}
	return res, nil
}

// readOptionsTo is a read bounded by opts and by maxOffset (-1: the log end).
func readOptionsTo(opts ReadOptions, maxOffset int64) log.ReadOptions {
	return log.ReadOptions{MaxBytes: max(int(opts.MaxBytes), 0), MaxOffset: maxOffset, MinOneBatch: opts.MinOneBatch}
}

// Offsets returns the partition's offsets.
func (p *Partition) Offsets() Offsets {
	hw := p.highWatermark.Load()
	return Offsets{LogStartOffset: p.log.LogStartOffset(), HighWatermark: hw, LogEndOffset: p.log.LogEndOffset(),
		LastStableOffset: p.lastStableOffset(hw)}
}

// LeaderEpoch is the partition's leader epoch in the newest image.
func (p *Partition) LeaderEpoch() int32 { return p.role.Load().leaderEpoch }

// TopicPartition names the partition.
func (p *Partition) TopicPartition() log.TopicPartition { return p.tp }

// Size is the bytes of the partition's log segments on disk, as
// DescribeLogDirs reports it.
func (p *Partition) Size() int64 { return p.log.Size() }

// CheckLeaderEpoch compares a request's current leader epoch with ours; a
// negative one (-1: the client does not know) skips the check.
func (p *Partition) CheckLeaderEpoch(current int32) error {
	if current < 0 {
		return nil
	}
	ours := p.role.Load().leaderEpoch
	switch {
	case current < ours:
		return fmt.Errorf("partition %s: request epoch %d, leader epoch %d: %w", p.tp, current, ours, ErrFencedLeaderEpoch)
	case current > ours:
		return fmt.Errorf("partition %s: request epoch %d, leader epoch %d: %w", p.tp, current, ours, ErrUnknownLeaderEpoch)
	}
	return nil
}

// OffsetForTimestamp finds the first record at or after ts below the high
// watermark (ListOffsets by timestamp); found is false when there is none.
func (p *Partition) OffsetForTimestamp(ts int64) (offset, timestamp int64, found bool, err error) {
	hw := p.highWatermark.Load()
	res, ok, err := p.log.OffsetForTimestamp(ts)
	if err != nil {
		return -1, -1, false, fmt.Errorf("partition %s: offset for timestamp %d: %w", p.tp, ts, err)
	}
	if !ok || res.Offset >= hw {
		return -1, -1, false, nil
	}
	return res.Offset, res.Timestamp, true, nil
}

// MaxTimestamp finds the record with the largest timestamp (ListOffsets
// MAX_TIMESTAMP); found is false when the log is empty or that record is
// not yet below the high watermark.
func (p *Partition) MaxTimestamp() (offset, timestamp int64, found bool, err error) {
	hw := p.highWatermark.Load()
	res, ok, err := p.log.MaxTimestamp()
	if err != nil {
		return -1, -1, false, fmt.Errorf("partition %s: max timestamp: %w", p.tp, err)
	}
	if !ok || res.Offset >= hw {
		return -1, -1, false, nil
	}
	return res.Offset, res.Timestamp, true, nil
}

// EndOffsetForLeaderEpoch answers OffsetForLeaderEpoch from the leader-epoch
// cache (see replica.LeaderEpochCache.EndOffsetFor).
func (p *Partition) EndOffsetForLeaderEpoch(epoch int32) (leaderEpoch int32, endOffset int64) {
	p.epochMu.Lock()
	defer p.epochMu.Unlock()
	return p.epochs.EndOffsetFor(epoch, p.log.LogEndOffset())
}

// LeaderEpochEntries returns the leader-epoch cache, oldest first.
func (p *Partition) LeaderEpochEntries() []replica.EpochEntry {
	p.epochMu.Lock()
	defer p.epochMu.Unlock()
	return p.epochs.Entries()
}

// DeleteRecordsBefore moves the log start offset to offset (-1: the high
// watermark), which may not pass the high watermark, and returns the new
// log start offset (the low watermark). The leadership check and the
// delete are one step under the gate, as an append's are: a deletion of
// the partition (unhost) takes the gate to stop it, and only then deletes
// the log, after which a topic of the same name may be created with a new
// log under the same name. Checked outside the gate and deleted by name,
// a delete could move that new log's start.
func (p *Partition) DeleteRecordsBefore(offset int64) (lowWatermark int64, err error) {
	p.gate.RLock()
	low, err := p.deleteRecordsBeforeLocked(offset)
	p.gate.RUnlock()
	if err != nil {
		return 0, err
	}
	p.trimEpochsToLogStart()
	return low, nil
}

// deleteRecordsBeforeLocked is DeleteRecordsBefore's part under the gate.
func (p *Partition) deleteRecordsBeforeLocked(offset int64) (int64, error) {
	if _, err := p.leaderRole(); err != nil {
		return 0, err
	}
	if p.deleteRecordsFault != nil {
		p.deleteRecordsFault()
	}
	hw := p.highWatermark.Load()
	if offset == -1 {
		offset = hw
	}
	if offset < 0 || offset > hw {
		return 0, fmt.Errorf("partition %s: delete records before %d, high watermark %d: %w", p.tp, offset, hw, log.ErrOffsetOutOfRange)
	}
	return p.moveLogStartLocked(offset)
}

// moveLogStartLocked moves this partition's own log's start offset (gate
// held), then writes the log start offsets checkpoint, as
// log.Manager.DeleteRecordsBefore does for a log it looks up by name.
func (p *Partition) moveLogStartLocked(offset int64) (int64, error) {
	low, err := p.log.DeleteRecordsBefore(offset)
	if err != nil {
		return 0, fmt.Errorf("partition %s: %w", p.tp, err)
	}
	if err := p.logs.Checkpoint(); err != nil {
		return 0, fmt.Errorf("partition %s: %w", p.tp, err)
	}
	return low, nil
}

// trimEpochsToLogStart forgets the epochs wholly below the log start
// offset once it moved up (DeleteRecords, a follower following its
// leader's, retention), as Kafka's LeaderEpochFileCache.truncateFromStart:
// an OffsetForLeaderEpoch answer must never point below the log start,
// and the cache holds one entry per epoch still in the log. A checkpoint
// that fails to write is written by the next append (epochsUnpersisted);
// until then the file's extra entries lie below the log start, which
// loading trims them to.
func (p *Partition) trimEpochsToLogStart() {
	p.epochMu.Lock()
	defer p.epochMu.Unlock()
	if p.epochs.TruncateFromStart(p.log.LogStartOffset()) {
		if err := p.persistEpochsLocked(); err != nil {
			p.logger.Warn("leader epoch checkpoint failed", "err", err)
		}
	}
}

// Producers lists the idempotent producers with state on this partition.
func (p *Partition) Producers() []ProducerState { return p.producers.states(p.nowMs()) }

// Watch registers ch for a non-blocking send whenever the high watermark
// advances or the partition stops being led here (deleted, moved, the
// broker stopping); call cancel when done waiting. If the partition is not
// led any more, ch is signalled at once.
func (p *Partition) Watch(ch chan<- struct{}) (cancel func()) {
	cancel = p.watchers.Add(ch)
	if !p.role.Load().isLeader {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	return cancel
}

// setRole applies the image's view of the partition. Becoming leader in a
// new epoch records the epoch's start offset before any append can carry
// it, and starts the leader's replication state; losing leadership drops
// it and wakes everything parked on the partition.
func (p *Partition) setRole(r leadership, pi *metadata.PartitionImage, localID int32) error {
	if *p.role.Load() == r {
		return nil
	}
	p.gate.Lock()
	p.producers.voidGuards() // a marker may have passed this node by (see there)
	var err error
	if r.isLeader {
		p.becomeLeaderEpoch(r.leaderEpoch, p.log.LogEndOffset())
		p.becomeLeaderLocked(pi, localID)
	} else {
		p.stopLeadingLocked()
	}
	p.role.Store(&r)
	p.gate.Unlock()
	if !r.isLeader {
		p.watchers.Notify() // parked fetches and produces find out at once
		p.appendWatchers.Notify()
	}
	return err
}

// becomeLeaderEpoch records a new leader's epoch at the log end in the
// cache, and leaves writing the checkpoint to the epoch's first append: an
// entry starting at the log end is dropped by the next open anyway (see
// loadLeaderEpochs) until a record follows it, so writing it now bought
// nothing and cost each partition two fsyncs whenever leadership moved,
// 20,000 for a restarted node with 10,000 partitions.
func (p *Partition) becomeLeaderEpoch(epoch int32, logEndOffset int64) {
	p.epochMu.Lock()
	defer p.epochMu.Unlock()
	if latest, ok := p.epochs.Latest(); epoch < 0 || (ok && (epoch < latest.Epoch || (epoch == latest.Epoch && logEndOffset >= latest.StartOffset))) {
		return
	}
	p.epochs.Assign(epoch, logEndOffset)
	p.epochsUnpersisted = true
}

// persistPendingEpoch writes the checkpoint if becoming leader left an
// epoch unwritten, or loading dropped entries the file still has: before
// the next records, so a crash never leaves records of an epoch the
// checkpoint does not know, nor records under an entry the cache dropped.
func (p *Partition) persistPendingEpoch() error {
	p.epochMu.Lock()
	defer p.epochMu.Unlock()
	if !p.epochsUnpersisted {
		return nil
	}
	if err := p.persistEpochsLocked(); err != nil {
		return err
	}
	p.epochsUnpersisted = false
	return nil
}

// assignEpoch records epoch's start offset in the cache if it is newer
// than the latest entry (or the same epoch starting earlier), persisting
// the cache before returning.
func (p *Partition) assignEpoch(epoch int32, startOffset int64) error {
	p.epochMu.Lock()
	defer p.epochMu.Unlock()
	if latest, ok := p.epochs.Latest(); epoch < 0 || (ok && (epoch < latest.Epoch || (epoch == latest.Epoch && startOffset >= latest.StartOffset))) {
		return nil // the common case on the append path: nothing new
	}
	p.epochs.Assign(epoch, startOffset)
	return p.persistEpochsLocked()
}

func (p *Partition) persistEpochsLocked() error {
	if p.epochsDeleted {
		return nil
	}
	if err := vfs.WriteFileAtomic(p.fs, p.path(leaderEpochCheckpointFile), replica.EncodeCheckpoint(p.epochs.Entries())); err != nil {
		// The file may hold the old entries or the new: the next append
		// writes it again before its records.
		p.epochsUnpersisted = true
		return fmt.Errorf("partition %s: %w", p.tp, err)
	}
	p.epochsUnpersisted = false // the whole cache is written
	return nil
}

// loadLeaderEpochs reads the leader-epoch checkpoint, dropping entries at or
// beyond the log end (a truncation or a crash removed what they started).
func (p *Partition) loadLeaderEpochs() error {
	data, err := vfs.ReadFile(p.fs, p.path(leaderEpochCheckpointFile), maxStateFileBytes)
	if err != nil && !isNotExist(err) {
		return fmt.Errorf("partition %s: %w", p.tp, err)
	}
	p.epochMu.Lock()
	defer p.epochMu.Unlock()
	if err == nil {
		entries, perr := replica.ParseCheckpoint(data)
		if perr == nil {
			cache, _ := replica.NewLeaderEpochCache(entries)
			p.epochs = *cache
		} else {
			// Derived data: the scan of the log tail re-adds what it can,
			// becoming leader adds the current epoch.
			p.logger.Warn("ignoring unreadable leader epoch checkpoint", "err", perr)
		}
	}
	// The truncations are not persisted now: persisting them cost each
	// partition a file and two fsyncs per restart (an epoch with no
	// records yet, the common case, starts at the log end and is dropped
	// here): 20,000 fsyncs for 10,000 partitions before the node could
	// serve. But the file must lose a dropped entry before the log grows
	// past its start again, or the next open finds records there and
	// keeps an epoch they never had (a follower's appends of an epoch
	// already in the cache write nothing): the next append, leader's or
	// follower's, or a truncation writes it first (persistPendingEpoch,
	// persistEpochsOf).
	changed := p.epochs.TruncateFromEnd(p.log.LogEndOffset())
	changed = p.epochs.TruncateFromStart(p.log.LogStartOffset()) || changed
	p.epochsUnpersisted = changed
	return nil
}

// loadProducers restores producer state: the newest valid snapshot at or
// below the log end offset, then the batch headers from there to the end.
// A crash after the last snapshot loses nothing: the log is the truth and
// the snapshot only shortens the scan.
func (p *Partition) loadProducers() error {
	leo, start := p.log.LogEndOffset(), p.log.LogStartOffset()
	offsets, err := listSnapshots(p.fs, p.log.Dir())
	if err != nil {
		return fmt.Errorf("partition %s: list snapshots: %w", p.tp, err)
	}
	from := start
	p.lastSnapshotOffset = -1
	if leo == start {
		p.lastSnapshotOffset = leo // nothing a snapshot could shorten
	}
	for _, off := range offsets {
		name := p.path(snapshotName(off))
		if off > leo {
			// The log lost its tail (a crash under a relaxed flush policy,
			// a truncation): this state describes batches that are gone.
			if err := p.fs.Remove(name); err != nil {
				return fmt.Errorf("partition %s: %w", p.tp, err)
			}
			continue
		}
		producers, err := p.readSnapshot(name, off)
		if err != nil {
			p.logger.Warn("ignoring producer state snapshot", "file", name, "err", err)
			continue
		}
		p.producers.load(producers)
		from, p.lastSnapshotOffset = max(off, start), off
		break
	}
	// The replay below writes the .txnindex entries of the aborts it
	// meets; entries already there from before a crash are dropped first
	// so the rebuilt ones (with their last stable offsets) stand alone.
	if err := p.log.DropAbortedTxnsFrom(from); err != nil {
		return fmt.Errorf("partition %s: %w", p.tp, err)
	}
	return p.rebuildFrom(from, leo)
}

func (p *Partition) readSnapshot(name string, off int64) ([]snapshotProducer, error) {
	limit := int64(snapshotHeaderSize + p.producers.maxProducers*snapshotMaxBytesFactor)
	data, err := vfs.ReadFile(p.fs, name, limit)
	if err != nil {
		return nil, err
	}
	covered, producers, err := decodeSnapshot(data)
	if err == nil && covered != off {
		err = fmt.Errorf("%w: covers %d, named %d", errInvalidSnapshot, covered, off)
	}
	return producers, err
}

// rebuildFrom replays the batch headers in [from, to) into the producer
// state and the leader-epoch cache. It reads headers only (61 bytes per
// batch), never records.
func (p *Partition) rebuildFrom(from, to int64) error {
	var hdr [record.HeaderSize]byte
	nowMs := p.nowMs()
	epochsChanged := false
	for offset := from; offset < to; {
		slice, err := p.log.Read(offset, log.ReadOptions{MaxBytes: math.MaxInt32, MaxOffset: to})
		if err != nil {
			return fmt.Errorf("partition %s: rebuild producer state at %d: %w", p.tp, offset, err)
		}
		if slice.Size == 0 {
			slice.Release()
			break
		}
		file := slice.File()
		for pos, end := slice.Position, slice.Position+slice.Size; pos < end; {
			if n, err := file.ReadAt(hdr[:], pos); n < len(hdr) {
				slice.Release()
				return fmt.Errorf("partition %s: rebuild producer state: read at %d: %w", p.tp, pos, errors.Join(err, record.ErrTruncated))
			}
			h, err := record.ParseHeader(hdr[:])
			if err != nil {
				slice.Release()
				return fmt.Errorf("partition %s: rebuild producer state: %w", p.tp, err)
			}
			marker, err := readMarker(file, pos, &h)
			if err != nil {
				slice.Release()
				return fmt.Errorf("partition %s: rebuild producer state: %w", p.tp, err)
			}
			changed, err := p.replayHeader(&h, marker, nowMs)
			if err != nil {
				slice.Release()
				return err
			}
			epochsChanged = changed || epochsChanged
			pos += int64(h.Size())
			offset = h.NextOffset()
		}
		slice.Release()
	}
	if epochsChanged {
		p.epochMu.Lock()
		defer p.epochMu.Unlock()
		return p.persistEpochsLocked()
	}
	return nil
}

// replayHeader applies a batch already in the log to the producer state and
// the leader-epoch cache (recovery, and a follower's appends), reporting
// whether the cache gained an epoch the caller must persist. marker is
// the batch's transaction marker, nil for other batches; an ABORT gets
// its .txnindex entry here.
func (p *Partition) replayHeader(h *record.Header, marker *record.Marker, nowMs int64) (epochAdded bool, err error) {
	switch {
	case marker != nil && h.HasProducerID():
		if c, ok := p.producers.replayMarker(h, *marker, nowMs); ok {
			err = p.indexCompleted(c)
		}
	case h.HasProducerID() && !h.IsControl():
		p.producers.replay(h, nowMs)
	}
	p.epochMu.Lock()
	defer p.epochMu.Unlock()
	return assignBatchEpoch(&p.epochs, h), err
}

// assignBatchEpoch records the epoch a batch starts, if it is newer than
// the cache's latest, and reports whether the cache changed.
func assignBatchEpoch(cache *replica.LeaderEpochCache, h *record.Header) bool {
	if latest, ok := cache.Latest(); h.PartitionLeaderEpoch >= 0 && (!ok || h.PartitionLeaderEpoch > latest.Epoch) {
		return cache.Assign(h.PartitionLeaderEpoch, h.BaseOffset)
	}
	return false
}

// maxMarkerBatchBytes bounds what recovery reads of a control batch to
// find its marker: Kafka's are about 80 bytes; a larger one is not a
// transaction marker we wrote, and is skipped like other control batches.
const maxMarkerBatchBytes = 4 << 10

// readMarker reads the transaction marker of the control batch at pos
// (nil for any other batch).
func readMarker(file interface {
	ReadAt([]byte, int64) (int, error)
}, pos int64, h *record.Header) (*record.Marker, error) {
	if !h.IsControl() || h.Size() > maxMarkerBatchBytes {
		return nil, nil
	}
	batch := make([]byte, h.Size())
	if n, err := file.ReadAt(batch, pos); n < len(batch) {
		return nil, fmt.Errorf("read control batch at %d: %w", pos, errors.Join(err, record.ErrTruncated))
	}
	return markerOf(batch), nil
}

// markerOf decodes a control batch's marker; a control batch of another
// kind (or one that does not decode: the log validated its CRC, so it is
// a kind we do not know) is nil.
func markerOf(batch []byte) *record.Marker {
	m, err := record.ParseMarker(batch)
	if err != nil {
		return nil
	}
	return &m
}

// removeSnapshots deletes every producer state snapshot of the log, and
// makes the removals durable: a crash that undid them brought back, at
// the restart, a snapshot a full truncation had dropped.
func (p *Partition) removeSnapshots() error {
	offsets, err := listSnapshots(p.fs, p.log.Dir())
	if err != nil {
		return fmt.Errorf("partition %s: %w", p.tp, err)
	}
	if len(offsets) == 0 {
		return nil
	}
	var errs []error
	for _, off := range offsets {
		if err := p.fs.Remove(p.path(snapshotName(off))); err != nil && !isNotExist(err) {
			errs = append(errs, fmt.Errorf("partition %s: %w", p.tp, err))
		}
	}
	if err := p.fs.SyncDir(p.log.Dir()); err != nil {
		errs = append(errs, fmt.Errorf("partition %s: sync %s: %w", p.tp, p.log.Dir(), err))
	}
	return errors.Join(errs...)
}
