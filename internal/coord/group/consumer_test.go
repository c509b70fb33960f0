package group

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/metadata"
)

// TestGroupConsumerSubscriptionBounded: a subscription too large for one
// member record is refused before anything is written, so a client cannot
// make the shard's append fail.
func TestGroupConsumerSubscriptionBounded(t *testing.T) {
	s := NewShard(Config{MaxRecordBytes: 1000, MaxGroups: 10, ConsumerSessionTimeoutMs: 1000, ConsumerAssignors: []string{AssignorUniform}})
	names := []string{strings.Repeat("a", 300), strings.Repeat("b", 300)}
	s.ConsumerHeartbeat(0, 1, ConsumerHeartbeatRequest{GroupID: "g", MemberID: "m", RebalanceTimeoutMs: 1, SubscribedTopicNames: names}, metadata.EmptyImage())
	if recs := s.TakeRecords(); len(recs) != 0 {
		t.Fatalf("%d records written for a refused join", len(recs))
	}
	replies := s.Durable()
	if len(replies) != 1 || !errors.Is(replies[0].Err, ErrMemberMetadataTooLarge) {
		t.Fatalf("replies %+v, want ErrMemberMetadataTooLarge", replies)
	}
	s.ConsumerHeartbeat(0, 2, ConsumerHeartbeatRequest{GroupID: "g", MemberID: "m", RebalanceTimeoutMs: 1, SubscribedTopicNames: names[:1]}, metadata.EmptyImage())
	s.TakeRecords()
	if replies := s.Durable(); len(replies) != 1 || replies[0].Err != nil {
		t.Fatalf("a subscription within the bound: %+v", replies)
	}
}

// TestGroupConsumerHeartbeatWithAnOlderImage: a heartbeat carries the
// image its request read, and requests reach the shard in any order, so
// one may bring an image older than one the shard already assigned from.
// The group must not go back to it: here the older image lacks two
// partitions added since, and the heartbeat bumped the group epoch and
// took them from the member, to give them back at the next heartbeat
// (a deleted topic would come back in the assignment the same way).
func TestGroupConsumerHeartbeatWithAnOlderImage(t *testing.T) {
	s := NewShard(Config{MaxGroups: 10, ConsumerSessionTimeoutMs: 10000, ConsumerAssignors: []string{AssignorUniform},
		MinSessionTimeoutMs: 10, MaxSessionTimeoutMs: 60000, MaxSize: 10})
	id := metadata.UUID{15: 1}
	partitions := func(d *metadata.Delta, from, to int32) {
		for p := from; p < to; p++ {
			if err := d.Replay(&metadata.Partition{TopicID: id, Partition: p, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}); err != nil {
				t.Fatal(err)
			}
		}
	}
	d := metadata.NewDelta(metadata.EmptyImage())
	if err := d.Replay(&metadata.Topic{Name: "events", ID: id}); err != nil {
		t.Fatal(err)
	}
	partitions(d, 0, 2)
	older := d.Apply(2)
	d = metadata.NewDelta(older)
	partitions(d, 2, 4)
	newer := d.Apply(4)

	heartbeat := func(w Waiter, req ConsumerHeartbeatRequest, img *metadata.Image) ConsumerHeartbeatResult {
		t.Helper()
		s.ConsumerHeartbeat(0, w, req, img)
		s.TakeRecords()
		replies := s.Durable()
		if len(replies) != 1 || replies[0].Err != nil {
			t.Fatalf("heartbeat %d: replies %+v", w, replies)
		}
		return replies[0].Value.(ConsumerHeartbeatResult)
	}
	joined := heartbeat(1, ConsumerHeartbeatRequest{GroupID: "g", MemberID: "m", RebalanceTimeoutMs: 1000, SubscribedTopicNames: []string{"events"}}, newer)
	if len(joined.Assignment) != 1 || len(joined.Assignment[0].Partitions) != 4 {
		t.Fatalf("joined: %+v, want the 4 partitions", joined)
	}
	again := heartbeat(2, ConsumerHeartbeatRequest{GroupID: "g", MemberID: "m", MemberEpoch: joined.MemberEpoch, RebalanceTimeoutMs: -1}, older)
	if again.MemberEpoch != joined.MemberEpoch || again.HasAssignment {
		t.Fatalf("a heartbeat with an older image: %+v, want epoch %d and no new assignment", again, joined.MemberEpoch)
	}

	// A classic member joining the group with the older image: the new
	// target still shares out all 4 partitions.
	s.Join(0, 3, JoinRequest{GroupID: "g", ProtocolType: "consumer", SessionTimeoutMs: 1000, RebalanceTimeoutMs: 1000,
		Protocols: []Protocol{{Name: "range", Metadata: testSubscription(1, []string{"events"}, nil)}}}, "classic-1", older)
	s.TakeRecords()
	if replies := s.Durable(); len(replies) != 1 || replies[0].Err != nil {
		t.Fatalf("classic join: replies %+v", replies)
	}
	targets := 0
	for _, m := range s.DescribeConsumerGroup("g", newer).Members {
		for _, tp := range m.TargetAssignment {
			targets += len(tp.Partitions)
		}
	}
	if targets != 4 {
		t.Fatalf("after a classic join with an older image the targets hold %d partitions, want 4", targets)
	}
}
