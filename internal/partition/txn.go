package partition

import (
	"context"
	"fmt"
	"math"
	"runtime/debug"

	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/record"
)

// The partition side of transactions (Kafka's ProducerStateManager and the
// WriteTxnMarkers path of ReplicaManager). A producer's first
// transactional batch opens its transaction on the partition at that
// batch's offset; the transaction coordinator closes it with a COMMIT or
// ABORT marker, which the leader appends here. The last stable offset
// (LSO) is the smallest first offset of the open transactions, capped by
// the high watermark: read_committed consumers read below it only, and get
// the aborted transactions of their range from the log's .txnindex so they
// can drop those records.
//
// Ordering that keeps readers safe:
//   - a transaction is registered as open (provisionally, at the log end)
//     before its first batch is appended, so the high watermark can never
//     pass that batch while the LSO does not know about it;
//   - an ABORT marker's .txnindex entry is durable before the transaction
//     is removed from the open set, so once the LSO passes aborted records
//     every reader finds them in the aborted list.

// TxnMarker is one WriteTxnMarkers item for a partition.
type TxnMarker struct {
	ProducerID       int64
	ProducerEpoch    int16
	CoordinatorEpoch int32
	Commit           bool
}

// TxnMarkerResult says what became of a marker.
type TxnMarkerResult struct {
	// Offset is the marker's offset, -1 when nothing was written.
	Offset int64
	// Ignored: the producer has no open transaction here (the marker is a
	// coordinator's retry after the transaction ended, or a late one), so
	// nothing was appended. Kafka 3.x would append it anyway; with
	// KIP-890's defence a marker never opens or ends anything it did not
	// find open.
	Ignored bool
}

// lastStableOffset is min(first offset of the open transactions, hw). An
// open transaction whose first batches retention or DeleteRecords removed
// holds it at the log start offset, as Kafka's does, never below.
func (p *Partition) lastStableOffset(hw int64) int64 {
	if first := p.producers.firstUnstableOffset.Load(); first >= 0 && first < hw {
		return min(max(first, p.log.LogStartOffset()), hw)
	}
	return hw
}

// NeedsTxnVerification reports whether a transactional batch would open a
// transaction for its producer here, which KIP-890 has the leader confirm
// with the transaction coordinator first (AddPartitionsToTxn verify_only).
// A transaction opened provisionally by a batch still being queued (on
// another connection) is not open yet: that batch may fail, and one that
// skipped its check because of it would then be refused under
// TxnOpenGuard, or would open the transaction itself unverified. Kafka's
// hasOngoingTransaction likewise counts appended batches only.
func (p *Partition) NeedsTxnVerification(producerID int64, producerEpoch int16) bool {
	t := p.producers
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[producerID]
	return !ok || !e.known || e.currentTxnFirstOffset < 0 || e.txnProvisional || producerEpoch > e.epoch
}

// CheckProducerEpoch refuses a producer epoch older than the one this
// partition knows for the producer (ErrInvalidProducerEpoch): the group
// coordinator checks a TxnOffsetCommit with it before writing, so a
// zombie's commit is answered INVALID_PRODUCER_EPOCH instead of failing
// the append that carries other groups' records.
func (p *Partition) CheckProducerEpoch(producerID int64, producerEpoch int16) error {
	t := p.producers
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.entries[producerID]; ok && e.known && producerEpoch < e.epoch {
		return fmt.Errorf("partition %s: producer %d epoch %d, partition has %d: %w", p.tp, producerID, producerEpoch, e.epoch, ErrInvalidProducerEpoch)
	}
	return nil
}

// BeginTxnVerification starts the KIP-890 check of a producer's first
// transactional produce to this partition and returns its guard: the
// produce is then appended with AppendVerified or AppendAllVerified and
// that guard, and is refused (INVALID_TXN_STATE) if a marker for the
// producer was written meanwhile (NOT_LEADER_OR_FOLLOWER, retriable, if
// this node's role for the partition changed: voidGuards): a transaction
// the coordinator ended while the produce was being verified is not
// opened again by it, so no transaction is left open that nobody will
// end (Kafka's VerificationGuard). Call EndTxnVerification when the
// produce is not appended.
//
// Verifications of the producer begun while one is pending share its
// guard, as Kafka's share the producer's VerificationStateEntry: the
// guard says no marker came since it was taken, which holds for each of
// them. A fresh guard for each voided the ones in flight, so of two
// concurrent first writes (a retry on another connection) the older was
// refused though no marker came; for the group coordinator, whose append
// under that guard carries commits it already decided, that failed the
// shard.
func (p *Partition) BeginTxnVerification(producerID int64) uint64 {
	t := p.producers
	t.mu.Lock()
	defer t.mu.Unlock()
	if v, ok := t.guards[producerID]; ok {
		v.holders++
		return v.guard
	}
	t.nextGuard++
	t.guards[producerID] = &txnVerification{guard: t.nextGuard, holders: 1}
	return t.nextGuard
}

// txnVerification is a producer's pending verification guard and how many
// verifications hold it and have not ended (EndTxnVerification).
type txnVerification struct {
	guard   uint64
	holders int
}

// guardPendingLocked reports whether guard is the producer's pending one.
func (t *producerTable) guardPendingLocked(producerID int64, guard uint64) bool {
	v, ok := t.guards[producerID]
	return ok && v.guard == guard
}

// TxnOpenGuard is the guard of a transactional batch whose verification
// was skipped because its producer's transaction was open here
// (NeedsTxnVerification false): appended under it, the batch is refused
// (ErrInvalidTxnState) unless that transaction is still open, as Kafka
// refuses a batch that would open a transaction without a verification.
// BeginTxnVerification never returns it.
const TxnOpenGuard = math.MaxUint64

// CheckTxnVerification refuses (ErrInvalidTxnState) a batch verified under
// guard if a marker for its producer was written since and no transaction
// of the producer is open here: the append under that guard would refuse
// it. The group coordinator checks a TxnOffsetCommit with it before
// deciding, so that the commit is refused rather than failing the append
// that carries it (and with it the shard). A guard taken before this
// node's role for the partition last changed is refused ErrNotLeader
// instead (voidGuards). Guard 0 (none taken) passes.
func (p *Partition) CheckTxnVerification(producerID int64, guard uint64) error {
	if guard == 0 {
		return nil
	}
	t := p.producers
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.entries[producerID]; (ok && e.currentTxnFirstOffset >= 0) || t.guardPendingLocked(producerID, guard) {
		return nil
	}
	if t.guardOfEarlierLeadershipLocked(guard) {
		return fmt.Errorf("partition %s: producer %d's offset commit was verified under an earlier leadership: %w",
			p.tp, producerID, ErrNotLeader)
	}
	return fmt.Errorf("partition %s: a marker ended producer %d's transaction before its offset commit was written: %w",
		p.tp, producerID, ErrInvalidTxnState)
}

// voidGuards ends every pending verification guard as this node's role
// for the partition changes (a new leader epoch, led here or not; the
// gate held exclusively, so no append is between its guard check and
// its queueing). A guard says no marker for its producer came since the
// coordinator was asked; while another node led, this one may not have
// seen the marker that ended the transaction: the other leader ignores
// one for a producer with no batch there (TxnMarkerResult.Ignored), so
// nothing replicates. Kafka writes every marker, and its followers clear
// the verification state as they copy it; here only the leadership
// change tells. Leading again in a later epoch counts too: the images of
// the epochs between, where another node led, may never have reached
// this one.
func (t *producerTable) voidGuards() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.guards)
	t.guardFloor = t.nextGuard
}

// guardOfEarlierLeadershipLocked reports whether guard was taken before
// the last change of this node's role for the partition (voidGuards):
// its append is refused as one arriving at a former leader is
// (ErrNotLeader, retriable: the client refreshes its metadata and the
// retry is verified again), not as a marker's refusal (INVALID_TXN_STATE
// aborts the transaction) when no marker may have come. TxnOpenGuard is
// above every floor: a transaction open here is ended by a marker only.
func (t *producerTable) guardOfEarlierLeadershipLocked(guard uint64) bool {
	return guard <= t.guardFloor
}

// EndTxnVerification ends one verification under guard, whose produce
// will not be appended or was: the guard is forgotten once none holds it.
func (p *Partition) EndTxnVerification(producerID int64, guard uint64) {
	t := p.producers
	t.mu.Lock()
	defer t.mu.Unlock()
	if v, ok := t.guards[producerID]; ok && v.guard == guard {
		if v.holders--; v.holders <= 0 {
			delete(t.guards, producerID)
		}
	}
}

// consumeGuard checks, as a verified batch is appended (its producer's
// appendMu held), that no marker ended the transaction since it was
// verified; a transaction already open here needs no guard. The guard
// stays pending until the batch is queued (record): an append failing
// after this check leaves it to the other holders, whose verification
// still holds, as Kafka clears a producer's verification state only when
// its transactional batch is appended.
func (t *producerTable) consumeGuard(e *producerEntry, guard uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.currentTxnFirstOffset >= 0 || t.guardPendingLocked(e.id, guard) {
		return nil
	}
	if t.guardOfEarlierLeadershipLocked(guard) {
		return fmt.Errorf("producer %d was verified under an earlier leadership: %w", e.id, ErrNotLeader)
	}
	return fmt.Errorf("a marker ended producer %d's transaction while its produce was verified: %w", e.id, ErrInvalidTxnState)
}

// beginProvisional opens e's transaction at logEnd before its first batch
// is appended, when the batch is transactional and none is open. It
// returns whether it did, so a failed append can undo it.
func (t *producerTable) beginProvisional(e *producerEntry, h *record.Header, logEnd int64) bool {
	if !h.IsTransactional() {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.currentTxnFirstOffset >= 0 {
		return false
	}
	e.currentTxnFirstOffset, e.txnProvisional = logEnd, true
	t.syncOngoingLocked(e)
	return true
}

func (t *producerTable) cancelProvisional(e *producerEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.txnProvisional {
		e.currentTxnFirstOffset, e.txnProvisional = -1, false
		t.syncOngoingLocked(e)
	}
}

// checkMarker decides what a marker does: fenced (an error), ignored (no
// open transaction), or written.
func (t *producerTable) checkMarker(e *producerEntry, m TxnMarker) (ignore bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case e.known && m.ProducerEpoch < e.epoch:
		return false, fmt.Errorf("marker epoch %d, producer epoch %d: %w", m.ProducerEpoch, e.epoch, ErrInvalidProducerEpoch)
	case m.CoordinatorEpoch < e.coordinatorEpoch:
		return false, fmt.Errorf("coordinator epoch %d, last seen %d: %w", m.CoordinatorEpoch, e.coordinatorEpoch, ErrTransactionCoordinatorFenced)
	}
	// Written or ignored, the marker ends whatever a produce being
	// verified believed it belonged to.
	delete(t.guards, e.id)
	return !e.known || e.currentTxnFirstOffset < 0, nil
}

// completedTxn is a transaction a marker ended.
type completedTxn struct {
	producerID, firstOffset, lastOffset int64
	lastStableOffset                    int64 // once it is ended
	aborted                             bool
}

// endTxnLocked applies a marker at offset to e and returns the transaction
// it ended (ok false when none was open). The open set still holds it: the
// caller removes it with finishTxn once the abort is indexed.
func (t *producerTable) endTxnLocked(e *producerEntry, producerEpoch int16, m record.Marker, offset, nowMs int64) (completedTxn, bool) {
	if !e.known || producerEpoch > e.epoch {
		e.known, e.epoch, e.numBatches = true, producerEpoch, 0
	}
	e.coordinatorEpoch = max(e.coordinatorEpoch, m.CoordinatorEpoch)
	e.lastUpdateMs = max(e.lastUpdateMs, nowMs)
	if e.currentTxnFirstOffset < 0 {
		return completedTxn{}, false
	}
	c := completedTxn{producerID: e.id, firstOffset: e.currentTxnFirstOffset, lastOffset: offset,
		aborted: m.Type == record.ControlAbort, lastStableOffset: offset + 1}
	if first := t.firstUnstableExceptLocked(e.id); first >= 0 {
		c.lastStableOffset = first
	}
	e.currentTxnFirstOffset, e.txnProvisional = -1, false
	return c, true
}

// finishTxn removes an ended transaction from the open set, letting the
// LSO move past it.
func (t *producerTable) finishTxn(e *producerEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.syncOngoingLocked(e)
}

// replayMarker applies a marker read back from the log (recovery, a
// follower's append) and returns the transaction it ended. It voids the
// producer's verification guard as a marker written here does
// (checkMarker): a produce verified while this replica led, whose append
// comes once it leads again, must not open the transaction that another
// leader's marker ended meanwhile. (Leading again voids every guard
// anyway, voidGuards, as another leader need not write the marker.)
func (t *producerTable) replayMarker(h *record.Header, m record.Marker, nowMs int64) (completedTxn, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.guards, h.ProducerID)
	e := t.replayEntryLocked(h.ProducerID, nowMs)
	c, ok := t.endTxnLocked(e, h.ProducerEpoch, m, h.BaseOffset, nowMs)
	t.syncOngoingLocked(e)
	return c, ok
}

// indexCompleted writes an aborted transaction's .txnindex entry.
func (p *Partition) indexCompleted(c completedTxn) error {
	if !c.aborted {
		return nil
	}
	err := p.log.AppendAbortedTxn(log.AbortedTxn{ProducerID: c.producerID, FirstOffset: c.firstOffset,
		LastOffset: c.lastOffset, LastStableOffset: c.lastStableOffset})
	if err != nil {
		return fmt.Errorf("partition %s: index aborted transaction of producer %d at %d: %w", p.tp, c.producerID, c.lastOffset, err)
	}
	return nil
}

// WriteTxnMarker appends the coordinator's COMMIT or ABORT marker for a
// producer and waits, as a produce with acks=all does, until the ISR has
// it (ctx bounds the wait). A marker from a fenced producer epoch or an
// older coordinator epoch is refused; one for a producer with no open
// transaction here is ignored (see TxnMarkerResult.Ignored).
//
// On __consumer_offsets the group coordinator must hear of the marker
// (coord.Coordinator.TxnMarkerWritten) to settle the transaction's offset
// commits; the WriteTxnMarkers handler tells it. A caller writing markers
// some other way must tell it too.
func (p *Partition) WriteTxnMarker(ctx context.Context, m TxnMarker) (TxnMarkerResult, error) {
	settings := p.settings.Load()
	if n, leading := p.isrSize(); leading && n < settings.minInsyncReplicas {
		return TxnMarkerResult{Offset: -1}, fmt.Errorf("partition %s: ISR has %d of min.insync.replicas %d: %w",
			p.tp, n, settings.minInsyncReplicas, ErrNotEnoughReplicas)
	}
	res, wait, err := p.appendMarker(m, settings)
	if err != nil {
		return res, err
	}
	return res, p.waitCommitted(ctx, wait.offset, wait.leaderEpoch)
}

// markerWait is how far the ISR must have a marker's partition before
// WriteTxnMarker answers.
type markerWait struct {
	offset      int64
	leaderEpoch int32
}

// appendMarker writes a marker and says how far WriteTxnMarker then
// waits for the ISR. An ignored marker (no transaction open) still waits
// for the ISR to have the log as far as it is durable now: it is usually
// a coordinator's retry of a marker whose first write timed out waiting
// for the ISR, and answering it at once would tell the coordinator that
// marker is replicated when it may not be. Kafka appends the marker
// again and waits for it.
func (p *Partition) appendMarker(m TxnMarker, settings *appendSettings) (TxnMarkerResult, markerWait, error) {
	nowMs := p.nowMs()
	entry := p.producers.acquire(m.ProducerID, nowMs)
	defer p.producers.release(entry)
	entry.appendMu.Lock()
	defer entry.appendMu.Unlock()
	p.gate.RLock()
	defer p.gate.RUnlock()
	role, err := p.leaderRole()
	if err != nil {
		return TxnMarkerResult{Offset: -1}, markerWait{}, err
	}
	ignore, err := p.producers.checkMarker(entry, m)
	if err != nil {
		return TxnMarkerResult{Offset: -1}, markerWait{}, fmt.Errorf("partition %s: producer %d: %w", p.tp, m.ProducerID, err)
	}
	if ignore {
		// Read under the gate, in the epoch checked above: an earlier
		// marker of this producer finished its append (appendMu) and is
		// below the durable end.
		return TxnMarkerResult{Offset: -1, Ignored: true}, markerWait{p.log.LogEndOffset(), role.leaderEpoch}, nil
	}
	marker := record.Marker{Type: record.ControlAbort, CoordinatorEpoch: m.CoordinatorEpoch}
	if m.Commit {
		marker.Type = record.ControlCommit
	}
	batch, err := record.AppendMarker(nil, m.ProducerID, m.ProducerEpoch, marker, nowMs)
	if err != nil {
		return TxnMarkerResult{Offset: -1}, markerWait{}, fmt.Errorf("partition %s: %w", p.tp, err)
	}
	info, err := p.enqueueMarkerLocked(batch, role, settings)
	if err != nil {
		return TxnMarkerResult{Offset: -1}, markerWait{}, err
	}
	res, err := p.completeLocked(info, role)
	if err != nil {
		return TxnMarkerResult{Offset: -1}, markerWait{}, err
	}
	p.producers.mu.Lock()
	completed, _ := p.producers.endTxnLocked(entry, m.ProducerEpoch, marker, res.BaseOffset, nowMs)
	p.producers.mu.Unlock()
	if err := p.indexCompleted(completed); err != nil {
		// The marker is in the log but its abort is not indexed: leave
		// the transaction in the open set so no reader is served past
		// it; the log is failed, and recovery rebuilds both.
		return TxnMarkerResult{Offset: -1}, markerWait{}, err
	}
	p.producers.finishTxn(entry)
	p.watchers.Notify() // the LSO moved without the HW moving again
	return TxnMarkerResult{Offset: res.BaseOffset}, markerWait{res.BaseOffset + 1, role.leaderEpoch}, nil
}

// enqueueMarkerLocked queues a marker's batch (the gate and the
// producer's lock held). A panic once the log took the batch (inside
// log.Enqueue, or after it: a bug, not an I/O error) does not stop the
// marker, which the log's round writes anyway: it is logged, and the
// append goes on with the offsets the log gave the batch, so that it
// waits for the write, counts it toward the high watermark and ends the
// transaction, as any marker's. Else the high watermark stayed below the
// marker until the next append, holding every acks=all waiter, and the
// producer's state kept open a transaction whose end is in the log,
// holding the LSO until the coordinator's retry wrote a second marker.
// It is answered as written, not failed: failed, it would not reach the
// group coordinator (the WriteTxnMarkers handler tells it of written
// markers only), and the transaction coordinator, which gives up a
// partition on an unexpected error, would not send it again. A panic
// before the log took the batch is an error, nothing written.
func (p *Partition) enqueueMarkerLocked(batch []byte, role *leadership, settings *appendSettings) (info log.AppendInfo, err error) {
	queued := notQueued // the log fills it as it takes the batch
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		p.logger.Error("queueing a transaction marker panicked", "partition", p.tp.String(), "queuedAt", queued.FirstOffset,
			"panic", r, "stack", string(debug.Stack()))
		info, err = queued, nil
		if queued.LastOffset < 0 {
			info, err = log.AppendInfo{}, fmt.Errorf("partition %s: panic while queueing a transaction marker: %v", p.tp, r)
		}
	}()
	return p.enqueueLocked(batch, role, settings, &queued)
}
