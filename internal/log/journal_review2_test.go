package log

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/vfs"
)

// TestJournalDeleteRecordsSurvivesReplay: a DeleteRecords acknowledged
// over rounds acknowledged from the journal alone keeps its log start
// offset after a crash that lost the segment's tail: the replay brings
// the rounds back, and the records below the start must stay deleted.
func TestJournalDeleteRecordsSurvivesReplay(t *testing.T) {
	lost := 0
	for seed := uint64(1); seed <= 8; seed++ {
		mem := vfs.NewMem()
		noErr(t, mem.MkdirAll("/data", 0o755))
		noErr(t, mem.SyncDir("/"))
		clk := clock.NewManual(time.UnixMilli(1_700_000_000_000))
		m := openJournalManager(t, mem, clk)
		rng := rand.New(rand.NewPCG(seed, 5))
		tp := TopicPartition{"orders", 0}
		l, err := m.GetOrCreate(tp, smallConfig())
		noErr(t, err)
		for i := range 6 {
			_, err := l.Append(crashPayload(rng, smallConfig(), clk.Now().UnixMilli(), fmt.Sprint(i)), AppendOptions{LeaderEpoch: -1})
			noErr(t, err)
		}
		start := l.LogEndOffset() - 1
		got, err := m.DeleteRecordsBefore(tp, start)
		noErr(t, err)
		require(t, got == start, "seed %d: log start %d, want %d", seed, got, start)
		clone := mem.CrashClone(rng)
		m2 := openJournalManager(t, clone, clk)
		l2, ok := m2.Log(tp)
		require(t, ok, "seed %d: log lost", seed)
		if m2.journal.replayedBytes > 0 {
			lost++
		}
		require(t, l2.LogStartOffset() == start, "seed %d: log start %d after the crash, want %d (log end %d, replayed %d bytes)",
			seed, l2.LogStartOffset(), start, l2.LogEndOffset(), m2.journal.replayedBytes)
		noErr(t, m2.Close())
		noErr(t, m.Close())
	}
	require(t, lost > 0, "no crash needed the journal's replay")
}
