package log

// Group commit, pipelined. Appends queue under the log's lock; waiters
// take on two roles, each held by one goroutine at a time, and drop the
// lock for their I/O, so the two run side by side:
//
//	appender A ──┐ lock: validate, assign offsets [nextOffset..), queue
//	appender B ──┤ (nextOffset moves; nothing is visible to readers yet)
//	appender C ──┘
//	                │ A finds appends queued and writing == false:
//	                ▼ A becomes the writer
//	   A: take the queue ─ unlock ─ pwritev every buffer (rolling segments
//	      as needed) ─ lock ─ publish: index entries, writtenEnd ─ broadcast
//	                │
//	                ▼ always: bytes written, not synced, syncing == false:
//	                  a waiter (A) becomes the syncer
//	   A: target = writtenEnd ─ unlock ─ fdatasync, or a share of a syncfs
//	      (sharedsync.go) ─ lock ─ recoveryPoint = logEndOffset = target
//	      ─ broadcast
//	                │ meanwhile D, E queue: D becomes the writer and writes
//	                │ their round while A's sync runs; it is synced next
//	B, C wake:      ▼ their offsets below durableEnd? return. Not yet? take
//	                  whichever role is free and needed, or wait.
//
// One fsync covers every round written before it began, so N concurrent
// producers pay about one fsync between them, and one arriving during a
// sync waits for the rest of it and one more, not for a whole write and
// sync; no goroutine sits idle to do it. A sync acknowledges only what
// was written when it began (target), or what a shared syncfs that began
// later covered. The logs of a Manager share their fsyncs too: when
// several wait at once, one syncfs covers them all. A failed write or
// fsync makes l.err sticky: queued and later appends fail and nothing is
// written again (after a failed fsync the page cache state is unknown, so
// nothing may be acknowledged from it).

import (
	"fmt"
	"math"
	"runtime/debug"
	"time"

	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// AppendOptions say how the broker stamps the batches it appends.
type AppendOptions struct {
	// LeaderEpoch, if not negative, is written into every batch's partition
	// leader epoch field (outside the CRC range, so in place).
	LeaderEpoch int32
	// LogAppendTime stamps batches with the broker's clock
	// (message.timestamp.type=LogAppendTime); the CRC is recomputed.
	LogAppendTime bool
	// AsFollower keeps the offsets and leader epochs the leader wrote
	// instead of assigning them: a follower's log must hold the leader's
	// batches byte for byte. The first batch may not start below the log
	// end offset, and batches must follow each other (ErrOffsetsOutOfOrder).
	AsFollower bool
	// Queued, if set, receives the append's info as its batches join the
	// write queue, before Enqueue returns, and is left as it was when they
	// do not: a caller recovering from a panic inside Enqueue (a bug)
	// learns from it whether the log took the batches, whose bytes it
	// must then keep until WaitDurable(Queued.LastOffset+1), and at which
	// offsets. Not for AsFollower.
	Queued *AppendInfo
}

// AppendInfo describes a completed append.
type AppendInfo struct {
	FirstOffset     int64 // base offset of the first batch
	LastOffset      int64 // last offset of the last batch
	LogAppendTimeMs int64 // the stamped time, or -1 for CreateTime
	LogStartOffset  int64

	// truncations is the log's truncation count when the offsets were
	// assigned: a truncation after it may have removed them.
	truncations int64
}

// appendCall is one Append's bytes queued for the writer. The buffer belongs
// to the caller, who is blocked until it is written, so the writer hands it
// to pwritev without copying.
type appendCall struct {
	buf        []byte
	baseOffset int64
	nextOffset int64
}

// Append validates one or more concatenated v2 record batches, assigns their
// offsets in place (records is modified), and returns once they are written
// and, under FlushAlways, fsynced. Concurrent appends are written with one
// pwritev and one fsync: the first waiter becomes the writer for everyone
// queued (group commit without a background goroutine).
func (l *Log) Append(records []byte, opts AppendOptions) (AppendInfo, error) {
	info, err := l.Enqueue(records, opts)
	if err != nil {
		return info, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	err = l.waitDurableLocked(info.LastOffset+1, info.truncations)
	info.LogStartOffset = l.logStartOffset
	return info, err
}

// Enqueue is the first half of Append: it validates the batches, assigns
// their offsets in place and queues them for the next write round, and
// returns without waiting for the write. The caller must then call
// WaitDurable(info.LastOffset+1), which writes the round if nobody else
// is writing, and keep records unchanged until it returns. Splitting the
// two lets a caller queue appends in the order its requests arrived, then
// wait for them together: a pipelining producer's next request joins the
// round (and the fsync) of the one before it instead of waiting behind
// it. info.LogStartOffset is left for WaitDurable to report.
func (l *Log) Enqueue(records []byte, opts AppendOptions) (AppendInfo, error) {
	info := AppendInfo{LogAppendTimeMs: -1}
	if err := validateBatches(records); err != nil {
		return info, fmt.Errorf("log %s: %w", l.dir, err)
	}
	if opts.AsFollower {
		return l.appendAsFollower(records)
	}
	if opts.LogAppendTime {
		info.LogAppendTimeMs = l.nowMs()
		forEachBatch(records, func(b []byte, _ record.Header) { record.SetLogAppendTime(b, info.LogAppendTimeMs) })
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.appendableLocked(len(records)); err != nil {
		return info, err
	}
	info.FirstOffset = l.nextOffset
	next := assignOffsets(records, l.nextOffset, opts.LeaderEpoch)
	info.LastOffset = next - 1
	info.truncations = l.truncations
	l.queue = append(l.queue, appendCall{buf: records, baseOffset: info.FirstOffset, nextOffset: next})
	if opts.Queued != nil {
		*opts.Queued = info
	}
	l.nextOffset = next
	return info, nil
}

// WaitDurable waits until the offsets below next are written and, under
// FlushAlways, fsynced, writing queued rounds itself when no other
// goroutine is; it returns the log start offset then. It is how Enqueue's
// caller completes an append, and how a duplicate of a batch still in
// flight waits for the original. A truncation while it waits fails it;
// one between Enqueue and WaitDurable is caught only when it left the log
// shorter than next, so a caller that truncates (a partition becoming a
// follower) keeps truncation out of that window.
func (l *Log) WaitDurable(next int64) (logStartOffset int64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	err = l.waitDurableLocked(next, l.truncations)
	return l.logStartOffset, err
}

// Write writes the queued appends below next now, on the caller's
// goroutine, if no writer is at work (one that is, or the next, writes
// them otherwise), and returns without waiting for their sync. A caller
// that queued appends to several logs writes them all this way before it
// waits on any (WaitDurable): their rounds are then all written before
// the first of their syncs begins, so a syncfs shared by the log
// directory covers them all at once (sharedsync.go).
//
// Under FlushAlways it also tells the SharedSync that a round waits for
// a sync (SharedSync.Written): with thousands of logs written this way
// by one request, a syncfs starts while the rest are still written.
func (l *Log) Write(next int64) {
	l.mu.Lock()
	if l.writtenEnd >= next || l.writing || l.err != nil || l.closed || len(l.queue) == 0 {
		l.mu.Unlock()
		return
	}
	l.writeLocked()
	owed := l.err == nil && l.cfg.FlushPolicy == FlushAlways && l.recoveryPoint < l.writtenEnd && !l.journaledLocked()
	l.mu.Unlock()
	if owed {
		l.sharedSync.Written()
	}
}

// appendAsFollower appends batches that already carry their offsets.
func (l *Log) appendAsFollower(records []byte) (AppendInfo, error) {
	info := AppendInfo{LogAppendTimeMs: -1}
	first, next, err := batchOffsets(records)
	if err != nil {
		return info, fmt.Errorf("log %s: %w", l.dir, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.appendableLocked(len(records)); err != nil {
		return info, err
	}
	if first < l.nextOffset {
		return info, fmt.Errorf("log %s: follower batch at %d below the log end offset %d: %w", l.dir, first, l.nextOffset, ErrOffsetsOutOfOrder)
	}
	info.FirstOffset, info.LastOffset, info.truncations = first, next-1, l.truncations
	l.queue = append(l.queue, appendCall{buf: records, baseOffset: first, nextOffset: next})
	l.nextOffset = next
	if err := l.waitDurableLocked(next, info.truncations); err != nil {
		return info, err
	}
	info.LogStartOffset = l.logStartOffset
	return info, nil
}

// batchOffsets validates batches that carry their offsets and returns the
// first offset and the one after the last; each batch must start past the
// previous one's last offset.
func batchOffsets(records []byte) (first, next int64, err error) {
	if err := validateBatches(records); err != nil {
		return 0, 0, err
	}
	first = -1
	for rest := records; len(rest) > 0; {
		_, after, h := mustNextBatch(rest)
		if first < 0 {
			first = h.BaseOffset
		} else if h.BaseOffset < next {
			return 0, 0, fmt.Errorf("batch at %d after one ending at %d: %w", h.BaseOffset, next, ErrOffsetsOutOfOrder)
		}
		next = h.BaseOffset + int64(h.LastOffsetDelta) + 1
		rest = after
	}
	return first, next, nil
}

// mustNextBatch splits off the next batch of bytes validateBatches
// accepted. It cannot fail; if it does, the bytes changed under the log or
// validation let something through, and writing on could put offsets or
// index entries that disagree with the bytes on disk, so it stops the
// process rather than skip the batch.
func mustNextBatch(validated []byte) (batch, rest []byte, h record.Header) {
	batch, rest, h, err := record.NextBatch(validated)
	if err != nil {
		panic(fmt.Sprintf("log: a validated record batch no longer parses: %v", err))
	}
	return batch, rest, h
}

// validateBatches checks every batch in full (length, magic, CRC) before any
// offset is assigned, outside the log's lock.
func validateBatches(records []byte) error {
	if len(records) == 0 {
		return fmt.Errorf("%w: no record batches", ErrInvalidRecords)
	}
	for rest := records; len(rest) > 0; {
		batch, next, _, err := record.NextBatch(rest)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidRecords, err)
		}
		if _, err := record.ValidateBatch(batch); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidRecords, err)
		}
		rest = next
	}
	return nil
}

// forEachBatch calls fn for each batch of already validated bytes.
func forEachBatch(records []byte, fn func(batch []byte, h record.Header)) {
	for rest := records; len(rest) > 0; {
		batch, next, h := mustNextBatch(rest)
		fn(batch, h)
		rest = next
	}
}

// assignOffsets writes base offsets (and the leader epoch) into validated
// batches starting at first, returning the offset after the last.
func assignOffsets(records []byte, first int64, leaderEpoch int32) int64 {
	next := first
	for rest := records; len(rest) > 0; {
		batch, after, h := mustNextBatch(rest)
		record.SetBaseOffset(batch, next)
		if leaderEpoch >= 0 {
			record.SetPartitionLeaderEpoch(batch, leaderEpoch)
		}
		next += int64(h.LastOffsetDelta) + 1
		rest = after
	}
	return next
}

func (l *Log) appendableLocked(size int) error {
	switch {
	case l.closed:
		return fmt.Errorf("log %s: %w", l.dir, ErrClosed)
	case l.err != nil:
		return l.err
	case int64(size) > l.cfg.SegmentBytes:
		return fmt.Errorf("log %s: %d bytes: %w (%d)", l.dir, size, ErrRecordBatchTooLarge, l.cfg.SegmentBytes)
	}
	return nil
}

// durableEndLocked is the offset below which appends may be acknowledged.
func (l *Log) durableEndLocked() int64 {
	if l.cfg.FlushPolicy == FlushAlways {
		// With a journal, a round is durable once its copy is (the
		// syncer then moves the log end offset, which only syncs move
		// under this policy); the recovery point waits for the segment.
		if l.journal.j != nil {
			return max(l.recoveryPoint, l.logEndOffset)
		}
		return l.recoveryPoint
	}
	return l.logEndOffset
}

// waitDurableLocked waits until offsets below next are durable, writing the
// queue itself when no one else is. The offsets were assigned when the
// log's truncation count was truncations; a truncation since then may have
// removed them, and waiting on could hang (nothing refills the log) or
// acknowledge another append's records that took the same offsets, so it
// fails instead, even if they had become durable before the truncation.
func (l *Log) waitDurableLocked(next, truncations int64) error {
	gone := func() bool { return l.truncations != truncations || next > l.nextOffset }
	err := l.driveLocked(func() bool { return gone() || l.durableEndLocked() >= next }, nil)
	if err == nil && gone() {
		err = fmt.Errorf("log %s: offsets below %d (next offset now %d): %w", l.dir, next, l.nextOffset, ErrAppendTruncated)
	}
	return err
}

// driveLocked waits until reached holds, taking on whichever role the log
// needs and nobody holds: the writer's, when there is something to write
// (request, if set, asks for a round and is raised just before each round
// it writes), and under FlushAlways the syncer's, when written bytes wait
// for their fsync. The two run side by side, so a round is written while
// the one before it is synced (pipelined group commit). reached is checked
// first, so a caller whose bytes became durable succeeds even if the log
// fails or closes right after. reached must not let its closure escape:
// this is the append path.
func (l *Log) driveLocked(reached func() bool, request *bool) error {
	for !reached() {
		switch {
		case l.err != nil:
			return l.err
		case l.closed:
			return fmt.Errorf("log %s: %w", l.dir, ErrClosed)
		case l.syncDueLocked():
			l.syncLocked()
		case !l.writing && (request != nil || l.writeDueLocked()):
			if request != nil {
				*request = true
			}
			l.driveRoundLocked(reached)
		default:
			l.cond.Wait()
		}
	}
	return nil
}

// driveRoundLocked writes a round as driveLocked's writer, waking the
// other waiters only if the round may have changed something for them.
// When it only wrote bytes that now wait for a sync this caller is about
// to run itself, waking them would have every one of them find nothing to
// do and sleep again: the sync's end wakes them instead. Nothing they
// wait for moved (recovery point, log end offset), no role is free for
// them (the queue is empty and this caller takes the syncer's under the
// same hold of the lock), and the caller cannot return first.
func (l *Log) driveRoundLocked(reached func() bool) {
	recoveryPoint, logEndOffset := l.recoveryPoint, l.logEndOffset
	l.writeRoundLocked()
	if l.err != nil || len(l.queue) > 0 || l.recoveryPoint != recoveryPoint || l.logEndOffset != logEndOffset ||
		reached() || !l.syncDueLocked() {
		l.cond.Broadcast()
	}
}

// writeDueLocked says whether a round has something to do: queued
// appends, or under FlushAlways segments sealed without an fsync (a policy
// changed to always since), which must be synced before the syncer may
// move the recovery point past them.
func (l *Log) writeDueLocked() bool {
	return len(l.queue) > 0 || l.cfg.FlushPolicy == FlushAlways && len(l.unsyncedSealed) > 0
}

// syncDueLocked says whether a caller should become the syncer now: under
// FlushAlways, bytes are written and not yet synced, no sync runs, and no
// writer holds syncs off (rolling a segment or syncing inline).
func (l *Log) syncDueLocked() bool {
	// Written bytes held from readers are synced under any policy: the
	// policy may have changed from always since they were written.
	owed := l.cfg.FlushPolicy == FlushAlways && l.recoveryPoint < l.writtenEnd && l.segmentSyncOwedLocked() ||
		l.logEndOffset < l.writtenEnd
	return owed && !l.syncing && !l.syncsPaused && len(l.unsyncedSealed) == 0
}

// syncLocked is the syncer's turn: it fsyncs the active segment, through
// the log directory's SharedSync, without the lock, while a writer may
// write the next round. Only what was written when it began is covered
// (the log end offset then), unless a syncfs shared with other logs
// covered the rounds published since: a syncfs that began after a round's
// write completed covers it (writtenAt, sharedsync.go). A failure is
// sticky, so nothing written before it can be acknowledged by a later
// success.
func (l *Log) syncLocked() {
	if l.journalSyncLocked() {
		return
	}
	target, writtenAt := l.writtenEnd, l.writtenAt
	s := l.active()
	l.syncing = true
	l.mu.Unlock()
	covered, err := l.timedSync(s.activeFile, writtenAt)
	l.mu.Lock()
	l.syncing = false
	l.cond.Broadcast()
	if err != nil {
		l.failLocked(fmt.Errorf("sync segment %020d: %w", s.baseOffset, err))
		return
	}
	// No roll can happen while syncing (syncsPaused waits for it), so
	// every round published since is in s, which a syncfs covers.
	if covered > 0 && covered > l.writtenAt {
		target = l.writtenEnd
	}
	l.recoveryPoint = max(l.recoveryPoint, target)
	l.logEndOffset = max(l.logEndOffset, target)
	l.lastSyncMs = l.nowMs()
	l.noteOwedLocked()
}

// Flush fsyncs everything appended so far.
func (l *Log) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.flushLocked()
}

func (l *Log) flushLocked() error {
	target := l.nextOffset
	reached := func() bool { return l.recoveryPoint >= target }
	if l.cfg.FlushPolicy == FlushAlways {
		// The syncer syncs whatever rounds write: asking for rounds
		// would write empty ones while a sync runs. The segment itself
		// must become durable, not a journal's copy of its rounds.
		l.journal.realSyncs++
		defer func() { l.journal.realSyncs-- }()
		return l.driveLocked(reached, nil)
	}
	return l.driveLocked(reached, &l.syncRequested)
}

// writeLocked writes the queue as one round: it releases the lock for the
// I/O, then publishes the result and wakes every waiter.
func (l *Log) writeLocked() {
	l.writeRoundLocked()
	l.cond.Broadcast()
}

// writeRoundLocked is writeLocked without the wake-up, which its caller
// owes the waiters.
func (l *Log) writeRoundLocked() {
	if l.err != nil {
		// Never write after a failure: waiters see the sticky error.
		clear(l.queue)
		l.queue = l.queue[:0]
		return
	}
	l.writing = true
	writtenBefore := l.writtenEnd
	calls := l.queue
	l.queue = l.spareQueue[:0]
	req := syncRequest{all: l.syncRequested || l.flushMessagesDueLocked(calls), sealed: l.syncSealedRequested}
	l.syncRequested, l.syncSealedRequested = false, false
	cfg, nowMs := l.cfg, l.nowMs()
	unsynced := l.unsyncedSealed // only the writer and idle-time operations change it

	l.mu.Unlock()
	res, err := l.writeRoundRecovered(calls, cfg, nowMs, req, unsynced)
	l.mu.Lock()

	if err == nil && l.err != nil {
		// The syncer failed while the round was written: what the round
		// fsynced itself (a roll) may have succeeded over bytes whose
		// writeback that failure lost, so none of it is published.
		err = l.err
	}
	if err != nil {
		l.dropCreatedSegments()
		if l.err == nil {
			l.failLocked(err)
		}
	} else {
		l.applyRoundLocked(res, nowMs)
		// Read after the write completed: a syncfs begun later covers it.
		l.writtenAt = l.sharedSync.Started()
		l.journalRoundLocked(calls, writtenBefore)
		l.noteOwedLocked()
	}
	clear(calls) // drop the callers' buffers
	l.spareQueue = calls[:0]
	l.writing = false
	l.syncsPaused = false
}

// pauseSyncs waits for the syncer to finish and keeps a new one from
// starting until the round is published: the writer is about to fsync a
// segment file itself (a roll, or a policy other than always), and two
// fsyncs of one descriptor at once may split a writeback error between
// them, so one could succeed over bytes the other learnt were lost; a roll
// also seals the segment the syncer would sync. Called by the writer,
// without the lock. It returns the log's failure, the syncer's included:
// the writer must then not fsync the file, since Linux reports a writeback
// error once per descriptor and its fsync could succeed over the bytes the
// syncer's lost.
func (l *Log) pauseSyncs() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.syncsPaused = true
	for l.syncing {
		l.cond.Wait()
	}
	return l.err
}

// flushMessagesDueLocked applies flush.messages (Kafka's
// log.flush.interval.messages): the round fsyncs when it would leave at
// least that many offsets above the recovery point, as Kafka flushes
// after an append once logEndOffset - recoveryPoint reaches it.
func (l *Log) flushMessagesDueLocked(calls []appendCall) bool {
	if len(calls) == 0 || l.cfg.FlushMessages <= 0 {
		return false
	}
	return calls[len(calls)-1].nextOffset-l.recoveryPoint >= l.cfg.FlushMessages
}

// failLocked makes a write or fsync failure sticky: after a failed fsync the
// state of the page cache is unknown, so nothing more is acknowledged and
// the log stays read-only until a restart recovers it from disk.
func (l *Log) failLocked(err error) {
	l.err = fmt.Errorf("log %s: %w: %w", l.dir, ErrStorage, err)
	l.logger.Error("log is now read-only", "err", err)
	l.noteOwedLocked()
}

// noteOwedLocked tells the SharedSync whether the log holds rounds written
// and not yet synced (FlushAlways), which then wait for a sync soon: a
// log about to sync alone shares a syncfs with them instead.
func (l *Log) noteOwedLocked() {
	owes := l.err == nil && !l.closed && l.writtenEnd > l.logEndOffset
	if owes == l.owesSync {
		return
	}
	l.owesSync = owes
	if owes {
		l.sharedSync.owe(1)
	} else {
		l.sharedSync.owe(-1)
	}
}

// dropCreatedSegments closes the files of segments a failed round created:
// they were never published, so nothing else would close them.
func (l *Log) dropCreatedSegments() {
	r := &l.round
	for i := range r.writes[:r.n] {
		if w := &r.writes[i]; w.created {
			w.seg.file.remove()
		}
	}
}

// syncRequest asks a round for more fsyncs than its policy needs.
type syncRequest struct {
	all    bool // everything written so far (Flush, Close)
	sealed bool // the segments sealed without a sync
}

// roundResult says what a round made durable.
type roundResult struct {
	synced       bool // everything written, the active segment included
	sealedSynced bool // every sealed segment
}

// segmentWrite is what one round does to one segment.
type segmentWrite struct {
	seg      *segment
	created  bool // rolled this round: not yet in l.segments
	sealed   bool // sealed this round: index files written
	durable  bool // sealed with an fsync (policy always)
	state    indexState
	offsets  []byte // new offset index entries
	times    []byte // new time index entries
	iovecs   [][]byte
	writePos int64 // where iovecs go in the file
}

// roundScratch is reused from round to round so a steady stream of appends
// allocates nothing.
type roundScratch struct {
	writes []segmentWrite
	n      int
}

func (r *roundScratch) begin(s *segment, created bool) *segmentWrite {
	if r.n == len(r.writes) {
		r.writes = append(r.writes, segmentWrite{})
	}
	w := &r.writes[r.n]
	r.n++
	*w = segmentWrite{
		seg: s, created: created, state: s.indexState(), writePos: s.size,
		offsets: w.offsets[:0], times: w.times[:0], iovecs: w.iovecs[:0],
	}
	return w
}

// writeRound writes the queued appends, rolling segments as needed, and
// fsyncs per the policy and the request. It runs without the log's lock:
// only the writer changes segment state, and it publishes its result in
// applyRoundLocked.
// writeRoundRecovered is writeRound with a panic (a bug, not an I/O
// error) turned into the round's failure. The round may be half written,
// so the log must fail as a failed write fails it; and the writer role
// must be given back, or every append waiting on this log would wait for
// ever, each holding its partition's gate.
func (l *Log) writeRoundRecovered(calls []appendCall, cfg Config, nowMs int64, req syncRequest, unsynced []*segment) (res roundResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			l.logger.Error("a write round panicked; the log fails", "panic", r, "stack", string(debug.Stack()))
			cause, ok := r.(error)
			if !ok {
				cause = fmt.Errorf("%v", r)
			}
			err = fmt.Errorf("%w: a write round panicked: %w", ErrStorage, cause)
		}
	}()
	return l.writeRound(calls, cfg, nowMs, req, unsynced)
}

func (l *Log) writeRound(calls []appendCall, cfg Config, nowMs int64, req syncRequest, unsynced []*segment) (roundResult, error) {
	r := &l.round
	r.n = 0
	w := r.begin(l.active(), false)
	for i := range calls {
		c := &calls[i]
		if w.shouldRoll(c, cfg, nowMs) {
			next, err := l.roll(w, rollBaseOffset(w, c), cfg, nowMs)
			if err != nil {
				return roundResult{}, err
			}
			w = next
		}
		w.iovecs = append(w.iovecs, c.buf)
		pos := w.state.size
		forEachBatch(c.buf, func(b []byte, h record.Header) {
			w.offsets, w.times = w.state.add(pos, &h, int64(len(b)), cfg.IndexIntervalBytes, w.offsets, w.times)
			pos += int64(len(b))
		})
	}
	if err := w.write(); err != nil {
		return roundResult{}, err
	}
	var res roundResult
	// Under always the round syncs only the segments it sealed: the
	// syncer syncs the active segment (syncLocked) while the next round
	// is written.
	always := cfg.FlushPolicy == FlushAlways
	res.synced = !always && (req.all || cfg.FlushPolicy == FlushInterval && nowMs-l.lastSyncMs >= cfg.FlushMs)
	if res.synced || always || req.sealed {
		if err := l.syncSealed(unsynced); err != nil {
			return roundResult{}, err
		}
		res.sealedSynced = true
	}
	if res.synced {
		if err := l.pauseSyncs(); err != nil {
			return roundResult{}, err
		}
		if _, err := l.timedSync(w.seg.activeFile, l.sharedSync.Started()); err != nil {
			return roundResult{}, fmt.Errorf("sync segment %020d: %w", w.seg.baseOffset, err)
		}
	}
	return res, nil
}

// timedSync makes the active segment durable, observing how long that
// took (waiting for a shared sync included): the latency every acks=1/all
// producer waits for. writtenAt is SharedSync.Started as of the end of
// the last write to cover; covered is the syncfs generation that did
// (0: the file's own fsync).
func (l *Log) timedSync(f vfs.File, writtenAt uint64) (covered uint64, err error) {
	start := l.flushStart()
	covered, err = l.syncActive(f, writtenAt)
	l.flushObserved(start)
	return covered, err
}

// flushStart and flushObserved time one wait for a round's durability
// (its segment's sync, or the journal's) into flushTime, if set.
func (l *Log) flushStart() time.Time {
	if l.flushTime == nil {
		return time.Time{}
	}
	return l.clock.Now()
}

func (l *Log) flushObserved(start time.Time) {
	if l.flushTime != nil {
		l.flushTime.Observe(l.clock.Now().Sub(start).Seconds())
	}
}

// syncActive syncs the active segment through the directory's SharedSync
// (sharedsync.go), which may cover it with a syncfs shared with other logs
// instead of its own fdatasync. It goes through the file cache's handle
// (activeFile.syncWith) so that the file is synced by the cache's rules:
// after any fsync the cache is running on it to close it, failing with
// that fsync's error, and noted synced afterwards.
func (l *Log) syncActive(f vfs.File, writtenAt uint64) (covered uint64, err error) {
	af, ok := f.(*activeFile)
	if !ok {
		return 0, f.Sync()
	}
	err = af.syncWith(func(file fileSyncer) (bool, error) {
		// Read once the file cache counted the writes done (use): a
		// syncfs of a later generation began after every one of them.
		// One that began before may predate a round the writer wrote
		// since writtenAt, which the cache must keep unsynced.
		began := l.sharedSync.Started()
		var err error
		covered, err = l.sharedSync.SyncWritten(file, writtenAt)
		return covered == 0 || covered > began, err
	})
	return covered, err
}

// syncSealed fsyncs the segments sealed without a sync, in earlier rounds
// (unsynced) and in this one.
func (l *Log) syncSealed(unsynced []*segment) error {
	for _, s := range unsynced {
		if err := syncSealedSegment(l.fs, s); err != nil {
			return err
		}
	}
	r := &l.round
	for i := range r.writes[:r.n] {
		if w := &r.writes[i]; w.sealed && !w.durable {
			if err := syncSealedSegment(l.fs, w.seg); err != nil {
				return err
			}
			w.durable = true
		}
	}
	return nil
}

// rollBaseOffset is the base offset of the segment a roll creates: where
// the rolled segment ends, even when the call starts later (a follower
// copying a compacted leader's log, which has gaps), so that segments stay
// contiguous; recovery takes a segment that ends before the next one
// starts for a lost tail. Only a gap too wide for the new segment's 32-bit
// relative offsets starts it at the call's own base.
func rollBaseOffset(w *segmentWrite, c *appendCall) int64 {
	if c.nextOffset-1-w.state.nextOffset > math.MaxInt32 {
		return c.baseOffset
	}
	return w.state.nextOffset
}

// shouldRoll applies Kafka's roll rules before an append: the segment would
// pass segment.bytes, is older than segment.ms less its jitter, has a full index, or the
// offsets would not fit the index's 32-bit relative form. An empty segment
// never rolls.
func (w *segmentWrite) shouldRoll(c *appendCall, cfg Config, nowMs int64) bool {
	if w.state.size == 0 {
		return false
	}
	return w.state.size+int64(len(c.buf)) > cfg.SegmentBytes ||
		nowMs-w.seg.createdMs >= cfg.rollMs()-w.seg.rollJitterMs ||
		w.state.offsetEntries >= cfg.maxIndexEntries(offsetIndexEntrySize) ||
		w.state.timeEntries >= cfg.maxIndexEntries(timeIndexEntrySize) ||
		c.nextOffset-1-w.seg.baseOffset > math.MaxInt32
}

// write sends the segment's queued buffers to its file in one pwritev.
func (w *segmentWrite) write() error {
	if len(w.iovecs) == 0 {
		return nil
	}
	if _, err := w.seg.activeFile.WritevAt(w.iovecs, w.writePos); err != nil {
		return fmt.Errorf("write segment %020d at %d: %w", w.seg.baseOffset, w.writePos, err)
	}
	clear(w.iovecs)
	w.iovecs = w.iovecs[:0]
	w.writePos = w.state.size
	return nil
}

// roll finishes the segment being written (write, final index files) and
// creates the next one at baseOffset. Under FlushAlways the old segment is
// fsynced now; otherwise the fsync is left to a later round (Flush, or the
// manager's tick), so a roll does not stall appends for a whole segment's
// writeback: the recovery point stays below the segment until then.
func (l *Log) roll(w *segmentWrite, baseOffset int64, cfg Config, nowMs int64) (*segmentWrite, error) {
	if err := l.pauseSyncs(); err != nil {
		return nil, err
	}
	if err := w.write(); err != nil {
		return nil, err
	}
	w.durable = cfg.FlushPolicy == FlushAlways
	if w.durable {
		if err := w.seg.activeFile.Sync(); err != nil {
			return nil, fmt.Errorf("sync segment %020d: %w", w.seg.baseOffset, err)
		}
	}
	w.times = w.state.appendTimeEntry(w.times)
	if err := writeIndexes(l.fs, w.seg, w.offsets, w.times, w.durable); err != nil {
		return nil, err
	}
	w.sealed = true
	s := newSegment(l.fs, l.files, l.dir, baseOffset, nowMs, cfg.IndexIntervalBytes)
	s.rollJitterMs = cfg.rollJitterMs(l.rollJitter)
	if err := createSegmentFiles(l.fs, s, cfg); err != nil {
		return nil, err
	}
	if err := l.syncDir(); err != nil {
		return nil, fmt.Errorf("sync %s: %w", l.dir, err)
	}
	f, err := s.file.pin()
	if err != nil {
		return nil, err
	}
	s.activeFile = f
	return l.round.begin(s, true), nil
}

// applyRoundLocked publishes a written round: index entries, sizes, new and
// sealed segments, the log end offset and what became durable.
func (l *Log) applyRoundLocked(res roundResult, nowMs int64) {
	r := &l.round
	for i := range r.writes[:r.n] {
		w := &r.writes[i]
		s := w.seg
		if w.created {
			l.segments = append(l.segments, s)
		}
		s.setIndexState(w.state)
		if w.sealed {
			l.markSealedLocked(s, w.offsets, w.times)
			if !w.durable {
				l.unsyncedSealed = append(l.unsyncedSealed, s)
			}
			continue
		}
		s.offsets.buf = append(s.offsets.buf, w.offsets...)
		s.times.buf = append(s.times.buf, w.times...)
	}
	l.writtenEnd = l.active().nextOffset
	if res.sealedSynced {
		clear(l.unsyncedSealed)
		l.unsyncedSealed = l.unsyncedSealed[:0]
	}
	switch {
	case res.synced:
		l.recoveryPoint = l.writtenEnd
		l.lastSyncMs = nowMs
	case len(l.unsyncedSealed) == 0:
		// Every sealed segment is durable, only the active one is not.
		l.recoveryPoint = max(l.recoveryPoint, l.active().baseOffset)
	}
	if l.cfg.FlushPolicy == FlushAlways {
		// Readers see the round once the syncer has synced it; a roll
		// synced the segments it sealed already.
		l.logEndOffset = max(l.logEndOffset, l.recoveryPoint)
	} else {
		l.logEndOffset = l.writtenEnd
	}
}

// flushIfDue runs on the manager's maintenance tick: it fsyncs an
// interval-policy log whose oldest unsynced write is older than flush.ms,
// and the segments any log sealed without an fsync.
func (l *Log) flushIfDue(nowMs int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil || l.closed {
		return nil
	}
	if l.cfg.FlushPolicy == FlushInterval && l.recoveryPoint < l.logEndOffset && nowMs-l.lastSyncMs >= l.cfg.FlushMs {
		return l.flushLocked()
	}
	return l.driveLocked(func() bool { return len(l.unsyncedSealed) == 0 }, &l.syncSealedRequested)
}
