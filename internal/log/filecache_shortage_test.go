package log

import (
	"bytes"
	"fmt"
	"testing"
)

// TestFileCacheDescriptorShortageAtALogsLoad: loading a log whose sealed
// segment has lost its time index rebuilds the indexes from the .log file
// (as it does when the index read itself finds no descriptor). That open
// did not close idle files and try again, as every other open of a
// segment file does, so at start-up, with many partitions opening under a
// low descriptor limit, the log failed to load although the cache held
// idle files it could close.
func TestFileCacheDescriptorShortageAtALogsLoad(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 600
	fsys, logs := openShortOfDescriptors(t, cfg, 3, 8, 10)
	files := logs[0].files
	fsys.mu.Lock()
	fsys.limit = 0
	fsys.mu.Unlock()

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
	noErr(t, fsys.FS.Remove(sealed.path(timeIndexSuffix)))

	// The rest of the process takes every descriptor but those the
	// cache's idle files hold.
	fsys.mu.Lock()
	fsys.limit = len(fsys.open)
	fsys.mu.Unlock()
	l, err = Open(fsys, dir, Options{Config: cfg, Files: files, Logger: quietLogger, RecoveryPoint: end, CleanShutdown: true})
	noErr(t, err)
	defer l.Close()
	require(t, fsys.emfileHit > 0, "no open ran out of descriptors: the test tests nothing")
	fsys.mu.Lock()
	fsys.limit = 0
	fsys.mu.Unlock()
	got := readAll(t, l, 0)
	for i := range 3 {
		tag := fmt.Sprintf("loaded/%d/0", i)
		require(t, bytes.Contains(got, []byte(tag)), "%s not read back after the load", tag)
	}
}
