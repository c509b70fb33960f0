package log

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
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

// journalScanned is a replayed record, told by its payload's checksum so
// that the replay's allocations can be counted without copying it.
type journalScanned struct {
	name       string
	base       int64
	size       int
	payloadCRC uint32
}

func (jt *journalTest) replayScanned() []journalScanned {
	jt.t.Helper()
	var got []journalScanned
	noErr(jt.t, jt.j.Replay(func(name string, base int64, batches []byte, _ int64) error {
		got = append(got, journalScanned{name: name, base: base, size: len(batches), payloadCRC: crc32.ChecksumIEEE(batches)})
		return nil
	}))
	return got
}

// TestJournalReplayReadsAMultiMiBFileInChunks: a start used to read each
// journal file whole, up to three times (its end, its fences, its
// records), holding a file's size (8 MiB by default, configurable far
// larger) for each. A file of 7 MiB of records of every size, one larger
// than a read chunk, and a length field past the file after them, now
// replays every record while allocating a few chunks; a torn record ends
// the replay there, and the journal reopened on it appends after the last
// whole record.
func TestJournalReplayReadsAMultiMiBFileInChunks(t *testing.T) {
	const fileBytes = DefaultJournalFileBytes
	mem := vfs.NewMem()
	jt := newJournalTest(t, mem, fileBytes)
	noErr(t, jt.j.Reset())
	rng := rand.New(rand.NewPCG(7, 11))
	const large = journalReadChunk + 300<<10
	var want []journalScanned
	var ends []int64 // where each record ends in 0.wal
	for pos := int64(journalHeaderBytes); pos < 7<<20; {
		base := int64(len(want))
		name := fmt.Sprintf("orders-%d", base%3)
		size := 100 + rng.IntN(journalMaxRoundBytes)
		if base == 40 {
			size = large
		}
		payload := journalPayload(name, base, size)
		noErr(t, jt.appendWait(name, base, base+1, payload))
		want = append(want, journalScanned{name: name, base: base, size: size, payloadCRC: crc32.ChecksumIEEE([]byte(payload))})
		pos += int64(journalRecordOverhead + len(name) + size)
		ends = append(ends, pos)
	}
	noErr(t, jt.j.Close())
	f, err := mem.OpenReadWrite(journalTestDir + "/0.wal")
	noErr(t, err)
	_, err = f.WriteAt([]byte{0xff, 0xff, 0xff, 0xf0}, ends[len(ends)-1]) // a length no file holds
	noErr(t, err)

	jt.open(fileBytes)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got := jt.replayScanned()
	runtime.ReadMemStats(&after)
	require(t, slices.Equal(got, want), "replayed %d records, want %d (first difference at %d)", len(got), len(want), firstDifference(got, want))
	// Two passes (fences, then records), each with a chunk and, for the
	// large record, a buffer of its size; whole files took 16 MiB.
	allocated := after.TotalAlloc - before.TotalAlloc
	require(t, allocated < 2*(journalReadChunk+large)+512<<10, "the replay of a %d MiB journal allocated %d bytes", fileBytes>>20, allocated)

	// Tear a record in the middle of the file: the replay ends before it,
	// and the reopened journal appends after the last whole record.
	torn := len(want) / 2
	noErr(t, jt.j.Close())
	_, err = f.WriteAt([]byte{'!'}, ends[torn]-5)
	noErr(t, err)
	noErr(t, f.Close())
	jt.open(fileBytes)
	jt.j.mu.Lock()
	pos := jt.j.pos
	jt.j.mu.Unlock()
	require(t, pos == ends[torn-1], "the reopened journal appends at %d, want %d after the last whole record", pos, ends[torn-1])
	got = jt.replayScanned()
	require(t, slices.Equal(got, want[:torn]), "replayed %d records past a torn one, want the %d before it", len(got), torn)
	noErr(t, jt.appendWait("orders-9", 0, 1, "after"))
	jt.reopen(fileBytes)
	got = jt.replayScanned()
	require(t, len(got) == torn+1 && got[torn].name == "orders-9", "after an append past the torn record, replayed %d records", len(got))
	noErr(t, jt.j.Close())
}

func firstDifference(a, b []journalScanned) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
