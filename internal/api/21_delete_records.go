package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
)

// DeleteRecords v0–2: move a partition's log start offset forward; whole
// segments below it are deleted as retention would.
var deleteRecordsHandler = handler{key: 21, minVersion: 0, maxVersion: 2, serve: serveDeleteRecords}

func serveDeleteRecords(_ context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	z := b.authz(r)
	for _, t := range req.Topics {
		rt := kmsg.NewDeleteRecordsResponseTopic()
		rt.Topic = t.Topic
		denied := z.topic(auth.OpDelete, t.Topic)
		for _, p := range t.Partitions {
			out := kmsg.NewDeleteRecordsResponseTopicPartition()
			out.Partition = p.Partition
			if denied != nil {
				out.LowWatermark, out.ErrorCode = -1, errorCode(denied)
				rt.Partitions = append(rt.Partitions, out)
				continue
			}
			lowWatermark, err := deleteRecordsOne(b, t.Topic, p.Partition, p.Offset)
			out.LowWatermark, out.ErrorCode = lowWatermark, errorCode(err)
			rt.Partitions = append(rt.Partitions, out)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// deleteRecordsOne returns the new low watermark (log start offset), -1 on
// error. The partition takes -1 as the high watermark and, as in Kafka,
// refuses offsets past it: consumers never saw anything above it.
func deleteRecordsOne(b *Broker, topic string, id int32, offset int64) (int64, error) {
	p, err := b.Partitions.Partition(topic, id)
	if err != nil {
		return -1, err
	}
	lowWatermark, err := p.DeleteRecordsBefore(offset)
	if err != nil {
		return -1, err
	}
	return lowWatermark, nil
}
