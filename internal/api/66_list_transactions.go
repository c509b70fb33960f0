package api

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/coord/txn"
)

// ListTransactions v0–1 (KIP-664; v1 adds KIP-994's duration filter): the
// transactional ids this broker coordinates, filtered by state and
// producer id. A state filter naming no state is returned in
// unknown_state_filters, as Kafka does. v2's id pattern (KIP-1152) is not
// served.
var listTransactionsHandler = handler{key: 66, minVersion: 0, maxVersion: 1, serve: serveListTransactions}

func serveListTransactions(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ListTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	t, err := txns(b)
	if err != nil {
		resp.ErrorCode = groupErrorCode(err)
		return resp, nil
	}
	f := coord.TxnListFilter{ProducerIDs: req.ProducerIDFilters, MinDurationMs: -1}
	if req.Version >= 1 {
		f.MinDurationMs = req.DurationFilterMillis
	}
	for _, name := range req.StateFilters {
		st, ok := txn.ParseState(name)
		if !ok {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, name)
			continue
		}
		f.States = append(f.States, st)
	}
	if len(req.StateFilters) > 0 && len(f.States) == 0 {
		return resp, nil // only unknown states: nothing can match
	}
	listings, err := t.ListTransactions(ctx, f)
	if err != nil && !errors.Is(err, coord.ErrCoordinatorLoadInProgress) {
		resp.ErrorCode = groupErrorCode(err)
		return resp, nil
	}
	resp.ErrorCode = groupErrorCode(err)
	z := b.authz(r)
	for _, l := range listings {
		if z.transactionalID(auth.OpDescribe, l.TransactionalID) != nil {
			continue // only the ids the principal may describe, as in Kafka
		}
		resp.TransactionStates = append(resp.TransactionStates, kmsg.ListTransactionsResponseTransactionState{
			TransactionalID: l.TransactionalID, ProducerID: l.ProducerID, TransactionState: l.State.String()})
	}
	return resp, nil
}
