package log

import (
	"fmt"
	"math"

	"github.com/sluicelog/sluice/internal/record"
)

// batchFilter decides, batch by batch, what a clean keeps (see cleaner.go
// for the rules). Its buffers are reused from batch to batch and from clean
// to clean, so a clean allocates little beyond the batches it rebuilds.
type batchFilter struct {
	offsets           *offsetMap
	producers         map[int64]int64 // producer id -> last offset of its last batch; nil: too many, keep all
	nowMs             int64
	deleteRetentionMs int64
	// mapEnd is the end of the range the offset map covers. A record at or
	// past it is kept as it is: its key's older records were not removed
	// this round, so its tombstone may neither get a horizon nor go.
	mapEnd int64
	// earliestHorizonMs is the earliest delete horizon of the batches kept,
	// math.MaxInt64 when none: when the log is next worth a clean for its
	// tombstones alone.
	earliestHorizonMs int64

	kept    []keptRecord
	headers []keptHeader
	arena   []byte
	records []record.Record
	out     []byte

	recordsRead, recordsRemoved int64
}

// keptRecord is a record to rewrite; its bytes live in the filter's arena
// (a compressed batch's records alias a pooled buffer that the next
// decode reuses), as spans, because the arena grows while they are added.
type keptRecord struct {
	timestamp   int64
	offsetDelta int32
	key, value  span
	headerStart int
	headerEnd   int
	attributes  int8
}

type keptHeader struct {
	key, value span
}

// span is a slice of the arena; null marks a null key or value.
type span struct {
	start, end int
	null       bool
}

func (f *batchFilter) reset(offsets *offsetMap, producers map[int64]int64, mapEnd, nowMs, deleteRetentionMs int64) {
	f.offsets, f.producers, f.mapEnd, f.nowMs, f.deleteRetentionMs = offsets, producers, mapEnd, nowMs, deleteRetentionMs
	f.earliestHorizonMs = math.MaxInt64
}

func (f *batchFilter) save(b []byte) span {
	if b == nil {
		return span{null: true}
	}
	start := len(f.arena)
	f.arena = append(f.arena, b...)
	return span{start: start, end: len(f.arena)}
}

func (f *batchFilter) bytes(s span) []byte {
	if s.null {
		return nil
	}
	return f.arena[s.start:s.end:s.end]
}

// filter returns the bytes to write in place of batch: the batch itself
// when it keeps everything, a rebuilt batch when it loses records or gains
// a delete horizon, an empty batch when nothing is left but its offsets
// must stay (lastInGroup, or the producer's last batch), or nil to drop it.
func (f *batchFilter) filter(batch []byte, h *record.Header, lastInGroup bool) ([]byte, error) {
	if h.IsControl() || h.IsTransactional() {
		// Kafka drops aborted records and, after delete.retention.ms,
		// markers with no record of their transaction left below them;
		// that is not built yet, so such batches are kept whole (which
		// keeps read_committed readers right: markers and .txnindex stay).
		return batch, nil
	}
	f.kept, f.headers, f.arena = f.kept[:0], f.headers[:0], f.arena[:0]
	removed, tombstones := 0, false
	horizonPassed := h.HasDeleteHorizon() && h.FirstTimestamp <= f.nowMs
	err := record.Records(batch, maxRecordsBytes, func(r *record.Record) error {
		f.recordsRead++
		offset := h.Offset(r)
		if !f.retain(r, offset, horizonPassed) {
			removed++
			return nil
		}
		tombstones = tombstones || r.Value == nil && offset < f.mapEnd
		k := keptRecord{timestamp: h.Timestamp(r), offsetDelta: r.OffsetDelta, key: f.save(r.Key), value: f.save(r.Value),
			headerStart: len(f.headers), attributes: r.Attributes}
		for _, hd := range r.Headers {
			f.headers = append(f.headers, keptHeader{key: f.save([]byte(hd.Key)), value: f.save(hd.Value)})
		}
		k.headerEnd = len(f.headers)
		f.kept = append(f.kept, k)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
	}
	f.recordsRemoved += int64(removed)
	stamp := tombstones && !h.HasDeleteHorizon()
	if tombstones {
		horizon := h.FirstTimestamp
		if stamp {
			horizon = f.nowMs + f.deleteRetentionMs
		}
		f.earliestHorizonMs = min(f.earliestHorizonMs, horizon)
	}
	switch {
	case removed == 0 && !stamp:
		return batch, nil
	case len(f.kept) == 0:
		if lastInGroup || h.HasProducerID() && (f.producers == nil || f.producers[h.ProducerID] == h.LastOffset()) {
			return f.emptyBatch(h)
		}
		return nil, nil
	}
	return f.rebuild(h, stamp)
}

// retain is Kafka's shouldRetainRecord for one record.
func (f *batchFilter) retain(r *record.Record, offset int64, horizonPassed bool) bool {
	if offset >= f.mapEnd {
		return true
	}
	if r.Key == nil {
		return false // cannot be compacted; produce refuses these on compacted topics
	}
	hash := offsetMapHash(r.Key)
	if latest := f.offsets.get(&hash); latest >= 0 && offset < latest {
		return false // a later record of the key supersedes it
	}
	return r.Value != nil || !horizonPassed
}

// rebuild encodes the kept records as a batch with the original's base
// offset, offset range, producer fields and codec. A stamped batch's first
// timestamp becomes its delete horizon and the record deltas count from it.
func (f *batchFilter) rebuild(h *record.Header, stamp bool) ([]byte, error) {
	opts := batchOptionsOf(h)
	opts.PreserveOffsetDeltas = true
	opts.DeleteHorizon = h.HasDeleteHorizon() || stamp
	if stamp {
		opts.FirstTimestamp = f.nowMs + f.deleteRetentionMs
	}
	f.records = f.records[:0]
	for _, k := range f.kept {
		r := record.Record{Attributes: k.attributes, TimestampDelta: k.timestamp - opts.FirstTimestamp,
			OffsetDelta: k.offsetDelta, Key: f.bytes(k.key), Value: f.bytes(k.value)}
		for _, hd := range f.headers[k.headerStart:k.headerEnd] {
			r.Headers = append(r.Headers, record.RecordHeader{Key: string(f.bytes(hd.key)), Value: f.bytes(hd.value)})
		}
		f.records = append(f.records, r)
	}
	out, err := record.AppendBatch(f.out[:0], opts, f.records)
	if err != nil {
		return nil, fmt.Errorf("rebuild batch at offset %d: %w", h.BaseOffset, err)
	}
	f.out = out
	return out, nil
}

// emptyBatch is a header-only batch holding the original's offsets and
// producer fields, as Kafka writes to keep a producer's last sequence.
func (f *batchFilter) emptyBatch(h *record.Header) ([]byte, error) {
	opts := batchOptionsOf(h)
	opts.Codec = record.CodecNone
	opts.FirstTimestamp = h.MaxTimestamp // the segment's largest timestamp stays
	out, err := record.AppendBatch(f.out[:0], opts, nil)
	if err != nil {
		return nil, fmt.Errorf("empty batch at offset %d: %w", h.BaseOffset, err)
	}
	f.out = out
	return out, nil
}

func batchOptionsOf(h *record.Header) record.BatchOptions {
	return record.BatchOptions{
		BaseOffset:           h.BaseOffset,
		Codec:                h.Codec(),
		FirstTimestamp:       h.FirstTimestamp,
		ProducerID:           h.ProducerID,
		ProducerEpoch:        h.ProducerEpoch,
		BaseSequence:         h.BaseSequence,
		Transactional:        h.IsTransactional(),
		TimestampType:        h.TimestampType(),
		PartitionLeaderEpoch: h.PartitionLeaderEpoch,
		LastOffsetDelta:      h.LastOffsetDelta,
	}
}
