package log

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/vfs"
)

// TestManagerJournalCrash: with the journal on, every append a log
// acknowledged survives a crash at any quiet point, while journal
// checkpoints run in the background, truncations drop what they dropped
// (their fences), DeleteRecords keep their log start offsets, and a log
// deleted and created again does not get the old one's rounds back.
func TestManagerJournalCrash(t *testing.T) {
	var replayed int64
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { replayed += runManagerJournalCrash(t, seed) })
	}
	// Else the crashes never lost a segment's tail, and the test showed
	// nothing about the journal.
	require(t, replayed > 0, "no crash needed the journal's replay")
}

// journalDataDir is an empty, durable /data on a MemFS, and the manual
// clock the journal tests' managers run on.
func journalDataDir(t *testing.T) (*vfs.MemFS, *clock.Manual) {
	t.Helper()
	mem := vfs.NewMem()
	noErr(t, mem.MkdirAll("/data", 0o755))
	noErr(t, mem.SyncDir("/"))
	return mem, clock.NewManual(time.UnixMilli(1_700_000_000_000))
}

// ordersLog creates the log of orders-0 on m.
func ordersLog(t *testing.T, m *Manager) (TopicPartition, *Log) {
	t.Helper()
	tp := TopicPartition{"orders", 0}
	l, err := m.GetOrCreate(tp, smallConfig())
	noErr(t, err)
	return tp, l
}

func openJournalManager(t *testing.T, fsys vfs.FS, clk clock.Clock) *Manager {
	t.Helper()
	return openJournalManagerSized(t, fsys, clk, 16<<10)
}

// openJournalManagerSized is openJournalManager with journal files of
// fileBytes each.
func openJournalManagerSized(t *testing.T, fsys vfs.FS, clk clock.Clock, fileBytes int64) *Manager {
	t.Helper()
	m, err := OpenManager(ManagerOptions{FS: fsys, Dir: "/data", Config: smallConfig(), Clock: clk, Logger: quietLogger,
		CheckpointIntervalMs: 50, Journal: true, JournalFileBytes: fileBytes})
	noErr(t, err)
	require(t, m.journal.live != nil, "no journal")
	return m
}

func runManagerJournalCrash(t *testing.T, seed uint64) (replayed int64) {
	rng := rand.New(rand.NewPCG(seed, 17))
	mem, clk := journalDataDir(t)
	m := openJournalManager(t, mem, clk)
	defer m.Close()
	tps := []TopicPartition{{"orders", 0}, {"orders", 1}, {"clicks", 0}}
	for i := range 300 {
		tp := tps[rng.IntN(len(tps))]
		l, err := m.GetOrCreate(tp, smallConfig())
		noErr(t, err)
		switch op := rng.IntN(20); {
		case op == 0:
			clk.Advance(time.Duration(rng.IntN(60)) * time.Millisecond)
			noErr(t, m.Maintain(clk.Now().UnixMilli()))
		case op == 1 && l.LogEndOffset() > l.LogStartOffset():
			noErr(t, m.Truncate(tp, l.LogStartOffset()+rng.Int64N(l.LogEndOffset()-l.LogStartOffset())))
		case op == 2:
			noErr(t, m.Delete(tp))
		case op == 4:
			noErr(t, m.TruncateFullyAndStartAt(tp, l.LogEndOffset()+rng.Int64N(3)-1))
		case op == 3 && l.LogEndOffset() > l.LogStartOffset():
			_, err := m.DeleteRecordsBefore(tp, l.LogStartOffset()+1+rng.Int64N(l.LogEndOffset()-l.LogStartOffset()))
			noErr(t, err)
		default:
			_, err := l.Append(crashPayload(rng, smallConfig(), clk.Now().UnixMilli(), fmt.Sprintf("%s-%d", tp, i)), AppendOptions{LeaderEpoch: -1})
			noErr(t, err)
		}
		if i%15 == 14 {
			replayed += checkJournalCrashClone(t, m, mem, rng, clk, tps)
		}
	}
	return replayed
}

// checkJournalCrashClone crashes a copy of the file system now and checks
// that a manager opened on it holds exactly what m's logs show.
func checkJournalCrashClone(t *testing.T, m *Manager, mem *vfs.MemFS, rng *rand.Rand, clk clock.Clock, tps []TopicPartition) int64 {
	t.Helper()
	want := map[TopicPartition][]byte{}
	wantStart := map[TopicPartition]int64{}
	for _, tp := range tps {
		if l, ok := m.Log(tp); ok {
			want[tp], wantStart[tp] = readAll(t, l, l.LogStartOffset()), l.LogStartOffset()
		}
	}
	clone := mem.CrashClone(rng)
	m2 := openJournalManager(t, clone, clk)
	defer func() { noErr(t, m2.Close()) }()
	for _, tp := range tps {
		l, ok := m2.Log(tp)
		if !ok {
			require(t, len(want[tp]) == 0, "partition %s lost in the crash: %d bytes acknowledged", tp, len(want[tp]))
			continue
		}
		require(t, l.LogStartOffset() == wantStart[tp], "partition %s after the crash: log start %d, want %d", tp, l.LogStartOffset(), wantStart[tp])
		got := readAll(t, l, l.LogStartOffset())
		require(t, bytes.Equal(got, want[tp]), "partition %s after the crash: %d bytes, want %d (log end %d)", tp, len(got), len(want[tp]), l.LogEndOffset())
	}
	return m2.journal.replayedBytes
}

// TestManagerJournalReplayedWhenTurnedOff: rounds acknowledged from the
// journal alone survive a crash followed by a restart with the journal
// turned off, which replays the journal left behind and then removes it.
func TestManagerJournalReplayedWhenTurnedOff(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		mem, clk := journalDataDir(t)
		m := openJournalManager(t, mem, clk)
		rng := rand.New(rand.NewPCG(seed, 3))
		tp, l := ordersLog(t, m)
		for i := range 20 {
			_, err := l.Append(crashPayload(rng, smallConfig(), clk.Now().UnixMilli(), fmt.Sprint(i)), AppendOptions{LeaderEpoch: -1})
			noErr(t, err)
		}
		want := readAll(t, l, 0)
		clone := mem.CrashClone(rng)
		noErr(t, m.Close())
		m2, err := OpenManager(ManagerOptions{FS: clone, Dir: "/data", Config: smallConfig(), Clock: clk, Logger: quietLogger})
		noErr(t, err)
		l2, ok := m2.Log(tp)
		require(t, ok, "seed %d: log lost", seed)
		got := readAll(t, l2, 0)
		require(t, bytes.Equal(got, want), "seed %d: %d bytes after the restart without the journal, want %d", seed, len(got), len(want))
		_, err = clone.Stat("/data/" + journalDirName)
		require(t, err != nil, "seed %d: the journal is still there", seed)
		noErr(t, m2.Close())
	}
}
