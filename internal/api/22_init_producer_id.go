package api

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/partition"
)

// InitProducerId v0–5: a producer id for an idempotent producer, from the
// blocks the controller allocates. v0 is advertised because librdkafka
// enables idempotence only when the range includes it (docs/broker.md, wire compatibility).
//
// A transactional id gets partition.ErrTransactionsUnsupported's code
// (INVALID_REQUEST): it is not retriable, so franz-go and librdkafka fail
// the producer at once with the code's name rather than retry for ever, as
// they would on COORDINATOR_NOT_AVAILABLE; the response has no message
// field, so the name is all a client shows.
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
		resp.ErrorCode = errorCode(fmt.Errorf("transactional id %q: %w", *req.TransactionalID, partition.ErrTransactionsUnsupported))
		return resp, nil
	}
	id, err := b.ProducerIDs.NextProducerID(ctx)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}
