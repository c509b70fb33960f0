package api

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func offsetDeleteRequest(group string, topic string, partitions ...int32) *kmsg.OffsetDeleteRequest {
	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = group
	rt := kmsg.NewOffsetDeleteRequestTopic()
	rt.Topic = topic
	for _, p := range partitions {
		rt.Partitions = append(rt.Partitions, kmsg.OffsetDeleteRequestTopicPartition{Partition: p})
	}
	req.Topics = append(req.Topics, rt)
	return req
}

func TestOffsetDelete(t *testing.T) {
	h := newGroupHarness(t, groupTestConfig())
	groupCreateTopic(t, h, "t", 2)
	for _, g := range []string{"o-idle", "o-busy", "o-none"} {
		groupWaitCoordinator(t, h, g)
	}
	commit := groupMust[*kmsg.OffsetCommitResponse](t, h, groupCommitRequest(2, "o-idle", -1, "", "t", 4, 5))
	groupWantCode(t, "commit", commit.Topics[0].Partitions[1].ErrorCode, nil)

	resp := groupMust[*kmsg.OffsetDeleteResponse](t, h, offsetDeleteRequest("o-idle", "t", 0, 7))
	groupWantCode(t, "delete", resp.ErrorCode, nil)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 {
		t.Fatalf("delete response %+v", resp.Topics)
	}
	groupWantCode(t, "partition 0", resp.Topics[0].Partitions[0].ErrorCode, nil)
	groupWantCode(t, "partition 7", resp.Topics[0].Partitions[1].ErrorCode, kerr.UnknownTopicOrPartition)
	if got := groupFetchOne(t, h, "o-idle", "t", 0); got.Offset != -1 {
		t.Fatalf("deleted offset still there: %+v", got)
	}
	if got := groupFetchOne(t, h, "o-idle", "t", 1); got.Offset != 5 {
		t.Fatalf("offset not asked for was deleted: %+v", got)
	}

	resp = groupMust[*kmsg.OffsetDeleteResponse](t, h, offsetDeleteRequest("o-none", "t", 0))
	groupWantCode(t, "unknown group", resp.ErrorCode, kerr.GroupIDNotFound)
	if len(resp.Topics) != 0 {
		t.Fatalf("group-level error with partitions %+v", resp.Topics)
	}

	// A group with members that subscribe through the consumer protocol:
	// Kafka answers NON_EMPTY_GROUP for a classic group in any state
	// but Empty.
	groupJoinNew(t, h, 4, "o-busy")
	resp = groupMust[*kmsg.OffsetDeleteResponse](t, h, offsetDeleteRequest("o-busy", "t", 0))
	groupWantCode(t, "busy group", resp.ErrorCode, kerr.NonEmptyGroup)
}
