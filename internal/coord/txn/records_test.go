package txn

import (
	"bytes"
	"testing"
)

// TestTxnRecordsRoundTrip: every field of a value survives encode and
// decode, with the partitions grouped by topic as Kafka writes them.
func TestTxnRecordsRoundTrip(t *testing.T) {
	m := &Metadata{ProducerID: 1 << 40, ProducerEpoch: 32000, TimeoutMs: 60000, State: StatePrepareCommit,
		Partitions: []TopicPartition{{"a", 0}, {"a", 7}, {"b", 3}}, StartTimestampMs: 5, LastUpdateTimestampMs: 9}
	got, err := decodeValue(transactionValue(m))
	if err != nil {
		t.Fatal(err)
	}
	if got.ProducerID != m.ProducerID || got.ProducerEpoch != m.ProducerEpoch || got.TimeoutMs != m.TimeoutMs ||
		got.State != m.State || len(got.Partitions) != 3 || got.Partitions[1] != m.Partitions[1] ||
		got.StartTimestampMs != 5 || got.LastUpdateTimestampMs != 9 || got.LastProducerEpoch != -1 {
		t.Fatalf("round trip: %+v", got)
	}
	id, err := decodeKey(transactionKey("tx"))
	if err != nil || id != "tx" {
		t.Fatalf("key: %q %v", id, err)
	}
	// Kafka writes a null partition list for Empty.
	empty := transactionValue(&Metadata{State: StateEmpty})
	if !bytes.Contains(empty, []byte{0xff, 0xff, 0xff, 0xff}) {
		t.Fatal("Empty value has no null partition list")
	}
}

// FuzzTxnRecords: __transaction_state records come from disk (and could
// come from another broker's log): decoding must never panic or allocate
// beyond the bytes it has, and what it accepts must encode back the same.
func FuzzTxnRecords(f *testing.F) {
	f.Add(transactionKey("t"), transactionValue(&Metadata{State: StateOngoing, Partitions: []TopicPartition{{"x", 1}}}))
	f.Add([]byte{0, 1, 0, 0}, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		s := NewShard(Config{MaxTimeoutMs: 1000})
		_ = s.Load(key, value)
		m, err := decodeValue(value)
		if err != nil {
			return
		}
		again, err := decodeValue(transactionValue(m))
		if err != nil || again.ProducerID != m.ProducerID || len(again.Partitions) != len(m.Partitions) {
			t.Fatalf("accepted value does not round-trip: %+v / %+v %v", m, again, err)
		}
	})
}
