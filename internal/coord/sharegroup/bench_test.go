package sharegroup

import "testing"

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
		if err := p.Acknowledge("m", got[0].FirstOffset, got[0].LastOffset, AckAccept); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/record")
}
