package partition

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sluicelog/sluice/internal/vfs"
)

// TestTxnCrashRecoveryJournal: with log.flush.journal, an ABORT marker
// acknowledged from the journal alone, followed by a producer-state
// snapshot, keeps its aborted-transaction entry across a crash that
// loses the segment's tail: the journal's replay brings the marker back
// below the snapshot, where the partition's load does not rebuild
// entries.
func TestTxnCrashRecoveryJournal(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			f := newFixtureJournal(t, true)
			mem := f.fs.(*vfs.MemFS)
			f.createTopic("t", 1, nil, []int32{1})
			p := f.partition("t", 0)
			for pid := int64(1); pid <= 3; pid++ {
				_, err := p.Append(f.batch(txnBatch(pid, 0, 0, 2)))
				noErr(t, err)
			}
			writeMarker(t, p, 1, 0, 1, false)
			writeMarker(t, p, 2, 0, 1, true)
			_, err := p.Append(f.batch(plain(1)))
			noErr(t, err)
			noErr(t, f.mgr.Checkpoint())
			before := readCommittedFull(t, p)
			require(t, len(before.AbortedTxns) == 1, "before the crash: %+v", before)

			f.open(mem.CrashClone(rand.New(rand.NewPCG(seed, 7))))
			p = f.partition("t", 0)
			after := readCommittedFull(t, p)
			require(t, after.LastStableOffset == before.LastStableOffset && after.HighWatermark == before.HighWatermark,
				"offsets after the crash: LSO %d HW %d, want %d %d", after.LastStableOffset, after.HighWatermark, before.LastStableOffset, before.HighWatermark)
			require(t, slices.Equal(after.AbortedTxns, before.AbortedTxns), "aborted after the crash %+v, want %+v", after.AbortedTxns, before.AbortedTxns)
			res := writeMarker(t, p, 1, 0, 1, true)
			require(t, res.Ignored, "producer 1's aborted transaction came back open")
		})
	}
}

// TestIdempotentCrashRecoveryJournal: with log.flush.journal, producer
// state snapshotted over rounds acknowledged from the journal alone
// still recognises every retry after a crash that lost the segment's
// tail (the replay brings the batches back before the partition loads).
func TestIdempotentCrashRecoveryJournal(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			f := newFixtureJournal(t, true)
			mem := f.fs.(*vfs.MemFS)
			f.createTopic("t", 1, nil, []int32{1})
			p := f.partition("t", 0)
			acked := appendProducerHistory(t, f, p, 0, 6)
			noErr(t, f.mgr.Checkpoint())
			for pid, more := range appendProducerHistory(t, f, p, 6, 2) {
				acked[pid] = append(acked[pid], more...)
			}
			leo := p.Offsets().LogEndOffset
			f.open(mem.CrashClone(rand.New(rand.NewPCG(seed, 9))))
			require(t, f.partition("t", 0).Offsets().LogEndOffset == leo, "log end %d after the crash, want %d",
				f.partition("t", 0).Offsets().LogEndOffset, leo)
			requireDedupes(t, f, acked, 8)
		})
	}
}
