package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

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
	t, err := txns(b)
	if err == nil {
		err = t.AddOffsets(ctx, coord.TxnProducer{TransactionalID: req.TransactionalID, ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch}, req.Group)
	}
	resp.ErrorCode = txnErrorCode(err, req.Version, producerFencedSinceAddOffsets)
	return resp, nil
}
