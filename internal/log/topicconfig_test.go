package log

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/vfs"
)

// TestLogFlushMessages: under the never policy, an append that leaves
// flush.messages offsets unsynced fsyncs, so a crash keeps them; fewer
// stay in the page cache.
func TestLogFlushMessages(t *testing.T) {
	cfg := smallConfig()
	cfg.FlushPolicy = FlushNever
	cfg.FlushMessages = 5
	tl := openTestLog(t, cfg)
	now := tl.clock.Now().UnixMilli()
	_, err := tl.Append(testBatch(t, "a", 3, 10, now), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	require(t, tl.RecoveryPoint() == 0, "3 of 5 messages: recovery point %d, want 0", tl.RecoveryPoint())
	_, err = tl.Append(testBatch(t, "b", 2, 10, now), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	require(t, tl.RecoveryPoint() == 5, "5 of 5 messages: recovery point %d, want 5", tl.RecoveryPoint())
	_, err = tl.Append(testBatch(t, "c", 1, 10, now), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	require(t, tl.RecoveryPoint() == 5, "1 more message: recovery point %d, want 5", tl.RecoveryPoint())

	for seed := range uint64(20) {
		crashed := tl.fs.CrashClone(rand.New(rand.NewPCG(seed, 0)))
		l, err := Open(crashed, tl.dir, Options{Config: cfg, Clock: tl.clock, Logger: quietLogger})
		noErr(t, err)
		require(t, l.LogEndOffset() >= 5, "seed %d: the flushed 5 messages were lost: log end %d", seed, l.LogEndOffset())
		noErr(t, l.Close())
	}
}

// TestLogSegmentJitter: a segment rolls segment.ms less its jitter after it
// became active; the jitter is drawn below min(segment.jitter.ms,
// segment.ms), once per segment.
func TestLogSegmentJitter(t *testing.T) {
	for _, tc := range []struct {
		jitterMs, wantBound, drawn, rollAfterMs int64
	}{
		{jitterMs: 0, rollAfterMs: 1000},
		{jitterMs: 500, wantBound: 500, drawn: 400, rollAfterMs: 600},
		{jitterMs: 5000, wantBound: 1000, drawn: 999, rollAfterMs: 1},
	} {
		cfg := smallConfig()
		cfg.SegmentMs, cfg.SegmentJitterMs = 1000, tc.jitterMs
		tl := &testLog{fs: vfs.NewMem(), clock: clock.NewManual(time.UnixMilli(1_700_000_000_000)), cfg: cfg, dir: "/data/topic-0"}
		var bounds []int64
		tl.reopen(t, Options{RollJitter: func(n int64) int64 { bounds = append(bounds, n); return tc.drawn }})
		appendAt := func() int {
			t.Helper()
			_, err := tl.Append(testBatch(t, "x", 1, 10, tl.clock.Now().UnixMilli()), AppendOptions{LeaderEpoch: -1})
			noErr(t, err)
			return tl.NumSegments()
		}
		appendAt()
		tl.clock.Advance(time.Duration(tc.rollAfterMs-1) * time.Millisecond)
		require(t, appendAt() == 1, "jitter %d: rolled %d ms after creation, before %d", tc.jitterMs, tc.rollAfterMs-1, tc.rollAfterMs)
		tl.clock.Advance(time.Millisecond)
		require(t, appendAt() == 2, "jitter %d: did not roll %d ms after creation", tc.jitterMs, tc.rollAfterMs)
		for _, n := range bounds {
			require(t, n == tc.wantBound, "jitter %d: drawn below %d, want below %d", tc.jitterMs, n, tc.wantBound)
		}
		require(t, (len(bounds) > 0) == (tc.jitterMs > 0), "jitter %d: drew %d times", tc.jitterMs, len(bounds))
		noErr(t, tl.Close())
	}
}

// TestLogFileDeleteDelay: a segment that retention or DeleteRecords
// removes leaves the log at once, its files linger renamed .deleted until
// file.delete.delay.ms has passed, and Open removes any left behind.
func TestLogFileDeleteDelay(t *testing.T) {
	cfg := smallConfig()
	cfg.SegmentBytes = 300 // a few batches per segment
	cfg.FileDeleteDelayMs = 60_000
	tl := openTestLog(t, cfg)
	for i := range 6 {
		_, err := tl.Append(testBatch(t, fmt.Sprint(i), 1, 100, tl.clock.Now().UnixMilli()), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	require(t, tl.NumSegments() >= 3, "%d segments", tl.NumSegments())
	countFiles := func(suffix string) int {
		t.Helper()
		names, err := tl.fs.List(tl.dir)
		noErr(t, err)
		n := 0
		for _, name := range names {
			if strings.HasSuffix(name, suffix) {
				n++
			}
		}
		return n
	}
	segments, logs := tl.NumSegments(), countFiles(".log")
	start, err := tl.DeleteRecordsBefore(tl.LogEndOffset() - 1)
	noErr(t, err)
	deleted := segments - tl.NumSegments()
	require(t, deleted > 0, "DeleteRecordsBefore deleted no segment")
	require(t, countFiles(".log") == logs-deleted, "%d .log files, want %d", countFiles(".log"), logs-deleted)
	require(t, countFiles(".log.deleted") == deleted && countFiles(".index.deleted") == deleted,
		"%d .log.deleted and %d .index.deleted files, want %d", countFiles(".log.deleted"), countFiles(".index.deleted"), deleted)
	_, err = tl.Read(start, ReadOptions{MaxBytes: 1 << 20})
	noErr(t, err)

	noErr(t, tl.removeDeletedSegments(tl.clock.Now().UnixMilli()+59_999))
	require(t, countFiles(deletedSuffix) == 3*deleted, "removed before the delay: %d left", countFiles(deletedSuffix))
	noErr(t, tl.removeDeletedSegments(tl.clock.Now().UnixMilli()+60_000))
	require(t, countFiles(deletedSuffix) == 0, "%d .deleted files after the delay", countFiles(deletedSuffix))

	// Leftovers of a stop before the delay are removed at open.
	for i := range 6 {
		_, err := tl.Append(testBatch(t, fmt.Sprint(i), 1, 100, tl.clock.Now().UnixMilli()), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	_, err = tl.DeleteRecordsBefore(tl.LogEndOffset())
	noErr(t, err)
	require(t, countFiles(deletedSuffix) > 0, "nothing retired")
	noErr(t, tl.Close())
	tl.reopen(t, Options{RecoveryPoint: 0})
	require(t, countFiles(deletedSuffix) == 0, "%d .deleted files after reopen", countFiles(deletedSuffix))
	noErr(t, tl.Close())

	// No delay: removed at once.
	cfg.FileDeleteDelayMs = 0
	tl = openTestLog(t, cfg)
	for i := range 6 {
		_, err := tl.Append(testBatch(t, fmt.Sprint(i), 1, 100, tl.clock.Now().UnixMilli()), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	_, err = tl.DeleteRecordsBefore(tl.LogEndOffset() - 1)
	noErr(t, err)
	require(t, countFiles(deletedSuffix) == 0, "file.delete.delay.ms=0 left %d .deleted files", countFiles(deletedSuffix))
	noErr(t, tl.Close())
}
