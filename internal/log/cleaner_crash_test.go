package log

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// TestLogCleanerCrashAtEveryStep crashes the crash-simulating MemFS just
// before each file-system mutation a clean makes (creating and writing the
// .cleaned file, its fsync, the renames, removals and directory fsyncs of
// the swap, the new index files), several times each with different
// choices of which unsynced bytes survive, and reopens the log from what
// is left. Whatever the step, recovery must lose nothing and duplicate
// nothing: every record read is one that was written at that offset,
// offsets increase, the latest value of every key reads as before the
// clean, the log end offset is unchanged, and no .cleaned or .swap file
// is left. A clean after recovery then completes.
func TestLogCleanerCrashAtEveryStep(t *testing.T) {
	crashRun(t, crashSeeds(t, 1, 10), func(t *testing.T, seed uint64) {
		steps := 0
		for k := int64(1); ; k++ {
			crashed := false
			for variant := range uint64(3) {
				if !runCleanerCrashAt(t, seed, k, variant) {
					break
				}
				crashed = true
			}
			if !crashed {
				break
			}
			steps++
		}
		require(t, steps > 10, "a clean made only %d file-system mutations", steps)
	})
}

type cleanerCrashSetup struct {
	mem    *vfs.MemFS
	probe  *crashProbeFS
	clock  *clock.Manual
	cfg    Config
	l      *Log
	writes map[int64]cleanerModelWrite
	latest map[string]int64
}

const cleanerCrashDir = "/data/compacted-0"

// newCleanerCrashSetup writes the same keyed history for a given seed.
func newCleanerCrashSetup(t *testing.T, seed uint64) *cleanerCrashSetup {
	rng := crashRand(seed, 7)
	s := &cleanerCrashSetup{mem: vfs.NewMem(), clock: clock.NewManual(time.UnixMilli(1_700_000_000_000)),
		writes: map[int64]cleanerModelWrite{}, latest: map[string]int64{}}
	s.probe = newCrashProbe(s.mem)
	s.cfg = compactConfig()
	s.cfg.SegmentBytes = 700
	s.cfg.IndexIntervalBytes = 100
	s.l = s.open(t, s.probe)
	for range 60 {
		now := s.clock.Now().UnixMilli()
		key := fmt.Sprintf("key-%d", rng.IntN(8))
		var value []byte
		if rng.IntN(6) > 0 {
			value = bytes.Repeat([]byte{byte('a' + rng.IntN(26))}, 20+rng.IntN(40))
		}
		codec := []record.Codec{record.CodecNone, record.CodecLZ4}[rng.IntN(2)]
		info, err := s.l.Append(keyedBatch(t, codec, now, keyedRecord{key: []byte(key), value: value}), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
		s.writes[info.FirstOffset] = cleanerModelWrite{key: key, value: value, writtenMs: now}
		s.latest[key] = info.FirstOffset
		s.clock.Advance(10 * time.Millisecond)
	}
	return s
}

func (s *cleanerCrashSetup) open(t *testing.T, fsys vfs.FS) *Log {
	t.Helper()
	l, err := Open(fsys, cleanerCrashDir, Options{Config: s.cfg, Clock: s.clock, Logger: quietLogger})
	noErr(t, err)
	l.SetCleanableBound(unbounded)
	return l
}

// runCleanerCrashAt crashes before the k-th mutation of a clean; false when
// the clean finished before that.
func runCleanerCrashAt(t *testing.T, seed uint64, k int64, variant uint64) bool {
	s := newCleanerCrashSetup(t, seed)
	end := s.l.LogEndOffset()
	var after *vfs.MemFS
	crashAtOp(s.probe, k, func() {
		if after == nil {
			after = s.mem.CrashClone(crashRand(seed, 100+uint64(k)*8+variant))
		}
	})
	// Two cleans: the second rewrites cleaned segments (merging groups),
	// a swap of a different shape.
	_, err := s.l.CleanNow(1 << 20)
	noErr(t, err)
	_, err = s.l.CleanNow(1 << 20)
	noErr(t, err)
	s.probe.setHook(nil)
	noErr(t, s.l.Close())
	if after == nil {
		return false
	}
	l := s.open(t, after)
	defer l.Close()
	names, err := after.List(cleanerCrashDir)
	noErr(t, err)
	for _, name := range names {
		require(t, !strings.HasSuffix(name, cleanedSuffix) && !strings.HasSuffix(name, swapSuffix), "crash at step %d: %s left after open", k, name)
	}
	require(t, l.LogEndOffset() == end, "crash at step %d: log end offset %d, was %d", k, l.LogEndOffset(), end)
	s.checkRecovered(t, l, k)
	_, err = l.CleanNow(1 << 20)
	noErr(t, err)
	s.checkRecovered(t, l, k)
	return true
}

func (s *cleanerCrashSetup) checkRecovered(t *testing.T, l *Log, k int64) {
	t.Helper()
	view := map[string]int64{}
	last := int64(-1)
	for _, r := range readRecords(t, l) {
		w, ok := s.writes[r.offset]
		require(t, ok && w.key == r.key && bytes.Equal(w.value, r.value), "crash at step %d: read %q=%q at %d, written %+v", k, r.key, r.value, r.offset, w)
		require(t, r.offset > last, "crash at step %d: offset %d after %d", k, r.offset, last)
		last = r.offset
		view[r.key] = r.offset
	}
	for key, off := range s.latest {
		if s.writes[off].value == nil {
			continue // a tombstone may go once its horizon passed; none has here
		}
		require(t, view[key] == off, "crash at step %d: key %q reads offset %d, latest is %d", k, key, view[key], off)
	}
}

// TestLogCleanerTruncationDuringCleanSwapsNothing: a truncation while a
// clean writes its first cleaned file removes the record that superseded
// an older one in the clean's offset map; the clean must then swap nothing,
// or the older record, now the latest of its key, would be lost.
func TestLogCleanerTruncationDuringCleanSwapsNothing(t *testing.T) {
	mem := vfs.NewMem()
	probe := newCrashProbe(mem)
	clk := clock.NewManual(time.UnixMilli(1_700_000_000_000))
	cfg := compactConfig()
	cfg.SegmentBytes = 400
	l, err := Open(probe, cleanerCrashDir, Options{Config: cfg, Clock: clk, Logger: quietLogger})
	noErr(t, err)
	defer l.Close()
	l.SetCleanableBound(unbounded)
	for i := range 60 {
		key := fmt.Sprintf("filler-%d", i)
		if i == 10 || i == 50 {
			key = "k"
		}
		_, err := l.Append(keyedBatch(t, record.CodecNone, clk.Now().UnixMilli(), keyed(key, fmt.Sprintf("v%d-%040d", i, i))), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	truncated := false
	probe.setHook(func(op vfs.Op, path string) error {
		if op == vfs.OpCreate && strings.HasSuffix(path, cleanedSuffix) && !truncated {
			truncated = true
			return l.Truncate(40) // runs on the cleaner's goroutine, without the log's lock
		}
		return nil
	})
	_, err = l.CleanNow(1 << 20)
	require(t, truncated, "the clean never wrote a cleaned file")
	require(t, errors.Is(err, errCleanAborted), "clean across a truncation: %v", err)
	probe.setHook(nil)
	found := false
	for _, r := range readRecords(t, l) {
		found = found || r.key == "k" && r.offset == 10
	}
	require(t, found, "k@10, the latest of its key after the truncation, was removed")
	_, err = l.CleanNow(1 << 20)
	noErr(t, err)
	found = false
	for _, r := range readRecords(t, l) {
		found = found || r.key == "k" && r.offset == 10
	}
	require(t, found, "k@10 removed by the clean after the truncation")
}
