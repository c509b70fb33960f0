package console

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets timestamps with special meanings.
const (
	listLatest   = -1 // the high watermark
	listEarliest = -2 // the log start offset
)

// listOffsets asks the leaders of the given partitions of topic for the
// offset at timestamp. Unlike kadm's calls, which list whole topics, it
// names only the partitions a page shows, so a page of a 10,000-partition
// topic costs 200 partitions' worth. kgo splits the request by leader.
func (c *Console) listOffsets(ctx context.Context, topic string, partitions []int32, timestamp int64) (map[int32]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for _, p := range partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = timestamp
		rp.CurrentLeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	out := make(map[int32]int64, len(partitions))
	var errs []error
	for _, shard := range c.client.RequestSharded(ctx, req) {
		if shard.Err != nil {
			errs = append(errs, fmt.Errorf("list offsets: %w", shard.Err))
			continue
		}
		for _, t := range shard.Resp.(*kmsg.ListOffsetsResponse).Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					errs = append(errs, fmt.Errorf("list offsets %s-%d: %w", t.Topic, p.Partition, err))
					continue
				}
				out[p.Partition] = p.Offset
			}
		}
	}
	return out, errors.Join(errs...)
}
