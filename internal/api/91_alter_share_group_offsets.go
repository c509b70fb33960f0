package api

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/share"
)

// AlterShareGroupOffsets v0 (KIP-932, Kafka 4.1): start the given share
// partitions of an empty share group anew at the given start offsets
// (InitializeShareGroupState in a newer state epoch, which fences a
// partition leader still holding the old state). READ on the group
// (GROUP_AUTHORIZATION_FAILED at the top) and on each topic
// (TOPIC_AUTHORIZATION_FAILED on its partitions), checked before anything
// exists; then a topic missing from the image is
// UNKNOWN_TOPIC_OR_PARTITION. GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP and
// coordinator errors are top-level codes, as Kafka answers.
var alterShareGroupOffsetsHandler = handler{key: 91, minVersion: 0, maxVersion: 0, serve: serveAlterShareGroupOffsets}

func serveAlterShareGroupOffsets(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.AlterShareGroupOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.AlterShareGroupOffsetsResponse)
	z := b.authz(r)
	if err := z.group(auth.OpRead, req.GroupID); err != nil {
		resp.ErrorCode, resp.ErrorMessage = errorCode(err), errorMessage(err)
		return resp, nil
	}
	img := b.Control.Image()
	// Each partition's error before the coordinator is asked: nil for
	// those it is asked about.
	early := make([][]error, len(req.Topics))
	offsets := map[string]map[int32]int64{}
	for i, t := range req.Topics {
		topicErr := z.topic(auth.OpRead, t.Topic)
		if _, ok := img.Topic(t.Topic); topicErr == nil && !ok {
			topicErr = fmt.Errorf("topic %q: %w", t.Topic, coord.ErrUnknownTopicOrPartition)
		}
		early[i] = make([]error, len(t.Partitions))
		for j, p := range t.Partitions {
			if topicErr != nil {
				early[i][j] = topicErr
				continue
			}
			if offsets[t.Topic] == nil {
				offsets[t.Topic] = map[int32]int64{}
			}
			offsets[t.Topic][p.Partition] = p.StartOffset
		}
	}
	results, err := alterShareGroupOffsets(ctx, b, req.GroupID, offsets)
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = groupErrorCode(err), errorMessage(err)
		return resp, nil
	}
	for i, t := range req.Topics {
		rt := kmsg.NewAlterShareGroupOffsetsResponseTopic()
		rt.Topic = t.Topic
		if it, ok := img.Topic(t.Topic); ok && z.topic(auth.OpRead, t.Topic) == nil {
			rt.TopicID = it.ID
		}
		for j, p := range t.Partitions {
			rp := kmsg.NewAlterShareGroupOffsetsResponseTopicPartition()
			rp.Partition = p.Partition
			perr := early[i][j]
			if perr == nil {
				perr = results[share.TopicPartition{Topic: t.Topic, Partition: p.Partition}]
			}
			if perr != nil {
				rp.ErrorCode, rp.ErrorMessage = errorCode(perr), errorMessage(perr)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

func alterShareGroupOffsets(ctx context.Context, b *Broker, groupID string, offsets map[string]map[int32]int64) (map[share.TopicPartition]error, error) {
	s, err := shares(b)
	if err != nil {
		return nil, err
	}
	if err := checkShareCoordinator(ctx, b, groupID); err != nil {
		return nil, err
	}
	// A missing group is created, but not under a consumer group's id.
	if err := checkNotOtherGroupType(ctx, b, s, groupID); err != nil {
		return nil, err
	}
	return s.AlterOffsets(ctx, groupID, offsets, b.Control.Image())
}
