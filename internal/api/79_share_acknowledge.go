package api

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/share"
)

// ShareAcknowledge v1-2 (KIP-932, Kafka 4.1; v2 Kafka 4.2): acknowledge
// records without fetching (ACCEPT 1, RELEASE 2, REJECT 3; GAP 0 for
// offsets that hold no record), in a share session whose epoch it
// advances; epoch -1 also closes the session and releases what the member
// still holds. The answer comes once the share partitions' state is on
// disk. v2 (KIP-1222) adds IsRenewAck, with which a batch may be RENEW
// (4): the member's locks on those records run a full lock duration
// again, and the response says how long that is. Any other type, or RENEW
// without IsRenewAck, gets INVALID_REQUEST for its partition.
var shareAcknowledgeHandler = handler{key: 79, minVersion: 1, maxVersion: 2, serve: serveShareAcknowledge}

func serveShareAcknowledge(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ShareAcknowledgeRequest)
	resp := req.ResponseKind().(*kmsg.ShareAcknowledgeResponse)
	ids := make([]metadata.UUID, len(req.Topics))
	for i, t := range req.Topics {
		ids[i] = t.TopicID
	}
	if err := shareGroupAuthorize(b.authz(r), stringOrEmpty(req.GroupID), shareTopicsByID(b, ids)); err != nil {
		resp.ErrorCode, resp.ErrorMessage = errorCode(err), errorMessage(err)
		return resp, nil
	}
	s, err := shares(b)
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = groupErrorCode(err), errorMessage(err)
		return resp, nil
	}
	resp.AcquisitionLockTimeoutMillis = int32(s.LockDurationMs(stringOrEmpty(req.GroupID))) // v2+
	img := b.Control.Image()
	names := shareTopicNames{img: img}
	fr := share.FetchRequest{
		GroupID: stringOrEmpty(req.GroupID), MemberID: stringOrEmpty(req.MemberID), SessionEpoch: req.ShareSessionEpoch,
		AcknowledgeOnly: true, RenewAck: req.IsRenewAck, Acks: map[share.TopicPartition][]share.Acknowledgement{},
	}
	var unknown []kmsg.ShareAcknowledgeResponseTopic
	for _, t := range req.Topics {
		name, ok := names.name(t.TopicID)
		if !ok {
			unknown = append(unknown, unknownShareAcknowledgeTopic(t))
			continue
		}
		for _, p := range t.Partitions {
			tp := share.TopicPartition{Topic: name, Partition: p.Partition}
			for _, a := range p.AcknowledgementBatches {
				fr.Acks[tp] = append(fr.Acks[tp], share.Acknowledgement{FirstOffset: a.FirstOffset, LastOffset: a.LastOffset, Types: a.AcknowledgeTypes})
			}
		}
	}
	results, err := s.Fetch(ctx, fr)
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = groupErrorCode(err), errorMessage(err)
		return resp, nil
	}
	index := map[string]int{}
	for _, res := range results {
		i, ok := index[res.Topic]
		if !ok {
			rt := kmsg.NewShareAcknowledgeResponseTopic()
			if t, ok := img.Topic(res.Topic); ok {
				rt.TopicID = t.ID
			}
			i = len(resp.Topics)
			index[res.Topic] = i
			resp.Topics = append(resp.Topics, rt)
		}
		rp := kmsg.NewShareAcknowledgeResponseTopicPartition()
		rp.Partition = res.Partition
		rp.ErrorCode, rp.ErrorMessage = errorCode(res.AckErr), errorMessage(res.AckErr)
		rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = -1, -1
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, rp)
	}
	resp.Topics = append(resp.Topics, unknown...)
	return resp, nil
}

func unknownShareAcknowledgeTopic(t kmsg.ShareAcknowledgeRequestTopic) kmsg.ShareAcknowledgeResponseTopic {
	err := fmt.Errorf("%w: %x", controller.ErrUnknownTopicID, t.TopicID[:])
	out := kmsg.NewShareAcknowledgeResponseTopic()
	out.TopicID = t.TopicID
	for _, p := range t.Partitions {
		rp := kmsg.NewShareAcknowledgeResponseTopicPartition()
		rp.Partition, rp.ErrorCode, rp.ErrorMessage = p.Partition, errorCode(err), errorMessage(err)
		rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = -1, -1
		out.Partitions = append(out.Partitions, rp)
	}
	return out
}
