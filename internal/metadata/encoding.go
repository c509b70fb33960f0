package metadata

import (
	"encoding/binary"
	"fmt"
)

// Record encoding. It is on disk (the metadata log and its snapshots) and
// on the wire between controllers, so it MUST NOT CHANGE: fields may be
// added under new tags, never renumbered, retyped or reused.
//
//	record  := uvarint type | uvarint version | field*
//	field   := uvarint tag | uvarint length | payload (length bytes)
//
// Fields come in strictly increasing tag order and run to the end of the
// record. A reader skips tags it does not know, so a newer writer can add
// fields without breaking older readers; a field that is absent takes its
// zero value, and writers omit zero values. The version changes only for
// a change an old reader must not misread; a reader refuses versions above
// the one it knows.
//
// Payloads by field type:
//
//	integer     zig-zag varint (int8 .. int64), uvarint for Port
//	bool        uvarint 1 (absent when false)
//	string      the bytes (absent when empty)
//	UUID        16 bytes (absent when zero)
//	[]int32     uvarint count | count × zig-zag varint (absent when nil,
//	            present with count 0 when empty: PartitionChange tells
//	            "unchanged" from "empty" apart)
//	[]Listener  uvarint count | count × (uvarint length | listener fields)
//
// Tags (version 0 of every type):
//
//	RegisterBroker    0 BrokerID, 1 Incarnation, 2 BrokerEpoch, 3 Listeners, 4 Rack, 5 Fenced
//	Listener          0 Name, 1 Host, 2 Port, 3 SecurityProtocol
//	UnregisterBroker  0 BrokerID, 1 BrokerEpoch
//	FenceBroker       0 BrokerID, 1 BrokerEpoch
//	UnfenceBroker     0 BrokerID, 1 BrokerEpoch
//	Topic             0 Name, 1 ID
//	Partition         0 TopicID, 1 Partition, 2 Replicas, 3 ISR, 4 Leader, 5 LeaderEpoch, 6 PartitionEpoch
//	PartitionChange   0 TopicID, 1 Partition, 2 Leader, 3 ISR, 4 Replicas
//	RemoveTopic       0 TopicID
//	Config            0 ResourceType, 1 ResourceName, 2 Name, 3 Value, 4 Delete
//	ProducerIDs       0 BrokerID, 1 BrokerEpoch, 2 NextProducerID
//	FeatureLevel      0 Name, 1 Level
//	AccessControlEntry 0 ID, 1 ResourceType, 2 ResourceName, 3 PatternType, 4 Principal,
//	                   5 Host, 6 Operation, 7 Permission (the enums in Kafka's numbering)
//	RemoveAccessControlEntry 0 ID
//	UserScramCredential        0 Name, 1 Mechanism, 2 Salt, 3 StoredKey, 4 ServerKey, 5 Iterations (2-4: raw bytes, as strings)
//	RemoveUserScramCredential  0 Name, 1 Mechanism
//	ClientQuota       0 Entity, 1 Key, 2 Value, 3 Remove (quota.go)
//
// testdata/records.golden holds an encoding of every type; a change to it
// in review is a format change.
const recordVersion = 0

// Decoding limits. Every length and count is checked against the bytes
// left before anything is allocated, and a record may allocate at most
// decodeAllocFactor times its size plus decodeAllocSlack (the record
// struct itself, and the worst case of legitimate small records: a
// replica list of one-byte broker ids decodes to four bytes per id, and
// there are only 128 one-byte ids).
const (
	decodeAllocFactor = 2
	decodeAllocSlack  = 1024
)

// AppendRecord appends the encoding of r to dst. r must be one of this
// package's record types, and not nil: anything else is a programming
// error and panics.
func AppendRecord(dst []byte, r Record) []byte {
	dst = binary.AppendUvarint(dst, uint64(r.Type()))
	dst = binary.AppendUvarint(dst, recordVersion)
	w := fieldWriter{b: dst}
	switch r := r.(type) {
	case *RegisterBroker:
		w.int(0, int64(r.BrokerID))
		w.uuid(1, r.Incarnation)
		w.int(2, r.BrokerEpoch)
		if len(r.Listeners) > 0 {
			w.bytes(3, appendListeners(nil, r.Listeners))
		}
		w.string(4, r.Rack)
		w.bool(5, r.Fenced)
	case *UnregisterBroker:
		w.int(0, int64(r.BrokerID))
		w.int(1, r.BrokerEpoch)
	case *FenceBroker:
		w.int(0, int64(r.BrokerID))
		w.int(1, r.BrokerEpoch)
	case *UnfenceBroker:
		w.int(0, int64(r.BrokerID))
		w.int(1, r.BrokerEpoch)
	case *Topic:
		w.string(0, r.Name)
		w.uuid(1, r.ID)
	case *Partition:
		w.uuid(0, r.TopicID)
		w.int(1, int64(r.Partition))
		w.int32s(2, r.Replicas)
		w.int32s(3, r.ISR)
		w.int(4, int64(r.Leader))
		w.int(5, int64(r.LeaderEpoch))
		w.int(6, int64(r.PartitionEpoch))
	case *PartitionChange:
		w.uuid(0, r.TopicID)
		w.int(1, int64(r.Partition))
		w.int(2, int64(r.Leader))
		w.int32s(3, r.ISR)
		w.int32s(4, r.Replicas)
	case *RemoveTopic:
		w.uuid(0, r.TopicID)
	case *Config:
		w.int(0, int64(r.ResourceType))
		w.string(1, r.ResourceName)
		w.string(2, r.Name)
		w.string(3, r.Value)
		w.bool(4, r.Delete)
	case *ProducerIDs:
		w.int(0, int64(r.BrokerID))
		w.int(1, r.BrokerEpoch)
		w.int(2, r.NextProducerID)
	case *FeatureLevel:
		w.string(0, r.Name)
		w.int(1, int64(r.Level))
	case *AccessControlEntry:
		appendAccessControlEntry(&w, r)
	case *RemoveAccessControlEntry:
		w.uuid(0, r.ID)
	case *ClientQuota:
		appendClientQuota(&w, r)
	default:
		if appendScramRecord(&w, r) {
			break
		}
		panic(fmt.Sprintf("metadata: AppendRecord of unknown record %T", r))
	}
	return w.b
}

func appendListeners(dst []byte, listeners []Listener) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(listeners)))
	var scratch []byte
	for _, l := range listeners {
		scratch = appendListener(scratch[:0], l)
		dst = binary.AppendUvarint(dst, uint64(len(scratch)))
		dst = append(dst, scratch...)
	}
	return dst
}

// DecodeRecord decodes one record that is exactly b. It never panics and,
// whatever b holds, allocates at most about twice len(b).
func DecodeRecord(b []byte) (Record, error) {
	typ, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, fmt.Errorf("record type: %w", ErrCorrupt)
	}
	version, m := binary.Uvarint(b[n:])
	if m <= 0 {
		return nil, fmt.Errorf("record version: %w", ErrCorrupt)
	}
	decode, ok := decoders[typ]
	if !ok {
		return nil, fmt.Errorf("record type %d: %w", typ, ErrUnknownRecordType)
	}
	if version > recordVersion {
		return nil, fmt.Errorf("record type %d version %d (know up to %d): %w", typ, version, recordVersion, ErrUnsupportedVersion)
	}
	r := newFieldReader(b[n+m:], len(b))
	rec := decode(r)
	if r.err != nil {
		return nil, fmt.Errorf("record type %d: %w", typ, r.err)
	}
	return rec, nil
}

// decoders decode the fields of each record type. Each is a loop over the
// fields that ignores tags it does not know.
var decoders = map[uint64]func(*fieldReader) Record{
	uint64(TypeRegisterBroker):            decodeRegisterBroker,
	uint64(TypeUnregisterBroker):          decodeUnregisterBroker,
	uint64(TypeFenceBroker):               decodeFenceBroker,
	uint64(TypeUnfenceBroker):             decodeUnfenceBroker,
	uint64(TypeTopic):                     decodeTopic,
	uint64(TypePartition):                 decodePartition,
	uint64(TypePartitionChange):           decodePartitionChange,
	uint64(TypeRemoveTopic):               decodeRemoveTopic,
	uint64(TypeConfig):                    decodeConfig,
	uint64(TypeProducerIDs):               decodeProducerIDs,
	uint64(TypeFeatureLevel):              decodeFeatureLevel,
	uint64(TypeUserScramCredential):       decodeUserScramCredential,
	uint64(TypeRemoveUserScramCredential): decodeRemoveUserScramCredential,
	uint64(TypeClientQuota):               decodeClientQuota,

	uint64(TypeAccessControlEntry):       decodeAccessControlEntry,
	uint64(TypeRemoveAccessControlEntry): decodeRemoveAccessControlEntry,
}

func decodeRegisterBroker(r *fieldReader) Record {
	rec := &RegisterBroker{}
	for r.next() {
		switch r.tag {
		case 0:
			rec.BrokerID = r.int32()
		case 1:
			rec.Incarnation = r.uuid()
		case 2:
			rec.BrokerEpoch = r.int64()
		case 3:
			rec.Listeners = r.listeners()
		case 4:
			rec.Rack = r.string()
		case 5:
			rec.Fenced = r.bool()
		}
	}
	return rec
}

// decodeBrokerEpoch reads the fields shared by the records that name a
// broker registration: 0 BrokerID, 1 BrokerEpoch.
func decodeBrokerEpoch(r *fieldReader) (id int32, epoch int64) {
	for r.next() {
		switch r.tag {
		case 0:
			id = r.int32()
		case 1:
			epoch = r.int64()
		}
	}
	return id, epoch
}

func decodeUnregisterBroker(r *fieldReader) Record {
	id, epoch := decodeBrokerEpoch(r)
	return &UnregisterBroker{BrokerID: id, BrokerEpoch: epoch}
}

func decodeFenceBroker(r *fieldReader) Record {
	id, epoch := decodeBrokerEpoch(r)
	return &FenceBroker{BrokerID: id, BrokerEpoch: epoch}
}

func decodeUnfenceBroker(r *fieldReader) Record {
	id, epoch := decodeBrokerEpoch(r)
	return &UnfenceBroker{BrokerID: id, BrokerEpoch: epoch}
}

func decodeTopic(r *fieldReader) Record {
	rec := &Topic{}
	for r.next() {
		switch r.tag {
		case 0:
			rec.Name = r.string()
		case 1:
			rec.ID = r.uuid()
		}
	}
	return rec
}

func decodePartition(r *fieldReader) Record {
	rec := &Partition{}
	for r.next() {
		switch r.tag {
		case 0:
			rec.TopicID = r.uuid()
		case 1:
			rec.Partition = r.int32()
		case 2:
			rec.Replicas = r.int32s()
		case 3:
			rec.ISR = r.int32s()
		case 4:
			rec.Leader = r.int32()
		case 5:
			rec.LeaderEpoch = r.int32()
		case 6:
			rec.PartitionEpoch = r.int32()
		}
	}
	return rec
}

func decodePartitionChange(r *fieldReader) Record {
	rec := &PartitionChange{}
	for r.next() {
		switch r.tag {
		case 0:
			rec.TopicID = r.uuid()
		case 1:
			rec.Partition = r.int32()
		case 2:
			rec.Leader = r.int32()
		case 3:
			rec.ISR = r.int32s()
		case 4:
			rec.Replicas = r.int32s()
		}
	}
	return rec
}

func decodeRemoveTopic(r *fieldReader) Record {
	rec := &RemoveTopic{}
	for r.next() {
		if r.tag == 0 {
			rec.TopicID = r.uuid()
		}
	}
	return rec
}

func decodeConfig(r *fieldReader) Record {
	rec := &Config{}
	for r.next() {
		switch r.tag {
		case 0:
			rec.ResourceType = ConfigResourceType(r.int8())
		case 1:
			rec.ResourceName = r.string()
		case 2:
			rec.Name = r.string()
		case 3:
			rec.Value = r.string()
		case 4:
			rec.Delete = r.bool()
		}
	}
	return rec
}

func decodeProducerIDs(r *fieldReader) Record {
	rec := &ProducerIDs{}
	for r.next() {
		switch r.tag {
		case 0:
			rec.BrokerID = r.int32()
		case 1:
			rec.BrokerEpoch = r.int64()
		case 2:
			rec.NextProducerID = r.int64()
		}
	}
	return rec
}

func decodeFeatureLevel(r *fieldReader) Record {
	rec := &FeatureLevel{}
	for r.next() {
		switch r.tag {
		case 0:
			rec.Name = r.string()
		case 1:
			rec.Level = r.int16()
		}
	}
	return rec
}
