package log

import (
	"time"

	"errors"
	"github.com/sluicelog/sluice/internal/clock"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/vfs"
)

// openErrorManager opens a manager on an ErrorFS over a MemFS with one
// partition holding a few batches.
func openErrorManager(t *testing.T) (*Manager, *vfs.ErrorFS, *vfs.MemFS, TopicPartition) {
	t.Helper()
	mem := vfs.NewMem()
	efs := vfs.NewErrorFS(mem)
	env := newManagerEnv(smallConfig())
	env.opts.FS = efs
	m := env.open(t)
	tp := TopicPartition{Topic: "orders", Partition: 0}
	l, err := m.GetOrCreate(tp, smallConfig())
	noErr(t, err)
	for i := range 3 {
		_, err := l.Append(testBatch(t, "old", 2, 100, int64(i)), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	return m, efs, mem, tp
}

// TestManagerDeleteFailedDirectoryFsyncStaysFailed: the fsync that makes a
// deletion durable failed. Deleting again must not report success: the
// old code had dropped the log from the manager already and returned nil,
// so the deletion might never reach the disk. Nor may a new fsync on a
// fresh descriptor succeed over the failed one (the manager's directory
// fsyncs are sticky), and a GetOrCreate of the partition fails rather
// than create a log whose directory entry may be lost likewise.
func TestManagerDeleteFailedDirectoryFsyncStaysFailed(t *testing.T) {
	m, efs, _, tp := openErrorManager(t)
	defer m.Close()
	efs.Inject(vfs.Rule{Op: vfs.OpSyncDir, Match: func(p string) bool { return p == "/data" }})
	err := m.Delete(tp)
	require(t, errors.Is(err, vfs.ErrInjected), "delete with a failed directory fsync: %v", err)
	require(t, efs.Injected() == 1, "the fault was not hit")
	syncs := efs.Count(vfs.OpSyncDir)
	err = m.Delete(tp)
	require(t, errors.Is(err, vfs.ErrInjected), "retried delete after a failed fsync: %v, want the failure", err)
	_, err = m.GetOrCreate(tp, smallConfig())
	require(t, errors.Is(err, vfs.ErrInjected), "GetOrCreate after a failed deletion fsync: %v, want the failure", err)
	require(t, efs.Count(vfs.OpSyncDir) == syncs, "%d directory fsyncs ran after the failed one", efs.Count(vfs.OpSyncDir)-syncs)
}

// TestManagerDeleteRetriesWhatFailed: a deletion whose removal fails must
// be reported and finished by a retry, and a GetOrCreate meanwhile must
// not hand out the old log's files as the partition's new log. The old
// code removed the directory in place: a failed removal left it under the
// partition's name, a retried Delete returned nil at once, and
// GetOrCreate reopened the old records.
func TestManagerDeleteRetriesWhatFailed(t *testing.T) {
	m, efs, mem, tp := openErrorManager(t)
	inPartition := func(p string) bool { return strings.HasPrefix(p, "/data/orders-0") }
	efs.Inject(vfs.Rule{Op: vfs.OpRename, Match: inPartition})
	efs.Inject(vfs.Rule{Op: vfs.OpRemove, Match: inPartition})
	err := m.Delete(tp)
	require(t, errors.Is(err, vfs.ErrInjected), "delete with a failed removal: %v", err)
	l, err := m.GetOrCreate(tp, smallConfig())
	if err == nil {
		require(t, l.LogEndOffset() == 0, "the partition's new log has the deleted log's records (log end %d)", l.LogEndOffset())
		noErr(t, m.Delete(tp))
	}
	noErr(t, m.Delete(tp))
	_, err = mem.Stat("/data/orders-0")
	require(t, isNotExist(err), "the deleted log's directory is still there: %v", err)
	noErr(t, m.Close())

	efs.Clear()
	m, err = OpenManager(m.opts)
	noErr(t, err)
	defer m.Close()
	names, err := mem.List("/data")
	noErr(t, err)
	for _, name := range names {
		require(t, !strings.Contains(name, "orders-0"), "%s left after a reopen", name)
	}
	l, err = m.GetOrCreate(tp, smallConfig())
	noErr(t, err)
	require(t, l.LogEndOffset() == 0, "recreated log: end %d", l.LogEndOffset())
}

// TestManagerDeleteLongTopicName: a topic name may be 249 bytes, and a
// file name 255. The renamed directory, "<topic>-<partition>" plus a
// unique part and "-sluice-delete", did not fit: the rename failed with
// ENAMETOOLONG on every try, so the topic's log could never be deleted
// and a GetOrCreate of the partition failed for good.
func TestManagerDeleteLongTopicName(t *testing.T) {
	cfg := smallConfig()
	dir := t.TempDir()
	opts := ManagerOptions{FS: vfs.OS(), Dir: dir, Config: cfg, Clock: clock.NewManual(time.UnixMilli(1_700_000_000_000)), Logger: quietLogger}
	m, err := OpenManager(opts)
	noErr(t, err)
	defer m.Close()
	tp := TopicPartition{Topic: strings.Repeat("t", 249), Partition: 0}
	l, err := m.GetOrCreate(tp, cfg)
	noErr(t, err)
	_, err = l.Append(testBatch(t, "old", 2, 100, 0), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	noErr(t, m.Delete(tp))
	l, err = m.GetOrCreate(tp, cfg)
	noErr(t, err)
	require(t, l.LogEndOffset() == 0, "re-created log: end %d", l.LogEndOffset())
	names, err := vfs.OS().List(dir)
	noErr(t, err)
	for _, name := range names {
		require(t, !strings.HasSuffix(name, deletedLogDirSuffix), "%s left after the deletion", name)
	}
}
