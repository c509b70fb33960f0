package partition

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/sluicelog/sluice/internal/replica"
	"github.com/sluicelog/sluice/internal/vfs"
)

// TestReplicationTruncationWithAFailedCheckpointBringsDerivedState: the
// log manager truncates a log, then checkpoints; when the checkpoint's
// write fails the log has changed all the same. The follower's truncation
// still cuts the leader epoch cache at the log's new end, keeps the high
// watermark at most there, and returns the error.
func TestReplicationTruncationWithAFailedCheckpointBringsDerivedState(t *testing.T) {
	for _, fully := range []bool{false, true} {
		t.Run(fmt.Sprint("fully=", fully), func(t *testing.T) {
			f := newFixture(t)
			efs := vfs.NewErrorFS(f.fs.(*vfs.MemFS))
			f.open(efs)
			f.createTopic("t", 1, nil, []int32{2, testNode})
			p := f.followed()
			epoch := p.LeaderEpoch()
			noErr(t, p.AppendAsFollower(f.leaderBatch(0, 0, 2), epoch, 0, 0))
			noErr(t, p.AppendAsFollower(f.leaderBatch(2, 3, 3), epoch, 5, 0))
			require(t, p.highWatermark.Load() == 5, "high watermark %d", p.highWatermark.Load())

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
		})
	}
}
