package partition

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

func txnBatch(pid int64, epoch int16, seq int32, n int) batchSpec {
	return batchSpec{records: n, producerID: pid, producerEpoch: epoch, sequence: seq, transactional: true}
}

func writeMarker(t testing.TB, p *Partition, pid int64, epoch int16, coordinatorEpoch int32, commit bool) TxnMarkerResult {
	t.Helper()
	res, err := p.WriteTxnMarker(context.Background(), TxnMarker{ProducerID: pid, ProducerEpoch: epoch, CoordinatorEpoch: coordinatorEpoch, Commit: commit})
	noErr(t, err)
	return res
}

// readCommitted returns the offsets of the data records a read_committed
// consumer keeps from offset: batches below the LSO, minus control
// batches and the aborted transactions the read lists (as clients drop
// them).
func readCommitted(t testing.TB, p *Partition, offset int64) []int64 {
	t.Helper()
	res, err := p.Read(offset, ReadOptions{MaxBytes: 1 << 30, CurrentLeaderEpoch: -1, ReadCommitted: true})
	noErr(t, err)
	defer res.Records.Release()
	data, err := res.Records.AppendTo(nil)
	noErr(t, err)
	var kept []int64
	for _, h := range batchHeaders(t, data) {
		require(t, h.NextOffset() <= res.LastStableOffset, "batch at %d past the LSO %d", h.BaseOffset, res.LastStableOffset)
		if h.IsControl() {
			continue
		}
		aborted := slices.ContainsFunc(res.AbortedTxns, func(a log.AbortedTxn) bool {
			return a.ProducerID == h.ProducerID && h.IsTransactional() && a.FirstOffset <= h.BaseOffset && h.BaseOffset < a.LastOffset
		})
		if aborted {
			continue
		}
		for o := h.BaseOffset; o <= h.LastOffset(); o++ {
			kept = append(kept, o)
		}
	}
	return kept
}

func offsetsRange(from, to int64) []int64 {
	var out []int64
	for o := from; o < to; o++ {
		out = append(out, o)
	}
	return out
}

func TestTxnLastStableOffsetAndReadCommitted(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{1})
	p := f.partition("t", 0)

	// Producer 7 opens a transaction at 0; a plain batch follows it.
	_, err := p.Append(f.batch(txnBatch(7, 0, 0, 2)))
	noErr(t, err)
	_, err = p.Append(f.batch(plain(1)))
	noErr(t, err)
	o := p.Offsets()
	require(t, o.HighWatermark == 3 && o.LastStableOffset == 0, "open txn: %+v, want HW 3, LSO 0", o)
	require(t, len(readCommitted(t, p, 0)) == 0, "read_committed passed an open transaction")
	require(t, len(readAll(t, p, 0)) == 2, "read_uncommitted sees everything below the HW")

	// Producer 8 opens another at 3; 7 commits: the LSO stops at 8's.
	_, err = p.Append(f.batch(txnBatch(8, 0, 0, 2)))
	noErr(t, err)
	res := writeMarker(t, p, 7, 0, 1, true)
	require(t, res.Offset == 5 && !res.Ignored, "commit marker %+v", res)
	require(t, p.Offsets().LastStableOffset == 3, "LSO %d, want 3 (producer 8's first offset)", p.Offsets().LastStableOffset)
	require(t, slices.Equal(readCommitted(t, p, 0), offsetsRange(0, 3)), "committed: %v", readCommitted(t, p, 0))

	// 8 aborts: its records are listed as aborted, the LSO reaches the HW.
	res = writeMarker(t, p, 8, 0, 1, false)
	require(t, res.Offset == 6, "abort marker %+v", res)
	o = p.Offsets()
	require(t, o.LastStableOffset == 7 && o.HighWatermark == 7, "after abort: %+v", o)
	require(t, slices.Equal(readCommitted(t, p, 0), offsetsRange(0, 3)), "aborted records read: %v", readCommitted(t, p, 0))
	got, err := p.Read(4, ReadOptions{MaxBytes: 1 << 20, CurrentLeaderEpoch: -1, ReadCommitted: true})
	noErr(t, err)
	got.Records.Release()
	want := []log.AbortedTxn{{ProducerID: 8, FirstOffset: 3, LastOffset: 6, LastStableOffset: 7}}
	require(t, slices.Equal(got.AbortedTxns, want), "aborted list from 4: %+v, want %+v", got.AbortedTxns, want)

	states := p.Producers()
	require(t, len(states) == 2 && states[0].CurrentTxnStartOffset == -1 && states[0].CoordinatorEpoch == 1, "producers %+v", states)
}

func TestTxnMarkerRules(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{1})
	p := f.partition("t", 0)
	_, err := p.Append(f.batch(txnBatch(7, 2, 0, 1)))
	noErr(t, err)

	// A plain batch from a producer whose transaction is open.
	_, err = p.Append(f.batch(idem(7, 2, 1, 1)))
	requireErrorIs(t, err, ErrInvalidTxnState)

	_, err = p.WriteTxnMarker(context.Background(), TxnMarker{ProducerID: 7, ProducerEpoch: 1, CoordinatorEpoch: 5, Commit: true})
	requireErrorIs(t, err, ErrInvalidProducerEpoch)
	writeMarker(t, p, 7, 2, 5, false)
	leo := p.Offsets().LogEndOffset

	// A late marker (a coordinator retry, or one for a transaction that
	// never wrote here) changes nothing.
	res := writeMarker(t, p, 7, 2, 5, true)
	require(t, res.Ignored && res.Offset == -1 && p.Offsets().LogEndOffset == leo, "late marker %+v, LEO %d", res, p.Offsets().LogEndOffset)
	res = writeMarker(t, p, 99, 0, 5, true)
	require(t, res.Ignored && p.Offsets().LogEndOffset == leo, "marker for an unknown producer %+v", res)

	// An older coordinator is fenced, even for a new transaction.
	_, err = p.Append(f.batch(txnBatch(7, 2, 1, 1)))
	noErr(t, err)
	_, err = p.WriteTxnMarker(context.Background(), TxnMarker{ProducerID: 7, ProducerEpoch: 2, CoordinatorEpoch: 4, Commit: true})
	requireErrorIs(t, err, ErrTransactionCoordinatorFenced)
	require(t, p.Offsets().LastStableOffset == leo, "LSO %d, want the open transaction's %d", p.Offsets().LastStableOffset, leo)
	require(t, !p.NeedsTxnVerification(7, 2) && p.NeedsTxnVerification(7, 3) && p.NeedsTxnVerification(8, 0),
		"verification needed only to open a transaction")
}

// TestTxnStateSurvivesRestart: open transactions and the aborted index
// come back after a restart, from a snapshot or from the log alone, and
// after a truncation.
func TestTxnStateSurvivesRestart(t *testing.T) {
	for _, snapshot := range []bool{false, true} {
		t.Run(fmt.Sprintf("snapshot=%v", snapshot), func(t *testing.T) {
			f := newFixture(t)
			f.createTopic("t", 1, nil, []int32{1})
			p := f.partition("t", 0)
			_, err := p.Append(f.batch(txnBatch(1, 0, 0, 2))) // 0-1, aborted
			noErr(t, err)
			_, err = p.Append(f.batch(txnBatch(2, 0, 0, 1))) // 2, stays open
			noErr(t, err)
			writeMarker(t, p, 1, 0, 3, false) // 3
			if snapshot {
				noErr(t, f.mgr.Checkpoint())
			}
			_, err = p.Append(f.batch(txnBatch(3, 0, 0, 1))) // 4, aborted after the snapshot
			noErr(t, err)
			writeMarker(t, p, 3, 0, 3, false) // 5
			before := p.Offsets()
			beforeRead, err := p.Read(0, ReadOptions{MaxBytes: 1 << 20, CurrentLeaderEpoch: -1, ReadCommitted: true})
			noErr(t, err)
			beforeRead.Records.Release()
			require(t, before.LastStableOffset == 2 && len(beforeRead.AbortedTxns) == 1, "before: %+v %+v", before, beforeRead.AbortedTxns)

			f.restart()
			p = f.partition("t", 0)
			require(t, p.Offsets() == before, "offsets after restart %+v, want %+v", p.Offsets(), before)
			writeMarker(t, p, 2, 0, 3, true) // 6: the open transaction is still known
			after, err := p.Read(0, ReadOptions{MaxBytes: 1 << 20, CurrentLeaderEpoch: -1, ReadCommitted: true})
			noErr(t, err)
			after.Records.Release()
			want := []log.AbortedTxn{{ProducerID: 1, FirstOffset: 0, LastOffset: 3, LastStableOffset: 2},
				{ProducerID: 3, FirstOffset: 4, LastOffset: 5, LastStableOffset: 2}}
			require(t, slices.Equal(after.AbortedTxns, want), "aborted after restart %+v, want %+v", after.AbortedTxns, want)
			require(t, slices.Equal(readCommitted(t, p, 0), []int64{2}), "read_committed after restart: %v", readCommitted(t, p, 0))
		})
	}
}

// TestTxnFollowerReplicatesMarkers: a follower rebuilds the open
// transactions and the aborted index from what it copies, and serves the
// same read_committed view once it leads.
func TestTxnFollowerReplicatesMarkers(t *testing.T) {
	c, b1, b2 := pairOfBrokers(t, brokerOpts{})
	p1 := b1.leader()
	f2 := b2.hosted()
	_, err := p1.Append(c.batch(txnBatch(1, 0, 0, 2)))
	noErr(t, err)
	_, err = p1.Append(c.batch(txnBatch(2, 0, 0, 2)))
	noErr(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := p1.WriteTxnMarker(context.Background(), TxnMarker{ProducerID: 1, CoordinatorEpoch: 1})
		done <- err
	}()
	c.eventually(func() error {
		select {
		case err := <-done:
			return err
		default:
			return fmt.Errorf("abort marker not yet replicated")
		}
	})
	c.requireConverged(p1, f2)
	leaderView := readCommittedFull(t, p1)

	c.change(2, 2, 1)
	p2 := b2.leader()
	c.eventually(func() error {
		if o := p2.Offsets(); o.LastStableOffset != 2 {
			return fmt.Errorf("new leader offsets %+v, want LSO 2 (producer 2's open transaction)", o)
		}
		return nil
	})
	res := writeMarker(t, p2, 2, 0, 1, true)
	require(t, !res.Ignored, "the new leader lost producer 2's open transaction")
	require(t, slices.Equal(p2.Producers()[0:1], []ProducerState{{ProducerID: 1, ProducerEpoch: 0, LastSequence: 1,
		LastTimestampMs: p2.Producers()[0].LastTimestampMs, CoordinatorEpoch: 1, CurrentTxnStartOffset: -1}}), "producers %+v", p2.Producers())
	newView := readCommittedFull(t, p2)
	require(t, slices.Equal(newView.AbortedTxns, leaderView.AbortedTxns), "aborted on the new leader %+v, old %+v", newView.AbortedTxns, leaderView.AbortedTxns)
	require(t, slices.Equal(readCommitted(t, p2, 0), []int64{2, 3}), "read_committed on the new leader: %v", readCommitted(t, p2, 0))
}

func readCommittedFull(t testing.TB, p *Partition) ReadResult {
	t.Helper()
	res, err := p.Read(0, ReadOptions{MaxBytes: 1 << 20, CurrentLeaderEpoch: -1, ReadCommitted: true})
	noErr(t, err)
	res.Records.Release()
	return res
}

// TestTxnCrashRecovery crashes the broker (keeping what was synced and a
// random part of the rest) after transactions opened, committed and
// aborted, with and without a snapshot first: the LSO, the open
// transactions and the aborted list come back as acknowledged.
func TestTxnCrashRecovery(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			f := newFixture(t)
			mem := f.fs.(*vfs.MemFS)
			f.createTopic("t", 1, nil, []int32{1})
			p := f.partition("t", 0)
			for pid := int64(1); pid <= 4; pid++ {
				_, err := p.Append(f.batch(txnBatch(pid, 0, 0, 2)))
				noErr(t, err)
			}
			writeMarker(t, p, 1, 0, 1, false)
			if seed%2 == 0 {
				noErr(t, f.mgr.Checkpoint())
			}
			writeMarker(t, p, 2, 0, 1, true)
			writeMarker(t, p, 3, 0, 1, false)
			_, err := p.Append(f.batch(plain(1)))
			noErr(t, err)
			before := readCommittedFull(t, p)
			require(t, before.LastStableOffset == 6 && len(before.AbortedTxns) == 2, "before the crash: %+v", before)

			f.open(mem.CrashClone(rand.New(rand.NewPCG(seed, 7))))
			t.Logf("crash seed %d", seed)
			p = f.partition("t", 0)
			after := readCommittedFull(t, p)
			require(t, after.LastStableOffset == before.LastStableOffset && after.HighWatermark == before.HighWatermark,
				"offsets after the crash: LSO %d HW %d, want %d %d", after.LastStableOffset, after.HighWatermark, before.LastStableOffset, before.HighWatermark)
			require(t, slices.Equal(after.AbortedTxns, before.AbortedTxns), "aborted after the crash %+v, want %+v", after.AbortedTxns, before.AbortedTxns)
			res := writeMarker(t, p, 4, 0, 1, true)
			require(t, !res.Ignored, "producer 4's open transaction was lost")
			res = writeMarker(t, p, 1, 0, 1, true)
			require(t, res.Ignored, "producer 1's aborted transaction came back open")
		})
	}
}

func TestTxnSnapshotVersions(t *testing.T) {
	producers := []snapshotProducer{{id: 4, epoch: 1, lastUpdateMs: 9, coordinatorEpoch: 6, currentTxnFirstOffset: 30,
		batches: []producerBatch{{0, 1, 30, 31, 500}}}}
	off, got, err := decodeSnapshot(encodeSnapshot(32, producers))
	noErr(t, err)
	require(t, off == 32 && reflect.DeepEqual(got, producers), "v2 round trip: %+v", got)

	// A version 1 snapshot (before transactions) still loads, with no
	// open transaction and no coordinator epoch.
	v1 := make([]byte, snapshotHeaderSize)
	binary.BigEndian.PutUint16(v1, snapshotVersion1)
	binary.BigEndian.PutUint64(v1[6:], 32)
	binary.BigEndian.PutUint32(v1[14:], 1)
	v1 = binary.BigEndian.AppendUint64(v1, 4)
	v1 = binary.BigEndian.AppendUint16(v1, 1)
	v1 = binary.BigEndian.AppendUint64(v1, 9)
	v1 = append(v1, 0)
	binary.BigEndian.PutUint32(v1[2:], crc32.Checksum(v1[6:], castagnoli))
	_, got, err = decodeSnapshot(v1)
	noErr(t, err)
	require(t, len(got) == 1 && got[0].id == 4 && got[0].coordinatorEpoch == -1 && got[0].currentTxnFirstOffset == -1, "v1: %+v", got)
}

// TestTxnLastStableOffsetNotBelowLogStart: DeleteRecords past an open
// transaction's first batch leaves the LSO at the log start offset.
func TestTxnLastStableOffsetNotBelowLogStart(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{1})
	p := f.partition("t", 0)
	_, err := p.Append(f.batch(txnBatch(1, 0, 0, 2)))
	noErr(t, err)
	_, err = p.Append(f.batch(plain(3)))
	noErr(t, err)
	_, err = p.DeleteRecordsBefore(3)
	noErr(t, err)
	require(t, p.Offsets().LastStableOffset == 3, "LSO %d, want the log start 3", p.Offsets().LastStableOffset)
	res, err := p.Read(3, ReadOptions{MaxBytes: 1 << 20, CurrentLeaderEpoch: -1, ReadCommitted: true})
	noErr(t, err)
	res.Records.Release()
	require(t, res.Records.Size == 0 && res.LastStableOffset == 3, "read_committed at the log start: %+v", res)
}

// TestTxnReadCommittedAcrossSegments: a consumer reading a many-segment
// log read by read, dropping what each read's own aborted list names (as
// clients do), keeps exactly the committed and plain records, although
// each read lists aborted transactions only up to its segment's end.
func TestTxnReadCommittedAcrossSegments(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, map[string]string{config.SegmentBytes: "4096", config.IndexIntervalBytes: "256"}, []int32{1})
	p := f.partition("t", 0)
	var want []int64
	seq := map[int64]int32{}
	for round := range 40 {
		pid := int64(round % 3)
		res, err := p.Append(f.batch(batchSpec{records: 3, valueSize: 200, producerID: pid, sequence: seq[pid], transactional: true}))
		noErr(t, err)
		seq[pid] += 3
		plainRes, err := p.Append(f.batch(batchSpec{records: 1, valueSize: 200, producerID: -1}))
		noErr(t, err)
		want = append(want, plainRes.BaseOffset)
		commit := round%4 != 1
		writeMarker(t, p, pid, 0, 1, commit)
		if commit {
			want = append(want, offsetsRange(res.BaseOffset, res.LastOffset+1)...)
		}
	}
	require(t, p.log.NumSegments() > 5, "%d segments, want many", p.log.NumSegments())
	slices.Sort(want)
	var got []int64
	for offset := int64(0); offset < p.Offsets().LastStableOffset; {
		res, err := p.Read(offset, ReadOptions{MaxBytes: 1500, MinOneBatch: true, CurrentLeaderEpoch: -1, ReadCommitted: true})
		noErr(t, err)
		data, err := res.Records.AppendTo(nil)
		res.Records.Release()
		noErr(t, err)
		var headers []record.Header
		for rest := data; len(rest) > 0; {
			_, next, h, err := record.NextBatch(rest)
			if errors.Is(err, record.ErrTruncated) {
				break // a byte limit inside a batch: clients drop the tail
			}
			noErr(t, err)
			headers, rest = append(headers, h), next
		}
		require(t, len(headers) > 0, "empty read at %d below the LSO %d", offset, res.LastStableOffset)
		for _, h := range headers {
			offset = h.NextOffset()
			aborted := slices.ContainsFunc(res.AbortedTxns, func(a log.AbortedTxn) bool {
				return a.ProducerID == h.ProducerID && h.IsTransactional() && a.FirstOffset <= h.BaseOffset && h.BaseOffset < a.LastOffset
			})
			if h.IsControl() || aborted {
				continue
			}
			got = append(got, offsetsRange(h.BaseOffset, h.LastOffset()+1)...)
		}
	}
	require(t, slices.Equal(got, want), "read_committed kept %v\nwant %v", got, want)
}

// TestTxnVerificationsShareTheGuard: two first transactional produces of
// one producer verified at once (the second a retry on another
// connection) both hold the producer's pending guard, as Kafka's share
// its VerificationStateEntry: the older is appended though the newer
// began after it, and the newer's ending does not void it. A marker voids
// the guard for every holder.
func TestTxnVerificationsShareTheGuard(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{1})
	p := f.partition("t", 0)

	older := p.BeginTxnVerification(7)
	newer := p.BeginTxnVerification(7)
	p.EndTxnVerification(7, newer) // its verification failed
	_, err := p.AppendVerified(f.batch(txnBatch(7, 0, 0, 1)), older)
	noErr(t, err)
	writeMarker(t, p, 7, 0, 1, true)

	older = p.BeginTxnVerification(7)
	newer = p.BeginTxnVerification(7)
	writeMarker(t, p, 7, 0, 1, false) // ignored, but ends the verifications
	for _, guard := range []uint64{older, newer} {
		_, err = p.AppendVerified(f.batch(txnBatch(7, 0, 1, 1)), guard)
		requireErrorIs(t, err, ErrInvalidTxnState)
	}
}

// TestTxnProvisionalOpenNeedsVerification: a transaction a batch opens
// provisionally while it is being queued (its producer's lock held, on
// another connection) is not yet open. A batch of the producer that
// looks meanwhile must be verified with the coordinator, as Kafka's
// hasOngoingTransaction counts only appended batches: had it skipped its
// check and the first batch failed, it was refused INVALID_TXN_STATE
// under TxnOpenGuard, with nothing wrong with its transaction.
func TestTxnProvisionalOpenNeedsVerification(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{1})
	p := f.partition("t", 0)
	_, err := p.Append(f.batch(txnBatch(7, 0, 0, 1)))
	noErr(t, err)
	writeMarker(t, p, 7, 0, 1, true)

	// The next transaction's first batch, being queued.
	entry := p.producers.acquire(7, f.clock.Now().UnixMilli())
	h, err := record.ParseHeader(f.batch(txnBatch(7, 0, 1, 1)))
	noErr(t, err)
	require(t, p.producers.beginProvisional(entry, &h, p.log.LogEndOffset()), "the batch opened no transaction")
	needs := p.NeedsTxnVerification(7, 0)
	p.producers.cancelProvisional(entry) // its append failed
	p.producers.release(entry)
	require(t, needs, "a transaction opened provisionally by a batch not yet queued let another batch skip its verification")
}

// TestTxnVerificationOutlivesAFailedAppend: two first batches of one
// producer hold its pending guard (a retry on another connection); the
// first one's append fails after its guard was checked (the leader epoch
// checkpoint could not be written). The guard must still be pending for
// the second, which the coordinator verified too, as Kafka clears the
// producer's verification state only once a transactional batch is
// appended: consumed by the failed append, it refused the second batch
// INVALID_TXN_STATE.
func TestTxnVerificationOutlivesAFailedAppend(t *testing.T) {
	f := newFixture(t)
	efs := vfs.NewErrorFS(f.fs)
	f.open(efs)
	f.createTopic("t", 1, nil, []int32{testNode})
	p := f.partition("t", 0)

	first := p.BeginTxnVerification(7)
	second := p.BeginTxnVerification(7)
	efs.Inject(vfs.Rule{Op: vfs.OpWrite, PathContains: "leader-epoch-checkpoint", Count: -1})
	_, err := p.AppendVerified(f.batch(txnBatch(7, 0, 0, 1)), first)
	requireErrorIs(t, err, log.ErrStorage)
	p.EndTxnVerification(7, first)
	efs.Clear()
	_, err = p.AppendVerified(f.batch(txnBatch(7, 0, 0, 1)), second)
	noErr(t, err)
	p.EndTxnVerification(7, second)
	require(t, !p.NeedsTxnVerification(7, 0), "the second batch opened no transaction")
}

// TestTxnRecordingPanicLeavesNoTransactionOpenNorADuplicate: a panic
// while a producer's first transactional batch, already in the log's
// queue, was being recorded in its state (before the entry was marked
// known) failed the append, and release then dropped the still unknown
// entry while the transaction it had opened provisionally stayed in the
// open set: the coordinator's abort marker was ignored (no transaction
// for an unknown producer) and the LSO stayed at the batch for good,
// stopping read_committed consumers. The client's retry of the batch,
// which the state did not hold, was appended a second time.
func TestTxnRecordingPanicLeavesNoTransactionOpenNorADuplicate(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{testNode})
	p := f.partition("t", 0)
	p.producers.recordFault = func(*producerEntry) {
		p.producers.recordFault = nil
		panic("recording bug")
	}
	_, err := p.StartProduce(f.batch(txnBatch(9, 0, 0, 2)), ProduceOptions{AcksAll: true})
	require(t, err != nil && strings.Contains(err.Error(), "panic"), "StartProduce under a panic: %v", err)

	requirePanicSettled(t, f, p)
}

// requirePanicSettled checks what a panic's recovery must leave behind
// producer 9's first transactional batch (offsets 0 and 1, in the log):
// the client's retry is answered as a duplicate, not appended again, and
// the coordinator's abort ends the transaction, so the LSO reaches the
// high watermark.
func requirePanicSettled(t *testing.T, f *fixture, p *Partition) {
	t.Helper()
	res, err := p.Append(f.batch(txnBatch(9, 0, 0, 2)))
	noErr(t, err)
	require(t, res.Duplicate && res.BaseOffset == 0, "the retry of the batch in the log: %+v, want it answered as a duplicate at 0", res)
	marker := writeMarker(t, p, 9, 0, 1, false)
	require(t, !marker.Ignored, "the abort marker was ignored: the transaction stays open")
	_, err = p.Append(f.batch(plain(1)))
	noErr(t, err)
	o := p.Offsets()
	require(t, o.LastStableOffset == o.HighWatermark, "after the abort: %+v, want the LSO at the high watermark", o)
}

// TestTxnEnqueuePanicAfterTheLogTookTheBatch: a panic once the log had
// queued a producer's first transactional batch, but before the append
// knew it (inside log.Enqueue, after it took the batch), was settled as
// one before the log took it: the transaction the batch opened was
// cancelled with the batch in the log, and the still unknown producer
// forgotten, so the coordinator's abort was ignored and the LSO held at
// the batch for good; the client's retry was appended a second time; and
// nothing waited for the write, so the request's bytes, recycled once the
// append failed, were what the log then wrote. Written, the batch must
// count toward the high watermark as finish would have counted it.
func TestTxnEnqueuePanicAfterTheLogTookTheBatch(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{testNode})
	p := f.partition("t", 0)
	p.enqueueFault = func() {
		p.enqueueFault = nil
		panic("queueing bug")
	}
	data := f.batch(txnBatch(9, 0, 0, 2))
	_, err := p.StartProduce(data, ProduceOptions{AcksAll: true})
	require(t, err != nil && strings.Contains(err.Error(), "panic"), "StartProduce under a panic: %v", err)
	clear(data) // the request's frame, reused once the append failed

	headers := readAll(t, p, 0)
	require(t, len(headers) == 1 && headers[0].ProducerID == 9 && headers[0].LastOffset() == 1,
		"the log after the panic: %+v, want producer 9's batch of 2 records", headers)
	requirePanicSettled(t, f, p)
}

// TestTxnMarkerPanicAfterTheLogTookTheMarker: a panic once the log had
// queued a coordinator's abort marker (inside log.Enqueue, after it took
// the batch) went up through WriteTxnMarker with nothing settled (in the
// broker, it ended the process). The log's round wrote the marker all
// the same, but the high watermark stayed below it until the next
// append, holding acks=all waiters, and the producer's transaction
// stayed open with its end in the log, holding the LSO: the
// coordinator's retry wrote a second marker. The marker now goes on as
// written.
func TestTxnMarkerPanicAfterTheLogTookTheMarker(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{testNode})
	p := f.partition("t", 0)
	_, err := p.Append(f.batch(txnBatch(9, 0, 0, 2)))
	noErr(t, err)
	p.enqueueFault = func() {
		p.enqueueFault = nil
		panic("queueing bug")
	}
	res, err := writeMarkerRecovering(p, TxnMarker{ProducerID: 9, CoordinatorEpoch: 1})
	require(t, err == nil && res.Offset == 2, "WriteTxnMarker under a panic once the log took the marker: %+v, %v; want it written at 2", res, err)

	o := p.Offsets()
	require(t, o.HighWatermark == 3 && o.LastStableOffset == 3,
		"after the marker at 2: %+v, want the high watermark and the LSO past it", o)
	retry := writeMarker(t, p, 9, 0, 1, false)
	require(t, retry.Ignored, "the coordinator's retry was written again, at %d", retry.Offset)
	headers := readAll(t, p, 0)
	require(t, len(headers) == 2 && headers[1].BaseOffset == 2, "the log: %+v, want the batch and one marker", headers)
}

// writeMarkerRecovering is WriteTxnMarker with a panic that escapes it
// turned into its error.
func writeMarkerRecovering(p *Partition, m TxnMarker) (res TxnMarkerResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("escaped panic: %v", r)
		}
	}()
	return p.WriteTxnMarker(context.Background(), m)
}

// TestTxnVerificationVoidedByAReplicatedMarker: a produce verified here
// while leading, whose append comes after leadership went away and came
// back, is refused if a marker for its producer reached this replica
// meanwhile, as a follower, from the other leader: that marker ended the
// transaction the verification confirmed, as a marker written here does
// (checkMarker). Kept pending, the guard let the batch open a
// transaction here that no marker would end (its coordinator had
// finished it), holding the LSO for good. The leadership change voids
// the guard first (TestTxnVerificationVoidedByLeadershipLoss), so the
// refusal is the retriable one; the client's retry is verified again and
// the coordinator refuses it.
func TestTxnVerificationVoidedByAReplicatedMarker(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{testNode, 2})
	f.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: metadata.NoLeaderChange, ISR: []int32{testNode}})
	p := f.partition("t", 0)
	guard := p.BeginTxnVerification(7) // the coordinator's answer is on its way

	// Broker 2 leads: the transaction's batch (a retry there) and its
	// abort marker reach this replica.
	f.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: 2})
	p = f.followed()
	epoch := p.LeaderEpoch()
	data := f.batch(txnBatch(7, 0, 0, 1))
	marker, err := record.AppendMarker(nil, 7, 0, record.Marker{Type: record.ControlAbort, CoordinatorEpoch: 1}, f.nowMs())
	noErr(t, err)
	for i, b := range [][]byte{data, marker} {
		binary.BigEndian.PutUint64(b[0:8], uint64(i))
		binary.BigEndian.PutUint32(b[12:16], uint32(epoch))
		noErr(t, p.AppendAsFollower(b, epoch, int64(i+1), 0))
	}
	require(t, p.NeedsTxnVerification(7, 0), "the replicated marker left producer 7's transaction open")

	f.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: testNode})
	noErr(t, f.mgr.Refresh())
	p = f.partition("t", 0)
	_, err = p.AppendVerified(f.batch(txnBatch(7, 0, 1, 1)), guard)
	requireErrorIs(t, err, ErrNotLeader)
	p.EndTxnVerification(7, guard)
	require(t, p.NeedsTxnVerification(7, 0), "a batch of the aborted transaction opened a transaction of producer 7 again")
}

// TestTxnVerificationVoidedByLeadershipLoss: as
// TestTxnVerificationVoidedByAReplicatedMarker, but the other leader
// wrote no marker here to replicate: it had no batch of the producer in
// the transaction, so it ignored the coordinator's abort (appendMarker's
// Ignored). Nothing this replica sees says the transaction ended, so the
// guard taken under an earlier leadership must not outlive it: the
// append under it must be refused (retriably, the client verifying again)
// rather than open a transaction no coordinator will end.
func TestTxnVerificationVoidedByLeadershipLoss(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{testNode, 2})
	f.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: metadata.NoLeaderChange, ISR: []int32{testNode}})
	p := f.partition("t", 0)
	guard := p.BeginTxnVerification(7) // the coordinator's answer is on its way

	f.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: 2})
	p = f.followed() // the transaction is aborted meanwhile, its marker ignored there
	f.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: testNode})
	noErr(t, f.mgr.Refresh())
	p = f.partition("t", 0)
	requireErrorIs(t, p.CheckTxnVerification(7, guard), ErrNotLeader)
	_, err := p.AppendVerified(f.batch(txnBatch(7, 0, 0, 1)), guard)
	requireErrorIs(t, err, ErrNotLeader) // retried, and verified again
	p.EndTxnVerification(7, guard)
	require(t, p.NeedsTxnVerification(7, 0), "a batch verified under an earlier leadership opened a transaction of producer 7")

	// The client's retry is verified again, under this leadership.
	guard = p.BeginTxnVerification(7)
	_, err = p.AppendVerified(f.batch(txnBatch(7, 0, 0, 1)), guard)
	noErr(t, err)
	p.EndTxnVerification(7, guard)
}

// TestTxnVerificationBegunWhileFollowingIsVoidedByLeading: a check begun
// while this replica follows (the produce found it leading just before
// it stopped) is no safer than one begun under an earlier leadership: the
// leader then may ignore the coordinator's abort, leaving nothing here.
// Becoming leader voids it too.
func TestTxnVerificationBegunWhileFollowingIsVoidedByLeading(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{testNode, 2})
	f.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: 2})
	p := f.followed()
	guard := p.BeginTxnVerification(7)

	f.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: testNode})
	noErr(t, f.mgr.Refresh())
	p = f.partition("t", 0)
	_, err := p.AppendVerified(f.batch(txnBatch(7, 0, 0, 1)), guard)
	requireErrorIs(t, err, ErrNotLeader)
	p.EndTxnVerification(7, guard)
	require(t, p.NeedsTxnVerification(7, 0), "a batch verified while following opened a transaction of producer 7")
}

// TestTxnVerificationSurvivesAnISRChange: an ISR change moves the
// partition epoch, not the leader epoch, and this node keeps leading, so
// no marker can have passed it by: a guard taken before it must stay
// pending, or every healthy transaction whose first produce was being
// verified as a follower fell behind would be refused and retried.
func TestTxnVerificationSurvivesAnISRChange(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{testNode, 2})
	p := f.partition("t", 0)
	guard := p.BeginTxnVerification(7)

	f.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: metadata.NoLeaderChange, ISR: []int32{testNode}})
	noErr(t, f.mgr.Refresh())
	f.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: metadata.NoLeaderChange, ISR: []int32{testNode, 2}})
	noErr(t, f.mgr.Refresh())
	p = f.partition("t", 0)
	noErr(t, p.CheckTxnVerification(7, guard))
	_, err := p.AppendVerified(f.batch(txnBatch(7, 0, 0, 1)), guard)
	noErr(t, err)
	p.EndTxnVerification(7, guard)
	require(t, !p.NeedsTxnVerification(7, 0), "the verified batch opened no transaction of producer 7")
}

// TestTxnMarkerRetryWaitsForTheISR: a coordinator retries a marker whose
// first write timed out waiting for the ISR. The retry finds no
// transaction open and writes nothing, but it must not be answered
// before the first marker is replicated, or the coordinator would take
// the transaction as complete on this partition.
func TestTxnMarkerRetryWaitsForTheISR(t *testing.T) {
	c, b1, _ := pairOfBrokers(t, brokerOpts{})
	p1 := b1.leader()
	_, err := p1.Append(c.batch(txnBatch(1, 0, 0, 2)))
	noErr(t, err)
	c.cut(1, 2)
	marker := TxnMarker{ProducerID: 1, CoordinatorEpoch: 1, Commit: true}
	write := func() (TxnMarkerResult, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		return p1.WriteTxnMarker(ctx, marker)
	}
	_, err = write()
	require(t, errors.Is(err, context.DeadlineExceeded), "the marker with the follower cut off: %v", err)
	res, err := write()
	require(t, res.Ignored, "the retry wrote a second marker: %+v", res)
	require(t, errors.Is(err, context.DeadlineExceeded), "the retry was answered %v while the first marker is not replicated", err)
	c.setLink(1, 2, linkUp)
	c.setLink(2, 1, linkUp)
	c.eventually(func() error {
		_, err := write()
		return err
	})
}
