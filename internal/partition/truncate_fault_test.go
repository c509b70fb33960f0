package partition

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/replica"
	"github.com/sluicelog/sluice/internal/vfs"
)

// TestReplicationTruncationWithAFailedCheckpointBringsDerivedState: the
// log manager truncates a log, then checkpoints; when the checkpoint's
// write fails the log has changed all the same. The follower's truncation
// still cuts the leader epoch cache at the log's new end, keeps the high
// watermark at most there, rebuilds the producer state from what the log
// kept (a producer snapshot taken past the new end is not trusted), and
// returns the error.
func TestReplicationTruncationWithAFailedCheckpointBringsDerivedState(t *testing.T) {
	for _, fully := range []bool{false, true} {
		t.Run(fmt.Sprint("fully=", fully), func(t *testing.T) {
			f := newFixture(t)
			efs := vfs.NewErrorFS(f.fs.(*vfs.MemFS))
			f.open(efs)
			p, epoch := f.followerOfProducer7()
			require(t, p.highWatermark.Load() == 5, "high watermark %d", p.highWatermark.Load())
			noErr(t, f.mgr.Checkpoint()) // a producer snapshot at offset 5

			efs.Inject(vfs.Rule{Op: vfs.OpWrite, PathContains: "recovery-point-offset-checkpoint", Count: -1})
			var err error
			wantEnd, want := int64(2), []replica.EpochEntry{{Epoch: 0, StartOffset: 0}}
			if fully {
				err = p.TruncateFullyAndStartAt(epoch, 9)
				// The newest epoch moves up to the new log start.
				wantEnd, want = 9, []replica.EpochEntry{{Epoch: 3, StartOffset: 9}}
			} else {
				_, err = p.TruncateForLeader(epoch, 0, 2)
			}
			efs.Clear()
			require(t, err != nil, "the truncation succeeded although its checkpoint failed")
			require(t, p.log.LogEndOffset() == wantEnd, "log end %d, want %d", p.log.LogEndOffset(), wantEnd)
			got := p.LeaderEpochEntries()
			require(t, reflect.DeepEqual(got, want), "epoch entries %v after the truncation, want %v", got, want)
			require(t, p.highWatermark.Load() <= wantEnd, "high watermark %d past the log end %d", p.highWatermark.Load(), wantEnd)
			checkProducersAfterTruncation(t, f, p, fully)
		})
	}
}

// checkProducersAfterTruncation: producer 7's second batch (sequences
// 2-4, offsets 2-4) was truncated away, so its last sequence is back at
// the kept batch's 1, and once this replica leads, the producer's retry
// of the truncated batch is appended anew, not answered as a duplicate
// at offsets the log no longer holds. A full truncation keeps none of
// the producer's batches, so nothing of it.
func checkProducersAfterTruncation(t *testing.T, f *fixture, p *Partition, fully bool) {
	t.Helper()
	got := p.Producers()
	if fully {
		require(t, len(got) == 0, "producers after a full truncation: %+v, want none", got)
		return
	}
	require(t, len(got) == 1 && got[0].ProducerID == 7 && got[0].LastSequence == 1,
		"producers after the truncation: %+v, want producer 7 at sequence 1", got)
	f.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: testNode})
	noErr(t, f.mgr.Refresh())
	res, err := p.Append(f.batch(idem(7, 0, 2, 3)))
	noErr(t, err)
	require(t, !res.Duplicate && res.BaseOffset == 2 && p.log.LogEndOffset() == 5,
		"retry of the truncated batch: %+v, log end %d; want it appended at 2", res, p.log.LogEndOffset())
}
