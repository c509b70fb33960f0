package sharestate

import "testing"

// BenchmarkShareStateWrite is one share partition leader's write after an
// acknowledgement round, as the node's persister sends it: the whole
// in-flight window (here 500 records in 20 runs) moving on by 500 offsets,
// merged, encoded as a ShareUpdate (a snapshot every 500th) and applied.
func BenchmarkShareStateWrite(b *testing.B) {
	s := NewShard(Config{UpdatesPerSnapshot: 500, MaxBatches: 1 << 16, MaxStates: 10})
	key := Key{GroupID: "bench", Partition: 0}
	s.Initialize(0, 0, key, 0, 0) // as the group coordinator does first
	s.TakeRecords()
	s.Durable()
	batches := make([]Batch, 20)
	b.ReportAllocs()
	for i := range b.N {
		start := int64(i) * 500
		for j := range batches {
			first := start + int64(j)*25
			batches[j] = Batch{FirstOffset: first, LastOffset: first + 24, DeliveryState: int8(2 * (j % 2)), DeliveryCount: 1}
		}
		s.Write(0, Waiter(i+1), key, WriteRequest{LeaderEpoch: 1, StartOffset: start, Batches: batches})
		if len(s.TakeRecords()) != 1 || s.Durable()[0].Err != nil {
			b.Fatal("write refused")
		}
	}
}
