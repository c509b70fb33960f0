package log

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/vfs"
)

// TestSharedSyncEarlyCoversRoundsWrittenBeforeIt: once minEarly rounds
// are reported written, a syncfs starts with no caller waiting; callers
// whose writes completed before it began ride on it without a sync of
// their own, and one whose write completed after it began is not covered
// by it.
func TestSharedSyncEarlyCoversRoundsWrittenBeforeIt(t *testing.T) {
	s, fsSync, a, b, c, _ := newSyncCallers(nil)
	s.minEarly = 2
	s.owe(3) // A, B and C
	writtenA := s.Started()
	s.Written()
	require(t, fsSync.calls.Load() == 0, "a syncfs started after 1 round written, minEarly 2")
	writtenB := s.Started()
	s.Written()
	faultWait(t, fsSync.entered, "the early syncfs")
	writtenC := s.Started() // C's write completes while it runs
	require(t, writtenC == writtenA+1, "Started is %d while the early syncfs runs, want %d", writtenC, writtenA+1)
	s.Written() // counts toward the next one; none starts while one runs
	doneA := syncWrittenAsync(s, a, writtenA)
	doneB := syncWrittenAsync(s, b, writtenB)
	doneC := syncWrittenAsync(s, c, writtenC)
	waitWaiting(t, s, 1) // C only
	select {
	case r := <-doneC:
		t.Fatalf("C returned (%v) while the only syncfs had begun before its write", r.err)
	case <-time.After(20 * time.Millisecond):
	}
	close(fsSync.release)
	for _, r := range []syncResult{resultOf(t, doneA, "A"), resultOf(t, doneB, "B")} {
		noErr(t, r.err)
		require(t, r.covered >= 1, "covered by generation %d, want the early syncfs (1) or later", r.covered)
	}
	rc := resultOf(t, doneC, "C")
	noErr(t, rc.err)
	require(t, rc.covered == 0 || rc.covered >= 2, "C covered by generation %d, begun before its write", rc.covered)
	require(t, a.calls.Load()+b.calls.Load() == 0, "A or B fdatasynced though the early syncfs covered them")
	st := s.Stats()
	require(t, st.EarlySyncFS == 1, "stats %+v, want 1 early syncfs", st)
}

// TestSharedSyncEarlyFailureFailsItsRounds: an early syncfs that fails
// fails every round written before it began, though no caller ran it;
// later rounds get their own fdatasync, and no early syncfs starts again.
func TestSharedSyncEarlyFailureFailsItsRounds(t *testing.T) {
	s, fsSync, a, b, c, _ := newSyncCallers(vfs.ErrInjected)
	s.minEarly = 1
	s.owe(1)
	writtenA := s.Started()
	s.Written()
	faultWait(t, fsSync.entered, "the early syncfs")
	writtenB := s.Started()
	close(fsSync.release)
	close(a.release)
	deadline := time.Now().Add(10 * time.Second)
	for s.failedGeneration() == 0 {
		require(t, time.Now().Before(deadline), "the early syncfs never ended")
		time.Sleep(time.Millisecond)
	}
	ra := resultOf(t, syncWrittenAsync(s, a, writtenA), "A")
	require(t, errors.Is(ra.err, vfs.ErrInjected), "A's round was written before the failed early syncfs: %v, want its error", ra.err)
	require(t, a.calls.Load() == 0, "A fdatasynced after the syncfs covering it failed")
	noErr(t, resultOf(t, syncWrittenAsync(s, b, writtenB), "B").err)
	require(t, b.calls.Load() == 1, "B, written after the failure's start: %d fdatasyncs, want 1", b.calls.Load())
	for range 4 {
		s.Written()
	}
	noErr(t, resultOf(t, syncWrittenAsync(s, c, s.Started()), "C").err)
	require(t, fsSync.calls.Load() == 1, "syncfs ran %d times, want 1 (none after its failure)", fsSync.calls.Load())
}

// TestSharedSyncEarlyNotForFewLogs: a few logs writing many rounds, each
// syncing its own file, never start an early syncfs.
func TestSharedSyncEarlyNotForFewLogs(t *testing.T) {
	s, fsSync, _, _, _, _ := newSyncCallers(nil)
	close(fsSync.release)
	s.minEarly = 4
	s.owe(3)
	for range 100 {
		s.Written()
	}
	require(t, fsSync.calls.Load() == 0, "%d syncfs started with 3 logs owing a sync, minEarly 4", fsSync.calls.Load())
	s.owe(1)
	s.Written()
	faultWait(t, fsSync.entered, "the early syncfs once 4 logs owe a sync")
}

func (s *SharedSync) failedGeneration() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// heldSyncFS holds every syncfs after it made the file system durable
// (the crash model's snapshot is taken when the syncfs begins, the most a
// syncfs may promise for writes that land while it runs), and every file
// fsync before it runs, until release closes.
type heldSyncFS struct {
	vfs.FS
	syncfsDone chan struct{} // closed once the first syncfs took its snapshot
	once       sync.Once
	release    chan struct{}
	holdFiles  atomic.Bool // hold file fsyncs too
}

func (h *heldSyncFS) Create(name string) (vfs.File, error) {
	f, err := h.FS.Create(name)
	return h.wrap(f, err)
}

func (h *heldSyncFS) OpenReadWrite(name string) (vfs.File, error) {
	f, err := h.FS.OpenReadWrite(name)
	return h.wrap(f, err)
}

func (h *heldSyncFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &heldFile{File: f, h: h}, nil
}

type heldFile struct {
	vfs.File
	h *heldSyncFS
}

func (f *heldFile) Sync() error {
	if f.h.holdFiles.Load() {
		<-f.h.release
	}
	return f.File.Sync()
}

func (h *heldSyncFS) OpenFileSystemSyncer(dir string) (vfs.FileSystemSyncer, error) {
	inner, err := h.FS.OpenFileSystemSyncer(dir)
	if err != nil {
		return nil, err
	}
	return &heldSyncer{FileSystemSyncer: inner, h: h}, nil
}

type heldSyncer struct {
	vfs.FileSystemSyncer
	h *heldSyncFS
}

func (s *heldSyncer) SyncFS() error {
	err := s.FileSystemSyncer.SyncFS()
	s.h.once.Do(func() { close(s.h.syncfsDone) })
	<-s.h.release
	return err
}

// TestLogWriteEarlySyncfsAcknowledgesOnlyWhatItCovered: logs written with
// Write start a syncfs before anyone waits; an append written to one of
// them after it began is not acknowledged when it ends, while the appends
// written before it are, and survive a crash then.
func TestLogWriteEarlySyncfsAcknowledgesOnlyWhatItCovered(t *testing.T) {
	mem := vfs.NewMem()
	noErr(t, mem.MkdirAll("/data", 0o755))
	held := &heldSyncFS{FS: mem, syncfsDone: make(chan struct{}), release: make(chan struct{})}
	m, err := OpenManager(ManagerOptions{FS: held, Dir: "/data", Config: smallConfig(), Logger: quietLogger})
	noErr(t, err)
	m.sharedSync.minEarly = 2
	logA, err := m.GetOrCreate(TopicPartition{"t", 0}, smallConfig())
	noErr(t, err)
	logB, err := m.GetOrCreate(TopicPartition{"t", 1}, smallConfig())
	noErr(t, err)

	a1, err := logA.Enqueue(testBatch(t, "a1", 2, 10, 0), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	b1, err := logB.Enqueue(testBatch(t, "b1", 2, 10, 0), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	logA.Write(a1.LastOffset + 1)
	logB.Write(b1.LastOffset + 1)
	faultWait(t, held.syncfsDone, "the early syncfs")
	a2, err := logA.Enqueue(testBatch(t, "a2", 2, 10, 0), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	logA.Write(a2.LastOffset + 1) // after the syncfs began
	held.holdFiles.Store(true)

	waitA2 := make(chan error, 1)
	go func() {
		_, err := logA.WaitDurable(a2.LastOffset + 1)
		waitA2 <- err
	}()
	// Let the early syncfs end, not any sync after it. b1 was written
	// before it began: it is acknowledged. Log A's syncer syncs up to a2,
	// written after it began, so neither a1 nor a2 is yet.
	held.release <- struct{}{}
	_, err = logB.WaitDurable(b1.LastOffset + 1)
	noErr(t, err)
	select {
	case err := <-waitA2:
		t.Fatalf("a2 acknowledged (%v) by a syncfs that began before it was written", err)
	case <-time.After(50 * time.Millisecond):
	}
	// What was acknowledged is durable: a crash now keeps b1.
	wantB := readAll(t, logB, 0)
	require(t, len(wantB) > 0, "b1 not readable once acknowledged")
	require(t, len(readAll(t, logA, 0)) == 0, "log A shows bytes no sync it waited for covered")
	for seed := range uint64(20) {
		got, err := readWholeFile(mem.CrashClone(crashRand(seed, 0)), "/data/t-1/00000000000000000000.log")
		noErr(t, err)
		require(t, len(got) >= len(wantB) && string(got[:len(wantB)]) == string(wantB),
			"seed %d: b1's segment kept %d bytes after the crash, want the %d acknowledged", seed, len(got), len(wantB))
	}
	close(held.release)
	noErr(t, resultOf(t, waitA2, "a2's wait"))
	_, err = logA.WaitDurable(a1.LastOffset + 1)
	noErr(t, err)
	noErr(t, m.Close())
	require(t, m.SharedSyncStats().EarlySyncFS >= 1, "stats %+v: no early syncfs", m.SharedSyncStats())
}

// TestLogWriteEarlySyncfsFailureFailsItsLogs: an early syncfs that fails
// (no caller ran it: Written did, on its own goroutine) fails the appends
// of the logs written before it began when they wait, leaves those logs
// read-only with nothing acknowledged, and does not fail the logs written
// after it began: they fdatasync their own files and are acknowledged.
func TestLogWriteEarlySyncfsFailureFailsItsLogs(t *testing.T) {
	f := openSharedFault(t, func(fsys vfs.FS) vfs.FS { return fsys })
	f.m.sharedSync.minEarly = 2
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	f.probe.setHook(func(op vfs.Op, _ string) error {
		if op == vfs.OpSyncFS {
			once.Do(func() {
				close(entered)
				<-release
			})
		}
		return nil
	})
	f.efs.Inject(vfs.Rule{Op: vfs.OpSyncFS})
	infos := make([]AppendInfo, len(f.logs))
	write := func(i int) {
		var err error
		infos[i], err = f.logs[i].Enqueue(testBatch(t, fmt.Sprintf("l%d", i), 2, 40, 1_700_000_000_000), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
		f.logs[i].Write(infos[i].LastOffset + 1)
	}
	write(0)
	write(1) // the second round owed: Written starts the early syncfs
	faultWait(t, entered, "the early syncfs")
	for i := 2; i < len(f.logs); i++ {
		write(i) // written after it began: it does not cover them
	}
	close(release)
	for i, l := range f.logs {
		_, err := l.WaitDurable(infos[i].LastOffset + 1)
		if i < 2 {
			require(t, errors.Is(err, ErrStorage) && errors.Is(err, vfs.ErrInjected), "log %d, written before the failed syncfs began: %v, want ErrStorage wrapping the injected error", i, err)
			require(t, l.LogEndOffset() == 0, "log %d: log end offset %d after its only round's syncfs failed", i, l.LogEndOffset())
			continue
		}
		require(t, err == nil, "log %d, written after the failed syncfs began: %v", i, err)
	}
	require(t, f.efs.Count(vfs.OpSyncFS) == 1, "%d syncfs, want only the early one (none after a failure)", f.efs.Count(vfs.OpSyncFS))
	require(t, f.m.SharedSyncStats().EarlySyncFS == 1, "stats %+v, want one early syncfs", f.m.SharedSyncStats())
	f.probe.setHook(nil)
	err := f.m.Close()
	require(t, err == nil || errors.Is(err, ErrStorage), "Close: %v", err)
	require(t, f.probe.openHandles.Load() == 0, "%d handles open after Close", f.probe.openHandles.Load())
}

// closeCheckedSync is a gatedSync whose Close is recorded, and which
// fails a SyncFS once closed: a syncfs on a closed directory handle.
type closeCheckedSync struct {
	*gatedSync
	closed atomic.Bool
}

func (c *closeCheckedSync) SyncFS() error {
	if c.closed.Load() {
		return errors.New("syncfs after Close")
	}
	err := c.gatedSync.SyncFS()
	if c.closed.Load() {
		return errors.New("syncer closed while its syncfs ran")
	}
	return err
}

func (c *closeCheckedSync) Close() error {
	c.closed.Store(true)
	return nil
}

// TestSharedSyncCloseWaitsForEarlySyncfs: Close while an early syncfs
// runs on Written's goroutine waits for it to end before it closes the
// directory handle (a Manager's Close, then a test's TempDir cleanup,
// must not race it), the rounds it covered are still acknowledged, and
// no syncfs starts after Close.
func TestSharedSyncCloseWaitsForEarlySyncfs(t *testing.T) {
	syncer := &closeCheckedSync{gatedSync: newGatedSync()}
	s := NewSharedSync(syncer, "/data", quietLogger)
	s.minEarly = 1
	s.owe(1)
	written := s.Started()
	s.Written()
	faultWait(t, syncer.entered, "the early syncfs")
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while the early syncfs ran", err)
	case <-time.After(20 * time.Millisecond):
	}
	require(t, !syncer.closed.Load(), "the syncer was closed while its syncfs ran")
	close(syncer.release)
	noErr(t, resultOf(t, closed, "Close"))
	require(t, syncer.closed.Load(), "Close did not close the syncer")
	r := resultOf(t, syncWrittenAsync(s, newReleasedSync(), written), "a round the early syncfs covered")
	noErr(t, r.err)
	require(t, r.covered == 1, "covered by generation %d, want the early syncfs (1)", r.covered)
	for range 4 {
		s.Written()
	}
	own := newReleasedSync()
	noErr(t, resultOf(t, syncWrittenAsync(s, own, s.Started()), "a round after Close").err)
	require(t, own.calls.Load() == 1, "a round after Close: %d fdatasyncs, want its own", own.calls.Load())
	// Stats: Written counts a syncfs as it begins one, before its goroutine runs.
	require(t, s.Stats().SyncFS == 1, "%d syncfs begun, want none after Close", s.Stats().SyncFS)
}

// stalledSyncer is a syncfs that runs until release is closed; began is
// closed when the first starts.
type stalledSyncer struct {
	began, release chan struct{}
	once           sync.Once
}

func (s *stalledSyncer) SyncFS() error {
	s.once.Do(func() { close(s.began) })
	<-s.release
	return nil
}

func (*stalledSyncer) Close() error { return nil }

// BenchmarkSharedSyncWrittenDuringSyncfs: Written, called for each log a
// produce writes, from GOMAXPROCS goroutines (the produce's writers)
// while the early syncfs it started still runs, past the counts that
// could start one. It took the shared sync's lock on every call just to
// see the syncfs running: with 10,000 partitions in a request, about as
// many lock takes, contended by the writers.
func BenchmarkSharedSyncWrittenDuringSyncfs(b *testing.B) {
	syncer := &stalledSyncer{began: make(chan struct{}), release: make(chan struct{})}
	s := NewSharedSync(syncer, "/data", quietLogger)
	s.minEarly = 1
	s.owe(1)
	s.Written()
	<-syncer.began
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Written()
		}
	})
	b.StopTimer()
	close(syncer.release)
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	if got := s.Stats().EarlySyncFS; got != 1 {
		b.Fatalf("%d early syncfs calls, want the one still running then", got)
	}
}

// tokenSyncer is a syncfs that runs until a token arrives on release;
// began gets one at each start.
type tokenSyncer struct{ began, release chan struct{} }

func (s *tokenSyncer) SyncFS() error {
	s.began <- struct{}{}
	<-s.release
	return nil
}

func (*tokenSyncer) Close() error { return nil }

// TestSharedSyncWrittenSkipsWhileASyncfsRuns: Written reads without the
// lock that a syncfs runs and starts none then; once it ends, the next
// Written past the counts starts the next one.
func TestSharedSyncWrittenSkipsWhileASyncfsRuns(t *testing.T) {
	syncer := &tokenSyncer{began: make(chan struct{}, 1), release: make(chan struct{})}
	s := NewSharedSync(syncer, "/data", quietLogger)
	s.minEarly = 1
	s.owe(1)
	s.Written()
	faultWait(t, syncer.began, "the first early syncfs")
	for range 100 {
		s.Written()
	}
	require(t, s.Stats().EarlySyncFS == 1, "%d early syncfs calls while one ran, want 1", s.Stats().EarlySyncFS)
	syncer.release <- struct{}{}
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().EarlySyncFS < 2 && time.Now().Before(deadline) {
		s.Written()
		runtime.Gosched()
	}
	require(t, s.Stats().EarlySyncFS == 2, "no early syncfs started after the first ended")
	faultWait(t, syncer.began, "the second early syncfs")
	syncer.release <- struct{}{}
	noErr(t, s.Close())
}
