package coord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/coord/txn"
)

// Kafka's defaults for TxnConfig.
const (
	defaultTransactionTopicNumPartitions = 50
	defaultTransactionMaxTimeoutMs       = 900000
	defaultTransactionalIDExpirationMs   = 7 * 24 * 60 * 60 * 1000
	defaultAbortTimedOutIntervalMs       = 10000
	defaultRemoveExpiredIntervalMs       = 3600000

	// maxTxnRecordBytes keeps a transaction record under the default
	// max.message.bytes of __transaction_state.
	maxTxnRecordBytes = 1000000
	// maxProducerIDRounds bounds how often InitProducerID allocates an id
	// and runs its step again (the id is used up only if two rotations
	// race, which a third round settles).
	maxProducerIDRounds = 3
)

// TxnCoordinator is the transaction coordinator of one node: its shards
// are the partitions of __transaction_state this node leads (shardSet).
type TxnCoordinator struct {
	opts   TxnOptions
	cfg    TxnConfig
	txnCfg txn.Config
	clock  clock.Clock
	logger *slog.Logger
	set    *shardSet[*txnShard]
}

func (cfg *TxnConfig) setDefaults() {
	if cfg.TransactionTopicNumPartitions <= 0 {
		cfg.TransactionTopicNumPartitions = defaultTransactionTopicNumPartitions
	}
	if cfg.MaxTimeoutMs <= 0 {
		cfg.MaxTimeoutMs = defaultTransactionMaxTimeoutMs
	}
	if cfg.TransactionalIDExpirationMs <= 0 {
		cfg.TransactionalIDExpirationMs = defaultTransactionalIDExpirationMs
	}
	if cfg.AbortTimedOutIntervalMs <= 0 {
		cfg.AbortTimedOutIntervalMs = defaultAbortTimedOutIntervalMs
	}
	if cfg.RemoveExpiredIntervalMs <= 0 {
		cfg.RemoveExpiredIntervalMs = defaultRemoveExpiredIntervalMs
	}
	if cfg.OffsetsTopicNumPartitions <= 0 {
		cfg.OffsetsTopicNumPartitions = defaultOffsetsTopicNumPartitions
	}
	if cfg.MaxTransactions <= 0 {
		cfg.MaxTransactions = DefaultMaxTransactions
	}
}

func startTxn(opts TxnOptions) (*TxnCoordinator, error) {
	if opts.Partitions == nil || opts.Image == nil || opts.CreateTransactionTopic == nil || opts.NextProducerID == nil || opts.Markers == nil {
		return nil, errors.New("coord: TxnOptions need Partitions, Image, CreateTransactionTopic, NextProducerID and Markers")
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	cfg := opts.Config
	cfg.setDefaults()
	c := &TxnCoordinator{
		opts: opts, cfg: cfg, clock: opts.Clock, logger: opts.Logger.With("component", "txn-coord"),
		txnCfg: txn.Config{
			MaxTimeoutMs: cfg.MaxTimeoutMs, ExpirationMs: cfg.TransactionalIDExpirationMs,
			// Ids hash evenly over the shards: the node-wide bound, shared out.
			MaxTransactions: max(cfg.MaxTransactions/int(cfg.TransactionTopicNumPartitions), 1),
			MaxRecordBytes:  maxTxnRecordBytes,
		},
	}
	c.set = newShardSet[*txnShard](TransactionStateTopic, opts.NodeID, opts.Image, opts.CreateTransactionTopic, opts.Clock, c.logger)
	c.set.newShard = c.startShardLocked
	return c, nil
}

func (c *TxnCoordinator) stop() { c.set.stop() }

func (c *TxnCoordinator) refresh() { c.set.refresh() }

func (c *TxnCoordinator) waitLoaded(ctx context.Context) error { return c.set.waitLoaded(ctx) }

// route finds the loaded shard of transactionalID, or the coordinator error.
func (c *TxnCoordinator) route(transactionalID string) (*txnShard, error) {
	if transactionalID == "" {
		return nil, ErrInvalidTxnRequest
	}
	return c.set.route(transactionalID)
}

func (c *TxnCoordinator) findCoordinator(_ context.Context, transactionalID string) (int32, error) {
	if transactionalID == "" {
		return -1, ErrInvalidTxnRequest
	}
	return c.set.findCoordinator(transactionalID)
}

// call hands a step to the id's shard and waits for its reply.
func (c *TxnCoordinator) call(ctx context.Context, transactionalID string, req txnRequest) (txn.Reply, error) {
	s, err := c.route(transactionalID)
	if err != nil {
		return txn.Reply{}, err
	}
	req.reply = make(chan txn.Reply, 1)
	if err := sendStep(ctx, s.base(), s.inbox, req); err != nil {
		return txn.Reply{}, err
	}
	return awaitReply(ctx, s.base(), req.reply, func(r txn.Reply) error { return r.Err })
}

func (c *TxnCoordinator) initProducerID(ctx context.Context, req InitProducerIDReq) (InitProducerIDResp, error) {
	req.NewProducerID = -1
	for range maxProducerIDRounds {
		r, err := c.call(ctx, req.TransactionalID, txnRequest{waitConcurrent: true, step: func(m *txn.Shard, nowMs int64, w txn.Waiter) {
			m.InitProducerID(nowMs, w, req)
		}})
		if !errors.Is(err, txn.ErrProducerIDNeeded) {
			res, _ := r.Value.(InitProducerIDResp)
			return res, err
		}
		if req.NewProducerID, err = c.opts.NextProducerID(ctx); err != nil {
			return InitProducerIDResp{}, err
		}
	}
	return InitProducerIDResp{}, fmt.Errorf("%w: producer id allocation raced %d times", ErrConcurrentTransactions, maxProducerIDRounds)
}

func (c *TxnCoordinator) addPartitions(ctx context.Context, req TxnProducer, partitions []TxnTopicPartition) error {
	_, err := c.call(ctx, req.TransactionalID, txnRequest{waitConcurrent: true, step: func(m *txn.Shard, nowMs int64, w txn.Waiter) {
		m.AddPartitions(nowMs, w, req, partitions)
	}})
	return err
}

func (c *TxnCoordinator) addOffsets(ctx context.Context, req TxnProducer, groupID string) error {
	n := c.cfg.OffsetsTopicNumPartitions
	if img := c.opts.Image(); img != nil {
		if t, ok := img.Topic(OffsetsTopic); ok {
			n = int32(len(t.Partitions))
		}
	}
	return c.addPartitions(ctx, req, []TxnTopicPartition{{Topic: OffsetsTopic, Partition: PartitionFor(groupID, n)}})
}

func (c *TxnCoordinator) verifyPartitions(ctx context.Context, req TxnProducer, partitions []TxnTopicPartition) ([]error, error) {
	type verified struct {
		errs []error
		err  error
	}
	r, err := c.call(ctx, req.TransactionalID, txnRequest{read: func(m *txn.Shard, _ int64) any {
		errs, err := m.VerifyPartitions(req, partitions)
		return verified{errs, err}
	}})
	if err != nil {
		return nil, err
	}
	v, _ := r.Value.(verified)
	return v.errs, v.err
}

func (c *TxnCoordinator) endTxn(ctx context.Context, req TxnProducer, commit bool) error {
	_, err := c.call(ctx, req.TransactionalID, txnRequest{waitConcurrent: true, step: func(m *txn.Shard, nowMs int64, w txn.Waiter) {
		m.EndTxn(nowMs, w, req, commit)
	}})
	return err
}

func (c *TxnCoordinator) describe(ctx context.Context, ids []string) []TxnDescription {
	out := make([]TxnDescription, len(ids))
	for i, id := range ids {
		out[i] = TxnDescription{TransactionalID: id}
		r, err := c.call(ctx, id, txnRequest{read: func(m *txn.Shard, _ int64) any {
			md, ok := m.Describe(id)
			if !ok {
				return nil
			}
			return md
		}})
		md, ok := r.Value.(txn.Metadata)
		switch {
		case err != nil:
			out[i].Err = err
		case !ok:
			out[i].Err = ErrTransactionalIDNotFound
		default:
			out[i] = TxnDescription{TransactionalID: id, State: md.State, ProducerID: md.ProducerID, ProducerEpoch: md.ProducerEpoch,
				TimeoutMs: md.TimeoutMs, StartTimestampMs: md.StartTimestampMs, Partitions: md.Partitions}
		}
	}
	return out
}

func (c *TxnCoordinator) list(ctx context.Context, f TxnListFilter) ([]TxnListing, error) {
	shards := c.set.all()
	var out []TxnListing
	var loadErr error
	for _, s := range shards {
		if !s.loaded.Load() {
			loadErr = ErrCoordinatorLoadInProgress
			continue
		}
		ch := make(chan txn.Reply, 1)
		select {
		case s.inbox <- txnRequest{read: func(m *txn.Shard, nowMs int64) any { return m.List(nowMs, f) }, reply: ch}:
		case <-s.done:
			continue
		case <-ctx.Done():
			return out, ctx.Err()
		}
		select {
		case r := <-ch:
			l, _ := r.Value.([]TxnListing)
			out = append(out, l...)
		case <-s.done:
		case <-ctx.Done():
			return out, ctx.Err()
		}
	}
	return out, loadErr
}
