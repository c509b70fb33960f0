package log

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// Tiny helpers, no framework (CONTRIBUTING.md).

func require(t testing.TB, cond bool, format string, args ...any) {
	t.Helper()
	if !cond {
		t.Fatalf(format, args...)
	}
}

func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// testBatch builds one uncompressed batch of n records whose values say
// which record they are, so reads can be checked byte for byte.
func testBatch(t testing.TB, tag string, n, valueSize int, timestampMs int64) []byte {
	t.Helper()
	recs := make([]record.Record, n)
	for i := range recs {
		v := bytes.Repeat([]byte{'.'}, valueSize)
		copy(v, fmt.Sprintf("%s/%d", tag, i))
		recs[i] = record.Record{Value: v, TimestampDelta: int64(i)}
	}
	b, err := record.AppendBatch(nil, record.BatchOptions{ProducerID: -1, FirstTimestamp: timestampMs}, recs)
	noErr(t, err)
	return b
}

// testLog opens a log on a fresh MemFS with a manual clock.
type testLog struct {
	*Log
	fs    *vfs.MemFS
	clock *clock.Manual
	cfg   Config
	dir   string
}

func smallConfig() Config {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 4096
	cfg.IndexIntervalBytes = 256
	cfg.SegmentIndexBytes = 4 * offsetIndexEntrySize * timeIndexEntrySize
	return cfg
}

func openTestLog(t testing.TB, cfg Config) *testLog {
	t.Helper()
	tl := &testLog{fs: vfs.NewMem(), clock: clock.NewManual(time.UnixMilli(1_700_000_000_000)), cfg: cfg, dir: "/data/topic-0"}
	tl.reopen(t, Options{})
	return tl
}

func (tl *testLog) reopen(t testing.TB, opts Options) {
	t.Helper()
	opts.Config, opts.Clock, opts.Logger = tl.cfg, tl.clock, quietLogger
	l, err := Open(tl.fs, tl.dir, opts)
	noErr(t, err)
	tl.Log = l
}

// readAll reads every batch from offset to the log end through Read, in
// small steps, returning the concatenated bytes.
func readAll(t testing.TB, l *Log, from int64) []byte {
	t.Helper()
	var out []byte
	offset := from
	for offset < l.LogEndOffset() {
		s, err := l.Read(offset, ReadOptions{MaxBytes: 1 << 20, MaxOffset: NoMaxOffset})
		noErr(t, err)
		require(t, s.Size > 0, "empty read at %d below end %d", offset, l.LogEndOffset())
		buf, err := s.AppendTo(nil)
		s.Release()
		noErr(t, err)
		for rest := buf; len(rest) > 0; {
			batch, next, h, err := record.NextBatch(rest)
			if errors.Is(err, record.ErrTruncated) {
				break
			}
			noErr(t, err)
			if h.LastOffset() >= offset {
				out = append(out, batch...)
				offset = h.NextOffset()
			}
			rest = next
		}
	}
	return out
}
