package log

import (
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// TestJournalReplayedWhereSyncfsIsRefusedNow: a journal left by a crash
// holds rounds acknowledged from it alone. A restart on which syncfs is
// refused (a mount the check no longer trusts, /proc/self/mountinfo
// unreadable, another kernel) used to skip the journal altogether: the
// rounds the segments lost were gone, and the journal stayed behind to be
// replayed over newer rounds by a later start with syncfs. It must be
// replayed, made durable in the segments, and removed.
func TestJournalReplayedWhereSyncfsIsRefusedNow(t *testing.T) {
	lost := 0
	for seed := range uint64(12) {
		mem, clk := journalDataDir(t)
		m := openJournalManager(t, mem, clk)
		tp, l := ordersLog(t, m)
		for i := range 6 {
			_, err := l.Append(testBatch(t, "acked", 1+i, 40, clk.Now().UnixMilli()), AppendOptions{LeaderEpoch: -1})
			noErr(t, err)
		}
		want := readAll(t, l, 0)
		refused := mem.CrashClone(rand.New(rand.NewPCG(seed, 1)))
		trusted := mem.CrashClone(rand.New(rand.NewPCG(seed, 1)))
		noErr(t, m.Close())

		m2 := openJournalManager(t, trusted, clk) // the same crash, to count the seeds that lost segment bytes
		if m2.journal.replayedBytes > 0 {
			lost++
		}
		noErr(t, m2.Close())

		m3, err := OpenManager(ManagerOptions{FS: noSyncfsFS{refused}, Dir: "/data", Config: smallConfig(), Clock: clk,
			Logger: quietLogger, Journal: true, JournalFileBytes: 16 << 10})
		noErr(t, err)
		require(t, m3.journal.live == nil, "seed %d: a journal in use without syncfs", seed)
		// The journal is removed only once the segments hold its rounds
		// durably: a crash right after the open keeps them.
		again := refused.CrashClone(rand.New(rand.NewPCG(seed, 2)))
		requireReopened(t, m3, tp, want, "after a restart without syncfs")
		_, err = refused.Stat("/data/" + journalDirName)
		require(t, err != nil, "seed %d: the journal was left behind", seed)
		m4, err := OpenManager(ManagerOptions{FS: noSyncfsFS{again}, Dir: "/data", Config: smallConfig(), Clock: clk,
			Logger: quietLogger, Journal: true, JournalFileBytes: 16 << 10})
		noErr(t, err)
		requireReopened(t, m4, tp, want, "after a second crash")
	}
	require(t, lost > 0, "no crash lost segment bytes: the test shows nothing")
}

// TestJournalWritebackHintOfADeletedLogIsNotCounted: a hint queued for a
// log deleted before the goroutine reached it hands nothing to the
// kernel (the file is closed); it used to be counted as a hint and its
// bytes as written back early (sluice_log_journal_writeback_bytes_total),
// where Failed says a file closed meanwhile belongs.
func TestJournalWritebackHintOfADeletedLogIsNotCounted(t *testing.T) {
	mem, clk := journalDataDir(t)
	h := &hintFS{FS: mem, hints: make(chan writebackHint)} // the goroutine waits in each hint for nextHint
	m, held := writebackTestLog(t, h, clk)
	deleted, err := m.GetOrCreate(TopicPartition{"orders", 1}, held.Config())
	noErr(t, err)
	appendRounds(t, held, clk, 0, 2)    // its hint holds the goroutine
	appendRounds(t, deleted, clk, 0, 2) // its hint waits behind
	noErr(t, m.Delete(TopicPartition{"orders", 1}))
	appendRounds(t, held, clk, 2, 4) // its hint follows the deleted log's, so that one is done when it comes
	var handed int64
	for range 2 {
		hint := h.nextHint(t)
		require(t, filepath.Base(filepath.Dir(hint.name)) == "orders-0", "hint for %s", hint.name)
		handed += hint.n
	}
	noErr(t, m.Close()) // waits for the goroutine
	stats := m.journal.writeback.Stats()
	require(t, stats.Hints == 2 && stats.Bytes == handed && stats.Failed == 1,
		"stats %+v, want the two hints handed to a file (%d bytes) and one refused", stats, handed)
}
