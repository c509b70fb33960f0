package log

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/vfs"
)

// TestFileCacheDescriptorShortageAtALogsLoad: a log's load opens segment
// files outside the cache: a rebuild of a sealed segment's indexes when
// its time index is lost, and after a
// crash the recovery's scan of every segment above the recovery point.
// Those opens did not close idle files and try again, as every other open
// of a segment file does, so at start-up, with many partitions opening
// under a low descriptor limit, the log failed to load although the cache
// held idle files it could close.
func TestFileCacheDescriptorShortageAtALogsLoad(t *testing.T) {
	for _, tc := range []struct {
		name string
		// damage prepares the closed log's files; reopen is how it is
		// opened again.
		damage func(t *testing.T, fsys *descriptorFS, sealed *segment)
		reopen func(end int64) Options
	}{
		{"index rebuild", func(t *testing.T, fsys *descriptorFS, sealed *segment) {
			noErr(t, fsys.FS.Remove(sealed.path(timeIndexSuffix)))
		}, func(end int64) Options { return Options{RecoveryPoint: end, CleanShutdown: true} }},
		{"recovery after a crash", func(*testing.T, *descriptorFS, *segment) {},
			func(int64) Options { return Options{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.SegmentBytes = 600
			fsys, logs := openShortOfDescriptors(t, cfg, 3, 8, 10)
			files := logs[0].files
			fsys.setLimit(0)

			const dir = "/data/loaded-0"
			l, err := Open(fsys, dir, Options{Config: cfg, Files: files, Logger: quietLogger})
			noErr(t, err)
			for i := range 3 {
				_, err := l.Append(testBatch(t, fmt.Sprint("loaded/", i), 1, 300, 1), AppendOptions{LeaderEpoch: -1})
				noErr(t, err)
			}
			require(t, l.NumSegments() > 1, "%d segments, want a sealed one", l.NumSegments())
			end, sealed := l.LogEndOffset(), l.segments[0]
			noErr(t, l.Close())
			tc.damage(t, fsys, sealed)

			// The rest of the process takes every descriptor but those the
			// cache's idle files hold.
			fsys.mu.Lock()
			fsys.limit = len(fsys.open)
			fsys.mu.Unlock()
			opts := tc.reopen(end)
			opts.Config, opts.Files, opts.Logger = cfg, files, quietLogger
			l, err = Open(fsys, dir, opts)
			noErr(t, err)
			defer l.Close()
			require(t, fsys.emfileHit > 0, "no open ran out of descriptors: the test tests nothing")
			fsys.setLimit(0)
			got := readAll(t, l, 0)
			for i := range 3 {
				tag := fmt.Sprintf("loaded/%d/0", i)
				require(t, bytes.Contains(got, []byte(tag)), "%s not read back after the load", tag)
			}
		})
	}
}

// shedInFlight is an open out of descriptors caught inside the fsync of
// the idle file it sheds: a.log, pinned (fa) and written (first) but not
// synced, while the other file (held) is in use and so not idle. The open
// is of c; opened gets its result; closing release lets the fsync return.
type shedInFlight struct {
	dfs     *descriptorFS
	files   *FileCache
	a, b, c *segmentFile
	fa      vfs.File
	held    fileRef
	opened  chan error
	release chan struct{}
}

// startShedInFlight sets the scene with segment files /a.log, /OTHER.log
// (b, held) and /c.log, and returns once the shed's fsync of a.log runs;
// with failWriteback that fsync fails (a lost writeback, EIO).
func startShedInFlight(t *testing.T, other string, first []byte, failWriteback bool) *shedInFlight {
	t.Helper()
	s := &shedInFlight{dfs: newDescriptorFS(vfs.NewMem(), 0), opened: make(chan error, 1), release: make(chan struct{})}
	shedding := make(chan struct{})
	var armed atomic.Bool
	fsys := &syncHookFS{FS: s.dfs, after: func(name string, err error) {
		if name == "/a.log" && armed.CompareAndSwap(true, false) {
			close(shedding)
			<-s.release
		}
	}}
	s.files = NewFileCacheWithActive(8, 8)
	sfs := newSealedFiles(t, fsys, s.files, "/a.log", "/"+other+".log", "/c.log")
	s.a, s.b, s.c = sfs[0], sfs[1], sfs[2]
	var err error
	s.fa, err = s.a.pin()
	noErr(t, err)
	_, err = s.fa.WriteAt(first, 0)
	noErr(t, err)
	s.held, err = s.b.acquire() // in use: not idle, so a is the file to shed
	noErr(t, err)
	if failWriteback {
		require(t, s.dfs.failWriteback("/a.log") == 1, "a.log is not open on one descriptor")
	}
	s.dfs.mu.Lock()
	s.dfs.limit = len(s.dfs.open)
	s.dfs.mu.Unlock()

	armed.Store(true)
	go func() {
		ref, err := s.c.acquire() // EMFILE: sheds a, fsyncing it
		if err == nil {
			ref.release()
		}
		s.opened <- err
	}()
	<-shedding
	return s
}

// TestFileCacheShedFsyncRunsWithoutTheLock: an open out of descriptors
// closes an idle file, fsyncing it first when it holds unsynced bytes.
// That fsync ran under the cache's lock, so every other log's open and
// release of its files waited for one disk flush. It now runs without
// the lock and keeps an eviction's rules: the log's own fsync of the file
// waits for it and returns its failure.
func TestFileCacheShedFsyncRunsWithoutTheLock(t *testing.T) {
	s := startShedInFlight(t, "b", []byte("written, not yet synced"), true)
	fa, b, held, release := s.fa, s.b, s.held, s.release
	others := make(chan error, 1)
	go func() {
		held.release()
		ref, err := b.acquire()
		if err == nil {
			held = ref
		}
		others <- err
	}()
	select {
	case err := <-others:
		noErr(t, err)
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("using another open file waited for the shed's fsync of a.log")
	}
	synced := make(chan error, 1)
	go func() { synced <- fa.Sync() }()
	select {
	case err := <-synced:
		close(release)
		t.Fatalf("the log's fsync of a.log returned (%v) while the shed's fsync of it was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	require(t, errors.Is(<-synced, syscall.EIO), "the log's fsync did not inherit the shed's failed one")
	noErr(t, <-s.opened)
	require(t, s.dfs.emfileHit > 0, "no open ran out of descriptors: the test tests nothing")
	held.release()
	_, err := fa.WriteAt([]byte("more"), 0)
	require(t, errors.Is(err, syscall.EIO), "write after the shed's failed fsync: %v", err)
}

// TestFileCacheShedClosesTheFileItFsyncs: a writer that comes while a
// shed fsyncs its file waits for that fsync instead of taking the file
// back (the open out of descriptors would then find nothing to close),
// and reopens the file after; no write lands between the shed's fsync
// and the close, where no fsync would cover it.
func TestFileCacheShedClosesTheFileItFsyncs(t *testing.T) {
	s := startShedInFlight(t, "d", []byte("first"), false)
	a, fa, files, held, release := s.a, s.fa, s.files, s.held, s.release
	// Idle from now on: whichever of c's open and a's reopen comes second
	// closes d.
	released := make(chan struct{})
	go func() {
		held.release()
		close(released)
	}()
	select {
	case <-released:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("releasing another file waited for the shed's fsync of a.log")
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := fa.WriteAt([]byte("second"), 5)
		wrote <- err
	}()
	select {
	case err := <-wrote:
		close(release)
		t.Fatalf("a write of a.log went on (%v) while a shed fsynced it to close it", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	noErr(t, <-s.opened)
	noErr(t, <-wrote)
	require(t, s.dfs.emfileHit > 0, "no open ran out of descriptors: the test tests nothing")
	files.mu.Lock()
	open, unsynced := a.file != nil, a.written != a.synced
	files.mu.Unlock()
	require(t, open && unsynced, "a.log after the write: open %v, unsynced %v; want reopened and unsynced", open, unsynced)
	noErr(t, fa.Sync())
	buf := make([]byte, 11)
	_, err := fa.ReadAt(buf, 0)
	noErr(t, err)
	require(t, string(buf) == "firstsecond", "a.log holds %q", buf)
}

// BenchmarkFileCacheUseDuringShedFsync takes and drops a reference to an
// open sealed file while another goroutine keeps a shed's fsync in flight:
// it writes an idle active file and sheds it, as an open out of
// descriptors does, each fsync taking a millisecond as a disk's flush
// does. When the shed fsynced under the cache's lock, every use of every
// other file waited for it.
func BenchmarkFileCacheUseDuringShedFsync(b *testing.B) {
	fsys := &syncHookFS{FS: vfs.NewMem(), after: func(name string, err error) {
		if name == "/shed.log" {
			time.Sleep(time.Millisecond)
		}
	}}
	files := NewFileCacheWithActive(8, 8)
	sfs := newSealedFiles(b, fsys, files, "/shed.log", "/used.log")
	shed, used := sfs[0], sfs[1]
	handle, err := shed.pin()
	noErr(b, err)
	// Held throughout, so used.log is never idle and the shed always
	// picks shed.log.
	hold, err := used.acquire()
	noErr(b, err)
	defer hold.release()
	stop, stopped := make(chan struct{}), make(chan struct{})
	var sheds atomic.Int64
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := handle.WriteAt([]byte("unsynced"), 0); err != nil {
				b.Error(err)
				return
			}
			if files.shed(files.closed.Load()) {
				sheds.Add(1)
			}
		}
	}()
	b.ResetTimer()
	for range b.N {
		ref, err := used.acquire()
		if err != nil {
			b.Fatal(err)
		}
		ref.release()
	}
	b.StopTimer()
	close(stop)
	<-stopped
	b.ReportMetric(float64(sheds.Load())/b.Elapsed().Seconds(), "sheds/s")
}

// closeHookFS runs before each Close of a file its hook names, before the
// descriptor is given back (the hook may block it).
type closeHookFS struct {
	vfs.FS
	before func(name string)
}

type closeHookFile struct {
	vfs.File
	fs *closeHookFS
}

func (h *closeHookFS) OpenReadWrite(name string) (vfs.File, error) {
	f, err := h.FS.OpenReadWrite(name)
	if err != nil {
		return nil, err
	}
	return &closeHookFile{File: f, fs: h}, nil
}

func (f *closeHookFile) Close() error {
	f.fs.before(f.Name())
	return f.File.Close()
}

// TestFileCacheShedCountsClosesInFlight: the cache closes descriptors
// without its lock, and whichever goroutine runs the pending closes may
// be another than the one that asked for them: a shed's own close of the
// file it fsynced (a goroutine that takes the lock between the shed's
// noting its fsync and its running the close), or a bound's eviction's.
// An open out of descriptors that shed nothing, or shed a file whose
// descriptor another goroutine was still closing, failed (or shed one
// more file) although a descriptor was about to come back. A shed now
// waits for the closes in flight and says a descriptor came back if one
// did since the open failed. Here the bound's close of an idle file is
// held while another file's open runs out of descriptors with nothing
// else idle.
func TestFileCacheShedCountsClosesInFlight(t *testing.T) {
	dfs := newDescriptorFS(vfs.NewMem(), 0)
	closing, release := make(chan struct{}), make(chan struct{})
	var armed atomic.Bool
	fsys := &closeHookFS{FS: dfs, before: func(name string) {
		if name == "/e.log" && armed.CompareAndSwap(true, false) {
			close(closing)
			<-release
		}
	}}
	files := NewFileCacheWithActive(8, 8)
	sfs := newSealedFiles(t, fsys, files, "/e.log", "/b.log", "/c.log")
	e, b, c := sfs[0], sfs[1], sfs[2]
	ref, err := e.acquire()
	noErr(t, err)
	ref.release() // idle: the file a lowered bound closes
	held, err := b.acquire()
	noErr(t, err)
	defer held.release()
	dfs.mu.Lock()
	dfs.limit = len(dfs.open)
	dfs.mu.Unlock()

	armed.Store(true)
	go files.SetLimits(1, 8) // closes e, held in Close
	<-closing
	opened := make(chan error, 1)
	go func() {
		ref, err := c.acquire() // EMFILE: nothing idle, e's descriptor on its way back
		if err == nil {
			ref.release()
		}
		opened <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		dfs.mu.Lock()
		hit := dfs.emfileHit
		dfs.mu.Unlock()
		if hit > 0 {
			break
		}
		if time.Now().After(deadline) {
			close(release)
			t.Fatal("c.log's open never ran out of descriptors: the test tests nothing")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-opened:
		close(release)
		t.Fatalf("c.log's open out of descriptors gave up (%v) while e.log's descriptor was being closed", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-opened:
		noErr(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("c.log's open did not end once e.log's descriptor was closed")
	}
}

// TestFileCacheDescriptorShortageAtARollsDirectorySync: a roll fsyncs the
// log's directory, which opens it. That open did not close an idle file
// and try again when it found no descriptor, as the roll's other opens
// do (sheddingFS), so a transient shortage failed the write round, which
// is sticky: the log turned read-only. Here the rest of the process takes
// the descriptors the roll's file opens gave back just before the sync.
func TestFileCacheDescriptorShortageAtARollsDirectorySync(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 600
	fsys, logs := openShortOfDescriptors(t, cfg, 3, 8, 300)
	var dirSyncs atomic.Int32
	fsys.beforeSyncDir = func() {
		// Once: taking every descriptor given back at each try too
		// would end only with none open, which the test file system
		// reads as no limit at all.
		if dirSyncs.Add(1) > 1 {
			return
		}
		fsys.mu.Lock()
		fsys.limit = len(fsys.open)
		fsys.mu.Unlock()
	}
	l := logs[0]
	_, err := l.Append(testBatch(t, "rolled", 1, 300, 1), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	noErr(t, l.Err())
	require(t, l.NumSegments() == 2 && dirSyncs.Load() == 2, "%d segments after %d directory syncs, want a roll whose sync was tried again once", l.NumSegments(), dirSyncs.Load())
	fsys.beforeSyncDir = nil
	fsys.setLimit(0)
	got := readAll(t, l, 0)
	require(t, bytes.Contains(got, []byte("rolled/0")), "the append that rolled not read back")
}
