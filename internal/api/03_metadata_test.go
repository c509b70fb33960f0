package api

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func metadataNames(resp *kmsg.MetadataResponse) []string {
	var names []string
	for _, t := range resp.Topics {
		if t.Topic != nil {
			names = append(names, *t.Topic)
		}
	}
	slices.Sort(names)
	return names
}

func TestMetadataAllTopicsAndBrokersByVersion(t *testing.T) {
	h := newAdminHarness(t, Config{})
	adminCreate(t, h, "a", 2)
	adminCreate(t, h, "b", 1)

	for _, v := range []int16{0, 1, 2, 4, 5, 7, 9, 10, 12} {
		resp := adminMetadata(t, h, v, false) // v0: empty list; v1+: null
		if got := metadataNames(resp); !slices.Equal(got, []string{"a", "b"}) {
			t.Fatalf("v%d all topics: %v", v, got)
		}
		if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 1 || resp.Brokers[0].Host != "127.0.0.1" || resp.Brokers[0].Port != 9092 {
			t.Fatalf("v%d brokers: %+v", v, resp.Brokers)
		}
		if v >= 1 && resp.ControllerID != 1 {
			t.Fatalf("v%d controller id %d, want 1", v, resp.ControllerID)
		}
		if v >= 2 && (resp.ClusterID == nil || *resp.ClusterID != "test-cluster") {
			t.Fatalf("v%d cluster id %v", v, resp.ClusterID)
		}
		if v >= 8 && v <= 10 && resp.AuthorizedOperations != -2147483648 {
			t.Fatalf("v%d cluster authorized operations %d", v, resp.AuthorizedOperations)
		}
		for _, topic := range resp.Topics {
			if topic.ErrorCode != 0 || topic.IsInternal {
				t.Fatalf("v%d topic %+v", v, topic)
			}
			if v >= 10 && topic.TopicID == [16]byte{} {
				t.Fatalf("v%d topic %s has no id", v, *topic.Topic)
			}
			if v >= 8 && topic.AuthorizedOperations != -2147483648 {
				t.Fatalf("v%d topic authorized operations %d", v, topic.AuthorizedOperations)
			}
			for i, p := range topic.Partitions {
				if p.ErrorCode != 0 || p.Partition != int32(i) || p.Leader != 1 ||
					!slices.Equal(p.Replicas, []int32{1}) || !slices.Equal(p.ISR, []int32{1}) || len(p.OfflineReplicas) != 0 {
					t.Fatalf("v%d %s partition %+v", v, *topic.Topic, p)
				}
				if v >= 7 && p.LeaderEpoch < 0 {
					t.Fatalf("v%d leader epoch %d", v, p.LeaderEpoch)
				}
			}
		}
	}

	// v1+: an empty list is no topics; a named list is just those.
	if resp := adminMetadata(t, h, 1, false, []string{}...); len(resp.Topics) != 0 {
		t.Fatalf("v1 empty list: %v", metadataNames(resp))
	}
	resp := adminMetadata(t, h, 12, false, "b", "b")
	if got := metadataNames(resp); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("v12 [b b]: %v", got)
	}
}

func TestMetadataUnknownTopicWithoutAutoCreate(t *testing.T) {
	h := newAdminHarness(t, Config{AutoCreateTopicsEnable: false})
	for _, v := range []int16{0, 4, 12} {
		resp := adminMetadata(t, h, v, true, "missing", "bad name!", "__consumer_offsets")
		if len(resp.Topics) != 3 {
			t.Fatalf("v%d: %+v", v, resp.Topics)
		}
		adminWantCode(t, "missing", resp.Topics[0].ErrorCode, kerr.UnknownTopicOrPartition)
		adminWantCode(t, "bad name", resp.Topics[1].ErrorCode, kerr.InvalidTopicException)
		adminWantCode(t, "offsets", resp.Topics[2].ErrorCode, kerr.UnknownTopicOrPartition)
		if v >= 1 && !resp.Topics[2].IsInternal {
			t.Fatalf("v%d: __consumer_offsets is not flagged internal", v)
		}
	}
	if h.cp.Image().NumTopics() != 0 {
		t.Fatal("a topic was created with auto-creation off")
	}
}

func TestMetadataAutoCreate(t *testing.T) {
	h := newAdminHarness(t, Config{AutoCreateTopicsEnable: true, NumPartitions: 3})

	// v4+ asks: allow_auto_topic_creation=false creates nothing.
	resp := adminMetadata(t, h, 4, false, "no")
	adminWantCode(t, "v4 not allowed", resp.Topics[0].ErrorCode, kerr.UnknownTopicOrPartition)
	// An all-topics request never creates.
	adminMetadata(t, h, 1, false)
	adminMetadata(t, h, 0, false)
	if h.cp.Image().NumTopics() != 0 {
		t.Fatal("created a topic without being asked")
	}

	// Allowed: created with num.partitions and answered in full.
	resp = adminMetadata(t, h, 12, true, "auto1", "auto1", "bad/name", "__transaction_state")
	if len(resp.Topics) != 3 {
		t.Fatalf("topics %+v", resp.Topics)
	}
	got := resp.Topics[0]
	if got.ErrorCode != 0 || *got.Topic != "auto1" || len(got.Partitions) != 3 || got.TopicID == [16]byte{} {
		t.Fatalf("auto-created topic: %+v", got)
	}
	for _, p := range got.Partitions {
		if p.ErrorCode != 0 || p.Leader != 1 {
			t.Fatalf("auto-created partition: %+v", p)
		}
	}
	adminWantCode(t, "invalid name", resp.Topics[1].ErrorCode, kerr.InvalidTopicException)
	adminWantCode(t, "internal topic", resp.Topics[2].ErrorCode, kerr.UnknownTopicOrPartition)
	if !resp.Topics[2].IsInternal {
		t.Fatal("__transaction_state is not flagged internal")
	}

	// Before v4 creation is implied; asking again for an existing topic
	// creates nothing new.
	resp = adminMetadata(t, h, 0, false, "auto0", "auto1")
	if resp.Topics[0].ErrorCode != 0 || len(resp.Topics[0].Partitions) != 3 || resp.Topics[1].ErrorCode != 0 {
		t.Fatalf("v0 auto-create: %+v", resp.Topics)
	}
	if n := h.cp.Image().NumTopics(); n != 2 {
		t.Fatalf("%d topics, want 2 (auto0, auto1)", n)
	}
}

func TestMetadataInternalTopicFlag(t *testing.T) {
	h := newAdminHarness(t, Config{})
	adminCreate(t, h, "__consumer_offsets", 1)
	adminCreate(t, h, "__other", 1)
	for _, v := range []int16{1, 12} {
		resp := adminMetadata(t, h, v, false)
		internal := map[string]bool{}
		for _, topic := range resp.Topics {
			internal[*topic.Topic] = topic.IsInternal
		}
		if !internal["__consumer_offsets"] || internal["__other"] {
			t.Fatalf("v%d is_internal: %v", v, internal)
		}
	}
}

func TestMetadataByTopicID(t *testing.T) {
	h := newAdminHarness(t, Config{})
	created := adminCreate(t, h, "byid", 2)
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	req.Topics = []kmsg.MetadataRequestTopic{{TopicID: created.TopicID}, {TopicID: [16]byte{9, 9, 9}}, {}}
	resp := h.do(req).(*kmsg.MetadataResponse)
	if len(resp.Topics) != 3 {
		t.Fatalf("topics %+v", resp.Topics)
	}
	if got := resp.Topics[0]; got.ErrorCode != 0 || got.Topic == nil || *got.Topic != "byid" || len(got.Partitions) != 2 {
		t.Fatalf("by id: %+v", got)
	}
	if got := resp.Topics[1]; got.Topic != nil || got.TopicID != [16]byte{9, 9, 9} {
		t.Fatalf("unknown id: %+v", got)
	}
	adminWantCode(t, "unknown id", resp.Topics[1].ErrorCode, kerr.UnknownTopicID)
	adminWantCode(t, "no name, no id", resp.Topics[2].ErrorCode, kerr.InvalidRequest)
}

// A replica on a fenced broker is offline; a partition whose only replica
// is fenced has no leader.
func TestMetadataOfflineReplicasAndNoLeader(t *testing.T) {
	h := newAdminHarness(t, Config{})
	adminRegister(t, h, 2, "rack-b")
	adminHeartbeat(t, h, 2, false)

	resp := adminMetadata(t, h, 1, false)
	if len(resp.Brokers) != 2 || resp.Brokers[1].NodeID != 2 || resp.Brokers[1].Rack == nil || *resp.Brokers[1].Rack != "rack-b" ||
		resp.Brokers[1].Host != "127.0.0.2" || resp.Brokers[1].Port != 9092 || resp.Brokers[0].Rack != nil {
		t.Fatalf("brokers %+v", resp.Brokers)
	}

	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	for name, replicas := range map[string][]int32{"both": {1, 2}, "only2": {2}} {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, -1, -1
		rt.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: replicas}}
		req.Topics = append(req.Topics, rt)
	}
	for _, topic := range h.do(req).(*kmsg.CreateTopicsResponse).Topics {
		adminWantCode(t, "create "+topic.Topic, topic.ErrorCode, nil)
	}
	adminHeartbeat(t, h, 2, true) // fence broker 2

	for _, v := range []int16{0, 4, 5, 12} {
		resp := adminMetadata(t, h, v, false, "both", "only2")
		if len(resp.Brokers) != 1 {
			t.Fatalf("v%d: fenced broker listed: %+v", v, resp.Brokers)
		}
		both, only2 := resp.Topics[0].Partitions[0], resp.Topics[1].Partitions[0]
		adminWantCode(t, "only2", only2.ErrorCode, kerr.LeaderNotAvailable)
		if only2.Leader != -1 {
			t.Fatalf("v%d only2 leader %d", v, only2.Leader)
		}
		if v == 0 {
			// v0 lists live replicas only and says one is missing.
			adminWantCode(t, "v0 both", both.ErrorCode, kerr.ReplicaNotAvailable)
			if !slices.Equal(both.Replicas, []int32{1}) || both.Leader != 1 {
				t.Fatalf("v0 both: %+v", both)
			}
			continue
		}
		adminWantCode(t, "both", both.ErrorCode, nil)
		if !slices.Equal(both.Replicas, []int32{1, 2}) || both.Leader != 1 {
			t.Fatalf("v%d both: %+v", v, both)
		}
		wantOffline := []int32{2}
		if v < 5 {
			wantOffline = nil // not in the schema before v5
		}
		if !slices.Equal(both.OfflineReplicas, wantOffline) || !slices.Equal(only2.OfflineReplicas, wantOffline) {
			t.Fatalf("v%d offline replicas %v %v, want %v", v, both.OfflineReplicas, only2.OfflineReplicas, wantOffline)
		}
	}
}
