package log

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/vfs"
)

// checkJournalCrashClones crashes copies of mem under several seeds and
// checks that each log of tps holds, after the reopen and the journal's
// replay, exactly what m's logs show now.
func checkJournalCrashClones(t *testing.T, m *Manager, mem *vfs.MemFS, clk clock.Clock, tps []TopicPartition) {
	t.Helper()
	want := map[TopicPartition][]byte{}
	for _, tp := range tps {
		if l, ok := m.Log(tp); ok {
			want[tp] = readAll(t, l, l.LogStartOffset())
		}
	}
	for seed := uint64(1); seed <= 16; seed++ {
		clone := mem.CrashClone(rand.New(rand.NewPCG(seed, 3)))
		m2 := openJournalManager(t, clone, clk)
		for _, tp := range tps {
			var got []byte
			if l, ok := m2.Log(tp); ok {
				got = readAll(t, l, l.LogStartOffset())
			}
			require(t, bytes.Equal(got, want[tp]), "seed %d: partition %s after the crash: %d bytes, want %d", seed, tp, len(got), len(want[tp]))
		}
		noErr(t, m2.Close())
	}
}

// TestJournalTruncateFencesRoundsWrittenMeanwhile: a truncation of a log
// whose queued appends are not yet written must fence the rounds that
// its wait for the log to be idle writes and journals, even though the
// truncation offset was at or past the log end offset when it began.
func TestJournalTruncateFencesRoundsWrittenMeanwhile(t *testing.T) {
	mem, clk := journalDataDir(t)
	m := openJournalManager(t, mem, clk)
	defer m.Close()
	tp, l := ordersLog(t, m)
	now := clk.Now().UnixMilli()
	_, err := l.Append(testBatch(t, "a", 5, 10, now), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	// Offsets 5-9 and 10-14, queued, not written: the log end is 5.
	queued := append(testBatch(t, "b1", 5, 10, now), testBatch(t, "b2", 5, 10, now)...)
	_, err = l.Enqueue(queued, AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	noErr(t, m.Truncate(tp, 10))
	require(t, l.LogEndOffset() == 10, "log end %d after the truncation, want 10", l.LogEndOffset())
	_, err = l.Append(testBatch(t, fmt.Sprintf("c%d", 1), 3, 10, now), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	checkJournalCrashClones(t, m, mem, clk, []TopicPartition{tp})
}

// TestJournalDeleteFencesRoundsWrittenMeanwhile: a log deleted with
// appends queued writes them while it closes, after its deletion's fence
// if the fence comes first; a log created again under its name must not
// get them back, nor lose its own rounds to them, after a crash.
func TestJournalDeleteFencesRoundsWrittenMeanwhile(t *testing.T) {
	checkFencedMeanwhile(t, func(m *Manager, tp TopicPartition, _ *Log) *Log {
		noErr(t, m.Delete(tp))
		l, err := m.GetOrCreate(tp, smallConfig())
		noErr(t, err)
		return l
	})
}

// checkFencedMeanwhile queues a round, drops the log's offsets with drop
// (which returns the log to append to next), appends again and checks
// crash clones: the queued round, written while drop waited for the log
// to be idle, must not come back.
func checkFencedMeanwhile(t *testing.T, drop func(m *Manager, tp TopicPartition, l *Log) *Log) {
	mem, clk := journalDataDir(t)
	m := openJournalManager(t, mem, clk)
	defer m.Close()
	tp, l := ordersLog(t, m)
	now := clk.Now().UnixMilli()
	_, err := l.Enqueue(testBatch(t, "old", 5, 10, now), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	l = drop(m, tp, l)
	_, err = l.Append(testBatch(t, "new", 3, 10, now), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	checkJournalCrashClones(t, m, mem, clk, []TopicPartition{tp})
}

// TestJournalTruncateFullyFencesRoundsWrittenMeanwhile: as
// TestJournalTruncateFencesRoundsWrittenMeanwhile, for a full truncation.
func TestJournalTruncateFullyFencesRoundsWrittenMeanwhile(t *testing.T) {
	checkFencedMeanwhile(t, func(m *Manager, tp TopicPartition, l *Log) *Log {
		noErr(t, m.TruncateFullyAndStartAt(tp, 0))
		return l
	})
}

// TestJournalFullReportedToTheLogsLaterWait: a log's syncer waits only
// for its newest ticket. A round of the log refused as full, then a later
// one written once the spare is ready, must still give that wait
// ErrJournalFull: a nil would acknowledge the refused round, which
// neither the journal nor the segment made durable. And the refusal must
// not stay in the journal's memory once reported.
func TestJournalFullReportedToTheLogsLaterWait(t *testing.T) {
	jt := newJournalTest(t, vfs.NewMem(), 512)
	noErr(t, jt.j.Reset())
	release := make(chan struct{})
	jt.checkpointed = func(map[string]int64) error {
		<-release
		return nil
	}
	var base int64
	for i := 0; ; i++ {
		require(t, i < 40, "the journal never answered ErrJournalFull")
		err := jt.appendWait("log-a", base, base+1, journalPayload("log-a", base, 60))
		base++
		if errors.Is(err, ErrJournalFull) {
			break
		}
		noErr(t, err)
	}
	// The syncer of log-a is busy; its next round is queued, and another
	// log's waiter writes it: refused, as the checkpoint still runs.
	_, ok := jt.j.Append("log-a", base, base+1, [][]byte{[]byte(journalPayload("log-a", base, 60))})
	require(t, ok, "append refused")
	base++
	require(t, errors.Is(jt.appendWait("log-b", 0, 1, journalPayload("log-b", 0, 60)), ErrJournalFull), "log-b's round not refused")
	close(release)
	waitCheckpointIdle(jt.j)
	// log-a's syncer now waits for its newest round, which fits.
	ticket, ok := jt.j.Append("log-a", base, base+1, [][]byte{[]byte(journalPayload("log-a", base, 60))})
	require(t, ok, "append refused")
	require(t, errors.Is(jt.j.Wait("log-a", ticket), ErrJournalFull), "a wait covering a refused round of the log returned nil")
	jt.j.mu.Lock()
	left := len(jt.j.full)
	jt.j.mu.Unlock()
	require(t, left == 0, "%d refusals kept after they were reported", left)
	noErr(t, jt.j.Close())
}

// TestJournalRetriedCheckpointAfterTruncation: a checkpoint whose
// Checkpointed failed is retried later without a new syncfs. Its ends
// are those the logs had before: a log truncated, synced and appended
// to since must not get its recovery point moved over the new rounds,
// which only the journal holds. Else a restart after a kill (page cache
// kept) trusts them, does not sync them, empties the journal, and a
// later crash loses them.
func TestJournalRetriedCheckpointAfterTruncation(t *testing.T) {
	mem, clk := journalDataDir(t)
	efs := vfs.NewErrorFS(mem)
	m := openJournalManager(t, efs, clk)
	tp, l := ordersLog(t, m)
	now := clk.Now().UnixMilli()
	appendTen := func(tag string, n int) {
		for i := range n {
			_, err := l.Append(testBatch(t, fmt.Sprintf("%s%d", tag, i), 10, 10, now), AppendOptions{LeaderEpoch: -1})
			noErr(t, err)
		}
	}
	appendTen("old", 10)
	require(t, l.LogEndOffset() == 100, "log end %d", l.LogEndOffset())
	// The checkpoint's syncfs succeeds, writing out the recovery points
	// does not: the retired file stays unconfirmed.
	efs.Inject(vfs.Rule{Op: vfs.OpAny, PathContains: recoveryPointCheckpointFile, Count: 1})
	m.journal.live.Checkpoint()
	waitCheckpointIdle(m.journal.live)
	noErr(t, m.Truncate(tp, 50))
	appendTen("new", 1)
	noErr(t, l.Flush()) // the segment's own sync, up to 60
	appendTen("newer", 4)
	require(t, l.LogEndOffset() == 100, "log end %d", l.LogEndOffset())
	m.journal.live.Checkpoint() // the retry
	waitCheckpointIdle(m.journal.live)
	checkKillThenCrash(t, mem, clk, tp, readAll(t, l, 0))
}

// checkKillThenCrash restarts on mem as after a kill (the page cache
// stays; the first manager is left as it is), then crashes copies of
// that, and checks that tp holds want in each.
func checkKillThenCrash(t *testing.T, mem *vfs.MemFS, clk clock.Clock, tp TopicPartition, want []byte) {
	t.Helper()
	openJournalManager(t, mem, clk)
	for seed := uint64(1); seed <= 16; seed++ {
		clone := mem.CrashClone(rand.New(rand.NewPCG(seed, 5)))
		m3 := openJournalManager(t, clone, clk)
		l3, ok := m3.Log(tp)
		require(t, ok, "partition lost")
		got := readAll(t, l3, 0)
		require(t, bytes.Equal(got, want), "seed %d: %d bytes after a kill and a crash, want %d (log end %d)", seed, len(got), len(want), l3.LogEndOffset())
		noErr(t, m3.Close())
	}
}

// TestJournalRetriedCheckpointAfterRecreation: as
// TestJournalRetriedCheckpointAfterTruncation, for a log deleted and
// created again under its name: the retried checkpoint's end was the old
// log's.
func TestJournalRetriedCheckpointAfterRecreation(t *testing.T) {
	mem, clk := journalDataDir(t)
	efs := vfs.NewErrorFS(mem)
	m := openJournalManager(t, efs, clk)
	tp := TopicPartition{"orders", 0}
	now := clk.Now().UnixMilli()
	appendTen := func(l *Log, tag string, n int) {
		for i := range n {
			_, err := l.Append(testBatch(t, fmt.Sprintf("%s%d", tag, i), 10, 10, now), AppendOptions{LeaderEpoch: -1})
			noErr(t, err)
		}
	}
	l, err := m.GetOrCreate(tp, smallConfig())
	noErr(t, err)
	appendTen(l, "old", 10)
	efs.Inject(vfs.Rule{Op: vfs.OpAny, PathContains: recoveryPointCheckpointFile, Count: 1})
	m.journal.live.Checkpoint()
	waitCheckpointIdle(m.journal.live)
	noErr(t, m.Delete(tp))
	l, err = m.GetOrCreate(tp, smallConfig())
	noErr(t, err)
	appendTen(l, "new", 10)
	m.journal.live.Checkpoint() // the retry
	waitCheckpointIdle(m.journal.live)
	checkKillThenCrash(t, mem, clk, tp, readAll(t, l, 0))
}
