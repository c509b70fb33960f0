package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/coord"
)

// InitProducerId v0–5: a producer id for an idempotent producer, from the
// blocks the controller allocates. v0 is advertised because librdkafka
// enables idempotence only when the range includes it (docs/broker.md, wire compatibility).
//
// A transactional id goes to the transaction coordinator, which bumps the
// id's epoch (fencing earlier producers of it) and allocates a producer id
// the first time; v3+ clients may name their current id and epoch
// (KIP-360), and are fenced if a newer producer took over. PRODUCER_FENCED
// is INVALID_PRODUCER_EPOCH before v4 (KIP-588). An empty transactional id
// is INVALID_REQUEST, as in Kafka.
//
// A new id always comes with epoch 0: epoch bumps for a known producer id
// (KIP-360) apply to transactional producers only; Kafka hands an
// idempotent producer a fresh id whatever producer_id/epoch it sends.
var initProducerIDHandler = handler{key: 22, minVersion: 0, maxVersion: 5, serve: serveInitProducerID}

func serveInitProducerID(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	z := b.authz(r)
	switch {
	case req.TransactionalID != nil:
		if err := z.transactionalID(auth.OpWrite, *req.TransactionalID); err != nil {
			resp.ErrorCode = errorCode(err)
			return resp, nil
		}
	case z.cluster(auth.OpIdempotentWrite) != nil && !z.anyResource(auth.OpWrite, auth.ResourceTopic):
		// Kafka (KIP-679): WRITE on any topic also makes a producer
		// idempotent, so IDEMPOTENT_WRITE on the cluster is not needed.
		err := z.cluster(auth.OpIdempotentWrite)
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	if req.TransactionalID != nil {
		return serveInitTransactionalProducerID(ctx, b, req, resp), nil
	}
	id, err := b.ProducerIDs.NextProducerID(ctx)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}

// producerFencedSinceInitProducerID: KIP-588's first version.
const producerFencedSinceInitProducerID = 4

func serveInitTransactionalProducerID(ctx context.Context, b *Broker, req *kmsg.InitProducerIDRequest, resp *kmsg.InitProducerIDResponse) *kmsg.InitProducerIDResponse {
	t, err := txns(b)
	if err != nil {
		resp.ErrorCode = txnErrorCode(err, req.Version, producerFencedSinceInitProducerID)
		return resp
	}
	res, err := t.InitProducerID(ctx, coord.InitProducerIDReq{TransactionalID: *req.TransactionalID, TimeoutMs: req.TransactionTimeoutMillis,
		ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch})
	if err != nil {
		resp.ErrorCode = txnErrorCode(err, req.Version, producerFencedSinceInitProducerID)
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = res.ProducerID, res.ProducerEpoch
	return resp
}
