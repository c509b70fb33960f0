package api

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/coord"
)

// OffsetFetch v0–9 (kafka-python and librdkafka send v1). Kafka read v0
// from ZooKeeper; here every version reads the coordinator. v2+ may ask for
// every partition the group committed (null topics) and has a top-level
// error code; v0–1 carry a group-level error on each requested partition
// instead, so old clients still see NOT_COORDINATOR and retry. v7 adds
// require_stable (a partition with a pending transactional commit answers
// UNSTABLE_OFFSET_COMMIT until its transaction's marker), v8 several
// groups per request, each with its own error, v9 the member id and epoch
// of KIP-848 members: in a consumer-protocol group an unknown member gets
// UNKNOWN_MEMBER_ID and another epoch STALE_MEMBER_EPOCH (classic groups do
// not check them, as in Kafka).
//
// A partition without a commit, in a group that exists or not, is offset -1
// with no error (docs/broker.md, wire compatibility).
var offsetFetchHandler = handler{key: 9, minVersion: 0, maxVersion: 9, serve: serveOffsetFetch}

func serveOffsetFetch(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.OffsetFetchRequest)
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version < 8 {
		freq := coord.FetchRequest{GroupID: req.Group, RequireStable: req.RequireStable}
		if req.Topics != nil {
			freq.Topics = make([]coord.FetchTopic, 0, len(req.Topics))
			for _, t := range req.Topics {
				freq.Topics = append(freq.Topics, coord.FetchTopic{Name: t.Topic, Partitions: t.Partitions})
			}
		}
		res, err := offsetFetchAuthorized(ctx, b, r, freq)
		offsetFetchFillSingle(resp, freq, res, err)
		return resp, nil
	}
	resp.Groups = make([]kmsg.OffsetFetchResponseGroup, 0, len(req.Groups))
	for _, rg := range req.Groups {
		freq := coord.FetchRequest{GroupID: rg.Group, RequireStable: req.RequireStable}
		if req.Version >= 9 && (rg.MemberID != nil || rg.MemberEpoch >= 0) {
			// A KIP-848 member's fetch: checked against its group.
			freq.CheckMember, freq.MemberID, freq.MemberEpoch = true, groupString(rg.MemberID), rg.MemberEpoch
		}
		if rg.Topics != nil {
			freq.Topics = make([]coord.FetchTopic, 0, len(rg.Topics))
			for _, t := range rg.Topics {
				freq.Topics = append(freq.Topics, coord.FetchTopic{Name: t.Topic, Partitions: t.Partitions})
			}
		}
		res, err := offsetFetchAuthorized(ctx, b, r, freq)
		resp.Groups = append(resp.Groups, offsetFetchGroup(rg.Group, res, err))
	}
	return resp, nil
}

// offsetFetchAuthorized fetches one group's offsets if the principal may
// describe the group, and hides the topics it may not describe: a topic
// asked for by name gets TOPIC_AUTHORIZATION_FAILED on each partition, and
// with every topic asked for (null) it is left out, as in Kafka.
func offsetFetchAuthorized(ctx context.Context, b *Broker, r *Request, freq coord.FetchRequest) (coord.FetchResult, error) {
	z := b.authz(r)
	if err := z.group(auth.OpDescribe, freq.GroupID); err != nil {
		return coord.FetchResult{}, err
	}
	res, err := offsetFetchRun(ctx, b, freq)
	if err != nil || !z.enabled() {
		return res, err
	}
	kept := res.Topics[:0]
	for _, t := range res.Topics {
		denied := z.topic(auth.OpDescribe, t.Name)
		switch {
		case denied == nil:
		case freq.Topics == nil:
			continue
		default:
			for i := range t.Partitions {
				t.Partitions[i] = coord.FetchPartitionResult{Partition: t.Partitions[i].Partition, Offset: -1, LeaderEpoch: -1, Err: denied}
			}
		}
		kept = append(kept, t)
	}
	res.Topics = kept
	return res, nil
}

// offsetFetchRun fetches one group's offsets.
func offsetFetchRun(ctx context.Context, b *Broker, freq coord.FetchRequest) (coord.FetchResult, error) {
	g, err := groups(b)
	if err != nil {
		return coord.FetchResult{}, err
	}
	res, err := g.FetchOffsets(ctx, freq)
	if err != nil {
		return res, fmt.Errorf("fetch offsets of group %q: %w", freq.GroupID, err)
	}
	return res, nil
}

// offsetFetchFillSingle fills a v0–7 response. A group-level error is the
// top-level code from v2; before v2 every requested partition carries it.
func offsetFetchFillSingle(resp *kmsg.OffsetFetchResponse, freq coord.FetchRequest, res coord.FetchResult, err error) {
	if err != nil {
		code := groupErrorCode(err)
		if resp.Version >= 2 {
			resp.ErrorCode = code
			return
		}
		for _, t := range freq.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Name
			for _, p := range t.Partitions {
				rp := offsetFetchPartition(coord.FetchPartitionResult{Partition: p, Offset: -1, LeaderEpoch: -1})
				rp.ErrorCode = code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return
	}
	resp.Topics = make([]kmsg.OffsetFetchResponseTopic, 0, len(res.Topics))
	for _, t := range res.Topics {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Name
		rt.Partitions = make([]kmsg.OffsetFetchResponseTopicPartition, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			rt.Partitions = append(rt.Partitions, offsetFetchPartition(p))
		}
		resp.Topics = append(resp.Topics, rt)
	}
}

// offsetFetchPartition is one partition of a v0–7 response. Metadata is ""
// for a partition without a commit, as Kafka sends it.
func offsetFetchPartition(p coord.FetchPartitionResult) kmsg.OffsetFetchResponseTopicPartition {
	rp := kmsg.NewOffsetFetchResponseTopicPartition()
	metadata := p.Metadata
	rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p.Partition, p.Offset, p.LeaderEpoch, &metadata
	rp.ErrorCode = errorCode(p.Err)
	return rp
}

// offsetFetchGroup is one group of a v8+ response.
func offsetFetchGroup(group string, res coord.FetchResult, err error) kmsg.OffsetFetchResponseGroup {
	out := kmsg.NewOffsetFetchResponseGroup()
	out.Group = group
	if err != nil {
		out.ErrorCode = groupErrorCode(err)
		return out
	}
	out.Topics = make([]kmsg.OffsetFetchResponseGroupTopic, 0, len(res.Topics))
	for _, t := range res.Topics {
		rt := kmsg.NewOffsetFetchResponseGroupTopic()
		rt.Topic = t.Name
		rt.Partitions = make([]kmsg.OffsetFetchResponseGroupTopicPartition, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
			metadata := p.Metadata
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p.Partition, p.Offset, p.LeaderEpoch, &metadata
			rp.ErrorCode = errorCode(p.Err)
			rt.Partitions = append(rt.Partitions, rp)
		}
		out.Topics = append(out.Topics, rt)
	}
	return out
}
