package partition

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/vfs"
)

// TestPartitionDeletedCheckpointLeavesTheRecreatedLogAlone: a checkpoint
// collects the hosted partitions, and one of them is deleted and its topic
// created again before the checkpoint reaches it. The deleted partition's
// snapshot went to its log's path, by then the new log's directory, and
// its pruning removed the new log's own snapshots past it: after a crash,
// the new topic's partition started with the producers (open
// transactions included) of the deleted one.
func TestPartitionDeletedCheckpointLeavesTheRecreatedLogAlone(t *testing.T) {
	f := newFixture(t)
	mem := f.fs.(*vfs.MemFS)
	f.createTopic("t", 1, nil, []int32{testNode})
	old := f.partition("t", 0)
	_, err := old.Append(f.batch(idem(7, 0, 0, 3)))
	noErr(t, err)

	p := recreateTopic(t, f, old)
	noErr(t, f.mgr.Checkpoint()) // the new log's snapshot at 5

	// What Manager.Checkpoint does with a partition it collected before
	// the deletion.
	_, _ = f.mgr.snapshotProducers([]*Partition{old}, 1)
	_, err = f.fs.Stat(p.path(snapshotName(3)))
	require(t, isNotExist(err), "the deleted partition wrote its snapshot into the re-created log's directory: %v", err)

	noErr(t, mem.SyncDir(p.log.Dir())) // any later fsync of it: a roll, a snapshot
	f.open(mem.CrashClone(rand.New(rand.NewPCG(1, 1))))
	got := f.partition("t", 0).Producers()
	require(t, len(got) == 0, "the re-created partition has the deleted one's producers after a crash: %+v", got)
}

// TestPartitionDeletedEpochTrimLeavesTheRecreatedLogAlone: retention moved
// a log's start and its listener (Manager.logStartMoved) found the
// partition still hosted; before it trimmed the leader epoch cache, the
// topic was deleted and created again. The deleted partition wrote its
// trimmed cache to its log's path, by then the new log's directory: the
// new topic's partition loaded the deleted one's epochs at its next start.
func TestPartitionDeletedEpochTrimLeavesTheRecreatedLogAlone(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{testNode})
	old := f.partition("t", 0)
	_, err := old.Append(f.batch(plain(5)))
	noErr(t, err)
	// What retention does before its listener runs: the start moves, the
	// epoch cache not yet.
	_, err = f.logs.DeleteRecordsBefore(old.tp, 3)
	noErr(t, err)

	p := recreateTopic(t, f, old)
	before, err := vfs.ReadFile(f.fs, p.path(leaderEpochCheckpointFile), maxStateFileBytes)
	noErr(t, err)

	old.trimEpochsToLogStart() // the listener, late
	after, err := vfs.ReadFile(f.fs, p.path(leaderEpochCheckpointFile), maxStateFileBytes)
	noErr(t, err)
	require(t, string(after) == string(before),
		"the deleted partition rewrote the re-created log's leader epoch checkpoint: %q, was %q", after, before)
}

// TestPartitionRecreatedAfterAFailedDeletionIsHostedOnceItIsDone: a topic
// was deleted and created again, and the old log's deletion failed (its
// rename), so the new partition could not be opened: GetOrCreate refuses
// while a deletion of the partition is pending. The retention tick then
// finished the deletion, but hosting was retried only at the next
// metadata image: on a quiet cluster the re-created partition stayed
// unavailable for good, every produce answered with the stale failure,
// and that as UNKNOWN_SERVER_ERROR, which clients do not retry.
func TestPartitionRecreatedAfterAFailedDeletionIsHostedOnceItIsDone(t *testing.T) {
	f := newFixture(t)
	efs := vfs.NewErrorFS(vfs.NewMem())
	f.open(efs)
	f.createTopic("t", 1, nil, []int32{testNode})
	_, err := f.partition("t", 0).Append(f.batch(plain(3)))
	noErr(t, err)

	efs.Inject(vfs.Rule{Op: vfs.OpRename, PathContains: "/data/t-0", Count: -1})
	f.apply(&metadata.RemoveTopic{TopicID: uuid(1)})
	f.createTopic("t", 2, nil, []int32{testNode})
	require(t, f.mgr.Refresh() != nil, "the deletion's rename did not fail")
	_, err = f.mgr.Partition("t", 0)
	require(t, err != nil, "the re-created partition was opened over a pending deletion")
	// KAFKA_STORAGE_ERROR, which clients retry: UNKNOWN_SERVER_ERROR failed
	// the produce, and a transactional producer's transaction with it.
	require(t, errors.Is(err, log.ErrStorage), "a pending deletion's failure is not a storage error: %v", err)

	efs.Clear()
	noErr(t, f.logs.Maintain(f.nowMs()+time.Hour.Milliseconds())) // finishes the deletion
	noErr(t, f.mgr.Checkpoint())                                  // the node's periodic tick
	p, err := f.mgr.Partition("t", 0)
	require(t, err == nil, "the re-created partition is still not hosted after its old log's deletion finished: %v", err)
	require(t, p.log.LogEndOffset() == 0, "the re-created partition has the deleted log's records (end %d)", p.log.LogEndOffset())
}

// TestPartitionDeleteRecordsLeavesTheRecreatedLogAlone: DeleteRecords
// found this node leading the partition, then, before it moved the log
// start, the topic was deleted and created again: the delete went to the
// log by name, the new one, and dropped records of the new topic nobody
// asked to delete. The deletion (unhost) takes the gate first, so
// DeleteRecordsBefore holding it shared from its check to its delete
// leaves no such window.
func TestPartitionDeleteRecordsLeavesTheRecreatedLogAlone(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{testNode})
	old := f.partition("t", 0)
	_, err := old.Append(f.batch(plain(5)))
	noErr(t, err)

	var p *Partition
	old.deleteRecordsFault = func() {
		old.deleteRecordsFault = nil
		if !old.gate.TryLock() {
			return // held: the deletion waits for this delete to be done
		}
		old.gate.Unlock()
		p = recreateTopic(t, f, old) // the window the gate would close
	}
	low, err := old.DeleteRecordsBefore(3)
	if p == nil {
		noErr(t, err)
		require(t, low == 3, "low watermark %d, want 3", low)
		p = recreateTopic(t, f, old)
	}
	require(t, p.log.LogStartOffset() == 0,
		"the deleted partition's DeleteRecords moved the re-created log's start to %d", p.log.LogStartOffset())
}

// recreateTopic deletes topic "t" (id 1), whose partition 0 is old, and
// creates it again (id 2), and returns the new partition 0 with five
// records appended.
func recreateTopic(t *testing.T, f *fixture, old *Partition) *Partition {
	t.Helper()
	f.apply(&metadata.RemoveTopic{TopicID: uuid(1)})
	noErr(t, f.mgr.Refresh())
	f.createTopic("t", 2, nil, []int32{testNode})
	p := f.partition("t", 0)
	require(t, p != old && p.log.LogEndOffset() == 0, "the re-created partition is not new")
	_, err := p.Append(f.batch(plain(5)))
	noErr(t, err)
	return p
}
