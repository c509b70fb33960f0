package log

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// keyedRecord is one record of a compaction test: a nil value is a tombstone.
type keyedRecord struct {
	key, value []byte
}

func keyed(key, value string) keyedRecord {
	r := keyedRecord{key: []byte(key)}
	if value != "" {
		r.value = []byte(value)
	}
	return r
}

// keyedBatch builds one batch of keyed records.
func keyedBatch(t testing.TB, codec record.Codec, timestampMs int64, recs ...keyedRecord) []byte {
	t.Helper()
	out := make([]record.Record, len(recs))
	for i, r := range recs {
		out[i] = record.Record{Key: r.key, Value: r.value}
	}
	b, err := record.AppendBatch(nil, record.BatchOptions{ProducerID: -1, Codec: codec, FirstTimestamp: timestampMs}, out)
	noErr(t, err)
	return b
}

// readRecord is a record as a full read returns it.
type readRecord struct {
	offset    int64
	key       string
	value     []byte
	timestamp int64
}

// readRecords reads the whole log from its start and decodes every record.
func readRecords(t testing.TB, l *Log) []readRecord {
	t.Helper()
	var out []readRecord
	for rest := readAll(t, l, l.LogStartOffset()); len(rest) > 0; {
		batch, next, h, err := record.NextBatch(rest)
		noErr(t, err)
		noErr(t, record.Records(batch, maxRecordsBytes, func(r *record.Record) error {
			if off := h.Offset(r); off >= l.LogStartOffset() {
				out = append(out, readRecord{offset: off, key: string(r.Key), value: cloneOrNil(r.Value), timestamp: h.Timestamp(r)})
			}
			return nil
		}))
		rest = next
	}
	return out
}

func cloneOrNil(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func compactConfig() Config {
	cfg := smallConfig()
	cfg.SegmentBytes = 1024
	cfg.Compact = true
	cfg.RetentionMs = -1
	cfg.DeleteRetentionMs = 1000
	return cfg
}

func unbounded() int64 { return math.MaxInt64 }

func TestLogCleanerKeepsLatestPerKey(t *testing.T) {
	tl := openTestLog(t, compactConfig())
	tl.SetCleanableBound(unbounded)
	now := tl.clock.Now().UnixMilli()
	for i := range 60 {
		_, err := tl.Append(keyedBatch(t, record.CodecNone, now, keyed(fmt.Sprintf("k%d", i%5), fmt.Sprintf("v%d-%s", i, string(make([]byte, 40))))), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	before := tl.Size()
	segmentsBefore := tl.NumSegments()
	stats, err := tl.CleanNow(1 << 20)
	noErr(t, err)
	require(t, stats.Segments > 0 && stats.RecordsRemoved > 0, "nothing cleaned: %+v", stats)
	require(t, tl.Size() < before, "size %d not below %d", tl.Size(), before)
	// Groups are formed from the sizes before cleaning (as Kafka's): the
	// next clean merges what the first left small.
	_, err = tl.CleanNow(1 << 20)
	noErr(t, err)
	require(t, tl.NumSegments() < segmentsBefore, "segments %d, were %d: small cleaned segments are not grouped", tl.NumSegments(), segmentsBefore)
	got := readRecords(t, tl.Log)
	latest := map[string]int64{}
	for _, r := range got {
		latest[r.key] = r.offset
	}
	require(t, latest["k0"] == 55 && latest["k4"] == 59, "latest offsets %v", latest)
	// Offsets are kept: a read at a removed offset returns the next batch.
	s, err := tl.Read(1, ReadOptions{MaxBytes: 1 << 20, MaxOffset: NoMaxOffset})
	noErr(t, err)
	buf, err := s.AppendTo(nil)
	s.Release()
	noErr(t, err)
	_, _, h, err := record.NextBatch(buf)
	noErr(t, err)
	require(t, h.LastOffset() >= 1, "read at 1 returned batch %d..%d", h.BaseOffset, h.LastOffset())
	// The result survives a reopen, from disk.
	noErr(t, tl.Close())
	tl.reopen(t, Options{})
	again := readRecords(t, tl.Log)
	require(t, len(again) == len(got), "after reopen %d records, before %d", len(again), len(got))
}

func TestLogCleanerNeedsBound(t *testing.T) {
	tl := openTestLog(t, compactConfig())
	now := tl.clock.Now().UnixMilli()
	for i := range 40 {
		_, err := tl.Append(keyedBatch(t, record.CodecNone, now, keyed("k", fmt.Sprintf("v%d-%s", i, string(make([]byte, 60))))), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	stats, err := tl.CleanNow(1 << 20)
	noErr(t, err)
	require(t, stats.Segments == 0, "cleaned without a bound: %+v", stats)
	hw := int64(20)
	tl.SetCleanableBound(func() int64 { return hw })
	_, err = tl.CleanNow(1 << 20)
	noErr(t, err)
	got := readRecords(t, tl.Log)
	for off := int64(20); off < 40; off++ {
		found := false
		for _, r := range got {
			found = found || r.offset == off
		}
		require(t, found, "offset %d at or above the bound %d was removed", off, hw)
	}
	require(t, got[0].offset > 0, "nothing below the bound was removed")
}

func TestLogCleanerTombstonesStayForDeleteRetention(t *testing.T) {
	tl := openTestLog(t, compactConfig())
	tl.SetCleanableBound(unbounded)
	now := tl.clock.Now().UnixMilli()
	_, err := tl.Append(keyedBatch(t, record.CodecNone, now, keyed("gone", "value"), keyed("kept", "value")), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	_, err = tl.Append(keyedBatch(t, record.CodecZstd, now, keyed("gone", "")), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	for i := range 30 { // fill and roll so the tombstone's segment is sealed
		_, err = tl.Append(keyedBatch(t, record.CodecNone, now, keyed(fmt.Sprintf("f%d", i), string(make([]byte, 60)))), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	hasTombstone := func() bool {
		for _, r := range readRecords(t, tl.Log) {
			if r.key == "gone" {
				require(t, r.value == nil && r.offset == 2, "record of a deleted key: %+v", r)
				return true
			}
		}
		return false
	}
	_, err = tl.CleanNow(1 << 20)
	noErr(t, err)
	require(t, hasTombstone(), "tombstone removed by the first clean")
	tl.clock.Advance(999 * time.Millisecond)
	_, err = tl.CleanNow(1 << 20)
	noErr(t, err)
	require(t, hasTombstone(), "tombstone removed before delete.retention.ms")
	tl.clock.Advance(time.Millisecond)
	_, err = tl.CleanNow(1 << 20)
	noErr(t, err)
	require(t, !hasTombstone(), "tombstone kept past delete.retention.ms")
}

// fillKeyed appends n one-record batches over keys distinct keys.
func fillKeyed(t *testing.T, l *Log, n, keys int, nowMs int64) {
	t.Helper()
	for i := range n {
		_, err := l.Append(keyedBatch(t, record.CodecNone, nowMs, keyed(fmt.Sprintf("k%d", i%keys), fmt.Sprintf("v%d-%060d", i, i))), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
}

func TestLogCleanerManagerPicksTheDirtiestLogAndCheckpoints(t *testing.T) {
	env := newManagerEnv(DefaultConfig())
	env.opts.Cleaner = CleanerConfig{Threads: 1, DedupeBufferBytes: 1 << 20, BackoffMs: 50}
	m := env.open(t)
	now := env.clock.Now().UnixMilli()
	plain, err := m.GetOrCreate(TopicPartition{"plain", 0}, compactConfig())
	noErr(t, err)
	fillKeyed(t, plain, 50, 5, now)
	plainCfg := compactConfig()
	plainCfg.Compact = false
	noErr(t, plain.SetConfig(plainCfg))
	plain.SetCleanableBound(unbounded)
	little, err := m.GetOrCreate(TopicPartition{"little", 0}, compactConfig())
	noErr(t, err)
	fillKeyed(t, little, 30, 30, now) // every key distinct: dirty, but one clean is enough
	little.SetCleanableBound(unbounded)
	dirty, err := m.GetOrCreate(TopicPartition{"dirty", 0}, compactConfig())
	noErr(t, err)
	fillKeyed(t, dirty, 60, 3, now)
	noBound, err := m.GetOrCreate(TopicPartition{"nobound", 0}, compactConfig())
	noErr(t, err)
	fillKeyed(t, noBound, 60, 3, now)

	tp, _, ok := m.CleanOnce(1 << 20)
	require(t, ok && tp.Topic == "little", "first clean: %v %v, want the only log with a bound", tp, ok)
	dirty.SetCleanableBound(unbounded)
	seen := map[string]bool{}
	for {
		tp, stats, ok := m.CleanOnce(1 << 20)
		if !ok {
			break
		}
		require(t, !seen[tp.Topic], "%s cleaned twice with nothing new: %+v", tp, stats)
		seen[tp.Topic] = true
	}
	require(t, seen["dirty"] && !seen["plain"] && !seen["nobound"], "cleaned %v", seen)
	firstDirty := dirty.FirstDirtyOffset()
	require(t, firstDirty > 0, "first dirty offset did not move")
	noErr(t, m.Close())
	m = env.open(t)
	defer m.Close()
	again, ok := m.Log(TopicPartition{"dirty", 0})
	require(t, ok && again.FirstDirtyOffset() == firstDirty, "first dirty offset after reopen %d, want %d", again.FirstDirtyOffset(), firstDirty)
}

func TestLogCleanerThreadsRunUntilStopped(t *testing.T) {
	env := newManagerEnv(DefaultConfig())
	env.opts.Cleaner = CleanerConfig{Threads: 2, DedupeBufferBytes: 1 << 20, BackoffMs: 60_000}
	m := env.open(t)
	defer m.Close()
	l, err := m.GetOrCreate(TopicPartition{"dirty", 0}, compactConfig())
	noErr(t, err)
	fillKeyed(t, l, 60, 3, env.clock.Now().UnixMilli())
	l.SetCleanableBound(unbounded)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.RunCleaner(ctx)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for l.FirstDirtyOffset() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("cleaner threads did not stop")
	}
	require(t, l.FirstDirtyOffset() > 0, "the cleaner threads never cleaned the log")
}

func TestLogCleanerOffsetForTimestampSkipsEmptyBatches(t *testing.T) {
	cfg := compactConfig()
	cfg.SegmentBytes = 200 // one batch a segment: each cleaned segment keeps an empty batch
	tl := openTestLog(t, cfg)
	tl.SetCleanableBound(unbounded)
	base := tl.clock.Now().UnixMilli()
	for i := range 6 {
		_, err := tl.Append(keyedBatch(t, record.CodecNone, base+int64(i)*1000, keyed("k", fmt.Sprintf("v%d-%080d", i, i))), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	stats, err := tl.CleanNow(1 << 20)
	noErr(t, err)
	require(t, stats.RecordsRemoved > 0, "nothing cleaned: %+v", stats)
	got, ok, err := tl.OffsetForTimestamp(base + 1000)
	noErr(t, err)
	latest := readRecords(t, tl.Log)
	require(t, ok && got.Offset == latest[0].offset, "lookup by time found %+v, the first record left is at %d", got, latest[0].offset)
}

func TestLogCleanerDirtyRatioAndMaxCompactionLag(t *testing.T) {
	cfg := compactConfig()
	cfg.MinCleanableDirtyRatio = 0.9
	tl := openTestLog(t, cfg)
	tl.SetCleanableBound(unbounded)
	now := tl.clock.Now().UnixMilli()
	fillKeyed(t, tl.Log, 60, 60, now)
	first, err := tl.CleanNow(1 << 20) // all sealed segments clean now
	noErr(t, err)
	fillKeyed(t, tl.Log, 30, 60, now)
	score := tl.cleanScore(tl.clock.Now().UnixMilli())
	require(t, score == 0, "score %v below min.cleanable.dirty.ratio 0.9", score)
	cfg.MaxCompactionLagMs = 60_000
	noErr(t, tl.SetConfig(cfg))
	require(t, tl.cleanScore(tl.clock.Now().UnixMilli()) == 0, "scored before max.compaction.lag.ms passed")
	tl.clock.Advance(time.Minute)
	require(t, tl.cleanScore(tl.clock.Now().UnixMilli()) >= 2, "not first in line past max.compaction.lag.ms")
	cfg.MinCompactionLagMs = 120_000 // a younger dirty segment is left alone
	noErr(t, tl.SetConfig(cfg))
	stats, err := tl.CleanNow(1 << 20)
	noErr(t, err)
	require(t, stats.EndOffset == first.EndOffset, "cleaned dirty segments younger than min.compaction.lag.ms: %+v", stats)
}

// TestLogCleanerConcurrentWithAppendsReadsAndDeletes runs cleans while
// appenders, readers and DeleteRecords work on the same log (run it with
// -race): readers always see increasing offsets and records that were
// written at those offsets, and every key's latest value survives.
func TestLogCleanerConcurrentWithAppendsReadsAndDeletes(t *testing.T) {
	cfg := compactConfig()
	cfg.SegmentBytes = 2048
	tl := openTestLog(t, cfg)
	defer tl.Close()
	tl.SetCleanableBound(unbounded)
	var mu sync.Mutex
	written := map[int64]string{} // offset -> key/value
	latest := map[string]int64{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	fail := make(chan error, 8)
	wg.Add(3)
	go func() { // appender
		defer wg.Done()
		defer close(done)
		now := tl.clock.Now().UnixMilli()
		for i := range 1500 {
			key, value := fmt.Sprintf("k%d", i%20), fmt.Sprintf("v%d-%030d", i, i)
			info, err := tl.Append(keyedBatch(t, record.CodecNone, now, keyed(key, value)), AppendOptions{LeaderEpoch: -1})
			if err != nil {
				fail <- err
				return
			}
			mu.Lock()
			written[info.FirstOffset], latest[key] = key+"="+value, info.FirstOffset
			mu.Unlock()
			if i == 700 {
				if _, err := tl.DeleteRecordsBefore(10); err != nil {
					fail <- err
					return
				}
			}
		}
	}()
	go func() { // cleaner
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := tl.CleanNow(4 * offsetMapSlotSize); err != nil {
				fail <- err
				return
			}
		}
	}()
	go func() { // reader
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := checkConcurrentRead(tl.Log, &mu, written); err != nil {
				fail <- err
				return
			}
		}
	}()
	wg.Wait()
	close(fail)
	for err := range fail {
		t.Fatal(err)
	}
	_, err := tl.CleanNow(1 << 20)
	noErr(t, err)
	got := map[string]int64{}
	for _, r := range readRecords(t, tl.Log) {
		got[r.key] = r.offset
	}
	for key, off := range latest {
		require(t, got[key] == off, "key %s: latest read at %d, written at %d", key, got[key], off)
	}
}

func checkConcurrentRead(l *Log, mu *sync.Mutex, written map[int64]string) error {
	offset, last := l.LogStartOffset(), int64(-1)
	mu.Lock()
	end := int64(len(written)) // appends are recorded once they return: read only those
	mu.Unlock()
	for offset < end {
		s, err := l.Read(offset, ReadOptions{MaxBytes: 1 << 16, MaxOffset: end})
		if errors.Is(err, ErrOffsetOutOfRange) {
			return nil // DeleteRecords moved the start past the reader
		}
		if err != nil {
			return err
		}
		buf, err := s.AppendTo(nil)
		s.Release()
		if err != nil {
			return err
		}
		if len(buf) == 0 {
			return fmt.Errorf("empty read at %d below %d", offset, end)
		}
		for rest := buf; len(rest) > 0; {
			batch, next, h, err := record.NextBatch(rest)
			if err != nil {
				break
			}
			err = record.Records(batch, maxRecordsBytes, func(r *record.Record) error {
				off := h.Offset(r)
				mu.Lock()
				want := written[off]
				mu.Unlock()
				if off <= last || want != string(r.Key)+"="+string(r.Value) {
					return fmt.Errorf("read %s=%s at %d after %d, written %q", r.Key, r.Value, off, last, want)
				}
				last = off
				return nil
			})
			if err != nil {
				return err
			}
			offset, rest = h.NextOffset(), next
		}
	}
	return nil
}

// TestLogFollowerGapsKeepSegmentsContiguous: a follower copying a compacted
// leader appends batches after gaps; a roll must not leave a segment ending
// before the next begins, or recovery (which takes that for a lost tail)
// would drop the later segments.
func TestLogFollowerGapsKeepSegmentsContiguous(t *testing.T) {
	cfg := smallConfig()
	cfg.SegmentBytes = 300
	tl := openTestLog(t, cfg)
	now := tl.clock.Now().UnixMilli()
	offset := int64(0)
	for i := range 20 {
		b := keyedBatch(t, record.CodecNone, now, keyed(fmt.Sprintf("k%d", i), fmt.Sprintf("%0100d", i)))
		record.SetBaseOffset(b, offset)
		_, err := tl.Append(b, AppendOptions{AsFollower: true})
		noErr(t, err)
		offset += 5 // the leader's compaction removed the four after each
	}
	require(t, tl.NumSegments() > 3, "no rolls: %d segments", tl.NumSegments())
	end := tl.LogEndOffset()
	before := readRecords(t, tl.Log)
	noErr(t, tl.Close())
	tl.reopen(t, Options{RecoveryPoint: 0}) // a crash: every segment is scanned
	require(t, tl.LogEndOffset() == end, "log end %d after recovery, was %d", tl.LogEndOffset(), end)
	require(t, len(readRecords(t, tl.Log)) == len(before), "records lost in recovery")
}

// TestLogCleanerKeepsTheLastBatchOfEachProducer: an idempotent producer's
// batches whose records are all superseded go, except its last one, kept
// empty with its offset range and sequence numbers, so the producer's last
// sequence survives (as Kafka keeps it); a batch that loses only its tail
// keeps its whole offset range.
func TestLogCleanerKeepsTheLastBatchOfEachProducer(t *testing.T) {
	tl := openTestLog(t, compactConfig())
	tl.SetCleanableBound(unbounded)
	now := tl.clock.Now().UnixMilli()
	producerBatch := func(seq int32, recs ...keyedRecord) []byte {
		out := make([]record.Record, len(recs))
		for i, r := range recs {
			out[i] = record.Record{Key: r.key, Value: r.value}
		}
		b, err := record.AppendBatch(nil, record.BatchOptions{ProducerID: 42 + int64(seq/100), ProducerEpoch: 3, BaseSequence: seq % 100, FirstTimestamp: now}, out)
		noErr(t, err)
		return b
	}
	for _, b := range [][]byte{
		producerBatch(0, keyed("a", "1"), keyed("b", "1")),   // offsets 0-1: all superseded
		producerBatch(2, keyed("c", "1"), keyed("a", "2")),   // offsets 2-3: "a" superseded below
		producerBatch(4, keyed("b", "2"), keyed("c", "2")),   // offsets 4-5: the producer's last, superseded
		producerBatch(107, keyed("x", "1"), keyed("y", "1")), // producer 43, offsets 6-7: "y" superseded below
		keyedBatch(t, record.CodecNone, now, keyed("y", "2")),
	} {
		_, err := tl.Append(b, AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	_, err := tl.Append(keyedBatch(t, record.CodecNone, now, keyed("a", "3"), keyed("b", "3"), keyed("c", "3")), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
	for range 20 { // seal it all
		_, err := tl.Append(keyedBatch(t, record.CodecNone, now, keyed("filler", fmt.Sprintf("%0100d", 0))), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	_, err = tl.CleanNow(1 << 20)
	noErr(t, err)
	var producerHeaders []record.Header
	seen43 := false
	for rest := readAll(t, tl.Log, 0); len(rest) > 0; {
		_, next, h, err := record.NextBatch(rest)
		noErr(t, err)
		switch h.ProducerID {
		case 42:
			producerHeaders = append(producerHeaders, h)
		case 43:
			seen43 = true
			require(t, h.BaseOffset == 6 && h.LastOffset() == 7 && h.RecordCount == 1 && h.BaseSequence == 7,
				"producer 43's batch lost its tail as %+v, want offsets 6-7 kept, sequence 7", h)
		}
		rest = next
	}
	require(t, seen43, "producer 43's batch, whose first record is the latest of its key, is gone")
	require(t, len(producerHeaders) == 1, "producer batches left: %+v", producerHeaders)
	h := producerHeaders[0]
	require(t, h.BaseOffset == 4 && h.LastOffset() == 5 && h.RecordCount == 0 && h.BaseSequence == 4 && h.ProducerEpoch == 3,
		"the producer's last batch became %+v, want an empty batch for offsets 4-5, sequence 4", h)
}

// TestLogCleanerThrottleBoundsTheRate: with a 1,000 bytes/s throttle on a
// manual clock, a clean goes on only as the clock moves, and the clock must
// move at least the cleaned bytes over the rate (less the one second of
// burst) before it is done.
func TestLogCleanerThrottleBoundsTheRate(t *testing.T) {
	tl := openTestLog(t, compactConfig())
	tl.SetCleanableBound(unbounded)
	fillKeyed(t, tl.Log, 60, 5, tl.clock.Now().UnixMilli())
	res := newCleanerResources(1<<20, NewThrottler(tl.clock, 1000), nil)
	type result struct {
		stats CleanStats
		err   error
	}
	done := make(chan result, 1)
	go func() {
		stats, err := tl.clean(res, tl.clock.Now().UnixMilli())
		done <- result{stats, err}
	}()
	var advanced time.Duration
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case r := <-done:
			noErr(t, r.err)
			minimum := time.Duration(r.stats.BytesRead-1000) * time.Second / 1000
			require(t, r.stats.BytesRead > 2000 && advanced >= minimum,
				"cleaned %d bytes after the clock moved %v; at 1000 bytes/s it needs %v", r.stats.BytesRead, advanced, minimum)
			return
		default:
		}
		require(t, time.Now().Before(deadline), "the clean did not finish; the clock moved %v", advanced)
		if tl.clock.Waiters() > 0 {
			tl.clock.Advance(100 * time.Millisecond)
			advanced += 100 * time.Millisecond
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// TestLogCleanerMaxCompactionLagRollsTheActiveSegment: the cleaner never
// touches the active segment, so a compacted log rolls it once
// max.compaction.lag.ms has passed, even before segment.ms (as Kafka's
// maxSegmentMs).
func TestLogCleanerMaxCompactionLagRollsTheActiveSegment(t *testing.T) {
	cfg := compactConfig()
	cfg.SegmentBytes = 1 << 20
	cfg.MaxCompactionLagMs = 1000
	tl := openTestLog(t, cfg)
	fillKeyed(t, tl.Log, 3, 3, tl.clock.Now().UnixMilli())
	require(t, tl.NumSegments() == 1, "rolled early: %d segments", tl.NumSegments())
	tl.clock.Advance(time.Second)
	fillKeyed(t, tl.Log, 1, 3, tl.clock.Now().UnixMilli())
	require(t, tl.NumSegments() == 2, "no roll after max.compaction.lag.ms: %d segments", tl.NumSegments())
	cfg.Compact = false // only compacted logs roll early
	noErr(t, tl.SetConfig(cfg))
	tl.clock.Advance(time.Second)
	fillKeyed(t, tl.Log, 1, 3, tl.clock.Now().UnixMilli())
	require(t, tl.NumSegments() == 2, "a log without compaction rolled at max.compaction.lag.ms")
}

// TestLogCleanerFailedLogIsNotRetriedInALoop: a clean that fails (here the
// disk refuses the cleaned file) marks the log uncleanable until a restart,
// as Kafka does, instead of failing again on every pass; the log itself
// stays writable and readable.
func TestLogCleanerFailedLogIsNotRetriedInALoop(t *testing.T) {
	env := newManagerEnv(DefaultConfig())
	efs := vfs.NewErrorFS(env.mem)
	env.opts.FS = efs
	m := env.open(t)
	defer m.Close()
	l, err := m.GetOrCreate(TopicPartition{"dirty", 0}, compactConfig())
	noErr(t, err)
	fillKeyed(t, l, 60, 3, env.clock.Now().UnixMilli())
	l.SetCleanableBound(unbounded)
	efs.Inject(vfs.Rule{Op: vfs.OpCreate, PathContains: cleanedSuffix, Err: vfs.ErrDiskFull})
	_, _, ok := m.CleanOnce(1 << 20)
	require(t, ok && efs.Injected() == 1, "the clean did not run into the full disk")
	_, _, ok = m.CleanOnce(1 << 20)
	require(t, !ok, "a log whose clean failed was picked again")
	_, err = l.Append(keyedBatch(t, record.CodecNone, env.clock.Now().UnixMilli(), keyed("k", "v")), AppendOptions{LeaderEpoch: -1})
	noErr(t, err)
}

// TestLogCleanerKeepsAbortedTxnIndex: a read_committed reader learns which
// records to skip from the aborted-transaction index, so cleaning must
// not lose it: segments with entries are cleaned on their own (never
// merged into another's file) and keep their entries, in memory and on
// disk, while segments without entries still merge.
func TestLogCleanerKeepsAbortedTxnIndex(t *testing.T) {
	tl := openTestLog(t, compactConfig())
	tl.SetCleanableBound(unbounded)
	now := tl.clock.Now().UnixMilli()
	var want []AbortedTxn
	for i := range 90 {
		off, err := tl.Append(keyedBatch(t, record.CodecNone, now, keyed(fmt.Sprintf("k%d", i%5), fmt.Sprintf("v%d-%s", i, string(make([]byte, 40))))), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
		if i%30 == 10 {
			txn := AbortedTxn{ProducerID: int64(i), FirstOffset: off.FirstOffset, LastOffset: off.FirstOffset, LastStableOffset: off.FirstOffset + 1}
			noErr(t, tl.AppendAbortedTxn(txn))
			want = append(want, txn)
		}
	}
	require(t, slices.Equal(tl.AbortedTxns(0, tl.LogEndOffset()), want), "before: %+v", tl.AbortedTxns(0, tl.LogEndOffset()))
	segmentsBefore := tl.NumSegments()
	for range 3 {
		_, err := tl.CleanNow(1 << 20)
		noErr(t, err)
	}
	require(t, tl.NumSegments() < segmentsBefore, "segments %d, were %d: nothing merged", tl.NumSegments(), segmentsBefore)
	require(t, slices.Equal(tl.AbortedTxns(0, tl.LogEndOffset()), want), "after cleaning: %+v", tl.AbortedTxns(0, tl.LogEndOffset()))
	noErr(t, tl.Close())
	tl.reopen(t, Options{})
	require(t, slices.Equal(tl.AbortedTxns(0, tl.LogEndOffset()), want), "after reopen: %+v", tl.AbortedTxns(0, tl.LogEndOffset()))
}

// cleanerHookFS runs onCreate before the first Create of a cleaned
// segment, and onSwap before the rename that starts a swap: each once.
type cleanerHookFS struct {
	vfs.FS
	onCreate, onSwap func()
}

func (h *cleanerHookFS) Create(name string) (vfs.File, error) {
	if f := h.onCreate; f != nil && strings.HasSuffix(name, cleanedSuffix) {
		h.onCreate = nil
		f()
	}
	return h.FS.Create(name)
}

func (h *cleanerHookFS) Rename(from, to string) error {
	if f := h.onSwap; f != nil && strings.HasSuffix(to, swapSuffix) {
		h.onSwap = nil
		f()
	}
	return h.FS.Rename(from, to)
}

// TestLogCleanerKeepsAnAbortIndexedWhileItCleans: the cleaner groups
// segments from a snapshot taken when it starts, and never merges a
// segment with aborted-transaction entries into another. The partition
// indexes an abort just after appending its marker (a follower, after
// appending the fetched batches), so an entry may reach a segment after
// the snapshot, or while the swap's file operations run without the
// log's lock. The merged segment kept only the first segment's entries,
// so that abort was lost, and read_committed readers took its records as
// committed.
func TestLogCleanerKeepsAnAbortIndexedWhileItCleans(t *testing.T) {
	t.Run("before the swap", func(t *testing.T) {
		testCleanerAbortIndexedWhileCleaning(t, func(fs *cleanerHookFS, index func()) { fs.onCreate = index })
	})
	t.Run("during the swap", func(t *testing.T) {
		testCleanerAbortIndexedWhileCleaning(t, func(fs *cleanerHookFS, index func()) {
			fs.onSwap = func() {
				// The swap does not wait for the entry (it may wait
				// for the swap); it has the time to land, though.
				done := make(chan struct{})
				go func() { defer close(done); index() }()
				select {
				case <-done:
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
	})
}

func testCleanerAbortIndexedWhileCleaning(t *testing.T, hook func(fs *cleanerHookFS, index func())) {
	mem := vfs.NewMem()
	fs := &cleanerHookFS{FS: mem}
	clk := clock.NewManual(time.UnixMilli(1_700_000_000_000))
	cfg := compactConfig()
	l, err := Open(fs, "/data/topic-0", Options{Config: cfg, Clock: clk, Logger: quietLogger})
	noErr(t, err)
	l.SetCleanableBound(unbounded)
	now := clk.Now().UnixMilli()
	for i := 0; l.NumSegments() < 4; i++ {
		_, err := l.Append(keyedBatch(t, record.CodecNone, now, keyed(fmt.Sprintf("k%d", i), strings.Repeat("v", 200))), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	// Segments of up to 1 MiB now, so the clean merges the sealed ones.
	cfg.SegmentBytes = 1 << 20
	noErr(t, l.SetConfig(cfg))
	second := l.SegmentEnd(0) // the second segment's base offset
	abort := AbortedTxn{ProducerID: 7, FirstOffset: second, LastOffset: second, LastStableOffset: second + 1}
	indexed := make(chan error, 1)
	hook(fs, func() { indexed <- l.AppendAbortedTxn(abort) })

	for range 2 {
		if _, err := l.CleanNow(1 << 20); err != nil && !errors.Is(err, errCleanAborted) {
			t.Fatal(err)
		}
	}
	noErr(t, <-indexed)
	got := l.AbortedTxns(0, l.LogEndOffset())
	require(t, slices.Equal(got, []AbortedTxn{abort}), "aborted transactions after cleaning: %+v, want %+v", got, abort)
	noErr(t, l.Close())
	l, err = Open(mem, "/data/topic-0", Options{Config: cfg, Clock: clk, Logger: quietLogger})
	noErr(t, err)
	defer func() { _ = l.Close() }()
	got = l.AbortedTxns(0, l.LogEndOffset())
	require(t, slices.Equal(got, []AbortedTxn{abort}), "aborted transactions after reopening: %+v, want %+v", got, abort)
}
