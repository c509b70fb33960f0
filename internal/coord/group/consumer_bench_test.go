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
		ids := classicForm(b, s, benchMembers, classicBenchJoin, nil)
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
// follower syncs) and returns their member ids. assign gives the leader's
// assignment of member i (nil: an opaque one).
func classicForm(b *testing.B, s *Shard, n int, join func(memberID string) JoinRequest, assign func(i int) []byte) []string {
	ids := make([]string, n)
	for m := range n {
		s.Join(0, Waiter(m+1), join(""), fmt.Sprintf("member-%d", m), nil)
		ids[m] = fmt.Sprintf("member-%d", m)
	}
	// The initial delay grows while members arrive; tick it out.
	for range 100 {
		if s.groups["g"].state == stateCompletingRebalance {
			break
		}
		s.Tick(s.NextDeadline(), nil)
	}
	classicSyncAll(b, s, ids, assign)
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
	s.Tick(11, nil)
	classicSyncAll(b, s, append(ids, newID), nil)
}

func classicBenchJoin(memberID string) JoinRequest {
	return JoinRequest{GroupID: "g", MemberID: memberID, ProtocolType: "consumer", Protocols: []Protocol{{Name: "range", Metadata: []byte("subscription")}},
		SessionTimeoutMs: 100000, RebalanceTimeoutMs: 10000, ClientID: "c"}
}

// classicSyncAll collects the JoinGroup replies and has the leader assign
// (assign(i) to member i, or one opaque assignment each when nil) and
// everyone sync.
func classicSyncAll(b *testing.B, s *Shard, ids []string, assign func(i int) []byte) {
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
	for i, m := range leader.Members {
		a := []byte("assignment")
		if assign != nil {
			a = assign(i)
		}
		req.Assignments = append(req.Assignments, MemberAssignment{MemberID: m.MemberID, Assignment: a})
	}
	s.Sync(11, 1, req, nil)
	for m, id := range ids {
		if id != leader.MemberID {
			s.Sync(11, Waiter(m+2), SyncRequest{GroupID: "g", GenerationID: leader.GenerationID, MemberID: id}, nil)
		}
	}
	s.TakeRecords()
	if n := len(s.Durable()); n != len(ids) {
		b.Fatalf("%d sync replies for %d members", n, len(ids))
	}
}

// BenchmarkGroupMixedUpgrade100: the online upgrade in the state machine.
// A stable classic group of 100 consumers (200 partitions, two each, with
// real ConsumerProtocol subscriptions and assignments) is converted when a
// consumer-protocol member joins: every member's subscription and
// assignment parsed, the consumer group's 5 records per member written,
// then the new member's join (epoch bump, target for 101).
func BenchmarkGroupMixedUpgrade100(b *testing.B) {
	h := &consumerHarness{img: metadata.EmptyImage(), names: map[metadata.UUID]string{}}
	h.topic("events", benchPartitions)
	sub := testSubscription(1, []string{"events"}, nil)
	join := func(memberID string) JoinRequest {
		req := classicBenchJoin(memberID)
		req.Protocols = []Protocol{{Name: "range", Metadata: sub}}
		return req
	}
	assign := func(i int) []byte {
		return encodeConsumerAssignment(1, []namedPartitions{{topic: "events", partitions: []int32{int32(2 * i), int32(2*i + 1)}}})
	}
	for range b.N {
		b.StopTimer()
		s := NewShard(Config{MinSessionTimeoutMs: 1, MaxSessionTimeoutMs: 100000, MaxSize: 1000, MaxGroups: 10, MaxMemberMetadataBytes: 1 << 20,
			InitialRebalanceDelayMs: 10, ConsumerSessionTimeoutMs: 100000, ConsumerHeartbeatIntervalMs: 100, ConsumerMaxSize: 1000,
			ConsumerAssignors: []string{AssignorUniform}})
		classicForm(b, s, benchMembers, join, assign)
		b.StartTimer()
		s.ConsumerHeartbeat(11, 1, ConsumerHeartbeatRequest{GroupID: "g", MemberID: "new", RebalanceTimeoutMs: 30000,
			SubscribedTopicNames: []string{"events"}}, h.img)
		s.TakeRecords()
		if r := s.Durable(); len(r) != 1 || r[0].Err != nil {
			b.Fatalf("the upgrading join: %+v", r)
		}
		if c := s.groups["g"].consumer; c == nil || len(c.members) != benchMembers+1 {
			b.Fatal("the group was not upgraded")
		}
	}
}
