package log

import (
	"bytes"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// shortAtDirectorySyncs has the rest of the process take every descriptor
// just before the first try of each of the next n directory syncs: the try
// finds none, and only a retry after shedding an idle file finds the one
// given back. It counts the tries; a sync that sheds makes two. (Each
// shed closes an idle file for good, so n stays below the idle files.)
func shortAtDirectorySyncs(fsys *descriptorFS, n int32) *atomic.Int32 {
	var tries atomic.Int32
	fsys.beforeSyncDir = func() {
		try := tries.Add(1)
		if try%2 == 0 || try > 2*n {
			return // a retry, whose descriptor the shed gave back, or past n
		}
		fsys.mu.Lock()
		fsys.limit = len(fsys.open)
		fsys.mu.Unlock()
	}
	return &tries
}

// enoughDescriptors ends the shortage so the test can read back.
func enoughDescriptors(fsys *descriptorFS) {
	fsys.beforeSyncDir = nil
	fsys.setLimit(0)
}

// dirSyncCase is a log operation that syncs the log's directory: prepare
// runs with descriptors to spare, run during the shortage.
type dirSyncCase struct {
	name    string
	config  func(*Config)
	prepare func(t *testing.T, fsys *descriptorFS, l *Log)
	run     func(t *testing.T, fsys *descriptorFS, l *Log) error
}

// appendRolled appends n records of 300 bytes, a segment each with
// SegmentBytes 600.
func appendRolled(t *testing.T, l *Log, n int) {
	t.Helper()
	for i := range n {
		_, err := l.Append(testBatch(t, fmt.Sprintf("more/%d", i), 1, 300, 1), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
}

func dirSyncCases() []dirSyncCase {
	return []dirSyncCase{
		{name: "open a new log", run: func(t *testing.T, fsys *descriptorFS, l *Log) error {
			nl, err := Open(fsys, "/data/new", Options{Config: l.cfg, Files: l.files, Logger: quietLogger})
			if err == nil {
				t.Cleanup(func() { nl.Close() })
			}
			return err
		}},
		{name: "truncate fully", run: func(t *testing.T, _ *descriptorFS, l *Log) error {
			return l.TruncateFullyAndStartAt(5)
		}},
		{name: "truncate", prepare: func(t *testing.T, _ *descriptorFS, l *Log) { appendRolled(t, l, 3) },
			run: func(t *testing.T, _ *descriptorFS, l *Log) error { return l.Truncate(1) }},
		{name: "delete records at once", prepare: func(t *testing.T, _ *descriptorFS, l *Log) { appendRolled(t, l, 3) },
			run: func(t *testing.T, _ *descriptorFS, l *Log) error { _, err := l.DeleteRecordsBefore(2); return err }},
		{name: "delete records after a delay", config: func(c *Config) { c.FileDeleteDelayMs = 60_000 },
			prepare: func(t *testing.T, _ *descriptorFS, l *Log) { appendRolled(t, l, 3) },
			run:     func(t *testing.T, _ *descriptorFS, l *Log) error { _, err := l.DeleteRecordsBefore(2); return err }},
		{name: "clean", config: func(c *Config) { c.Compact = true }, prepare: prepareClean,
			run: func(t *testing.T, _ *descriptorFS, l *Log) error {
				stats, err := l.CleanNow(1 << 20)
				require(t, err != nil || stats != (CleanStats{}), "nothing cleaned")
				return err
			}},
		{name: "recover an interrupted clean", prepare: func(t *testing.T, fsys *descriptorFS, l *Log) {
			closeAndCreate(t, fsys, l, "00000000000000000000.log.cleaned")
		}, run: reopen},
		{name: "load dropping segments after a hole", prepare: func(t *testing.T, fsys *descriptorFS, l *Log) {
			appendRolled(t, l, 3)
			closeAndCreate(t, fsys, l, "00000000000000000002.log") // emptied: offsets 2 on were never durable
		}, run: func(t *testing.T, fsys *descriptorFS, l *Log) error {
			if err := reopen(t, fsys, l); err != nil {
				return err
			}
			require(t, len(listNames(t, fsys, l.dir, ".log")) == 3, "segments after the hole not dropped")
			return nil
		}},
		{name: "index an aborted transaction", prepare: func(t *testing.T, _ *descriptorFS, l *Log) { appendRolled(t, l, 3) },
			run: func(t *testing.T, _ *descriptorFS, l *Log) error {
				return l.AppendAbortedTxn(AbortedTxn{ProducerID: 1, FirstOffset: 0, LastOffset: 1, LastStableOffset: 2})
			}},
	}
}

// closeAndCreate closes l and creates (or empties) the file name in its
// directory.
func closeAndCreate(t *testing.T, fsys *descriptorFS, l *Log, name string) {
	noErr(t, l.Close())
	f, err := fsys.Create(l.dir + "/" + name)
	noErr(t, err)
	noErr(t, f.Close())
}

// reopen opens l's directory again with l's file cache.
func reopen(t *testing.T, fsys *descriptorFS, l *Log) error {
	nl, err := Open(fsys, l.dir, Options{Config: l.cfg, Files: l.files, Logger: quietLogger})
	if err == nil {
		t.Cleanup(func() { nl.Close() })
	}
	return err
}

// listNames lists the names in dir ending in suffix.
func listNames(t *testing.T, fsys *descriptorFS, dir, suffix string) []string {
	names, err := fsys.List(dir)
	noErr(t, err)
	var out []string
	for _, n := range names {
		if strings.HasSuffix(n, suffix) {
			out = append(out, n)
		}
	}
	return out
}

// prepareClean gives the log sealed segments holding one key many times.
func prepareClean(t *testing.T, _ *descriptorFS, l *Log) {
	l.SetCleanableBound(unbounded)
	for i := range 4 {
		_, err := l.Append(keyedBatch(t, record.CodecNone, 1, keyed("k", fmt.Sprintf("%0300d", i))), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
}

// TestFileCacheDescriptorShortageAtEachDirectorySync: a directory sync
// opens the directory, and only the segment roll's shed idle files and
// tried again when that open found no descriptor. Opening a log,
// truncation, deleting segments (at once or renamed for a delay), a
// clean's swap and the recovery of an interrupted clean failed instead,
// most of them turning the log read-only.
func TestFileCacheDescriptorShortageAtEachDirectorySync(t *testing.T) {
	for _, tc := range dirSyncCases() {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.SegmentBytes = 600
			if tc.config != nil {
				tc.config(&cfg)
			}
			fsys, logs := openShortOfDescriptors(t, cfg, 8, 8, 300)
			enoughDescriptors(fsys)
			l := logs[0]
			if tc.prepare != nil {
				tc.prepare(t, fsys, l)
			}
			tries := shortAtDirectorySyncs(fsys, 3)
			err := tc.run(t, fsys, l)
			enoughDescriptors(fsys)
			noErr(t, err)
			require(t, tries.Load() >= 2, "%d directory sync tries, want a sync short once", tries.Load())
			if !l.isClosed() {
				noErr(t, l.Err())
			}
		})
	}
}

// TestFileCacheDescriptorShortageAtAManagersDirectorySync: the manager
// syncs the log directory after creating and deleting a partition's log;
// out of descriptors, that failed the create or the delete.
func TestFileCacheDescriptorShortageAtAManagersDirectorySync(t *testing.T) {
	fsys := newDescriptorFS(vfs.NewMem(), 0)
	m, err := OpenManager(ManagerOptions{FS: fsys, Dir: "/data", Config: DefaultConfig(), Logger: quietLogger})
	noErr(t, err)
	defer m.Close()
	for i := range 6 {
		l, err := m.GetOrCreate(TopicPartition{"t", int32(i)}, DefaultConfig())
		noErr(t, err)
		_, err = l.Append(testBatch(t, fmt.Sprint(i), 1, 10, 1), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	tries := shortAtDirectorySyncs(fsys, 3)
	l, err := m.GetOrCreate(TopicPartition{"new", 0}, DefaultConfig())
	noErr(t, err)
	noErr(t, l.Err())
	noErr(t, m.Delete(TopicPartition{"t", 0}))
	enoughDescriptors(fsys)
	// The new log's directory sync and the manager's, then the delete's.
	require(t, tries.Load() == 6, "%d directory sync tries, want 3 syncs short once each", tries.Load())
	_, err = l.Append(testBatch(t, "new", 1, 10, 1), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	require(t, bytes.Contains(readAll(t, l, 0), []byte("new/0")), "the new log's record not read back")
}

// TestFileCacheDescriptorShortageAtAManagersCheckpoint: the manager's
// Truncate, TruncateFullyAndStartAt and DeleteRecordsBefore checkpoint
// right after the log's change, and the checkpoint's files (a temporary
// file, then the log directory's fsync) went straight to the file
// system: out of descriptors, the log was truncated but the call failed,
// and the partition then skipped the rest of its truncation (epochs, high
// watermark, producer state).
func TestFileCacheDescriptorShortageAtAManagersCheckpoint(t *testing.T) {
	fsys := newDescriptorFS(vfs.NewMem(), 0)
	cfg := DefaultConfig()
	cfg.SegmentBytes = 600
	m, err := OpenManager(ManagerOptions{FS: fsys, Dir: "/data", Config: cfg, Logger: quietLogger})
	noErr(t, err)
	defer m.Close()
	tp := TopicPartition{"t", 0}
	for i := range 6 {
		l, err := m.GetOrCreate(TopicPartition{"t", int32(i)}, cfg)
		noErr(t, err)
		appendRolled(t, l, 3-2*min(i, 1)) // idle files to shed: every log's
	}
	// The truncation's own sync, then the checkpoint's three.
	tries := shortAtDirectorySyncs(fsys, 4)
	err = m.Truncate(tp, 1)
	enoughDescriptors(fsys)
	noErr(t, err)
	require(t, tries.Load() == 8, "%d directory sync tries, want 4 syncs short once each", tries.Load())
	noErr(t, m.Checkpoint())
}
