package coord

import (
	"context"
	"errors"
	"testing"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/coord/group"
	"github.com/sluicelog/sluice/internal/partition"
)

// holdShard blocks groupID's shard goroutine on a read until the returned
// function is called, so that the requests sent meanwhile are handled in
// one batch, in the order they were queued, before one flush.
func holdShard(t *testing.T, f *fixture, groupID string) (s *shard, release func()) {
	t.Helper()
	s, err := f.coord.route(groupID)
	noErr(t, err)
	entered, released := make(chan struct{}), make(chan struct{})
	go func() {
		_, _ = f.coord.call(context.Background(), groupID, request{read: func(*group.Shard) any {
			close(entered)
			<-released
			return nil
		}})
	}()
	<-entered
	return s, func() { close(released) }
}

// txnCommitAsync sends a TxnOffsetCommit of producer 7 under guard once the
// shard's inbox holds queued requests, and waits until it is queued too.
func txnCommitAsync(t *testing.T, f *fixture, s *shard, offset int64, guard uint64) <-chan error {
	t.Helper()
	queued := len(s.inbox)
	done := make(chan error, 1)
	go func() {
		req := TxnCommitRequest{CommitRequest: commit("tg", -1, "", "in", map[int32]int64{0: offset}),
			TransactionalID: "etl", ProducerID: 7}
		_, err := f.coord.TxnCommitOffsets(ctxT(t), req, guard)
		done <- err
	}()
	eventually(t, "the commit queued", func() bool { return len(s.inbox) > queued })
	return done
}

// TestCoordTxnCommitRefusedGuardSparesTheAccepted: two TxnOffsetCommits of
// one producer verified one after the other (a client's retry on another
// connection while the first still waits for the transaction coordinator)
// reach the shard in the other order, in one batch. The second verification
// voided the first's guard, so the first is refused, INVALID_TXN_STATE; the
// other must be written under its own guard. The refused commit's guard
// was the one the flush appended the producer's batch under: the append
// refused the accepted commit, and the shard failed, answering every
// pending request COORDINATOR_NOT_AVAILABLE and loading again from the log.
func TestCoordTxnCommitRefusedGuardSparesTheAccepted(t *testing.T) {
	f := newFixture(t, clock.Real(), Config{OffsetsTopicNumPartitions: 1})
	f.createTopic("in", 1, nil)
	f.ready("tg")
	offsets, err := f.mgr.Partition(OffsetsTopic, 0)
	noErr(t, err)

	s, release := holdShard(t, f, "tg")
	first := offsets.BeginTxnVerification(7)
	second := offsets.BeginTxnVerification(7) // voids first
	accepted := txnCommitAsync(t, f, s, 5, second)
	voided := txnCommitAsync(t, f, s, 4, first)
	release()

	if err := <-voided; !errors.Is(err, partition.ErrInvalidTxnState) {
		t.Errorf("the commit whose guard a later verification voided: %v, want INVALID_TXN_STATE", err)
	}
	if err := <-accepted; err != nil {
		t.Fatalf("the commit under the current guard: %v, want it written", err)
	}
	require(t, !offsets.NeedsTxnVerification(7, 0), "the accepted commit opened no transaction on %s-0", OffsetsTopic)
}
