package api

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/partition"
)

// AddPartitionsToTxn v0–5. v0–3 is the producer's form: one transaction,
// its partitions added once the coordinator's record is durable; the
// coordinator's answer applies to every partition. v4+ (KIP-890) is the
// brokers' batched form: several transactions, each either added or, with
// verify_only, only checked, which is how a partition leader asks whether
// a transactional produce belongs to an ongoing transaction. v5 only adds
// codes this coordinator does not return.
//
// A partition of a topic that does not exist gets UNKNOWN_TOPIC_OR_PARTITION
// and the others OPERATION_NOT_ATTEMPTED, as in Kafka: nothing is added.
var addPartitionsToTxnHandler = handler{key: 24, minVersion: 0, maxVersion: 5, serve: serveAddPartitionsToTxn}

// producerFencedSinceAddPartitions is the first AddPartitionsToTxn version
// whose clients know PRODUCER_FENCED (KIP-588).
const producerFencedSinceAddPartitions = 2

func serveAddPartitionsToTxn(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.AddPartitionsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	z := b.authz(r)
	if req.Version < 4 {
		codes := addPartitionsOne(ctx, b, r, z, req.Version, req.TransactionalID, req.ProducerID, req.ProducerEpoch, false, req.Topics)
		for _, t := range codes {
			rt := kmsg.AddPartitionsToTxnResponseTopic{Topic: t.topic}
			for _, p := range t.partitions {
				rt.Partitions = append(rt.Partitions, kmsg.AddPartitionsToTxnResponseTopicPartition{Partition: p.partition, ErrorCode: p.code})
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	// v4+ is the brokers' batched form (KIP-890): CLUSTER_ACTION, as Kafka
	// asks of inter-broker requests.
	if err := z.cluster(auth.OpClusterAction); err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	for _, tx := range req.Transactions {
		topics := make([]kmsg.AddPartitionsToTxnRequestTopic, len(tx.Topics))
		for i, t := range tx.Topics {
			topics[i] = kmsg.AddPartitionsToTxnRequestTopic{Topic: t.Topic, Partitions: t.Partitions}
		}
		rtx := kmsg.AddPartitionsToTxnResponseTransaction{TransactionalID: tx.TransactionalID}
		for _, t := range addPartitionsOne(ctx, b, r, nil, req.Version, tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly, topics) {
			rt := kmsg.AddPartitionsToTxnResponseTransactionTopic{Topic: t.topic}
			for _, p := range t.partitions {
				rt.Partitions = append(rt.Partitions, kmsg.AddPartitionsToTxnResponseTransactionTopicPartition{Partition: p.partition, ErrorCode: p.code})
			}
			rtx.Topics = append(rtx.Topics, rt)
		}
		resp.Transactions = append(resp.Transactions, rtx)
	}
	return resp, nil
}

type partitionCode struct {
	partition int32
	code      int16
}

type topicCodes struct {
	topic      string
	partitions []partitionCode
}

// addPartitionsOne adds (or verifies) one transaction's partitions and
// returns a code per partition, in request order.
func addPartitionsOne(ctx context.Context, b *Broker, r *Request, z *authz, version int16, id string, producerID int64, epoch int16,
	verifyOnly bool, topics []kmsg.AddPartitionsToTxnRequestTopic) []topicCodes {
	var tps []coord.TxnTopicPartition
	var unknown error
	img := b.Control.Image()
	for _, t := range topics {
		for _, p := range t.Partitions {
			tps = append(tps, coord.TxnTopicPartition{Topic: t.Topic, Partition: p})
			if _, ok := img.Partition(t.Topic, p); !ok && unknown == nil {
				unknown = fmt.Errorf("%s-%d: %w", t.Topic, p, partition.ErrUnknownTopicOrPartition)
			}
		}
	}
	codes := make([]int16, len(tps))
	producer := coord.TxnProducer{TransactionalID: id, ProducerID: producerID, ProducerEpoch: epoch}
	t, err := txns(b)
	switch {
	case addPartitionsAuthorize(z, id, tps, codes):
	case err != nil:
		fill(codes, txnErrorCode(err, version, producerFencedSinceAddPartitions))
	case unknown != nil:
		for i, tp := range tps {
			codes[i] = kerr.OperationNotAttempted.Code
			if _, ok := img.Partition(tp.Topic, tp.Partition); !ok {
				codes[i] = kerr.UnknownTopicOrPartition.Code
			}
		}
	case verifyOnly:
		var errs []error
		var err error
		b.awaitCoordinator(r, func() { errs, err = t.VerifyPartitions(ctx, producer, tps) })
		if err != nil {
			fill(codes, txnErrorCode(err, version, producerFencedSinceAddPartitions))
			break
		}
		for i := range codes {
			codes[i] = txnErrorCode(errs[i], version, producerFencedSinceAddPartitions)
		}
	default:
		var err error
		b.awaitCoordinator(r, func() { err = t.AddPartitions(ctx, producer, tps) })
		fill(codes, txnErrorCode(err, version, producerFencedSinceAddPartitions))
	}
	var out []topicCodes
	i := 0
	for _, t := range topics {
		tc := topicCodes{topic: t.Topic}
		for _, p := range t.Partitions {
			tc.partitions = append(tc.partitions, partitionCode{partition: p, code: codes[i]})
			i++
		}
		out = append(out, tc)
	}
	return out
}

func fill(codes []int16, code int16) {
	for i := range codes {
		codes[i] = code
	}
}

// addPartitionsAuthorize checks a producer's AddPartitionsToTxn (z is nil
// for the brokers' batched form, authorized as a whole): WRITE on the
// transactional id, else TRANSACTIONAL_ID_AUTHORIZATION_FAILED on every
// partition; then WRITE on each topic, else TOPIC_AUTHORIZATION_FAILED on
// its partitions and OPERATION_NOT_ATTEMPTED on the others, as in Kafka.
// It reports whether it refused the request, with codes filled.
func addPartitionsAuthorize(z *authz, id string, tps []coord.TxnTopicPartition, codes []int16) bool {
	if z == nil || !z.enabled() {
		return false
	}
	if err := z.transactionalID(auth.OpWrite, id); err != nil {
		fill(codes, errorCode(err))
		return true
	}
	refused := false
	for i, tp := range tps {
		codes[i] = kerr.OperationNotAttempted.Code
		if err := z.topic(auth.OpWrite, tp.Topic); err != nil {
			codes[i], refused = errorCode(err), true
		}
	}
	return refused
}
