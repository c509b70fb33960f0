package api

// Helpers shared by the transaction handlers (InitProducerId with a
// transactional id, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
// FindCoordinator key type 1, DescribeTransactions, ListTransactions). The
// protocol itself lives in internal/coord/txn, its runtime in
// internal/coord.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicelog/sluice/internal/coord"
)

// Txns is what the transaction handlers need of the transaction
// coordinator (*coord.TxnCoordinator satisfies it).
type Txns interface {
	FindCoordinator(ctx context.Context, transactionalID string) (int32, error)
	InitProducerID(ctx context.Context, req coord.InitProducerIDReq) (coord.InitProducerIDResp, error)
	AddPartitions(ctx context.Context, req coord.TxnProducer, partitions []coord.TxnTopicPartition) error
	AddOffsets(ctx context.Context, req coord.TxnProducer, groupID string) error
	VerifyPartitions(ctx context.Context, req coord.TxnProducer, partitions []coord.TxnTopicPartition) ([]error, error)
	EndTxn(ctx context.Context, req coord.TxnProducer, commit bool) error
	DescribeTransactions(ctx context.Context, ids []string) []coord.TxnDescription
	ListTransactions(ctx context.Context, f coord.TxnListFilter) ([]coord.TxnListing, error)
}

var _ Txns = (*coord.TxnCoordinator)(nil)

var errNoTxnCoordinator = fmt.Errorf("%w: this broker runs no transaction coordinator", coord.ErrCoordinatorNotAvailable)

func txns(b *Broker) (Txns, error) {
	if b.Txns == nil {
		return nil, errNoTxnCoordinator
	}
	return b.Txns, nil
}

// txnErrorCode is the code a transaction request answers: a failure below
// the coordinator becomes a coordinator code, as for groups, and
// PRODUCER_FENCED becomes INVALID_PRODUCER_EPOCH for the request versions
// older than KIP-588's (fencedSince), whose clients do not know it.
func txnErrorCode(err error, version, fencedSince int16) int16 {
	code := groupErrorCode(err)
	if code == kerr.ProducerFenced.Code && version < fencedSince {
		return kerr.InvalidProducerEpoch.Code
	}
	return code
}
