package partition

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/sluicelog/sluice/internal/record"
)

// The append rules that look inside batches, as Kafka's LogValidator
// applies them on the leader: a compacted topic refuses records without a
// key, and a topic whose compression.type names a codec stores every batch
// in that codec. Both run before anything is appended, so a refused
// request leaves the log as it was. Followers never run them: they store
// the leader's bytes as they are.

// ErrNoKeyCompactedTopic: a record without a key sent to a topic whose
// cleanup.policy includes compact, which could never be compacted
// (INVALID_RECORD, with a RecordErrors entry per record).
var ErrNoKeyCompactedTopic = errors.New("compacted topic cannot accept a record without a key")

// maxRecordErrors bounds the per-record errors one append reports: a
// batch of a million keyless records gets the first ones, and the message
// says how many there were.
const maxRecordErrors = 100

// maxDecompressedBatchBytes bounds what one batch may inflate to while the
// leader looks inside it. Kafka has no such bound; without one a small
// compressed batch could make the broker allocate gigabytes. A batch past
// it fails with MESSAGE_TOO_LARGE.
const maxDecompressedBatchBytes = 64 << 20

// RecordError is one refused record: its index among the records of the
// append (counted across batches; a produce sends one batch per partition,
// where it is Kafka's batch_index) and why.
type RecordError struct {
	BatchIndex int32
	Message    string
}

// RecordErrors is an append refused because of some of its records. The
// edge answers it with the code of Err and one record_errors entry per
// Records element (Produce v8+).
type RecordErrors struct {
	Err     error
	Total   int           // refused records, including those past maxRecordErrors
	Records []RecordError // the first maxRecordErrors of them
}

func (e *RecordErrors) Error() string {
	shown := e.Records[:min(len(e.Records), 3)]
	parts := make([]string, len(shown))
	for i, r := range shown {
		parts[i] = fmt.Sprintf("record %d: %s", r.BatchIndex, r.Message)
	}
	return fmt.Sprintf("%d records refused (first %d: %s): %v", e.Total, len(shown), strings.Join(parts, "; "), e.Err)
}

func (e *RecordErrors) Unwrap() error { return e.Err }

// applyRecordRules runs the rules that look inside batches. The records
// to append are returned, in a buffer to release after the append when
// they were re-encoded.
func (p *Partition) applyRecordRules(records []byte, s *appendSettings) ([]byte, *recompressBuffer, error) {
	if s.requireKeys {
		if err := p.checkKeys(records); err != nil {
			return nil, nil, err
		}
	}
	if !s.recompress {
		return records, nil, nil
	}
	return p.recompress(records, s)
}

// checkKeys refuses an append with a record that has no key.
func (p *Partition) checkKeys(records []byte) error {
	refused := &RecordErrors{Err: ErrNoKeyCompactedTopic}
	index := int32(0)
	for rest := records; len(rest) > 0; {
		batch, next, _, err := record.NextBatch(rest)
		if err != nil {
			return fmt.Errorf("partition %s: %w", p.tp, err)
		}
		err = record.Records(batch, maxDecompressedBatchBytes, func(r *record.Record) error {
			if r.Key == nil {
				refused.Total++
				if len(refused.Records) < maxRecordErrors {
					refused.Records = append(refused.Records, RecordError{BatchIndex: index,
						Message: fmt.Sprintf("compacted topic %s cannot accept a record without a key", p.tp.Topic)})
				}
			}
			index++
			return nil
		})
		if err != nil {
			return fmt.Errorf("partition %s: %w", p.tp, err)
		}
		rest = next
	}
	if refused.Total > 0 {
		return fmt.Errorf("partition %s: %w", p.tp, refused)
	}
	return nil
}

// recompressBuffer holds one append's re-encoded batches until the log has
// written them.
type recompressBuffer struct{ b []byte }

var recompressBuffers = sync.Pool{New: func() any { return new(recompressBuffer) }}

// maxPooledRecompressBuffer keeps one huge append from pinning its buffer.
const maxPooledRecompressBuffer = 4 << 20

func releaseRecompressBuffer(buf *recompressBuffer) {
	if buf == nil {
		return
	}
	if cap(buf.b) > maxPooledRecompressBuffer {
		buf.b = nil
	}
	buf.b = buf.b[:0]
	recompressBuffers.Put(buf)
}

// recompress returns records with every batch in the topic's codec, in a
// pooled buffer the caller releases once the append is done; records that
// need no change are returned as they are, with no buffer. A re-encoded
// batch is held to max.message.bytes again, as Kafka checks the batch it
// stores.
func (p *Partition) recompress(records []byte, s *appendSettings) ([]byte, *recompressBuffer, error) {
	if !p.needsRecompress(records, s.compression.Codec) {
		return records, nil, nil
	}
	buf := recompressBuffers.Get().(*recompressBuffer)
	out := buf.b[:0]
	for rest := records; len(rest) > 0; {
		batch, next, _, err := record.NextBatch(rest)
		if err == nil {
			start := len(out)
			out, err = record.Recompress(out, batch, s.compression, maxDecompressedBatchBytes)
			if err == nil && int64(len(out)-start) > s.maxMessageBytes {
				err = fmt.Errorf("%d bytes once %v-compressed, max.message.bytes %d: %w",
					len(out)-start, s.compression.Codec, s.maxMessageBytes, ErrMessageTooLarge)
			}
		}
		if err != nil {
			buf.b = out
			releaseRecompressBuffer(buf)
			return nil, nil, fmt.Errorf("partition %s: compression.type %v: %w", p.tp, s.compression.Codec, err)
		}
		rest = next
	}
	buf.b = out
	return out, buf, nil
}

// needsRecompress says whether any batch is in another codec than the
// topic's (checkBatches has parsed every header already).
func (p *Partition) needsRecompress(records []byte, codec record.Codec) bool {
	for rest := records; len(rest) > 0; {
		_, next, h, err := record.NextBatch(rest)
		if err != nil || (h.Codec() != codec && h.RecordCount > 0) {
			return true // an error is reported by recompress
		}
		rest = next
	}
	return false
}
