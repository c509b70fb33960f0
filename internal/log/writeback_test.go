package log

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/vfs"
)

// hintFS is a MemFS whose files take write-back hints: each one is sent
// on hints, and answered with err.
type hintFS struct {
	vfs.FS
	hints chan writebackHint
	err   error
}

type writebackHint struct {
	name   string
	off, n int64
}

type hintFile struct {
	vfs.File
	fs *hintFS
}

func (f hintFile) StartWriteback(off, n int64) error {
	f.fs.hints <- writebackHint{name: f.Name(), off: off, n: n}
	return f.fs.err
}

func (h *hintFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return hintFile{File: f, fs: h}, nil
}

func (h *hintFS) Create(name string) (vfs.File, error)     { return h.wrap(h.FS.Create(name)) }
func (h *hintFS) Open(name string) (vfs.File, error)       { return h.wrap(h.FS.Open(name)) }
func (h *hintFS) OpenReadWrite(n string) (vfs.File, error) { return h.wrap(h.FS.OpenReadWrite(n)) }

// nextHint waits, bounded, for the write-back goroutine's next hint.
func (h *hintFS) nextHint(t *testing.T) writebackHint {
	t.Helper()
	select {
	case hint := <-h.hints:
		return hint
	case <-time.After(10 * time.Second):
		t.Fatal("no write-back hint")
		return writebackHint{}
	}
}

// openWritebackManager opens a journal manager whose files hold every
// round of these tests: none is refused while a checkpoint runs (it would
// sync its segment, and be acknowledged without a hint).
func openWritebackManager(t *testing.T, fsys vfs.FS, clk clock.Clock) *Manager {
	t.Helper()
	return openJournalManagerSized(t, fsys, clk, 1<<20)
}

// writebackTestLog opens a journal manager on h with hints batched by the
// page, and a log whose rounds all stay in one segment.
func writebackTestLog(t *testing.T, h *hintFS, clk clock.Clock) (*Manager, *Log) {
	t.Helper()
	m := openWritebackManager(t, h, clk)
	m.journal.writeback.minBytes = writebackPageBytes
	cfg := smallConfig()
	cfg.SegmentBytes = 1 << 20
	l, err := m.GetOrCreate(TopicPartition{"orders", 0}, cfg)
	noErr(t, err)
	return m, l
}

// TestJournalWritebackHintsJournaledRanges: each acknowledged journaled
// round's segment bytes are handed to the kernel's write-back, whole
// pages, in order, each byte once, and none past what was written.
func TestJournalWritebackHintsJournaledRanges(t *testing.T) {
	mem, clk := journalDataDir(t)
	h := &hintFS{FS: mem, hints: make(chan writebackHint, writebackQueueLimit)}
	m, l := writebackTestLog(t, h, clk)
	defer func() { noErr(t, m.Close()) }()
	var hinted int64
	for i := range 20 {
		appendRounds(t, l, clk, i, i+1)
		size := l.activeSize()
		for hinted < size&^(writebackPageBytes-1) {
			hint := h.nextHint(t)
			require(t, filepath.Base(hint.name) == segmentFileName(0, logSuffix), "hint for %s", hint.name)
			require(t, hint.off == hinted, "hint from %d, want %d", hint.off, hinted)
			require(t, (hint.off+hint.n)%writebackPageBytes == 0 && hint.off+hint.n <= size,
				"hint [%d, %d) past the whole pages of %d written", hint.off, hint.off+hint.n, size)
			hinted += hint.n
		}
	}
	require(t, hinted >= 8*writebackPageBytes, "only %d bytes hinted", hinted)
	stats := m.journal.writeback.Stats()
	require(t, stats.Failed == 0 && stats.Dropped == 0, "stats %+v", stats)
	require(t, m.JournalStats().Full == 0, "rounds refused: %+v", m.JournalStats())
}

// TestJournalWritebackFailureDoesNotFailLog: a refused hint is counted
// and nothing else: appends go on being acknowledged, and what they
// acknowledged survives a crash (the journal, not the hint, made it
// durable).
func TestJournalWritebackFailureDoesNotFailLog(t *testing.T) {
	mem, clk := journalDataDir(t)
	h := &hintFS{FS: mem, hints: make(chan writebackHint, writebackQueueLimit), err: errors.New("injected sync_file_range failure")}
	m, l := writebackTestLog(t, h, clk)
	appendRounds(t, l, clk, 0, 10)
	h.nextHint(t)
	appendRounds(t, l, clk, 10, 20)
	require(t, l.LogEndOffset() == 80, "log end %d after 20 acknowledged appends", l.LogEndOffset())
	want := readAll(t, l, 0)
	for seed := uint64(1); seed <= 4; seed++ {
		clone := mem.CrashClone(rand.New(rand.NewPCG(seed, 5)))
		requireReopened(t, openWritebackManager(t, clone, clk), TopicPartition{"orders", 0}, want, fmt.Sprintf("seed %d", seed))
	}
	noErr(t, m.Close()) // waits for the write-back goroutine, whose count follows the hint's answer
	stats := m.journal.writeback.Stats()
	require(t, stats.Failed > 0 && stats.Hints == 0, "stats %+v", stats)
}

// appendRounds appends rounds from to to, one batch of four records
// each, every one acknowledged before the next.
func appendRounds(t *testing.T, l *Log, clk clock.Clock, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		_, err := l.Append(testBatch(t, fmt.Sprint(i), 4, 600, clk.Now().UnixMilli()), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
}

// activeSize is the active segment's size, read under the log's lock.
func (l *Log) activeSize() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.active().size
}
