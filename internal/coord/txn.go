package coord

import (
	"context"

	"github.com/sluicelog/sluice/internal/coord/group"
	"github.com/sluicelog/sluice/internal/coord/sharegroup"
	"github.com/sluicelog/sluice/internal/record"
)

// TxnCommitRequest is a TxnOffsetCommit (internal/coord/group's type).
type TxnCommitRequest = group.TxnCommitRequest

// TxnCommitOffsets commits offsets inside the producer's transaction
// (TxnOffsetCommit): it blocks until the records, a transactional batch
// of the producer in the group's __consumer_offsets partition, are
// durable. The offsets stay invisible to FetchOffsets (and make a
// RequireStable fetch answer ErrUnstableOffsetCommit) until the producer's
// COMMIT marker reaches that partition; an ABORT drops them. Errors as
// for CommitOffsets. guard is the KIP-890 verification guard the caller
// took on that partition (partition.BeginTxnVerification; 0: none): a
// marker for the producer written since refuses the commit
// (partition.ErrInvalidTxnState), so it cannot open a transaction the marker
// already passed.
func (c *Coordinator) TxnCommitOffsets(ctx context.Context, req TxnCommitRequest, guard uint64) (CommitResult, error) {
	check := c.commitCheck()
	s, err := c.route(req.GroupID)
	if err != nil {
		return CommitResult{}, err
	}
	part := s.part
	passed := false // read by the shard's goroutine after the step
	r, err := c.call(ctx, req.GroupID, request{step: func(m *group.Shard, nowMs int64, w group.Waiter) {
		// On the shard's goroutine, so no append of this shard runs
		// between the check and the records it leads to. A fenced epoch
		// would fail that append, and with it the shard (its memory would
		// then differ from the log): refuse the commit instead.
		if err := part.CheckProducerEpoch(req.ProducerID, req.ProducerEpoch); err != nil {
			m.Refuse(w, err)
			return
		}
		if err := part.CheckTxnVerification(req.ProducerID, guard); err != nil {
			m.Refuse(w, err)
			return
		}
		passed = true
		m.TxnCommitOffsets(nowMs, w, req, check)
	}, txnGuard: txnGuard{producerID: req.ProducerID, guard: guard, passed: &passed}})
	res, _ := r.Value.(CommitResult)
	return res, err
}

// commitCheck refuses commits to partitions the newest image lacks.
func (c *Coordinator) commitCheck() func(topic string, p int32) error {
	img := c.opts.Image()
	return func(topic string, p int32) error {
		if img == nil {
			return ErrUnknownTopicOrPartition
		}
		if _, ok := img.Partition(topic, p); !ok {
			return ErrUnknownTopicOrPartition
		}
		return nil
	}
}

// TxnMarkerWritten applies a transaction marker the partition layer
// appended (and the ISR holds) to __consumer_offsets: the producer's
// pending offsets in that partition's shard become committed, or are
// dropped. Markers on other topics, and on partitions this node does not
// coordinate, are ignored: a shard loaded later replays the marker from
// the log. It returns once the step is queued (the inbox is bounded and
// drained by the shard, so a busy shard slows the marker's response, as
// a busy partition slows a produce); the shard applies it in order with
// the requests already queued. A shard still loading applies it after
// its replay, which may have met the marker already: then there is
// nothing left pending and the step changes nothing.
func (c *Coordinator) TxnMarkerWritten(topic string, partition int32, producerID int64, commit bool, _ int64) {
	if topic != OffsetsTopic {
		return
	}
	s, ok := c.set.get(partition)
	if !ok {
		return
	}
	select {
	case s.inbox <- request{step: func(m *group.Shard, _ int64, w group.Waiter) { m.CompleteTxn(w, producerID, commit) },
		reply: make(chan group.Reply, 1)}:
	case <-s.done:
	}
}

// loadBatch replays one batch of the shard's partition into the state
// machine: plain records as they are, a transactional batch's offsets as
// pending for its producer, a marker settling them.
func (s *shard) loadBatch(batch []byte, h *record.Header, now int64) (skipped int, err error) {
	if h.IsControl() {
		if m, err := record.ParseMarker(batch); err == nil && h.HasProducerID() {
			s.machine.CompleteTxn(0, h.ProducerID, m.Type == record.ControlCommit)
		}
		return 0, nil
	}
	err = record.Records(batch, maxDecompressedBytes, func(r *record.Record) error {
		if sharegroup.IsGroupRecord(r.Key) {
			return nil // a share group's: internal/share loads those
		}
		var err error
		if h.IsTransactional() && h.HasProducerID() {
			err = s.machine.LoadTxnOffset(h.ProducerID, r.Key, r.Value)
		} else {
			err = s.machine.Load(now, r.Key, r.Value)
		}
		if err != nil {
			// A record of a newer Kafka coordinator, or damage: not
			// ours to interpret, and no reason to lose the rest.
			skipped++
		}
		return nil
	})
	return skipped, err
}
