package record

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Transaction markers: the control batches a partition leader writes when
// the transaction coordinator ends a producer's transaction (Kafka's
// EndTransactionMarker). Must never change: every Kafka client parses them.
//
// A marker is a batch with the transactional and control attributes set,
// the producer's id and epoch, base sequence -1, and one record:
//
//	key    int16 version (= 0)   int16 type (0 = ABORT, 1 = COMMIT)
//	value  int16 version (= 0)   int32 coordinator epoch
//
// All integers are big-endian.
const (
	controlKeySize         = 4
	controlValueMinSize    = 6
	controlKeyVersion      = 0
	controlValueVersion    = 0
	maxControlBatchRecords = 1
)

// ControlType is the type in a control record's key.
type ControlType int16

// Kafka's ControlRecordType values that carry transactions.
const (
	ControlAbort  ControlType = 0
	ControlCommit ControlType = 1
)

func (t ControlType) String() string {
	switch t {
	case ControlAbort:
		return "ABORT"
	case ControlCommit:
		return "COMMIT"
	}
	return fmt.Sprintf("ControlType(%d)", int16(t))
}

// ErrNotMarker: a control batch that is not a transaction marker (a
// leader-change or snapshot control record, or an unknown type).
var ErrNotMarker = errors.New("control batch is not a transaction marker")

// Marker is a decoded transaction marker.
type Marker struct {
	Type             ControlType
	CoordinatorEpoch int32
}

// AppendMarker appends a transaction marker batch for the producer to dst,
// at base offset 0 (the log assigns the real one).
func AppendMarker(dst []byte, producerID int64, producerEpoch int16, m Marker, timestampMs int64) ([]byte, error) {
	key := binary.BigEndian.AppendUint16(make([]byte, 0, controlKeySize), controlKeyVersion)
	key = binary.BigEndian.AppendUint16(key, uint16(m.Type))
	value := binary.BigEndian.AppendUint16(make([]byte, 0, controlValueMinSize), controlValueVersion)
	value = binary.BigEndian.AppendUint32(value, uint32(m.CoordinatorEpoch))
	return AppendBatch(dst, BatchOptions{
		FirstTimestamp: timestampMs, ProducerID: producerID, ProducerEpoch: producerEpoch,
		BaseSequence: -1, Transactional: true, Control: true,
		PartitionLeaderEpoch: -1,
	}, []Record{{Key: key, Value: value}})
}

// ParseMarker decodes the marker of a whole control batch. Control batches
// are never compressed by Kafka, but the records are read through the
// codec anyway so a compressed one decodes too.
func ParseMarker(batch []byte) (Marker, error) {
	h, err := ParseHeader(batch)
	if err != nil {
		return Marker{}, err
	}
	if !h.IsControl() {
		return Marker{}, fmt.Errorf("batch at %d: %w", h.BaseOffset, ErrNotMarker)
	}
	var m Marker
	found := 0
	err = Records(batch, 1<<10, func(r *Record) error {
		found++
		if found > maxControlBatchRecords {
			return fmt.Errorf("control batch at %d has more than one record: %w", h.BaseOffset, ErrInvalidRecord)
		}
		if len(r.Key) < controlKeySize || binary.BigEndian.Uint16(r.Key) != controlKeyVersion {
			return fmt.Errorf("control record key %x: %w", r.Key, ErrInvalidRecord)
		}
		m.Type = ControlType(binary.BigEndian.Uint16(r.Key[2:]))
		if m.Type != ControlAbort && m.Type != ControlCommit {
			return fmt.Errorf("control type %v: %w", m.Type, ErrNotMarker)
		}
		if len(r.Value) < controlValueMinSize {
			return fmt.Errorf("marker value %x: %w", r.Value, ErrInvalidRecord)
		}
		m.CoordinatorEpoch = int32(binary.BigEndian.Uint32(r.Value[2:]))
		return nil
	})
	if err != nil {
		return Marker{}, err
	}
	if found == 0 {
		return Marker{}, fmt.Errorf("control batch at %d has no record: %w", h.BaseOffset, ErrInvalidRecord)
	}
	return m, nil
}
