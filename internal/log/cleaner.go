package log

// The log cleaner: compaction of logs whose cleanup.policy contains
// compact, as Kafka's LogCleaner does it.
//
//	 log start                firstDirtyOffset            firstUncleanableOffset   active
//	 │ clean (compacted before)   │ dirty (never compacted)     │ too new / above HW  │
//	 ▼                            ▼                             ▼                     ▼
//	 [seg][seg][seg]              [seg][seg][seg][seg]          [seg]                 [active]
//	                              └─ offset map: key → latest offset (bounded) ─┘
//	 └──────── rewritten in groups of segments, keeping per key the latest ────┘
//
// One clean: (1) build the offset map from the dirty range, stopping where
// the map is full (the prefix that fit is what this round cleans); (2)
// rewrite every segment from the log start to that point, in groups whose
// sizes add up to at most segment.bytes, keeping a record only if no later
// record of its key is in the map; (3) swap each group's cleaned file in
// for its old segments (cleaner_swap.go, crash-safe); (4) move
// firstDirtyOffset to the end of the map.
//
// What is kept, and why:
//   - offsets never change: records keep their offsets, so compaction leaves
//     gaps that reads skip (a read at a removed offset returns the next batch);
//   - a batch keeps its base offset and its offset range even when its last
//     records are removed, so an idempotent producer's last sequence number
//     survives (base sequence + last offset delta);
//   - a batch whose records are all removed is dropped, unless it is the
//     last batch of its producer in the cleaned range (kept empty, for the
//     producer's sequence, as Kafka does) or the last batch of a cleaned
//     segment (kept empty so the segment still ends where the next begins:
//     recovery treats a segment ending early as a lost tail);
//   - tombstones (null values) stay until their delete horizon (KIP-534):
//     the first clean that keeps a tombstone stamps its batch with
//     now + delete.retention.ms, and a later clean past it removes them;
//   - records without a key cannot be compacted and are dropped, as Kafka's
//     cleaner does (produce refuses them on compacted topics);
//   - control batches are copied untouched. Transactions do not exist yet;
//     when they do, the cleaner must drop the records of aborted
//     transactions and keep commit/abort markers until delete.retention.ms
//     has passed since the transaction ended (Kafka's
//     retainLegacyDeletesAndTxnMarkers), and must not clean above the last
//     stable offset (the bound the partition gives already allows for it).
//
// The cleaner never touches the active segment, nor anything at or above
// the bound the partition gives (the high watermark: leaders and followers
// clean independently, and a record above it may still be truncated), nor
// a dirty segment younger than min.compaction.lag.ms.

import (
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// CleanStats describe one clean of one log.
type CleanStats struct {
	Segments       int   // old segments rewritten
	BytesRead      int64 // bytes of the old segments
	BytesWritten   int64 // bytes of the cleaned segments
	Records        int64 // records read from the old segments
	RecordsRemoved int64
	EndOffset      int64 // the new first dirty offset
	// MapUtilization is how full the offset map was (0 to 1): 1 means the
	// dirty range had more keys than fit, and the next clean goes on.
	MapUtilization float64
}

// cleanable is what a log offers the cleaner at one moment.
type cleanable struct {
	segments         []segmentSnapshot // sealed, wholly below firstUncleanable
	firstDirty       int64
	firstUncleanable int64
	cleanBytes       int64
	dirtyBytes       int64
	// firstDirtySegment is the first segment holding dirty records, whose
	// first batch's age max.compaction.lag.ms bounds.
	firstDirtySegment *segment
	truncations       int64 // the log's truncation count when it was looked at
}

// segmentSnapshot is a sealed segment's state as the cleaner saw it under
// the log's lock; the swap checks it has not changed since.
type segmentSnapshot struct {
	seg        *segment
	size       int64
	nextOffset int64
	// abortedTxns says the segment has aborted-transaction index entries.
	// A sealed segment's entries never change (markers land in the active
	// segment), so the snapshot's answer holds for the whole clean.
	abortedTxns bool
}

func (c *cleanable) dirtyRatio() float64 {
	if c.dirtyBytes == 0 {
		return 0
	}
	return float64(c.dirtyBytes) / float64(c.cleanBytes+c.dirtyBytes)
}

// SetCleanableBound gives the log the offset the cleaner must stay below:
// the partition's high watermark (the last stable offset once transactions
// exist). Until it is set the log is never cleaned: records above the high
// watermark may still be truncated, and cleaning them could remove a record
// superseded only by one that is later truncated.
func (l *Log) SetCleanableBound(bound func() int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cleanBound = bound
}

// FirstDirtyOffset is where the records never compacted begin.
func (l *Log) FirstDirtyOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.firstDirtyOffset
}

// cleanableLocked finds the segments a clean may rewrite now.
func (l *Log) cleanableLocked(nowMs int64) cleanable {
	c := cleanable{firstDirty: max(l.firstDirtyOffset, l.logStartOffset, l.segments[0].baseOffset), truncations: l.truncations}
	if l.cleanBound == nil || !l.cfg.Compact {
		c.firstUncleanable = c.firstDirty
		return c
	}
	limit := min(l.cleanBound(), l.recoveryPoint, l.active().baseOffset)
	for _, s := range l.segments[:len(l.segments)-1] {
		dirty := s.nextOffset > c.firstDirty
		if !s.sealed || s.nextOffset > limit || dirty && l.cfg.MinCompactionLagMs > 0 && s.maxTimestamp > nowMs-l.cfg.MinCompactionLagMs {
			break
		}
		c.segments = append(c.segments, segmentSnapshot{seg: s, size: s.size, nextOffset: s.nextOffset,
			abortedTxns: len(s.abortedTxns) > 0})
		if dirty {
			c.dirtyBytes += s.size
			if c.firstDirtySegment == nil {
				c.firstDirtySegment = s
			}
		} else {
			c.cleanBytes += s.size
		}
	}
	c.firstUncleanable = c.firstDirty
	if n := len(c.segments); n > 0 {
		c.firstUncleanable = max(c.firstDirty, c.segments[n-1].nextOffset)
	}
	return c
}

// cleanerResources are one cleaner thread's: its share of the dedupe
// buffer, the directory's throttle, and the signal to stop.
type cleanerResources struct {
	dedupeBytes int64
	offsets     *offsetMap // allocated at the first clean
	throttle    *Throttler
	stop        <-chan struct{}
	writeBuf    []byte
	scanBuf     []byte // the batch scanner's read buffer
	filter      batchFilter
}

func newCleanerResources(dedupeBytes int64, throttle *Throttler, stop <-chan struct{}) *cleanerResources {
	return &cleanerResources{dedupeBytes: dedupeBytes, throttle: throttle, stop: stop}
}

var errCleanAborted = errors.New("clean aborted: the log changed under the cleaner, or the cleaner stopped")

// pace accounts for n bytes of cleaner I/O against the throttle, and stops
// a clean when the cleaner is stopping (a broker shutting down should not
// wait for a whole log to be cleaned).
func (res *cleanerResources) pace(n int64) error {
	res.throttle.maybeThrottle(n, res.stop)
	select {
	case <-res.stop:
		return errCleanAborted
	default:
		return nil
	}
}

// CleanNow compacts the log at once, whatever its dirty ratio (still below
// the cleanable bound, sealed segments only, min.compaction.lag.ms
// respected), with an offset map of dedupeBytes. The background cleaner
// calls clean; tests and tools call this.
func (l *Log) CleanNow(dedupeBytes int64) (CleanStats, error) {
	return l.clean(newCleanerResources(dedupeBytes, nil, nil), l.nowMs())
}

// clean runs one compaction of the log. A log that changed under it
// (truncation, retention, a new configuration) keeps what was swapped in
// so far; the rest waits for the next round.
func (l *Log) clean(res *cleanerResources, nowMs int64) (stats CleanStats, err error) {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return stats, fmt.Errorf("log %s: %w", l.dir, ErrClosed)
	}
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		return stats, err
	}
	cfg := l.cfg
	c := l.cleanableLocked(nowMs)
	stats.EndOffset = c.firstDirty
	l.mu.Unlock()
	defer func() {
		// A truncation cuts segments in place: reading one then fails, and
		// is no more than an aborted clean.
		if err != nil && !errors.Is(err, errCleanAborted) && l.truncatedSince(c.truncations) {
			err = fmt.Errorf("%w: %w", errCleanAborted, err)
		}
	}()
	if len(c.segments) == 0 || !cfg.Compact {
		return stats, nil
	}
	if res.offsets == nil {
		res.offsets = &offsetMap{}
	}
	res.offsets.reset(offsetMapBytesFor(c.dirtyBytes, res.dedupeBytes))
	// Segment files are opened one at a time (one group at a time for the
	// rewrite), so a log of many small segments does not hold the open-file
	// budget.
	var end int64
	end, err = l.buildOffsetMap(res, &c)
	if err != nil {
		return stats, err
	}
	stats.MapUtilization = float64(res.offsets.entries) / float64(res.offsets.maxEntries)
	n := 0
	for n < len(c.segments) && c.segments[n].seg.baseOffset < end {
		n++
	}
	producers, err := lastBatchOfProducers(c.segments[:n])
	if err != nil {
		return stats, err
	}
	res.filter.reset(res.offsets, producers, end, nowMs, cfg.DeleteRetentionMs)
	for _, g := range groupSegments(c.segments[:n], cfg, c.truncations) {
		if err := l.cleanGroup(res, g, cfg, &stats); err != nil {
			return stats, err
		}
	}
	l.mu.Lock()
	if l.truncations != c.truncations {
		// Truncated after the last swap: the map held removed records.
		l.mu.Unlock()
		return stats, errCleanAborted
	}
	l.firstDirtyOffset = max(l.firstDirtyOffset, end)
	// Every batch with a delete horizon lies in what was just rewritten
	// (horizons are stamped only by cleans, and each clean starts at the
	// log start), so the earliest one kept is the log's.
	l.deleteHorizonMs = 0
	if h := res.filter.earliestHorizonMs; h != math.MaxInt64 {
		l.deleteHorizonMs = h
	}
	stats.EndOffset = l.firstDirtyOffset
	l.mu.Unlock()
	return stats, nil
}

func (l *Log) truncatedSince(truncations int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.truncations != truncations
}

// acquireAll opens the segments' files; a segment deleted since the cleaner
// looked aborts the clean.
func acquireAll(segments []segmentSnapshot) ([]fileRef, error) {
	refs := make([]fileRef, 0, len(segments))
	for _, s := range segments {
		ref, err := s.seg.file.acquire()
		if err != nil {
			releaseAll(refs)
			return nil, fmt.Errorf("%w: %w", errCleanAborted, err)
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

func releaseAll(refs []fileRef) {
	for _, r := range refs {
		r.release()
	}
}

// offsetMapBytesFor sizes a clean's offset map: the thread's dedupe buffer,
// or less when the dirty range cannot hold that many keys (a record takes
// at least 7 bytes; 4 map bytes per log byte allows for compression). The
// map is allocated at a thread's first clean and grows to the buffer only
// when a log needs it, so a broker whose compacted logs are small (often
// just __consumer_offsets) does not hold the whole buffer.
func offsetMapBytesFor(dirtyBytes, dedupeBytes int64) int64 {
	if dirtyBytes > dedupeBytes/4 {
		return dedupeBytes
	}
	return min(max(4*dirtyBytes, 64<<10), dedupeBytes)
}

// buildOffsetMap fills the map from the dirty segments and returns the end
// of the range it covers: firstUncleanable when every key fit, else the
// offset of the first record whose key did not.
func (l *Log) buildOffsetMap(res *cleanerResources, c *cleanable) (int64, error) {
	errFull := errors.New("offset map full")
	end := c.firstUncleanable
	for _, s := range c.segments {
		if s.nextOffset <= c.firstDirty {
			continue
		}
		refs, err := acquireAll([]segmentSnapshot{s})
		if err != nil {
			return 0, err
		}
		err = res.eachBatch(refs[0].file, s.size, func(batch []byte, h *record.Header) error {
			if err := res.pace(int64(len(batch))); err != nil {
				return err
			}
			if h.LastOffset() < c.firstDirty || h.IsControl() {
				// Control batches carry no keys for the map (transaction
				// markers, once transactions exist, are kept by the filter).
				return nil
			}
			return record.Records(batch, maxRecordsBytes, func(r *record.Record) error {
				offset := h.Offset(r)
				if offset < c.firstDirty || r.Key == nil {
					return nil
				}
				hash := offsetMapHash(r.Key)
				if !res.offsets.put(&hash, offset) {
					end = offset
					return errFull
				}
				return nil
			})
		})
		releaseAll(refs)
		if errors.Is(err, errFull) {
			return end, nil
		}
		if errors.Is(err, errCleanAborted) {
			return 0, err
		}
		if err != nil {
			return 0, fmt.Errorf("log %s: segment %020d: build offset map: %w", l.dir, s.seg.baseOffset, err)
		}
	}
	return end, nil
}

// eachBatch calls fn for every batch of the first size bytes of a segment
// file, CRC unchecked (the data was validated when appended or recovered).
// The read buffer is the thread's, reused from segment to segment.
func (res *cleanerResources) eachBatch(f vfs.File, size int64, fn func(batch []byte, h *record.Header) error) error {
	sc := newBatchScanner(f, 0, size)
	sc.buf = res.scanBuf
	defer func() { res.scanBuf = sc.buf }()
	for {
		batch, h, _, err := sc.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(batch, &h); err != nil {
			return err
		}
	}
}

// lastBatchOfProducers maps each producer id to the last offset of its last
// batch in the segments, reading batch headers only. Batches of a producer
// after the cleaned range make keeping its last one here unnecessary, never
// wrong. Its size is bounded by the producers the partition admits.
func lastBatchOfProducers(segments []segmentSnapshot) (map[int64]int64, error) {
	last := map[int64]int64{}
	for _, s := range segments {
		refs, err := acquireAll([]segmentSnapshot{s})
		if err != nil {
			return nil, err
		}
		err = producerBatches(refs[0].file, s, last)
		releaseAll(refs)
		if err != nil {
			return nil, err
		}
		if len(last) > maxTrackedProducers {
			// Too many to remember: nil says every producer's batch may be
			// its last, so each is kept (empty if need be). Correct, only
			// less compact.
			return nil, nil
		}
	}
	return last, nil
}

// maxTrackedProducers bounds the producer map of one clean (24 bytes or
// so an entry).
const maxTrackedProducers = 1 << 20

// producerBatches records the last offset of each producer's batches in
// one segment, reading batch headers only.
func producerBatches(f vfs.File, s segmentSnapshot, last map[int64]int64) error {
	var buf [record.HeaderSize]byte
	for pos := int64(0); pos < s.size; {
		if _, err := f.ReadAt(buf[:], pos); err != nil {
			return fmt.Errorf("segment %020d: read batch header at %d: %w", s.seg.baseOffset, pos, err)
		}
		h, err := record.ParseHeader(buf[:])
		if err != nil {
			return fmt.Errorf("segment %020d: batch header at %d: %w", s.seg.baseOffset, pos, err)
		}
		if h.HasProducerID() {
			last[h.ProducerID] = h.LastOffset()
		}
		pos += int64(h.Size())
	}
	return nil
}

// segmentGroup is consecutive segments cleaned into one.
type segmentGroup struct {
	segments    []segmentSnapshot
	truncations int64 // the log's truncation count when the clean began
}

// groupSegments groups consecutive segments whose sizes add up to at most
// segment.bytes and whose offsets fit a segment's int32 relative offsets,
// as Kafka's groupSegmentsBySize: small cleaned segments merge over time.
//
// A segment with aborted-transaction entries is cleaned on its own: its
// .txnindex keeps its base offset and stays valid because cleaning keeps
// offsets, whereas merging would have to combine several segments' index
// files into one crash-safely, which the swap does not do yet (Kafka
// concatenates them).
func groupSegments(segments []segmentSnapshot, cfg Config, truncations int64) []segmentGroup {
	var groups []segmentGroup
	for i := 0; i < len(segments); {
		g := segmentGroup{segments: segments[i : i+1], truncations: truncations}
		size := segments[i].size
		for j := i + 1; j < len(segments) && !segments[i].abortedTxns; j++ {
			s := segments[j]
			if s.abortedTxns || size+s.size > cfg.SegmentBytes || s.nextOffset-1-segments[i].seg.baseOffset > math.MaxInt32 {
				break
			}
			size += s.size
			g.segments = segments[i : j+1]
		}
		groups = append(groups, g)
		i += len(g.segments)
	}
	return groups
}
