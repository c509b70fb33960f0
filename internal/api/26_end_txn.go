package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/coord"
)

// EndTxn v0–4: commits or aborts the producer's transaction. The answer
// comes once the decision (PrepareCommit or PrepareAbort) is durable in
// __transaction_state; the markers are written to the partitions after
// it, and until they are the producer's next transactional request gets
// CONCURRENT_TRANSACTIONS, as in Kafka.
//
// v5 (KIP-890 part 2: every EndTxn bumps the epoch and returns it) is not
// served: clients then keep transaction version 1, whose semantics these
// handlers implement.
var endTxnHandler = handler{key: 26, minVersion: 0, maxVersion: 4, serve: serveEndTxn}

// producerFencedSinceEndTxn: KIP-588's first version.
const producerFencedSinceEndTxn = 2

func serveEndTxn(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.EndTxnRequest)
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	if err := b.authz(r).transactionalID(auth.OpWrite, req.TransactionalID); err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	t, err := txns(b)
	if err == nil {
		producer := coord.TxnProducer{TransactionalID: req.TransactionalID, ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch}
		b.awaitCoordinator(r, func() { err = t.EndTxn(ctx, producer, req.Commit) })
	}
	resp.ErrorCode = txnErrorCode(err, req.Version, producerFencedSinceEndTxn)
	return resp, nil
}
