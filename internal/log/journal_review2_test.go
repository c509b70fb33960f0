package log

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/vfs"
)

// TestJournalDeleteRecordsSurvivesReplay: a DeleteRecords acknowledged
// over rounds acknowledged from the journal alone keeps its log start
// offset after a crash that lost the segment's tail: the replay brings
// the rounds back, and the records below the start must stay deleted.
func TestJournalDeleteRecordsSurvivesReplay(t *testing.T) {
	lost := 0
	for seed := uint64(1); seed <= 8; seed++ {
		mem, clk := journalDataDir(t)
		m := openJournalManager(t, mem, clk)
		rng := rand.New(rand.NewPCG(seed, 5))
		tp, l := ordersLog(t, m)
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

// TestJournalResetCrashKeepsFences: a crash in the middle of the
// journal's Reset after a replay must not leave the older file valid
// without the newer one: the older file's records would be replayed
// again without the newer file's fences, bringing back batches a
// truncation dropped.
func TestJournalResetCrashKeepsFences(t *testing.T) {
	mem, clk := journalDataDir(t)
	m := openJournalManager(t, mem, clk)
	rng := rand.New(rand.NewPCG(3, 3))
	tp, l := ordersLog(t, m)
	appendSmall := func(n int, tag string) {
		for i := range n {
			// One record per round: the new rounds end where an old one did.
			_, err := l.Append(testBatch(t, fmt.Sprint(tag, i), 1, 20, clk.Now().UnixMilli()), AppendOptions{LeaderEpoch: -1})
			noErr(t, err)
		}
	}
	appendSmall(8, "old")
	// Retire the active file: its records stay valid (the spare keeps its
	// header) while the next file gets the truncation's fence.
	m.journal.live.Checkpoint()
	for deadline := time.Now().Add(5 * time.Second); m.JournalStats().Checkpoints < 1; runtime.Gosched() {
		require(t, time.Now().Before(deadline), "the checkpoint never ended")
	}
	oldEnd := l.LogEndOffset()
	noErr(t, m.Truncate(tp, oldEnd/2))
	appendSmall(1, "new")
	require(t, l.LogEndOffset() < oldEnd, "the new rounds reach the old end %d", oldEnd)
	want := readAll(t, l, 0)

	// Reopen on a crashed copy, crashing again inside the replay's Reset:
	// right before its second header write.
	crashed := mem.CrashClone(rng)
	probe := newCrashProbe(crashed)
	var (
		mu     sync.Mutex
		writes int
		second *vfs.MemFS
	)
	probe.setHook(func(op vfs.Op, path string) error {
		mu.Lock()
		defer mu.Unlock()
		if op == vfs.OpWrite && strings.HasSuffix(path, ".wal") {
			if writes++; writes == 2 {
				second = crashed.CrashClone(rng)
			}
		}
		return nil
	})
	m2, err := OpenManager(ManagerOptions{FS: probe, Dir: "/data", Config: smallConfig(), Clock: clk, Logger: quietLogger,
		CheckpointIntervalMs: 50, Journal: true, JournalFileBytes: 16 << 10})
	noErr(t, err)
	noErr(t, m2.Close())
	require(t, second != nil, "no second header write in the reset (%d journal writes)", writes)
	requireReopened(t, openJournalManager(t, second, clk), tp, want, "after a crash in the reset")
	noErr(t, m.Close())
}

// requireReopened requires m, opened on a crashed file system, to hold
// want in tp, and closes it.
func requireReopened(t *testing.T, m *Manager, tp TopicPartition, want []byte, when string) {
	t.Helper()
	defer func() { noErr(t, m.Close()) }()
	l, ok := m.Log(tp)
	require(t, ok, "%s: log lost", when)
	got := readAll(t, l, 0)
	require(t, bytes.Equal(got, want), "%s: %d bytes (log end %d), want %d", when, len(got), l.LogEndOffset(), len(want))
}

// TestJournalRetiredCrashKeepsFences: a journal removed because the
// option was turned off goes file by file on a real file system (unlinks
// in turn, each durable in order); a crash that leaves the older file
// alone must not replay its records without the newer file's fences.
func TestJournalRetiredCrashKeepsFences(t *testing.T) {
	mem, clk := journalDataDir(t)
	m := openJournalManager(t, mem, clk)
	tp, l := ordersLog(t, m)
	appendOne := func(tag string) {
		_, err := l.Append(testBatch(t, tag, 1, 20, clk.Now().UnixMilli()), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	rotate := func(want int64) {
		m.journal.live.Checkpoint()
		for deadline := time.Now().Add(5 * time.Second); m.JournalStats().Checkpoints < want; runtime.Gosched() {
			require(t, time.Now().Before(deadline), "checkpoint %d never ended", want)
		}
	}
	appendOne("first") // 0.wal, generation 1
	rotate(1)
	for i := range 8 { // 1.wal, generation 2
		appendOne(fmt.Sprint("old", i))
	}
	rotate(2)
	oldEnd := l.LogEndOffset()
	noErr(t, m.Truncate(tp, oldEnd/2)) // its fence: 0.wal, generation 3
	appendOne("new")
	want := readAll(t, l, 0)

	crashed := mem.CrashClone(rand.New(rand.NewPCG(1, 1)))
	probe := newCrashProbe(crashed)
	var second *vfs.MemFS
	probe.setHook(func(op vfs.Op, path string) error {
		if op == vfs.OpRemove && strings.HasSuffix(path, "/"+journalDirName) && second == nil {
			// A real RemoveAll unlinks 0.wal first; crash right after.
			noErr(t, crashed.Remove(path+"/0.wal"))
			noErr(t, crashed.SyncDir(path))
			second = crashed.CrashClone(rand.New(rand.NewPCG(2, 2)))
		}
		return nil
	})
	m2, err := OpenManager(ManagerOptions{FS: probe, Dir: "/data", Config: smallConfig(), Clock: clk, Logger: quietLogger})
	noErr(t, err)
	noErr(t, m2.Close())
	require(t, second != nil, "the journal was not removed")
	m3, err := OpenManager(ManagerOptions{FS: second, Dir: "/data", Config: smallConfig(), Clock: clk, Logger: quietLogger})
	noErr(t, err)
	requireReopened(t, m3, tp, want, "after a crash in the removal")
	noErr(t, m.Close())
}

// TestJournalCrashDuringReplay: a crash at any file operation of the
// open that replays the journal (recovery, the replay's appends and
// flushes, the reset) leaves what the next open needs to show every
// log as acknowledged before the first crash.
func TestJournalCrashDuringReplay(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runJournalCrashDuringReplay(t, seed) })
	}
}

func runJournalCrashDuringReplay(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 23))
	mem, clk := journalDataDir(t)
	m := openJournalManager(t, mem, clk)
	defer m.Close()
	tps := []TopicPartition{{"orders", 0}, {"orders", 1}}
	for i := range 120 {
		tp := tps[rng.IntN(len(tps))]
		l, err := m.GetOrCreate(tp, smallConfig())
		noErr(t, err)
		switch op := rng.IntN(16); {
		case op == 0:
			clk.Advance(time.Duration(rng.IntN(60)) * time.Millisecond)
			noErr(t, m.Maintain(clk.Now().UnixMilli()))
		case op == 1 && l.LogEndOffset() > l.LogStartOffset():
			noErr(t, m.Truncate(tp, l.LogStartOffset()+rng.Int64N(l.LogEndOffset()-l.LogStartOffset())))
		case op == 2 && l.LogEndOffset() > l.LogStartOffset():
			_, err := m.DeleteRecordsBefore(tp, l.LogStartOffset()+1+rng.Int64N(l.LogEndOffset()-l.LogStartOffset()))
			noErr(t, err)
		default:
			_, err := l.Append(testBatch(t, fmt.Sprint(tp, i), 1+rng.IntN(3), 20, clk.Now().UnixMilli()), AppendOptions{LeaderEpoch: -1})
			noErr(t, err)
		}
	}
	want := map[TopicPartition][]byte{}
	for _, tp := range tps {
		l, _ := m.Log(tp)
		want[tp] = readAll(t, l, l.LogStartOffset())
	}
	crashSeed := rng.Uint64()
	first := func() *vfs.MemFS { return mem.CrashClone(rand.New(rand.NewPCG(crashSeed, 1))) }
	// Count the open's operations, then crash before each in turn.
	var ops atomic.Int64
	probe := newCrashProbe(first())
	probe.setHook(func(vfs.Op, string) error { ops.Add(1); return nil })
	m2, err := OpenManager(ManagerOptions{FS: probe, Dir: "/data", Config: smallConfig(), Clock: clk, Logger: quietLogger,
		CheckpointIntervalMs: 50, Journal: true, JournalFileBytes: 16 << 10})
	noErr(t, err)
	probe.setHook(nil)
	t.Logf("%d operations, %d bytes replayed", ops.Load(), m2.journal.replayedBytes)
	noErr(t, m2.Close())
	// The logs open in parallel: the count varies a little.
	crashed := 0
	defer func() { require(t, crashed > int(ops.Load())/2, "crashed at %d of %d operations", crashed, ops.Load()) }()
	for k := int64(1); k <= ops.Load()-4; k++ {
		fs1 := first()
		probe := newCrashProbe(fs1)
		var (
			mu     sync.Mutex
			second *vfs.MemFS
			n      int64
		)
		probe.setHook(func(vfs.Op, string) error {
			mu.Lock()
			defer mu.Unlock()
			if n++; n == k {
				second = fs1.CrashClone(rand.New(rand.NewPCG(uint64(k), 2)))
			}
			return nil
		})
		m2, err := OpenManager(ManagerOptions{FS: probe, Dir: "/data", Config: smallConfig(), Clock: clk, Logger: quietLogger,
			CheckpointIntervalMs: 50, Journal: true, JournalFileBytes: 16 << 10})
		noErr(t, err)
		probe.setHook(nil)
		noErr(t, m2.Close())
		if second == nil {
			continue // this open made fewer operations
		}
		crashed++
		m3 := openJournalManager(t, second, clk)
		for _, tp := range tps {
			l, ok := m3.Log(tp)
			require(t, ok || len(want[tp]) == 0, "crash before operation %d of %d: %s lost", k, ops.Load(), tp)
			if !ok {
				continue
			}
			got := readAll(t, l, l.LogStartOffset())
			require(t, bytes.Equal(got, want[tp]), "crash before operation %d of %d: %s has %d bytes from %d to %d, want %d",
				k, ops.Load(), tp, len(got), l.LogStartOffset(), l.LogEndOffset(), len(want[tp]))
		}
		noErr(t, m3.Close())
	}
}
