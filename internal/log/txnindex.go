package log

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/sluicelog/sluice/internal/vfs"
)

// The aborted-transaction index, one per segment that holds an ABORT
// marker: <base offset>.txnindex, Kafka's TransactionIndex layout, so
// Kafka's tools read it. Must not change. Each entry is one aborted
// transaction whose ABORT marker lies in the segment; all integers are
// big-endian.
//
//	offset  size  field
//	     0     2  version (= 0)
//	     2     8  producer id
//	    10     8  first offset of the transaction on this partition
//	    18     8  last offset (the ABORT marker's)
//	    26     8  last stable offset once the marker was written
//	    34        (next entry)
//
// Like the other indexes it is derived data: the partition layer writes an
// entry when it appends (or, as a follower or on recovery, replays) an
// ABORT marker, and on load rewrites the entries from its producer-state
// snapshot onwards, so an entry a crash lost is rebuilt from the log.
// Entries live in memory too (aborts are rare), so a read_committed fetch
// never opens the files.
//
// The log cleaner keeps this in step: it keeps transactional batches and
// markers whole (cleaner_filter.go) and cleans a segment with entries on
// its own, so the segment keeps its base offset and its .txnindex
// (groupSegments, cleaner_swap.go). An entry can arrive while a clean runs
// (the partition indexes an abort after appending its marker, and drops
// and rebuilds entries when it truncates): the swap gives up a group in
// which a segment other than the first got entries since it was grouped,
// and AppendAbortedTxn waits for a swap under way. Should the cleaner ever
// drop markers, it may only drop one once no aborted record of its
// transaction remains below it and delete.retention.ms has passed, as
// Kafka's cleaner does; otherwise read_committed readers would see
// aborted records as committed.
const (
	txnIndexSuffix    = ".txnindex"
	txnIndexEntrySize = 34
	txnIndexVersion   = 0
)

// AbortedTxn is one entry of the aborted-transaction index.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64 // the ABORT marker's offset
	// LastStableOffset is the partition's last stable offset right after
	// the marker: a reader collecting aborted transactions up to an
	// offset below it needs no later segment.
	LastStableOffset int64
}

func appendAbortedTxn(dst []byte, t AbortedTxn) []byte {
	dst = binary.BigEndian.AppendUint16(dst, txnIndexVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(t.ProducerID))
	dst = binary.BigEndian.AppendUint64(dst, uint64(t.FirstOffset))
	dst = binary.BigEndian.AppendUint64(dst, uint64(t.LastOffset))
	return binary.BigEndian.AppendUint64(dst, uint64(t.LastStableOffset))
}

// decodeTxnIndex reads a segment's entries, stopping at the first one that
// cannot be right (a torn write, a version we do not know, a marker outside
// the segment): what follows is rebuilt from the log by the partition.
func decodeTxnIndex(buf []byte, baseOffset, nextOffset int64) []AbortedTxn {
	var txns []AbortedTxn
	for ; len(buf) >= txnIndexEntrySize; buf = buf[txnIndexEntrySize:] {
		t := AbortedTxn{
			ProducerID:       int64(binary.BigEndian.Uint64(buf[2:])),
			FirstOffset:      int64(binary.BigEndian.Uint64(buf[10:])),
			LastOffset:       int64(binary.BigEndian.Uint64(buf[18:])),
			LastStableOffset: int64(binary.BigEndian.Uint64(buf[26:])),
		}
		if binary.BigEndian.Uint16(buf) != txnIndexVersion || t.LastOffset < baseOffset || t.LastOffset >= nextOffset ||
			t.FirstOffset > t.LastOffset || t.ProducerID < 0 {
			break
		}
		txns = append(txns, t)
	}
	return txns
}

func isTxnIndexLeftover(name string) bool { return strings.HasSuffix(name, txnIndexSuffix+tmpSuffix) }

// loadTxnIndexes reads the .txnindex files of the loaded segments (those
// in present, from the directory listing, so segments without aborts cost
// nothing), dropping entries past the recovered end.
//
// With a journal replay to follow (held), the last segment keeps its
// entries past the recovered end, unwritten, until the replay is done:
// the partition indexes an abort once its marker is acknowledged, maybe
// by the journal alone, and its load rebuilds entries only from its
// producer-state snapshot on, which may lie past the marker.
func (l *Log) loadTxnIndexes(present map[int64]bool, held bool) error {
	for i, s := range l.segments {
		if !present[s.baseOffset] {
			continue
		}
		if held && i == len(l.segments)-1 {
			if err := l.holdTxnIndex(s); err != nil {
				return err
			}
			continue
		}
		// Through shedding, as the load's other reads: out of
		// descriptors, failing here failed the whole log's load.
		buf, err := readWholeFile(l.shedding(), s.path(txnIndexSuffix))
		if err != nil {
			return fmt.Errorf("segment %020d: read %s: %w", s.baseOffset, txnIndexSuffix, err)
		}
		s.abortedTxns = decodeTxnIndex(buf, s.baseOffset, s.nextOffset)
		if len(s.abortedTxns)*txnIndexEntrySize != len(buf) {
			l.logger.Warn("aborted transaction index has invalid entries; keeping the valid prefix", "segment", s.baseOffset,
				"entries", len(s.abortedTxns), "bytes", len(buf))
			if err := l.writeTxnIndexLocked(s); err != nil {
				return err
			}
		}
	}
	return nil
}

// holdTxnIndex reads the last segment's entries whatever their marker's
// offset; settleTxnIndexAfterReplay checks them against the log's end.
func (l *Log) holdTxnIndex(s *segment) error {
	buf, err := readWholeFile(l.shedding(), s.path(txnIndexSuffix))
	if err != nil {
		return fmt.Errorf("segment %020d: read %s: %w", s.baseOffset, txnIndexSuffix, err)
	}
	s.abortedTxns = decodeTxnIndex(buf, s.baseOffset, math.MaxInt64)
	l.txnHeld = &txnHeld{base: s.baseOffset, rewrite: len(s.abortedTxns)*txnIndexEntrySize != len(buf)}
	return nil
}

// txnHeld is the segment whose entries loadTxnIndexes held for a replay.
type txnHeld struct {
	base    int64
	rewrite bool // its file holds invalid entries
}

// settleTxnIndexAfterReplay puts the entries held for the journal's
// replay where the log now has their markers: in the segment that held
// them, in a segment the replay rolled to, or nowhere past the log end.
// A file is rewritten only if its entries changed, those that gain
// entries first, so that a crash between loses none.
func (l *Log) settleTxnIndexAfterReplay() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	held := l.txnHeld
	l.txnHeld = nil
	if held == nil {
		return nil
	}
	i := l.segmentIndexLocked(held.base)
	if i < 0 || l.segments[i].baseOffset != held.base {
		return nil
	}
	s := l.segments[i]
	kept := s.abortedTxns[:0:0]
	gained := map[*segment]bool{}
	for _, t := range s.abortedTxns {
		switch j := l.segmentIndexLocked(t.LastOffset); {
		case t.LastOffset >= l.logEndOffset || j < i:
		case j == i:
			kept = append(kept, t)
		default:
			l.segments[j].abortedTxns = append(l.segments[j].abortedTxns, t)
			gained[l.segments[j]] = true
		}
	}
	for g := range gained {
		sort.Slice(g.abortedTxns, func(a, b int) bool { return g.abortedTxns[a].LastOffset < g.abortedTxns[b].LastOffset })
		if err := l.writeTxnIndexLocked(g); err != nil {
			return l.failAndReturnLocked(err)
		}
	}
	changed := held.rewrite || len(kept) != len(s.abortedTxns)
	s.abortedTxns = kept
	if changed {
		if err := l.writeTxnIndexLocked(s); err != nil {
			return l.failAndReturnLocked(err)
		}
	}
	return nil
}

// writeTxnIndexLocked replaces a segment's .txnindex file with its
// in-memory entries (removing it when there are none), durably: an entry
// below a producer-state snapshot is not rebuilt on recovery, so it must
// be on disk before the snapshot can be written.
func (l *Log) writeTxnIndexLocked(s *segment) error {
	path := s.path(txnIndexSuffix)
	if len(s.abortedTxns) == 0 {
		if err := l.fs.Remove(path); err != nil && !isNotExist(err) {
			return fmt.Errorf("segment %020d: remove %s: %w", s.baseOffset, txnIndexSuffix, err)
		}
		return nil
	}
	buf := make([]byte, 0, len(s.abortedTxns)*txnIndexEntrySize)
	for _, t := range s.abortedTxns {
		buf = appendAbortedTxn(buf, t)
	}
	// Through sheddingFS, as Log.syncDir: the temporary file's create and
	// the directory's open may find no descriptor, which failed the log.
	if err := vfs.WriteFileAtomic(l.shedding(), path, buf); err != nil {
		return fmt.Errorf("segment %020d: %w", s.baseOffset, err)
	}
	return nil
}

// segmentIndexLocked is the index of the segment holding offset (the last
// one whose base is at or below it); -1 when offset is below the first.
func (l *Log) segmentIndexLocked(offset int64) int {
	return sort.Search(len(l.segments), func(i int) bool { return l.segments[i].baseOffset > offset }) - 1
}

// AppendAbortedTxn records an aborted transaction in the index of the
// segment holding its ABORT marker, durably before returning. A marker
// whose segment retention already removed needs no entry. It holds the
// log's lock across the write: aborts are rare, and a reader must never
// see the marker's segment without its entry once this returns.
func (l *Log) AppendAbortedTxn(t AbortedTxn) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	// A cleaner's swap replaces its group's segments with one that keeps
	// the first one's entries only, checked before the swap's file
	// operations, which run without the lock: an entry added to another
	// segment of the group meanwhile would be lost with it.
	for l.swapping && l.err == nil {
		l.cond.Wait()
	}
	if l.err != nil {
		return l.err
	}
	i := l.segmentIndexLocked(t.LastOffset)
	if i < 0 || t.LastOffset >= l.logEndOffset {
		return nil
	}
	s := l.segments[i]
	for _, have := range s.abortedTxns {
		if have.LastOffset == t.LastOffset {
			return nil // replayed again: one marker, one entry
		}
	}
	t.LastStableOffset = min(t.LastStableOffset, l.firstOffsetAbortedAfterLocked(i, t.LastOffset))
	s.abortedTxns = append(s.abortedTxns, t)
	sort.Slice(s.abortedTxns, func(a, b int) bool { return s.abortedTxns[a].LastOffset < s.abortedTxns[b].LastOffset })
	if err := l.writeTxnIndexLocked(s); err != nil {
		return l.failAndReturnLocked(err)
	}
	return nil
}

// firstOffsetAbortedAfterLocked is the smallest first offset of the
// indexed aborted transactions whose marker comes after marker (from
// segment i on), or the largest offset when there are none.
//
// Markers of different producers that share a write round finish in any
// order, so the partition layer may index the abort whose marker is later
// in the log first, and then work out the earlier marker's last stable
// offset without it: that transaction was still open at the earlier marker,
// but it has left the open set. An entry whose last stable offset passes
// the start of a transaction aborted after it would stop AbortedTxns before
// that transaction, and a read_committed reader would take its records as
// committed; so an entry's last stable offset is never above the first
// offset of an abort indexed after it.
func (l *Log) firstOffsetAbortedAfterLocked(i int, marker int64) int64 {
	first := int64(math.MaxInt64)
	for _, s := range l.segments[i:] {
		for _, have := range s.abortedTxns {
			if have.LastOffset > marker {
				first = min(first, have.FirstOffset)
			}
		}
	}
	return first
}

// AbortedTxns lists the aborted transactions that overlap [from, to): a
// read_committed fetch of that range hands them to the client, which
// drops their records. The walk starts at the segment holding from (an
// overlapping transaction has its marker at or after from) and ends, as
// Kafka's does, at the first entry whose last stable offset reaches to:
// every transaction that began below to had ended by then, so no later
// marker can belong to one. Entries whose marker is below from are
// skipped by a binary search: a transaction open at a marker began before
// it, so an entry's last stable offset is at most its marker plus one, and
// one below from could only end an empty range.
func (l *Log) AbortedTxns(from, to int64) []AbortedTxn {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []AbortedTxn
	first := max(l.segmentIndexLocked(from), 0)
	for i := first; i < len(l.segments); i++ {
		txns := l.segments[i].abortedTxns
		if i == first {
			txns = txns[sort.Search(len(txns), func(j int) bool { return txns[j].LastOffset >= from }):]
		}
		for _, t := range txns {
			if t.LastOffset >= from && t.FirstOffset < to {
				out = append(out, t)
			}
			if t.LastStableOffset >= to {
				return out
			}
		}
	}
	return out
}

// SegmentEnd is the offset after the last batch of the segment holding
// offset (of the first segment when offset is below it). A Read returns
// batches of one segment only, so this bounds what a read from offset can
// return: a read_committed fetch lists the aborted transactions up to
// there, not up to the LSO, so the list grows with what is read rather
// than with the log.
func (l *Log) SegmentEnd(offset int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.segments[max(l.segmentIndexLocked(offset), 0)].nextOffset
}

// DropAbortedTxnsFrom forgets the entries whose marker is at or past
// offset: the partition layer replays the log from there and writes them
// again.
func (l *Log) DropAbortedTxnsFrom(offset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropAbortedTxnsFromLocked(offset)
}

func (l *Log) dropAbortedTxnsFromLocked(offset int64) error {
	for i := max(l.segmentIndexLocked(offset), 0); i < len(l.segments); i++ {
		s := l.segments[i]
		n := sort.Search(len(s.abortedTxns), func(j int) bool { return s.abortedTxns[j].LastOffset >= offset })
		if n == len(s.abortedTxns) {
			continue
		}
		s.abortedTxns = s.abortedTxns[:n]
		if err := l.writeTxnIndexLocked(s); err != nil {
			return l.failAndReturnLocked(err)
		}
	}
	return nil
}
