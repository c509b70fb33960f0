package log

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// TestFileCacheActiveClosedUnderTraffic races appends, reads, truncations,
// record deletion and rolls on logs whose idle active files the cache
// keeps closing (limit 1): every read returns whole batches with the right
// offsets, and once every log is closed no descriptor is left counted.
func TestFileCacheActiveClosedUnderTraffic(t *testing.T) {
	cfg := smallConfig()
	cfg.FlushPolicy = FlushAlways
	files := NewFileCacheWithActive(2, 1)
	fsys := vfs.NewMem()
	const nLogs = 4
	logs := make([]*Log, nLogs)
	for i := range logs {
		l, err := Open(fsys, fmt.Sprintf("/data/t-%d", i), Options{Config: cfg, Files: files, Logger: quietLogger})
		noErr(t, err)
		logs[i] = l
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i, l := range logs {
		wg.Add(3)
		go func() { // appender
			defer wg.Done()
			for n := range 300 {
				_, err := l.Append(testBatch(t, fmt.Sprintf("%d/%d", i, n), 2, 100, 1), AppendOptions{LeaderEpoch: -1})
				if err != nil && !errors.Is(err, ErrAppendTruncated) {
					errs <- err
					return
				}
			}
		}()
		go func() { // reader
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			for range 600 {
				end := l.LogEndOffset()
				if end == 0 {
					continue
				}
				offset := l.LogStartOffset() + rng.Int64N(max(end-l.LogStartOffset(), 1))
				s, err := l.Read(offset, ReadOptions{MaxBytes: 4096, MaxOffset: NoMaxOffset})
				if err != nil {
					if errors.Is(err, ErrOffsetOutOfRange) {
						continue // truncated or deleted under the reader
					}
					errs <- fmt.Errorf("log %d read %d: %w", i, offset, err)
					return
				}
				buf, err := s.AppendTo(nil)
				s.Release()
				if err != nil {
					continue // truncated under the reader: a short read
				}
				if _, _, h, err := record.NextBatch(buf); err == nil && h.LastOffset() < offset {
					errs <- fmt.Errorf("log %d read %d: first batch ends at %d", i, offset, h.LastOffset())
					return
				}
			}
		}()
		go func() { // truncation and record deletion
			defer wg.Done()
			for n := range 40 {
				end := l.LogEndOffset()
				var err error
				if n%2 == 0 && end > 20 {
					err = l.Truncate(end - 10)
				} else if end > 40 {
					_, err = l.DeleteRecordsBefore(end - 30)
				}
				if err != nil && !errors.Is(err, ErrOffsetOutOfRange) {
					errs <- fmt.Errorf("log %d: %w", i, err)
					return
				}
				if _, err := l.DeleteExpiredSegments(1 << 62); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, l := range logs {
		got := readAll(t, l, l.LogStartOffset())
		next := l.LogStartOffset()
		for rest := got; len(rest) > 0; {
			_, r, h, err := record.NextBatch(rest)
			noErr(t, err)
			require(t, h.LastOffset() >= next, "log %d: batch %d..%d after %d", i, h.BaseOffset, h.LastOffset(), next)
			next = h.NextOffset()
			rest = r
		}
		noErr(t, l.Close())
	}
	require(t, files.OpenFiles() == 0 && files.OpenActiveFiles() == 0,
		"after closing every log: %d sealed and %d active files counted open", files.OpenFiles(), files.OpenActiveFiles())
}
