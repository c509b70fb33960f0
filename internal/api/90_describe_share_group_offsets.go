package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/share"
)

// DescribeShareGroupOffsets v0 (KIP-932, Kafka 4.1): each share
// partition's start offset, read from the share coordinator
// (ReadShareGroupStateSummary). Topics null means every topic the group
// has state for, known on the group's coordinator only; given topics are
// read wherever the request lands, and a missing topic or state is start
// offset -1 with no error, as Kafka answers. DESCRIBE on the group, and on
// each topic: a denied given topic is TOPIC_AUTHORIZATION_FAILED, a denied
// topic of "all" is left out. v1 (Kafka 4.2's lag, KIP-1226) is not
// served; `sluice group describe` computes the lag itself.
var describeShareGroupOffsetsHandler = handler{key: 90, minVersion: 0, maxVersion: 0, serve: serveDescribeShareGroupOffsets}

func serveDescribeShareGroupOffsets(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DescribeShareGroupOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeShareGroupOffsetsResponse)
	img := b.Control.Image()
	z := b.authz(r)
	for _, g := range req.Groups {
		out := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
		out.GroupID = g.GroupID
		err := z.group(auth.OpDescribe, g.GroupID)
		if err == nil {
			err = describeShareGroupOffsets(ctx, b, z, img, g, &out)
		}
		if err != nil {
			out.ErrorCode, out.ErrorMessage, out.Topics = groupErrorCode(err), errorMessage(err), nil
		}
		resp.Groups = append(resp.Groups, out)
	}
	return resp, nil
}

func describeShareGroupOffsets(ctx context.Context, b *Broker, z *authz, img *metadata.Image, g kmsg.DescribeShareGroupOffsetsRequestGroup, out *kmsg.DescribeShareGroupOffsetsResponseGroup) error {
	s, err := shares(b)
	if err != nil {
		return err
	}
	var topics map[string][]int32
	var denied []kmsg.DescribeShareGroupOffsetsRequestGroupTopic
	if g.Topics == nil {
		if err := checkShareCoordinator(ctx, b, g.GroupID); err != nil {
			return err
		}
	} else {
		topics = map[string][]int32{}
		for _, t := range g.Topics {
			if z.topic(auth.OpDescribe, t.Topic) != nil {
				denied = append(denied, t)
				continue
			}
			topics[t.Topic] = append(topics[t.Topic], t.Partitions...)
		}
	}
	offsets, err := s.DescribeOffsets(ctx, g.GroupID, topics, img)
	if err != nil {
		return err
	}
	byTopic := map[string]int{}
	for _, o := range offsets {
		if g.Topics == nil && z.topic(auth.OpDescribe, o.Topic) != nil {
			continue // not shown to whom may not describe it, as in Kafka
		}
		i, ok := byTopic[o.Topic]
		if !ok {
			i = len(out.Topics)
			byTopic[o.Topic] = i
			rt := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
			rt.Topic = o.Topic
			if t, ok := img.Topic(o.Topic); ok {
				rt.TopicID = t.ID
			}
			out.Topics = append(out.Topics, rt)
		}
		out.Topics[i].Partitions = append(out.Topics[i].Partitions, describedShareOffset(o))
	}
	for _, t := range denied {
		rt := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
			rp.Partition, rp.StartOffset, rp.LeaderEpoch = p, -1, -1
			denial := z.topic(auth.OpDescribe, t.Topic)
			rp.ErrorCode, rp.ErrorMessage = errorCode(denial), errorMessage(denial)
			rt.Partitions = append(rt.Partitions, rp)
		}
		out.Topics = append(out.Topics, rt)
	}
	return nil
}

func describedShareOffset(o share.PartitionOffset) kmsg.DescribeShareGroupOffsetsResponseGroupTopicPartition {
	rp := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
	rp.Partition, rp.StartOffset, rp.LeaderEpoch = o.Partition, o.StartOffset, o.LeaderEpoch
	return rp
}
