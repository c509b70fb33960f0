package group

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sluicelog/sluice/internal/metadata"
)

// mixedShard is a shard with group g holding a consumer-protocol member
// c and a classic member a, subscribed to topic in (2 partitions).
func mixedShard(t *testing.T) (*Shard, *metadata.Image) {
	t.Helper()
	h := &consumerHarness{img: metadata.EmptyImage(), names: map[metadata.UUID]string{}}
	if got := h.topic("in", 2); got != "ok" {
		t.Fatal(got)
	}
	s := NewShard(Config{MinSessionTimeoutMs: 10, MaxSessionTimeoutMs: 60000, OffsetMetadataMaxBytes: 64,
		ConsumerSessionTimeoutMs: 1000, ConsumerHeartbeatIntervalMs: 100, ConsumerAssignors: []string{AssignorUniform}})
	s.ConsumerHeartbeat(0, 1, ConsumerHeartbeatRequest{GroupID: "g", MemberID: "c", RebalanceTimeoutMs: 1000,
		SubscribedTopicNames: []string{"in"}}, h.img)
	durable(t, s)
	sub := testSubscription(1, []string{"in"}, nil)
	s.Join(0, 2, JoinRequest{GroupID: "g", ProtocolType: "consumer", Protocols: []Protocol{{Name: "range", Metadata: sub}},
		SessionTimeoutMs: 1000, RebalanceTimeoutMs: 1000}, "a", h.img)
	durable(t, s)
	return s, h.img
}

// TestGroupConsumerTxnCommitEpochs: a TxnOffsetCommit to a consumer group
// names its member and, as the generation, the member epoch; another is
// ILLEGAL_GENERATION for a classic member and STALE_MEMBER_EPOCH for a
// consumer-protocol one; an unknown member is UNKNOWN_MEMBER_ID.
func TestGroupConsumerTxnCommitEpochs(t *testing.T) {
	s, _ := mixedShard(t)
	c := s.groups["g"].consumer
	for _, tc := range []struct {
		member string
		epoch  int32
		want   error
	}{
		{"a", c.members["a"].memberEpoch, nil},
		{"a", c.members["a"].memberEpoch + 1, ErrIllegalGeneration},
		{"c", c.members["c"].memberEpoch, nil},
		{"c", c.members["c"].memberEpoch + 1, ErrStaleMemberEpoch},
		{"zz", 1, ErrUnknownMemberID},
		{"", -1, nil},
	} {
		req := txnCommit(7, "g", 5)
		req.MemberID, req.GenerationID = tc.member, tc.epoch
		s.TxnCommitOffsets(0, 3, req, nil)
		s.TakeRecords()
		replies := s.Durable()
		if len(replies) != 1 || !errors.Is(replies[0].Err, tc.want) || (tc.want == nil && replies[0].Err != nil) {
			t.Errorf("member %q at %d: %+v, want %v", tc.member, tc.epoch, replies, tc.want)
		}
	}
}

// TestGroupConsumerClassicMemberRecordRoundTrip: a classic member's
// ConsumerGroupMemberMetadata carries its session timeout and protocols
// in tag 0 and reads back the same; a consumer-protocol member's has no
// tag.
func TestGroupConsumerClassicMemberRecordRoundTrip(t *testing.T) {
	m := &consumerMember{clientID: "c", clientHost: "/h", subscribedTopicNames: []string{"in"}, rebalanceTimeoutMs: 5,
		classic: &classicMemberMetadata{sessionTimeoutMs: 45000, protocols: []Protocol{{Name: "range", Metadata: []byte{0, 1}}, {Name: "cooperative-sticky", Metadata: nil}}}}
	for _, classic := range []*classicMemberMetadata{m.classic, nil} {
		m.classic = classic
		r := flexReader{reader{b: consumerMemberValue(m)[2:]}}
		got := &consumerMember{}
		loadMemberRecord(&r, recordConsumerGroupMemberMetadata, got, newConsumerGroup())
		if r.err != nil || len(r.b) != 0 {
			t.Fatalf("read back: %v, %d bytes left", r.err, len(r.b))
		}
		switch {
		case classic == nil && got.classic != nil:
			t.Errorf("a consumer-protocol member read back as classic: %+v", got.classic)
		case classic != nil && (got.classic == nil || got.classic.sessionTimeoutMs != 45000 || len(got.classic.protocols) != 2 ||
			got.classic.protocols[0].Name != "range" || string(got.classic.protocols[0].Metadata) != "\x00\x01" ||
			got.classic.protocols[1].Name != "cooperative-sticky" || len(got.classic.protocols[1].Metadata) != 0):
			t.Errorf("classic metadata read back as %+v", got.classic)
		}
	}
}

// TestGroupConsumerProtocolParsesSubscriptions: every subscription version
// a client sends reads back its topics and owned partitions; truncated
// bytes are refused, never read past.
func TestGroupConsumerProtocolParsesSubscriptions(t *testing.T) {
	owned := []namedPartitions{{topic: "in", partitions: []int32{0, 1}}}
	for v := int16(0); v <= 3; v++ {
		b := testSubscription(v, []string{"in", "out"}, owned)
		sub, err := parseConsumerSubscription(b)
		if err != nil || sub.version != v || len(sub.topics) != 2 || sub.topics[1] != "out" {
			t.Fatalf("v%d: %+v %v", v, sub, err)
		}
		if wantOwned := v >= 1; wantOwned != (len(sub.owned) == 1 && len(sub.owned[0].partitions) == 2) {
			t.Errorf("v%d: owned %+v", v, sub.owned)
		}
		for n := range len(b) - 1 {
			if _, err := parseConsumerSubscription(b[:n]); !errors.Is(err, errMalformedConsumerProtocol) {
				t.Errorf("v%d cut to %d bytes: %v", v, n, err)
			}
		}
	}
	if got, _, err := parseConsumerAssignment(encodeConsumerAssignment(3, owned)); err != nil || len(got) != 1 || got[0].topic != "in" {
		t.Errorf("assignment round trip: %+v %v", got, err)
	}
}

// TestGroupConsumerClassicMemberSwitchesProtocol: a classic member that
// heartbeats with ConsumerGroupHeartbeat at its epoch becomes a
// consumer-protocol member in place: same id and partitions, its member
// record rewritten without the classic metadata, and its classic calls
// then refused as UNKNOWN_MEMBER_ID.
func TestGroupConsumerClassicMemberSwitchesProtocol(t *testing.T) {
	s, img := mixedShard(t)
	a := s.groups["g"].consumer.members["a"]
	s.ConsumerHeartbeat(0, 4, ConsumerHeartbeatRequest{GroupID: "g", MemberID: "a", MemberEpoch: a.memberEpoch, RebalanceTimeoutMs: -1}, img)
	records := s.TakeRecords()
	replies := s.Durable()
	if len(replies) != 1 || replies[0].Err != nil {
		t.Fatalf("consumer heartbeat of the classic member: %+v", replies)
	}
	var rewritten bool
	for _, r := range records {
		if string(r.Key) == string(consumerMemberKey("g", "a")) {
			rewritten = !bytes.Contains(r.Value, []byte("range"))
		}
	}
	d := s.DescribeConsumerGroup("g", img)
	if !rewritten || len(d.Members) != 2 || d.Members[0].MemberID != "a" || d.Members[0].Classic {
		t.Fatalf("after the switch: record rewritten %v, %+v", rewritten, d.Members)
	}
	s.Heartbeat(0, 5, HeartbeatRequest{GroupID: "g", MemberID: "a", GenerationID: a.memberEpoch})
	if replies := s.Durable(); len(replies) != 1 || !errors.Is(replies[0].Err, ErrUnknownMemberID) {
		t.Fatalf("a classic heartbeat after the switch: %+v", replies)
	}
}

// TestGroupConsumerClassicRecordBounds: a classic member's protocols go
// into its member record and, on a downgrade, into the classic group's
// one record: a JoinGroup whose protocols could not fit is refused
// (INVALID_REQUEST), and a downgrade whose record could not fit is not
// made (the group stays a consumer group).
func TestGroupConsumerClassicRecordBounds(t *testing.T) {
	s, img := mixedShard(t)
	s.cfg.MaxRecordBytes = 90
	big := make([]byte, 60)
	copy(big, testSubscription(0, []string{"in"}, nil))
	s.Join(0, 6, JoinRequest{GroupID: "g", ProtocolType: "consumer", Protocols: []Protocol{{Name: "range", Metadata: big}},
		SessionTimeoutMs: 1000, RebalanceTimeoutMs: 1000}, "b", img)
	if replies := s.Durable(); len(replies) != 1 || !errors.Is(replies[0].Err, ErrMemberMetadataTooLarge) {
		t.Fatalf("a classic join with protocols past half a record: %+v", replies)
	}
	c := s.groups["g"].consumer.members["c"]
	s.ConsumerHeartbeat(0, 7, ConsumerHeartbeatRequest{GroupID: "g", MemberID: "c", MemberEpoch: epochLeave}, img)
	durable(t, s)
	if g := s.groups["g"]; g.consumer == nil || len(g.consumer.members) != 1 || c.classic != nil {
		t.Fatalf("a downgrade whose record would not fit was made: %+v", g)
	}
}
