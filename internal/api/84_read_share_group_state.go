package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/coord"
)

// ReadShareGroupState v0 (Kafka 4.1): a share partition's leader reads the
// partition's state (SPSO, state epoch, state batches) when it first uses
// it. A newer leader epoch is recorded before the answer, fencing the
// previous leader. A share partition initialized without a start offset
// reads as start offset -1; one never initialized, or deleted, is
// INVALID_REQUEST, as in Kafka. Sent by brokers: CLUSTER_ACTION.
var readShareGroupStateHandler = handler{key: 84, minVersion: 0, maxVersion: 0, serve: serveReadShareGroupState}

func serveReadShareGroupState(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ReadShareGroupStateRequest)
	resp := req.ResponseKind().(*kmsg.ReadShareGroupStateResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewReadShareGroupStateResponseTopic()
		rt.TopicID = t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewReadShareGroupStateResponseTopicPartition()
			rp.Partition = p.Partition
			key := coord.ShareStateKey{GroupID: req.GroupID, TopicID: t.TopicID, Partition: p.Partition}
			rp.ErrorCode, rp.ErrorMessage = shareStateCall(ctx, b, r, func(s ShareStates) error {
				res, err := s.ReadState(ctx, key, p.LeaderEpoch)
				if err != nil {
					return err
				}
				rp.StateEpoch, rp.StartOffset = res.StateEpoch, res.StartOffset
				rp.StateBatches = make([]kmsg.ReadShareGroupStateResponseTopicPartitionStateBatch, len(res.Batches))
				for i, sb := range res.Batches {
					rp.StateBatches[i] = kmsg.ReadShareGroupStateResponseTopicPartitionStateBatch{FirstOffset: sb.FirstOffset,
						LastOffset: sb.LastOffset, DeliveryState: sb.DeliveryState, DeliveryCount: sb.DeliveryCount}
				}
				return nil
			})
			if rp.ErrorCode != 0 {
				// Kafka's error answer carries only the code and message:
				// a state read before the failure is not passed on.
				rp.StateEpoch, rp.StartOffset, rp.StateBatches = 0, 0, nil
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
