package api

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func createPartitionsRequest(v int16, validateOnly bool, topics ...kmsg.CreatePartitionsRequestTopic) *kmsg.CreatePartitionsRequest {
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.Version, req.ValidateOnly, req.Topics, req.TimeoutMillis = v, validateOnly, topics, 10000
	return req
}

func TestCreatePartitions(t *testing.T) {
	h := newAdminHarness(t, Config{})
	adminCreate(t, h, "grow", 1)
	adminCreate(t, h, "placed", 1)
	adminCreate(t, h, "other", 2)

	count := func(name string) int {
		topic, _ := h.cp.Image().Topic(name)
		return len(topic.Partitions)
	}
	// v0: grow, placed by the controller.
	resp := h.do(createPartitionsRequest(0, false, kmsg.CreatePartitionsRequestTopic{Topic: "grow", Count: 3})).(*kmsg.CreatePartitionsResponse)
	adminWantCode(t, "v0 grow", resp.Topics[0].ErrorCode, nil)
	if count("grow") != 3 {
		t.Fatalf("grow has %d partitions", count("grow"))
	}
	// v3 validate-only: checked, not applied.
	resp = h.do(createPartitionsRequest(3, true, kmsg.CreatePartitionsRequestTopic{Topic: "grow", Count: 5})).(*kmsg.CreatePartitionsResponse)
	adminWantCode(t, "validate only", resp.Topics[0].ErrorCode, nil)
	if count("grow") != 3 {
		t.Fatal("validate_only added partitions")
	}
	// v3: explicit assignment, and the errors.
	resp = h.do(createPartitionsRequest(3, false,
		kmsg.CreatePartitionsRequestTopic{Topic: "placed", Count: 2, Assignment: []kmsg.CreatePartitionsRequestTopicAssignment{{Replicas: []int32{1}}}},
		kmsg.CreatePartitionsRequestTopic{Topic: "grow", Count: 2},
		kmsg.CreatePartitionsRequestTopic{Topic: "other", Count: 3, Assignment: []kmsg.CreatePartitionsRequestTopicAssignment{{Replicas: []int32{7}}}},
		kmsg.CreatePartitionsRequestTopic{Topic: "missing", Count: 2},
	)).(*kmsg.CreatePartitionsResponse)
	want := []*kerr.Error{nil, kerr.InvalidPartitions, kerr.InvalidReplicaAssignment, kerr.UnknownTopicOrPartition}
	for i, w := range want {
		adminWantCode(t, resp.Topics[i].Topic, resp.Topics[i].ErrorCode, w)
		if (resp.Topics[i].ErrorMessage != nil) != (w != nil) {
			t.Fatalf("%s message %v", resp.Topics[i].Topic, resp.Topics[i].ErrorMessage)
		}
	}
	if count("placed") != 2 || count("other") != 2 {
		t.Fatalf("placed %d, other %d partitions", count("placed"), count("other"))
	}
}

// TestCreatePartitionsReplicationFactorAboveUnfencedBrokers: only unfenced
// brokers hold new replicas, so once broker 2 is fenced a topic of
// replication factor 2 can neither be created nor grown on the one broker
// left, and both answer INVALID_REPLICATION_FACTOR as Kafka does.
func TestCreatePartitionsReplicationFactorAboveUnfencedBrokers(t *testing.T) {
	h := newAdminHarness(t, Config{})
	adminRegister(t, h, 2, "")
	adminHeartbeat(t, h, 2, false)
	create := kmsg.NewPtrCreateTopicsRequest()
	create.Version, create.TimeoutMillis = 7, 10000
	create.Topics = append(create.Topics, createTopicsTopic("pair", 1, 2))
	cresp := h.do(create).(*kmsg.CreateTopicsResponse)
	adminWantCode(t, "create rf 2 on two brokers", cresp.Topics[0].ErrorCode, nil)

	adminHeartbeat(t, h, 2, true)
	create.Topics[0].Topic = "pair2"
	cresp = h.do(create).(*kmsg.CreateTopicsResponse)
	adminWantCode(t, "create rf 2 with one unfenced broker", cresp.Topics[0].ErrorCode, kerr.InvalidReplicationFactor)
	resp := h.do(createPartitionsRequest(3, false, kmsg.CreatePartitionsRequestTopic{Topic: "pair", Count: 2})).(*kmsg.CreatePartitionsResponse)
	adminWantCode(t, "grow rf 2 with one unfenced broker", resp.Topics[0].ErrorCode, kerr.InvalidReplicationFactor)
}
