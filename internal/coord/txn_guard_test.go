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

// txnGuardFixture is a coordinator with one offsets partition, group
// "tg" loaded on it and topic "in" to commit offsets of; it returns the
// offsets partition, whose verification guards the tests take.
func txnGuardFixture(t *testing.T) (*fixture, *partition.Partition) {
	t.Helper()
	f := newFixture(t, clock.Real(), Config{OffsetsTopicNumPartitions: 1})
	f.createTopic("in", 1, nil)
	f.ready("tg")
	offsets, err := f.mgr.Partition(OffsetsTopic, 0)
	noErr(t, err)
	return f, offsets
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
// one producer, the first verified before a marker for the producer, the
// second after it, reach the shard in the other order, in one batch. The
// marker voided the first's guard, so the first is refused,
// INVALID_TXN_STATE; the other must be written under its own guard. The refused commit's guard
// was the one the flush appended the producer's batch under: the append
// refused the accepted commit, and the shard failed, answering every
// pending request COORDINATOR_NOT_AVAILABLE and loading again from the log.
func TestCoordTxnCommitRefusedGuardSparesTheAccepted(t *testing.T) {
	f, offsets := txnGuardFixture(t)

	s, release := holdShard(t, f, "tg")
	first := offsets.BeginTxnVerification(7)
	// A marker (the coordinator aborting the transaction) voids it.
	_, err := offsets.WriteTxnMarker(context.Background(), partition.TxnMarker{ProducerID: 7})
	noErr(t, err)
	second := offsets.BeginTxnVerification(7)
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

// TestCoordTxnCommitSurvivesAConcurrentVerification: a TxnOffsetCommit
// passed its guard's check when decided; before the shard appends it,
// another verification of the same producer on the partition begins (a
// retry of the commit on another connection). No marker came, so the
// commit must still be written. The new verification replaced the guard,
// the append under the old one refused the accepted commit, and the shard
// failed. Kafka's verification guard is the producer's pending one, shared
// by every verification until the append or a marker.
func TestCoordTxnCommitSurvivesAConcurrentVerification(t *testing.T) {
	f, offsets := txnGuardFixture(t)

	s, release := holdShard(t, f, "tg")
	guard := offsets.BeginTxnVerification(7)
	accepted := txnCommitAsync(t, f, s, 5, guard)
	begun := make(chan uint64, 1)
	go func() {
		// Handled after the commit's step, before the flush appends it.
		_, _ = f.coord.call(context.Background(), "tg", request{read: func(*group.Shard) any {
			begun <- offsets.BeginTxnVerification(7)
			return nil
		}})
	}()
	eventually(t, "the verification queued", func() bool { return len(s.inbox) == 2 })
	release()

	if err := <-accepted; err != nil {
		t.Fatalf("the commit decided before the other verification began: %v, want it written", err)
	}
	offsets.EndTxnVerification(7, <-begun)
	require(t, !offsets.NeedsTxnVerification(7, 0), "the commit opened no transaction on %s-0", OffsetsTopic)
}

// TestCoordTxnCommitVoidedGuardNotReplacedByALaterOne: a TxnOffsetCommit
// passes its guard's check; before the flush, a marker ends the
// producer's transaction on the partition (the client aborted after its
// commit timed out) and the producer's next transaction verifies a
// commit under a new guard, decided in the same flush. The two commits
// share a batch (one producer, one epoch), which was appended under the
// guard noted last: the new one, so the first commit's offsets, of a
// transaction the marker had ended, were written into the next
// transaction, to be committed with it. Appended under the first guard
// noted, the marker refuses the batch: the shard fails and loads again,
// and nothing is written.
func TestCoordTxnCommitVoidedGuardNotReplacedByALaterOne(t *testing.T) {
	f, offsets := txnGuardFixture(t)

	s, release := holdShard(t, f, "tg")
	first := offsets.BeginTxnVerification(7)
	stale := txnCommitAsync(t, f, s, 4, first)
	second := first + 1 // the guard the next verification takes (guards are numbered)
	began := make(chan uint64, 1)
	go func() {
		// Handled after the first commit's step, before the flush.
		_, _ = f.coord.call(context.Background(), "tg", request{read: func(*group.Shard) any {
			_, err := offsets.WriteTxnMarker(context.Background(), partition.TxnMarker{ProducerID: 7})
			noErr(t, err)
			began <- offsets.BeginTxnVerification(7)
			return nil
		}})
	}()
	eventually(t, "the marker queued", func() bool { return len(s.inbox) == 2 })
	next := txnCommitAsync(t, f, s, 5, second)
	release()

	if g := <-began; g != second {
		t.Fatalf("the next verification took guard %d, the test assumed %d", g, second)
	}
	if err := <-stale; err == nil {
		t.Errorf("the commit whose transaction a marker ended was written into the next transaction")
	}
	<-next
	offsets.EndTxnVerification(7, second)
	require(t, offsets.NeedsTxnVerification(7, 0), "a transaction of producer 7 is open on %s-0", OffsetsTopic)
}
