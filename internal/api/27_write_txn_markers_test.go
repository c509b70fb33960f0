package api

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/partition"
	"github.com/sluicelog/sluice/internal/record"
)

// fakeVerifier answers KIP-890 verifications from a table by producer id.
type fakeVerifier struct {
	mu      sync.Mutex
	answers map[int64]error
	asked   []int64
	// during runs inside a verification: a coordinator acting meanwhile.
	during func()
}

func (v *fakeVerifier) VerifyTxnPartition(_ context.Context, _ string, producerID int64, _ int16, _ string, _ int32) error {
	v.mu.Lock()
	during := v.during
	v.asked = append(v.asked, producerID)
	answer := v.answers[producerID]
	v.mu.Unlock()
	if during != nil {
		during()
	}
	return answer
}

func txnTestBatch(t testing.TB, pid int64, seq int32, n int) []byte {
	t.Helper()
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{Value: []byte("v"), OffsetDelta: int32(i)}
	}
	b, err := record.AppendBatch(nil, record.BatchOptions{ProducerID: pid, BaseSequence: seq, Transactional: true,
		FirstTimestamp: time.Now().UnixMilli()}, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func txnProduce(t testing.TB, h *harness, topic string, records []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := dpProduceRequest(9, -1, topic, map[int32][]byte{0: records})
	id := "app-1"
	req.TransactionID = &id
	return h.do(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
}

func writeMarkers(t testing.TB, h *harness, topic string, pid int64, coordinatorEpoch int32, commit bool) int16 {
	t.Helper()
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.Version = 1
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.CoordinatorEpoch, m.Committed = pid, coordinatorEpoch, commit
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = topic, []int32{0}
	m.Topics = append(m.Topics, mt)
	req.Markers = append(req.Markers, m)
	resp := h.do(req).(*kmsg.WriteTxnMarkersResponse)
	if len(resp.Markers) != 1 || resp.Markers[0].ProducerID != pid || len(resp.Markers[0].Topics[0].Partitions) != 1 {
		t.Fatalf("write txn markers response %+v", resp)
	}
	return resp.Markers[0].Topics[0].Partitions[0].ErrorCode
}

func listLatest(t testing.TB, h *harness, topic string, isolation int8) int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version, req.IsolationLevel = 7, isolation
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return h.do(req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].Offset
}

func TestWriteTxnMarkersAndReadCommitted(t *testing.T) {
	h := newHarness(t, Config{})
	verifier := &fakeVerifier{answers: map[int64]error{
		9: partition.ErrInvalidTxnState, 6: partition.ErrTxnVerificationUnsupported}}
	h.broker.TxnVerifier = verifier
	dpCreateTopic(t, h, "tx", 1)

	// Producer 9's coordinator never heard of this partition: refused.
	if out := txnProduce(t, h, "tx", txnTestBatch(t, 9, 0, 1)); out.ErrorCode != kerr.InvalidTxnState.Code {
		t.Fatalf("unverified produce: %v", kerr.ErrorForCode(out.ErrorCode))
	}
	// 5 opens a transaction at 0 (verified once), 6's coordinator cannot
	// verify (it goes ahead), then a plain record.
	for _, b := range [][]byte{txnTestBatch(t, 5, 0, 2), txnTestBatch(t, 6, 0, 1), txnTestBatch(t, 5, 2, 1)} {
		if out := txnProduce(t, h, "tx", b); out.ErrorCode != 0 {
			t.Fatalf("transactional produce: %v %v", kerr.ErrorForCode(out.ErrorCode), out.ErrorMessage)
		}
	}
	dpMustProduce(t, h, "tx", 0, dpBatch(t, "plain", 1, dpBatchOptions{}))
	if got := verifier.asked; len(got) != 3 || got[0] != 9 || got[1] != 5 || got[2] != 6 {
		t.Fatalf("verifications asked for %v, want [9 5 6]", got)
	}
	if lso, hw := listLatest(t, h, "tx", 1), listLatest(t, h, "tx", 0); lso != 0 || hw != 5 {
		t.Fatalf("latest offsets: read_committed %d, read_uncommitted %d; want 0 and 5", lso, hw)
	}
	req := dpFetchRequest(12, 0, 0, dpFetchPart{topic: "tx"})
	req.IsolationLevel = 1
	if fp := dpFetch(t, h, req).Topics[0].Partitions[0]; fp.LastStableOffset != 0 || fp.HighWatermark != 5 || len(fp.RecordBatches) != 0 {
		t.Fatalf("read_committed with open transactions: lso %d hw %d, %d bytes", fp.LastStableOffset, fp.HighWatermark, len(fp.RecordBatches))
	}
	describe := kmsg.NewPtrDescribeProducersRequest()
	dt := kmsg.NewDescribeProducersRequestTopic()
	dt.Topic, dt.Partitions = "tx", []int32{0}
	describe.Topics = append(describe.Topics, dt)
	active := h.do(describe).(*kmsg.DescribeProducersResponse).Topics[0].Partitions[0].ActiveProducers
	if len(active) != 2 || active[0].ProducerID != 5 || active[0].CurrentTxnStartOffset != 0 || active[1].CurrentTxnStartOffset != 2 {
		t.Fatalf("describe producers %+v", active)
	}

	if code := writeMarkers(t, h, "tx", 5, 3, false); code != 0 {
		t.Fatalf("abort marker: %v", kerr.ErrorForCode(code))
	}
	if code := writeMarkers(t, h, "tx", 5, 2, true); code != kerr.TransactionCoordinatorFenced.Code {
		t.Fatalf("marker from an older coordinator: %v", kerr.ErrorForCode(code))
	}
	if code := writeMarkers(t, h, "tx", 6, 3, true); code != 0 {
		t.Fatalf("commit marker: %v", kerr.ErrorForCode(code))
	}
	if code := writeMarkers(t, h, "tx", 5, 3, true); code != 0 {
		t.Fatalf("late marker: %v, want it ignored", kerr.ErrorForCode(code))
	}
	fp := dpFetch(t, h, req).Topics[0].Partitions[0]
	if fp.LastStableOffset != 7 || fp.HighWatermark != 7 {
		t.Fatalf("after the markers: lso %d hw %d, want 7 (the late marker wrote nothing)", fp.LastStableOffset, fp.HighWatermark)
	}
	if len(fp.AbortedTransactions) != 1 || fp.AbortedTransactions[0].ProducerID != 5 || fp.AbortedTransactions[0].FirstOffset != 0 {
		t.Fatalf("aborted transactions %+v", fp.AbortedTransactions)
	}
	if n := len(dpBatchHeaders(t, fp.RecordBatches)); n != 6 {
		t.Fatalf("read_committed got %d batches, want all 6 (the client drops the aborted ones)", n)
	}
}

// TestWriteTxnMarkersUnknownPartition: each partition answers for itself.
func TestWriteTxnMarkersUnknownPartition(t *testing.T) {
	h := newHarness(t, Config{})
	if code := writeMarkers(t, h, "nope", 1, 0, true); code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("marker for a missing topic: %v", kerr.ErrorForCode(code))
	}
}

// TestProduceVerifiedThenAbortedIsRefused: the coordinator aborts a
// transaction (its marker reaches the partition) while the partition
// leader verifies the transaction's first produce there; the produce must
// not open a transaction nobody will end (KIP-890's verification guard).
func TestProduceVerifiedThenAbortedIsRefused(t *testing.T) {
	h := newHarness(t, Config{})
	verifier := &fakeVerifier{answers: map[int64]error{}}
	h.broker.TxnVerifier = verifier
	dpCreateTopic(t, h, "race", 1)
	p, err := h.broker.Partitions.Partition("race", 0)
	if err != nil {
		t.Fatal(err)
	}
	verifier.during = func() {
		// The coordinator's abort, straight to the partition: the
		// harness serves one request at a time.
		res, err := p.WriteTxnMarker(context.Background(), partition.TxnMarker{ProducerID: 5, CoordinatorEpoch: 1})
		if err != nil || !res.Ignored {
			t.Errorf("abort marker: %+v %v, want it ignored (nothing open yet)", res, err)
		}
	}
	if out := txnProduce(t, h, "race", txnTestBatch(t, 5, 0, 1)); out.ErrorCode != kerr.InvalidTxnState.Code {
		t.Fatalf("produce verified before an abort: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(out.ErrorCode))
	}
	verifier.during = nil
	if lso := listLatest(t, h, "race", 1); lso != 0 {
		t.Fatalf("read_committed end %d: a transaction was left open", lso)
	}
	if out := txnProduce(t, h, "race", txnTestBatch(t, 5, 0, 1)); out.ErrorCode != 0 {
		t.Fatalf("produce of the next transaction: %v", kerr.ErrorForCode(out.ErrorCode))
	}
}

// panickingMarkerListener panics as it hears of a marker.
type panickingMarkerListener struct{}

func (panickingMarkerListener) TxnMarkerWritten(string, int32, int64, bool, int64) {
	panic("listener bug")
}

// TestWriteTxnMarkersPanicFailsThePartitionNotTheBroker: WriteTxnMarkers
// writes each partition's marker on a goroutine of its own, outside the
// connection's panic recovery, so a panic there (here in the marker
// listener, which an ignored marker reaches too) took the whole broker
// down. It now fails that partition's marker, which the coordinator does
// not retry, and the broker serves on.
func TestWriteTxnMarkersPanicFailsThePartitionNotTheBroker(t *testing.T) {
	h := newHarness(t, Config{})
	dpCreateTopic(t, h, "tx", 1)
	h.broker.TxnMarkerListener = panickingMarkerListener{}
	if code := writeMarkers(t, h, "tx", 5, 1, false); code != kerr.UnknownServerError.Code {
		t.Fatalf("a marker whose write panicked: %v, want UNKNOWN_SERVER_ERROR", kerr.ErrorForCode(code))
	}
	h.broker.TxnMarkerListener = nil
	if code := writeMarkers(t, h, "tx", 5, 1, false); code != 0 {
		t.Fatalf("the next marker: %v", kerr.ErrorForCode(code))
	}
}
