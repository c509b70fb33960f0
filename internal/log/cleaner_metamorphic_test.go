package log

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// The cleaner's metamorphic test: a seeded random sequence of keyed writes,
// tombstones, cleans (with offset maps from tiny to ample), clock moves,
// high-watermark moves and reopens, on a fake clock, checked after every
// step against a model that keeps every write:
//
//   - a full read, replayed into a map (tombstones delete), equals the
//     model's latest value per key: compaction never changes what a
//     consumer reading from offset 0 ends up with;
//   - every record read is one the model wrote at that offset, and offsets
//     strictly increase;
//   - the latest record of each key is always there, except a tombstone,
//     which may go only once delete.retention.ms has passed since it was
//     written;
//   - nothing at or above the cleanable bound, and no record younger than
//     min.compaction.lag.ms, is ever removed;
//   - below the first dirty offset (what cleans covered) every key appears
//     at most once: the cleaner did its job.
//
// Replay a failure with SLUICE_CRASH_SEED=<seed>; SLUICE_LONG_TESTS=1 runs
// more seeds.
func TestLogCleanerMetamorphic(t *testing.T) {
	crashRun(t, crashSeeds(t, 6, 200), func(t *testing.T, seed uint64) {
		runCleanerMetamorphic(t, seed, 400)
	})
}

type cleanerModelWrite struct {
	key       string
	value     []byte // nil: tombstone
	writtenMs int64
}

type cleanerMeta struct {
	t      *testing.T
	rng    *rand.Rand
	fs     *vfs.MemFS
	clock  *clock.Manual
	cfg    Config
	l      *Log
	writes map[int64]cleanerModelWrite // offset -> write
	latest map[string]int64            // key -> offset of its latest write
	bound  int64
}

func runCleanerMetamorphic(t *testing.T, seed uint64, steps int) {
	rng := crashRand(seed, 1)
	cfg := DefaultConfig()
	cfg.SegmentBytes = []int64{400, 1024, 4096}[rng.IntN(3)]
	cfg.IndexIntervalBytes = []int64{0, 128, 4096}[rng.IntN(3)]
	cfg.SegmentIndexBytes = 64 << 10
	cfg.RetentionMs = -1
	cfg.Compact = true
	cfg.DeleteRetentionMs = []int64{0, 500, 5000}[rng.IntN(3)]
	cfg.MinCompactionLagMs = []int64{0, 0, 2000}[rng.IntN(3)]
	m := &cleanerMeta{t: t, rng: rng, fs: vfs.NewMem(), clock: clock.NewManual(time.UnixMilli(1_700_000_000_000)), cfg: cfg,
		writes: map[int64]cleanerModelWrite{}, latest: map[string]int64{}}
	m.open(0)
	defer func() { m.l.Close() }()
	for range steps {
		switch op := rng.IntN(20); {
		case op < 12:
			m.write()
		case op < 15:
			m.clean()
		case op < 17:
			m.clock.Advance(time.Duration(rng.IntN(3000)) * time.Millisecond)
		case op < 19:
			m.bound = m.bound + rng.Int64N(m.l.LogEndOffset()-m.bound+1)
		default:
			firstDirty := m.l.FirstDirtyOffset()
			noErr(t, m.l.Close())
			m.open(firstDirty)
		}
		m.check()
	}
}

func (m *cleanerMeta) open(firstDirty int64) {
	l, err := Open(m.fs, "/data/compacted-0", Options{Config: m.cfg, Clock: m.clock, Logger: quietLogger,
		RecoveryPoint: 0, CleanShutdown: true, FirstDirtyOffset: firstDirty})
	noErr(m.t, err)
	l.SetCleanableBound(func() int64 { return m.bound })
	m.l = l
}

func (m *cleanerMeta) write() {
	now := m.clock.Now().UnixMilli()
	n := 1 + m.rng.IntN(4)
	recs := make([]keyedRecord, n)
	for i := range recs {
		key := fmt.Sprintf("key-%d", m.rng.IntN(12))
		recs[i] = keyedRecord{key: []byte(key)}
		if m.rng.IntN(5) > 0 {
			recs[i].value = bytes.Repeat([]byte{byte('a' + m.rng.IntN(26))}, 1+m.rng.IntN(60))
		}
	}
	codec := []record.Codec{record.CodecNone, record.CodecNone, record.CodecZstd, record.CodecGzip}[m.rng.IntN(4)]
	info, err := m.l.Append(keyedBatch(m.t, codec, now, recs...), AppendOptions{LeaderEpoch: -1})
	noErr(m.t, err)
	for i, r := range recs {
		off := info.FirstOffset + int64(i)
		m.writes[off] = cleanerModelWrite{key: string(r.key), value: r.value, writtenMs: now}
		m.latest[string(r.key)] = off
	}
}

func (m *cleanerMeta) clean() {
	// From a map of two keys (cleans a prefix at a time) to plenty.
	slots := []int64{3, 8, 40, 1000}[m.rng.IntN(4)]
	_, err := m.l.CleanNow(slots * offsetMapSlotSize)
	noErr(m.t, err)
}

// long: one pass over the read checks every invariant in the test's comment
func (m *cleanerMeta) check() {
	t := m.t
	t.Helper()
	now := m.clock.Now().UnixMilli()
	got := readRecords(t, m.l)
	view := map[string][]byte{}
	present := map[int64]bool{}
	firstDirty := m.l.FirstDirtyOffset()
	cleanKeys := map[string]int64{}
	last := int64(-1)
	for _, r := range got {
		w, ok := m.writes[r.offset]
		require(t, ok && w.key == r.key && bytes.Equal(w.value, r.value) && (w.value == nil) == (r.value == nil),
			"read %q=%q at %d, the model wrote %+v there", r.key, r.value, r.offset, w)
		require(t, r.offset > last, "offset %d after %d", r.offset, last)
		last = r.offset
		present[r.offset] = true
		if r.value == nil {
			delete(view, r.key)
		} else {
			view[r.key] = r.value
		}
		if r.offset < firstDirty {
			prev, dup := cleanKeys[r.key]
			require(t, !dup, "key %q at %d and %d, both below the first dirty offset %d", r.key, prev, r.offset, firstDirty)
			cleanKeys[r.key] = r.offset
		}
	}
	for key, off := range m.latest {
		w := m.writes[off]
		if w.value != nil {
			require(t, bytes.Equal(view[key], w.value), "key %q reads %q, latest write %q at %d", key, view[key], w.value, off)
			require(t, present[off], "latest record of %q at %d removed", key, off)
			continue
		}
		_, live := view[key]
		require(t, !live, "deleted key %q reads %q", key, view[key])
		if now < w.writtenMs+m.cfg.DeleteRetentionMs {
			require(t, present[off], "tombstone of %q at %d gone %d ms after its write (delete.retention.ms %d)", key, off, now-w.writtenMs, m.cfg.DeleteRetentionMs)
		}
	}
	for off, w := range m.writes {
		if off >= m.bound || w.writtenMs > now-m.cfg.MinCompactionLagMs {
			require(t, present[off], "record at %d (bound %d, written %d ms ago, min lag %d) removed", off, m.bound, now-w.writtenMs, m.cfg.MinCompactionLagMs)
		}
	}
}
