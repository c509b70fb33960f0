package partition

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/sluicelog/sluice/internal/vfs"
)

// syncCountingFS counts the syncs a producer-state snapshot sweep makes:
// fdatasyncs of snapshot files, directory fsyncs by directory, and
// syncfs calls.
type syncCountingFS struct {
	vfs.FS
	mu            sync.Mutex
	snapshotSyncs int
	dirSyncs      map[string]int
	syncFS        int
}

func (c *syncCountingFS) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.snapshotSyncs, c.dirSyncs, c.syncFS = 0, map[string]int{}, 0
}

func (c *syncCountingFS) Create(name string) (vfs.File, error) {
	f, err := c.FS.Create(name)
	if err != nil || !strings.Contains(name, snapshotSuffix) {
		return f, err
	}
	return &syncCountingFile{File: f, fs: c}, nil
}

func (c *syncCountingFS) SyncDir(dir string) error {
	c.mu.Lock()
	c.dirSyncs[dir]++
	c.mu.Unlock()
	return c.FS.SyncDir(dir)
}

func (c *syncCountingFS) OpenFileSystemSyncer(dir string) (vfs.FileSystemSyncer, error) {
	s, err := c.FS.OpenFileSystemSyncer(dir)
	if err != nil {
		return nil, err
	}
	return &syncCountingSyncer{FileSystemSyncer: s, fs: c}, nil
}

type syncCountingFile struct {
	vfs.File
	fs *syncCountingFS
}

func (f *syncCountingFile) Sync() error {
	f.fs.mu.Lock()
	f.fs.snapshotSyncs++
	f.fs.mu.Unlock()
	return f.File.Sync()
}

type syncCountingSyncer struct {
	vfs.FileSystemSyncer
	fs *syncCountingFS
}

func (s *syncCountingSyncer) SyncFS() error {
	s.fs.mu.Lock()
	s.fs.syncFS++
	s.fs.mu.Unlock()
	return s.FileSystemSyncer.SyncFS()
}

// TestPartitionSnapshotSweepSharesOneSyncfs: a checkpoint of many
// partitions fdatasynced each snapshot and fsynced its directory, one
// after the other, each a journal commit of its own: at 10,000
// partitions about 40 s of every 60 s interval. A sweep now makes the
// snapshots durable with one syncfs, fsyncs only the directories of
// partitions whose log moved, and leaves the others alone; after a
// crash, every partition loads the sweep's snapshot.
func TestPartitionSnapshotSweepSharesOneSyncfs(t *testing.T) {
	const partitions = 12
	f := newFixture(t)
	counting := &syncCountingFS{FS: f.fs}
	counting.reset()
	f.open(counting)
	for i := range partitions {
		f.createTopic(fmt.Sprintf("t%d", i), byte(i+1), nil, []int32{testNode})
		_, err := f.partition(fmt.Sprintf("t%d", i), 0).Append(f.batch(idem(int64(100+i), 0, 0, 3)))
		noErr(t, err)
	}
	counting.reset()
	noErr(t, f.mgr.Checkpoint())
	requireSweepSyncs(t, f, counting, partitions)

	moved := f.partition("t5", 0)
	_, err := moved.Append(f.batch(idem(105, 0, 3, 2)))
	noErr(t, err)
	counting.reset()
	noErr(t, f.mgr.Checkpoint())
	requireSweepSyncs(t, f, counting, 1)
	require(t, counting.dirSyncs[moved.log.Dir()] == 1, "the moved partition's directory synced %d times", counting.dirSyncs[moved.log.Dir()])

	f.open(f.fs.(*syncCountingFS).FS.(*vfs.MemFS).CrashClone(rand.New(rand.NewPCG(1, 2))))
	for i := range partitions {
		p := f.partition(fmt.Sprintf("t%d", i), 0)
		want := int64(3)
		if i == 5 {
			want = 5
		}
		require(t, p.lastSnapshotOffset == want, "t%d-0 after a crash: snapshot at %d, want %d", i, p.lastSnapshotOffset, want)
	}
}

// requireSweepSyncs checks what the last sweep synced: one syncfs, no
// snapshot file of its own, and the directories of moved partitions.
func requireSweepSyncs(t *testing.T, f *fixture, c *syncCountingFS, moved int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	partitionDirs := 0
	for dir, n := range c.dirSyncs {
		if dir != f.dir {
			partitionDirs += n
		}
	}
	require(t, c.syncFS == 1, "%d syncfs calls in a sweep of %d moved partitions, want 1", c.syncFS, moved)
	require(t, c.snapshotSyncs == 0, "%d snapshot files fdatasynced on their own, want 0", c.snapshotSyncs)
	require(t, partitionDirs == moved, "%d partition directory fsyncs, want %d (the moved partitions')", partitionDirs, moved)
}

// TestPartitionSnapshotSweepFailedSyncfsNamesNothing: the sweep's syncfs
// fails, so none of its snapshots may take its name (their bytes may be
// lost) and their temporary files go; the next sweep, with sharing ended
// for good, fdatasyncs each file as before and names them.
func TestPartitionSnapshotSweepFailedSyncfsNamesNothing(t *testing.T) {
	f := newFixture(t)
	mem := f.fs.(*vfs.MemFS)
	efs := vfs.NewErrorFS(mem)
	f.open(efs)
	for i := range 3 {
		f.createTopic(fmt.Sprintf("t%d", i), byte(i+1), nil, []int32{testNode})
		_, err := f.partition(fmt.Sprintf("t%d", i), 0).Append(f.batch(idem(int64(100+i), 0, 0, 3)))
		noErr(t, err)
	}
	efs.Inject(vfs.Rule{Op: vfs.OpSyncFS})
	require(t, f.mgr.Checkpoint() != nil, "a sweep whose syncfs failed reported no error")
	for i := range 3 {
		p := f.partition(fmt.Sprintf("t%d", i), 0)
		names, err := f.fs.List(p.log.Dir())
		noErr(t, err)
		for _, name := range names {
			require(t, !strings.Contains(name, snapshotSuffix), "t%d-0 has %s after the sweep's syncfs failed", i, name)
		}
	}

	syncs := efs.Count(vfs.OpSync)
	noErr(t, f.mgr.Checkpoint())
	require(t, efs.Count(vfs.OpSync)-syncs >= 3, "the sweep after a failed syncfs fdatasynced %d files, want each snapshot", efs.Count(vfs.OpSync)-syncs)
	f.open(mem.CrashClone(rand.New(rand.NewPCG(3, 4))))
	for i := range 3 {
		p := f.partition(fmt.Sprintf("t%d", i), 0)
		require(t, p.lastSnapshotOffset == 3, "t%d-0 after a crash: snapshot at %d, want 3", i, p.lastSnapshotOffset)
	}
}

// TestReplicationTruncationDuringASnapshotSweepDropsItsSnapshot: a sweep
// captured a follower's producer state at offset 5, and before it named
// the file the follower started over at 9 (its snapshots removed, its
// producers gone). Named all the same, the snapshot at 5 was trusted
// after a crash (one below the log start is, for retention's sake), and
// producer 7's sequences of batches the log no longer holds came back.
func TestReplicationTruncationDuringASnapshotSweepDropsItsSnapshot(t *testing.T) {
	f := newFixture(t)
	mem := f.fs.(*vfs.MemFS)
	p, epoch := f.followerOfProducer7()
	f.mgr.snapshotSweepFault = func() { noErr(t, p.TruncateFullyAndStartAt(epoch, 9)) }
	noErr(t, f.mgr.Checkpoint())
	f.mgr.snapshotSweepFault = nil
	names, err := mem.List(p.log.Dir())
	noErr(t, err)
	for _, name := range names {
		require(t, !strings.Contains(name, snapshotSuffix), "%s after the log started over at 9 during the sweep", name)
	}

	f.open(mem.CrashClone(rand.New(rand.NewPCG(5, 6))))
	got := f.followed().Producers()
	require(t, len(got) == 0, "producers after a crash: %+v, want none", got)
}
