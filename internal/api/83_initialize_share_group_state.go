package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/coord"
)

// InitializeShareGroupState v0 (Kafka 4.1): a group coordinator starts a
// share partition's state at a start offset in a new state epoch, on the
// share coordinator of each partition (coord.ShareCoordinator). Sent by
// brokers: CLUSTER_ACTION.
var initializeShareGroupStateHandler = handler{key: 83, minVersion: 0, maxVersion: 0, serve: serveInitializeShareGroupState}

func serveInitializeShareGroupState(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.InitializeShareGroupStateRequest)
	resp := req.ResponseKind().(*kmsg.InitializeShareGroupStateResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewInitializeShareGroupStateResponseTopic()
		rt.TopicID = t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewInitializeShareGroupStateResponseTopicPartition()
			rp.Partition = p.Partition
			key := coord.ShareStateKey{GroupID: req.GroupID, TopicID: t.TopicID, Partition: p.Partition}
			rp.ErrorCode, rp.ErrorMessage = shareStateCall(ctx, b, r, func(s ShareStates) error {
				return s.InitializeState(ctx, key, p.StateEpoch, p.StartOffset)
			})
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
