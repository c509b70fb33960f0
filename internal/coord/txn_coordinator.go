package coord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/coord/txn"
	"github.com/sluicelog/sluice/internal/metadata"
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

// TxnCoordinator is the transaction coordinator of one node.
//
// Locks: mu guards shards and stopped; it is never held while waiting on a
// shard.
type TxnCoordinator struct {
	opts   TxnOptions
	cfg    TxnConfig
	txnCfg txn.Config
	clock  clock.Clock
	logger *slog.Logger

	ctx    context.Context // cancelled by Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup

	creating atomic.Bool // a CreateTransactionTopic call is under way

	mu      sync.Mutex
	shards  map[int32]*txnShard
	stopped bool
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
	ctx, cancel := context.WithCancel(context.Background())
	return &TxnCoordinator{
		opts: opts, cfg: cfg, clock: opts.Clock, logger: opts.Logger.With("component", "txn-coord"),
		ctx: ctx, cancel: cancel, shards: map[int32]*txnShard{},
		txnCfg: txn.Config{
			MaxTimeoutMs: cfg.MaxTimeoutMs, ExpirationMs: cfg.TransactionalIDExpirationMs,
			// Ids hash evenly over the shards: the node-wide bound, shared out.
			MaxTransactions: max(cfg.MaxTransactions/int(cfg.TransactionTopicNumPartitions), 1),
			MaxRecordBytes:  maxTxnRecordBytes,
		},
	}, nil
}

func (c *TxnCoordinator) stop() {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	c.stopped = true
	for p, s := range c.shards {
		s.unload(ErrCoordinatorNotAvailable)
		delete(c.shards, p)
	}
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
}

func (c *TxnCoordinator) stateTopic() (*metadata.TopicImage, bool) {
	img := c.opts.Image()
	if img == nil {
		return nil, false
	}
	return img.Topic(TransactionStateTopic)
}

func (c *TxnCoordinator) refresh() {
	t, ok := c.stateTopic()
	want := map[int32]int32{} // partition -> leader epoch
	if ok {
		for p, pi := range t.Partitions {
			if pi != nil && pi.Leader == c.opts.NodeID {
				want[int32(p)] = pi.LeaderEpoch
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	for p, s := range c.shards {
		// A new leader epoch is a new coordinator epoch: reload, so the
		// markers carry the epoch partitions will check.
		if epoch, ok := want[p]; !ok || epoch != s.coordinatorEpoch {
			s.unload(ErrNotCoordinator)
			delete(c.shards, p)
		}
	}
	for p, epoch := range want {
		if c.shards[p] == nil {
			c.shards[p] = c.startShardLocked(p, epoch)
		}
	}
}

func (c *TxnCoordinator) waitLoaded(ctx context.Context) error {
	c.refresh()
	for !c.allLoaded() {
		t := c.clock.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("loading transaction coordinator shards: %w", ctx.Err())
		case <-t.C():
		}
	}
	return nil
}

func (c *TxnCoordinator) allLoaded() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.shards {
		if !s.loaded.Load() {
			return false
		}
	}
	return true
}

// ensureTopic starts creating __transaction_state unless a creation is
// under way.
func (c *TxnCoordinator) ensureTopic() {
	if !c.creating.CompareAndSwap(false, true) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		c.creating.Store(false)
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.creating.Store(false)
		ctx, cancel := context.WithTimeout(c.ctx, createTopicTimeout)
		defer cancel()
		if err := c.opts.CreateTransactionTopic(ctx); err != nil {
			c.logger.Warn("creating __transaction_state failed", "err", err)
			return
		}
		c.logger.Info("created __transaction_state", "partitions", c.cfg.TransactionTopicNumPartitions)
	}()
}

// leaderOf is the leader of the id's __transaction_state partition.
func (c *TxnCoordinator) leaderOf(transactionalID string) (int32, int32, error) {
	t, ok := c.stateTopic()
	if !ok {
		c.ensureTopic()
		return -1, -1, ErrCoordinatorNotAvailable
	}
	p := PartitionFor(transactionalID, int32(len(t.Partitions)))
	pi := t.Partitions[p]
	if pi == nil || pi.Leader < 0 {
		return -1, -1, ErrCoordinatorNotAvailable
	}
	return p, pi.Leader, nil
}

// route finds the loaded shard of transactionalID, or the coordinator error.
func (c *TxnCoordinator) route(transactionalID string) (*txnShard, error) {
	if transactionalID == "" {
		return nil, ErrInvalidTxnRequest
	}
	p, leader, err := c.leaderOf(transactionalID)
	if err != nil {
		return nil, err
	}
	if leader != c.opts.NodeID {
		return nil, ErrNotCoordinator
	}
	c.mu.Lock()
	s, stopped := c.shards[p], c.stopped
	c.mu.Unlock()
	switch {
	case stopped:
		return nil, ErrCoordinatorNotAvailable
	case s == nil:
		c.refresh()
		return nil, ErrCoordinatorLoadInProgress
	case !s.loaded.Load():
		return nil, ErrCoordinatorLoadInProgress
	}
	return s, nil
}

func (c *TxnCoordinator) findCoordinator(_ context.Context, transactionalID string) (int32, error) {
	if transactionalID == "" {
		return -1, ErrInvalidTxnRequest
	}
	_, leader, err := c.leaderOf(transactionalID)
	if err != nil {
		return -1, err
	}
	if leader == c.opts.NodeID {
		if _, err := c.route(transactionalID); err != nil {
			return -1, ErrCoordinatorNotAvailable
		}
	}
	return leader, nil
}

// call hands a step to the id's shard and waits for its reply.
func (c *TxnCoordinator) call(ctx context.Context, transactionalID string, req txnRequest) (txn.Reply, error) {
	s, err := c.route(transactionalID)
	if err != nil {
		return txn.Reply{}, err
	}
	req.reply = make(chan txn.Reply, 1)
	select {
	case s.inbox <- req:
	case <-s.done:
		return txn.Reply{}, s.exitErr()
	case <-ctx.Done():
		return txn.Reply{}, ctx.Err()
	}
	select {
	case r := <-req.reply:
		return r, r.Err
	case <-s.done:
		select {
		case r := <-req.reply:
			return r, r.Err
		default:
			return txn.Reply{}, s.exitErr()
		}
	case <-ctx.Done():
		return txn.Reply{}, ctx.Err()
	}
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
	c.mu.Lock()
	shards := make([]*txnShard, 0, len(c.shards))
	for _, s := range c.shards {
		shards = append(shards, s)
	}
	c.mu.Unlock()
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
