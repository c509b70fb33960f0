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
