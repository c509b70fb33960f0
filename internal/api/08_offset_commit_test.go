package api

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/coord"
)

// groupFetchOne fetches group's offset of topic-partition at v1, as
// kafka-python and librdkafka do.
func groupFetchOne(t *testing.T, h *harness, group, topic string, partition int32) kmsg.OffsetFetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version, req.Group = 1, group
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: []int32{partition}}}
	resp := groupMust[*kmsg.OffsetFetchResponse](t, h, req)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch of one partition answered %+v", resp.Topics)
	}
	return resp.Topics[0].Partitions[0]
}

// Simple commits (generation -1, no member id) at every version, read back
// at v1; Kafka's v0 (ZooKeeper) and v1 commit like v2.
func TestOffsetCommitSimpleAtEveryVersion(t *testing.T) {
	h := newGroupHarness(t, groupTestConfig())
	groupCreateTopic(t, h, "t", 1)
	groupWaitCoordinator(t, h, "simple")
	for v := int16(0); v <= 9; v++ {
		req := groupCommitRequest(v, "simple", -1, "", "t", int64(100+v))
		req.Topics[0].Partitions[0].LeaderEpoch = 4
		resp := groupMust[*kmsg.OffsetCommitResponse](t, h, req)
		if codes := groupCommitCodes(resp); len(codes) != 1 || codes[0] != 0 || resp.Topics[0].Topic != "t" {
			t.Fatalf("v%d commit %+v", v, resp.Topics)
		}
		got := groupFetchOne(t, h, "simple", "t", 0)
		if got.Offset != int64(100+v) || got.Metadata == nil || *got.Metadata != "m0" || got.ErrorCode != 0 {
			t.Fatalf("v%d commit read back as %+v", v, got)
		}
	}
}

func TestOffsetCommitUnknownPartitionsAndOversizedMetadata(t *testing.T) {
	cfg := groupTestConfig()
	cfg.OffsetMetadataMaxBytes = 16
	h := newGroupHarness(t, cfg)
	groupCreateTopic(t, h, "t", 2)
	groupWaitCoordinator(t, h, "c")

	req := groupCommitRequest(8, "c", -1, "", "t", 1, 2, 3) // partition 2 does not exist
	req.Topics[0].Partitions[1].Metadata = kmsg.StringPtr(strings.Repeat("x", 17))
	unknown := kmsg.NewOffsetCommitRequestTopic()
	unknown.Topic = "missing"
	unknown.Partitions = []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}
	req.Topics = append(req.Topics, unknown)
	resp := groupMust[*kmsg.OffsetCommitResponse](t, h, req)
	if len(resp.Topics) != 2 || resp.Topics[1].Topic != "missing" {
		t.Fatalf("topics %+v", resp.Topics)
	}
	codes := groupCommitCodes(resp)
	want := []*kerr.Error{nil, kerr.OffsetMetadataTooLarge, kerr.UnknownTopicOrPartition, kerr.UnknownTopicOrPartition}
	for i, w := range want {
		groupWantCode(t, "partition "+string(rune('0'+i)), codes[i], w)
	}
	if got := groupFetchOne(t, h, "c", "t", 0); got.Offset != 1 {
		t.Fatalf("the good partition was not committed: %+v", got)
	}
	if got := groupFetchOne(t, h, "c", "t", 1); got.Offset != -1 {
		t.Fatalf("the oversized metadata was committed: %+v", got)
	}
}

// The handler passes only known partitions to the coordinator, v2–4's
// retention time only at those versions, the leader epoch from v6, and a
// group-level error to every partition it sent.
func TestOffsetCommitConvertsVersions(t *testing.T) {
	f := &fakeGroups{}
	h := newFakeGroupHarness(t, f)
	groupCreateTopic(t, h, "t", 1)

	req := groupCommitRequest(2, "g", 3, "m", "t", 5, 6)
	req.RetentionTimeMillis = 60000
	req.Topics[0].Partitions[0].LeaderEpoch = 9
	resp := groupMust[*kmsg.OffsetCommitResponse](t, h, req)
	if codes := groupCommitCodes(resp); codes[0] != 0 || codes[1] != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("codes %v", codes)
	}
	got := f.commits[0]
	if got.GroupID != "g" || got.GenerationID != 3 || got.MemberID != "m" || got.RetentionTimeMs != 60000 ||
		len(got.Topics) != 1 || len(got.Topics[0].Partitions) != 1 || got.Topics[0].Partitions[0].LeaderEpoch != -1 {
		t.Fatalf("v2 commit as %+v", got)
	}
	req = groupCommitRequest(7, "g", 3, "m", "t", 5)
	req.InstanceID = kmsg.StringPtr("i")
	req.Topics[0].Partitions[0].LeaderEpoch = 9
	groupMust[*kmsg.OffsetCommitResponse](t, h, req)
	if got := f.commits[1]; got.RetentionTimeMs != -1 || got.GroupInstanceID != "i" || got.Topics[0].Partitions[0].LeaderEpoch != 9 {
		t.Fatalf("v7 commit as %+v", got)
	}

	// Nothing known: the coordinator is not asked.
	groupMust[*kmsg.OffsetCommitResponse](t, h, groupCommitRequest(2, "g", 3, "m", "nope", 5))
	if len(f.commits) != 2 {
		t.Fatal("a commit of unknown partitions only reached the coordinator")
	}

	f.err = coord.ErrNotCoordinator
	resp = groupMust[*kmsg.OffsetCommitResponse](t, h, groupCommitRequest(6, "g", 3, "m", "t", 5, 6))
	if codes := groupCommitCodes(resp); codes[0] != kerr.NotCoordinator.Code || codes[1] != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("codes with a group-level error %v", codes)
	}
}
