package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// Index file formats. These are Kafka's formats and must not change: they are
// read back after upgrades and by operators' tools.
//
// Offset index (<base>.index): one entry per index.interval.bytes of log,
// mapping the base offset of a batch to its byte position in the .log file.
//
//	0            4            8
//	+------------+------------+
//	| relOffset  | position   |   relOffset = batch base offset - segment base offset
//	+------------+------------+   position  = byte position of the batch in <base>.log
//	  int32 BE     int32 BE
//
// Time index (<base>.timeindex): appended next to an offset index entry when
// the largest timestamp seen in the segment has grown; an entry (T, O) says
// every record before the batch holding offset O has a timestamp below T.
//
//	0                          8            12
//	+--------------------------+------------+
//	| timestamp (ms)           | relOffset  |   relOffset = last offset of the batch holding
//	+--------------------------+------------+               the largest timestamp - base offset
//	  int64 BE                   int32 BE
//
// Entries are strictly increasing in both fields. Index files are derived
// data: on any doubt they are rebuilt from the .log file.
const (
	offsetIndexEntrySize = 8
	timeIndexEntrySize   = 12
)

var errIndexCorrupt = errors.New("index corrupt")

// offsetIndex holds encoded offset index entries in memory, exactly as they
// are laid out on disk, so writing it out is one write and appending an entry
// allocates nothing once the slice has grown.
type offsetIndex struct {
	buf []byte
}

func (x *offsetIndex) len() int { return len(x.buf) / offsetIndexEntrySize }

func (x *offsetIndex) entry(i int) (relOffset, position int32) {
	e := x.buf[i*offsetIndexEntrySize:]
	return int32(binary.BigEndian.Uint32(e)), int32(binary.BigEndian.Uint32(e[4:]))
}

func (x *offsetIndex) append(relOffset, position int32) {
	x.buf = binary.BigEndian.AppendUint32(x.buf, uint32(relOffset))
	x.buf = binary.BigEndian.AppendUint32(x.buf, uint32(position))
}

// floor returns the position of the last indexed batch whose base offset is
// at most relOffset, or 0 (the segment start) when there is none.
func (x *offsetIndex) floor(relOffset int32) int64 {
	n := x.len()
	i := sort.Search(n, func(i int) bool {
		rel, _ := x.entry(i)
		return rel > relOffset
	})
	if i == 0 {
		return 0
	}
	_, pos := x.entry(i - 1)
	return int64(pos)
}

// truncateFromPosition drops every entry at or after position.
func (x *offsetIndex) truncateFromPosition(position int64) {
	n := sort.Search(x.len(), func(i int) bool {
		_, pos := x.entry(i)
		return int64(pos) >= position
	})
	x.buf = x.buf[:n*offsetIndexEntrySize]
}

// checkOffsetIndex accepts an index read from disk only if every entry is
// plausible for a segment of segmentSize bytes. A preallocated file that was
// never trimmed (a crash before the segment was sealed) fails: its tail is
// zero entries, and no real entry has position 0 because the first batch of a
// segment is never indexed.
func checkOffsetIndex(buf []byte, segmentSize int64) error {
	if len(buf)%offsetIndexEntrySize != 0 {
		return fmt.Errorf("%w: size %d is not a multiple of %d", errIndexCorrupt, len(buf), offsetIndexEntrySize)
	}
	x := offsetIndex{buf: buf}
	prevRel, prevPos := int32(-1), int32(0)
	for i := 0; i < x.len(); i++ {
		rel, pos := x.entry(i)
		if rel <= prevRel || pos <= prevPos || int64(pos) >= segmentSize {
			return fmt.Errorf("%w: entry %d (%d, %d) out of order or past %d bytes", errIndexCorrupt, i, rel, pos, segmentSize)
		}
		prevRel, prevPos = rel, pos
	}
	return nil
}

// timeIndex holds encoded time index entries, like offsetIndex.
type timeIndex struct {
	buf []byte
}

func (x *timeIndex) len() int { return len(x.buf) / timeIndexEntrySize }

func (x *timeIndex) entry(i int) (timestamp int64, relOffset int32) {
	e := x.buf[i*timeIndexEntrySize:]
	return int64(binary.BigEndian.Uint64(e)), int32(binary.BigEndian.Uint32(e[8:]))
}

// last returns the newest entry, or ok=false when the index is empty.
func (x *timeIndex) last() (timestamp int64, relOffset int32, ok bool) {
	if x.len() == 0 {
		return 0, 0, false
	}
	ts, rel := x.entry(x.len() - 1)
	return ts, rel, true
}

// maybeAppend adds an entry only if the timestamp grew, keeping entries
// strictly increasing.
func (x *timeIndex) maybeAppend(timestamp int64, relOffset int32) bool {
	if ts, rel, ok := x.last(); ok && (timestamp <= ts || relOffset < rel) {
		return false
	}
	x.buf = binary.BigEndian.AppendUint64(x.buf, uint64(timestamp))
	x.buf = binary.BigEndian.AppendUint32(x.buf, uint32(relOffset))
	return true
}

// floor returns the relative offset of the last entry with a timestamp at most
// timestamp; ok=false when every entry is newer (scan from the segment start).
func (x *timeIndex) floor(timestamp int64) (relOffset int32, ok bool) {
	i := sort.Search(x.len(), func(i int) bool {
		ts, _ := x.entry(i)
		return ts > timestamp
	})
	if i == 0 {
		return 0, false
	}
	_, rel := x.entry(i - 1)
	return rel, true
}

// truncateFromOffset drops every entry pointing at relOffset or later.
func (x *timeIndex) truncateFromOffset(relOffset int32) {
	n := sort.Search(x.len(), func(i int) bool {
		_, rel := x.entry(i)
		return rel >= relOffset
	})
	x.buf = x.buf[:n*timeIndexEntrySize]
}

// checkTimeIndex is checkOffsetIndex for the time index: relative offsets
// within the segment's offsets and both fields increasing.
func checkTimeIndex(buf []byte, maxRelOffset int32) error {
	if len(buf)%timeIndexEntrySize != 0 {
		return fmt.Errorf("%w: time index size %d is not a multiple of %d", errIndexCorrupt, len(buf), timeIndexEntrySize)
	}
	x := timeIndex{buf: buf}
	for i := 0; i < x.len(); i++ {
		ts, rel := x.entry(i)
		if rel < 0 || rel > maxRelOffset {
			return fmt.Errorf("%w: time entry %d offset %d outside segment", errIndexCorrupt, i, rel)
		}
		if i > 0 {
			if prevTs, prevRel := x.entry(i - 1); ts <= prevTs || rel < prevRel {
				return fmt.Errorf("%w: time entry %d out of order", errIndexCorrupt, i)
			}
		}
	}
	return nil
}
