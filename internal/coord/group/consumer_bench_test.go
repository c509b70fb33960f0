package group

import (
	"fmt"
	"testing"

	"github.com/sluicelog/sluice/internal/metadata"
)

// The cost of a rebalance in the state machines alone (no disk, no
// network): one member joins a stable group of 100, and every member does
// what its protocol asks until the group is stable again. The classic
// protocol stops all 101 members (heartbeat -> rejoin -> join phase ->
// sync); the consumer protocol bumps the epoch, recomputes the target
// (uniform assignor, 200 partitions) and reconciles each member with one
// or two heartbeats, the others consuming on meanwhile. The runtime's
// benchmarks in internal/coord add the records' append and fsync.

const benchMembers, benchPartitions = 100, 200

func BenchmarkGroupClassicRebalanceJoin100(b *testing.B) {
	for range b.N {
		b.StopTimer()
		s := NewShard(Config{MinSessionTimeoutMs: 1, MaxSessionTimeoutMs: 100000, MaxSize: 1000, MaxGroups: 10, MaxMemberMetadataBytes: 1 << 20,
			InitialRebalanceDelayMs: 10})
		ids := classicForm(b, s, benchMembers)
		b.StartTimer()
		classicJoinOneMore(b, s, ids)
	}
}

func BenchmarkGroupConsumerRebalanceJoin100(b *testing.B) {
	h := &consumerHarness{img: metadata.EmptyImage(), names: map[metadata.UUID]string{}}
	h.topic("events", benchPartitions)
	for range b.N {
		b.StopTimer()
		s := NewShard(Config{ConsumerSessionTimeoutMs: 100000, ConsumerHeartbeatIntervalMs: 100, ConsumerMaxSize: 1000,
			ConsumerAssignors: []string{AssignorUniform}, MaxGroups: 10})
		reqs := make([]*ConsumerHeartbeatRequest, benchMembers+1)
		for m := range reqs {
			reqs[m] = &ConsumerHeartbeatRequest{GroupID: "g", MemberID: fmt.Sprintf("member-%d", m), RebalanceTimeoutMs: 30000, SubscribedTopicNames: []string{"events"}}
		}
		consumerUntilStable(b, s, h.img, reqs[:benchMembers])
		b.StartTimer()
		consumerUntilStable(b, s, h.img, reqs)
	}
}

// consumerUntilStable runs rounds in which every member heartbeats once,
// acknowledging what it was told, until the group is Stable.
func consumerUntilStable(b *testing.B, s *Shard, img *metadata.Image, reqs []*ConsumerHeartbeatRequest) {
	for range 100 {
		for _, r := range reqs {
			s.ConsumerHeartbeat(0, 1, *r, img)
			s.TakeRecords()
			for _, rep := range s.Durable() {
				if rep.Err != nil {
					b.Fatal(rep.Err)
				}
				res := rep.Value.(ConsumerHeartbeatResult)
				r.MemberEpoch, r.RebalanceTimeoutMs, r.SubscribedTopicNames = res.MemberEpoch, -1, nil
				if res.HasAssignment {
					r.OwnedTopics = res.Assignment
				}
			}
		}
		if s.groups["g"].consumer.state() == ConsumerStateStable {
			return
		}
	}
	b.Fatal("the group never became stable")
}

// classicForm forms a classic group of n members (join, leader sync,
// follower syncs) and returns their member ids.
func classicForm(b *testing.B, s *Shard, n int) []string {
	ids := make([]string, n)
	for m := range n {
		s.Join(0, Waiter(m+1), classicBenchJoin(""), fmt.Sprintf("member-%d", m), nil)
		ids[m] = fmt.Sprintf("member-%d", m)
	}
	// The initial delay grows while members arrive; tick it out.
	for range 100 {
		if s.groups["g"].state == stateCompletingRebalance {
			break
		}
		s.Tick(s.NextDeadline())
	}
	classicSyncAll(b, s, ids)
	return ids
}

// classicJoinOneMore adds a member to a stable group: the others learn of
// the rebalance from a heartbeat, all rejoin, and all sync.
func classicJoinOneMore(b *testing.B, s *Shard, ids []string) {
	newID := fmt.Sprintf("member-%d", len(ids))
	s.Join(11, Waiter(len(ids)+1), classicBenchJoin(""), newID, nil)
	gen := s.groups["g"].generation
	for m, id := range ids {
		s.Heartbeat(11, Waiter(m+1), HeartbeatRequest{GroupID: "g", GenerationID: gen, MemberID: id})
		s.Durable()
		s.Join(11, Waiter(m+1), classicBenchJoin(id), "", nil)
	}
	s.Tick(11)
	classicSyncAll(b, s, append(ids, newID))
}

func classicBenchJoin(memberID string) JoinRequest {
	return JoinRequest{GroupID: "g", MemberID: memberID, ProtocolType: "consumer", Protocols: []Protocol{{Name: "range", Metadata: []byte("subscription")}},
		SessionTimeoutMs: 100000, RebalanceTimeoutMs: 10000, ClientID: "c"}
}

// classicSyncAll collects the JoinGroup replies and has the leader assign
// (one opaque assignment per member) and everyone sync.
func classicSyncAll(b *testing.B, s *Shard, ids []string) {
	var leader JoinResult
	replies := s.Durable()
	if len(replies) != len(ids) {
		b.Fatalf("%d join replies for %d members", len(replies), len(ids))
	}
	for _, r := range replies {
		if res := r.Value.(JoinResult); len(res.Members) > 0 {
			leader = res
		}
	}
	req := SyncRequest{GroupID: "g", GenerationID: leader.GenerationID, MemberID: leader.MemberID}
	for _, m := range leader.Members {
		req.Assignments = append(req.Assignments, MemberAssignment{MemberID: m.MemberID, Assignment: []byte("assignment")})
	}
	s.Sync(11, 1, req)
	for m, id := range ids {
		if id != leader.MemberID {
			s.Sync(11, Waiter(m+2), SyncRequest{GroupID: "g", GenerationID: leader.GenerationID, MemberID: id})
		}
	}
	s.TakeRecords()
	if n := len(s.Durable()); n != len(ids) {
		b.Fatalf("%d sync replies for %d members", n, len(ids))
	}
}
