package partition

import (
	"math/rand/v2"
	"testing"

	"github.com/sluicelog/sluice/internal/vfs"
)

// TestReplicationFullTruncationDropsProducersAcrossACrash: a follower
// that starts over removes its producer snapshots, and a crash right
// after must not bring them back. The removals were not followed by an
// fsync of the partition's directory, so a crash undid them, and the
// restart loaded the snapshot below the new log start: producer 7's
// sequences, of batches the log no longer holds, were back, and its next
// batch (sequence 0 of a new epoch, say, or a retry) was judged against
// them.
func TestReplicationFullTruncationDropsProducersAcrossACrash(t *testing.T) {
	for seed := range uint64(8) {
		f := newFixture(t)
		mem := f.fs.(*vfs.MemFS)
		p, epoch := f.followerOfProducer7()
		noErr(t, f.mgr.Checkpoint()) // a producer snapshot at offset 5, durable
		noErr(t, p.TruncateFullyAndStartAt(epoch, 9))
		require(t, len(p.Producers()) == 0, "producers after a full truncation: %+v", p.Producers())

		f.open(mem.CrashClone(rand.New(rand.NewPCG(seed, seed))))
		p = f.followed()
		require(t, p.log.LogStartOffset() == 9 && p.log.LogEndOffset() == 9,
			"seed %d: log [%d, %d) after the crash, want it restarted at 9", seed, p.log.LogStartOffset(), p.log.LogEndOffset())
		got := p.Producers()
		require(t, len(got) == 0, "seed %d: producers after a full truncation and a crash: %+v, want none", seed, got)
	}
}

// followerOfProducer7 creates topic t with one partition this node
// follows, and appends idempotent producer 7's batches of offsets 0–1
// and 2–4 as copied from its leader (high watermark 5).
func (f *fixture) followerOfProducer7() (*Partition, int32) {
	f.t.Helper()
	f.createTopic("t", 1, nil, []int32{2, testNode})
	p := f.followed()
	epoch := p.LeaderEpoch()
	noErr(f.t, p.AppendAsFollower(f.leaderBatchOf(idem(7, 0, 0, 2), 0, 0), epoch, 0, 0))
	noErr(f.t, p.AppendAsFollower(f.leaderBatchOf(idem(7, 0, 2, 3), 2, 3), epoch, 5, 0))
	return p, epoch
}
