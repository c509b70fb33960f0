package sharestate

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// TestShareStateRecordBytes pins the on-disk layout against bytes written
// out by hand from Kafka's schemas.
func TestShareStateRecordBytes(t *testing.T) {
	k := Key{GroupID: "g", Partition: 3}
	k.TopicID[15] = 1
	want, _ := hex.DecodeString("0001" + "0001" + "67" + "00000000000000000000000000000001" + "00000003")
	if got := encodeKey(typeUpdate, k); !bytes.Equal(got, want) {
		t.Fatalf("update key %x, want %x", got, want)
	}
	u := update{SnapshotEpoch: 2, LeaderEpoch: 5, StartOffset: 7, Batches: []Batch{{FirstOffset: 7, LastOffset: 9, DeliveryState: 2, DeliveryCount: 1}}}
	want, _ = hex.DecodeString("0000" + "00000002" + "00000005" + "0000000000000007" + "02" +
		"0000000000000007" + "0000000000000009" + "02" + "0001" + "00" + "00")
	if got := encodeUpdate(u); !bytes.Equal(got, want) {
		t.Fatalf("update value %x, want %x", got, want)
	}
}

// TestShareStateRecordsRejectDamage checks every truncation of a snapshot
// value and key fails to load instead of misreading, and a count larger
// than the bytes left allocates nothing.
func TestShareStateRecordsRejectDamage(t *testing.T) {
	s := NewShard(Config{UpdatesPerSnapshot: 10, MaxBatches: 100, MaxStates: 10})
	k := Key{GroupID: "group", Partition: 1}
	key := encodeKey(typeSnapshot, k)
	value := encodeSnapshot(snapshot{StartOffset: 4, Batches: []Batch{{FirstOffset: 4, LastOffset: 8}, {FirstOffset: 9, LastOffset: 9, DeliveryState: 4, DeliveryCount: 3}}})
	for i := range len(value) - 1 {
		if err := s.Load(key, value[:i]); !errors.Is(err, ErrCorruptRecord) {
			t.Fatalf("value cut at %d: err %v", i, err)
		}
	}
	for i := range len(key) - 1 {
		if err := s.Load(key[:i], value); !errors.Is(err, ErrCorruptRecord) {
			t.Fatalf("key cut at %d: err %v", i, err)
		}
	}
	huge := append([]byte{}, value[:2+4*3+8*3]...)
	huge = append(huge, 0xff, 0xff, 0xff, 0x0f)
	if err := s.Load(key, huge); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("huge count: err %v", err)
	}
	if s.NumStates() != 0 {
		t.Fatalf("damaged records left %d states", s.NumStates())
	}
	if err := s.Load(key, value); err != nil || s.NumStates() != 1 {
		t.Fatalf("whole record: %v, %d states", err, s.NumStates())
	}
}
