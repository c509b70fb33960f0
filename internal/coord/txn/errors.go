package txn

import "errors"

// Errors of the transaction protocol, each named after the Kafka code the
// edge maps it to.
var (
	// ErrInvalidTransactionTimeout: transaction.timeout.ms is not positive
	// or above transaction.max.timeout.ms (INVALID_TRANSACTION_TIMEOUT).
	ErrInvalidTransactionTimeout = errors.New("invalid transaction timeout")
	// ErrProducerFenced: a newer producer with the same transactional id
	// bumped the epoch (PRODUCER_FENCED; INVALID_PRODUCER_EPOCH for the
	// request versions before KIP-588).
	ErrProducerFenced = errors.New("producer fenced by a newer epoch")
	// ErrInvalidProducerIDMapping: the transactional id is unknown or
	// belongs to another producer id (INVALID_PRODUCER_ID_MAPPING).
	ErrInvalidProducerIDMapping = errors.New("producer id does not match the transactional id")
	// ErrConcurrentTransactions: the previous transaction is still being
	// completed (CONCURRENT_TRANSACTIONS; clients retry).
	ErrConcurrentTransactions = errors.New("a previous transaction is still being completed")
	// ErrInvalidTxnState: the request does not fit the transaction's state,
	// e.g. a commit of an aborted one (INVALID_TXN_STATE).
	ErrInvalidTxnState = errors.New("request does not fit the transaction's state")
	// ErrInvalidRequest: an empty transactional id (INVALID_REQUEST).
	ErrInvalidRequest = errors.New("invalid transaction request")
	// ErrTransactionalIDNotFound: DescribeTransactions of an unknown id
	// (TRANSACTIONAL_ID_NOT_FOUND).
	ErrTransactionalIDNotFound = errors.New("transactional id not found")
	// ErrTooManyTransactions: the shard holds Config.MaxTransactions ids
	// (POLICY_VIOLATION; Kafka has no such bound).
	ErrTooManyTransactions = errors.New("too many transactional ids on this coordinator")
	// ErrTooManyPartitions: the transaction's record would exceed
	// Config.MaxRecordBytes (POLICY_VIOLATION).
	ErrTooManyPartitions = errors.New("too many partitions in one transaction")
	// ErrProducerIDNeeded is not a Kafka error: the step needs a new
	// producer id, which the runtime allocates and passes in as
	// InitRequest.NewProducerID before running the step again.
	ErrProducerIDNeeded = errors.New("a new producer id is needed")
	// ErrCorruptRecord: a __transaction_state record does not parse.
	ErrCorruptRecord = errors.New("corrupt __transaction_state record")
)
