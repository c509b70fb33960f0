package log

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

func buildOffsetIndex(entries ...[2]int32) offsetIndex {
	var x offsetIndex
	for _, e := range entries {
		x.append(e[0], e[1])
	}
	return x
}

func buildTimeIndex(t *testing.T, entries ...struct {
	ts  int64
	rel int32
}) timeIndex {
	var x timeIndex
	for _, e := range entries {
		require(t, x.maybeAppend(e.ts, e.rel), "entry (%d, %d) refused", e.ts, e.rel)
	}
	return x
}

type timeEntry = struct {
	ts  int64
	rel int32
}

func TestIndexOffsetFloor(t *testing.T) {
	var empty offsetIndex
	require(t, empty.floor(5) == 0, "empty index: floor %d, want the segment start", empty.floor(5))
	x := buildOffsetIndex([2]int32{3, 100}, [2]int32{7, 300}, [2]int32{12, 600})
	require(t, x.len() == 3 && len(x.buf) == 3*offsetIndexEntrySize, "3 entries take %d bytes", len(x.buf))
	for _, c := range []struct {
		rel  int32
		want int64
	}{
		{-1, 0}, {0, 0}, {2, 0}, // before the first entry: scan from the start
		{3, 100}, {6, 100}, {7, 300}, {11, 300}, {12, 600}, {math.MaxInt32, 600},
	} {
		require(t, x.floor(c.rel) == c.want, "floor(%d) = %d, want %d", c.rel, x.floor(c.rel), c.want)
	}
}

func TestIndexTimeFloor(t *testing.T) {
	var empty timeIndex
	_, ok := empty.floor(1000)
	require(t, !ok, "empty time index found an entry")
	x := buildTimeIndex(t, timeEntry{1000, 2}, timeEntry{1005, 6}, timeEntry{1010, 9})
	for _, c := range []struct {
		ts   int64
		rel  int32
		want bool
	}{
		{math.MinInt64, 0, false}, {999, 0, false},
		{1000, 2, true}, {1004, 2, true}, {1005, 6, true}, {1009, 6, true}, {1010, 9, true}, {math.MaxInt64, 9, true},
	} {
		rel, ok := x.floor(c.ts)
		require(t, rel == c.rel && ok == c.want, "floor(%d) = %d,%v, want %d,%v", c.ts, rel, ok, c.rel, c.want)
	}
	ts, rel, ok := x.last()
	require(t, ok && ts == 1010 && rel == 9, "last = %d,%d,%v", ts, rel, ok)
}

// maybeAppend keeps entries strictly increasing in time and never going
// back in offset, so a floor lookup is a binary search.
func TestIndexTimeMaybeAppendKeepsOrder(t *testing.T) {
	x := buildTimeIndex(t, timeEntry{1000, 5})
	require(t, !x.maybeAppend(1000, 6), "equal timestamp appended")
	require(t, !x.maybeAppend(999, 6), "older timestamp appended")
	require(t, !x.maybeAppend(1001, 4), "earlier offset appended")
	require(t, x.maybeAppend(1001, 5), "newer timestamp at the same offset refused")
	require(t, x.len() == 2, "%d entries", x.len())
}

func TestIndexTruncation(t *testing.T) {
	x := buildOffsetIndex([2]int32{3, 100}, [2]int32{7, 300}, [2]int32{12, 600})
	x.truncateFromPosition(1000)
	require(t, x.len() == 3, "truncating past the end dropped entries: %d left", x.len())
	x.truncateFromPosition(301) // the entry at 300 points before the cut: kept
	require(t, x.len() == 2, "truncate from 301: %d entries, want 2", x.len())
	x.truncateFromPosition(300) // an entry at the cut points at a removed batch
	require(t, x.len() == 1 && x.floor(100) == 100, "truncate from 300: %d entries, want 1", x.len())
	x.truncateFromPosition(0)
	require(t, x.len() == 0 && len(x.buf) == 0, "truncate from 0 left %d entries", x.len())

	tx := buildTimeIndex(t, timeEntry{1000, 2}, timeEntry{1005, 6}, timeEntry{1010, 9})
	tx.truncateFromOffset(10)
	require(t, tx.len() == 3, "truncating past the last offset dropped entries")
	tx.truncateFromOffset(7)
	require(t, tx.len() == 2, "truncate from offset 7: %d entries, want 2", tx.len())
	tx.truncateFromOffset(6)
	require(t, tx.len() == 1, "truncate from offset 6: %d entries, want 1", tx.len())
	tx.truncateFromOffset(0)
	require(t, tx.len() == 0, "truncate from 0 left %d entries", tx.len())
	// Appends after a truncation continue from the kept entries.
	require(t, tx.maybeAppend(900, 1), "append after truncation refused")
}

func TestIndexCheckOffsetIndex(t *testing.T) {
	valid := buildOffsetIndex([2]int32{3, 100}, [2]int32{7, 300}, [2]int32{12, 600}).buf
	noErr(t, checkOffsetIndex(valid, 601))
	noErr(t, checkOffsetIndex(nil, 0))
	for _, c := range []struct {
		name string
		buf  []byte
		size int64
	}{
		{"offsets not increasing", buildOffsetIndex([2]int32{7, 100}, [2]int32{3, 300}).buf, 1000},
		{"repeated offset", buildOffsetIndex([2]int32{7, 100}, [2]int32{7, 300}).buf, 1000},
		{"positions not increasing", buildOffsetIndex([2]int32{3, 300}, [2]int32{7, 100}).buf, 1000},
		{"negative offset", buildOffsetIndex([2]int32{-2, 100}).buf, 1000},
		{"position past the segment", valid, 600},
		// No real entry has position 0: a segment's first batch is never
		// indexed. So a preallocated file never trimmed is caught, whole or
		// as a tail after real entries.
		{"all zero (preallocated)", make([]byte, 48*offsetIndexEntrySize), 1000},
		{"zero-filled tail", append(bytes.Clone(valid), make([]byte, 5*offsetIndexEntrySize)...), 1000},
		{"size not a multiple of 8", valid[:len(valid)-1], 1000},
		{"half an entry", valid[:4], 1000},
	} {
		err := checkOffsetIndex(c.buf, c.size)
		require(t, errors.Is(err, errIndexCorrupt), "%s: accepted (err %v)", c.name, err)
	}
}

func TestIndexCheckTimeIndex(t *testing.T) {
	valid := buildTimeIndex(t, timeEntry{1000, 2}, timeEntry{1005, 6}, timeEntry{1010, 9}).buf
	noErr(t, checkTimeIndex(valid, 9))
	noErr(t, checkTimeIndex(nil, 0))
	appendEntry := func(buf []byte, ts int64, rel int32) []byte {
		x := timeIndex{buf: bytes.Clone(buf)}
		x.buf = append(x.buf, make([]byte, timeIndexEntrySize)...)
		e := x.buf[len(x.buf)-timeIndexEntrySize:]
		for i := 0; i < 8; i++ {
			e[i] = byte(uint64(ts) >> (56 - 8*i))
		}
		for i := 0; i < 4; i++ {
			e[8+i] = byte(uint32(rel) >> (24 - 8*i))
		}
		return x.buf
	}
	for _, c := range []struct {
		name   string
		buf    []byte
		maxRel int32
	}{
		{"timestamps not increasing", appendEntry(valid, 1010, 10), 20},
		{"timestamps going back", appendEntry(valid, 999, 10), 20},
		{"offsets going back", appendEntry(valid, 2000, 8), 20},
		{"offset past the segment", valid, 8},
		{"negative offset", appendEntry(nil, 1000, -1), 20},
		{"zero-filled tail", append(bytes.Clone(valid), make([]byte, 3*timeIndexEntrySize)...), 20},
		{"all zero (preallocated)", make([]byte, 32*timeIndexEntrySize), 20},
		{"size not a multiple of 12", valid[:len(valid)-5], 20},
		{"one stray byte", []byte{0}, 20},
	} {
		err := checkTimeIndex(c.buf, c.maxRel)
		require(t, errors.Is(err, errIndexCorrupt), "%s: accepted (err %v)", c.name, err)
	}
}

// The rules that turn appended batches into index entries: the first batch
// of a segment never gets an offset entry; a later one does once more than
// index.interval.bytes were written since the last entry; a time entry goes
// with it when the largest timestamp grew; sealing adds the largest
// timestamp if no entry holds it yet.
func TestIndexStateAddsEntriesByInterval(t *testing.T) {
	st := emptyIndexState(100)
	var offsets, times []byte
	pos := int64(0)
	add := func(ts int64) {
		b := testBatch(t, "i", 1, 100, ts)
		record.SetBaseOffset(b, st.nextOffset)
		h, err := record.ParseHeader(b)
		noErr(t, err)
		offsets, times = st.add(pos, &h, int64(len(b)), 300, offsets, times)
		pos += int64(len(b))
	}
	for _, ts := range []int64{1000, 1010, 1005, 1020, 1020, 1020} { // 170-byte batches
		add(ts)
	}
	// 0 bytes before batch 0, 170 before 1, 340 (> 300) before 2: entry;
	// 170 before 3, 340 before 4: entry; 170 before 5.
	ox := offsetIndex{buf: offsets}
	require(t, ox.len() == 2, "%d offset entries, want 2", ox.len())
	rel, p := ox.entry(0)
	require(t, rel == 2 && p == 340, "first entry (%d, %d), want (2, 340)", rel, p)
	rel, p = ox.entry(1)
	require(t, rel == 4 && p == 680, "second entry (%d, %d), want (4, 680)", rel, p)
	// Time entries hold the largest timestamp so far and where it is: 1010
	// at batch 1 (batch 2's 1005 is older), then 1020 at batch 3.
	tx := timeIndex{buf: times}
	require(t, tx.len() == 2, "%d time entries, want 2", tx.len())
	ts, rel := tx.entry(0)
	require(t, ts == 1010 && rel == 1, "first time entry (%d, %d), want (1010, 1)", ts, rel)
	ts, rel = tx.entry(1)
	require(t, ts == 1020 && rel == 3, "second time entry (%d, %d), want (1020, 3)", ts, rel)
	require(t, st.size == pos && st.nextOffset == 106 && st.maxTimestamp == 1020 && st.offsetOfMaxTimestamp == 103,
		"state %+v", st)
	// The last entry already holds 1020: sealing adds nothing.
	require(t, len(st.appendTimeEntry(nil)) == 0, "seal added a redundant time entry")
	add(1030) // indexed, with its timestamp: 340 bytes since batch 4
	add(1040) // not indexed: only 170 bytes since batch 6
	require(t, len(st.appendTimeEntry(nil)) == timeIndexEntrySize, "seal did not record the new largest timestamp")
	// With interval 0 every batch after the first is indexed.
	st, offsets, times, pos = emptyIndexState(0), nil, nil, 0
	for i := 0; i < 4; i++ {
		b := testBatch(t, "i", 1, 10, 1000)
		record.SetBaseOffset(b, int64(i))
		h, _ := record.ParseHeader(b)
		offsets, times = st.add(pos, &h, int64(len(b)), 0, offsets, times)
		pos += int64(len(b))
	}
	require(t, len(offsets) == 3*offsetIndexEntrySize && len(times) == timeIndexEntrySize,
		"interval 0: %d offset bytes, %d time bytes", len(offsets), len(times))
}

// Index files are derived data: a sealed segment whose index file is
// corrupt, zero-filled, cut or missing is rebuilt from its .log on first
// use, identical to what the appends wrote, and written back.
func TestIndexCorruptSealedIndexIsRebuilt(t *testing.T) {
	cfg := smallConfig()
	cfg.IndexIntervalBytes = 100
	damages := []struct {
		name   string
		damage func(data []byte) []byte
	}{
		{"unsorted", func(d []byte) []byte {
			d = bytes.Clone(d)
			copy(d, d[len(d)-8:]) // the last entry first
			return d
		}},
		{"zero-filled", func(d []byte) []byte { return make([]byte, len(d)+64) }},
		{"cut mid-entry", func(d []byte) []byte { return d[:len(d)-3] }},
		{"empty", func([]byte) []byte { return nil }},
	}
	for _, dm := range damages {
		for _, suffix := range []string{indexSuffix, timeIndexSuffix} {
			tl := openTestLog(t, cfg)
			for i := 0; i < 40; i++ {
				_, err := tl.Append(testBatch(t, "x", 2, 100, int64(1000+i)), AppendOptions{LeaderEpoch: -1})
				noErr(t, err)
			}
			require(t, tl.NumSegments() > 2, "want sealed segments, have %d", tl.NumSegments())
			want := readAll(t, tl.Log, 0)
			end := tl.LogEndOffset()
			path := tl.segments[1].path(suffix)
			good := readFileForTest(t, tl.fs, path)
			require(t, len(good) > 0, "%s: empty index", path)
			noErr(t, tl.Close())
			writeFileForTest(t, tl.fs, path, dm.damage(good))

			// The segments are below the recovery point, so they are trusted
			// and their indexes load lazily, on the first read.
			tl.reopen(t, Options{RecoveryPoint: end, CleanShutdown: true})
			for offset := int64(0); offset < end; offset += 7 {
				s, err := tl.Read(offset, ReadOptions{MaxBytes: 1, MinOneBatch: true, MaxOffset: NoMaxOffset})
				noErr(t, err)
				b, err := s.AppendTo(nil)
				s.Release()
				noErr(t, err)
				_, _, h, err := record.NextBatch(b)
				noErr(t, err)
				require(t, h.BaseOffset <= offset && offset <= h.LastOffset(), "%s %s: read %d got %d..%d", dm.name, suffix, offset, h.BaseOffset, h.LastOffset())
			}
			require(t, bytes.Equal(readAll(t, tl.Log, 0), want), "%s %s: contents differ", dm.name, suffix)
			// The segment's largest timestamp, which retention.ms goes by,
			// survives the damage.
			require(t, tl.segments[1].maxTimestamp == 1000+tl.segments[2].baseOffset/2, // batch i: 1000+i, 1001+i
				"%s %s: segment max timestamp %d", dm.name, suffix, tl.segments[1].maxTimestamp)
			got := readFileForTest(t, tl.fs, path)
			// An empty offset index is valid (a small segment has no entry)
			// and costs only a scan from the segment start, so it is kept.
			if dm.name != "empty" || suffix != indexSuffix {
				require(t, bytes.Equal(got, good), "%s %s: rebuilt index (%d bytes) differs from the original (%d bytes)", dm.name, suffix, len(got), len(good))
			}
			noErr(t, tl.Close())
		}
	}
}

func readFileForTest(t *testing.T, fsys vfs.FS, path string) []byte {
	t.Helper()
	b, err := readWholeFile(fsys, path)
	noErr(t, err)
	return b
}

func writeFileForTest(t *testing.T, fsys vfs.FS, path string, data []byte) {
	t.Helper()
	f, err := fsys.Create(path)
	noErr(t, err)
	_, err = f.WriteAt(data, 0)
	noErr(t, err)
	noErr(t, f.Sync())
	noErr(t, f.Close())
}
