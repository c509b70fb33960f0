package log

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/vfs"
)

// A broker hosts thousands of partitions; an idle one must cost no file
// descriptor beyond the file cache's bounds, and no goroutine or timer.
// This test holds the manager to that on the real file system.
func TestManagerOpensTenThousandLogs(t *testing.T) {
	const logs = 10_000
	if _, err := os.ReadDir("/proc/self/fd"); err != nil {
		t.Skip("needs /proc/self/fd to count descriptors")
	}
	cfg := DefaultConfig()
	// FlushNever: appends do not fsync, so creating 10,000 logs costs no
	// 10,000 fsyncs (Close still fsyncs each active segment, as it must).
	// Small preallocated indexes: 10 MiB sparse files are cheap, but there
	// would be 20,000 of them.
	cfg.FlushPolicy = FlushNever
	cfg.SegmentIndexBytes = 4 * offsetIndexEntrySize * timeIndexEntrySize
	dir := t.TempDir()
	const activeLimit = 1000
	opts := ManagerOptions{FS: vfs.OS(), Dir: dir, Config: cfg, Logger: quietLogger, MaxOpenActiveSegments: activeLimit}

	runtime.GC() // let finalizers of earlier tests' files run
	fdsBefore, goroutinesBefore := openDescriptors(t), runtime.NumGoroutine()
	start := time.Now()
	m, err := OpenManager(opts)
	noErr(t, err)
	for i := 0; i < logs; i++ {
		tp := TopicPartition{Topic: fmt.Sprintf("topic-%d", i/10), Partition: int32(i % 10)}
		l, err := m.GetOrCreate(tp, cfg)
		noErr(t, err)
		_, err = l.Append(testBatch(t, tp.String(), 1, 20, int64(i)), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	fdsCreated, goroutinesCreated := openDescriptors(t), runtime.NumGoroutine()
	created := time.Since(start)
	noErr(t, m.Close())
	closed := time.Since(start) - created
	fdsClosed := openDescriptors(t)

	start = time.Now()
	m, err = OpenManager(opts)
	noErr(t, err)
	reopened := time.Since(start)
	defer func() {
		// The clean Close was measured above; this one would only add
		// 30,000 more fsyncs. Drop the descriptors as a killed process would.
		for _, tp := range m.Partitions() {
			l, _ := m.Log(tp)
			l.closeFiles()
		}
	}()
	fdsOpen, goroutinesOpen := openDescriptors(t), runtime.NumGoroutine()
	parts := m.Partitions()
	require(t, len(parts) == logs, "reopened %d logs, want %d", len(parts), logs)
	for _, tp := range parts {
		l, _ := m.Log(tp)
		require(t, l.LogEndOffset() == 1, "%s: log end %d after reopen", tp, l.LogEndOffset())
		got := readAll(t, l, 0)
		require(t, bytes.Contains(got, []byte(tp.String()+"/0")), "%s: record not read back", tp)
	}
	fdsRead := openDescriptors(t)
	t.Logf("descriptors: %d before, %d with %d logs created, %d after Close, %d reopened, %d after reading all; goroutines %d/%d/%d",
		fdsBefore, fdsCreated, logs, fdsClosed, fdsOpen, fdsRead, goroutinesBefore, goroutinesCreated, goroutinesOpen)
	t.Logf("create+append %v, close %v, reopen %v", created.Round(time.Millisecond), closed.Round(time.Millisecond), reopened.Round(time.Millisecond))

	// FlushNever leaves every appended active segment unsynced, and an
	// unsynced file stays open (an error its writeback hits must reach
	// the descriptor that wrote): one descriptor per written log. Once
	// synced (the clean Close) and reopened, idle logs hold at most the
	// active limit, however many there are.
	require(t, fdsCreated-fdsBefore <= logs+200, "created: %d descriptors for %d logs", fdsCreated-fdsBefore, logs)
	for _, c := range []struct {
		name string
		fds  int
	}{{"reopened", fdsOpen}, {"read", fdsRead}} {
		require(t, c.fds-fdsBefore <= activeLimit+200, "%s: %d descriptors for %d logs, active limit %d", c.name, c.fds-fdsBefore, logs, activeLimit)
		require(t, c.fds-fdsBefore >= activeLimit, "%s: %d descriptors for %d logs: is the idle active LRU not used?", c.name, c.fds-fdsBefore, logs)
	}
	require(t, m.OpenActiveFiles() == activeLimit, "%d active files open, want the limit %d", m.OpenActiveFiles(), activeLimit)
	require(t, fdsClosed-fdsBefore < 50, "%d descriptors left open after Close", fdsClosed-fdsBefore)
	require(t, goroutinesCreated-goroutinesBefore < 10 && goroutinesOpen-goroutinesBefore < 10,
		"goroutines grew with the logs: %d before, %d created, %d reopened", goroutinesBefore, goroutinesCreated, goroutinesOpen)
}

func openDescriptors(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	noErr(t, err)
	return len(entries)
}
