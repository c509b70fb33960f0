package log

import (
	"math/rand/v2"
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
