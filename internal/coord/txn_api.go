package coord

import (
	"context"
	"errors"
	"log/slog"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/coord/txn"
	"github.com/sluicelog/sluice/internal/metadata"
)

// The transaction coordinator is the second runtime of this package: it
// shards transactional ids by the partitions of __transaction_state as
// the group coordinator shards groups, runs one owner goroutine per shard
// this node leads, drives internal/coord/txn's state machine, appends its
// records with acks=all, and writes the commit and abort markers of
// prepared transactions to the partitions' leaders (TxnMarkerWriter)
// before completing them. A shard that is loaded resumes the markers of
// the transactions its previous leader prepared.
//
// Invariants: a reply reporting a transition is released only after its
// record's append returned; a transaction is completed only after every
// partition acknowledged its marker (or was deleted); markers carry the
// coordinator epoch (the leader epoch of the shard's partition), so a
// partition refuses those of a coordinator that lost its leadership.

// TransactionStateTopic is the internal topic holding transaction state.
const TransactionStateTopic = "__transaction_state"

// Transaction errors, by the Kafka code internal/api/errcode.go maps each
// to. The coordinator errors (ErrCoordinatorNotAvailable, ErrNotCoordinator,
// ErrCoordinatorLoadInProgress) are shared with the group coordinator.
var (
	ErrInvalidTransactionTimeout = txn.ErrInvalidTransactionTimeout // INVALID_TRANSACTION_TIMEOUT
	ErrProducerFenced            = txn.ErrProducerFenced            // PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before KIP-588)
	ErrInvalidProducerIDMapping  = txn.ErrInvalidProducerIDMapping  // INVALID_PRODUCER_ID_MAPPING
	ErrConcurrentTransactions    = txn.ErrConcurrentTransactions    // CONCURRENT_TRANSACTIONS
	ErrInvalidTxnState           = txn.ErrInvalidTxnState           // INVALID_TXN_STATE
	ErrInvalidTxnRequest         = txn.ErrInvalidRequest            // INVALID_REQUEST
	ErrTransactionalIDNotFound   = txn.ErrTransactionalIDNotFound   // TRANSACTIONAL_ID_NOT_FOUND
	ErrTooManyTransactions       = txn.ErrTooManyTransactions       // POLICY_VIOLATION
	ErrTooManyTxnPartitions      = txn.ErrTooManyPartitions         // POLICY_VIOLATION

	// ErrTxnMarkerRetriable: a partition leader could not write a marker
	// for a reason that passes (leadership moving, too few replicas, a
	// timeout); the coordinator sends it again. TxnMarkerWriter wraps it.
	ErrTxnMarkerRetriable = errors.New("transaction marker not written, retry")
	// ErrTxnMarkerFenced: the partition has seen a newer coordinator or
	// producer epoch; this coordinator stops sending the transaction's
	// markers and leaves it to the newer one. TxnMarkerWriter wraps it.
	ErrTxnMarkerFenced = errors.New("transaction marker refused: coordinator or producer epoch is stale")
)

// The request and result types are internal/coord/txn's (aliases).
type (
	TxnTopicPartition  = txn.TopicPartition
	InitProducerIDReq  = txn.InitRequest
	InitProducerIDResp = txn.InitResult
	TxnProducer        = txn.ProducerRequest
	TxnState           = txn.State
	TxnListFilter      = txn.ListFilter
	TxnListing         = txn.Listing
)

// TxnDescription is one id in DescribeTransactions.
type TxnDescription struct {
	TransactionalID  string
	Err              error // ErrTransactionalIDNotFound or a coordinator error
	State            TxnState
	ProducerID       int64
	ProducerEpoch    int16
	TimeoutMs        int32
	StartTimestampMs int64
	Partitions       []TxnTopicPartition
}

// TxnMarker is one transaction's marker for the partitions one broker
// leads: WriteTxnMarkers' shape.
type TxnMarker struct {
	ProducerID       int64
	ProducerEpoch    int16
	Commit           bool
	CoordinatorEpoch int32
	Partitions       []TxnTopicPartition
}

// TxnMarkerWriter writes transaction markers to partition leaders
// (WriteTxnMarkers, API 27): the node implements it over internal/peer.
type TxnMarkerWriter interface {
	// WriteTxnMarkers sends m to broker and returns one error per
	// partition, in m.Partitions' order: nil when written, wrapping
	// ErrTxnMarkerRetriable or ErrTxnMarkerFenced, or any other error
	// (the partition is then given up, as Kafka does for errors it
	// cannot retry). A returned error (the broker unreachable) applies
	// to every partition and is retried.
	WriteTxnMarkers(ctx context.Context, broker int32, m TxnMarker) ([]error, error)
}

// TxnOptions configure a TxnCoordinator; every field but Clock, Logger and
// Config is required.
type TxnOptions struct {
	NodeID     int32
	Partitions Partitions
	Image      func() *metadata.Image
	// CreateTransactionTopic creates __transaction_state through the
	// controller (TxnConfig.TransactionTopicNumPartitions partitions,
	// TransactionTopicConfigs); "already exists" is nil.
	CreateTransactionTopic func(ctx context.Context) error
	// NextProducerID allocates a producer id no other producer has.
	NextProducerID func(ctx context.Context) (int64, error)
	Markers        TxnMarkerWriter
	Clock          clock.Clock  // nil: clock.Real()
	Logger         *slog.Logger // nil: slog.Default()
	Config         TxnConfig
}

// TransactionTopicConfigs are the topic configs __transaction_state is
// created with (min.insync.replicas is added by the node, capped at the
// replication factor).
var TransactionTopicConfigs = map[string]string{
	"cleanup.policy":                 "compact",
	"segment.bytes":                  "104857600",
	"unclean.leader.election.enable": "false",
}

// TxnConfig is the broker configuration of the transaction coordinator,
// by Kafka key. A zero field takes the default in brackets.
type TxnConfig struct {
	TransactionTopicNumPartitions int32 // transaction.state.log.num.partitions [50]
	MaxTimeoutMs                  int32 // transaction.max.timeout.ms [900000]
	TransactionalIDExpirationMs   int64 // transactional.id.expiration.ms [604800000]
	// AbortTimedOutIntervalMs is
	// transaction.abort.timed.out.transaction.cleanup.interval.ms [10000].
	AbortTimedOutIntervalMs int64
	// RemoveExpiredIntervalMs is
	// transaction.remove.expired.transaction.cleanup.interval.ms [3600000].
	RemoveExpiredIntervalMs int64
	// OffsetsTopicNumPartitions places AddOffsetsToTxn's group on its
	// __consumer_offsets partition when the topic does not exist yet [50].
	OffsetsTopicNumPartitions int32
	// MaxTransactions bounds the transactional ids one node holds across
	// its shards [DefaultMaxTransactions].
	MaxTransactions int
}

// DefaultMaxTransactions: Kafka has no bound; every id costs memory.
const DefaultMaxTransactions = 1000000

// StartTxn returns a running TxnCoordinator holding no shards until
// Refresh.
func StartTxn(opts TxnOptions) (*TxnCoordinator, error) { return startTxn(opts) }

// Stop unloads every shard and waits for its goroutines (markers in
// flight are abandoned: the next leader resends them). Idempotent.
func (c *TxnCoordinator) Stop() { c.stop() }

// Refresh loads a shard for every __transaction_state partition this node
// leads and unloads the others, without blocking on loading.
func (c *TxnCoordinator) Refresh() { c.refresh() }

// WaitLoaded refreshes, then waits until every shard this node leads has
// replayed its partition.
func (c *TxnCoordinator) WaitLoaded(ctx context.Context) error { return c.waitLoaded(ctx) }

// FindCoordinator returns the node leading the transactional id's
// partition of __transaction_state; see Coordinator.FindCoordinator.
func (c *TxnCoordinator) FindCoordinator(ctx context.Context, transactionalID string) (int32, error) {
	return c.findCoordinator(ctx, transactionalID)
}

// InitProducerID gives a transactional producer its id and bumped epoch.
// Errors: ErrInvalidTxnRequest, ErrInvalidTransactionTimeout,
// ErrProducerFenced, ErrConcurrentTransactions (retry: an earlier
// transaction is being completed, or was just aborted to fence its
// producer), ErrTooManyTransactions and the coordinator errors.
func (c *TxnCoordinator) InitProducerID(ctx context.Context, req InitProducerIDReq) (InitProducerIDResp, error) {
	return c.initProducerID(ctx, req)
}

// AddPartitions adds partitions to the producer's transaction once the
// record is durable. Errors apply to every partition:
// ErrInvalidProducerIDMapping, ErrProducerFenced,
// ErrConcurrentTransactions, ErrTooManyTxnPartitions, ErrInvalidTxnRequest
// and the coordinator errors.
func (c *TxnCoordinator) AddPartitions(ctx context.Context, req TxnProducer, partitions []TxnTopicPartition) error {
	return c.addPartitions(ctx, req, partitions)
}

// AddOffsets adds the group's __consumer_offsets partition to the
// transaction (AddOffsetsToTxn), so its TxnOffsetCommit is completed by
// the same markers.
func (c *TxnCoordinator) AddOffsets(ctx context.Context, req TxnProducer, groupID string) error {
	return c.addOffsets(ctx, req, groupID)
}

// VerifyPartitions checks, for a partition leader, that a transactional
// produce's partitions are in the producer's ongoing transaction
// (AddPartitionsToTxn verify_only): one error per partition, nil or
// ErrInvalidTxnState; the returned error applies to all of them.
func (c *TxnCoordinator) VerifyPartitions(ctx context.Context, req TxnProducer, partitions []TxnTopicPartition) ([]error, error) {
	return c.verifyPartitions(ctx, req, partitions)
}

// EndTxn commits or aborts the producer's transaction: it returns once
// PrepareCommit or PrepareAbort is durable (the outcome is decided), and
// the markers are written in the background.
func (c *TxnCoordinator) EndTxn(ctx context.Context, req TxnProducer, commit bool) error {
	return c.endTxn(ctx, req, commit)
}

// DescribeTransactions describes ids, one entry per id in request order.
func (c *TxnCoordinator) DescribeTransactions(ctx context.Context, ids []string) []TxnDescription {
	return c.describe(ctx, ids)
}

// ListTransactions lists the transactions of every loaded shard that pass
// the filter; while a shard loads, the others' and
// ErrCoordinatorLoadInProgress.
func (c *TxnCoordinator) ListTransactions(ctx context.Context, f TxnListFilter) ([]TxnListing, error) {
	return c.list(ctx, f)
}
