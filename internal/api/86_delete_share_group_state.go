package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/coord"
)

// DeleteShareGroupState v0 (Kafka 4.1): a group coordinator deletes the
// state of a share group's partitions (DeleteGroups of a share group);
// tombstones, durable before the answer. Sent by brokers: CLUSTER_ACTION.
var deleteShareGroupStateHandler = handler{key: 86, minVersion: 0, maxVersion: 0, serve: serveDeleteShareGroupState}

func serveDeleteShareGroupState(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DeleteShareGroupStateRequest)
	resp := req.ResponseKind().(*kmsg.DeleteShareGroupStateResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewDeleteShareGroupStateResponseTopic()
		rt.TopicID = t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewDeleteShareGroupStateResponseTopicPartition()
			rp.Partition = p.Partition
			key := coord.ShareStateKey{GroupID: req.GroupID, TopicID: t.TopicID, Partition: p.Partition}
			rp.ErrorCode, rp.ErrorMessage = shareStateCall(ctx, b, r, func(s ShareStates) error {
				return s.DeleteState(ctx, key)
			})
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
