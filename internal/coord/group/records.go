package group

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The records of __consumer_offsets, in Kafka's shapes (its
// group-coordinator message schemas), so the topic reads as Kafka's would.
// These layouts are on disk: they must not change. Strings are an int16
// length and bytes, nullable strings use length -1 for null; bytes are an
// int32 length and bytes; arrays an int32 count.
//
//	key, versions 0 and 1 (offset commit):
//	  version int16 | group string | topic string | partition int32
//	key, version 2 (group metadata):
//	  version int16 | group string
//
//	offset commit value (a null value is a tombstone):
//	  v0: version | offset int64 | metadata string | commit_timestamp int64
//	  v1: version | offset int64 | metadata string | commit_timestamp int64 | expire_timestamp int64
//	  v2: version | offset int64 | metadata string | commit_timestamp int64
//	  v3: version | offset int64 | leader_epoch int32 | metadata string | commit_timestamp int64
//
//	group metadata value (a null value is a tombstone: the group is deleted):
//	  version int16 | protocol_type string | generation int32 |
//	  protocol nullable string | leader nullable string |
//	  current_state_timestamp int64 (v2+) | members array of:
//	    member_id string | group_instance_id nullable string (v3+) |
//	    client_id string | client_host string |
//	    rebalance_timeout int32 (v1+) | session_timeout int32 |
//	    subscription bytes | assignment bytes
//
// Sluice writes key version 1 and 2, offset value v3 (v1 when the commit
// carries an expire timestamp, as Kafka does) and group value v3; it reads
// every version above. Flexible versions (offset value v4, group value v4)
// are not read: only Kafka 3.x+ writes them and we never share a log with it.
const (
	keyVersionOffsetCommit = 1
	keyVersionGroup        = 2

	offsetValueVersionWithExpiry = 1
	offsetValueVersion           = 3
	groupValueVersion            = 3
)

// ErrCorruptRecord: a __consumer_offsets record does not parse. Replay
// stops the shard's load with it (a corrupt log is not silently skipped).
var ErrCorruptRecord = errors.New("corrupt __consumer_offsets record")

// Record is one __consumer_offsets record: Value nil is a tombstone.
type Record struct {
	Key, Value []byte
	// Transactional records (TxnOffsetCommit) are written in a
	// transactional batch of their producer, with no sequence, so the
	// producer's COMMIT or ABORT marker on the partition settles them.
	Transactional bool
	ProducerID    int64
	ProducerEpoch int16
}

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Offset is one committed offset.
type Offset struct {
	Offset            int64
	LeaderEpoch       int32 // -1 unknown
	Metadata          string
	CommitTimestampMs int64
	ExpireTimestampMs int64 // -1: expires by the retention rule
	// logOrder places the offset's record among the shard's offset records
	// in log order (Shard.nextLogOrder); not stored. A transaction's
	// offsets replace only older ones when its COMMIT arrives.
	logOrder int64
}

// groupRecordMember is a member as a group metadata record holds it.
type groupRecordMember struct {
	memberID, instanceID, clientID, clientHost string
	rebalanceTimeoutMs, sessionTimeoutMs       int32
	subscription, assignment                   []byte
}

// groupRecord is a decoded group metadata value.
type groupRecord struct {
	protocolType     string
	generation       int32
	protocol         string
	leader           string
	stateTimestampMs int64
	members          []groupRecordMember
}

// offsetKey encodes the key of group's offset for tp.
func offsetKey(group string, tp TopicPartition) []byte {
	b := make([]byte, 0, 2+2+len(group)+2+len(tp.Topic)+4)
	b = binary.BigEndian.AppendUint16(b, keyVersionOffsetCommit)
	b = appendString(b, group)
	b = appendString(b, tp.Topic)
	return binary.BigEndian.AppendUint32(b, uint32(tp.Partition))
}

// groupKey encodes the key of group's metadata.
func groupKey(group string) []byte {
	b := make([]byte, 0, 4+len(group))
	b = binary.BigEndian.AppendUint16(b, keyVersionGroup)
	return appendString(b, group)
}

func offsetValue(o Offset) []byte {
	b := make([]byte, 0, 40+len(o.Metadata))
	if o.ExpireTimestampMs >= 0 {
		b = binary.BigEndian.AppendUint16(b, offsetValueVersionWithExpiry)
		b = binary.BigEndian.AppendUint64(b, uint64(o.Offset))
		b = appendString(b, o.Metadata)
		b = binary.BigEndian.AppendUint64(b, uint64(o.CommitTimestampMs))
		return binary.BigEndian.AppendUint64(b, uint64(o.ExpireTimestampMs))
	}
	b = binary.BigEndian.AppendUint16(b, offsetValueVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(o.Offset))
	b = binary.BigEndian.AppendUint32(b, uint32(o.LeaderEpoch))
	b = appendString(b, o.Metadata)
	return binary.BigEndian.AppendUint64(b, uint64(o.CommitTimestampMs))
}

func groupValue(r *groupRecord) []byte {
	b := make([]byte, 0, 64)
	b = binary.BigEndian.AppendUint16(b, groupValueVersion)
	b = appendString(b, r.protocolType)
	b = binary.BigEndian.AppendUint32(b, uint32(r.generation))
	b = appendNullableString(b, r.protocol)
	b = appendNullableString(b, r.leader)
	b = binary.BigEndian.AppendUint64(b, uint64(r.stateTimestampMs))
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.members)))
	for i := range r.members {
		m := &r.members[i]
		b = appendString(b, m.memberID)
		b = appendNullableString(b, m.instanceID)
		b = appendString(b, m.clientID)
		b = appendString(b, m.clientHost)
		b = binary.BigEndian.AppendUint32(b, uint32(m.rebalanceTimeoutMs))
		b = binary.BigEndian.AppendUint32(b, uint32(m.sessionTimeoutMs))
		b = appendBytes(b, m.subscription)
		b = appendBytes(b, m.assignment)
	}
	return b
}

// maxRecordString is the longest string a record holds: Kafka's record
// schemas give strings an int16 length. Requests can carry longer ones
// (compact strings in flexible versions), so every string that reaches a
// record is checked against it first (checkRecordStrings): a length that
// wrapped would make the record read back as another key.
const maxRecordString = math.MaxInt16

// checkRecordStrings rejects strings a record cannot hold.
func checkRecordStrings(strs ...string) error {
	for _, s := range strs {
		if len(s) > maxRecordString {
			return fmt.Errorf("a string of %d bytes, at most %d: %w", len(s), maxRecordString, ErrInvalidRequest)
		}
	}
	return nil
}

// checkGroupID rejects a group id no record can hold, or none at all.
func checkGroupID(id string) error {
	if id == "" || len(id) > maxRecordString {
		return fmt.Errorf("group id of %d bytes: %w", len(id), ErrInvalidGroupID)
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// appendNullableString writes "" as null, as Kafka does for an absent
// protocol, leader or instance id.
func appendNullableString(b []byte, s string) []byte {
	if s == "" {
		return binary.BigEndian.AppendUint16(b, 0xffff)
	}
	return appendString(b, s)
}

func appendBytes(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

// reader decodes big-endian fields, remembering the first failure.
type reader struct {
	b   []byte
	err error
}

func (r *reader) need(n int) bool {
	if r.err != nil {
		return false
	}
	if n < 0 || len(r.b) < n {
		r.err = ErrCorruptRecord
		return false
	}
	return true
}

func (r *reader) int16() int16 {
	if !r.need(2) {
		return 0
	}
	v := int16(binary.BigEndian.Uint16(r.b))
	r.b = r.b[2:]
	return v
}

func (r *reader) int32() int32 {
	if !r.need(4) {
		return 0
	}
	v := int32(binary.BigEndian.Uint32(r.b))
	r.b = r.b[4:]
	return v
}

func (r *reader) int64() int64 {
	if !r.need(8) {
		return 0
	}
	v := int64(binary.BigEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

// string reads a (nullable) string; null reads as "".
func (r *reader) string() string {
	n := int(r.int16())
	if n == -1 {
		return ""
	}
	if !r.need(n) {
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) bytes() []byte {
	n := int(r.int32())
	if n == -1 {
		return nil
	}
	if !r.need(n) {
		return nil
	}
	v := append([]byte(nil), r.b[:n]...)
	r.b = r.b[n:]
	return v
}

// parsedKey is a decoded key: group metadata when isGroup, else an offset.
type parsedKey struct {
	isGroup bool
	group   string
	tp      TopicPartition
}

func parseKey(b []byte) (parsedKey, error) {
	r := reader{b: b}
	version := r.int16()
	k := parsedKey{group: r.string()}
	switch version {
	case 0, 1:
		k.tp.Topic = r.string()
		k.tp.Partition = r.int32()
	case 2:
		k.isGroup = true
	default:
		// Kafka 3.x's newer coordinators write other key versions (e.g.
		// consumer-protocol groups); they are not ours to interpret.
		return k, fmt.Errorf("key version %d: %w", version, ErrCorruptRecord)
	}
	return k, r.err
}

func parseOffsetValue(b []byte) (Offset, error) {
	r := reader{b: b}
	o := Offset{LeaderEpoch: -1, ExpireTimestampMs: -1}
	version := r.int16()
	if version < 0 || version > 3 {
		return o, fmt.Errorf("offset value version %d: %w", version, ErrCorruptRecord)
	}
	o.Offset = r.int64()
	if version >= 3 {
		o.LeaderEpoch = r.int32()
	}
	o.Metadata = r.string()
	o.CommitTimestampMs = r.int64()
	if version == 1 {
		o.ExpireTimestampMs = r.int64()
	}
	return o, r.err
}

func parseGroupValue(b []byte) (*groupRecord, error) {
	r := reader{b: b}
	version := r.int16()
	if version < 0 || version > 3 {
		return nil, fmt.Errorf("group value version %d: %w", version, ErrCorruptRecord)
	}
	g := &groupRecord{protocolType: r.string(), generation: r.int32(), protocol: r.string(), leader: r.string(), stateTimestampMs: -1}
	if version >= 2 {
		g.stateTimestampMs = r.int64()
	}
	n := int(r.int32())
	// Each member takes at least 24 bytes: bound the count by what is left
	// before allocating.
	if n < 0 || !r.need(n*24) {
		return nil, fmt.Errorf("group value: %d members: %w", n, ErrCorruptRecord)
	}
	g.members = make([]groupRecordMember, n)
	for i := range g.members {
		m := &g.members[i]
		m.memberID = r.string()
		if version >= 3 {
			m.instanceID = r.string()
		}
		m.clientID, m.clientHost = r.string(), r.string()
		if version >= 1 {
			m.rebalanceTimeoutMs = r.int32()
		}
		m.sessionTimeoutMs = r.int32()
		if version == 0 {
			m.rebalanceTimeoutMs = m.sessionTimeoutMs
		}
		m.subscription, m.assignment = r.bytes(), r.bytes()
	}
	return g, r.err
}
