package txn

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// The records of __transaction_state, in Kafka's shapes (its
// TransactionLogKey and TransactionLogValue schemas), so the topic reads
// as Kafka's would. These layouts are on disk: they must not change.
// Strings are an int16 length and bytes; arrays an int32 count, -1 null.
//
//	key, version 0:
//	  version int16 | transactional_id string
//
//	value, version 0 (a null value is a tombstone: the id expired):
//	  version int16 | producer_id int64 | producer_epoch int16 |
//	  transaction_timeout_ms int32 | transaction_status int8 |
//	  transaction_partitions nullable array of:
//	    topic string | partition_ids array of int32
//	  transaction_last_update_timestamp_ms int64 |
//	  transaction_start_timestamp_ms int64
//
// Sluice writes and reads value version 0. Version 1 (flexible, with the
// tagged previous/next producer ids and client transaction version of
// KIP-890 part 2) is written only by Kafka 4 coordinators serving
// transaction version 2, which Sluice does not serve; it is refused as
// corrupt rather than misread.
const (
	keyVersion   = 0
	valueVersion = 0
)

// Record is one __transaction_state record: Value nil is a tombstone.
type Record struct {
	Key, Value []byte
}

func transactionKey(id string) []byte {
	b := make([]byte, 0, 4+len(id))
	b = binary.BigEndian.AppendUint16(b, keyVersion)
	return appendString(b, id)
}

// transactionValue encodes m's persistent fields. Partitions are grouped
// by topic as Kafka groups them; m.Partitions is sorted, so each topic's
// partitions are adjacent.
func transactionValue(m *Metadata) []byte {
	b := make([]byte, 0, 48+len(m.Partitions)*8)
	b = binary.BigEndian.AppendUint16(b, valueVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(m.ProducerID))
	b = binary.BigEndian.AppendUint16(b, uint16(m.ProducerEpoch))
	b = binary.BigEndian.AppendUint32(b, uint32(m.TimeoutMs))
	b = append(b, byte(m.State))
	if m.State == StateEmpty {
		// Kafka writes a null partition list for Empty.
		b = binary.BigEndian.AppendUint32(b, math.MaxUint32)
	} else {
		topics := 0
		for i, tp := range m.Partitions {
			if i == 0 || m.Partitions[i-1].Topic != tp.Topic {
				topics++
			}
		}
		b = binary.BigEndian.AppendUint32(b, uint32(topics))
		for i := 0; i < len(m.Partitions); {
			j := i
			for j < len(m.Partitions) && m.Partitions[j].Topic == m.Partitions[i].Topic {
				j++
			}
			b = appendString(b, m.Partitions[i].Topic)
			b = binary.BigEndian.AppendUint32(b, uint32(j-i))
			for _, tp := range m.Partitions[i:j] {
				b = binary.BigEndian.AppendUint32(b, uint32(tp.Partition))
			}
			i = j
		}
	}
	b = binary.BigEndian.AppendUint64(b, uint64(m.LastUpdateTimestampMs))
	return binary.BigEndian.AppendUint64(b, uint64(m.StartTimestampMs))
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// maxRecordString is the longest string a record holds (an int16 length).
const maxRecordString = math.MaxInt16

// reader decodes big-endian fields, failing once on a short buffer.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil || n < 0 || len(r.b) < n {
		if r.err == nil {
			r.err = ErrCorruptRecord
		}
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) int8() int8 {
	if v := r.take(1); v != nil {
		return int8(v[0])
	}
	return 0
}

func (r *reader) int16() int16 {
	if v := r.take(2); v != nil {
		return int16(binary.BigEndian.Uint16(v))
	}
	return 0
}

func (r *reader) int32() int32 {
	if v := r.take(4); v != nil {
		return int32(binary.BigEndian.Uint32(v))
	}
	return 0
}

func (r *reader) int64() int64 {
	if v := r.take(8); v != nil {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

func (r *reader) string() string {
	n := r.int16()
	return string(r.take(int(n)))
}

// count reads an array count, checked against the bytes left (each element
// takes at least minSize bytes) so a corrupt count cannot allocate.
func (r *reader) count(minSize int) int {
	n := r.int32()
	if r.err == nil && (n < -1 || int(n)*minSize > len(r.b)) {
		r.err = ErrCorruptRecord
	}
	if r.err != nil {
		return 0 // nothing to loop over once the record is known bad
	}
	return int(n)
}

// decodeKey returns the transactional id of a __transaction_state key.
func decodeKey(key []byte) (string, error) {
	r := reader{b: key}
	if v := r.int16(); r.err == nil && v != keyVersion {
		return "", fmt.Errorf("%w: key version %d", ErrCorruptRecord, v)
	}
	id := r.string()
	if r.err != nil {
		return "", r.err
	}
	return id, nil
}

// decodeValue decodes a value into a Metadata (without its id).
func decodeValue(value []byte) (*Metadata, error) {
	r := reader{b: value}
	if v := r.int16(); r.err == nil && v != valueVersion {
		return nil, fmt.Errorf("%w: value version %d", ErrCorruptRecord, v)
	}
	m := &Metadata{LastProducerID: -1, LastProducerEpoch: -1}
	m.ProducerID = r.int64()
	m.ProducerEpoch = r.int16()
	m.TimeoutMs = r.int32()
	m.State = State(r.int8())
	topics := r.count(6)
	for range max(topics, 0) {
		topic := r.string()
		n := r.count(4)
		for range max(n, 0) {
			m.Partitions = append(m.Partitions, TopicPartition{Topic: topic, Partition: r.int32()})
		}
	}
	m.LastUpdateTimestampMs = r.int64()
	m.StartTimestampMs = r.int64()
	if r.err != nil {
		return nil, r.err
	}
	if m.State < StateEmpty || m.State > StatePrepareEpochFence {
		return nil, fmt.Errorf("%w: status %d", ErrCorruptRecord, m.State)
	}
	if m.State == StateEmpty {
		m.Partitions = nil // an Empty transaction has none, whatever a writer put there
	}
	slices.SortFunc(m.Partitions, compareTopicPartitions)
	m.Partitions = slices.Compact(m.Partitions)
	return m, nil
}
