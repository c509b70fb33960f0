package log

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/vfs"
)

// TestFileCacheClosesIdleActiveSegments: past the active limit, idle
// active segments are closed (unsynced ones after an fsync) and reopened
// on demand by the writer and by readers.
func TestFileCacheClosesIdleActiveSegments(t *testing.T) {
	for _, policy := range []FlushPolicy{FlushAlways, FlushNever} {
		t.Run(policy.String(), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.FlushPolicy = policy
			files := NewFileCacheWithActive(4, 2)
			fsys := vfs.NewMem()
			var logs []*Log
			for i := range 5 {
				l, err := Open(fsys, fmt.Sprintf("/data/t-%d", i), Options{Config: cfg, Files: files, Logger: quietLogger})
				noErr(t, err)
				defer l.Close()
				logs = append(logs, l)
			}
			require(t, files.OpenActiveFiles() == 2, "%d active files open after opening 5 logs, limit 2", files.OpenActiveFiles())
			for round := range 3 {
				for i, l := range logs {
					_, err := l.Append(testBatch(t, fmt.Sprintf("%d/%d", i, round), 1, 10, 1), AppendOptions{LeaderEpoch: -1})
					noErr(t, err)
				}
			}
			if policy == FlushNever {
				// Unsynced idle files are fsynced before they are closed.
				for _, l := range logs {
					noErr(t, l.Flush())
				}
			}
			require(t, files.OpenActiveFiles() == 2, "%d active files open when idle, limit 2", files.OpenActiveFiles())
			for i, l := range logs {
				got := readAll(t, l, 0)
				for round := range 3 {
					tag := fmt.Sprintf("%d/%d/0", i, round)
					require(t, bytes.Contains(got, []byte(tag)), "log %d: %s not read back after its file was closed", i, tag)
				}
				require(t, l.LogEndOffset() == 3, "log %d: end %d", i, l.LogEndOffset())
			}
			require(t, files.OpenActiveFiles() == 2, "%d active files open after reading, limit 2", files.OpenActiveFiles())
		})
	}
}

// TestFileCacheActiveSegmentsSurviveReopen: a log whose active segment was
// closed while idle closes cleanly and reopens with everything.
func TestFileCacheActiveSegmentsSurviveReopen(t *testing.T) {
	fsys := vfs.NewMem()
	m, err := OpenManager(ManagerOptions{FS: fsys, Dir: "/data", Config: DefaultConfig(), Logger: quietLogger, MaxOpenActiveSegments: 1})
	noErr(t, err)
	for i := range 3 {
		l, err := m.GetOrCreate(TopicPartition{Topic: "t", Partition: int32(i)}, DefaultConfig())
		noErr(t, err)
		_, err = l.Append(testBatch(t, fmt.Sprint(i), 2, 10, 1), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	require(t, m.OpenActiveFiles() == 1, "%d active files open, limit 1", m.OpenActiveFiles())
	noErr(t, m.Close())
	m, err = OpenManager(ManagerOptions{FS: fsys, Dir: "/data", Config: DefaultConfig(), Logger: quietLogger, MaxOpenActiveSegments: 1})
	noErr(t, err)
	defer m.Close()
	for i := range 3 {
		l, ok := m.Log(TopicPartition{Topic: "t", Partition: int32(i)})
		require(t, ok && l.LogEndOffset() == 2, "partition %d: not reopened with its 2 records", i)
	}
}

// descriptorFS counts the files open through it, as a process's descriptor
// table does: past limit (0: none) an open fails with EMFILE. It can also
// give the files open on a path a writeback error, reported by the next
// fsync of each of those descriptors only, as Linux reports an error to
// the descriptors open when it happened (a descriptor opened later may
// never see it).
type descriptorFS struct {
	vfs.FS
	limit int

	// beforeSyncDir, if set, runs before each SyncDir (the rest of the
	// process may take descriptors the log gave back just before).
	beforeSyncDir func()

	mu        sync.Mutex
	open      map[*descriptorFile]bool
	maxOpen   int
	emfileHit int
}

type descriptorFile struct {
	vfs.File
	fs        *descriptorFS
	closed    bool
	writeback error // reported by the next Sync
}

// setLimit caps the descriptors open at once; 0 lifts the cap.
func (d *descriptorFS) setLimit(n int) {
	d.mu.Lock()
	d.limit = n
	d.mu.Unlock()
}

func newDescriptorFS(inner vfs.FS, limit int) *descriptorFS {
	return &descriptorFS{FS: inner, limit: limit, open: map[*descriptorFile]bool{}}
}

func (d *descriptorFS) wrap(open func(string) (vfs.File, error), name string) (vfs.File, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.limit > 0 && len(d.open) >= d.limit {
		d.emfileHit++
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EMFILE}
	}
	f, err := open(name)
	if err != nil {
		return nil, err
	}
	df := &descriptorFile{File: f, fs: d}
	d.open[df] = true
	d.maxOpen = max(d.maxOpen, len(d.open))
	return df, nil
}

func (d *descriptorFS) Create(name string) (vfs.File, error) { return d.wrap(d.FS.Create, name) }
func (d *descriptorFS) Open(name string) (vfs.File, error)   { return d.wrap(d.FS.Open, name) }
func (d *descriptorFS) OpenReadWrite(name string) (vfs.File, error) {
	return d.wrap(d.FS.OpenReadWrite, name)
}

// SyncDir opens the directory for its fsync, as a real one does: it needs
// a descriptor for a moment, and fails with EMFILE past the limit.
func (d *descriptorFS) SyncDir(dir string) error {
	if d.beforeSyncDir != nil {
		d.beforeSyncDir()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.limit > 0 && len(d.open) >= d.limit {
		d.emfileHit++
		return &fs.PathError{Op: "open", Path: dir, Err: syscall.EMFILE}
	}
	return d.FS.SyncDir(dir)
}

// failWriteback gives every descriptor open on name a writeback error.
func (d *descriptorFS) failWriteback(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for f := range d.open {
		if f.Name() == name {
			f.writeback = fmt.Errorf("writeback of %s: %w", name, syscall.EIO)
			n++
		}
	}
	return n
}

func (f *descriptorFile) Sync() error {
	f.fs.mu.Lock()
	err := f.writeback
	f.writeback = nil
	f.fs.mu.Unlock()
	if err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *descriptorFile) Close() error {
	f.fs.mu.Lock()
	if !f.closed {
		f.closed = true
		delete(f.fs.open, f)
	}
	f.fs.mu.Unlock()
	return f.File.Close()
}

// TestFileCacheNeverPolicyStaysWithinDescriptors: more logs written under
// flush.policy=never than the cache's active bound, in a process with a
// few descriptors more than that bound. Unsynced idle files were kept
// open, so the process ran out of descriptors and a failed reopen of an
// active segment turned its log read-only. The cache now fsyncs an
// unsynced idle file on its own descriptor before closing it.
func TestFileCacheNeverPolicyStaysWithinDescriptors(t *testing.T) {
	cfg := DefaultConfig()
	cfg.FlushPolicy = FlushNever
	cfg.SegmentIndexBytes = 4096
	const activeLimit = 2
	fsys := newDescriptorFS(vfs.NewMem(), activeLimit+3)
	files := NewFileCacheWithActive(1, activeLimit)
	var logs []*Log
	for i := range 6 {
		l, err := Open(fsys, fmt.Sprintf("/data/t-%d", i), Options{Config: cfg, Files: files, Logger: quietLogger})
		noErr(t, err)
		defer l.Close()
		logs = append(logs, l)
	}
	for round := range 4 {
		for i, l := range logs {
			_, err := l.Append(testBatch(t, fmt.Sprintf("%d/%d", i, round), 1, 10, 1), AppendOptions{LeaderEpoch: -1})
			noErr(t, err)
			require(t, files.OpenActiveFiles() <= activeLimit, "%d active files open after an append, limit %d", files.OpenActiveFiles(), activeLimit)
		}
	}
	for i, l := range logs {
		noErr(t, l.Err())
		got := readAll(t, l, 0)
		for round := range 4 {
			tag := fmt.Sprintf("%d/%d/0", i, round)
			require(t, bytes.Contains(got, []byte(tag)), "log %d: %s not read back", i, tag)
		}
		noErr(t, l.Close())
	}
	require(t, fsys.emfileHit == 0, "the cache's bound let the process run out of descriptors %d times", fsys.emfileHit)
}

// openShortOfDescriptors opens n logs sharing a file cache that keeps up to
// active idle active files, appends one record of valueSize bytes to each,
// then lets the rest of the process take every other descriptor: the next
// open finds none. Cleanup closes the logs.
func openShortOfDescriptors(t *testing.T, cfg Config, n, active, valueSize int) (*descriptorFS, []*Log) {
	t.Helper()
	cfg.SegmentIndexBytes = 4096
	fsys := newDescriptorFS(vfs.NewMem(), 0)
	files := NewFileCacheWithActive(8, active)
	var logs []*Log
	for i := range n {
		l, err := Open(fsys, fmt.Sprintf("/data/t-%d", i), Options{Config: cfg, Files: files, Logger: quietLogger})
		noErr(t, err)
		t.Cleanup(func() { l.Close() })
		logs = append(logs, l)
		_, err = l.Append(testBatch(t, fmt.Sprint(i), 1, valueSize, 1), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	fsys.mu.Lock()
	fsys.limit = len(fsys.open)
	fsys.mu.Unlock()
	return fsys, logs
}

// TestFileCacheDescriptorShortageIsNotSticky: an open of an active segment
// that finds no descriptor (other files and sockets share the budget)
// closes idle files, fsyncing unsynced ones first, and tries again,
// instead of failing the write round, which turns the log read-only.
func TestFileCacheDescriptorShortageIsNotSticky(t *testing.T) {
	for _, policy := range []FlushPolicy{FlushAlways, FlushNever} {
		t.Run(policy.String(), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.FlushPolicy = policy
			// Two idle active files kept, and the rest of the process
			// takes one of their descriptors too: closing what the bound
			// evicts before opening is not enough.
			fsys, logs := openShortOfDescriptors(t, cfg, 3, 2, 10)
			fsys.mu.Lock()
			fsys.limit--
			fsys.mu.Unlock()
			for i, l := range logs {
				_, err := l.Append(testBatch(t, fmt.Sprintf("%d/again", i), 1, 10, 1), AppendOptions{LeaderEpoch: -1})
				noErr(t, err)
				noErr(t, l.Err())
			}
			require(t, fsys.emfileHit > 0, "no open ran out of descriptors: the test tests nothing")
			fsys.setLimit(0)
			for i, l := range logs {
				got := readAll(t, l, 0)
				require(t, bytes.Contains(got, []byte(fmt.Sprintf("%d/again/0", i))), "log %d: the append after the shortage not read back", i)
			}
		})
	}
}

// TestFileCacheSealedSegmentSyncedOnItsDescriptor: under flush policies
// other than always a segment is sealed at a roll and fsynced later. The
// cache closed it in between when the sealed bound was passed, and the
// later fsync reopened it: a writeback error reported to the descriptor
// that wrote (and, on Linux, possibly to no later one) was lost, and the
// recovery point moved past bytes that never reached the disk. The cache
// now fsyncs such a file on its own descriptor before closing it, and the
// failure reaches the log.
func TestFileCacheSealedSegmentSyncedOnItsDescriptor(t *testing.T) {
	cfg := DefaultConfig()
	cfg.FlushPolicy = FlushNever
	cfg.SegmentBytes = 600
	cfg.SegmentIndexBytes = 4096
	fsys := newDescriptorFS(vfs.NewMem(), 0)
	files := NewFileCacheWithActive(1, 4)
	l, err := Open(fsys, "/data/t-0", Options{Config: cfg, Files: files, Logger: quietLogger})
	noErr(t, err)
	defer l.Close()
	append1 := func(tag string) {
		t.Helper()
		_, err := l.Append(testBatch(t, tag, 1, 300, 1), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	append1("a")
	append1("b") // rolls: segment 0 is sealed without an fsync
	require(t, l.NumSegments() == 2, "%d segments, want a roll", l.NumSegments())
	first := l.segments[0].file.path
	require(t, fsys.failWriteback(first) == 1, "segment 0 is not open on one descriptor")
	append1("c") // rolls again: two sealed segments, bound 1
	require(t, l.NumSegments() == 3, "%d segments, want a second roll", l.NumSegments())

	err = l.Flush()
	require(t, errors.Is(err, ErrStorage) && errors.Is(err, syscall.EIO), "flush after a lost writeback of a sealed segment: %v", err)
	require(t, l.RecoveryPoint() == 0, "recovery point %d moved past the segment whose writeback failed", l.RecoveryPoint())
}

// TestFileCacheIdleActiveWritebackErrorFailsTheLog: an idle active file
// with unsynced bytes that the bound closes is fsynced on the descriptor
// that wrote it; a writeback error found there fails the log's next
// write, as its own failed fsync would, instead of vanishing with the
// descriptor.
func TestFileCacheIdleActiveWritebackErrorFailsTheLog(t *testing.T) {
	cfg := DefaultConfig()
	cfg.FlushPolicy = FlushNever
	cfg.SegmentIndexBytes = 4096
	fsys := newDescriptorFS(vfs.NewMem(), 0)
	files := NewFileCacheWithActive(1, 1)
	var logs []*Log
	for i := range 2 {
		l, err := Open(fsys, fmt.Sprintf("/data/t-%d", i), Options{Config: cfg, Files: files, Logger: quietLogger})
		noErr(t, err)
		defer l.Close()
		logs = append(logs, l)
	}
	_, err := logs[0].Append(testBatch(t, "a", 1, 10, 1), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	require(t, fsys.failWriteback(logs[0].active().file.path) == 1, "log 0's active segment is not open on one descriptor")
	// Log 1's write opens its file: past the bound of 1, log 0's idle
	// file is fsynced and closed.
	_, err = logs[1].Append(testBatch(t, "b", 1, 10, 1), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	require(t, files.OpenActiveFiles() == 1, "%d active files open, limit 1", files.OpenActiveFiles())

	_, err = logs[0].Append(testBatch(t, "c", 1, 10, 1), AppendOptions{LeaderEpoch: -1})
	require(t, errors.Is(err, ErrStorage) && errors.Is(err, syscall.EIO), "append after a failed fsync of the closed file: %v", err)
	require(t, errors.Is(logs[0].Flush(), ErrStorage), "flush of a log whose fsync failed succeeded")
	noErr(t, logs[1].Flush())
}

// TestFileCacheParkingAllocatesNothing: every write and read of an active
// segment parks its file in an idle list afterwards; that must not cost an
// allocation on the append path.
func TestFileCacheParkingAllocatesNothing(t *testing.T) {
	files := NewFileCacheWithActive(4, 4)
	fsys := nopWriteFS{vfs.NewMem()} // MemFS's own writes allocate
	var handles []vfs.File
	for i := range 3 {
		sf := &segmentFile{cache: files, fs: fsys, path: fmt.Sprintf("/f-%d.log", i)}
		f, err := sf.pin()
		noErr(t, err)
		handles = append(handles, f)
	}
	buf := make([]byte, 8)
	allocs := testing.AllocsPerRun(100, func() {
		for _, f := range handles {
			if _, err := f.WriteAt(buf, 0); err != nil {
				t.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	})
	require(t, allocs == 0, "%.1f allocations per round of writes and syncs", allocs)
}

// nopWriteFS opens files whose writes and syncs do nothing.
type nopWriteFS struct{ vfs.FS }

type nopWriteFile struct{ vfs.File }

func (n nopWriteFS) OpenReadWrite(name string) (vfs.File, error) {
	f, err := n.FS.OpenReadWrite(name)
	return nopWriteFile{f}, err
}

func (nopWriteFile) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }
func (nopWriteFile) Sync() error                            { return nil }

func TestFileCacheIdleList(t *testing.T) {
	var l idleList
	sfs := make([]*segmentFile, 4)
	for i := range sfs {
		sfs[i] = &segmentFile{path: fmt.Sprint(i)}
	}
	order := func() string {
		var s []string
		for sf := l.head; sf != nil; sf = sf.idleNext {
			s = append(s, sf.path)
		}
		var back []string
		for sf := l.tail; sf != nil; sf = sf.idlePrev {
			back = append([]string{sf.path}, back...)
		}
		require(t, fmt.Sprint(s) == fmt.Sprint(back), "forward %v, backward %v", s, back)
		return fmt.Sprint(s)
	}
	l.insert(sfs[0], true)
	l.insert(sfs[1], true)
	l.insert(sfs[2], false)
	l.insert(sfs[3], true)
	require(t, order() == "[3 1 0 2]", "order %s", order())
	l.remove(sfs[1])
	require(t, order() == "[3 0 2]", "after removing the middle: %s", order())
	l.remove(sfs[3])
	l.remove(sfs[2])
	require(t, order() == "[0]", "after removing head and tail: %s", order())
	require(t, sfs[3].idleOn == nil && sfs[3].idleNext == nil, "a removed file keeps its links")
	l.remove(sfs[0])
	require(t, l.head == nil && l.tail == nil, "list not empty")
}

// BenchmarkFileCacheManyLogs appends 4 KiB batches round-robin to 64 logs
// on the real file system, with every active file fitting the cache's
// bound and with a bound of 16: then each append reopens its file and,
// under flush.policy=never, the file the bound closes is fsynced first.
// That fsync is the price of keeping within the descriptor budget.
func BenchmarkFileCacheManyLogs(b *testing.B) {
	for _, policy := range []FlushPolicy{FlushNever, FlushAlways} {
		for _, bound := range []int{64, 16} {
			b.Run(fmt.Sprintf("flush=%s/active-bound=%d", policy, bound), func(b *testing.B) {
				benchManyLogs(b, policy, bound)
			})
		}
	}
}

func benchManyLogs(b *testing.B, policy FlushPolicy, bound int) {
	cfg := DefaultConfig()
	cfg.FlushPolicy = policy
	cfg.SegmentIndexBytes = 1 << 16
	dir := benchDir(b)
	files := NewFileCacheWithActive(DefaultOpenSealedSegments, bound)
	logs := make([]*Log, 64)
	for i := range logs {
		l, err := Open(vfs.OS(), fmt.Sprintf("%s/t-%d", dir, i), Options{Config: cfg, Files: files, Logger: quietLogger})
		noErr(b, err)
		defer l.Close()
		logs[i] = l
	}
	batch := benchBatch(b, 4<<10)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := logs[i%len(logs)].Append(batch, AppendOptions{LeaderEpoch: -1}); err != nil {
			b.Fatal(err)
		}
	}
}

// syncHookFS calls after once each Sync of a file opened through it has
// returned, with the file's name and the Sync's result.
type syncHookFS struct {
	vfs.FS
	after func(name string, err error)
}

type syncHookFile struct {
	vfs.File
	fs *syncHookFS
}

func (h *syncHookFS) OpenReadWrite(name string) (vfs.File, error) {
	f, err := h.FS.OpenReadWrite(name)
	if err != nil {
		return nil, err
	}
	return &syncHookFile{File: f, fs: h}, nil
}

func (f *syncHookFile) Sync() error {
	err := f.File.Sync()
	f.fs.after(f.Name(), err)
	return err
}

// TestFileCacheLogSyncNeverOverlapsAnEvictionFsync: the log's fsync of a
// file (the active segment's at the end of a round, a sealed one's later)
// ran on the same descriptor as an fsync the cache had started to close
// it. Linux reports a writeback error to one fsync of a descriptor only,
// so when the cache's took it, the log's succeeded and the log
// acknowledged bytes that never reached the disk; the error reached the
// log only at its next write. The log's fsync now waits for the cache's
// and returns its failure.
func TestFileCacheLogSyncNeverOverlapsAnEvictionFsync(t *testing.T) {
	for _, sealed := range []bool{false, true} {
		t.Run(fmt.Sprint("sealed=", sealed), func(t *testing.T) {
			dfs := newDescriptorFS(vfs.NewMem(), 0)
			evicting, release := make(chan struct{}), make(chan struct{})
			var syncs atomic.Int32
			fsys := &syncHookFS{FS: dfs, after: func(name string, err error) {
				if name != "/a.log" {
					return
				}
				// The first fsync of a.log is the eviction's: it took the
				// writeback error; hold it before it can note it.
				if syncs.Add(1) == 1 {
					close(evicting)
					<-release
				}
			}}
			files := NewFileCacheWithActive(1, 1)
			a := &segmentFile{cache: files, fs: fsys, path: "/a.log"}
			fa, err := a.pin()
			noErr(t, err)
			_, err = fa.WriteAt([]byte("written, not yet synced"), 0)
			noErr(t, err)
			logSync := fa.Sync
			if sealed {
				a.unpin(nil, 23, 1)
				logSync = func() error { _, err := a.syncSealed(); return err }
			}
			require(t, dfs.failWriteback("/a.log") == 1, "a.log is not open on one descriptor")

			// Opening b passes the bound: a is fsynced to be closed, by
			// this goroutine.
			b := &segmentFile{cache: files, fs: fsys, path: "/b.log"}
			opened := make(chan error, 1)
			go func() {
				if sealed {
					ref, err := b.acquire()
					if err == nil {
						ref.release()
					}
					opened <- err
					return
				}
				_, err := b.pin()
				opened <- err
			}()
			<-evicting
			synced := make(chan error, 1)
			go func() { synced <- logSync() }()
			// The log's fsync must not return before the cache's is
			// noted; give a wrong one a moment to show itself.
			select {
			case err := <-synced:
				close(release)
				require(t, err != nil, "the log's fsync succeeded while the cache's, on the same descriptor, took the writeback error")
			case <-time.After(200 * time.Millisecond):
				close(release)
				err := <-synced
				require(t, errors.Is(err, syscall.EIO), "the log's fsync after the cache's failed one: %v", err)
			}
			noErr(t, <-opened)
		})
	}
}

// TestFileCacheDescriptorShortageAtARoll: a roll opens files outside the
// cache (the new segment's, the sealed one's indexes). Out of
// descriptors, those opens failed the write round, which makes the log
// read-only until a restart, while idle files the cache could close held
// descriptors. They now close idle files and try again, as the cache's
// own opens do.
func TestFileCacheDescriptorShortageAtARoll(t *testing.T) {
	for _, policy := range []FlushPolicy{FlushAlways, FlushNever} {
		t.Run(policy.String(), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.FlushPolicy = policy
			cfg.SegmentBytes = 600
			fsys, logs := openShortOfDescriptors(t, cfg, 4, 8, 300)
			l := logs[0]
			_, err := l.Append(testBatch(t, "rolls", 1, 300, 1), AppendOptions{LeaderEpoch: -1})
			noErr(t, err)
			require(t, l.NumSegments() == 2, "%d segments, want a roll", l.NumSegments())
			require(t, fsys.emfileHit > 0, "no open ran out of descriptors: the test tests nothing")
			_, err = l.Append(testBatch(t, "after", 1, 10, 1), AppendOptions{LeaderEpoch: -1})
			noErr(t, err)
			noErr(t, l.Flush())
			fsys.setLimit(0)
			got := readAll(t, l, 0)
			require(t, bytes.Contains(got, []byte("after/0")), "the append after the roll not read back")
		})
	}
}

// blockingOpenFS holds every open of one path in OpenReadWrite, once
// armed, until release is closed, telling entered when the first
// arrives; it counts the opens of each path while armed.
type blockingOpenFS struct {
	vfs.FS
	path    string
	entered chan struct{}
	release chan struct{}

	mu    sync.Mutex
	armed bool
	opens map[string]int
}

func newBlockingOpenFS(inner vfs.FS, path string) *blockingOpenFS {
	return &blockingOpenFS{FS: inner, path: path, entered: make(chan struct{}), release: make(chan struct{}), opens: map[string]int{}}
}

func (b *blockingOpenFS) arm() {
	b.mu.Lock()
	b.armed = true
	b.mu.Unlock()
}

func (b *blockingOpenFS) OpenReadWrite(name string) (vfs.File, error) {
	b.mu.Lock()
	armed := b.armed
	if armed {
		b.opens[name]++
	}
	first := b.opens[name] == 1
	b.mu.Unlock()
	if armed && name == b.path {
		if first {
			close(b.entered)
		}
		<-b.release
	}
	return b.FS.OpenReadWrite(name)
}

func (b *blockingOpenFS) openCount(name string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.opens[name]
}

// newSealedFiles creates empty files at paths and returns them as sealed
// segment files of one cache, with no indexes to load.
func newSealedFiles(t testing.TB, fsys vfs.FS, files *FileCache, paths ...string) []*segmentFile {
	t.Helper()
	var sfs []*segmentFile
	for _, p := range paths {
		f, err := fsys.Create(p)
		noErr(t, err)
		noErr(t, f.Close())
		sfs = append(sfs, &segmentFile{cache: files, fs: fsys, path: p})
	}
	return sfs
}

// TestFileCacheOpensOfDifferentFilesRunInParallel: with 10,000 partitions
// written round-robin past the budget, almost every append reopens its
// file, and the open (plus a sealed segment's index load) ran under the
// cache's one lock: every log waited for every other log's openat. An open
// now holds only its own file: while one is stuck in the file system,
// another file opens, a cached one is used, and evicting still works.
func TestFileCacheOpensOfDifferentFilesRunInParallel(t *testing.T) {
	fsys := newBlockingOpenFS(vfs.NewMem(), "/a.log")
	files := NewFileCacheWithActive(1, 1)
	sfs := newSealedFiles(t, fsys, files, "/a.log", "/b.log", "/c.log")
	a, b, c := sfs[0], sfs[1], sfs[2]
	fsys.arm()

	stuck := make(chan error, 1)
	go func() {
		ref, err := a.acquire()
		if err == nil {
			ref.release()
		}
		stuck <- err
	}()
	<-fsys.entered

	others := make(chan error, 1)
	go func() {
		for _, sf := range []*segmentFile{b, c, b} { // c evicts b, b reopens
			ref, err := sf.acquire()
			if err != nil {
				others <- err
				return
			}
			ref.release()
		}
		others <- nil
	}()
	select {
	case err := <-others:
		noErr(t, err)
	case <-time.After(10 * time.Second):
		close(fsys.release)
		t.Fatal("opening b and c waited for a's open, stuck in the file system")
	}
	require(t, fsys.openCount("/b.log") == 2, "b opened %d times, want 2 (evicted by c in between)", fsys.openCount("/b.log"))
	close(fsys.release)
	noErr(t, <-stuck)
	require(t, files.OpenFiles() == 1, "%d sealed files open, bound 1", files.OpenFiles())
}

// TestFileCacheSameFileOpensOnce: readers that need a file another
// goroutine is opening wait for that open and share its descriptor,
// instead of opening (and loading indexes) once each.
func TestFileCacheSameFileOpensOnce(t *testing.T) {
	fsys := newBlockingOpenFS(vfs.NewMem(), "/a.log")
	files := NewFileCacheWithActive(4, 4)
	a := newSealedFiles(t, fsys, files, "/a.log")[0]
	fsys.arm()
	const readers = 4
	refs := make(chan fileRef, readers)
	errs := make(chan error, readers)
	acquire := func() {
		ref, err := a.acquire()
		if err != nil {
			errs <- err
			return
		}
		refs <- ref
	}
	go acquire()
	<-fsys.entered
	for range readers - 1 {
		go acquire()
	}
	// Each later reader either waits for the open in flight (right) or
	// starts its own, which the file system counts (wrong).
	deadline := time.Now().Add(10 * time.Second)
	for {
		files.mu.Lock()
		waits := files.openWaits
		files.mu.Unlock()
		if waits == readers-1 || fsys.openCount("/a.log") > 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(fsys.release)
	var first vfs.File
	for range readers {
		select {
		case ref := <-refs:
			require(t, first == nil || ref.file == first, "readers got different descriptors of one file")
			first = ref.file
			ref.release()
		case err := <-errs:
			t.Fatal(err)
		}
	}
	require(t, fsys.openCount("/a.log") == 1, "a opened %d times by %d readers at once, want 1", fsys.openCount("/a.log"), readers)
	require(t, files.OpenFiles() == 1, "%d sealed files counted open, want 1", files.OpenFiles())
}

// TestFileCacheRemovedWhileOpening: a segment deleted while its file is
// being opened (retention, truncation, log close) waits for that open, so
// the use that started it comes before the deletion; then the file is
// closed on release, counted nowhere, and a later use finds it deleted.
func TestFileCacheRemovedWhileOpening(t *testing.T) {
	for _, active := range []bool{false, true} {
		t.Run(fmt.Sprint("active=", active), func(t *testing.T) {
			dfs := newDescriptorFS(vfs.NewMem(), 0)
			fsys := newBlockingOpenFS(dfs, "/a.log")
			files := NewFileCacheWithActive(1, 1)
			sfs := newSealedFiles(t, fsys, files, "/a.log", "/b.log")
			a := sfs[0]
			var handle vfs.File
			if active {
				// Pinned, then closed while idle when b's file took the
				// one place: the writer's next use reopens it.
				h, err := a.pin()
				noErr(t, err)
				handle = h
				_, err = sfs[1].pin()
				noErr(t, err)
				require(t, files.OpenActiveFiles() == 1, "%d active files open, bound 1", files.OpenActiveFiles())
				sfs[1].remove()
			}
			use := func() error {
				if active {
					_, err := handle.WriteAt([]byte("x"), 0)
					return err
				}
				ref, err := a.acquire()
				if err == nil {
					ref.release()
				}
				return err
			}
			fsys.arm()
			got := make(chan error, 1)
			go func() { got <- use() }()
			<-fsys.entered
			removed := make(chan struct{})
			go func() {
				a.remove()
				close(removed)
			}()
			deadline := time.Now().Add(10 * time.Second)
			for {
				files.mu.Lock()
				waits := files.openWaits
				files.mu.Unlock()
				if waits > 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(time.Millisecond)
			}
			select {
			case <-removed:
				t.Fatal("remove returned while the file was being opened")
			default:
			}
			close(fsys.release)
			noErr(t, <-got)
			<-removed
			require(t, files.OpenFiles() == 0 && files.OpenActiveFiles() == 0,
				"%d sealed, %d active files counted open after the removal", files.OpenFiles(), files.OpenActiveFiles())
			want := ErrOffsetOutOfRange
			if active {
				want = ErrClosed
			}
			err := use()
			require(t, errors.Is(err, want), "use of a removed file: %v, want %v", err, want)
			dfs.mu.Lock()
			defer dfs.mu.Unlock()
			require(t, len(dfs.open) == 0, "%d descriptors left open", len(dfs.open))
		})
	}
}

// TestFileCacheSetLimitsEvicts: lowering the bounds while files are idle
// closes the least recently used at once, unsynced ones after an fsync on
// their own descriptor; raising them keeps more open.
func TestFileCacheSetLimitsEvicts(t *testing.T) {
	dfs := newDescriptorFS(vfs.NewMem(), 0)
	files := NewFileCacheWithActive(8, 8)
	var handles []vfs.File
	for i := range 6 {
		sf := newSealedFiles(t, dfs, files, fmt.Sprintf("/f-%d.log", i))[0]
		h, err := sf.pin()
		noErr(t, err)
		_, err = h.WriteAt([]byte("unsynced"), 0)
		noErr(t, err)
		handles = append(handles, h)
	}
	require(t, files.OpenActiveFiles() == 6, "%d active files open, want 6", files.OpenActiveFiles())
	require(t, dfs.failWriteback("/f-0.log") == 1, "f-0 not open on one descriptor")
	files.SetLimits(8, 2)
	require(t, files.OpenActiveFiles() == 2, "%d active files open after lowering the bound to 2", files.OpenActiveFiles())
	dfs.mu.Lock()
	open := len(dfs.open)
	dfs.mu.Unlock()
	require(t, open == 2, "%d descriptors open after lowering the bound to 2", open)
	// f-0 was closed after an fsync that took its writeback error.
	_, err := handles[0].WriteAt([]byte("more"), 0)
	require(t, errors.Is(err, syscall.EIO), "write after the eviction's failed fsync: %v", err)
	files.SetLimits(8, 6)
	for _, h := range handles[1:] {
		_, err := h.WriteAt([]byte("reopened"), 0)
		noErr(t, err)
	}
	require(t, files.OpenActiveFiles() == 5, "%d active files open with room for 6, want the 5 used", files.OpenActiveFiles())
	sealed, active := files.Limits()
	require(t, sealed == 8 && active == 6, "limits %d, %d", sealed, active)
}

// BenchmarkFileCacheReopenParallel reads round-robin, from 4 goroutines
// per core, 1,024 sealed segments of the real file system through a cache
// that keeps 64 open, so nearly every acquire reopens a file and loads its
// 4 KiB indexes, as 10,000 partitions written round-robin past the budget
// do. Before opens ran outside the cache's lock, every acquire queued
// behind the one opening.
func BenchmarkFileCacheReopenParallel(b *testing.B) {
	dir := benchDir(b)
	fsys := vfs.OS()
	files := NewFileCacheWithActive(64, 64)
	const segments = 1024
	sfs := make([]*segmentFile, segments)
	index := make([]byte, 4096)
	for i := range sfs {
		path := fmt.Sprintf("%s/%020d", dir, i)
		for _, suffix := range []string{logSuffix, indexSuffix} {
			f, err := fsys.Create(path + suffix)
			noErr(b, err)
			_, err = f.WriteAt(index, 0)
			noErr(b, err)
			noErr(b, f.Close())
		}
		sfs[i] = &segmentFile{cache: files, fs: fsys, path: path + logSuffix, loadIndexes: func(int64, int64) (*sealedIndexes, error) {
			buf, err := vfs.ReadFile(fsys, path+indexSuffix, 1<<20)
			return &sealedIndexes{offsets: offsetIndex{buf: buf}}, err
		}}
	}
	var next atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ref, err := sfs[next.Add(1)%segments].acquire()
			if err != nil {
				b.Error(err)
				return
			}
			ref.release()
		}
	})
	b.StopTimer()
	for _, sf := range sfs {
		sf.remove()
	}
}

// TestFileCacheDeletionWaitsForAnIndexRebuild: a reader opening a sealed
// segment whose index files are damaged rebuilds them from the .log and
// writes them back, without any lock since opens left the cache's lock.
// A retention or DeleteRecords removal of that segment meanwhile deleted
// the index files and the rebuild then wrote them again: orphans that a
// new segment at the same base offset (a truncation restarting the log
// there) would later be handed as its own. The removal now waits for the
// open in flight, as it did when the open held the cache's lock.
func TestFileCacheDeletionWaitsForAnIndexRebuild(t *testing.T) {
	cfg := smallConfig()
	tl := openTestLog(t, cfg)
	for i := range 40 {
		_, err := tl.Append(testBatch(t, "x", 2, 100, int64(1000+i)), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	require(t, tl.NumSegments() > 2, "want sealed segments, have %d", tl.NumSegments())
	end, secondBase := tl.LogEndOffset(), tl.segments[1].baseOffset
	indexPath := tl.segments[0].path(indexSuffix)
	good := readFileForTest(t, tl.fs, indexPath)
	noErr(t, tl.Close())
	writeFileForTest(t, tl.fs, indexPath, make([]byte, len(good)+64)) // zero-filled: rebuilt

	// Only the rebuild opens the index file read-write: block it there.
	fsys := newBlockingOpenFS(tl.fs, indexPath)
	l, err := Open(fsys, tl.dir, Options{Config: cfg, Clock: tl.clock, Logger: quietLogger, RecoveryPoint: end, CleanShutdown: true})
	noErr(t, err)
	defer l.Close()
	fsys.arm()
	read := make(chan error, 1)
	go func() {
		s, err := l.Read(0, ReadOptions{MaxBytes: 1, MinOneBatch: true, MaxOffset: NoMaxOffset})
		if err == nil {
			s.Release()
		}
		read <- err
	}()
	<-fsys.entered
	deleted := make(chan error, 1)
	go func() {
		_, err := l.DeleteRecordsBefore(secondBase)
		deleted <- err
	}()
	// Either the deletion finishes while the rebuild is stuck (the bug) or
	// it waits for the open in flight.
	deadline := time.Now().Add(10 * time.Second)
	for done := false; !done; {
		l.files.mu.Lock()
		waits := l.files.openWaits
		l.files.mu.Unlock()
		select {
		case err := <-deleted:
			deleted <- err
			done = true
		default:
			done = waits > 0 || time.Now().After(deadline)
			time.Sleep(time.Millisecond)
		}
	}
	close(fsys.release)
	// The read may come before the deletion or after it.
	if err := <-read; !errors.Is(err, ErrOffsetOutOfRange) {
		noErr(t, err)
	}
	noErr(t, <-deleted)
	names, err := tl.fs.List(tl.dir)
	noErr(t, err)
	for _, name := range names {
		base, ok := parseSegmentFileName(name, indexSuffix)
		require(t, !ok || base != 0, "%s left behind by the deleted segment's index rebuild (files: %v)", name, names)
	}
}

// TestFileCacheLogSyncWaitsOnlyForItsOwnEvictionFsync: a log's fsync of a
// file waits for an fsync the cache runs to close that file, but the cache
// marked the fsyncs of one batch done only when the whole batch was: a
// lowered bound (SetLimits, as clients connect) evicts a step's worth of
// files at once, sometimes thousands, and the log waited for every other
// file's fsync before it. Here b's fsync hangs and a's log sync must not.
func TestFileCacheLogSyncWaitsOnlyForItsOwnEvictionFsync(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var armed atomic.Bool
	fsys := &syncHookFS{FS: vfs.NewMem(), after: func(name string, err error) {
		if name == "/b.log" && armed.Load() {
			close(entered)
			<-release
		}
	}}
	files := NewFileCacheWithActive(8, 8)
	var handles []vfs.File
	for _, name := range []string{"/a.log", "/b.log", "/c.log"} { // a least recently used
		h, err := newSealedFiles(t, fsys, files, name)[0].pin()
		noErr(t, err)
		_, err = h.WriteAt([]byte("unsynced"), 0)
		noErr(t, err)
		handles = append(handles, h)
	}
	armed.Store(true)
	lowered := make(chan struct{})
	go func() {
		files.SetLimits(8, 1) // evicts a, then b: one batch
		close(lowered)
	}()
	<-entered
	synced := make(chan error, 1)
	go func() { synced <- handles[0].Sync() }()
	select {
	case err := <-synced:
		noErr(t, err)
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("the log's sync of a waited for the cache's fsync of b")
	}
	close(release)
	<-lowered
	require(t, files.OpenActiveFiles() == 1, "%d active files open, bound 1", files.OpenActiveFiles())
}
