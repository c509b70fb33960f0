package api

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/partition"
)

func txnOffsetCommitRequest(version int16, group string, pid int64, topic string, offset int64) *kmsg.TxnOffsetCommitRequest {
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version, req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = version, "etl", group, pid, 0
	if version >= 3 {
		req.Generation = -1
	}
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// fetchStable is a v7 OffsetFetch with require_stable of topic-0.
func fetchStable(t *testing.T, h *harness, group, topic string) kmsg.OffsetFetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version, req.Group, req.RequireStable = 7, group, true
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: []int32{0}}}
	return groupMust[*kmsg.OffsetFetchResponse](t, h, req).Topics[0].Partitions[0]
}

func TestTxnOffsetCommitVisibleOnCommitMarker(t *testing.T) {
	cfg := groupTestConfig()
	h := newGroupHarness(t, cfg)
	h.broker.TxnMarkerListener = h.broker.Groups.(*coord.Coordinator)
	groupCreateTopic(t, h, "in", 1)
	groupWaitCoordinator(t, h, "tg")
	offsetsPartition := coord.PartitionFor("tg", cfg.OffsetsTopicNumPartitions)
	marker := func(pid int64, commit bool) {
		t.Helper()
		if code := writeMarkersTo(t, h, coord.OffsetsTopic, offsetsPartition, pid, commit); code != 0 {
			t.Fatalf("marker: %v", kerr.ErrorForCode(code))
		}
	}

	for _, v := range []int16{0, 3} {
		resp := groupMust[*kmsg.TxnOffsetCommitResponse](t, h, txnOffsetCommitRequest(v, "tg", 7, "in", 10+int64(v)))
		groupWantCode(t, fmt.Sprintf("txn offset commit v%d", v), resp.Topics[0].Partitions[0].ErrorCode, nil)
	}
	if p := groupFetchOne(t, h, "tg", "in", 0); p.Offset != -1 {
		t.Fatalf("pending transactional offset visible: %d", p.Offset)
	}
	groupWantCode(t, "require_stable", fetchStable(t, h, "tg", "in").ErrorCode, kerr.UnstableOffsetCommit)

	marker(7, true)
	groupEventually(t, "offset after COMMIT", func() error {
		if p := fetchStable(t, h, "tg", "in"); p.ErrorCode != 0 || p.Offset != 13 {
			return fmt.Errorf("offset %d, %v", p.Offset, kerr.ErrorForCode(p.ErrorCode))
		}
		return nil
	})

	resp := groupMust[*kmsg.TxnOffsetCommitResponse](t, h, txnOffsetCommitRequest(3, "tg", 8, "in", 99))
	groupWantCode(t, "second transaction", resp.Topics[0].Partitions[0].ErrorCode, nil)
	marker(8, false)
	groupEventually(t, "offset after ABORT", func() error {
		if p := fetchStable(t, h, "tg", "in"); p.ErrorCode != 0 || p.Offset != 13 {
			return fmt.Errorf("offset %d, %v", p.Offset, kerr.ErrorForCode(p.ErrorCode))
		}
		return nil
	})

	// A zombie (an older epoch of a producer the partition knows) is
	// refused, and the shard goes on serving.
	req := txnOffsetCommitRequest(3, "tg", 10, "in", 500)
	req.ProducerEpoch = 1
	resp = groupMust[*kmsg.TxnOffsetCommitResponse](t, h, req)
	groupWantCode(t, "epoch 1", resp.Topics[0].Partitions[0].ErrorCode, nil)
	req = txnOffsetCommitRequest(3, "tg", 10, "in", 400)
	resp = groupMust[*kmsg.TxnOffsetCommitResponse](t, h, req)
	groupWantCode(t, "zombie at epoch 0", resp.Topics[0].Partitions[0].ErrorCode, kerr.InvalidProducerEpoch)
	groupWantCode(t, "fetch after the zombie", fetchStable(t, h, "tg", "in").ErrorCode, kerr.UnstableOffsetCommit)

	// A partition that does not exist is refused like a plain commit.
	resp = groupMust[*kmsg.TxnOffsetCommitResponse](t, h, txnOffsetCommitRequest(3, "tg", 9, "missing", 1))
	groupWantCode(t, "unknown partition", resp.Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
}

func writeMarkersTo(t *testing.T, h *harness, topic string, partition int32, pid int64, commit bool) int16 {
	t.Helper()
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.Version = 1
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.Committed = pid, commit
	m.Topics = []kmsg.WriteTxnMarkersRequestMarkerTopic{{Topic: topic, Partitions: []int32{partition}}}
	req.Markers = append(req.Markers, m)
	return h.do(req).(*kmsg.WriteTxnMarkersResponse).Markers[0].Topics[0].Partitions[0].ErrorCode
}

// TestTxnOffsetCommitVerifiedWithTheTransactionCoordinator: as Kafka's
// group coordinator does, a transactional commit is first checked with the
// transaction coordinator. A producer id it never issued to the
// transactional id (or whose transaction lacks the group) is refused,
// INVALID_TXN_STATE, and opens no transaction on __consumer_offsets (no
// pending offset); a fenced epoch gets INVALID_PRODUCER_EPOCH. A verified
// producer is asked once per transaction, and a coordinator that cannot
// verify lets the commit through, as produce does.
func TestTxnOffsetCommitVerifiedWithTheTransactionCoordinator(t *testing.T) {
	cfg := groupTestConfig()
	h := newGroupHarness(t, cfg)
	verifier := &fakeVerifier{answers: map[int64]error{
		9: partition.ErrInvalidTxnState, 8: partition.ErrInvalidProducerEpoch, 6: partition.ErrTxnVerificationUnsupported}}
	h.broker.TxnVerifier = verifier
	groupCreateTopic(t, h, "in", 1)
	groupWaitCoordinator(t, h, "tg")

	commit := func(pid int64, offset int64) int16 {
		t.Helper()
		return groupMust[*kmsg.TxnOffsetCommitResponse](t, h, txnOffsetCommitRequest(3, "tg", pid, "in", offset)).Topics[0].Partitions[0].ErrorCode
	}
	groupWantCode(t, "a producer id the coordinator never issued", commit(9, 5), kerr.InvalidTxnState)
	if p := fetchStable(t, h, "tg", "in"); p.ErrorCode != 0 || p.Offset != -1 {
		t.Fatalf("after a refused commit: %+v, want no offset and no pending transaction", p)
	}
	groupWantCode(t, "a fenced producer epoch", commit(8, 5), kerr.InvalidProducerEpoch)
	groupWantCode(t, "a verified producer", commit(7, 5), nil)
	groupWantCode(t, "the same transaction again", commit(7, 6), nil)
	groupWantCode(t, "a coordinator that cannot verify", commit(6, 5), nil)
	verifier.mu.Lock()
	defer verifier.mu.Unlock()
	if fmt.Sprint(verifier.asked) != "[9 8 7 6]" {
		t.Fatalf("asked the coordinator about producers %v, want [9 8 7 6]: once per transaction", verifier.asked)
	}
}

// TestTxnOffsetCommitRacingItsEndTxnOpensNoTransaction: a producer's
// EndTxn completes (its marker reaches the group's __consumer_offsets
// partition) while its TxnOffsetCommit is being verified. As a produce
// does (KIP-890's verification guard), the commit is refused,
// INVALID_TXN_STATE, rather than written as a transaction the marker
// already passed: nobody would ever end it, and every require_stable
// OffsetFetch of the partition's groups would answer
// UNSTABLE_OFFSET_COMMIT for ever.
func TestTxnOffsetCommitRacingItsEndTxnOpensNoTransaction(t *testing.T) {
	h, _, index := txnCommitHarness(t)
	offsets, err := h.broker.Partitions.Partition(coord.OffsetsTopic, index)
	if err != nil {
		t.Fatal(err)
	}
	h.broker.TxnVerifier = &fakeVerifier{during: func() {
		// The transaction coordinator completes the producer's EndTxn.
		if _, err := offsets.WriteTxnMarker(context.Background(), partition.TxnMarker{ProducerID: 7, Commit: true}); err != nil {
			t.Errorf("marker: %v", err)
		}
	}}
	resp := groupMust[*kmsg.TxnOffsetCommitResponse](t, h, txnOffsetCommitRequest(3, "tg", 7, "in", 5))
	groupWantCode(t, "a commit verified across its EndTxn", resp.Topics[0].Partitions[0].ErrorCode, kerr.InvalidTxnState)
	if p := fetchStable(t, h, "tg", "in"); p.ErrorCode != 0 || p.Offset != -1 {
		t.Fatalf("after the refused commit: offset %d, %v; want no offset and no open transaction", p.Offset, kerr.ErrorForCode(p.ErrorCode))
	}
	// The shard goes on serving: the producer's next transaction commits.
	h.broker.TxnVerifier = &fakeVerifier{}
	resp = groupMust[*kmsg.TxnOffsetCommitResponse](t, h, txnOffsetCommitRequest(3, "tg", 7, "in", 6))
	groupWantCode(t, "the next transaction", resp.Topics[0].Partitions[0].ErrorCode, nil)
}

// racingGroups runs before ahead of each transactional offset commit: a
// transaction coordinator acting between the handler's check and the
// group coordinator's write.
type racingGroups struct {
	*coord.Coordinator
	before func()
}

func (g racingGroups) TxnCommitOffsets(ctx context.Context, req coord.TxnCommitRequest, guard uint64) (coord.CommitResult, error) {
	g.before()
	return g.Coordinator.TxnCommitOffsets(ctx, req, guard)
}

// TestTxnOffsetCommitLaterInTheTransactionRacingItsEndTxn: a commit after
// the first of a transaction is not verified again (the transaction is
// open on the partition), but the transaction must still be open when it
// is written, as Kafka's append requires of a batch whose verification was
// skipped. Here the EndTxn's COMMIT marker lands between the check and
// the write: the commit is refused, INVALID_TXN_STATE, and the first
// commit's offset is the group's, with no transaction left open.
func TestTxnOffsetCommitLaterInTheTransactionRacingItsEndTxn(t *testing.T) {
	h, coordinator, index := txnCommitHarness(t)
	h.broker.TxnVerifier = &fakeVerifier{}
	offsets, err := h.broker.Partitions.Partition(coord.OffsetsTopic, index)
	if err != nil {
		t.Fatal(err)
	}
	resp := groupMust[*kmsg.TxnOffsetCommitResponse](t, h, txnOffsetCommitRequest(3, "tg", 7, "in", 5))
	groupWantCode(t, "the transaction's first commit", resp.Topics[0].Partitions[0].ErrorCode, nil)

	h.broker.Groups = racingGroups{coordinator, func() {
		res, err := offsets.WriteTxnMarker(context.Background(), partition.TxnMarker{ProducerID: 7, Commit: true})
		if err != nil || res.Ignored {
			t.Errorf("marker: %+v, %v", res, err)
			return
		}
		coordinator.TxnMarkerWritten(coord.OffsetsTopic, index, 7, true, res.Offset)
	}}
	resp = groupMust[*kmsg.TxnOffsetCommitResponse](t, h, txnOffsetCommitRequest(3, "tg", 7, "in", 6))
	groupWantCode(t, "a later commit across its EndTxn", resp.Topics[0].Partitions[0].ErrorCode, kerr.InvalidTxnState)
	groupEventually(t, "the first commit's offset, stable", func() error {
		if p := fetchStable(t, h, "tg", "in"); p.ErrorCode != 0 || p.Offset != 5 {
			return fmt.Errorf("offset %d, %v", p.Offset, kerr.ErrorForCode(p.ErrorCode))
		}
		return nil
	})
}

// lateGroups is a group coordinator whose TxnOffsetCommit outlives its
// handler: the client goes away (the handler's context ends) while the
// commit waits in the shard's inbox; pending writes it, as the shard
// would once it gets to it.
type lateGroups struct {
	*coord.Coordinator
	cancel  context.CancelFunc
	pending func() error
}

func (g *lateGroups) TxnCommitOffsets(ctx context.Context, req coord.TxnCommitRequest, guard uint64) (coord.CommitResult, error) {
	g.pending = func() error {
		_, err := g.Coordinator.TxnCommitOffsets(context.Background(), req, guard)
		return err
	}
	g.cancel()
	return coord.CommitResult{}, ctx.Err()
}

// TestTxnOffsetCommitOutlivingItsHandlerKeepsItsGuard: a verified
// TxnOffsetCommit whose client went away while the commit waited in the
// group coordinator's shard is still written there, under its guard. The
// handler ended the guard as its call returned, so the shard refused a
// commit no marker had voided; and had the shard decided it already, the
// append under the ended guard was refused and the shard failed, for all
// its groups.
func TestTxnOffsetCommitOutlivingItsHandlerKeepsItsGuard(t *testing.T) {
	h, coordinator, _ := txnCommitHarness(t)
	h.broker.TxnVerifier = &fakeVerifier{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	late := &lateGroups{Coordinator: coordinator, cancel: cancel}
	h.broker.Groups = late

	creq := coord.TxnCommitRequest{CommitRequest: coord.CommitRequest{GroupID: "tg", GenerationID: -1, RetentionTimeMs: -1,
		Topics: []coord.CommitTopic{{Name: "in", Partitions: []coord.CommitPartition{{Partition: 0, Offset: 5, LeaderEpoch: -1}}}}},
		TransactionalID: "etl", ProducerID: 7}
	if _, err := txnOffsetCommitRun(ctx, h.broker, &Request{}, creq); !errors.Is(err, context.Canceled) {
		t.Fatalf("the handler's commit: %v, want its context's end", err)
	}
	if err := late.pending(); err != nil {
		t.Fatalf("the commit written after its handler returned: %v, want it written under its guard", err)
	}
}

// txnCommitHarness is a group harness whose coordinator hears the
// transaction markers written to __consumer_offsets, with topic "in" and
// group "tg" ready; it returns the coordinator and the index of tg's
// offsets partition.
func txnCommitHarness(t *testing.T) (*harness, *coord.Coordinator, int32) {
	t.Helper()
	cfg := groupTestConfig()
	h := newGroupHarness(t, cfg)
	coordinator := h.broker.Groups.(*coord.Coordinator)
	h.broker.TxnMarkerListener = coordinator
	groupCreateTopic(t, h, "in", 1)
	groupWaitCoordinator(t, h, "tg")
	return h, coordinator, coord.PartitionFor("tg", cfg.OffsetsTopicNumPartitions)
}
