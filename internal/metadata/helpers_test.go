package metadata

import (
	"errors"
	"reflect"
	"testing"

	"github.com/sluicelog/sluice/internal/auth"
)

// Test helpers, kept tiny.

func require(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		t.Fatalf(format, args...)
	}
}

func requireNoError(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func requireErrorIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}

func requireEqual(t testing.TB, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %#v\nwant %#v", got, want)
	}
}

// uuid returns a recognisable non-zero id.
func uuid(n byte) UUID { return UUID{0: 0xAA, 15: n} }

// apply replays records into a delta on base and applies it at the next
// offset, failing the test on any replay error.
func apply(t testing.TB, base *Image, records ...Record) *Image {
	t.Helper()
	d := NewDelta(base)
	for i, r := range records {
		if err := d.Replay(r); err != nil {
			t.Fatalf("record %d (%T %+v): %v", i, r, r, err)
		}
	}
	return d.Apply(base.Offset() + int64(len(records)))
}

// replayErr replays records into a delta on base and returns the error of
// the last one; the ones before it must succeed.
func replayErr(t testing.TB, base *Image, records ...Record) (*Delta, error) {
	t.Helper()
	d := NewDelta(base)
	for i, r := range records[:len(records)-1] {
		if err := d.Replay(r); err != nil {
			t.Fatalf("record %d (%T %+v): %v", i, r, r, err)
		}
	}
	return d, d.Replay(records[len(records)-1])
}

// encodeRecords encodes an image's records, to compare images as the
// bytes a snapshot of them would hold.
func encodeRecords(img *Image) []byte {
	var b []byte
	for _, r := range img.Records() {
		b = AppendRecord(b, r)
		b = append(b, '|')
	}
	return b
}

func requireSameImage(t testing.TB, got, want *Image) {
	t.Helper()
	requireEqual(t, got.Records(), want.Records())
	require(t, got.Offset() == want.Offset(), "offset %d, want %d", got.Offset(), want.Offset())
	require(t, got.NumPartitions() == want.NumPartitions(), "partitions %d, want %d", got.NumPartitions(), want.NumPartitions())
}

// sampleRecords has every record type with every field set, plus the
// zero-valued and edge cases the encoding treats specially. The golden
// file and the fuzz corpus start from it.
func sampleRecords() []struct {
	name   string
	record Record
} {
	return []struct {
		name   string
		record Record
	}{
		{"register-broker", &RegisterBroker{BrokerID: 1, Incarnation: uuid(1), BrokerEpoch: 42,
			Listeners: []Listener{{Name: "PLAINTEXT", Host: "localhost", Port: 9092, SecurityProtocol: "PLAINTEXT"},
				{Name: "SSL", Host: "b1.example", Port: 9093, SecurityProtocol: "SSL"}},
			Rack: "rack-a", Fenced: true}},
		{"register-broker-minimal", &RegisterBroker{}},
		{"unregister-broker", &UnregisterBroker{BrokerID: 2, BrokerEpoch: 7}},
		{"fence-broker", &FenceBroker{BrokerID: 3, BrokerEpoch: 1 << 40}},
		{"unfence-broker", &UnfenceBroker{BrokerID: 2147483647, BrokerEpoch: -1}},
		{"topic", &Topic{Name: "orders", ID: uuid(5)}},
		{"partition", &Partition{TopicID: uuid(5), Partition: 3, Replicas: []int32{1, 2, 300},
			ISR: []int32{2, 1}, Leader: 2, LeaderEpoch: 9, PartitionEpoch: 11}},
		{"partition-no-leader", &Partition{TopicID: uuid(5), Replicas: []int32{0}, ISR: []int32{}, Leader: NoLeader}},
		{"partition-change", &PartitionChange{TopicID: uuid(5), Partition: 3, Leader: 1,
			ISR: []int32{1}, Replicas: []int32{1, 2, 3}}},
		{"partition-change-isr-only", &PartitionChange{TopicID: uuid(5), Partition: 0, Leader: NoLeaderChange, ISR: []int32{0, 1}}},
		{"partition-change-empty-isr", &PartitionChange{TopicID: uuid(5), Leader: NoLeader, ISR: []int32{}}},
		{"remove-topic", &RemoveTopic{TopicID: uuid(5)}},
		{"config-topic", &Config{ResourceType: ConfigResourceTopic, ResourceName: "orders", Name: "retention.ms", Value: "86400000"}},
		{"config-delete", &Config{ResourceType: ConfigResourceBroker, ResourceName: "", Name: "log.retention.hours", Delete: true}},
		{"producer-ids", &ProducerIDs{BrokerID: 1, BrokerEpoch: 42, NextProducerID: 2000}},
		{"feature-level", &FeatureLevel{Name: "metadata.version", Level: 21}},
		{"access-control-entry", &AccessControlEntry{ID: uuid(9), Binding: auth.Binding{
			ResourceType: auth.ResourceTopic, ResourceName: "orders-", PatternType: auth.PatternPrefixed,
			Principal: "User:alice", Host: "*", Operation: auth.OpWrite, Permission: auth.PermissionDeny}}},
		{"remove-access-control-entry", &RemoveAccessControlEntry{ID: uuid(9)}},
		{"user-scram-credential", &UserScramCredential{Name: "alice", Mechanism: ScramSHA512, Salt: []byte("salt"), StoredKey: []byte{1, 2}, ServerKey: []byte{3, 4}, Iterations: 4096}},
		{"remove-user-scram-credential", &RemoveUserScramCredential{Name: "alice", Mechanism: ScramSHA256}},
		{"client-quota", &ClientQuota{Entity: []QuotaEntityPart{{Type: "user", Name: "alice"}, {Type: "client-id", Default: true}},
			Key: "producer_byte_rate", Value: 1048576}},
		{"client-quota-remove", &ClientQuota{Entity: []QuotaEntityPart{{Type: "ip", Name: "10.0.0.1"}}, Key: "connection_creation_rate", Remove: true}},
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// reflectZeroPointer returns a nil pointer of r's type, as a Record.
func reflectZeroPointer(r Record) Record {
	return reflect.Zero(reflect.TypeOf(r)).Interface().(Record)
}
