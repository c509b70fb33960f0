package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
)

// DeleteShareGroupOffsets v0 (KIP-932, Kafka 4.1): delete the start
// offset of every share partition of the given topics of an empty share
// group, so its next consumer starts at share.auto.offset.reset (the
// state starts anew with none, share.Coordinator.DeleteOffsets). DELETE on the group
// (GROUP_AUTHORIZATION_FAILED at the top) and READ on each topic
// (TOPIC_AUTHORIZATION_FAILED on it), checked before anything exists; a
// missing topic, or one the group has no state for, is
// UNKNOWN_TOPIC_OR_PARTITION. GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP and
// coordinator errors are top-level codes, as Kafka answers.
var deleteShareGroupOffsetsHandler = handler{key: 92, minVersion: 0, maxVersion: 0, serve: serveDeleteShareGroupOffsets}

func serveDeleteShareGroupOffsets(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DeleteShareGroupOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteShareGroupOffsetsResponse)
	z := b.authz(r)
	if err := z.group(auth.OpDelete, req.GroupID); err != nil {
		resp.ErrorCode, resp.ErrorMessage = errorCode(err), errorMessage(err)
		return resp, nil
	}
	denied := make([]error, len(req.Topics))
	var topics []string
	for i, t := range req.Topics {
		if denied[i] = z.topic(auth.OpRead, t.Topic); denied[i] == nil {
			topics = append(topics, t.Topic)
		}
	}
	results, err := deleteShareGroupOffsets(ctx, b, req.GroupID, topics)
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = groupErrorCode(err), errorMessage(err)
		return resp, nil
	}
	img := b.Control.Image()
	for i, t := range req.Topics {
		rt := kmsg.NewDeleteShareGroupOffsetsResponseTopic()
		rt.Topic = t.Topic
		terr := denied[i]
		if terr == nil {
			terr = results[t.Topic]
			if it, ok := img.Topic(t.Topic); ok {
				rt.TopicID = it.ID
			}
		}
		if terr != nil {
			rt.ErrorCode, rt.ErrorMessage = errorCode(terr), errorMessage(terr)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

func deleteShareGroupOffsets(ctx context.Context, b *Broker, groupID string, topics []string) (map[string]error, error) {
	s, err := shares(b)
	if err != nil {
		return nil, err
	}
	if err := checkShareCoordinator(ctx, b, groupID); err != nil {
		return nil, err
	}
	return s.DeleteOffsets(ctx, groupID, topics, b.Control.Image())
}
