package log

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// The metamorphic test runs one seeded random sequence of operations against
// several logs that differ only in segment, index and file-cache settings,
// and against a plain in-memory model of what a partition log holds.
//
// Segment layout legitimately changes what retention deletes (it removes
// whole segments) and how far one Read reaches (one segment at most). So
// the comparison is on what must not depend on layout:
//   - the log end offset and the offsets and bytes every append produced;
//   - everything read from each log's own start offset to its end, which
//     must equal the model from that offset, and so every log agrees on what
//     lies above the largest start offset;
//   - each single Read, which must be a correct prefix of the model's bytes
//     from the batch holding the offset, obeying MaxBytes, MaxOffset and
//     MinOneBatch exactly;
//   - lookups by timestamp, answered by the model from each log's start;
//   - retention, checked against its rule on the log's own segments.
//
// A failure names the seed; rerun it alone with
//
//	go test -run TestLogMetamorphic -metamorphic.seed=N ./internal/log/

var (
	metamorphicSeed = flag.Int64("metamorphic.seed", 0, "run TestLogMetamorphic with only this seed")
	metamorphicOps  = flag.Int("metamorphic.ops", 500, "operations per TestLogMetamorphic seed")
)

// metaConfig is one log setting the sequence runs under.
type metaConfig struct {
	name  string
	cfg   Config
	files int // FileCache limit: 1 and 2 force evictions on almost every read
}

// metaMaxBatchBytes keeps every append within the tiniest segment.bytes, so
// no config rejects an append the others accept.
const metaMaxBatchBytes = 200

func metamorphicConfigs() []metaConfig {
	mk := func(name string, segmentBytes, indexInterval, indexBytes, segmentMs int64, policy FlushPolicy, files int) metaConfig {
		cfg := DefaultConfig()
		cfg.SegmentBytes, cfg.IndexIntervalBytes, cfg.SegmentIndexBytes, cfg.SegmentMs = segmentBytes, indexInterval, indexBytes, segmentMs
		cfg.RetentionMs, cfg.RetentionBytes = -1, -1
		cfg.FlushPolicy, cfg.FlushMs = policy, 1000
		return metaConfig{name: name, cfg: cfg, files: files}
	}
	week := (7 * 24 * time.Hour).Milliseconds()
	minIndex := int64(4 * offsetIndexEntrySize * timeIndexEntrySize) // 48 offset / 32 time entries
	return []metaConfig{
		// 64 KiB indexes: MemFS zero-fills preallocated files, and 10 MiB
		// ones made the test slow without testing anything more.
		mk("1MiB", 1<<20, 4096, 64<<10, week, FlushAlways, DefaultOpenSealedSegments),
		mk("tiny", metaMaxBatchBytes, 0, minIndex, week, FlushNever, 1),
		mk("interval1", 1000, 1, minIndex, week, FlushInterval, 2),
		// Every batch but a segment's first is indexed, so the 32-entry time
		// index fills long before 64 KiB: these segments roll on a full index.
		mk("index-full", 1<<16, 0, minIndex, week, FlushAlways, 2),
		mk("segment.ms", 4096, 64, 2*minIndex, 3000, FlushNever, 1),
	}
}

func TestLogMetamorphic(t *testing.T) {
	seeds := []int64{1, 2, 3, 4, 5, 6}
	// One fresh seed per run widens the search over time; its number is in
	// the subtest name, so a failure can be replayed.
	seeds = append(seeds, time.Now().UnixNano()%1_000_000_007)
	if *metamorphicSeed != 0 {
		seeds = []int64{*metamorphicSeed}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			runMetamorphic(t, seed, *metamorphicOps)
		})
	}
}

// metaBatch is one appended batch as the model keeps it.
type metaBatch struct {
	base, last int64
	bytes      []byte
	records    []TimestampOffset // each record's offset and timestamp
}

// metaLog is the log under one config, with what the model expects of it
// that depends on the config: the log start offset.
type metaLog struct {
	mc       metaConfig
	fs       *metaCountingFS
	files    *FileCache
	log      *Log
	logStart int64
	// maxSegments is the most segments the log had, to show the settings
	// did what they are there for.
	maxSegments int
}

// metaHeld is a slice a read kept across the next operation, to check that
// retention or a reopen does not pull the file from under a reader.
type metaHeld struct {
	ml     *metaLog
	slice  Slice
	want   []byte
	verify bool
}

type metaRun struct {
	t       *testing.T
	rng     *rand.Rand
	clock   *clock.Manual
	logs    []*metaLog
	batches []metaBatch // every batch appended and not truncated, in offset order
	logEnd  int64
	held    []metaHeld
	trace   []string
	// aborted is the model of the aborted-transaction index: every entry
	// whose marker was not truncated, by marker offset.
	aborted []AbortedTxn
}

func runMetamorphic(t *testing.T, seed int64, ops int) {
	r := &metaRun{t: t, rng: rand.New(rand.NewSource(seed)), clock: clock.NewManual(time.UnixMilli(1_700_000_000_000))}
	t.Cleanup(func() {
		if t.Failed() {
			start := max(len(r.trace)-30, 0)
			t.Logf("seed %d; replay with -metamorphic.seed=%d -metamorphic.ops=%d; last operations:\n  %s",
				seed, seed, ops, strings.Join(r.trace[start:], "\n  "))
		}
	})
	for _, mc := range metamorphicConfigs() {
		ml := &metaLog{mc: mc, fs: &metaCountingFS{FS: vfs.NewMem()}, files: NewFileCache(mc.files)}
		r.open(ml, Options{})
		r.logs = append(r.logs, ml)
	}
	for i := 0; i < ops; i++ {
		changed := r.step()
		r.releaseHeld(r.trace[len(r.trace)-1])
		r.checkState(changed)
	}
	r.releaseHeld("end")
	r.releaseHeld("end")
	r.reportShape()
	for _, ml := range r.logs {
		noErr(t, ml.log.Close())
		require(t, ml.fs.open.Load() == 0 && ml.files.OpenFiles() == 0, "%s: %d files open after Close (cache: %d)", ml.mc.name, ml.fs.open.Load(), ml.files.OpenFiles())
	}
}

// step runs one random operation on every log and says whether it may
// have changed what the logs hold.
func (r *metaRun) step() bool {
	switch p := r.rng.Intn(100); {
	case p < 42:
		r.append()
	case p < 60:
		r.read()
		return false
	case p < 67:
		r.offsetForTimestamp()
		return false
	case p < 70:
		r.maxTimestamp()
		return false
	case p < 76:
		r.truncate()
	case p < 81:
		r.deleteRecords()
	case p < 85:
		r.retention()
	case p < 95:
		d := time.Duration(r.rng.Intn(4000)) * time.Millisecond
		r.trace = append(r.trace, fmt.Sprintf("advance %v", d))
		r.clock.Advance(d)
		return false
	default:
		r.reopen()
	}
	return true
}

func (r *metaRun) fatalf(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf(format, args...)
}

func (r *metaRun) nowMs() int64 { return r.clock.Now().UnixMilli() }

// maxStart is the largest log start offset of all configs: every log must
// agree on everything from there on.
func (r *metaRun) maxStart() int64 {
	start := int64(0)
	for _, ml := range r.logs {
		start = max(start, ml.logStart)
	}
	return start
}

func (r *metaRun) open(ml *metaLog, opts Options) {
	opts.Config, opts.Clock, opts.Files, opts.Logger = ml.mc.cfg, r.clock, ml.files, quietLogger
	opts.LogStartOffset = ml.logStart
	l, err := Open(ml.fs, "/data/topic-0", opts)
	if err != nil {
		r.fatalf("%s: open: %v", ml.mc.name, err)
	}
	ml.log = l
}

// randomBatch builds one batch of up to metaMaxBatchBytes with random record
// count, sizes, codec and timestamps (not monotonic: producers' clocks are
// not, and the time index must cope).
func (r *metaRun) randomBatch() []byte {
	codecs := []record.Codec{record.CodecNone, record.CodecNone, record.CodecNone, record.CodecGzip, record.CodecSnappy, record.CodecLZ4, record.CodecZstd}
	codec := codecs[r.rng.Intn(len(codecs))]
	firstTs := r.nowMs() - 3000 + int64(r.rng.Intn(3500))
	for n := 1 + r.rng.Intn(4); ; n = 1 {
		recs := make([]record.Record, n)
		for i := range recs {
			value := bytes.Repeat([]byte{byte('a' + r.rng.Intn(26))}, r.rng.Intn(25))
			recs[i] = record.Record{Value: value, TimestampDelta: int64(r.rng.Intn(120) - 20)}
			if r.rng.Intn(4) == 0 {
				recs[i].Key = []byte(fmt.Sprintf("k%d", r.rng.Intn(100)))
			}
		}
		b, err := record.AppendBatch(nil, record.BatchOptions{ProducerID: -1, FirstTimestamp: firstTs, Codec: codec}, recs)
		noErr(r.t, err)
		if len(b) <= metaMaxBatchBytes {
			return b
		}
	}
}

func (r *metaRun) append() {
	input := r.randomBatch()
	for r.rng.Intn(3) == 0 { // several batches in one append
		next := r.randomBatch()
		if len(input)+len(next) > metaMaxBatchBytes {
			break
		}
		input = append(input, next...)
	}
	opts := AppendOptions{LeaderEpoch: -1, LogAppendTime: r.rng.Intn(8) == 0}
	if r.rng.Intn(3) == 0 {
		opts.LeaderEpoch = int32(r.rng.Intn(5))
	}
	r.trace = append(r.trace, fmt.Sprintf("append %d bytes %+v at offset %d", len(input), opts, r.logEnd))
	var stored []byte
	var first AppendInfo
	for i, ml := range r.logs {
		buf := bytes.Clone(input)
		info, err := ml.log.Append(buf, opts)
		if err != nil {
			r.fatalf("%s: append: %v", ml.mc.name, err)
		}
		if info.FirstOffset != r.logEnd || info.LogStartOffset != ml.logStart {
			r.fatalf("%s: append got %+v, want first offset %d, log start %d", ml.mc.name, info, r.logEnd, ml.logStart)
		}
		if i == 0 {
			stored, first = buf, info
			continue
		}
		if info.LastOffset != first.LastOffset || info.LogAppendTimeMs != first.LogAppendTimeMs || !bytes.Equal(buf, stored) {
			r.fatalf("%s: append stored differently from %s: %+v vs %+v", ml.mc.name, r.logs[0].mc.name, info, first)
		}
	}
	r.addToModel(stored)
	if r.logEnd != first.LastOffset+1 {
		r.fatalf("model end %d, append ended at %d", r.logEnd, first.LastOffset)
	}
	if r.rng.Intn(5) == 0 {
		r.abortTxn(first.LastOffset)
	}
}

// abortTxn indexes an aborted transaction whose marker is at marker, as
// the partition layer does after appending an ABORT marker. Transactions
// do not overlap here, so marker+1 is a true last stable offset: the
// partition layer never writes an entry whose last stable offset passes
// the first offset of a transaction still open, and the early stop of
// AbortedTxns relies on it.
func (r *metaRun) abortTxn(marker int64) {
	first := max(marker-int64(r.rng.Intn(40)), r.maxStart())
	if n := len(r.aborted); n > 0 {
		first = max(first, r.aborted[n-1].LastOffset+1)
	}
	txn := AbortedTxn{ProducerID: int64(r.rng.Intn(4)), FirstOffset: first, LastOffset: marker, LastStableOffset: marker + 1}
	r.trace = append(r.trace, fmt.Sprintf("abort %+v", txn))
	for _, ml := range r.logs {
		if err := ml.log.AppendAbortedTxn(txn); err != nil {
			r.fatalf("%s: append aborted txn: %v", ml.mc.name, err)
		}
	}
	r.aborted = append(r.aborted, txn)
}

// modelAborted is what AbortedTxns(from, to) must answer.
func (r *metaRun) modelAborted(from, to int64) []AbortedTxn {
	var out []AbortedTxn
	for _, t := range r.aborted {
		if t.LastOffset >= from && t.FirstOffset < to {
			out = append(out, t)
		}
		if t.LastOffset >= from && t.LastStableOffset >= to {
			break
		}
	}
	return out
}

// addToModel records the batches as stored (offsets assigned, maybe stamped).
func (r *metaRun) addToModel(stored []byte) {
	for rest := stored; len(rest) > 0; {
		batch, next, h, err := record.NextBatch(rest)
		noErr(r.t, err)
		mb := metaBatch{base: h.BaseOffset, last: h.LastOffset(), bytes: batch}
		noErr(r.t, record.Records(batch, 1<<20, func(rec *record.Record) error {
			mb.records = append(mb.records, TimestampOffset{Offset: h.Offset(rec), Timestamp: h.Timestamp(rec)})
			return nil
		}))
		r.batches = append(r.batches, mb)
		r.logEnd = mb.last + 1
		rest = next
	}
}

// modelBytes is what a reader of the whole log from offset gets: every batch
// from the one holding offset, up to (not including) the first batch at or
// past bound.
func (r *metaRun) modelBytes(offset, bound int64) (all []byte, firstSize int) {
	for _, b := range r.batches {
		if b.last < offset {
			continue
		}
		if b.base >= bound {
			break
		}
		if all == nil {
			firstSize = len(b.bytes)
		}
		all = append(all, b.bytes...)
	}
	return all, firstSize
}

// nearOffset picks an offset within spread of around: truncation and
// DeleteRecords mostly move a little, so the logs keep enough data to roll.
func (r *metaRun) nearOffset(around int64, spread int) int64 {
	if r.rng.Intn(8) == 0 {
		return r.randomOffset(r.maxStart())
	}
	return max(around+int64(r.rng.Intn(2*spread+1)-spread), 0)
}

func (r *metaRun) randomOffset(from int64) int64 {
	if r.rng.Intn(4) == 0 && len(r.batches) > 0 { // a batch boundary
		b := r.batches[r.rng.Intn(len(r.batches))]
		return max(b.base, from)
	}
	return max(from+int64(r.rng.Intn(int(r.logEnd-from)+5))-2, 0)
}

func (r *metaRun) read() {
	offset := r.randomOffset(r.maxStart())
	maxBytes := []int{0, 1, 40, 61, 100, 250, 1000, 1 << 20}[r.rng.Intn(8)]
	opts := ReadOptions{MaxBytes: maxBytes, MaxOffset: NoMaxOffset, MinOneBatch: r.rng.Intn(2) == 0, UpperOffset: r.rng.Intn(2) == 0}
	if r.rng.Intn(3) == 0 {
		opts.MaxOffset = r.randomOffset(offset)
	}
	r.trace = append(r.trace, fmt.Sprintf("read %d %+v", offset, opts))
	for _, ml := range r.logs {
		s, err := ml.log.Read(offset, opts)
		if offset < ml.logStart || offset > r.logEnd {
			if !errors.Is(err, ErrOffsetOutOfRange) {
				r.fatalf("%s: read %d outside [%d, %d]: err %v", ml.mc.name, offset, ml.logStart, r.logEnd, err)
			}
			continue
		}
		if err != nil {
			r.fatalf("%s: read %d: %v", ml.mc.name, offset, err)
		}
		got, err := s.AppendTo(nil)
		if err != nil {
			r.fatalf("%s: read %d: %v", ml.mc.name, offset, err)
		}
		r.checkRead(ml, offset, opts, got)
		if opts.UpperOffset && len(got) > 0 {
			r.checkUpperOffset(ml, offset, len(got), s.UpperOffset)
		}
		if r.rng.Intn(4) == 0 {
			r.held = append(r.held, metaHeld{ml: ml, slice: s, want: got})
		} else {
			s.Release()
		}
	}
}

// checkUpperOffset holds a slice's UpperOffset to its promise: above every
// record of every batch the n bytes read from offset touch, whole or cut,
// and never past the log end.
func (r *metaRun) checkUpperOffset(ml *metaLog, offset int64, n int, upper int64) {
	covered := 0
	for _, b := range r.batches {
		if b.last < offset {
			continue
		}
		if b.last >= upper {
			r.fatalf("%s: read %d of %d bytes: upper offset %d, but batch %d-%d is in it", ml.mc.name, offset, n, upper, b.base, b.last)
		}
		if covered += len(b.bytes); covered >= n {
			break
		}
	}
	if upper > r.logEnd {
		r.fatalf("%s: read %d: upper offset %d past the log end %d", ml.mc.name, offset, upper, r.logEnd)
	}
}

// checkRead holds one Read's bytes against the model: a prefix of the
// batches from the one holding offset to the bound, cut exactly where
// MaxBytes and MinOneBatch say; only the end of a segment may stop it
// earlier, and then only after a whole batch.
func (r *metaRun) checkRead(ml *metaLog, offset int64, opts ReadOptions, got []byte) {
	bound := r.logEnd
	if opts.MaxOffset >= 0 {
		bound = min(bound, opts.MaxOffset)
	}
	want, firstSize := r.modelBytes(offset, bound)
	if offset >= bound {
		want = nil
	}
	limit := opts.MaxBytes
	if opts.MinOneBatch {
		limit = max(limit, firstSize)
	}
	limit = min(limit, len(want))
	switch {
	case !bytes.HasPrefix(want, got):
		r.fatalf("%s: read %d %+v: %d bytes are not a prefix of the %d expected", ml.mc.name, offset, opts, len(got), len(want))
	case len(got) > limit:
		r.fatalf("%s: read %d %+v: %d bytes, limit %d", ml.mc.name, offset, opts, len(got), limit)
	case limit < firstSize && len(got) != 0:
		// Part of one batch is never returned (Kafka's rule).
		r.fatalf("%s: read %d %+v: %d bytes, want none: the first batch (%d) does not fit", ml.mc.name, offset, opts, len(got), firstSize)
	case limit >= firstSize && len(got) < firstSize:
		r.fatalf("%s: read %d %+v: %d bytes, want at least the first batch (%d)", ml.mc.name, offset, opts, len(got), firstSize)
	}
}

// releaseHeld checks that slices kept across an operation still read what
// they read, then lets them go; slices taken in this step are kept for the
// next. A truncation may legitimately rewrite the bytes under a reader (as
// in Kafka), so those are not compared.
func (r *metaRun) releaseHeld(last string) {
	kept := r.held[:0]
	for _, h := range r.held {
		if !h.verify {
			h.verify = true
			kept = append(kept, h)
			continue
		}
		if !strings.HasPrefix(last, "truncate") {
			got, err := h.slice.AppendTo(nil)
			if err != nil || !bytes.Equal(got, h.want) {
				r.fatalf("%s: a slice held across %q changed: err %v", h.ml.mc.name, last, err)
			}
		}
		h.slice.Release()
	}
	r.held = kept
}

// modelTimestamp answers a lookup by time from the model: the first record
// at or after start with a timestamp of at least ts.
func (r *metaRun) modelTimestamp(start, ts int64) (TimestampOffset, bool) {
	for _, b := range r.batches {
		for _, rec := range b.records {
			if rec.Offset >= start && rec.Timestamp >= ts {
				return rec, true
			}
		}
	}
	return TimestampOffset{}, false
}

func (r *metaRun) offsetForTimestamp() {
	ts := r.nowMs() - 4000 + int64(r.rng.Intn(5000))
	if r.rng.Intn(2) == 0 && len(r.batches) > 0 { // a timestamp that exists, or next to one
		b := r.batches[r.rng.Intn(len(r.batches))]
		ts = b.records[r.rng.Intn(len(b.records))].Timestamp + int64(r.rng.Intn(3)-1)
	}
	r.trace = append(r.trace, fmt.Sprintf("offset-for-timestamp %d", ts))
	for _, ml := range r.logs {
		got, ok, err := ml.log.OffsetForTimestamp(ts)
		if err != nil {
			r.fatalf("%s: offset for timestamp %d: %v", ml.mc.name, ts, err)
		}
		want, wantOK := r.modelTimestamp(ml.logStart, ts)
		if ok != wantOK || got != want {
			r.fatalf("%s: offset for timestamp %d (log start %d): got %+v ok=%v, want %+v ok=%v", ml.mc.name, ts, ml.logStart, got, ok, want, wantOK)
		}
	}
}

func (r *metaRun) maxTimestamp() {
	r.trace = append(r.trace, "max-timestamp")
	for _, ml := range r.logs {
		got, ok, err := ml.log.MaxTimestamp()
		if err != nil {
			r.fatalf("%s: max timestamp: %v", ml.mc.name, err)
		}
		// The first record holding the largest timestamp at or after the
		// log start.
		var want TimestampOffset
		wantOK := false
		for _, b := range r.batches {
			for _, rec := range b.records {
				if rec.Offset >= ml.logStart && (!wantOK || rec.Timestamp > want.Timestamp) {
					want, wantOK = rec, true
				}
			}
		}
		if ok != wantOK || got != want {
			r.fatalf("%s: max timestamp (log start %d): got %+v ok=%v, want %+v ok=%v", ml.mc.name, ml.logStart, got, ok, want, wantOK)
		}
	}
}

// truncate cuts every log at the same offset, never below a log start
// offset: below it, Kafka too starts the log afresh at the target, which
// depends on where retention left each log.
func (r *metaRun) truncate() {
	offset := max(r.nearOffset(r.logEnd, 15), r.maxStart())
	r.trace = append(r.trace, fmt.Sprintf("truncate %d", offset))
	for _, ml := range r.logs {
		if err := ml.log.Truncate(offset); err != nil {
			r.fatalf("%s: truncate %d: %v", ml.mc.name, offset, err)
		}
	}
	if offset >= r.logEnd {
		return
	}
	keep := 0
	for keep < len(r.batches) && r.batches[keep].last < offset {
		keep++
	}
	// The batch holding offset goes whole.
	r.logEnd = offset
	if keep < len(r.batches) {
		r.logEnd = r.batches[keep].base
	}
	clear(r.batches[keep:])
	r.batches = r.batches[:keep]
	for _, ml := range r.logs {
		ml.logStart = min(ml.logStart, r.logEnd)
	}
	n := 0
	for n < len(r.aborted) && r.aborted[n].LastOffset < r.logEnd {
		n++
	}
	r.aborted = r.aborted[:n]
}

func (r *metaRun) deleteRecords() {
	offset := r.nearOffset(r.maxStart(), 10)
	r.trace = append(r.trace, fmt.Sprintf("delete-records %d", offset))
	for _, ml := range r.logs {
		start, err := ml.log.DeleteRecordsBefore(offset)
		if offset > r.logEnd {
			if !errors.Is(err, ErrOffsetOutOfRange) {
				r.fatalf("%s: delete records before %d past end %d: err %v", ml.mc.name, offset, r.logEnd, err)
			}
			continue
		}
		if err != nil {
			r.fatalf("%s: delete records before %d: %v", ml.mc.name, offset, err)
		}
		oldStart := ml.logStart
		ml.logStart = max(ml.logStart, offset)
		if start != ml.logStart {
			r.fatalf("%s: delete records before %d returned start %d, want %d", ml.mc.name, offset, start, ml.logStart)
		}
		if segs := ml.log.segments; offset > oldStart && len(segs) > 1 && segs[0].nextOffset <= offset {
			r.fatalf("%s: segment %d..%d is wholly below the log start %d but kept", ml.mc.name, segs[0].baseOffset, segs[0].nextOffset, offset)
		}
	}
}

// retention applies retention.ms or retention.bytes and checks each log
// deleted exactly the oldest segments the rule selects, never the active one.
func (r *metaRun) retention() {
	byTime := r.rng.Intn(2) == 0
	retentionMs, retentionBytes := int64(-1), int64(-1)
	if byTime {
		retentionMs = []int64{0, 30000, 120000, 600000}[r.rng.Intn(4)]
	} else {
		retentionBytes = int64(1000 + r.rng.Intn(40000))
	}
	now := r.nowMs()
	r.trace = append(r.trace, fmt.Sprintf("retention ms=%d bytes=%d now=%d", retentionMs, retentionBytes, now))
	for _, ml := range r.logs {
		cfg := ml.log.Config()
		cfg.RetentionMs, cfg.RetentionBytes = retentionMs, retentionBytes
		noErr(r.t, ml.log.SetConfig(cfg))
		oldFirst, oldStart, active := ml.log.segments[0].baseOffset, ml.logStart, ml.log.active()
		belowStart := 0 // deleted whatever the rule says
		for belowStart < len(ml.log.segments)-1 && ml.log.segments[belowStart].nextOffset <= oldStart {
			belowStart++
		}
		n, err := ml.log.DeleteExpiredSegments(now)
		if err != nil {
			r.fatalf("%s: retention: %v", ml.mc.name, err)
		}
		segs := ml.log.segments
		if segs[len(segs)-1] != active {
			r.fatalf("%s: retention deleted the active segment", ml.mc.name)
		}
		first := segs[0].baseOffset
		if n > 0 != (first > oldFirst) {
			r.fatalf("%s: retention reported %d deleted, first segment %d -> %d", ml.mc.name, n, oldFirst, first)
		}
		ml.logStart = max(ml.logStart, first)
		for _, b := range r.batches {
			if b.base >= oldFirst && b.base < first && b.last >= oldStart && byTime && now-batchMaxTimestamp(b) <= retentionMs {
				r.fatalf("%s: retention.ms=%d deleted batch %d..%d with max timestamp %d at now=%d", ml.mc.name, retentionMs, b.base, b.last, batchMaxTimestamp(b), now)
			}
		}
		if len(segs) > 1 { // the first remaining segment must not be due
			size := ml.log.Size()
			if segs[0].nextOffset <= ml.logStart || byTime && now-segs[0].maxTimestamp > retentionMs || !byTime && size-segs[0].size >= retentionBytes {
				r.fatalf("%s: retention kept segment %d that is due (max ts %d, log size %d)", ml.mc.name, first, segs[0].maxTimestamp, size)
			}
		}
		if !byTime && n > belowStart && ml.log.Size() < retentionBytes {
			r.fatalf("%s: retention.bytes=%d left %d bytes", ml.mc.name, retentionBytes, ml.log.Size())
		}
	}
}

func batchMaxTimestamp(b metaBatch) int64 {
	h, _ := record.ParseHeader(b.bytes)
	return h.MaxTimestamp
}

// reopen closes every log and opens it again: after a clean shutdown
// (indexes trusted), with a recovery point somewhere below the end (sealed
// segments below it trusted, the rest validated), or with none (everything
// rescanned, as after a crash).
func (r *metaRun) reopen() {
	kind := []string{"clean", "recovery-point", "full-recovery"}[r.rng.Intn(3)]
	recoveryPoint := r.logEnd
	if kind == "recovery-point" {
		recoveryPoint = r.rng.Int63n(r.logEnd + 1)
	}
	r.trace = append(r.trace, fmt.Sprintf("reopen %s recovery point %d", kind, recoveryPoint))
	// Held slices survive the close: their files close on release.
	for _, ml := range r.logs {
		noErr(r.t, ml.log.Close())
		held := 0
		for _, h := range r.held {
			if h.ml == ml {
				held++
			}
		}
		if n := ml.fs.open.Load(); n > int64(held) {
			r.fatalf("%s: %d files open after Close with %d slices held", ml.mc.name, n, held)
		}
		opts := Options{RecoveryPoint: recoveryPoint, CleanShutdown: kind == "clean"}
		if kind == "full-recovery" {
			opts.RecoveryPoint = 0
		}
		r.open(ml, opts)
	}
}

// checkState compares what every log reports with the model after each
// operation and, if contents (after operations that change the log), what
// the logs read back from their start offsets.
func (r *metaRun) checkState(contents bool) {
	for _, ml := range r.logs {
		l := ml.log
		name := ml.mc.name
		ml.maxSegments = max(ml.maxSegments, l.NumSegments())
		if got := l.LogEndOffset(); got != r.logEnd {
			r.fatalf("%s: log end offset %d, want %d", name, got, r.logEnd)
		}
		if got := l.LogStartOffset(); got != ml.logStart {
			r.fatalf("%s: log start offset %d, want %d", name, got, ml.logStart)
		}
		rp := l.RecoveryPoint()
		if rp > r.logEnd || ml.mc.cfg.FlushPolicy == FlushAlways && rp != r.logEnd {
			r.fatalf("%s: recovery point %d, log end %d (flush %v)", name, rp, r.logEnd, ml.mc.cfg.FlushPolicy)
		}
		var size int64
		for _, b := range r.batches {
			if b.base >= l.segments[0].baseOffset {
				size += int64(len(b.bytes))
			}
		}
		if got := l.Size(); got != size {
			r.fatalf("%s: size %d, model %d", name, got, size)
		}
		if open := ml.files.OpenFiles(); open > ml.mc.files+len(r.held) {
			r.fatalf("%s: %d sealed files open, limit %d", name, open, ml.mc.files)
		}
		// The active .log plus the cache's sealed files; indexes are never
		// held open.
		if open := ml.fs.open.Load(); open > int64(1+ml.mc.files+len(r.held)) {
			r.fatalf("%s: %d files open, want at most %d", name, open, 1+ml.mc.files+len(r.held))
		}
		if !contents {
			continue
		}
		want, _ := r.modelBytes(ml.logStart, r.logEnd)
		if got := readAll(r.t, l, ml.logStart); !bytes.Equal(got, want) {
			r.fatalf("%s: log from its start %d reads %d bytes that differ from the model's %d", name, ml.logStart, len(got), len(want))
		}
	}
	if !contents {
		return
	}
	// The aborted-transaction index from the largest start offset on (a
	// segment below another config's start may be gone): every config
	// answers as the model, over the whole range and a random one.
	start := r.maxStart()
	to := start + r.rng.Int63n(r.logEnd-start+1)
	for _, ml := range r.logs {
		if got, want := ml.log.AbortedTxns(start, r.logEnd), r.modelAborted(start, r.logEnd); !slices.Equal(got, want) {
			r.fatalf("%s: aborted transactions from %d: %+v, want %+v", ml.mc.name, start, got, want)
		}
		if got, want := ml.log.AbortedTxns(start, to), r.modelAborted(start, to); !slices.Equal(got, want) {
			r.fatalf("%s: aborted transactions in [%d, %d): %+v, want %+v", ml.mc.name, start, to, got, want)
		}
	}
	// Implied by the model, but the point of the test, so said outright:
	// from the largest start offset on, every config reads the same bytes.
	ref := readAll(r.t, r.logs[0].log, start)
	for _, ml := range r.logs[1:] {
		if got := readAll(r.t, ml.log, start); !bytes.Equal(got, ref) {
			r.fatalf("%s and %s differ from offset %d", ml.mc.name, r.logs[0].mc.name, start)
		}
	}
}

// reportShape fails if the run never exercised what the configs are for:
// rolls in the tiny config, and rolls on a full index (the "index-full"
// config never fills 64 KiB in a run, so its rolls are index-full rolls).
func (r *metaRun) reportShape() {
	var shape []string
	for _, ml := range r.logs {
		shape = append(shape, fmt.Sprintf("%s=%d", ml.mc.name, ml.maxSegments))
	}
	r.t.Logf("most segments: %s; log %d..%d", strings.Join(shape, " "), r.maxStart(), r.logEnd)
	for _, ml := range r.logs {
		if (ml.mc.name == "tiny" || ml.mc.name == "index-full") && r.logEnd > 200 && ml.maxSegments < 2 {
			r.fatalf("%s never rolled", ml.mc.name)
		}
	}
}

// metaCountingFS counts open file handles, so a leaked descriptor (a file
// the cache forgot, an index left open) fails the test on MemFS, and bytes
// read, so a test can tell a trusted open from a full scan.
type metaCountingFS struct {
	vfs.FS
	open      atomic.Int64
	readBytes atomic.Int64
}

func (c *metaCountingFS) Create(name string) (vfs.File, error) { return c.wrap(c.FS.Create(name)) }
func (c *metaCountingFS) Open(name string) (vfs.File, error)   { return c.wrap(c.FS.Open(name)) }
func (c *metaCountingFS) OpenReadWrite(name string) (vfs.File, error) {
	return c.wrap(c.FS.OpenReadWrite(name))
}

func (c *metaCountingFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	c.open.Add(1)
	return &metaCountedFile{File: f, fs: c}, nil
}

type metaCountedFile struct {
	vfs.File
	fs     *metaCountingFS
	closed atomic.Bool
}

func (f *metaCountedFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	f.fs.readBytes.Add(int64(n))
	return n, err
}

func (f *metaCountedFile) Close() error {
	if !f.closed.Swap(true) {
		f.fs.open.Add(-1)
	}
	return f.File.Close()
}

// The lookups take the log's lock, release it to read a segment and may
// take it again; this runs them against appends, DeleteRecords, retention
// and truncation from other goroutines, for the race detector and for
// answers that stay self-consistent while segments come and go. Retention
// never disturbs a reader (it holds the file); a truncation may cut the
// bytes under one (as in Kafka), so a lookup that overlapped a truncation
// may fail, and only such a one.
func TestLogLookupsDuringRetentionAndTruncation(t *testing.T) {
	cfg := smallConfig()
	cfg.SegmentBytes = 1000
	cfg.FlushPolicy = FlushNever
	tl := openTestLog(t, cfg)
	defer tl.Close()
	var truncations atomic.Int64
	stop := make(chan struct{})
	errs := make(chan error, 16)
	var done sync.WaitGroup
	lookup := func(seed int64) {
		defer done.Done()
		rng := rand.New(rand.NewSource(seed))
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := lookupOnce(tl.Log, rng, &truncations); err != nil {
				errs <- err
				return
			}
		}
	}
	for i := 0; i < 3; i++ {
		done.Add(1)
		go lookup(int64(i))
	}
	rng := rand.New(rand.NewSource(99))
	for i := 0; i < 1500; i++ {
		_, err := tl.Append(testBatch(t, "c", 1+rng.Intn(3), 30, int64(1000+rng.Intn(3000))), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
		switch rng.Intn(20) {
		case 0:
			_, err = tl.DeleteRecordsBefore(min(tl.LogStartOffset()+int64(rng.Intn(8)), tl.LogEndOffset()))
		case 1:
			_, err = tl.DeleteExpiredSegments(int64(1000 + rng.Intn(4000)))
		case 2:
			truncations.Add(1)
			err = tl.Truncate(max(tl.LogEndOffset()-int64(rng.Intn(10)), tl.LogStartOffset()))
			truncations.Add(1)
		}
		noErr(t, err)
		if i%100 == 0 {
			cfg.RetentionMs = int64(rng.Intn(3000))
			noErr(t, tl.SetConfig(cfg))
		}
	}
	close(stop)
	done.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// lookupOnce runs one lookup by time, one by largest timestamp and one
// read, returning what is wrong with them. Offsets out of range are fine:
// the log start moves under the lookup.
func lookupOnce(l *Log, rng *rand.Rand, truncations *atomic.Int64) error {
	before := truncations.Load()
	failed := func(err error) bool {
		return err != nil && !errors.Is(err, ErrOffsetOutOfRange) && (before%2 == 0 && truncations.Load() == before)
	}
	ts := int64(1000 + rng.Intn(3000))
	got, ok, err := l.OffsetForTimestamp(ts)
	if failed(err) || ok && got.Timestamp < ts {
		return fmt.Errorf("offset for timestamp %d: %+v, %w", ts, got, err)
	}
	if _, _, err := l.MaxTimestamp(); failed(err) {
		return fmt.Errorf("max timestamp: %w", err)
	}
	offset := l.LogStartOffset() + int64(rng.Intn(20))
	s, err := l.Read(offset, ReadOptions{MaxBytes: 500, MaxOffset: NoMaxOffset, MinOneBatch: true})
	if err != nil {
		if failed(err) {
			return fmt.Errorf("read %d: %w", offset, err)
		}
		return nil
	}
	b, err := s.AppendTo(nil)
	s.Release()
	if failed(err) {
		return fmt.Errorf("read %d: %w", offset, err)
	}
	if _, _, h, herr := record.NextBatch(b); err == nil && len(b) > 0 && truncations.Load() == before && (herr != nil || h.LastOffset() < offset) {
		return fmt.Errorf("read %d returned a batch not holding it: %v %+v", offset, herr, h)
	}
	return nil
}
