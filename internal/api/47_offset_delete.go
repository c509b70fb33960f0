package api

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/coord"
)

// OffsetDelete v0 (KIP-496): delete a group's committed offsets for
// partitions no member subscribes to. Partitions missing from the metadata
// image get UNKNOWN_TOPIC_OR_PARTITION, a subscribed topic
// GROUP_SUBSCRIBED_TO_TOPIC; a group-level error (GROUP_ID_NOT_FOUND,
// NON_EMPTY_GROUP, not coordinator) is the top-level code with no
// partitions, as Kafka answers.
var offsetDeleteHandler = handler{key: 47, minVersion: 0, maxVersion: 0, serve: serveOffsetDelete}

func serveOffsetDelete(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.OffsetDeleteRequest)
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	resp.Topics = make([]kmsg.OffsetDeleteResponseTopic, len(req.Topics))
	dreq := coord.DeleteOffsetsRequest{GroupID: req.Group}
	img := b.Control.Image()
	z := b.authz(r)
	if err := z.group(auth.OpDelete, req.Group); err != nil {
		resp.ErrorCode, resp.Topics = errorCode(err), nil
		return resp, nil
	}
	var sent []offsetCommitSent // request positions, as for OffsetCommit
	for i, t := range req.Topics {
		topicErr := z.topic(auth.OpRead, t.Topic)
		out := &resp.Topics[i]
		out.Topic = t.Topic
		out.Partitions = make([]kmsg.OffsetDeleteResponseTopicPartition, len(t.Partitions))
		dt := coord.FetchTopic{Name: t.Topic}
		s := offsetCommitSent{topic: i}
		for j, p := range t.Partitions {
			out.Partitions[j].Partition = p.Partition
			if topicErr != nil {
				out.Partitions[j].ErrorCode = errorCode(topicErr)
				continue
			}
			if !groupPartitionKnown(img, t.Topic, p.Partition) {
				out.Partitions[j].ErrorCode = errorCode(groupErrUnknownPartition(t.Topic, p.Partition))
				continue
			}
			dt.Partitions = append(dt.Partitions, p.Partition)
			s.partitions = append(s.partitions, j)
		}
		if len(dt.Partitions) > 0 {
			dreq.Topics = append(dreq.Topics, dt)
			sent = append(sent, s)
		}
	}
	res, err := offsetDeleteRun(ctx, b, dreq, sent)
	if err != nil {
		resp.ErrorCode, resp.Topics = groupErrorCode(err), nil
		return resp, nil
	}
	for k, s := range sent {
		out := resp.Topics[s.topic].Partitions
		for l, j := range s.partitions {
			out[j].ErrorCode = errorCode(res.Topics[k].Partitions[l].Err)
		}
	}
	return resp, nil
}

// offsetDeleteRun deletes and checks the result has the request's shape.
// The coordinator is asked even when no partition is left, so that an
// unknown or non-empty group is still reported.
func offsetDeleteRun(ctx context.Context, b *Broker, dreq coord.DeleteOffsetsRequest, sent []offsetCommitSent) (coord.DeleteOffsetsResult, error) {
	g, err := groups(b)
	if err != nil {
		return coord.DeleteOffsetsResult{}, err
	}
	res, err := g.DeleteOffsets(ctx, dreq)
	if err != nil {
		return res, fmt.Errorf("delete offsets of group %q: %w", dreq.GroupID, err)
	}
	if len(res.Topics) != len(sent) {
		return res, fmt.Errorf("coordinator answered %d of %d topics", len(res.Topics), len(sent))
	}
	for k, s := range sent {
		if len(res.Topics[k].Partitions) != len(s.partitions) {
			return res, fmt.Errorf("coordinator answered %d of %d partitions of %s", len(res.Topics[k].Partitions), len(s.partitions), dreq.Topics[k].Name)
		}
	}
	return res, nil
}
