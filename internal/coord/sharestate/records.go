package sharestate

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The records of __share_group_state, in Kafka 4.1's shapes (its
// ShareSnapshotKey/Value and ShareUpdateKey/Value schemas), so the topic
// reads as Kafka's would. These layouts are on disk: they must not change.
//
//	key (not flexible), both types:
//	  type int16 (0 ShareSnapshot, 1 ShareUpdate) |
//	  group_id string (int16 length) | topic_id uuid (16 bytes) | partition int32
//
//	ShareSnapshotValue, version 0 (flexible):
//	  version int16 | snapshot_epoch int32 | state_epoch int32 |
//	  leader_epoch int32 | start_offset int64 |
//	  create_timestamp int64 | write_timestamp int64 |
//	  state_batches compact array of:
//	    first_offset int64 | last_offset int64 | delivery_state int8 |
//	    delivery_count int16 | tagged fields
//	  tagged fields
//
//	ShareUpdateValue, version 0 (flexible):
//	  version int16 | snapshot_epoch int32 | leader_epoch int32 |
//	  start_offset int64 | state_batches (as above) | tagged fields
//
// A null value is a tombstone (DeleteShareGroupState). Tagged fields are
// written empty and skipped when read (Kafka 4.2 adds
// DeliveryCompleteCount as tag 0; it is not needed to rebuild the state).
const (
	typeSnapshot = 0
	typeUpdate   = 1
	valueVersion = 0
)

// ErrCorruptRecord: a __share_group_state record that does not parse.
var ErrCorruptRecord = errors.New("corrupt share state record")

// Record is one __share_group_state record: Value nil is a tombstone.
type Record struct {
	Key, Value []byte
}

func encodeKey(typ int16, k Key) []byte {
	b := make([]byte, 0, 2+2+len(k.GroupID)+16+4)
	b = binary.BigEndian.AppendUint16(b, uint16(typ))
	b = binary.BigEndian.AppendUint16(b, uint16(len(k.GroupID)))
	b = append(b, k.GroupID...)
	b = append(b, k.TopicID[:]...)
	return binary.BigEndian.AppendUint32(b, uint32(k.Partition))
}

func decodeKey(b []byte) (typ int16, k Key, err error) {
	r := reader{b: b}
	typ = r.int16()
	n := int(r.int16())
	k.GroupID = string(r.bytes(n))
	copy(k.TopicID[:], r.bytes(16))
	k.Partition = r.int32()
	if r.err != nil || len(r.b) != 0 || (typ != typeSnapshot && typ != typeUpdate) {
		return 0, Key{}, fmt.Errorf("key: %w", ErrCorruptRecord)
	}
	return typ, k, nil
}

// snapshot is a ShareSnapshotValue.
type snapshot struct {
	SnapshotEpoch     int32
	StateEpoch        int32
	LeaderEpoch       int32
	StartOffset       int64
	CreateTimestampMs int64
	WriteTimestampMs  int64
	Batches           []Batch
}

// update is a ShareUpdateValue.
type update struct {
	SnapshotEpoch int32
	LeaderEpoch   int32
	StartOffset   int64
	Batches       []Batch
}

func encodeSnapshot(s snapshot) []byte {
	b := make([]byte, 0, 48+len(s.Batches)*20)
	b = binary.BigEndian.AppendUint16(b, valueVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(s.SnapshotEpoch))
	b = binary.BigEndian.AppendUint32(b, uint32(s.StateEpoch))
	b = binary.BigEndian.AppendUint32(b, uint32(s.LeaderEpoch))
	b = binary.BigEndian.AppendUint64(b, uint64(s.StartOffset))
	b = binary.BigEndian.AppendUint64(b, uint64(s.CreateTimestampMs))
	b = binary.BigEndian.AppendUint64(b, uint64(s.WriteTimestampMs))
	b = appendBatches(b, s.Batches)
	return append(b, 0) // no tagged fields
}

func encodeUpdate(u update) []byte {
	b := make([]byte, 0, 24+len(u.Batches)*20)
	b = binary.BigEndian.AppendUint16(b, valueVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(u.SnapshotEpoch))
	b = binary.BigEndian.AppendUint32(b, uint32(u.LeaderEpoch))
	b = binary.BigEndian.AppendUint64(b, uint64(u.StartOffset))
	b = appendBatches(b, u.Batches)
	return append(b, 0)
}

func appendBatches(b []byte, batches []Batch) []byte {
	b = binary.AppendUvarint(b, uint64(len(batches)+1))
	for _, x := range batches {
		b = binary.BigEndian.AppendUint64(b, uint64(x.FirstOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(x.LastOffset))
		b = append(b, byte(x.DeliveryState))
		b = binary.BigEndian.AppendUint16(b, uint16(x.DeliveryCount))
		b = append(b, 0)
	}
	return b
}

func decodeSnapshot(b []byte, maxBatches int) (snapshot, error) {
	r := reader{b: b}
	var s snapshot
	if v := r.int16(); v != valueVersion && r.err == nil {
		return s, fmt.Errorf("snapshot value version %d: %w", v, ErrCorruptRecord)
	}
	s.SnapshotEpoch, s.StateEpoch, s.LeaderEpoch = r.int32(), r.int32(), r.int32()
	s.StartOffset, s.CreateTimestampMs, s.WriteTimestampMs = r.int64(), r.int64(), r.int64()
	s.Batches = r.batches(maxBatches)
	r.skipTags()
	if r.err != nil {
		return s, fmt.Errorf("snapshot value: %w", r.err)
	}
	return s, nil
}

func decodeUpdate(b []byte, maxBatches int) (update, error) {
	r := reader{b: b}
	var u update
	if v := r.int16(); v != valueVersion && r.err == nil {
		return u, fmt.Errorf("update value version %d: %w", v, ErrCorruptRecord)
	}
	u.SnapshotEpoch, u.LeaderEpoch, u.StartOffset = r.int32(), r.int32(), r.int64()
	u.Batches = r.batches(maxBatches)
	r.skipTags()
	if r.err != nil {
		return u, fmt.Errorf("update value: %w", r.err)
	}
	return u, nil
}

// reader decodes big-endian fields, remembering the first error; every
// length is checked against the bytes left before anything is allocated.
type reader struct {
	b   []byte
	err error
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.fail()
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = ErrCorruptRecord
	}
	r.b = nil
}

func (r *reader) int16() int16 {
	if b := r.bytes(2); b != nil {
		return int16(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (r *reader) int32() int32 {
	if b := r.bytes(4); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}

func (r *reader) int64() int64 {
	if b := r.bytes(8); b != nil {
		return int64(binary.BigEndian.Uint64(b))
	}
	return 0
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// batchBytes is one encoded state batch with its empty tag section.
const batchBytes = 8 + 8 + 1 + 2 + 1

func (r *reader) batches(maxBatches int) []Batch {
	n := r.uvarint()
	if n == 0 || r.err != nil {
		return nil // a null array: no batches
	}
	count := int(n - 1)
	if n-1 > uint64(maxBatches) || count*batchBytes > len(r.b) {
		r.fail()
		return nil
	}
	out := make([]Batch, count)
	for i := range out {
		out[i] = Batch{FirstOffset: r.int64(), LastOffset: r.int64()}
		if b := r.bytes(1); b != nil {
			out[i].DeliveryState = int8(b[0])
		}
		out[i].DeliveryCount = r.int16()
		r.skipTags()
	}
	return out
}

func (r *reader) skipTags() {
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		r.uvarint()
		r.bytes(int(min(r.uvarint(), uint64(len(r.b)+1))))
	}
}
