package log

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/vfs"
)

// gatedSync is a sync (a file's, or the file system's) that a test holds
// until it says so, and counts.
type gatedSync struct {
	calls   atomic.Int64
	entered chan struct{} // closed when the first call starts
	release chan struct{} // the first call returns when this closes
	once    sync.Once
	err     error
}

func newGatedSync() *gatedSync {
	return &gatedSync{entered: make(chan struct{}), release: make(chan struct{})}
}

// newReleasedSync is a gatedSync that holds no call: it only counts.
func newReleasedSync() *gatedSync {
	g := newGatedSync()
	close(g.release)
	return g
}

// newSyncCallers is the generation tests' set-up: a SharedSync whose
// syncfs, fsSync, is held (and fails with fsErr), the file of a caller A
// held in its own fdatasync, and the files of callers B, C and D, whose
// own fdatasyncs return at once.
func newSyncCallers(fsErr error) (s *SharedSync, fsSync, a, b, c, d *gatedSync) {
	fsSync = newGatedSync()
	fsSync.err = fsErr
	s = NewSharedSync(fsSync, "/data", quietLogger)
	return s, fsSync, newGatedSync(), newReleasedSync(), newReleasedSync(), newReleasedSync()
}

func (g *gatedSync) Sync() error {
	g.calls.Add(1)
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		<-g.release
	}
	return g.err
}

func (g *gatedSync) SyncFS() error { return g.Sync() }
func (g *gatedSync) Close() error  { return nil }

// waitWaiting waits until n callers wait in s for the next sync.
func waitWaiting(t *testing.T, s *SharedSync, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		w := s.waitingNext
		s.mu.Unlock()
		if w == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %d callers wait, want %d", w, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// syncAsync runs s.Sync(f) on a goroutine and returns its result channel.
func syncAsync(s *SharedSync, f fileSyncer) <-chan error {
	done := make(chan error, 1)
	go func() { done <- s.Sync(f) }()
	return done
}

// resultOf receives from ch, failing instead of hanging.
func resultOf[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// TestSharedSyncGenerations: a lone caller fdatasyncs its own file; one
// that arrives while another syncs runs a syncfs; callers that arrive
// while that syncfs runs are not covered by it (it may have begun before
// their writes) and share the next one.
func TestSharedSyncGenerations(t *testing.T) {
	s, fsSync, a, b, c, d := newSyncCallers(nil)

	doneA := syncAsync(s, a)
	faultWait(t, a.entered, "A's own fdatasync")
	doneB := syncAsync(s, b)
	faultWait(t, fsSync.entered, "the syncfs B runs while A syncs")
	doneC, doneD := syncAsync(s, c), syncAsync(s, d)
	waitWaiting(t, s, 2)
	select {
	case err := <-doneC:
		t.Fatalf("C returned (%v) while the only syncfs had begun before its call", err)
	default:
	}
	close(fsSync.release)
	noErr(t, resultOf(t, doneB, "B"))
	noErr(t, resultOf(t, doneC, "C"))
	noErr(t, resultOf(t, doneD, "D"))
	close(a.release)
	noErr(t, resultOf(t, doneA, "A"))
	require(t, fsSync.calls.Load() == 2, "syncfs ran %d times, want 2 (B's, then C's and D's)", fsSync.calls.Load())
	require(t, b.calls.Load()+c.calls.Load()+d.calls.Load() == 0, "B, C or D fdatasynced though a syncfs covered them")
	require(t, a.calls.Load() == 1, "lone caller A: %d fdatasyncs, want 1", a.calls.Load())
	st := s.Stats()
	require(t, st == SharedSyncStats{SyncFS: 2, FileSyncs: 1, SharedRuns: 3}, "stats %+v", st)
}

// syncWrittenAsync runs s.SyncWritten(f, writtenAt) on a goroutine.
func syncWrittenAsync(s *SharedSync, f fileSyncer, writtenAt uint64) <-chan syncResult {
	done := make(chan syncResult, 1)
	go func() {
		covered, err := s.SyncWritten(f, writtenAt)
		done <- syncResult{covered, err}
	}()
	return done
}

type syncResult struct {
	covered uint64
	err     error
}

// TestSharedSyncRidesOnASyncfsBegunAfterItsWrite: a caller whose write
// completed before a syncfs began (writtenAt read then) is covered by that
// syncfs even if it asks only once the syncfs runs, and needs no other; a
// caller whose write completed after it began waits for the next one.
func TestSharedSyncRidesOnASyncfsBegunAfterItsWrite(t *testing.T) {
	s, fsSync, a, b, c, d := newSyncCallers(nil)

	writtenC := s.Started() // C's write completes before any syncfs
	doneA := syncAsync(s, a)
	faultWait(t, a.entered, "A's own fdatasync")
	doneB := syncWrittenAsync(s, b, s.Started())
	faultWait(t, fsSync.entered, "the syncfs B runs while A syncs")
	writtenD := s.Started() // D's write completes while that syncfs runs
	require(t, writtenD == writtenC+1, "Started is %d while the first syncfs runs, want %d", writtenD, writtenC+1)
	doneC := syncWrittenAsync(s, c, writtenC)
	doneD := syncWrittenAsync(s, d, writtenD)
	waitWaiting(t, s, 1) // D only: the running syncfs covers C
	close(fsSync.release)
	rb, rc := resultOf(t, doneB, "B"), resultOf(t, doneC, "C")
	noErr(t, rb.err)
	noErr(t, rc.err)
	// covered is the newest generation done, which D's may already be.
	require(t, rb.covered >= 1 && rc.covered >= 1, "B and C covered by generations %d and %d, want 1 or later", rb.covered, rc.covered)
	rd := resultOf(t, doneD, "D")
	noErr(t, rd.err)
	require(t, rd.covered == 2, "D covered by generation %d, want 2 (the one begun after its write)", rd.covered)
	close(a.release)
	noErr(t, resultOf(t, doneA, "A"))
	require(t, b.calls.Load()+c.calls.Load()+d.calls.Load() == 0, "B, C or D fdatasynced though a syncfs covered them")
	require(t, fsSync.calls.Load() == 2, "syncfs ran %d times, want 2", fsSync.calls.Load())
	st := s.Stats()
	require(t, st == SharedSyncStats{SyncFS: 2, FileSyncs: 1, SharedRuns: 3}, "stats %+v, want B and C counted for the first syncfs, D for the second", st)
}

// TestSharedSyncRiderFailsWithItsSyncfs: a caller that rides on a running
// syncfs (its write completed before it began) fails when it fails, and
// does not get a later success instead.
func TestSharedSyncRiderFailsWithItsSyncfs(t *testing.T) {
	s, fsSync, a, b, c, _ := newSyncCallers(vfs.ErrInjected)
	writtenC := s.Started()
	doneA := syncAsync(s, a)
	faultWait(t, a.entered, "A's own fdatasync")
	doneB := syncAsync(s, b)
	faultWait(t, fsSync.entered, "the syncfs B runs")
	doneC := syncWrittenAsync(s, c, writtenC)
	close(fsSync.release)
	require(t, errors.Is(resultOf(t, doneB, "B"), vfs.ErrInjected), "B's syncfs failed, B did not")
	rc := resultOf(t, doneC, "C")
	require(t, errors.Is(rc.err, vfs.ErrInjected), "C rode on the failed syncfs: %v, want its error", rc.err)
	require(t, c.calls.Load() == 0, "C fdatasynced its own file after the syncfs covering it failed")
	close(a.release)
	noErr(t, resultOf(t, doneA, "A"))
}

// TestSharedSyncFailureFailsCoveredCallers: a failed syncfs fails every
// caller it covered; afterwards callers fdatasync their own files, even
// when several sync at once, and those that waited through the failed
// syncfs (not covered by it) get their own fdatasync's answer.
func TestSharedSyncFailureFailsCoveredCallers(t *testing.T) {
	s, fsSync, a, b, c, d := newSyncCallers(vfs.ErrInjected)

	doneA := syncAsync(s, a)
	faultWait(t, a.entered, "A's own fdatasync")
	doneB := syncAsync(s, b)
	faultWait(t, fsSync.entered, "the syncfs B runs")
	doneC, doneD := syncAsync(s, c), syncAsync(s, d)
	waitWaiting(t, s, 2)
	close(fsSync.release)
	err := resultOf(t, doneB, "B")
	require(t, errors.Is(err, vfs.ErrInjected), "B after its syncfs failed: %v, want the injected error", err)
	noErr(t, resultOf(t, doneC, "C"))
	noErr(t, resultOf(t, doneD, "D"))
	require(t, c.calls.Load() == 1 && d.calls.Load() == 1, "C and D: %d and %d fdatasyncs, want 1 each", c.calls.Load(), d.calls.Load())
	close(a.release)
	noErr(t, resultOf(t, doneA, "A"))

	// Sharing is over: concurrent callers each sync their own file.
	var wg sync.WaitGroup
	files := make([]*gatedSync, 8)
	for i := range files {
		files[i] = newReleasedSync()
		wg.Add(1)
		go func() {
			defer wg.Done()
			noErr(t, s.Sync(files[i]))
		}()
	}
	wg.Wait()
	for i, f := range files {
		require(t, f.calls.Load() == 1, "file %d: %d fdatasyncs after the failure, want 1", i, f.calls.Load())
	}
	require(t, fsSync.calls.Load() == 1, "syncfs ran %d times, want 1 (none after its failure)", fsSync.calls.Load())
}

// TestSharedSyncNilSyncer: where syncfs is refused, every caller syncs its
// own file and the calls run in parallel as without a SharedSync.
func TestSharedSyncNilSyncer(t *testing.T) {
	s := NewSharedSync(nil, "/data", quietLogger)
	held := newGatedSync()
	done := syncAsync(s, held)
	faultWait(t, held.entered, "the first fdatasync")
	other := newReleasedSync()
	noErr(t, resultOf(t, syncAsync(s, other), "a second caller while the first is held"))
	close(held.release)
	noErr(t, resultOf(t, done, "the first caller"))
	noErr(t, s.Close())
}

// sharedCrashLogs is how many logs share a manager's syncer in the crash
// and fault tests: enough that rounds of different logs overlap.
const sharedCrashLogs = 6

// TestSharedSyncCrashManyLogs: appenders on several logs of one Manager
// (so sharing its syncfs) append concurrently; a crash clone is taken just
// before a random file operation (a syncfs among them), and once more at
// the end. Every append acknowledged before the crash, on every log, must
// be recovered. A SharedSync that answered a caller before a sync covering
// its write had run would lose acknowledged bytes here: nothing else syncs
// FlushAlways logs' data.
func TestSharedSyncCrashManyLogs(t *testing.T) {
	var syncfs atomic.Int64
	crashRun(t, crashSeeds(t, 12, 200), func(t *testing.T, seed uint64) {
		syncfs.Add(runSharedSyncCrash(t, seed))
	})
	if os.Getenv(crashSeedEnv) == "" {
		require(t, syncfs.Load() > 0, "no run shared a syncfs: the test did not exercise SharedSync")
	}
}

func runSharedSyncCrash(t *testing.T, seed uint64) int64 {
	c := startSharedCrash(t, seed, func(fs vfs.FS) vfs.FS { return fs })
	perLog := 10 + c.rng.IntN(20)
	// Let other logs' rounds arrive while a sync runs, as a real
	// fdatasync's fraction of a millisecond does.
	k := c.arm(int64(2*perLog*sharedCrashLogs), vfs.OpSync, vfs.OpSyncFS)
	var wg sync.WaitGroup
	for i, l := range c.logs {
		wg.Add(1)
		arng := crashRand(seed, uint64(i+1))
		go func() {
			defer wg.Done()
			crashAppender(l, c.hists[i], arng, c.cfg, c.clk, perLog, fmt.Sprintf("l%d", i))
		}()
	}
	wg.Wait()
	stats := c.finish()
	t.Logf("%d syncfs covering %d rounds, %d lone fdatasyncs; crash at op %d", stats.SyncFS, stats.SharedRuns, stats.FileSyncs, k)
	return stats.SyncFS
}

// sharedCrash is a crash run over sharedCrashLogs logs of one Manager on
// probe(mem), which keeps at most sharedCrashMaxOpenActive idle active
// files open (the bound must hold with shared syncs too:
// TestSharedSyncMarksFileSynced checks that a syncfs counts as the
// file's sync). The crash image is taken once, at the armed operation or
// at the end, with what each log must then keep.
type sharedCrash struct {
	t     *testing.T
	rng   *rand.Rand
	mem   *vfs.MemFS
	probe *crashProbeFS
	clk   *clock.Manual
	m     *Manager
	cfg   Config
	logs  []*Log
	hists []*crashHistory

	once     sync.Once
	crashRng *rand.Rand
	snap     *vfs.MemFS
	required []int64
}

const sharedCrashMaxOpenActive = 2

// startSharedCrash opens the manager on wrap(probe) with always-flushed
// logs of a random crash config.
func startSharedCrash(t *testing.T, seed uint64, wrap func(vfs.FS) vfs.FS) *sharedCrash {
	c := &sharedCrash{t: t, rng: crashRand(seed, 0), mem: vfs.NewMem(), clk: clock.NewManual(time.UnixMilli(1_700_000_000_000)),
		crashRng: crashRand(seed, 1000), required: make([]int64, sharedCrashLogs)}
	c.probe = newCrashProbe(c.mem)
	var err error
	c.m, err = OpenManager(ManagerOptions{FS: wrap(c.probe), Dir: "/data", Config: smallConfig(), Clock: c.clk, Logger: quietLogger,
		MaxOpenActiveSegments: sharedCrashMaxOpenActive})
	noErr(t, err)
	c.cfg = crashConfig(c.rng)
	c.cfg.FlushPolicy = FlushAlways
	for i := range sharedCrashLogs {
		l, err := c.m.GetOrCreate(TopicPartition{Topic: "orders", Partition: int32(i)}, c.cfg)
		noErr(t, err)
		c.logs = append(c.logs, l)
		c.hists = append(c.hists, &crashHistory{})
	}
	return c
}

// crash takes the crash image, the first time only.
func (c *sharedCrash) crash() {
	c.once.Do(func() {
		for i, h := range c.hists {
			h.mu.Lock()
			c.required[i] = h.durableLocked(FlushAlways)
			h.mu.Unlock()
		}
		c.snap = c.mem.CrashClone(c.crashRng)
	})
}

// arm crashes before a random one of the first ops mutating operations,
// and slows the given ones down a little; it returns the crash point.
func (c *sharedCrash) arm(ops int64, slow ...vfs.Op) int64 {
	k := 1 + c.rng.Int64N(ops)
	var seen atomic.Int64
	c.probe.setHook(func(op vfs.Op, _ string) error {
		if crashMutates(op) && seen.Add(1) == k {
			c.crash()
		}
		if slices.Contains(slow, op) {
			time.Sleep(50 * time.Microsecond)
		}
		return nil
	})
	return k
}

// finish crashes if the run did not, checks the run and what a node
// reopening the crash image recovers, and returns the sync counts.
func (c *sharedCrash) finish() SharedSyncStats {
	t := c.t
	c.probe.setHook(nil)
	c.crash()
	stats := c.m.SharedSyncStats()
	require(t, c.m.OpenActiveFiles() <= sharedCrashMaxOpenActive, "%d idle active files open, bound %d", c.m.OpenActiveFiles(), sharedCrashMaxOpenActive)
	for i, h := range c.hists {
		require(t, len(h.errs) == 0, "log %d: appends failed without a fault: %v", i, h.errs)
	}
	universes := make([][]byte, sharedCrashLogs)
	for i, h := range c.hists {
		universes[i] = h.expected(t, 0)
	}
	noErr(t, c.m.Close())
	require(t, c.probe.openHandles.Load() == 0, "%d handles open after Manager.Close", c.probe.openHandles.Load())

	m2, err := OpenManager(ManagerOptions{FS: c.snap, Dir: "/data", Config: smallConfig(), Clock: c.clk, Logger: quietLogger})
	noErr(t, err)
	defer m2.Close()
	for i := range c.logs {
		l, ok := m2.Log(TopicPartition{Topic: "orders", Partition: int32(i)})
		require(t, ok || c.required[i] == 0, "log %d lost with %d offsets acknowledged", i, c.required[i])
		if ok {
			checkRecovered(t, l, universes[i], c.required[i])
		}
	}
	return stats
}

// sharedFault is a Manager on probe(ErrorFS(MemFS)) whose logs' first
// fdatasync of an append round is held, so that the rounds of the other
// logs pile up behind it and share the next sync, a syncfs.
type sharedFault struct {
	mem   *vfs.MemFS
	efs   *vfs.ErrorFS
	probe *crashProbeFS
	m     *Manager
	logs  []*Log
}

func openSharedFault(t *testing.T, fsys func(vfs.FS) vfs.FS, tweaks ...func(*ManagerOptions)) *sharedFault {
	t.Helper()
	f := &sharedFault{mem: vfs.NewMem()}
	f.efs = vfs.NewErrorFS(f.mem)
	f.probe = newCrashProbe(fsys(f.efs))
	opts := ManagerOptions{FS: f.probe, Dir: "/data", Config: smallConfig(), Logger: quietLogger}
	for _, tweak := range tweaks {
		tweak(&opts)
	}
	var err error
	f.m, err = OpenManager(opts)
	noErr(t, err)
	for i := range sharedCrashLogs {
		l, err := f.m.GetOrCreate(TopicPartition{Topic: "orders", Partition: int32(i)}, smallConfig())
		noErr(t, err)
		f.logs = append(f.logs, l)
	}
	return f
}

// appendAsync appends one batch to log i on a goroutine.
func (f *sharedFault) appendAsync(t *testing.T, i int, tag string) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := f.logs[i].Append(testBatch(t, tag, 2, 40, 1_700_000_000_000), AppendOptions{LeaderEpoch: -1})
		done <- err
	}()
	return done
}

// holdFirstSync holds log 0's next segment fdatasync until release is
// closed; entered closes when it is reached.
func (f *sharedFault) holdFirstSync() (entered, release chan struct{}) {
	entered, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	f.probe.setHook(func(op vfs.Op, path string) error {
		if op == vfs.OpSync && strings.Contains(path, "orders-0/") && strings.HasSuffix(path, logSuffix) {
			once.Do(func() {
				close(entered)
				<-release
			})
		}
		return nil
	})
	return entered, release
}

// TestSharedSyncFaultFailsEveryCoveredLog: while log 0's round is held in
// its own fdatasync, another log's round runs a syncfs (held too), and the
// rounds of the remaining logs wait and share the next syncfs, which
// fails: every one of those appends fails with ErrStorage, each of those
// logs is read-only from then on with nothing it was told acknowledged,
// and log 0, the first syncfs's log and new logs carry on with their own
// fdatasyncs.
func TestSharedSyncFaultFailsEveryCoveredLog(t *testing.T) {
	f := openSharedFault(t, func(fsys vfs.FS) vfs.FS { return fsys })
	for i := range f.logs {
		_, err := f.logs[i].Append(testBatch(t, "acked", 2, 40, 1_700_000_000_000), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	acked := make([]int64, len(f.logs))
	for i, l := range f.logs {
		acked[i] = l.LogEndOffset()
	}
	entered, release := f.holdFirstSync()
	first := f.appendAsync(t, 0, "held")
	faultWait(t, entered, "log 0's fdatasync")
	// Hold the first syncfs; fail the second.
	syncfsEntered, syncfsRelease := make(chan struct{}), make(chan struct{})
	var syncfsOnce sync.Once
	f.probe.setHook(func(op vfs.Op, _ string) error {
		if op == vfs.OpSyncFS {
			syncfsOnce.Do(func() {
				close(syncfsEntered)
				<-syncfsRelease
			})
		}
		return nil
	})
	f.efs.Inject(vfs.Rule{Op: vfs.OpSyncFS, After: 1})
	syncfsBefore := f.efs.Count(vfs.OpSyncFS)
	results := make([]<-chan error, len(f.logs))
	results[1] = f.appendAsync(t, 1, "first-syncfs")
	faultWait(t, syncfsEntered, "log 1's syncfs")
	for i := 2; i < len(f.logs); i++ {
		results[i] = f.appendAsync(t, i, "covered")
	}
	waitWaiting(t, f.m.sharedSync, len(f.logs)-2)
	close(syncfsRelease)
	noErr(t, resultOf(t, results[1], "log 1's append, covered by the first syncfs"))
	for i := 2; i < len(f.logs); i++ {
		err := resultOf(t, results[i], fmt.Sprintf("log %d's append", i))
		require(t, errors.Is(err, ErrStorage) && errors.Is(err, vfs.ErrInjected), "log %d: %v, want ErrStorage wrapping the injected error", i, err)
	}
	require(t, f.efs.Count(vfs.OpSyncFS) == syncfsBefore+2 && f.efs.Injected() == 1, "%d syncfs, %d injected faults; want two, the second failed", f.efs.Count(vfs.OpSyncFS)-syncfsBefore, f.efs.Injected())
	close(release)
	noErr(t, resultOf(t, first, "log 0's append"))
	f.probe.setHook(nil)
	for i := 2; i < len(f.logs); i++ {
		l := f.logs[i]
		require(t, errors.Is(l.Err(), ErrStorage), "log %d: Err() = %v after its round's syncfs failed", i, l.Err())
		require(t, l.LogEndOffset() == acked[i], "log %d: log end offset %d, acknowledged up to %d", i, l.LogEndOffset(), acked[i])
		_, err := l.Append(testBatch(t, "refused", 1, 10, 1_700_000_000_000), AppendOptions{LeaderEpoch: -1})
		require(t, errors.Is(err, ErrStorage), "log %d: append after the failure: %v", i, err)
	}

	// Logs 0 and 1 were not covered and carry on; a new log too, and none
	// uses syncfs any more, even when their rounds overlap.
	extra, err := f.m.GetOrCreate(TopicPartition{Topic: "orders", Partition: 99}, smallConfig())
	noErr(t, err)
	f.logs = append(f.logs, extra)
	syncs := f.efs.Count(vfs.OpSync)
	var wg sync.WaitGroup
	for _, i := range []int{0, 1, len(f.logs) - 1} {
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				noErr(t, resultOf(t, f.appendAsync(t, i, "after"), "an append after the failure"))
			}()
		}
	}
	wg.Wait()
	require(t, f.efs.Count(vfs.OpSyncFS) == syncfsBefore+2, "syncfs ran again after failing")
	require(t, f.efs.Count(vfs.OpSync) > syncs, "appends after the failure did not fdatasync")
	err = f.m.Close()
	require(t, err == nil || errors.Is(err, ErrStorage), "Close: %v", err)
	require(t, f.probe.openHandles.Load() == 0, "%d handles open after Close", f.probe.openHandles.Load())
}

// noSyncfsFS refuses syncfs, as a kernel before 5.17 or another OS does.
type noSyncfsFS struct{ vfs.FS }

func (noSyncfsFS) OpenFileSystemSyncer(dir string) (vfs.FileSystemSyncer, error) {
	return nil, fmt.Errorf("syncfs of %s refused in this test: %w", dir, errors.ErrUnsupported)
}

// TestSharedSyncFallback: where syncfs is refused the manager still opens,
// logs whose rounds overlap each fdatasync their own segment, in parallel
// (log 0's is held while the others complete), and what they acknowledged
// survives a crash.
func TestSharedSyncFallback(t *testing.T) {
	f := openSharedFault(t, func(fsys vfs.FS) vfs.FS { return noSyncfsFS{fsys} })
	entered, release := f.holdFirstSync()
	first := f.appendAsync(t, 0, "held")
	faultWait(t, entered, "log 0's fdatasync")
	for i := 1; i < len(f.logs); i++ {
		noErr(t, resultOf(t, f.appendAsync(t, i, "parallel"), fmt.Sprintf("log %d's append while log 0 syncs", i)))
	}
	close(release)
	noErr(t, resultOf(t, first, "log 0's append"))
	f.probe.setHook(nil)
	require(t, f.efs.Count(vfs.OpSyncFS) == 0, "syncfs ran though refused")
	want := make([][]byte, len(f.logs))
	for i, l := range f.logs {
		want[i] = readAll(t, l, 0)
	}
	snap := f.mem.CrashClone(crashRand(1, 1))
	noErr(t, f.m.Close())
	m, err := OpenManager(ManagerOptions{FS: snap, Dir: "/data", Config: smallConfig(), Logger: quietLogger})
	noErr(t, err)
	defer m.Close()
	for i := range f.logs {
		l, ok := m.Log(TopicPartition{Topic: "orders", Partition: int32(i)})
		require(t, ok, "log %d lost", i)
		require(t, string(readAll(t, l, 0)) == string(want[i]), "log %d lost acknowledged data in a crash", i)
	}
}

// TestSharedSyncMarksFileSynced: a round a syncfs covered counts as synced
// in the file cache, as one its own fdatasync covered does; otherwise the
// cache would fsync the file again before closing it idle.
func TestSharedSyncMarksFileSynced(t *testing.T) {
	f := openSharedFault(t, func(fsys vfs.FS) vfs.FS { return fsys })
	entered, release := f.holdFirstSync()
	first := f.appendAsync(t, 0, "held")
	faultWait(t, entered, "log 0's fdatasync")
	syncfs := f.efs.Count(vfs.OpSyncFS)
	noErr(t, resultOf(t, f.appendAsync(t, 1, "shared"), "log 1's append"))
	require(t, f.efs.Count(vfs.OpSyncFS) == syncfs+1, "log 1's round did not share a syncfs")
	l := f.logs[1]
	l.mu.Lock()
	sf := l.active().activeFile.(*activeFile).sf
	l.mu.Unlock()
	require(t, !fileUnsynced(sf), "the file cache still counts log 1's active file unsynced after a syncfs covered its round")
	close(release)
	noErr(t, resultOf(t, first, "log 0's append"))
	f.probe.setHook(nil)
	noErr(t, f.m.Close())
}

// TestSharedSyncTurnedOff: with log.flush.shared.sync=false the rounds that
// pile up behind a held fdatasync sync their own files, and no syncfs runs
// though the file system offers it.
func TestSharedSyncTurnedOff(t *testing.T) {
	f := openSharedFault(t, func(fsys vfs.FS) vfs.FS { return fsys }, func(o *ManagerOptions) { o.NoSharedSync = true })
	defer f.m.Close()
	entered, release := f.holdFirstSync()
	first := f.appendAsync(t, 0, "held")
	faultWait(t, entered, "log 0's fdatasync")
	for i := 1; i < len(f.logs); i++ {
		noErr(t, resultOf(t, f.appendAsync(t, i, "own"), fmt.Sprintf("log %d's append while log 0 syncs", i)))
	}
	close(release)
	noErr(t, resultOf(t, first, "log 0's append"))
	f.probe.setHook(nil)
	require(t, f.efs.Count(vfs.OpSyncFS) == 0, "a syncfs ran with sharing turned off")
	require(t, f.m.SharedSyncStats().SyncFS == 0, "stats count %d syncfs with sharing turned off", f.m.SharedSyncStats().SyncFS)
}

// TestSharedSyncRoundWaitsForTheCachesFsync: the round's sync through the
// SharedSync (Log.syncActive) skipped what activeFile.Sync does since the
// file cache learnt to fsync idle files before closing them: wait for the
// cache's fsync of the same file and return its failure. A lone round
// fdatasynced the descriptor the cache was fsyncing; Linux reports a
// writeback error to one of the two, and when the cache's took it the
// round was acknowledged over bytes that never reached the disk.
func TestSharedSyncRoundWaitsForTheCachesFsync(t *testing.T) {
	dfs := newDescriptorFS(vfs.NewMem(), 0)
	evicting, release := make(chan struct{}), make(chan struct{})
	var syncs atomic.Int32
	fsys := &syncHookFS{FS: dfs, after: func(name string, err error) {
		// The first fsync of a.log is the eviction's: it took the
		// writeback error; hold it before the cache notes it.
		if name == "/a.log" && syncs.Add(1) == 1 {
			close(evicting)
			<-release
		}
	}}
	files := NewFileCacheWithActive(1, 1)
	a := &segmentFile{cache: files, fs: fsys, path: "/a.log"}
	fa, err := a.pin()
	noErr(t, err)
	_, err = fa.WriteAt([]byte("the round's write, not yet synced"), 0)
	noErr(t, err)
	require(t, dfs.failWriteback("/a.log") == 1, "a.log is not open on one descriptor")
	fsSync := newGatedSync()
	close(fsSync.release)
	shared := NewSharedSync(fsSync, "/", quietLogger)
	defer shared.Close()
	l := &Log{sharedSync: shared}

	// Pinning b passes the active bound: a, idle and unsynced, is fsynced
	// to be closed, by this goroutine.
	b := &segmentFile{cache: files, fs: fsys, path: "/b.log"}
	pinned := make(chan error, 1)
	go func() {
		_, err := b.pin()
		pinned <- err
	}()
	faultWait(t, evicting, "the cache's fsync of a.log")
	synced := make(chan error, 1)
	go func() {
		_, err := l.syncActive(fa, shared.Started())
		synced <- err
	}()
	// The round's sync must not return before the cache's is noted; give
	// a wrong one a moment to show itself.
	select {
	case err := <-synced:
		close(release)
		require(t, err != nil, "the round's sync succeeded while the cache's fsync of the same descriptor took the writeback error")
	case <-time.After(200 * time.Millisecond):
		close(release)
		err := resultOf(t, synced, "the round's sync")
		require(t, errors.Is(err, syscall.EIO), "the round's sync after the cache's failed fsync: %v, want EIO", err)
	}
	noErr(t, resultOf(t, pinned, "pinning b"))
	require(t, shared.Stats().FileSyncs+shared.Stats().SyncFS == 0, "the round synced after the cache's fsync failed: %+v", shared.Stats())
}

// TestSharedSyncDuringAWriteLeavesItUnsynced: the syncer fsyncs a round
// while the writer writes the next one to the same file; the file cache
// must not count that write synced by an fsync that began during it, or
// it could close the file without the fsync that would report the
// write's writeback error.
func TestSharedSyncDuringAWriteLeavesItUnsynced(t *testing.T) {
	probe := newCrashProbe(vfs.NewMem())
	files := NewFileCacheWithActive(4, 4)
	sf := &segmentFile{cache: files, fs: probe, path: "/a.log"}
	f, err := probe.Create(sf.path)
	noErr(t, err)
	noErr(t, f.Close())
	af, err := sf.pin()
	noErr(t, err)
	entered, release := make(chan struct{}), make(chan struct{})
	var writes atomic.Int32
	probe.setHook(func(op vfs.Op, path string) error {
		if op == vfs.OpWrite && writes.Add(1) == 1 {
			close(entered)
			<-release
		}
		return nil
	})
	written := make(chan error, 1)
	go func() {
		_, err := af.(*activeFile).WritevAt([][]byte{[]byte("the next round")}, 0)
		written <- err
	}()
	faultWait(t, entered, "the write")
	noErr(t, af.Sync())
	close(release)
	noErr(t, resultOf(t, written, "the write"))
	require(t, fileUnsynced(sf), "an fsync that began during a write counted it synced")
	noErr(t, af.Sync())
	require(t, !fileUnsynced(sf), "an fsync after the write left it unsynced")
	probe.setHook(nil)
	sf.closeFile()
}

// TestSharedSyncBegunBeforeAWriteLeavesItUnsynced: a round's sync is
// covered by a syncfs another log began after the round was written
// (writtenAt), but the writer wrote the next round to the same file after
// that syncfs began. The file cache must not count that write synced: it
// would close the file without an fsync, and the next round's sync would
// find the file clean and fsync nothing, acknowledging bytes no sync
// covered.
func TestSharedSyncBegunBeforeAWriteLeavesItUnsynced(t *testing.T) {
	mem := vfs.NewMem()
	files := NewFileCacheWithActive(4, 4)
	sf := &segmentFile{cache: files, fs: mem, path: "/a.log"}
	f, err := mem.Create(sf.path)
	noErr(t, err)
	noErr(t, f.Close())
	af, err := sf.pin()
	noErr(t, err)
	defer sf.closeFile()
	_, err = af.WriteAt([]byte("the round to sync"), 0)
	noErr(t, err)
	fsSync := newGatedSync()
	shared := NewSharedSync(fsSync, "/", quietLogger)
	defer shared.Close()
	shared.minShared = 1
	writtenAt := shared.Started() // the round is written

	// Another log's syncfs begins; the next round is written while it
	// runs, then it ends.
	other := syncAsync(shared, &gatedSync{})
	faultWait(t, fsSync.entered, "the other log's syncfs")
	_, err = af.WriteAt([]byte("the next round"), 17)
	noErr(t, err)
	close(fsSync.release)
	noErr(t, resultOf(t, other, "the other log's sync"))

	// The first round's sync: that syncfs covers it.
	l := &Log{sharedSync: shared}
	covered, err := l.syncActive(af, writtenAt)
	noErr(t, err)
	require(t, covered == 1, "the round's sync was not covered by the syncfs (generation %d)", covered)
	require(t, fileUnsynced(sf), "a syncfs that began before the next round's write counted it synced")
	noErr(t, af.Sync())
	require(t, !fileUnsynced(sf), "an fsync after the write left it unsynced")
}

// fileUnsynced is sf.unsyncedLocked under its cache's lock.
func fileUnsynced(sf *segmentFile) bool {
	sf.cache.mu.Lock()
	defer sf.cache.mu.Unlock()
	return sf.unsyncedLocked()
}

// TestSharedSyncAllWantsASyncfsBegunAfterIt: SyncAll (a checkpoint's
// producer-state snapshots) arrives while a syncfs runs, which may have
// begun before the caller's writes: it must return only after the next
// one. A failed syncfs fails the callers it covered and ends sharing, and
// where nothing is shared SyncAll says so, syncing nothing.
func TestSharedSyncAllWantsASyncfsBegunAfterIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, fsSync, _, _, _, _ := newSyncCallers(nil)
		first := make(chan error, 1)
		go func() { first <- s.SyncAll() }()
		<-fsSync.entered
		second := make(chan error, 1)
		go func() { second <- s.SyncAll() }()
		synctest.Wait()
		select {
		case err := <-second:
			t.Fatalf("SyncAll returned (%v) while the only syncfs began before it", err)
		default:
		}
		close(fsSync.release)
		noErr(t, <-first)
		noErr(t, <-second)
		require(t, fsSync.calls.Load() == 2, "%d syncfs calls, want 2", fsSync.calls.Load())
		require(t, s.Shared(), "sharing ended without a failure")
	})

	failing := newReleasedSync()
	failing.err = syscall.EIO
	s := NewSharedSync(failing, "/data", quietLogger)
	require(t, errors.Is(s.SyncAll(), syscall.EIO), "a failed syncfs did not fail SyncAll")
	require(t, !s.Shared(), "sharing goes on after a failed syncfs")
	require(t, errors.Is(s.SyncAll(), errors.ErrUnsupported), "SyncAll after a failed syncfs is not unsupported")
	require(t, errors.Is(NewSharedSync(nil, "/data", quietLogger).SyncAll(), errors.ErrUnsupported), "SyncAll without a syncer is not unsupported")
}
