package log

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/sluicelog/sluice/internal/record"
)

func TestLogAppendAssignsDenseOffsets(t *testing.T) {
	tl := openTestLog(t, smallConfig())
	defer tl.Close()
	next := int64(0)
	for i := 0; i < 50; i++ {
		n := 1 + i%5
		info, err := tl.Append(testBatch(t, "a", n, 100, 1000), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
		require(t, info.FirstOffset == next && info.LastOffset == next+int64(n)-1,
			"append %d: got %d..%d, want %d..%d", i, info.FirstOffset, info.LastOffset, next, next+int64(n)-1)
		next += int64(n)
	}
	require(t, tl.LogEndOffset() == next, "log end offset %d, want %d", tl.LogEndOffset(), next)
	require(t, tl.NumSegments() > 1, "expected rolls with 4 KiB segments, have %d segment", tl.NumSegments())
	require(t, tl.RecoveryPoint() == next, "FlushAlways: recovery point %d, want %d", tl.RecoveryPoint(), next)
}

func TestLogReadReturnsBatchHoldingOffset(t *testing.T) {
	tl := openTestLog(t, smallConfig())
	defer tl.Close()
	var want [][]byte
	for i := 0; i < 40; i++ {
		b := testBatch(t, "r", 3, 150, 1000)
		_, err := tl.Append(b, AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
		want = append(want, b) // offsets assigned in place
	}
	for offset := int64(0); offset < tl.LogEndOffset(); offset++ {
		s, err := tl.Read(offset, ReadOptions{MaxBytes: 1, MinOneBatch: true, MaxOffset: NoMaxOffset})
		noErr(t, err)
		got, err := s.AppendTo(nil)
		s.Release()
		noErr(t, err)
		require(t, bytes.Equal(got, want[offset/3]), "read at %d: wrong batch", offset)
	}
	all := readAll(t, tl.Log, 0)
	require(t, bytes.Equal(all, bytes.Join(want, nil)), "full read differs")
}

func TestLogReadBounds(t *testing.T) {
	tl := openTestLog(t, smallConfig())
	defer tl.Close()
	for i := 0; i < 10; i++ {
		_, err := tl.Append(testBatch(t, "b", 2, 10, 1000), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	_, err := tl.Read(21, ReadOptions{MaxBytes: 100, MaxOffset: NoMaxOffset})
	require(t, errors.Is(err, ErrOffsetOutOfRange), "read past end: %v", err)
	s, err := tl.Read(20, ReadOptions{MaxBytes: 100, MaxOffset: NoMaxOffset})
	noErr(t, err)
	require(t, s.Size == 0, "read at end returned %d bytes", s.Size)
	// A high watermark of 6 stops the read before the batch at 6..7.
	s, err = tl.Read(2, ReadOptions{MaxBytes: 1 << 20, MaxOffset: 6})
	noErr(t, err)
	buf, _ := s.AppendTo(nil)
	s.Release()
	var last int64 = -1
	for rest := buf; len(rest) > 0; {
		_, next, h, err := record.NextBatch(rest)
		noErr(t, err)
		last, rest = h.LastOffset(), next
	}
	require(t, last == 5, "read bounded by 6 ended at offset %d", last)
	s, err = tl.Read(6, ReadOptions{MaxBytes: 1 << 20, MaxOffset: 6})
	noErr(t, err)
	require(t, s.Size == 0, "read at the bound returned %d bytes", s.Size)
}

func TestLogReopenKeepsEverything(t *testing.T) {
	for _, clean := range []bool{true, false} {
		tl := openTestLog(t, smallConfig())
		for i := 0; i < 60; i++ {
			_, err := tl.Append(testBatch(t, "c", 2, 120, int64(1000+i)), AppendOptions{LeaderEpoch: -1})
			noErr(t, err)
		}
		want := readAll(t, tl.Log, 0)
		end := tl.LogEndOffset()
		noErr(t, tl.Close())
		opts := Options{}
		if clean {
			opts = Options{RecoveryPoint: end, CleanShutdown: true}
		}
		tl.reopen(t, opts)
		require(t, tl.LogEndOffset() == end, "clean=%v: end %d after reopen, want %d", clean, tl.LogEndOffset(), end)
		require(t, bytes.Equal(readAll(t, tl.Log, 0), want), "clean=%v: contents differ after reopen", clean)
		info, err := tl.Append(testBatch(t, "d", 1, 10, 5000), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
		require(t, info.FirstOffset == end, "clean=%v: append after reopen got %d, want %d", clean, info.FirstOffset, end)
		noErr(t, tl.Close())
	}
}

func TestLogConcurrentAppendsShareFsyncs(t *testing.T) {
	cfg := smallConfig()
	cfg.SegmentBytes = 1 << 20
	tl := openTestLog(t, cfg)
	defer tl.Close()
	const writers, each = 8, 50
	var wg sync.WaitGroup
	offsets := make(chan int64, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				info, err := tl.Append(testBatch(t, "g", 1, 64, 1000), AppendOptions{LeaderEpoch: -1})
				if err != nil {
					t.Error(err)
					return
				}
				offsets <- info.FirstOffset
			}
		}()
	}
	wg.Wait()
	close(offsets)
	seen := map[int64]bool{}
	for o := range offsets {
		require(t, !seen[o], "offset %d given twice", o)
		seen[o] = true
	}
	require(t, len(seen) == writers*each && tl.LogEndOffset() == writers*each, "got %d offsets, end %d", len(seen), tl.LogEndOffset())
	require(t, len(readAll(t, tl.Log, 0)) > 0, "nothing readable")
}

func TestLogTruncate(t *testing.T) {
	tl := openTestLog(t, smallConfig())
	defer tl.Close()
	var batches [][]byte
	for i := 0; i < 40; i++ {
		b := testBatch(t, "t", 2, 150, int64(1000+i))
		_, err := tl.Append(b, AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
		batches = append(batches, b)
	}
	segments := tl.NumSegments()
	noErr(t, tl.Truncate(31)) // inside the batch 30..31: it goes whole
	require(t, tl.LogEndOffset() == 30, "end after truncate to 31: %d", tl.LogEndOffset())
	require(t, tl.NumSegments() < segments, "truncation removed no segment (%d)", segments)
	require(t, bytes.Equal(readAll(t, tl.Log, 0), bytes.Join(batches[:15], nil)), "contents after truncate")
	info, err := tl.Append(testBatch(t, "u", 1, 10, 9000), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	require(t, info.FirstOffset == 30, "append after truncate got %d", info.FirstOffset)
	noErr(t, tl.Truncate(0))
	require(t, tl.LogEndOffset() == 0 && tl.NumSegments() == 1, "truncate to 0: end %d, %d segments", tl.LogEndOffset(), tl.NumSegments())
}

func TestLogDeleteRecordsAndRetention(t *testing.T) {
	tl := openTestLog(t, smallConfig())
	defer tl.Close()
	for i := 0; i < 40; i++ {
		_, err := tl.Append(testBatch(t, "x", 2, 150, int64(1000+i)), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	start, err := tl.DeleteRecordsBefore(13)
	noErr(t, err)
	require(t, start == 13 && tl.LogStartOffset() == 13, "log start %d", tl.LogStartOffset())
	_, err = tl.Read(12, ReadOptions{MaxBytes: 10, MaxOffset: NoMaxOffset})
	require(t, errors.Is(err, ErrOffsetOutOfRange), "read below log start: %v", err)
	_, err = tl.DeleteRecordsBefore(81)
	require(t, errors.Is(err, ErrOffsetOutOfRange), "delete past end: %v", err)

	cfg := tl.Config()
	// Kafka deletes a segment only if what remains still holds
	// retention.bytes, so at most one segment's worth more remains.
	cfg.RetentionBytes = 4096
	noErr(t, tl.SetConfig(cfg))
	n, err := tl.DeleteExpiredSegments(2000)
	noErr(t, err)
	require(t, n > 0 && tl.Size() >= 4096 && tl.Size() < 2*4096, "retention.bytes: deleted %d, size %d", n, tl.Size())
	cfg.RetentionBytes, cfg.RetentionMs = -1, 100
	noErr(t, tl.SetConfig(cfg))
	_, err = tl.DeleteExpiredSegments(1_000_000)
	noErr(t, err)
	require(t, tl.NumSegments() == 1, "retention.ms keeps only the active segment, have %d", tl.NumSegments())
	require(t, tl.LogStartOffset() == tl.active().baseOffset, "log start %d", tl.LogStartOffset())
}

func TestLogOffsetForTimestamp(t *testing.T) {
	tl := openTestLog(t, smallConfig())
	defer tl.Close()
	for i := 0; i < 30; i++ { // batch i: 3 records at 1000+10i, +1, +2
		_, err := tl.Append(testBatch(t, "ts", 3, 150, int64(1000+10*i)), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	for _, c := range []struct{ ts, offset, found int64 }{
		{0, 0, 1000}, {1000, 0, 1000}, {1001, 1, 1001}, {1003, 3, 1010}, {1152, 47, 1152}, {1292, 89, 1292},
	} {
		got, ok, err := tl.OffsetForTimestamp(c.ts)
		noErr(t, err)
		require(t, ok && got.Offset == c.offset && got.Timestamp == c.found, "ts %d: got %+v ok=%v, want offset %d ts %d", c.ts, got, ok, c.offset, c.found)
	}
	_, ok, err := tl.OffsetForTimestamp(1293)
	noErr(t, err)
	require(t, !ok, "no record is that new")
	m, ok, err := tl.MaxTimestamp()
	noErr(t, err)
	require(t, ok && m.Offset == 89 && m.Timestamp == 1292, "max timestamp %+v", m)
}

// Kafka accepts segment.index.bytes down to 4, too small for one entry: the
// segment then rolls after every append, and nothing is lost.
func TestLogTinyIndexRollsEveryAppend(t *testing.T) {
	cfg := smallConfig()
	cfg.SegmentIndexBytes = minSegmentIndexBytes
	cfg.RetentionBytes = -5 // any negative value means no limit, as in Kafka
	noErr(t, cfg.Validate())
	tl := openTestLog(t, cfg)
	defer tl.Close()
	var want [][]byte
	for i := 0; i < 5; i++ {
		b := testBatch(t, "i", 2, 30, 1000)
		_, err := tl.Append(b, AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
		want = append(want, b)
	}
	require(t, tl.NumSegments() == 5, "segments: %d, want one per append", tl.NumSegments())
	require(t, bytes.Equal(readAll(t, tl.Log, 0), bytes.Join(want, nil)), "contents differ")
	n, err := tl.DeleteExpiredSegments(1000)
	noErr(t, err)
	require(t, n == 0, "negative retention.bytes deleted %d segments", n)
}
