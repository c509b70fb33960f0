package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/coord"
)

// ReadShareGroupStateSummary v0 (Kafka 4.1): the state epoch, leader epoch
// and start offset of share partitions, for DescribeShareGroupOffsets on
// the group coordinator; it reads the share coordinator's memory only. v1
// (Kafka 4.2's delivery complete count) is not served. Sent by brokers:
// CLUSTER_ACTION.
var readShareGroupStateSummaryHandler = handler{key: 87, minVersion: 0, maxVersion: 0, serve: serveReadShareGroupStateSummary}

func serveReadShareGroupStateSummary(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ReadShareGroupStateSummaryRequest)
	resp := req.ResponseKind().(*kmsg.ReadShareGroupStateSummaryResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewReadShareGroupStateSummaryResponseTopic()
		rt.TopicID = t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewReadShareGroupStateSummaryResponseTopicPartition()
			rp.Partition = p.Partition
			key := coord.ShareStateKey{GroupID: req.GroupID, TopicID: t.TopicID, Partition: p.Partition}
			rp.ErrorCode, rp.ErrorMessage = shareStateCall(ctx, b, r, func(s ShareStates) error {
				sum, err := s.ReadStateSummary(ctx, key)
				if err != nil {
					return err
				}
				rp.StateEpoch, rp.LeaderEpoch, rp.StartOffset = sum.StateEpoch, sum.LeaderEpoch, sum.StartOffset
				return nil
			})
			if rp.ErrorCode != 0 {
				// Kafka's error answer carries only the code and message:
				// its epochs and start offset are 0, not "none" (-1).
				rp.StateEpoch, rp.LeaderEpoch, rp.StartOffset = 0, 0, 0
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
