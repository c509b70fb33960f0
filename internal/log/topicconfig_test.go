package log

import (
	"math/rand/v2"
	"testing"
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
