package partition

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/sluicelog/sluice/internal/record"
)

// producerBatchesKept is how many of a producer's newest batches each
// partition remembers for duplicate detection: Kafka's NUM_BATCHES_TO_RETAIN,
// matching the at most 5 requests in flight an idempotent producer may have
// per connection.
const producerBatchesKept = 5

// Bounds of the producer table: DefaultMaxProducersPerPartition producers
// are kept per partition. Beyond it the least recently active producer
// (not appending right now) is forgotten, as if its state had expired: its
// next batch is accepted at any sequence and a retry of an old batch of it
// would be appended again. Kafka has no such bound and relies on
// producer.id.expiration.ms alone; this one keeps a flood of short-lived
// producer ids from growing a partition's memory without limit.
const (
	DefaultMaxProducersPerPartition = 8192
	// DefaultProducerIDExpirationMs is producer.id.expiration.ms: a
	// producer silent this long is forgotten.
	DefaultProducerIDExpirationMs = 24 * 60 * 60 * 1000
	// maxExpiryCheckIntervalMs is Kafka's
	// producer.id.expiration.check.interval.ms: expiry is checked lazily
	// when a new producer arrives, at most this often (or sooner when the
	// table is full).
	maxExpiryCheckIntervalMs = 10 * 60 * 1000
)

// producerBatch is what a partition remembers of one idempotent batch.
type producerBatch struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
	maxTimestamp            int64
}

// producerEntry is one producer id's state on one partition.
type producerEntry struct {
	id int64
	// appendMu is held across the sequence check and the log append, so a
	// producer's batches reach the log in the order their sequences were
	// checked, while different producers append (and share fsyncs)
	// concurrently.
	appendMu sync.Mutex

	// Guarded by producerTable.mu.
	known        bool // false: a placeholder for a producer never seen (or expired)
	epoch        int16
	batches      [producerBatchesKept]producerBatch // oldest first
	numBatches   int
	lastUpdateMs int64 // broker clock at the last append: drives expiry
	inflight     int   // appends holding the entry: never evicted meanwhile

	// currentTxnFirstOffset is the offset of the producer's first batch in
	// its ongoing transaction, -1 when none: the last stable offset may not
	// pass it. A producer with an ongoing transaction is never expired or
	// evicted (its marker must find it). txnProvisional marks a first
	// offset set before the append assigned the real one (see
	// beginProvisional).
	currentTxnFirstOffset int64
	txnProvisional        bool
	// coordinatorEpoch is the transaction coordinator's epoch from the
	// producer's last marker, -1 before any: a marker from an older
	// coordinator is fenced.
	coordinatorEpoch int32
}

func newProducerEntry(id, nowMs int64) *producerEntry {
	return &producerEntry{id: id, lastUpdateMs: nowMs, currentTxnFirstOffset: -1, coordinatorEpoch: -1}
}

func (e *producerEntry) newest() (producerBatch, bool) {
	if e.numBatches == 0 {
		return producerBatch{}, false
	}
	return e.batches[e.numBatches-1], true
}

// lastSequence returns the sequence of a batch's last record; sequences wrap
// from MaxInt32 to 0, as Kafka's DefaultRecordBatch.incrementSequence.
func lastSequence(h *record.Header) int32 {
	return int32((int64(h.BaseSequence) + int64(h.LastOffsetDelta)) % (math.MaxInt32 + 1))
}

// inSequence reports whether next may follow last.
func inSequence(last, next int32) bool {
	return next == last+1 || (last == math.MaxInt32 && next == 0)
}

// checkLocked decides what to do with an idempotent batch: append it (nil,
// nil), answer it as a retry of a batch already in the log (the original),
// or refuse it.
func (e *producerEntry) checkLocked(h *record.Header) (*producerBatch, error) {
	if !e.known {
		// Kafka accepts an unknown producer at any sequence: its state may
		// have expired or been removed with old segments.
		return nil, nil
	}
	switch {
	case h.ProducerEpoch < e.epoch:
		return nil, ErrInvalidProducerEpoch
	case e.currentTxnFirstOffset >= 0 && !h.IsTransactional():
		// Kafka's "expected transactional write": the producer's
		// transaction is open here, so a plain batch is out of place.
		return nil, ErrInvalidTxnState
	case h.ProducerEpoch > e.epoch:
		if h.BaseSequence != 0 {
			return nil, ErrOutOfOrderSequence
		}
		return nil, nil
	}
	last := lastSequence(h)
	for i := range e.batches[:e.numBatches] {
		if b := &e.batches[i]; b.firstSeq == h.BaseSequence && b.lastSeq == last {
			dup := *b
			return &dup, nil
		}
	}
	if newest, ok := e.newest(); ok && !inSequence(newest.lastSeq, h.BaseSequence) {
		return nil, ErrOutOfOrderSequence
	}
	return nil, nil
}

// recordLocked remembers an appended batch; a new epoch starts afresh.
func (e *producerEntry) recordLocked(h *record.Header, b producerBatch, nowMs int64) {
	if !e.known || h.ProducerEpoch != e.epoch {
		e.known, e.epoch, e.numBatches = true, h.ProducerEpoch, 0
	}
	if e.numBatches == producerBatchesKept {
		copy(e.batches[:], e.batches[1:])
		e.numBatches--
	}
	e.batches[e.numBatches] = b
	e.numBatches++
	e.lastUpdateMs = max(e.lastUpdateMs, nowMs)
	if h.IsTransactional() && (e.currentTxnFirstOffset < 0 || e.txnProvisional) {
		e.currentTxnFirstOffset, e.txnProvisional = b.firstOffset, false
	}
}

// replayLocked applies a batch read back from the log while rebuilding
// state: no checks (the log is what it is), but a batch already remembered
// (the snapshot covered it) or from an older epoch changes nothing.
func (e *producerEntry) replayLocked(h *record.Header, nowMs int64) {
	if e.known && h.ProducerEpoch < e.epoch {
		return
	}
	b := producerBatch{
		firstSeq: h.BaseSequence, lastSeq: lastSequence(h),
		firstOffset: h.BaseOffset, lastOffset: h.LastOffset(), maxTimestamp: h.MaxTimestamp,
	}
	if e.known && h.ProducerEpoch == e.epoch {
		for i := range e.batches[:e.numBatches] {
			if e.batches[i].firstOffset == b.firstOffset {
				return
			}
		}
	}
	e.recordLocked(h, b, nowMs)
}

// producerTable is a partition's idempotent producers.
type producerTable struct {
	maxProducers int
	expirationMs int64

	mu           sync.Mutex
	entries      map[int64]*producerEntry
	lastExpiryMs int64
	// ongoing maps each producer with an open transaction to its first
	// offset; firstUnstableOffset is the smallest of them (-1: none), read
	// without the lock on every read_committed fetch.
	ongoing             map[int64]int64
	firstUnstableOffset atomic.Int64
	// guards are the KIP-890 verification guards of producers whose first
	// transactional produce is being verified (txn.go); nextGuard numbers
	// them. An entry lives from BeginTxnVerification until the append, the
	// last holder's EndTxnVerification, a marker for the producer, or a
	// change of leadership (voidGuards), which also raises guardFloor to
	// nextGuard: a guard at or below it was taken under an earlier role.
	guards     map[int64]*txnVerification
	nextGuard  uint64
	guardFloor uint64
	// recordFault, nil but in tests, runs as a batch is recorded, before
	// the entry changes: tests panic in it.
	recordFault func(e *producerEntry)
}

func newProducerTable(maxProducers int, expirationMs int64) *producerTable {
	t := &producerTable{maxProducers: maxProducers, expirationMs: expirationMs, entries: map[int64]*producerEntry{},
		ongoing: map[int64]int64{}, guards: map[int64]*txnVerification{}}
	t.firstUnstableOffset.Store(-1)
	return t
}

// syncOngoingLocked brings the ongoing set in line with e's transaction.
func (t *producerTable) syncOngoingLocked(e *producerEntry) {
	if e.currentTxnFirstOffset >= 0 {
		if first, ok := t.ongoing[e.id]; ok && first == e.currentTxnFirstOffset {
			return
		}
		t.ongoing[e.id] = e.currentTxnFirstOffset
	} else {
		if _, ok := t.ongoing[e.id]; !ok {
			return
		}
		delete(t.ongoing, e.id)
	}
	t.firstUnstableOffset.Store(t.firstUnstableExceptLocked(-1))
}

// firstUnstableExceptLocked is the smallest first offset of the open
// transactions other than producer id's (-1: none).
func (t *producerTable) firstUnstableExceptLocked(id int64) int64 {
	first := int64(-1)
	for pid, off := range t.ongoing {
		if pid != id && (first < 0 || off < first) {
			first = off
		}
	}
	return first
}

// acquire returns the producer's entry (a placeholder if unknown), pinned
// until release.
func (t *producerTable) acquire(id, nowMs int64) *producerEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[id]
	if !ok {
		t.makeRoomLocked(nowMs)
		e = newProducerEntry(id, nowMs)
		t.entries[id] = e
	}
	e.inflight++
	return e
}

func (t *producerTable) release(e *producerEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e.inflight--
	if e.inflight == 0 && !e.known && t.entries[e.id] == e {
		delete(t.entries, e.id) // a refused first batch leaves nothing behind
	}
}

// makeRoomLocked expires silent producers now and then, and evicts the
// least recently active one when the table is still full.
func (t *producerTable) makeRoomLocked(nowMs int64) {
	full := len(t.entries) >= t.maxProducers
	if full || nowMs-t.lastExpiryMs >= min(t.expirationMs, maxExpiryCheckIntervalMs) {
		t.expireLocked(nowMs)
	}
	if len(t.entries) < t.maxProducers {
		return
	}
	var oldest *producerEntry
	for _, e := range t.entries {
		if e.inflight == 0 && e.currentTxnFirstOffset < 0 && (oldest == nil || e.lastUpdateMs < oldest.lastUpdateMs) {
			oldest = e
		}
	}
	if oldest != nil {
		delete(t.entries, oldest.id)
	}
}

func (t *producerTable) expireLocked(nowMs int64) {
	t.lastExpiryMs = nowMs
	for id, e := range t.entries {
		if e.inflight == 0 && e.currentTxnFirstOffset < 0 && nowMs-e.lastUpdateMs >= t.expirationMs {
			delete(t.entries, id)
		}
	}
}

func (t *producerTable) check(e *producerEntry, h *record.Header, coordinator bool) (*producerBatch, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if coordinator {
		// No sequence to check or deduplicate (the coordinator does not
		// retry an append it made); a fenced epoch is still refused.
		if e.known && h.ProducerEpoch < e.epoch {
			return nil, ErrInvalidProducerEpoch
		}
		return nil, nil
	}
	return e.checkLocked(h)
}

func (t *producerTable) record(e *producerEntry, h *record.Header, b producerBatch, nowMs int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			t.settleRecordLocked(e, h, b, nowMs)
			panic(r) // the append still fails (recoverQueueing)
		}
	}()
	if t.recordFault != nil {
		t.recordFault(e)
	}
	e.recordLocked(h, b, nowMs)
	t.syncOngoingLocked(e)
	if h.IsTransactional() {
		// The transaction is open: the other holders of the producer's
		// guard need none.
		delete(t.guards, e.id)
	}
}

// settleRecordLocked makes e hold b after recording it panicked (a bug):
// the log has the batch already, so the state must say so, whatever the
// panic left half done. Unknown, the entry would be dropped at release
// while its provisional transaction stayed open, which no marker then
// ends (the LSO held for good); without the batch, the client's retry of
// it would be appended again rather than answered as a duplicate. A
// second panic here leaves the first to fail the append.
func (t *producerTable) settleRecordLocked(e *producerEntry, h *record.Header, b producerBatch, nowMs int64) {
	defer func() { _ = recover() }()
	if newest, ok := e.newest(); !e.known || h.ProducerEpoch != e.epoch || !ok || newest.firstOffset != b.firstOffset {
		e.recordLocked(h, b, nowMs)
	}
	if h.IsTransactional() {
		if e.txnProvisional {
			e.currentTxnFirstOffset, e.txnProvisional = b.firstOffset, false
		}
		delete(t.guards, e.id)
	}
	t.syncOngoingLocked(e)
}

// settleRecord is settleRecordLocked for a batch the log took before a
// panic failed its append, whose recording the panic cut short or came
// before (a batch recorded already is left as it is).
func (t *producerTable) settleRecord(e *producerEntry, h *record.Header, b producerBatch, nowMs int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.settleRecordLocked(e, h, b, nowMs)
}

// replay applies a batch read back from the log (single-threaded load).
func (t *producerTable) replay(h *record.Header, nowMs int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.replayEntryLocked(h.ProducerID, nowMs)
	e.replayLocked(h, nowMs)
	t.syncOngoingLocked(e)
}

func (t *producerTable) replayEntryLocked(id, nowMs int64) *producerEntry {
	e, ok := t.entries[id]
	if !ok {
		t.makeRoomLocked(nowMs)
		e = newProducerEntry(id, 0)
		t.entries[id] = e
	}
	return e
}

// reset forgets every producer: a truncation invalidated the state, which
// is then reloaded from the log. Entries pinned by an append in flight are
// orphaned, and release ignores them.
func (t *producerTable) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.entries = map[int64]*producerEntry{}
	t.ongoing = map[int64]int64{}
	t.firstUnstableOffset.Store(-1)
}

// snapshotProducer is one producer's state as a snapshot holds it.
type snapshotProducer struct {
	id                    int64
	epoch                 int16
	lastUpdateMs          int64
	coordinatorEpoch      int32
	currentTxnFirstOffset int64
	batches               []producerBatch
}

// snapshot copies the known producers' state, expiring silent ones first.
func (t *producerTable) snapshot(nowMs int64) []snapshotProducer {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expireLocked(nowMs)
	out := make([]snapshotProducer, 0, len(t.entries))
	for _, e := range t.entries {
		if e.known {
			out = append(out, snapshotProducer{id: e.id, epoch: e.epoch, lastUpdateMs: e.lastUpdateMs,
				coordinatorEpoch: e.coordinatorEpoch, currentTxnFirstOffset: e.currentTxnFirstOffset,
				batches: slices.Clone(e.batches[:e.numBatches])})
		}
	}
	slices.SortFunc(out, func(a, b snapshotProducer) int { return cmp.Compare(a.id, b.id) })
	return out
}

// load installs a snapshot's producers (single-threaded load).
func (t *producerTable) load(producers []snapshotProducer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range producers {
		e := &producerEntry{id: p.id, known: true, epoch: p.epoch, lastUpdateMs: p.lastUpdateMs,
			coordinatorEpoch: p.coordinatorEpoch, currentTxnFirstOffset: p.currentTxnFirstOffset}
		e.numBatches = copy(e.batches[:], p.batches)
		t.entries[p.id] = e
		t.syncOngoingLocked(e)
	}
}

// states lists the known producers for DescribeProducers.
func (t *producerTable) states(nowMs int64) []ProducerState {
	t.mu.Lock()
	defer t.mu.Unlock()
	if nowMs-t.lastExpiryMs >= min(t.expirationMs, maxExpiryCheckIntervalMs) {
		t.expireLocked(nowMs)
	}
	out := make([]ProducerState, 0, len(t.entries))
	for _, e := range t.entries {
		if !e.known {
			continue
		}
		s := ProducerState{ProducerID: e.id, ProducerEpoch: e.epoch, LastSequence: -1, LastTimestampMs: -1,
			CoordinatorEpoch: e.coordinatorEpoch, CurrentTxnStartOffset: e.currentTxnFirstOffset}
		if newest, ok := e.newest(); ok {
			s.LastSequence, s.LastTimestampMs = newest.lastSeq, newest.maxTimestamp
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b ProducerState) int { return cmp.Compare(a.ProducerID, b.ProducerID) })
	return out
}

func (t *producerTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}
