package log

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/sluicelog/sluice/internal/vfs"
)

// logOpenCountFS counts the read-only opens of .log files: a rebuild of a
// sealed segment's indexes makes one (the cache opens them read-write).
type logOpenCountFS struct {
	vfs.FS
	logOpens atomic.Int32
}

func (f *logOpenCountFS) Open(name string) (vfs.File, error) {
	if strings.HasSuffix(name, logSuffix) {
		f.logOpens.Add(1)
	}
	return f.FS.Open(name)
}

// TestFileCacheDescriptorShortageAtASealedIndexLoad: a sealed segment's
// index files are read when the cache opens it. When that read found no
// descriptor, and no idle file was left to close, the indexes were
// rebuilt from the .log file: a scan of the whole segment (up to
// segment.bytes), opening the .log a second time, for indexes that were
// fine. The shortage now fails that open, as any open out of descriptors
// does, and the next read loads the files; only a missing or damaged
// index is rebuilt.
func TestFileCacheDescriptorShortageAtASealedIndexLoad(t *testing.T) {
	efs, fsys, reopen := closedLogWithASealedSegment(t)
	l, err := reopen()
	noErr(t, err)
	defer l.Close()
	require(t, l.NumSegments() > 1, "%d segments, want a sealed one", l.NumSegments())

	efs.Inject(vfs.Rule{Op: vfs.OpOpen, PathContains: indexSuffix, Count: -1, Err: injectedEMFILE})
	_, err = l.Read(0, ReadOptions{MaxBytes: 1 << 20, MaxOffset: NoMaxOffset})
	require(t, efs.Injected() > 0, "no index read ran out of descriptors: the test tests nothing")
	require(t, errors.Is(err, syscall.EMFILE), "read of a sealed segment out of descriptors: %v, want EMFILE", err)
	require(t, fsys.logOpens.Load() == 0, "the sealed segment's indexes were rebuilt from its .log %d times", fsys.logOpens.Load())
	efs.Clear()
	got := readAll(t, l, 0)
	require(t, strings.Contains(string(got), "sealed/0/0"), "the sealed segment's record not read back")
	require(t, fsys.logOpens.Load() == 0, "the sealed segment's indexes were rebuilt from its .log %d times", fsys.logOpens.Load())
}

var injectedEMFILE = fmt.Errorf("injected: %w", syscall.EMFILE)

// closedLogWithASealedSegment writes a log of three segments and closes
// it cleanly; reopen opens it again trusting its files, on one file cache.
func closedLogWithASealedSegment(t *testing.T) (*vfs.ErrorFS, *logOpenCountFS, func() (*Log, error)) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.SegmentBytes = 600
	efs := vfs.NewErrorFS(vfs.NewMem())
	fsys := &logOpenCountFS{FS: efs}
	files := NewFileCacheWithActive(8, 8)
	const dir = "/data/t-0"
	l, err := Open(fsys, dir, Options{Config: cfg, Files: files, Logger: quietLogger})
	noErr(t, err)
	for i := range 3 {
		_, err := l.Append(testBatch(t, fmt.Sprint("sealed/", i), 1, 300, 1), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	end := l.LogEndOffset()
	noErr(t, l.Close())
	return efs, fsys, func() (*Log, error) {
		return Open(fsys, dir, Options{Config: cfg, Files: files, Logger: quietLogger, RecoveryPoint: end, CleanShutdown: true})
	}
}

// TestFileCacheDescriptorShortageAtATrustedSegmentsLoad: a log's load
// reads each sealed segment's time index below the recovery point; a
// read that found no descriptor (none idle to close) rebuilt both
// indexes from the whole .log. The load now fails as an open out of
// descriptors does, and loads the files once descriptors are back.
func TestFileCacheDescriptorShortageAtATrustedSegmentsLoad(t *testing.T) {
	efs, fsys, reopen := closedLogWithASealedSegment(t)
	efs.Inject(vfs.Rule{Op: vfs.OpOpen, PathContains: timeIndexSuffix, Count: -1, Err: injectedEMFILE})
	l, err := reopen()
	if err == nil {
		l.Close()
	}
	require(t, efs.Injected() > 0, "no time index read ran out of descriptors: the test tests nothing")
	require(t, errors.Is(err, syscall.EMFILE), "load out of descriptors: %v, want EMFILE", err)
	require(t, fsys.logOpens.Load() == 0, "the sealed segment's indexes were rebuilt from its .log %d times", fsys.logOpens.Load())
	efs.Clear()
	l, err = reopen()
	noErr(t, err)
	defer l.Close()
	require(t, fsys.logOpens.Load() == 0, "the sealed segment's indexes were rebuilt from its .log %d times", fsys.logOpens.Load())
}

// TestFileCacheDescriptorShortageAtATxnIndexLoad: a log's load reads the
// .txnindex of each segment that has one, and that read went straight to
// the file system while every other file of the load sheds an idle file
// and tries again when out of descriptors: the log failed to load.
func TestFileCacheDescriptorShortageAtATxnIndexLoad(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 600
	fsys, logs := openShortOfDescriptors(t, cfg, 3, 8, 10)
	files := logs[0].files
	fsys.setLimit(0)
	const dir = "/data/txn-0"
	l, err := Open(fsys, dir, Options{Config: cfg, Files: files, Logger: quietLogger})
	noErr(t, err)
	appendRolled(t, l, 3)
	noErr(t, l.AppendAbortedTxn(AbortedTxn{ProducerID: 1, FirstOffset: 0, LastOffset: 1, LastStableOffset: 2}))
	end := l.LogEndOffset()
	noErr(t, l.Close())

	// Just before the first read of the .txnindex, the rest of the
	// process takes every descriptor but those the cache's idle files
	// hold.
	short := &shortAtFirstOpenFS{descriptorFS: fsys, suffix: txnIndexSuffix}
	l, err = Open(short, dir, Options{Config: cfg, Files: files, Logger: quietLogger, RecoveryPoint: end, CleanShutdown: true})
	noErr(t, err)
	defer l.Close()
	require(t, fsys.emfileHit > 0, "no open ran out of descriptors: the test tests nothing")
	got := l.AbortedTxns(0, end)
	require(t, len(got) == 1 && got[0].ProducerID == 1, "aborted transactions after the load: %+v", got)
}

// shortAtFirstOpenFS has the rest of the process take every free
// descriptor just before the first open of a file whose name ends in
// suffix.
type shortAtFirstOpenFS struct {
	*descriptorFS
	suffix string
	done   atomic.Bool
}

func (f *shortAtFirstOpenFS) Open(name string) (vfs.File, error) {
	if strings.HasSuffix(name, f.suffix) && f.done.CompareAndSwap(false, true) {
		f.mu.Lock()
		f.limit = len(f.open)
		f.mu.Unlock()
	}
	return f.descriptorFS.Open(name)
}
