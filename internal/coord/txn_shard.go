package coord

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/coord/txn"
	"github.com/sluicelog/sluice/internal/partition"
	"github.com/sluicelog/sluice/internal/record"
)

const (
	// markerRetryMinBackoff and markerRetryMaxBackoff space the rounds of
	// a transaction's markers while a partition has no leader or its
	// leader refuses for a passing reason.
	markerRetryMinBackoff = 20 * time.Millisecond
	markerRetryMaxBackoff = time.Second
	// markerRequestTimeout bounds one WriteTxnMarkers round trip
	// (Kafka's request.timeout.ms for the marker channel).
	markerRequestTimeout = 30 * time.Second
	// concurrentWait bounds how long a request that found its transaction
	// being completed (CONCURRENT_TRANSACTIONS) is held for the
	// completion before it is answered with that error. Kafka answers at
	// once and the client retries after a backoff (franz-go and the Java
	// client: 20 ms), which is most of a short transaction's latency when
	// the markers take a few milliseconds.
	concurrentWait = time.Second
	// maxParkedSteps bounds the requests one shard holds that way.
	maxParkedSteps = 4096
	// transactionCommitTimeout bounds how long a transaction record waits
	// for the ISR of its __transaction_state partition.
	transactionCommitTimeout = 5 * time.Second
)

// txnRequest is one step for a shard's owner: step drives the state
// machine and the reply comes through its Waiter (reply nil: nobody
// waits), or read answers at once.
type txnRequest struct {
	step  func(m *txn.Shard, nowMs int64, w txn.Waiter)
	read  func(m *txn.Shard, nowMs int64) any
	reply chan txn.Reply
	// waitConcurrent: an ErrConcurrentTransactions answer is held until
	// the shard's state moves on, and the step run again (concurrentWait).
	waitConcurrent bool
}

// parkedStep is a step held after ErrConcurrentTransactions, run again
// when the shard's state moves on, or answered at deadlineMs.
type parkedStep struct {
	req        txnRequest
	deadlineMs int64
}

// txnShard is one loaded __transaction_state partition: its owner
// goroutine is the only one touching machine and waiters; marker senders
// run beside it and report back through the inbox.
//
// Its coordinator epoch (in markers) is the partition's leader epoch.
type txnShard struct {
	shardBase
	c      *TxnCoordinator
	inbox  chan txnRequest
	ctx    context.Context // cancelled when the shard ends: stops its marker senders
	cancel context.CancelFunc

	machine    *txn.Shard
	part       *partition.Partition
	waiters    map[txn.Waiter]chan txn.Reply
	nextWaiter txn.Waiter
	buf        []byte
	// waiting are the steps in flight that may be parked, by waiter;
	// parked those held until the state moves on.
	waiting map[txn.Waiter]parkedStep
	parked  []parkedStep
}

func (c *TxnCoordinator) startShardLocked(p, coordinatorEpoch int32) *txnShard {
	ctx, cancel := context.WithCancel(c.set.ctx)
	s := &txnShard{shardBase: newShardBase(p, coordinatorEpoch), c: c, inbox: make(chan txnRequest, inboxSize),
		ctx: ctx, cancel: cancel, waiters: map[txn.Waiter]chan txn.Reply{}, waiting: map[txn.Waiter]parkedStep{}}
	c.set.goLocked(s.run)
	return s
}

func (s *txnShard) nowMs() int64 { return clock.UnixMs(s.c.clock) }

func (s *txnShard) run() {
	defer close(s.done)
	defer s.cancel()
	defer s.failAll()
	// The state machine panics on a transition Kafka does not allow (a
	// bug, never a client's doing): drop the shard, whose memory may be
	// half-changed, rather than the broker; the next Refresh reloads it
	// from the log, and every caller gets a retriable error meanwhile.
	defer func() {
		if r := recover(); r != nil {
			s.c.logger.Error("transaction coordinator shard failed", "partition", s.partition, "panic", r)
			s.drop(ErrCoordinatorNotAvailable)
		}
	}()
	if err := s.load(); err != nil {
		s.c.logger.Warn("loading __transaction_state partition failed", "partition", s.partition, "err", err)
		s.drop(ErrCoordinatorLoadInProgress)
		return
	}
	s.machine.Loaded()
	s.loaded.Store(true)
	abort := s.c.clock.NewTicker(time.Duration(s.c.cfg.AbortTimedOutIntervalMs) * time.Millisecond)
	defer abort.Stop()
	expire := s.c.clock.NewTicker(time.Duration(s.c.cfg.RemoveExpiredIntervalMs) * time.Millisecond)
	defer expire.Stop()
	parkTimer := s.c.clock.NewTimer(time.Hour)
	defer parkTimer.Stop()
	for {
		if err := s.flush(); err != nil {
			s.failed(err)
			return
		}
		s.armParkTimer(parkTimer)
		select {
		case <-s.stop:
			return
		case req := <-s.inbox:
			handleQueued(s.inbox, req, s.handle)
		case <-abort.C():
			s.machine.AbortTimedOut(s.nowMs())
		case <-expire.C():
			s.machine.ExpireTransactionalIDs(s.nowMs())
		case <-parkTimer.C():
			s.expireParked()
		}
	}
}

// armParkTimer sets the timer to the earliest parked step's deadline.
func (s *txnShard) armParkTimer(t clock.Timer) {
	t.Stop()
	if len(s.parked) == 0 {
		return
	}
	first := s.parked[0].deadlineMs
	for _, p := range s.parked[1:] {
		first = min(first, p.deadlineMs)
	}
	t.Reset(time.Duration(max(first-s.nowMs(), 1)) * time.Millisecond)
}

// expireParked answers the parked steps whose wait is over.
func (s *txnShard) expireParked() {
	now := s.nowMs()
	keep := s.parked[:0]
	for _, p := range s.parked {
		if p.deadlineMs <= now {
			p.req.reply <- txn.Reply{Err: ErrConcurrentTransactions}
			continue
		}
		keep = append(keep, p)
	}
	s.parked = keep
}

func (s *txnShard) handle(req txnRequest) {
	if req.read != nil {
		req.reply <- txn.Reply{Value: req.read(s.machine, s.nowMs())}
		return
	}
	s.runStep(parkedStep{req: req, deadlineMs: s.nowMs() + concurrentWait.Milliseconds()})
}

func (s *txnShard) runStep(p parkedStep) {
	var w txn.Waiter
	if p.req.reply != nil {
		s.nextWaiter++
		w = s.nextWaiter
		s.waiters[w] = p.req.reply
		if p.req.waitConcurrent {
			s.waiting[w] = p
		}
	}
	p.req.step(s.machine, s.nowMs(), w)
}

// deliver sends a reply to its caller, or parks the step if it found its
// transaction being completed and may wait for that.
func (s *txnShard) deliver(r txn.Reply) {
	ch, ok := s.waiters[r.Waiter]
	if !ok {
		return
	}
	delete(s.waiters, r.Waiter)
	if p, ok := s.waiting[r.Waiter]; ok {
		delete(s.waiting, r.Waiter)
		if errors.Is(r.Err, ErrConcurrentTransactions) && s.nowMs() < p.deadlineMs && len(s.parked) < maxParkedSteps {
			s.parked = append(s.parked, p)
			return
		}
	}
	ch <- r
}

// flush appends the decided records (one append, acks=all), releases the
// replies that waited on them and starts the markers of transactions
// that were prepared. A transaction with no partitions has no markers to
// write: it is completed here, which decides another record, hence the
// loop.
func (s *txnShard) flush() error {
	for {
		records := s.machine.TakeRecords()
		if len(records) > 0 {
			if err := s.append(records); err != nil {
				return err
			}
		}
		for _, r := range s.machine.Durable() {
			s.deliver(r)
		}
		again := false
		if len(records) > 0 && len(s.parked) > 0 {
			// The state moved on: the parked steps may now pass.
			retry := s.parked
			s.parked = nil
			for _, p := range retry {
				s.runStep(p)
			}
			again = true
		}
		for _, m := range s.machine.TakeMarkers() {
			if len(m.Partitions) == 0 {
				s.machine.MarkersWritten(s.nowMs(), m)
				again = true
				continue
			}
			s.c.set.wg.Add(1)
			go func() {
				defer s.c.set.wg.Done()
				s.sendMarkers(m)
			}()
		}
		if !again {
			return nil
		}
	}
}

func (s *txnShard) append(records []txn.Record) error {
	var err error
	s.buf, err = encodeBatches(s.buf[:0], coordinatorBatchOptions(s.nowMs()), len(records), func(i int) ([]byte, []byte) { return records[i].Key, records[i].Value })
	if err != nil {
		return err
	}
	// acks=all, as Kafka's coordinator writes: a decided outcome survives
	// the loss of this broker.
	ctx, cancel := context.WithTimeout(context.Background(), transactionCommitTimeout)
	defer cancel()
	if _, err := s.part.AppendAll(ctx, s.buf); err != nil {
		return fmt.Errorf("append to %s-%d: %w", TransactionStateTopic, s.partition, err)
	}
	return nil
}

// sendMarkers writes one prepared transaction's markers to the leaders of
// its partitions, grouped by broker, until every partition has it (or was
// deleted), then completes the transaction through the inbox. A partition
// without a leader, or whose leader answers with a passing error, is
// retried with the leaders of the newest image. A fenced answer means a
// newer coordinator owns the transaction: this one gives up.
func (s *txnShard) sendMarkers(m txn.Markers) {
	pending := slices.Clone(m.Partitions)
	backoff := markerRetryMinBackoff
	for len(pending) > 0 {
		var fenced bool
		pending, fenced = s.markerRound(m, pending)
		if fenced {
			return
		}
		if len(pending) == 0 {
			break
		}
		t := s.c.clock.NewTimer(backoff)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		backoff = min(backoff*2, markerRetryMaxBackoff)
	}
	select {
	case s.inbox <- txnRequest{step: func(machine *txn.Shard, nowMs int64, _ txn.Waiter) { machine.MarkersWritten(nowMs, m) }}:
	case <-s.ctx.Done():
	}
}

// markerRound sends one round of markers and returns the partitions left.
func (s *txnShard) markerRound(m txn.Markers, pending []TxnTopicPartition) (left []TxnTopicPartition, fenced bool) {
	img := s.c.opts.Image()
	byLeader := map[int32][]TxnTopicPartition{}
	var leaders []int32
	for _, tp := range pending {
		pi, ok := img.Partition(tp.Topic, tp.Partition)
		switch {
		case !ok:
			// Deleted with its topic: nothing left to mark, as in Kafka.
			s.c.logger.Info("transaction marker skipped: partition deleted", "transactional_id", m.TransactionalID, "topic", tp.Topic, "partition", tp.Partition)
		case pi.Leader < 0:
			left = append(left, tp)
		default:
			if byLeader[pi.Leader] == nil {
				leaders = append(leaders, pi.Leader)
			}
			byLeader[pi.Leader] = append(byLeader[pi.Leader], tp)
		}
	}
	for _, broker := range leaders {
		tps := byLeader[broker]
		ctx, cancel := context.WithTimeout(s.ctx, markerRequestTimeout)
		errs, err := s.c.opts.Markers.WriteTxnMarkers(ctx, broker, TxnMarker{ProducerID: m.ProducerID, ProducerEpoch: m.ProducerEpoch,
			Commit: m.Commit, CoordinatorEpoch: s.leaderEpoch, Partitions: tps})
		cancel()
		if s.ctx.Err() != nil {
			return nil, true
		}
		if err == nil && len(errs) != len(tps) {
			err = fmt.Errorf("broker %d answered %d partitions of %d", broker, len(errs), len(tps))
		}
		if err != nil {
			s.c.logger.Debug("transaction markers not written, retrying", "broker", broker, "err", err)
			left = append(left, tps...)
			continue
		}
		for i, perr := range errs {
			switch {
			case perr == nil:
			case errors.Is(perr, ErrTxnMarkerRetriable):
				left = append(left, tps[i])
			case errors.Is(perr, ErrTxnMarkerFenced):
				s.c.logger.Warn("transaction markers abandoned: a newer coordinator or producer epoch exists",
					"transactional_id", m.TransactionalID, "err", perr)
				return nil, true
			default:
				s.c.logger.Error("transaction marker refused; partition given up", "transactional_id", m.TransactionalID,
					"topic", tps[i].Topic, "partition", tps[i].Partition, "err", perr)
			}
		}
	}
	return left, false
}

// failed ends a shard whose append failed: its memory may now differ from
// the log, so it is dropped, to be loaded again by the next Refresh.
func (s *txnShard) failed(err error) {
	s.c.logger.Warn("transaction coordinator shard unloaded", "partition", s.partition, "err", err)
	code := ErrCoordinatorNotAvailable
	if errors.Is(err, partition.ErrNotLeader) || errors.Is(err, partition.ErrUnknownTopicOrPartition) {
		code = ErrNotCoordinator
	}
	s.drop(code)
}

func (s *txnShard) drop(err error) { s.c.set.drop(s, err) }

func (s *txnShard) failAll() {
	err := s.exitErr()
	for w, ch := range s.waiters {
		ch <- txn.Reply{Waiter: w, Err: err}
	}
	s.waiters = nil
	for _, p := range s.parked {
		p.req.reply <- txn.Reply{Err: err}
	}
	s.parked = nil
	answerQueued(s.inbox, func(req txnRequest) {
		if req.reply != nil {
			req.reply <- txn.Reply{Err: err}
		}
	})
}

// load replays the partition from its start to the log end (as the group
// shards do) to rebuild the shard's transactions.
func (s *txnShard) load() error {
	p, err := s.c.opts.Partitions.Partition(TransactionStateTopic, s.partition)
	if err != nil {
		return err
	}
	s.part = p
	s.machine = txn.NewShard(s.c.txnCfg)
	skipped := 0
	s.buf, err = replayPartition(p, TransactionStateTopic, s.partition, s.stop, s.buf, func(batch []byte, h *record.Header) error {
		if h.IsControl() {
			return nil
		}
		return record.Records(batch, maxDecompressedBytes, func(r *record.Record) error {
			if err := s.machine.Load(r.Key, r.Value); err != nil {
				skipped++
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	if skipped > 0 {
		s.c.logger.Warn("skipped unreadable __transaction_state records", "partition", s.partition, "records", skipped)
	}
	s.c.logger.Debug("loaded transaction coordinator shard", "partition", s.partition, "transactions", s.machine.NumTransactions())
	return nil
}
