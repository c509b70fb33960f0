package log

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// FuzzLogCleanerSwapRecovery puts arbitrary bytes where a crash can leave a
// committed swap (<base>.log.swap) next to a log's segments, and opens the
// log: open must never panic, and either refuses the directory (a swap that
// does not hold whole valid batches) or gives a log whose reads return
// batches in increasing offset order. Seeds are a real segment (a valid
// swap), a torn one and garbage.
//
//	go test -run '^$' -fuzz FuzzLogCleanerSwapRecovery -fuzztime 30s ./internal/log/
func FuzzLogCleanerSwapRecovery(f *testing.F) {
	base := swapFuzzLog(f)
	first, err := vfs.ReadFile(base, cleanerCrashDir+"/"+segmentFileName(0, logSuffix), 1<<20)
	noErr(f, err)
	f.Add(first)
	f.Add(first[:len(first)/2])
	f.Add([]byte("not a batch at all"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, swap []byte) {
		swap = swap[:min(len(swap), 1<<16)]
		mem := base.CrashClone(crashRand(1, 1)) // everything was synced: an exact copy
		noErr(t, vfs.WriteFileAtomic(mem, cleanerCrashDir+"/"+segmentFileName(0, logSuffix+swapSuffix), swap))
		l, err := Open(mem, cleanerCrashDir, Options{Config: compactConfig(), Clock: clock.NewManual(time.UnixMilli(1_700_000_000_000)), Logger: quietLogger})
		if err != nil {
			return // refused: the swap was not whole batches
		}
		defer l.Close()
		last := int64(-1)
		for offset := l.LogStartOffset(); offset < l.LogEndOffset(); {
			s, err := l.Read(offset, ReadOptions{MaxBytes: 1 << 20, MaxOffset: NoMaxOffset, MinOneBatch: true})
			if err != nil {
				t.Fatalf("read at %d after recovery: %v", offset, err)
			}
			buf, err := s.AppendTo(nil)
			s.Release()
			noErr(t, err)
			if len(buf) == 0 {
				t.Fatalf("empty read at %d below the log end %d", offset, l.LogEndOffset())
			}
			for rest := buf; len(rest) > 0; {
				_, next, h, err := record.NextBatch(rest)
				if errors.Is(err, record.ErrTruncated) {
					break
				}
				noErr(t, err)
				if h.BaseOffset <= last {
					t.Fatalf("batch at %d after offset %d", h.BaseOffset, last)
				}
				last, offset, rest = h.LastOffset(), h.NextOffset(), next
			}
		}
	})
}

// swapFuzzLog is a closed log of a few segments on a MemFS.
func swapFuzzLog(tb testing.TB) *vfs.MemFS {
	mem := vfs.NewMem()
	cfg := compactConfig()
	cfg.SegmentBytes = 400
	clk := clock.NewManual(time.UnixMilli(1_700_000_000_000))
	l, err := Open(mem, cleanerCrashDir, Options{Config: cfg, Clock: clk, Logger: quietLogger})
	noErr(tb, err)
	for i := range 20 {
		_, err := l.Append(keyedBatch(tb, record.CodecNone, clk.Now().UnixMilli(), keyed(fmt.Sprintf("k%d", i%4), fmt.Sprintf("%060d", i))), AppendOptions{LeaderEpoch: -1})
		noErr(tb, err)
	}
	noErr(tb, l.Close())
	return mem
}
