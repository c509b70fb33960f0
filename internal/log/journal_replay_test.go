package log

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/sluicelog/sluice/internal/record"
)

// syncedBuffer is a log sink that tests read after the writers are done.
type syncedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestJournalReplayPastTheLogEndNamesARefusedRound: a journal record
// past a log's recovered end follows rounds the journal never held. A
// round refused as full leaves that gap when the crash cuts short the
// segment sync that stood in for it, and then no round from it on was
// acknowledged: the replay used to report "the journal lost a round it
// had acknowledged" for it. It must name the refusal, and still stop the
// log's replay with the log as its segments have it.
func TestJournalReplayPastTheLogEndNamesARefusedRound(t *testing.T) {
	mem, clk := journalDataDir(t)
	m := openJournalManager(t, mem, clk)
	tp, l := ordersLog(t, m)
	kept := testBatch(t, "kept", 2, 20, clk.Now().UnixMilli()) // 0..1
	_, err := l.Append(kept, AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	noErr(t, m.Close())

	// Offsets 2..4 were refused; 5..6 were journaled after them.
	syncer, err := mem.OpenFileSystemSyncer("/data")
	noErr(t, err)
	defer syncer.Close()
	j, err := OpenJournal(JournalOptions{FS: mem, Dir: "/data/" + journalDirName, FileBytes: 16 << 10, Syncer: syncer,
		Logger: quietLogger, Checkpointed: func(map[string]int64, uint64) error { return nil }})
	noErr(t, err)
	past := testBatch(t, "past", 2, 20, clk.Now().UnixMilli())
	record.SetBaseOffset(past, 5)
	ticket, ok := j.Append(tp.String(), 5, 7, [][]byte{past})
	require(t, ok, "append refused")
	noErr(t, j.Wait(tp.String(), ticket))
	noErr(t, j.Close())

	var logged syncedBuffer
	m2, err := OpenManager(ManagerOptions{FS: mem, Dir: "/data", Config: smallConfig(), Clock: clk,
		Logger: slog.New(slog.NewTextHandler(&logged, nil)), Journal: true, JournalFileBytes: 16 << 10})
	noErr(t, err)
	requireReopened(t, m2, tp, kept, "after the replay")
	out := logged.String()
	require(t, strings.Contains(out, "journal replay stopped for a log") && strings.Contains(out, "record at 5") && strings.Contains(out, "log end 2"),
		"the replay did not report the record past the end: %s", out)
	require(t, strings.Contains(out, "refused while it was full") && strings.Contains(out, "none of them was acknowledged"),
		"the report does not name a refused round, of which nothing was acknowledged: %s", out)
}
