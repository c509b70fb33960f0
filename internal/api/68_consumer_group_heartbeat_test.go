package api

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func consumerHeartbeatRequest(group, member string, epoch int32, topics []string) *kmsg.ConsumerGroupHeartbeatRequest {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	req.Group, req.MemberID, req.MemberEpoch = group, member, epoch
	req.RebalanceTimeoutMillis = 5000
	req.SubscribedTopicNames = topics
	return req
}

// TestGroupConsumerHeartbeatHandler: two members of a consumer-protocol
// group split a topic through the wire, ConsumerGroupDescribe and
// ListGroups v5 show the group, and the edge maps the protocol's errors.
func TestGroupConsumerHeartbeatHandler(t *testing.T) {
	h := newGroupHarness(t, groupTestConfig())
	groupCreateTopic(t, h, "t", 2)
	groupWaitCoordinator(t, h, "g")

	a := groupMust[*kmsg.ConsumerGroupHeartbeatResponse](t, h, consumerHeartbeatRequest("g", "a", 0, []string{"t"}))
	groupWantCode(t, "join a", a.ErrorCode, nil)
	if a.MemberEpoch != 1 || a.Assignment == nil || len(a.Assignment.Topics) != 1 || len(a.Assignment.Topics[0].Partitions) != 2 {
		t.Fatalf("a's join: epoch %d assignment %+v, want epoch 1 with both partitions", a.MemberEpoch, a.Assignment)
	}
	topicID := a.Assignment.Topics[0].TopicID

	b := groupMust[*kmsg.ConsumerGroupHeartbeatResponse](t, h, consumerHeartbeatRequest("g", "b", 0, []string{"t"}))
	if b.MemberEpoch != 2 || b.Assignment == nil || len(b.Assignment.Topics) != 0 {
		t.Fatalf("b's join: epoch %d assignment %+v, want epoch 2 and nothing yet", b.MemberEpoch, b.Assignment)
	}
	// a learns to revoke one partition, acknowledges, and b gets it.
	req := consumerHeartbeatRequest("g", "a", 1, nil)
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{{TopicID: topicID, Partitions: []int32{0, 1}}}
	a = groupMust[*kmsg.ConsumerGroupHeartbeatResponse](t, h, req)
	if a.Assignment == nil || len(a.Assignment.Topics) != 1 || len(a.Assignment.Topics[0].Partitions) != 1 {
		t.Fatalf("a's revocation: %+v", a.Assignment)
	}
	req.Topics[0].Partitions = a.Assignment.Topics[0].Partitions
	a = groupMust[*kmsg.ConsumerGroupHeartbeatResponse](t, h, req)
	if a.MemberEpoch != 2 {
		t.Fatalf("a after revoking: epoch %d, want 2", a.MemberEpoch)
	}
	req = consumerHeartbeatRequest("g", "b", 2, nil)
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	b = groupMust[*kmsg.ConsumerGroupHeartbeatResponse](t, h, req)
	if b.Assignment == nil || len(b.Assignment.Topics) != 1 || len(b.Assignment.Topics[0].Partitions) != 1 {
		t.Fatalf("b after a revoked: %+v", b.Assignment)
	}

	fenced := groupMust[*kmsg.ConsumerGroupHeartbeatResponse](t, h, consumerHeartbeatRequest("g", "a", 9, nil))
	groupWantCode(t, "heartbeat at a wrong epoch", fenced.ErrorCode, kerr.FencedMemberEpoch)
	unknown := groupMust[*kmsg.ConsumerGroupHeartbeatResponse](t, h, consumerHeartbeatRequest("g", "zz", 1, nil))
	groupWantCode(t, "heartbeat of an unknown member", unknown.ErrorCode, kerr.UnknownMemberID)
	noID := groupMust[*kmsg.ConsumerGroupHeartbeatResponse](t, h, consumerHeartbeatRequest("g", "", 0, []string{"t"}))
	groupWantCode(t, "v1 join without a member id", noID.ErrorCode, kerr.InvalidRequest)

	describe := kmsg.NewPtrConsumerGroupDescribeRequest()
	describe.Groups = []string{"g", "nope"}
	d := groupMust[*kmsg.ConsumerGroupDescribeResponse](t, h, describe)
	if len(d.Groups) != 2 || d.Groups[0].State != "Stable" || d.Groups[0].Epoch != 2 || len(d.Groups[0].Members) != 2 {
		t.Fatalf("describe: %+v", d.Groups)
	}
	if m := d.Groups[0].Members[0]; m.MemberEpoch != 2 || len(m.Assignment.TopicPartitions) != 1 || m.Assignment.TopicPartitions[0].Topic != "t" {
		t.Fatalf("described member: %+v", m)
	}
	groupWantCode(t, "describe an unknown group", d.Groups[1].ErrorCode, kerr.GroupIDNotFound)

	// DescribeGroups shows the group as a classic consumer's tools read
	// it: protocol type consumer, members' assignments by topic name.
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Version, dg.Groups = 5, []string{"g"}
	dgr := groupMust[*kmsg.DescribeGroupsResponse](t, h, dg)
	if len(dgr.Groups) != 1 || dgr.Groups[0].ProtocolType != "consumer" || dgr.Groups[0].State != "Stable" || len(dgr.Groups[0].Members) != 2 {
		t.Fatalf("DescribeGroups: %+v", dgr.Groups)
	}
	for _, m := range dgr.Groups[0].Members {
		var a kmsg.ConsumerMemberAssignment
		if err := a.ReadFrom(m.MemberAssignment); err != nil || len(a.Topics) != 1 || a.Topics[0].Topic != "t" || len(a.Topics[0].Partitions) != 1 {
			t.Fatalf("member %s's assignment %+v: %v", m.MemberID, a, err)
		}
	}

	list := kmsg.NewPtrListGroupsRequest()
	list.Version = 5
	list.TypesFilter = []string{"Consumer"}
	l := groupMust[*kmsg.ListGroupsResponse](t, h, list)
	if len(l.Groups) != 1 || l.Groups[0].Group != "g" || l.Groups[0].GroupType != "consumer" || l.Groups[0].GroupState != "Stable" {
		t.Fatalf("list consumer groups: %+v", l.Groups)
	}
	list.TypesFilter = []string{"classic"}
	if l := groupMust[*kmsg.ListGroupsResponse](t, h, list); len(l.Groups) != 0 {
		t.Fatalf("list classic groups: %+v", l.Groups)
	}

	// A classic JoinGroup whose subscription does not parse cannot join.
	join := groupMust[*kmsg.JoinGroupResponse](t, h, groupJoinRequest(5, "g", "", []byte("sub")))
	groupWantCode(t, "classic join of a consumer group without a consumer subscription", join.ErrorCode, kerr.InconsistentGroupProtocol)
}

// TestGroupConsumerClassicMember: a classic consumer joins a
// consumer-protocol group with members (a mixed group, KIP-848's
// migration): JoinGroup answers at once with its member epoch as the
// generation and no leader, SyncGroup hands it a ConsumerProtocolAssignment
// of the partitions the server assigned it, it commits at that generation
// (another is ILLEGAL_GENERATION), and ConsumerGroupDescribe shows it as a
// classic member.
func TestGroupConsumerClassicMember(t *testing.T) {
	h := newGroupHarness(t, groupTestConfig())
	groupCreateTopic(t, h, "t", 2)
	groupWaitCoordinator(t, h, "g")
	a := groupMust[*kmsg.ConsumerGroupHeartbeatResponse](t, h, consumerHeartbeatRequest("g", "a", 0, []string{"t"}))
	groupWantCode(t, "consumer join", a.ErrorCode, nil)

	sub := kmsg.NewConsumerMemberMetadata()
	sub.Version, sub.Topics = 1, []string{"t"}
	join := groupMust[*kmsg.JoinGroupResponse](t, h, groupJoinRequest(5, "g", "", sub.AppendTo(nil)))
	groupWantCode(t, "classic join without a member id", join.ErrorCode, kerr.MemberIDRequired)
	join = groupMust[*kmsg.JoinGroupResponse](t, h, groupJoinRequest(5, "g", join.MemberID, sub.AppendTo(nil)))
	groupWantCode(t, "classic join", join.ErrorCode, nil)
	if join.MemberID == "" || join.LeaderID != "" || join.Protocol == nil || *join.Protocol != "range" || join.Generation <= a.MemberEpoch {
		t.Fatalf("classic join: member %q leader %q protocol %v generation %d", join.MemberID, join.LeaderID, join.Protocol, join.Generation)
	}
	classicID, generation := join.MemberID, join.Generation

	// The consumer-protocol member releases a partition: it reports both,
	// learns which it keeps, and reports that one.
	topicID := a.Assignment.Topics[0].TopicID
	req := consumerHeartbeatRequest("g", "a", a.MemberEpoch, nil)
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{{TopicID: topicID, Partitions: []int32{0, 1}}}
	a = groupMust[*kmsg.ConsumerGroupHeartbeatResponse](t, h, req)
	if a.ErrorCode != 0 || a.Assignment == nil || len(a.Assignment.Topics) != 1 || len(a.Assignment.Topics[0].Partitions) != 1 {
		t.Fatalf("a's revocation: %v %+v", kerr.ErrorForCode(a.ErrorCode), a.Assignment)
	}
	kept := a.Assignment.Topics[0].Partitions[0]
	req = consumerHeartbeatRequest("g", "a", a.MemberEpoch, nil)
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{{TopicID: topicID, Partitions: []int32{kept}}}
	groupWantCode(t, "a acknowledges the revocation", groupMust[*kmsg.ConsumerGroupHeartbeatResponse](t, h, req).ErrorCode, nil)

	// The classic member's heartbeat tells it to rejoin for the freed
	// partition; it gets it in SyncGroup.
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version, hb.Group, hb.Generation, hb.MemberID = 4, "g", generation, classicID
	groupWantCode(t, "classic heartbeat", groupMust[*kmsg.HeartbeatResponse](t, h, hb).ErrorCode, kerr.RebalanceInProgress)
	join = groupMust[*kmsg.JoinGroupResponse](t, h, groupJoinRequest(5, "g", classicID, sub.AppendTo(nil)))
	groupWantCode(t, "classic rejoin", join.ErrorCode, nil)
	sync := groupMust[*kmsg.SyncGroupResponse](t, h, groupSyncRequest(5, "g", join.Generation, classicID, nil))
	groupWantCode(t, "classic sync", sync.ErrorCode, nil)
	var assignment kmsg.ConsumerMemberAssignment
	if err := assignment.ReadFrom(sync.MemberAssignment); err != nil || len(assignment.Topics) != 1 || assignment.Topics[0].Topic != "t" ||
		len(assignment.Topics[0].Partitions) != 1 || assignment.Topics[0].Partitions[0] == kept {
		t.Fatalf("classic assignment %+v (%v), a kept %d", assignment, err, kept)
	}
	hb.Generation = join.Generation
	groupWantCode(t, "classic heartbeat when reconciled", groupMust[*kmsg.HeartbeatResponse](t, h, hb).ErrorCode, nil)

	commit := groupCommitRequest(8, "g", join.Generation, classicID, "t", 5)
	groupWantCode(t, "classic commit at its generation", groupCommitCodes(groupMust[*kmsg.OffsetCommitResponse](t, h, commit))[0], nil)
	commit = groupCommitRequest(8, "g", join.Generation+1, classicID, "t", 6)
	groupWantCode(t, "classic commit at another generation", groupCommitCodes(groupMust[*kmsg.OffsetCommitResponse](t, h, commit))[0], kerr.IllegalGeneration)

	describe := kmsg.NewPtrConsumerGroupDescribeRequest()
	describe.Version, describe.Groups = 1, []string{"g"}
	d := groupMust[*kmsg.ConsumerGroupDescribeResponse](t, h, describe)
	types := map[string]int8{}
	for _, m := range d.Groups[0].Members {
		types[m.MemberID] = m.MemberType
	}
	if len(types) != 2 || types["a"] != 1 || types[classicID] != 0 {
		t.Fatalf("member types %v, want a consumer (1) and %s classic (0)", types, classicID)
	}
}

// TestGroupConsumerOffsetsWithMemberEpoch: OffsetCommit and OffsetFetch v9
// of a consumer-protocol member carry its member epoch; another epoch is
// STALE_MEMBER_EPOCH, an unknown member UNKNOWN_MEMBER_ID.
func TestGroupConsumerOffsetsWithMemberEpoch(t *testing.T) {
	h := newGroupHarness(t, groupTestConfig())
	groupCreateTopic(t, h, "t", 1)
	groupWaitCoordinator(t, h, "g")
	a := groupMust[*kmsg.ConsumerGroupHeartbeatResponse](t, h, consumerHeartbeatRequest("g", "a", 0, []string{"t"}))
	groupWantCode(t, "join", a.ErrorCode, nil)

	commit := groupCommitRequest(9, "g", a.MemberEpoch, "a", "t", 5)
	groupWantCode(t, "commit at the member epoch", groupCommitCodes(groupMust[*kmsg.OffsetCommitResponse](t, h, commit))[0], nil)
	commit = groupCommitRequest(9, "g", a.MemberEpoch+1, "a", "t", 6)
	groupWantCode(t, "commit at another epoch", groupCommitCodes(groupMust[*kmsg.OffsetCommitResponse](t, h, commit))[0], kerr.StaleMemberEpoch)

	fetch := func(member *string, epoch int32) kmsg.OffsetFetchResponseGroup {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = 9
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group, rg.MemberID, rg.MemberEpoch = "g", member, epoch
		req.Groups = append(req.Groups, rg)
		return groupMust[*kmsg.OffsetFetchResponse](t, h, req).Groups[0]
	}
	member, stranger := "a", "zz"
	if g := fetch(&member, a.MemberEpoch); g.ErrorCode != 0 || len(g.Topics) != 1 || g.Topics[0].Partitions[0].Offset != 5 {
		t.Fatalf("fetch at the member epoch: %+v", g)
	}
	groupWantCode(t, "fetch at another epoch", fetch(&member, a.MemberEpoch+1).ErrorCode, kerr.StaleMemberEpoch)
	groupWantCode(t, "fetch of an unknown member", fetch(&stranger, 1).ErrorCode, kerr.UnknownMemberID)
	if g := fetch(nil, -1); g.ErrorCode != 0 || len(g.Topics) != 1 {
		t.Fatalf("fetch without a member (an admin): %+v", g)
	}
}
