package coord

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/coord/sharestate"
	"github.com/sluicelog/sluice/internal/partition"
	"github.com/sluicelog/sluice/internal/record"
)

// shareRequest is one step for a share shard's owner: step drives the
// state machine and its reply waits for the records, or read answers at
// once.
type shareRequest struct {
	step  func(m *sharestate.Shard, nowMs int64, w sharestate.Waiter)
	read  func(m *sharestate.Shard) any
	reply chan sharestate.Reply
	// creates is the topic whose state step may create (an
	// initialization): refused if the topic was deleted since the
	// caller checked it against the image.
	creates *[16]byte
}

// shareShard is one loaded __share_group_state partition: its owner
// goroutine is the only one touching machine and waiters.
type shareShard struct {
	shardBase
	c     *ShareCoordinator
	inbox chan shareRequest

	machine    *sharestate.Shard
	part       *partition.Partition
	waiters    map[sharestate.Waiter]chan sharestate.Reply
	nextWaiter sharestate.Waiter
	buf        []byte
	// wake tells the owner that topics were deleted (Refresh);
	// deletedGen is the generation of deleted topics it has removed.
	wake       chan struct{}
	deletedGen uint64
}

func (c *ShareCoordinator) startShardLocked(p, leaderEpoch int32) *shareShard {
	s := &shareShard{shardBase: newShardBase(p, leaderEpoch), c: c, inbox: make(chan shareRequest, inboxSize),
		waiters: map[sharestate.Waiter]chan sharestate.Reply{}, wake: make(chan struct{}, 1)}
	c.set.goLocked(s.run)
	return s
}

func (s *shareShard) nowMs() int64 { return clock.UnixMs(s.c.set.clock) }

func (s *shareShard) run() {
	defer close(s.done)
	defer s.failAll()
	if err := s.load(); err != nil {
		s.c.logger.Warn("loading __share_group_state partition failed", "partition", s.partition, "err", err)
		s.c.set.drop(s, ErrCoordinatorLoadInProgress)
		return
	}
	s.loaded.Store(true)
	// Topics deleted before this shard loaded (leadership came here
	// after the deletion) are removed first.
	s.wakeUp()
	for {
		select {
		case <-s.stop:
			return
		case req := <-s.inbox:
			handleQueued(s.inbox, req, s.handle)
		case <-s.wake:
			s.deleteTopics()
		}
		if err := s.flush(); err != nil {
			s.c.logger.Warn("share coordinator shard unloaded", "partition", s.partition, "err", err)
			code := ErrCoordinatorNotAvailable
			if errors.Is(err, partition.ErrNotLeader) || errors.Is(err, partition.ErrUnknownTopicOrPartition) {
				code = ErrNotCoordinator
			}
			s.c.set.drop(s, code)
			return
		}
	}
}

// wakeUp has the owner look at the deleted topics; it never blocks.
func (s *shareShard) wakeUp() {
	select {
	case s.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// deleteTopics removes the state of the topics deleted since it last
// looked; the tombstones go out with the next flush.
func (s *shareShard) deleteTopics() {
	ids, gen, changed := s.c.deletedTopicsSince(s.deletedGen)
	if !changed {
		return
	}
	s.deletedGen = gen
	if n := s.machine.DeleteTopics(ids); n > 0 {
		s.c.logger.Info("deleted the share state of deleted topics", "partition", s.partition, "share_partitions", n)
	}
}

func (s *shareShard) handle(req shareRequest) {
	if req.read != nil {
		req.reply <- sharestate.Reply{Value: req.read(s.machine)}
		return
	}
	if req.creates != nil && s.c.topicDeleted(*req.creates) {
		// The deletion was noted after the caller's check. Noted before
		// this step, it is refused here; noted after, the step's state
		// is tombstoned with the others at the next wake-up.
		req.reply <- sharestate.Reply{Err: fmt.Errorf("topic id %x was deleted: %w", *req.creates, ErrUnknownShareTopic)}
		return
	}
	s.nextWaiter++
	s.waiters[s.nextWaiter] = req.reply
	req.step(s.machine, s.nowMs(), s.nextWaiter)
}

// flush appends the decided records in one append (acks=all, as Kafka's
// share coordinator writes) and then releases the replies that waited on
// them, so an acknowledged state survives the loss of this broker.
func (s *shareShard) flush() error {
	if records := s.machine.TakeRecords(); len(records) > 0 {
		if err := s.append(records); err != nil {
			return err
		}
	}
	for _, r := range s.machine.Durable() {
		if ch, ok := s.waiters[r.Waiter]; ok {
			delete(s.waiters, r.Waiter)
			ch <- r
		}
	}
	return nil
}

func (s *shareShard) append(records []sharestate.Record) error {
	var err error
	s.buf, err = encodeBatches(s.buf[:0], coordinatorBatchOptions(s.nowMs()), len(records), func(i int) ([]byte, []byte) { return records[i].Key, records[i].Value })
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), shareStateCommitTimeout)
	defer cancel()
	if _, err := s.part.AppendAll(ctx, s.buf); err != nil {
		return fmt.Errorf("append to %s-%d: %w", ShareStateTopic, s.partition, err)
	}
	return nil
}

// failAll answers every waiting caller and queued step as the shard ends.
func (s *shareShard) failAll() {
	err := s.exitErr()
	for w, ch := range s.waiters {
		ch <- sharestate.Reply{Waiter: w, Err: err}
	}
	s.waiters = nil
	answerQueued(s.inbox, func(req shareRequest) { req.reply <- sharestate.Reply{Err: err} })
}

// load replays the partition to the log end (as the other coordinators
// do) to rebuild the shard's share partitions.
func (s *shareShard) load() error {
	p, err := s.c.opts.Partitions.Partition(ShareStateTopic, s.partition)
	if err != nil {
		return err
	}
	s.part = p
	s.machine = sharestate.NewShard(s.c.shardCfg)
	skipped := 0
	s.buf, err = replayPartition(p, ShareStateTopic, s.partition, s.stop, s.buf, func(batch []byte, h *record.Header) error {
		if h.IsControl() {
			return nil
		}
		return record.Records(batch, maxDecompressedBytes, func(r *record.Record) error {
			if err := s.machine.Load(r.Key, r.Value); err != nil {
				skipped++ // a newer Kafka's record, or damage: keep the rest
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	if skipped > 0 {
		s.c.logger.Warn("skipped unreadable __share_group_state records", "partition", s.partition, "records", skipped)
	}
	s.c.logger.Debug("loaded share coordinator shard", "partition", s.partition, "share_partitions", s.machine.NumStates())
	return nil
}
