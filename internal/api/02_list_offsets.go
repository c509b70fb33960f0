package api

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
)

// ListOffsets v0–8: the offset for a timestamp, or for one of the special
// timestamps below. v0 answers the old offsets-before-a-time form.
var listOffsetsHandler = handler{key: 2, minVersion: 0, maxVersion: 8, serve: serveListOffsets}

// The special timestamps of ListOffsets (ListOffsetsRequest.java).
const (
	listOffsetsLatest        = -1 // the high watermark (LSO for read_committed)
	listOffsetsEarliest      = -2 // the log start offset
	listOffsetsMaxTimestamp  = -3 // the record with the largest timestamp (KIP-734, v7+)
	listOffsetsEarliestLocal = -4 // the local log start (KIP-405); all our data is local
	listOffsetsLatestTiered  = -5 // the last tiered offset (KIP-1005); we tier nothing
)

// The replica ids a ListOffsets request comes from: a consumer reads up to
// the high watermark; anything else (a follower, or the debugging id -2)
// may see up to the log end offset, as in Kafka.
const listOffsetsConsumerReplicaID = -1

// listOffsetsMaxOldStyle bounds v0's max_num_offsets answer.
const listOffsetsMaxOldStyle = 2

func serveListOffsets(_ context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	type topicPartition struct {
		topic     string
		partition int32
	}
	seen := map[topicPartition]int{}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			seen[topicPartition{t.Topic, p.Partition}]++
		}
	}
	z := b.authz(r)
	for _, t := range req.Topics {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		denied := z.topic(auth.OpDescribe, t.Topic)
		for _, p := range t.Partitions {
			out := kmsg.NewListOffsetsResponseTopicPartition()
			out.Partition = p.Partition
			switch {
			case denied != nil:
				out.ErrorCode = errorCode(denied)
			case req.Version >= 1 && seen[topicPartition{t.Topic, p.Partition}] > 1:
				// Kafka refuses a partition asked for twice (v1+).
				out.ErrorCode = kerr.InvalidRequest.Code
			case req.Version == 0:
				listOffsetsV0(b, t.Topic, p, &out)
			default:
				listOffsetsOne(b, req, t.Topic, p, &out)
			}
			rt.Partitions = append(rt.Partitions, out)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// listOffsetsOne answers one partition for v1+: an offset, its timestamp
// (-1 for the special timestamps, as Kafka answers) and the leader epoch.
// No record at or after a timestamp answers offset -1, timestamp -1 with no
// error.
func listOffsetsOne(b *Broker, req *kmsg.ListOffsetsRequest, topic string, rp kmsg.ListOffsetsRequestTopicPartition,
	out *kmsg.ListOffsetsResponseTopicPartition) {
	p, err := b.Partitions.Partition(topic, rp.Partition)
	if err == nil && req.Version >= 4 {
		err = p.CheckLeaderEpoch(rp.CurrentLeaderEpoch)
	}
	if err != nil {
		out.ErrorCode = errorCode(err)
		return
	}
	offsets := p.Offsets()
	// The newest offset the asker may see: the last stable offset for
	// read_committed (isolation_level 1, v2+), as Kafka answers.
	lastFetchable := offsets.HighWatermark
	switch {
	case req.ReplicaID != listOffsetsConsumerReplicaID:
		lastFetchable = offsets.LogEndOffset
	case req.IsolationLevel == 1:
		lastFetchable = offsets.LastStableOffset
	}
	epoch := p.LeaderEpoch()
	var offset, timestamp int64
	found := true
	// Kafka hides a record found above what the asker may read (by time
	// or max timestamp) as if there were none.
	capped := false
	switch rp.Timestamp {
	case listOffsetsLatest:
		offset, timestamp = lastFetchable, -1
	case listOffsetsEarliest, listOffsetsEarliestLocal:
		offset, timestamp = offsets.LogStartOffset, -1
	case listOffsetsLatestTiered:
		offset, timestamp, epoch = -1, -1, -1
	case listOffsetsMaxTimestamp:
		offset, timestamp, found, err = p.MaxTimestamp()
		capped = true
	default:
		offset, timestamp, found, err = p.OffsetForTimestamp(rp.Timestamp)
		capped = true
	}
	switch {
	case err != nil:
		out.ErrorCode = errorCode(err)
	case !found || capped && offset >= lastFetchable:
	default:
		out.Offset, out.Timestamp, out.LeaderEpoch = offset, timestamp, epoch
	}
}

// listOffsetsV0 answers v0's offsets-before-a-time form. Kafka lists
// segment base offsets by file modification time; we answer from the
// indexes instead: -1 gives the high watermark (and the log start offset
// when two are asked for), -2 the log start offset, and a time the first
// offset at or after it, else the high watermark, newest first.
func listOffsetsV0(b *Broker, topic string, rp kmsg.ListOffsetsRequestTopicPartition, out *kmsg.ListOffsetsResponseTopicPartition) {
	p, err := b.Partitions.Partition(topic, rp.Partition)
	if err != nil {
		out.ErrorCode = errorCode(err)
		return
	}
	offsets := p.Offsets()
	var list []int64
	switch rp.Timestamp {
	case listOffsetsLatest:
		list = []int64{offsets.HighWatermark}
		if offsets.LogStartOffset < offsets.HighWatermark {
			list = append(list, offsets.LogStartOffset)
		}
	case listOffsetsEarliest:
		list = []int64{offsets.LogStartOffset}
	default:
		offset, _, found, err := p.OffsetForTimestamp(rp.Timestamp)
		if err != nil {
			out.ErrorCode = errorCode(fmt.Errorf("offsets before %d: %w", rp.Timestamp, err))
			return
		}
		if !found || offset > offsets.HighWatermark {
			offset = offsets.HighWatermark
		}
		list = []int64{offset}
	}
	n := max(min(int(rp.MaxNumOffsets), listOffsetsMaxOldStyle, len(list)), 0)
	out.OldStyleOffsets = list[:n]
}
