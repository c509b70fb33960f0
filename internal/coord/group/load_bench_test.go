package group

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkGroupLoad10000 replays the offset records of 10,000 simple
// groups, each with offsets of 4 partitions committed twice (the later
// commit replaces the earlier, as on a log the cleaner has not yet
// compacted), into a new shard: the pure part of a group coordinator's
// start-up, without reading the log. It reports the live heap per loaded
// group. bench/groups.sh times the same load in a restarted broker. Run with
//
//	go test -run '^$' -bench GroupLoad -benchmem -count 3 ./internal/coord/group/
func BenchmarkGroupLoad10000(b *testing.B) {
	const groups, partitions, commits = 10000, 4, 2
	var keys, values [][]byte
	for c := range commits {
		for g := range groups {
			for p := range partitions {
				id := fmt.Sprintf("manyclients-%06d", g)
				keys = append(keys, offsetKey(id, TopicPartition{Topic: "events-of-some-service", Partition: int32(p)}))
				values = append(values, offsetValue(Offset{Offset: int64(g*100 + p + c), LeaderEpoch: -1,
					CommitTimestampMs: 1_700_000_000_000, ExpireTimestampMs: -1}))
			}
		}
	}
	var s *Shard
	var live uint64
	for b.Loop() {
		s = nil
		b.StopTimer()
		before := liveHeap()
		b.StartTimer()
		s = NewShard(Config{})
		for i := range keys {
			if err := s.Load(1_700_000_000_000, keys[i], values[i]); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		live = liveHeap() - before
		b.StartTimer()
	}
	if s.NumGroups() != groups {
		b.Fatalf("%d groups loaded, want %d", s.NumGroups(), groups)
	}
	b.ReportMetric(float64(live)/groups, "heap-B/group")
	b.ReportMetric(float64(len(keys)), "records/op")
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
