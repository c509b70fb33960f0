package log

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestJournalPolicyTurnedAlwaysKeepsAcknowledged: a topic altered from
// the interval flush policy to always (flush.ms=0) has rounds below its
// log end that no sync made durable. Its next round, acknowledged under
// always, must survive a crash: journaled alone, after a gap the crash
// lost, the replay found it past the recovered end and dropped it.
func TestJournalPolicyTurnedAlwaysKeepsAcknowledged(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		mem, clk := journalDataDir(t)
		m := openJournalManager(t, mem, clk)
		rng := rand.New(rand.NewPCG(seed, 11))
		cfg := smallConfig()
		cfg.FlushPolicy, cfg.FlushMs = FlushInterval, time.Hour.Milliseconds()
		tp := TopicPartition{"orders", 0}
		l, err := m.GetOrCreate(tp, cfg)
		noErr(t, err)
		for i := range 4 {
			_, err := l.Append(crashPayload(rng, cfg, clk.Now().UnixMilli(), fmt.Sprint(i)), AppendOptions{LeaderEpoch: -1})
			noErr(t, err)
		}
		cfg.FlushPolicy = FlushAlways
		noErr(t, l.SetConfig(cfg))
		_, err = l.Append(crashPayload(rng, cfg, clk.Now().UnixMilli(), "always"), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
		want := readAll(t, l, 0)
		clone := mem.CrashClone(rng)
		m2 := openJournalManager(t, clone, clk)
		l2, ok := m2.Log(tp)
		require(t, ok, "seed %d: log lost", seed)
		got := readAll(t, l2, 0)
		require(t, bytes.Equal(got, want), "seed %d: %d bytes after the crash, want %d (log end %d, want %d)",
			seed, len(got), len(want), l2.LogEndOffset(), l.LogEndOffset())
		noErr(t, m2.Close())
		noErr(t, m.Close())
	}
}
