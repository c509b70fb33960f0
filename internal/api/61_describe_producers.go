package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
)

// DescribeProducers v0: the idempotent producers a partition has state
// for (KIP-664), as kafka-transactions.sh --describe-producers shows.
var describeProducersHandler = handler{key: 61, minVersion: 0, maxVersion: 0, serve: serveDescribeProducers}

func serveDescribeProducers(_ context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DescribeProducersRequest)
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	z := b.authz(r)
	for _, t := range req.Topics {
		rt := kmsg.NewDescribeProducersResponseTopic()
		rt.Topic = t.Topic
		denied := z.topic(auth.OpRead, t.Topic)
		for _, id := range t.Partitions {
			out := kmsg.NewDescribeProducersResponseTopicPartition()
			out.Partition = id
			if denied != nil {
				out.ErrorCode, out.ErrorMessage = errorCode(denied), errorMessage(denied)
				rt.Partitions = append(rt.Partitions, out)
				continue
			}
			p, err := b.Partitions.Partition(t.Topic, id)
			if err != nil {
				out.ErrorCode, out.ErrorMessage = errorCode(err), errorMessage(err)
				rt.Partitions = append(rt.Partitions, out)
				continue
			}
			for _, s := range p.Producers() {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch, ap.LastSequence = s.ProducerID, int32(s.ProducerEpoch), s.LastSequence
				ap.LastTimestamp, ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = s.LastTimestampMs, s.CoordinatorEpoch, s.CurrentTxnStartOffset
				out.ActiveProducers = append(out.ActiveProducers, ap)
			}
			rt.Partitions = append(rt.Partitions, out)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
