package sharegroup

import (
	"fmt"
	"testing"
)

// BenchmarkSharePartitionAcquireAccept: one fetch's worth of records (500)
// acquired and accepted, the share partition's work per ShareFetch round
// trip, in the steady state of a consumer keeping up (the SPSO follows).
func BenchmarkSharePartitionAcquireAccept(b *testing.B) {
	const batch = 500
	p := NewPartition(PartitionConfig{LockDurationMs: 30000, DeliveryCountLimit: 5, MaxRecordLocks: 2000}, 0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		now := int64(i)
		first, ok := p.FirstAcquirable(0, p.EndOffset()+batch)
		if !ok {
			b.Fatal("nothing to acquire")
		}
		got := p.Acquire("m", first+batch, batch, now)
		if len(got) != 1 || got[0].LastOffset-got[0].FirstOffset+1 != batch {
			b.Fatalf("acquired %v", got)
		}
		if err := p.Acknowledge("m", got[0].FirstOffset, got[0].LastOffset, AckAccept, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/record")
}

// BenchmarkShareGroupUnchangedHeartbeat: a steady member's heartbeat in a
// group of 100 members on a 1,000-partition topic and the records it
// takes (none): the share partitions record is checked against the whole
// assignment at every heartbeat.
func BenchmarkShareGroupUnchangedHeartbeat(b *testing.B) {
	cfg := GroupConfig{SessionTimeoutMs: 1 << 40, HeartbeatIntervalMs: 100, MaxSize: 1000}
	counts := testTopics(func(string) int32 { return 1000 })
	topicID := func(string) ([16]byte, bool) { return [16]byte{1}, true }
	g := NewGroup("g")
	for i := range 100 {
		if _, err := g.Heartbeat(cfg, Heartbeat{MemberID: fmt.Sprint("m", i), SubscribedTopicNames: []string{"t"}}, counts, 0); err != nil {
			b.Fatal(err)
		}
	}
	g.TakeRecords(topicID)
	// m0 joined at epoch 1: its next heartbeat moves it to the group's.
	if _, err := g.Heartbeat(cfg, Heartbeat{MemberID: "m0", MemberEpoch: 1}, counts, 0); err != nil {
		b.Fatal(err)
	}
	g.TakeRecords(topicID)
	hb := Heartbeat{MemberID: "m0", MemberEpoch: g.Epoch}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := g.Heartbeat(cfg, hb, counts, 0); err != nil {
			b.Fatal(err)
		}
		if rs := g.TakeRecords(topicID); len(rs) != 0 {
			b.Fatalf("an unchanged heartbeat wrote %d records", len(rs))
		}
	}
}
