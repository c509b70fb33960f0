package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/kraft"
)

// ElectLeaders v0–2, decided by the controller (kafka-leader-election.sh,
// kadm's ElectLeaders). v0 runs preferred elections only; v1 adds
// election_type (0 preferred, 1 unclean) and a top-level error code; v2 is
// flexible. Null topics means every partition, and then, as in Kafka, the
// response lists only the partitions that needed an election: those
// already led by the replica the election would pick are left out, where
// a named partition answers ELECTION_NOT_NEEDED.
var electLeadersHandler = handler{key: 43, minVersion: 0, maxVersion: 2, serve: serveElectLeaders}

func serveElectLeaders(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ElectLeadersRequest)
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	creq := controller.ElectLeadersRequest{Type: controller.ElectionType(req.ElectionType)}
	if req.Version == 0 {
		creq.Type = controller.ElectPreferred // v0 has no election_type
	}
	if req.Topics != nil {
		// An empty, non-null list asks for nothing. It must not reach the
		// controller: forwarded through gob it would arrive as nil, which
		// means every partition.
		if len(req.Topics) == 0 {
			return resp, nil
		}
		creq.Partitions = make([]controller.TopicPartitions, 0, len(req.Topics))
		for _, t := range req.Topics {
			creq.Partitions = append(creq.Partitions, controller.TopicPartitions{Topic: t.Topic, Partitions: t.Partitions})
		}
	}
	var results []controller.ElectionResult
	err := b.authz(r).cluster(auth.OpAlter)
	if err == nil {
		err = electLeadersCheckType(creq.Type)
	}
	if err == nil {
		ctx, cancel := adminContext(ctx, req.TimeoutMillis)
		defer cancel()
		var cresp controller.ElectLeadersResponse
		cresp, err = adminSubmit[controller.ElectLeadersResponse](ctx, b, kraft.ElectLeaders{Request: creq})
		results = cresp.Results
	}
	if err != nil {
		// The whole request failed: the top-level code says so (v1+), and
		// each named partition carries it too, as v0 has nowhere else to
		// put it.
		resp.ErrorCode = errorCode(err)
		results = electLeadersFailAll(creq.Partitions, err)
	}
	resp.Topics = electLeadersGroup(results)
	return resp, nil
}

// electLeadersCheckType rejects an election type the controller does not
// know before anything is submitted, so a bad request fails once instead
// of once per partition of the cluster.
func electLeadersCheckType(typ controller.ElectionType) error {
	if typ != controller.ElectPreferred && typ != controller.ElectUnclean {
		return adminInvalidRequest("unknown election type %d (want 0 preferred or 1 unclean)", typ)
	}
	return nil
}

// electLeadersFailAll gives every named partition err.
func electLeadersFailAll(named []controller.TopicPartitions, err error) []controller.ElectionResult {
	var results []controller.ElectionResult
	for _, tp := range named {
		for _, p := range tp.Partitions {
			results = append(results, controller.ElectionResult{Topic: tp.Topic, Partition: p, Err: err})
		}
	}
	return results
}

// electLeadersGroup lists results topic by topic, each topic where its
// first result came, partitions in the controller's order.
func electLeadersGroup(results []controller.ElectionResult) []kmsg.ElectLeadersResponseTopic {
	var topics []kmsg.ElectLeadersResponseTopic
	index := map[string]int{}
	for _, res := range results {
		i, ok := index[res.Topic]
		if !ok {
			i = len(topics)
			index[res.Topic] = i
			t := kmsg.NewElectLeadersResponseTopic()
			t.Topic = res.Topic
			topics = append(topics, t)
		}
		p := kmsg.NewElectLeadersResponseTopicPartition()
		p.Partition = res.Partition
		p.ErrorCode, p.ErrorMessage = errorCode(res.Err), errorMessage(res.Err)
		topics[i].Partitions = append(topics[i].Partitions, p)
	}
	return topics
}
