package log

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/vfs"
)

// managerEnv is a log directory on MemFS, counted so a test can see what an
// open reads, with a manual clock.
type managerEnv struct {
	mem   *vfs.MemFS
	fs    *metaCountingFS
	clock *clock.Manual
	opts  ManagerOptions
}

func newManagerEnv(cfg Config) *managerEnv {
	env := &managerEnv{mem: vfs.NewMem(), clock: clock.NewManual(time.UnixMilli(1_700_000_000_000))}
	env.fs = &metaCountingFS{FS: env.mem}
	env.opts = ManagerOptions{FS: env.fs, Dir: "/data", Config: cfg, Clock: env.clock, Logger: quietLogger}
	return env
}

func (env *managerEnv) open(t *testing.T) *Manager {
	t.Helper()
	m, err := OpenManager(env.opts)
	noErr(t, err)
	return m
}

func (env *managerEnv) exists(path string) bool {
	_, err := env.mem.Stat(path)
	return err == nil
}

var managerPartitions = []TopicPartition{{"orders", 0}, {"orders", 1}, {"my-topic", 0}}

// fillManagerLogs appends n batches to each partition's log, returning what
// each log holds from offset 0.
func fillManagerLogs(t *testing.T, m *Manager, cfg Config, n int, want map[TopicPartition][]byte) {
	t.Helper()
	for _, tp := range managerPartitions {
		l, err := m.GetOrCreate(tp, cfg)
		noErr(t, err)
		for i := 0; i < n; i++ {
			b := testBatch(t, tp.String(), 2, 200, 1_700_000_000_000+int64(i))
			_, err := l.Append(b, AppendOptions{LeaderEpoch: -1})
			noErr(t, err)
			want[tp] = append(want[tp], b...)
		}
	}
}

func checkManagerLogs(t *testing.T, m *Manager, want map[TopicPartition][]byte) {
	t.Helper()
	parts := m.Partitions()
	require(t, len(parts) == len(want), "manager has %d partitions, want %d", len(parts), len(want))
	for tp, data := range want {
		l, ok := m.Log(tp)
		require(t, ok, "%s not opened", tp)
		require(t, bytes.Equal(readAll(t, l, 0), data), "%s: contents differ after reopen", tp)
	}
}

func TestManagerCleanReopenTrustsCheckpoints(t *testing.T) {
	cfg := smallConfig()
	env := newManagerEnv(cfg)
	m := env.open(t)
	want := map[TopicPartition][]byte{}
	fillManagerLogs(t, m, cfg, 60, want)
	ends := map[TopicPartition]int64{}
	var dataBytes int64
	for tp := range want {
		l, _ := m.Log(tp)
		ends[tp] = l.LogEndOffset()
		dataBytes += l.Size()
		require(t, l.NumSegments() > 3, "%s: want several segments, have %d", tp, l.NumSegments())
	}
	noErr(t, m.Close())
	_, err := m.GetOrCreate(TopicPartition{"late", 0}, cfg)
	require(t, errors.Is(err, ErrClosed), "GetOrCreate after Close: %v", err)

	require(t, env.exists("/data/"+cleanShutdownFile), "Close wrote no clean-shutdown marker")
	points, err := readCheckpoint(env.mem, "/data/"+recoveryPointCheckpointFile)
	noErr(t, err)
	for tp, end := range ends {
		require(t, points[tp] == end, "%s: checkpointed recovery point %d, log end %d", tp, points[tp], end)
	}

	env.fs.readBytes.Store(0)
	m = env.open(t)
	read := env.fs.readBytes.Load()
	// Sealed segments are below the recovery point and the active ones were
	// closed cleanly: the open reads index files and the few batches after
	// the last index entry, not the data.
	t.Logf("clean open read %d bytes of %d", read, dataBytes)
	require(t, read < dataBytes/10, "clean open read %d bytes of %d", read, dataBytes)
	require(t, !env.exists("/data/"+cleanShutdownFile), "the marker must go before any append")
	for tp, end := range ends {
		l, _ := m.Log(tp)
		require(t, l.LogEndOffset() == end && l.RecoveryPoint() == end, "%s: end %d, recovery point %d, want %d", tp, l.LogEndOffset(), l.RecoveryPoint(), end)
	}
	checkManagerLogs(t, m, want)
	noErr(t, m.Close())
}

// A manager that was never closed (the process died; the page cache
// survived) leaves no marker: the next open validates every batch past the
// last checkpointed recovery point, and everything is there.
func TestManagerReopenWithoutCloseRecovers(t *testing.T) {
	cfg := smallConfig()
	env := newManagerEnv(cfg)
	m := env.open(t)
	want := map[TopicPartition][]byte{}
	fillManagerLogs(t, m, cfg, 60, want)
	var dataBytes int64
	for tp := range want {
		l, _ := m.Log(tp)
		dataBytes += l.Size()
	}
	// No Close and no checkpoint since the logs were created: recovery
	// points are 0, so every segment is scanned.
	env.fs.readBytes.Store(0)
	m2 := env.open(t)
	read := env.fs.readBytes.Load()
	t.Logf("recovery read %d bytes of %d", read, dataBytes)
	require(t, read >= dataBytes, "recovery read %d bytes of %d", read, dataBytes)
	checkManagerLogs(t, m2, want)

	// The open checkpointed the recovered logs. More appends, then another
	// unclean stop: only what came after that checkpoint is validated.
	fillManagerLogs(t, m2, cfg, 10, want)
	var newBytes int64
	for _, tp := range managerPartitions {
		newBytes += int64(len(want[tp])) * 10 / 70
	}
	env.fs.readBytes.Store(0)
	m3 := env.open(t)
	read = env.fs.readBytes.Load()
	require(t, read >= newBytes && read < dataBytes, "second recovery read %d bytes: want the %d new ones, not all %d", read, newBytes, dataBytes)
	checkManagerLogs(t, m3, want)
	noErr(t, m3.Close())
	_ = m // abandoned, as a crashed process's would be
}

func TestManagerDeleteRecordsPersistsLogStart(t *testing.T) {
	cfg := smallConfig()
	for _, clean := range []bool{true, false} {
		env := newManagerEnv(cfg)
		m := env.open(t)
		fillManagerLogs(t, m, cfg, 30, map[TopicPartition][]byte{})
		tp := managerPartitions[0]
		start, err := m.DeleteRecordsBefore(tp, 13)
		noErr(t, err)
		require(t, start == 13, "log start %d", start)
		_, err = m.DeleteRecordsBefore(TopicPartition{"absent", 0}, 1)
		require(t, err != nil, "delete records of an absent partition succeeded")
		if clean {
			noErr(t, m.Close())
		}
		m = env.open(t)
		l, _ := m.Log(tp)
		require(t, l.LogStartOffset() == 13, "clean=%v: log start %d after reopen, want 13", clean, l.LogStartOffset())
		_, err = l.Read(12, ReadOptions{MaxBytes: 100, MaxOffset: NoMaxOffset})
		require(t, errors.Is(err, ErrOffsetOutOfRange), "clean=%v: read below the log start: %v", clean, err)
		other, _ := m.Log(managerPartitions[1])
		require(t, other.LogStartOffset() == 0, "clean=%v: another log's start moved to %d", clean, other.LogStartOffset())
		noErr(t, m.Close())
	}
}

// Maintain is the manager's periodic work: an interval-policy log is
// fsynced once flush.ms passed since its last fsync, retention runs every
// retention check interval, checkpoints every checkpoint interval.
func TestManagerMaintainFlushesRetainsAndCheckpoints(t *testing.T) {
	cfg := smallConfig()
	cfg.FlushPolicy, cfg.FlushMs = FlushInterval, 1000
	env := newManagerEnv(cfg)
	env.opts.RetentionCheckIntervalMs = 5000
	env.opts.CheckpointIntervalMs = 10000
	efs := vfs.NewErrorFS(env.fs) // counts fsyncs
	env.opts.FS = efs
	m := env.open(t)
	defer m.Close()
	tp := managerPartitions[0]
	l, err := m.GetOrCreate(tp, cfg)
	noErr(t, err)
	now := env.clock.Now().UnixMilli()
	append1 := func(ts int64) {
		_, err := l.Append(testBatch(t, "m", 1, 100, ts), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	old := now - 120_000 // for retention below
	append1(old)         // a new log's first append finds flush.ms passed: fsynced
	env.clock.Advance(10 * time.Millisecond)
	append1(old)
	require(t, l.RecoveryPoint() < l.LogEndOffset(), "interval policy fsynced at once: recovery point %d, end %d", l.RecoveryPoint(), l.LogEndOffset())

	syncs := efs.Count(vfs.OpSync)
	noErr(t, m.Maintain(now+999))
	require(t, efs.Count(vfs.OpSync) == syncs && l.RecoveryPoint() < l.LogEndOffset(), "flushed before flush.ms")
	noErr(t, m.Maintain(now+1000))
	require(t, efs.Count(vfs.OpSync) == syncs+1, "Maintain past flush.ms made %d fsyncs", efs.Count(vfs.OpSync)-syncs)
	require(t, l.RecoveryPoint() == l.LogEndOffset(), "recovery point %d after the flush, end %d", l.RecoveryPoint(), l.LogEndOffset())
	noErr(t, m.Maintain(now+2500))
	require(t, efs.Count(vfs.OpSync) == syncs+1, "Maintain fsynced a log with nothing to flush")

	// Old records in sealed segments; retention.ms of one minute.
	for i := 0; i < 60; i++ {
		append1(old)
	}
	append1(now)
	require(t, l.NumSegments() > 2, "want sealed segments, have %d", l.NumSegments())
	cfg.RetentionMs = 60_000
	noErr(t, l.SetConfig(cfg))
	segments := l.NumSegments()
	noErr(t, m.Maintain(now+4999))
	require(t, l.NumSegments() == segments, "retention ran before its interval")
	noErr(t, m.Maintain(now+5000))
	require(t, l.NumSegments() < segments && l.LogStartOffset() > 0, "retention did not run: %d segments, log start %d", l.NumSegments(), l.LogStartOffset())

	// The rolls above made those ticks checkpoint (see
	// TestManagerCheckpointsAfterARoll); an append that rolls nothing
	// waits for the interval.
	points, err := readCheckpoint(env.mem, "/data/"+recoveryPointCheckpointFile)
	noErr(t, err)
	require(t, points[tp] > 0, "no checkpoint after rolls: %v", points)
	rolled := points[tp]
	segments = l.NumSegments()
	append1(now)
	noErr(t, l.Flush())
	require(t, l.NumSegments() == segments, "the append rolled")
	noErr(t, m.Maintain(now+5001))
	points, err = readCheckpoint(env.mem, "/data/"+recoveryPointCheckpointFile)
	noErr(t, err)
	require(t, points[tp] == rolled, "checkpoint written before its interval: %v", points)
	// The interval counts from the last checkpoint, the roll's at 4999.
	noErr(t, m.Maintain(now+4999+10000))
	points, err = readCheckpoint(env.mem, "/data/"+recoveryPointCheckpointFile)
	noErr(t, err)
	require(t, points[tp] == l.RecoveryPoint() && points[tp] > 0, "checkpointed recovery point %d, log's %d", points[tp], l.RecoveryPoint())
	starts, err := readCheckpoint(env.mem, "/data/"+logStartOffsetCheckpointFile)
	noErr(t, err)
	require(t, starts[tp] == l.LogStartOffset(), "checkpointed log start %d, log's %d", starts[tp], l.LogStartOffset())
}

// Run calls Maintain on the clock's ticks from one goroutine.
func TestManagerRunMaintainsOnTicks(t *testing.T) {
	cfg := smallConfig()
	cfg.FlushPolicy, cfg.FlushMs = FlushInterval, 1000
	env := newManagerEnv(cfg)
	m := env.open(t)
	defer m.Close()
	l, err := m.GetOrCreate(managerPartitions[0], cfg)
	noErr(t, err)
	for i := 0; i < 2; i++ {
		_, err := l.Append(testBatch(t, "r", 1, 10, 1000), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	require(t, l.RecoveryPoint() < l.LogEndOffset(), "nothing left to flush")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		m.Run(ctx, time.Second)
		close(done)
	}()
	managerEventually(t, func() bool { return env.clock.Waiters() == 1 }, "Run armed no ticker")
	env.clock.Advance(time.Second)
	managerEventually(t, func() bool { return l.RecoveryPoint() == l.LogEndOffset() }, "the tick did not flush")
	cancel()
	<-done
}

func managerEventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
	}
}

func TestManagerDeleteRemovesTheDirectory(t *testing.T) {
	cfg := smallConfig()
	env := newManagerEnv(cfg)
	m := env.open(t)
	fillManagerLogs(t, m, cfg, 20, map[TopicPartition][]byte{})
	gone := managerPartitions[1]
	l, _ := m.Log(gone)
	noErr(t, m.Delete(gone))
	require(t, !env.exists("/data/orders-1"), "the log directory is still there")
	_, ok := m.Log(gone)
	require(t, !ok, "the manager still has the log")
	_, err := l.Read(0, ReadOptions{MaxBytes: 10, MaxOffset: NoMaxOffset})
	require(t, errors.Is(err, ErrClosed), "read of a deleted log: %v", err)
	noErr(t, m.Delete(gone)) // deleting what is not there is not an error
	noErr(t, m.Close())

	m = env.open(t)
	parts := m.Partitions()
	sort.Slice(parts, func(i, j int) bool { return parts[i].String() < parts[j].String() })
	require(t, len(parts) == 2 && parts[0] == managerPartitions[2] && parts[1] == managerPartitions[0], "after reopen: %v", parts)
	// A recreated partition starts empty.
	l, err = m.GetOrCreate(gone, cfg)
	noErr(t, err)
	require(t, l.LogEndOffset() == 0 && l.NumSegments() == 1, "recreated log: end %d", l.LogEndOffset())
	noErr(t, m.Close())
}

// Only "<topic>-<partition>" directories are logs; files, other directories
// and Kafka's "-delete"/"-future" directories are left alone.
func TestManagerOpensOnlyPartitionDirectories(t *testing.T) {
	env := newManagerEnv(smallConfig())
	for _, dir := range []string{"/data/junk", "/data/orders-0.5a6b-delete", "/data/orders-x"} {
		noErr(t, env.mem.MkdirAll(dir, 0o755))
	}
	writeFileForTest(t, env.mem, "/data/meta.properties", []byte("version=1\n"))
	writeFileForTest(t, env.mem, "/data/stray-7", []byte("a file, not a directory"))
	m := env.open(t)
	require(t, len(m.Partitions()) == 0, "opened %v", m.Partitions())
	l, err := m.GetOrCreate(TopicPartition{"orders", 0}, smallConfig())
	noErr(t, err)
	again, err := m.GetOrCreate(TopicPartition{"orders", 0}, smallConfig())
	noErr(t, err)
	require(t, l == again, "GetOrCreate opened a second log for one partition")
	noErr(t, m.Close())
	require(t, env.exists("/data/orders-0.5a6b-delete") && env.exists("/data/meta.properties"), "the manager removed what is not its own")
}

// A checkpoint the manager cannot parse fails the open rather than guess.
func TestManagerRejectsCorruptCheckpoint(t *testing.T) {
	env := newManagerEnv(smallConfig())
	noErr(t, env.mem.MkdirAll("/data", 0o755))
	writeFileForTest(t, env.mem, "/data/"+recoveryPointCheckpointFile, []byte("0\n2\norders 0 5\n"))
	_, err := OpenManager(env.opts)
	require(t, err != nil, "opened with a corrupt checkpoint")
}

// A roll makes the next tick checkpoint, long before the checkpoint
// interval: the sealed segment is then below a checkpointed recovery point,
// so a crash does not validate it again.
func TestManagerCheckpointsAfterARoll(t *testing.T) {
	cfg := smallConfig()
	env := newManagerEnv(cfg)
	env.opts.CheckpointIntervalMs = 3_600_000
	m := env.open(t)
	defer m.Close()
	tp := managerPartitions[0]
	l, err := m.GetOrCreate(tp, cfg)
	noErr(t, err)
	now := env.clock.Now().UnixMilli()
	checkpointed := func() int64 {
		points, err := readCheckpoint(env.mem, "/data/"+recoveryPointCheckpointFile)
		noErr(t, err)
		return points[tp]
	}
	_, err = l.Append(testBatch(t, "a", 1, 10, now), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	noErr(t, m.Maintain(now+1000))
	require(t, checkpointed() == 0, "checkpointed %d without a roll or the interval", checkpointed())
	for l.NumSegments() < 2 {
		_, err = l.Append(testBatch(t, "a", 1, 100, now), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	noErr(t, m.Maintain(now+2000))
	require(t, checkpointed() == l.RecoveryPoint() && checkpointed() > 1, "after a roll: checkpointed %d, recovery point %d", checkpointed(), l.RecoveryPoint())
}

// blockingRemoveFS holds RemoveAll until released, so a test can act while
// a log's directory is being deleted.
type blockingRemoveFS struct {
	vfs.FS
	removing, release chan struct{}
}

func (f *blockingRemoveFS) RemoveAll(name string) error {
	f.removing <- struct{}{}
	<-f.release
	return f.FS.RemoveAll(name)
}

// TestManagerGetOrCreateWaitsForDelete: a log created again while the old
// one's directory is being removed must not have its new files removed
// with it (its appends would go to unlinked files, lost at the next open).
func TestManagerGetOrCreateWaitsForDelete(t *testing.T) {
	fsys := &blockingRemoveFS{FS: vfs.NewMem(), removing: make(chan struct{}), release: make(chan struct{})}
	m, err := OpenManager(ManagerOptions{FS: fsys, Dir: "/data", Config: DefaultConfig(), Logger: quietLogger})
	noErr(t, err)
	defer m.Close()
	tp := TopicPartition{Topic: "t", Partition: 0}
	_, err = m.GetOrCreate(tp, DefaultConfig())
	noErr(t, err)
	deleted := make(chan error, 1)
	go func() { deleted <- m.Delete(tp) }()
	<-fsys.removing
	type result struct {
		l   *Log
		err error
	}
	created := make(chan result, 1)
	go func() {
		l, err := m.GetOrCreate(tp, DefaultConfig())
		created <- result{l, err}
	}()
	// Give a GetOrCreate that does not wait for the deletion the time to
	// create its files before they are removed; one that waits blocks.
	var res result
	select {
	case res = <-created:
	case <-time.After(200 * time.Millisecond):
	}
	close(fsys.release)
	noErr(t, <-deleted)
	if res.l == nil && res.err == nil {
		res = <-created
	}
	noErr(t, res.err)
	_, err = res.l.Append(testBatch(t, "after", 1, 10, 1), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	_, err = fsys.Stat("/data/t-0/00000000000000000000.log")
	require(t, err == nil, "the new log's segment file was removed with the old log: %v", err)
}
