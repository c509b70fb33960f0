package api

import (
	"cmp"
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/coord"
)

// AddOffsetsToTxn v0–4: adds the group's partition of __consumer_offsets
// to the transaction, so that the offsets the producer then commits with
// TxnOffsetCommit are completed by the transaction's markers. v4 only adds
// codes this coordinator does not return.
var addOffsetsToTxnHandler = handler{key: 25, minVersion: 0, maxVersion: 4, serve: serveAddOffsetsToTxn}

// producerFencedSinceAddOffsets: KIP-588's first version.
const producerFencedSinceAddOffsets = 2

func serveAddOffsetsToTxn(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.AddOffsetsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	// WRITE on the transactional id, then READ on the group, as in Kafka.
	z := b.authz(r)
	if err := cmp.Or(z.transactionalID(auth.OpWrite, req.TransactionalID), z.group(auth.OpRead, req.Group)); err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	t, err := txns(b)
	if err == nil {
		producer := coord.TxnProducer{TransactionalID: req.TransactionalID, ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch}
		b.awaitCoordinator(r, func() { err = t.AddOffsets(ctx, producer, req.Group) })
	}
	resp.ErrorCode = txnErrorCode(err, req.Version, producerFencedSinceAddOffsets)
	return resp, nil
}
