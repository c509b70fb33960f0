package api

import (
	"cmp"
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/coord"
)

// OffsetCommit v0–9. Kafka kept v0 offsets in ZooKeeper and v1+ in
// __consumer_offsets; here every version commits to the coordinator, v0
// and v1 as a simple commit or a member's commit like v2 (kafka-go sends
// v2, librdkafka needs 1–2 in range). v1's per-partition commit timestamp
// is ignored, as Kafka 3.x does. v2–4 carry a retention time, v6 the
// leader epoch, v7 group.instance.id. A commit with generation -1 and no
// member id is a simple (non-group) commit, accepted while the group has no
// members.
//
// Partitions missing from the metadata image are answered
// UNKNOWN_TOPIC_OR_PARTITION here and never reach the coordinator; an error
// of the whole group (unknown member, illegal generation, rebalance in
// progress, not coordinator) is every other partition's code, as
// OffsetCommit has no top-level one.
var offsetCommitHandler = handler{key: 8, minVersion: 0, maxVersion: 9, serve: serveOffsetCommit}

// offsetCommitSent locates one topic sent to the coordinator in the
// request: its index and the indexes of its partitions sent.
type offsetCommitSent struct {
	topic      int
	partitions []int
}

func serveOffsetCommit(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.OffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	resp.Topics = make([]kmsg.OffsetCommitResponseTopic, len(req.Topics))
	creq := coord.CommitRequest{
		GroupID:         req.Group,
		GenerationID:    req.Generation,
		MemberID:        req.MemberID,
		GroupInstanceID: groupString(req.InstanceID),
		RetentionTimeMs: req.RetentionTimeMillis,
	}
	if req.Version < 2 || req.Version > 4 {
		creq.RetentionTimeMs = -1
	}
	img := b.Control.Image()
	z := b.authz(r)
	groupErr := z.group(auth.OpRead, req.Group)
	var sent []offsetCommitSent
	for i, t := range req.Topics {
		topicErr := z.topic(auth.OpRead, t.Topic)
		out := &resp.Topics[i]
		out.Default()
		out.Topic = t.Topic
		out.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(t.Partitions))
		ct := coord.CommitTopic{Name: t.Topic}
		s := offsetCommitSent{topic: i}
		for j, p := range t.Partitions {
			out.Partitions[j].Default()
			out.Partitions[j].Partition = p.Partition
			if err := cmp.Or(groupErr, topicErr); err != nil {
				// READ on the group comes first: without it, every
				// partition is GROUP_AUTHORIZATION_FAILED.
				out.Partitions[j].ErrorCode = errorCode(err)
				continue
			}
			if !groupPartitionKnown(img, t.Topic, p.Partition) {
				out.Partitions[j].ErrorCode = errorCode(groupErrUnknownPartition(t.Topic, p.Partition))
				continue
			}
			leaderEpoch := p.LeaderEpoch
			if req.Version < 6 {
				leaderEpoch = -1
			}
			ct.Partitions = append(ct.Partitions, coord.CommitPartition{
				Partition: p.Partition, Offset: p.Offset, LeaderEpoch: leaderEpoch, Metadata: groupString(p.Metadata),
			})
			s.partitions = append(s.partitions, j)
		}
		if len(ct.Partitions) > 0 {
			creq.Topics = append(creq.Topics, ct)
			sent = append(sent, s)
		}
	}
	if len(sent) == 0 {
		return resp, nil
	}
	res, err := offsetCommitRun(ctx, b, r, creq, sent)
	for k, s := range sent {
		out := resp.Topics[s.topic].Partitions
		for l, j := range s.partitions {
			if err != nil {
				out[j].ErrorCode = groupErrorCode(err)
				continue
			}
			out[j].ErrorCode = errorCode(res.Topics[k].Partitions[l].Err)
		}
	}
	return resp, nil
}

// offsetCommitRun commits and checks the result has the request's shape, so
// results can be matched to partitions by position.
func offsetCommitRun(ctx context.Context, b *Broker, r *Request, creq coord.CommitRequest, sent []offsetCommitSent) (coord.CommitResult, error) {
	g, err := groups(b)
	if err != nil {
		return coord.CommitResult{}, err
	}
	if creq.GenerationID < 0 {
		// A commit without a generation creates a group: not under a
		// share group's id (share_group_ids.go).
		if err := errShareGroupID(b, creq.GroupID); err != nil {
			return coord.CommitResult{}, fmt.Errorf("%w: %w", coord.ErrGroupIDNotFound, err)
		}
	}
	var res coord.CommitResult
	b.awaitCoordinator(r, func() { res, err = g.CommitOffsets(ctx, creq) })
	if err != nil {
		return res, fmt.Errorf("commit offsets of group %q: %w", creq.GroupID, err)
	}
	if len(res.Topics) != len(sent) {
		return res, fmt.Errorf("coordinator answered %d of %d committed topics", len(res.Topics), len(sent))
	}
	for k, s := range sent {
		if len(res.Topics[k].Partitions) != len(s.partitions) {
			return res, fmt.Errorf("coordinator answered %d of %d partitions of %s", len(res.Topics[k].Partitions), len(s.partitions), creq.Topics[k].Name)
		}
	}
	return res, nil
}
