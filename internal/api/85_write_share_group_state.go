package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/coord"
)

// WriteShareGroupState v0 (Kafka 4.1): a share partition's leader writes
// the partition's state after an acknowledgement round; the answer comes
// once the state is in __share_group_state with acks=all. A write from a
// stale leader epoch gets FENCED_LEADER_EPOCH, from a stale state epoch
// FENCED_STATE_EPOCH, and one of a share partition never initialized, or
// deleted, INVALID_REQUEST (Kafka's answer: only InitializeShareGroupState
// creates state). v1 (Kafka 4.2's delivery complete count) is not
// served. Sent by brokers: CLUSTER_ACTION.
var writeShareGroupStateHandler = handler{key: 85, minVersion: 0, maxVersion: 0, serve: serveWriteShareGroupState}

func serveWriteShareGroupState(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.WriteShareGroupStateRequest)
	resp := req.ResponseKind().(*kmsg.WriteShareGroupStateResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewWriteShareGroupStateResponseTopic()
		rt.TopicID = t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewWriteShareGroupStateResponseTopicPartition()
			rp.Partition = p.Partition
			key := coord.ShareStateKey{GroupID: req.GroupID, TopicID: t.TopicID, Partition: p.Partition}
			w := coord.ShareWriteRequest{StateEpoch: p.StateEpoch, LeaderEpoch: p.LeaderEpoch, StartOffset: p.StartOffset,
				Batches: make([]coord.ShareStateBatch, len(p.StateBatches))}
			for i, sb := range p.StateBatches {
				w.Batches[i] = coord.ShareStateBatch{FirstOffset: sb.FirstOffset, LastOffset: sb.LastOffset,
					DeliveryState: sb.DeliveryState, DeliveryCount: sb.DeliveryCount}
			}
			rp.ErrorCode, rp.ErrorMessage = shareStateCall(ctx, b, r, func(s ShareStates) error {
				return s.WriteState(ctx, key, w)
			})
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
