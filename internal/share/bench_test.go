package share

import (
	"testing"

	"github.com/sluicelog/sluice/internal/coord/sharegroup"
)

// BenchmarkShareIsShareGroup is the share-id check of a consumer group's
// JoinGroup, joining ConsumerGroupHeartbeat or generation-less commit, from
// parallel callers, once the groups are loaded.
func BenchmarkShareIsShareGroup(b *testing.B) {
	f := newFixture(b)
	f.createTopic("t", 1)
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "a", SubscribedTopicNames: []string{"t"}})
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if f.c.IsShareGroup("consumers") {
				b.Fatal("a consumer group's id taken for a share group's")
			}
		}
	})
}

// BenchmarkShareSteadyHeartbeat is a heartbeat that changes nothing, of a
// member assigned 100 share partitions, all initialized already: the
// coordinator checks the member's assignment against the partitions it
// made sure have state, and sends nothing.
func BenchmarkShareSteadyHeartbeat(b *testing.B) {
	f := newFixture(b)
	f.createTopic("t", 100)
	res := f.heartbeat("g", sharegroup.Heartbeat{MemberID: "a", SubscribedTopicNames: []string{"t"}})
	hb := sharegroup.Heartbeat{MemberID: "a", MemberEpoch: res.MemberEpoch}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		f.heartbeat("g", hb)
	}
}
