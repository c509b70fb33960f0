package api

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/kraft"
)

// recordedMarkers stands in for the partition leaders: it records the
// WriteTxnMarkers the coordinator sends and acknowledges them.
type recordedMarkers struct {
	mu    sync.Mutex
	calls []string
}

func (r *recordedMarkers) WriteTxnMarkers(_ context.Context, broker int32, m coord.TxnMarker) ([]error, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf("broker=%d pid=%d epoch=%d commit=%v %v", broker, m.ProducerID, m.ProducerEpoch, m.Commit, m.Partitions))
	return make([]error, len(m.Partitions)), nil
}

func (r *recordedMarkers) written() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

// newTxnHarness is the group harness with a transaction coordinator
// (three __transaction_state partitions) whose markers are recorded.
func newTxnHarness(t *testing.T) (*harness, *recordedMarkers) {
	t.Helper()
	h := newGroupHarness(t, groupTestConfig())
	markers := &recordedMarkers{}
	c, err := coord.StartTxn(coord.TxnOptions{
		NodeID: h.broker.NodeID, Partitions: h.broker.Partitions, Image: h.cp.Image, Logger: quietLogger,
		CreateTransactionTopic: func(ctx context.Context) error {
			topic := controller.CreatableTopic{Name: coord.TransactionStateTopic, NumPartitions: 3, ReplicationFactor: 1}
			out, err := h.cp.Submit(ctx, kraft.CreateTopics{Request: controller.CreateTopicsRequest{Topics: []controller.CreatableTopic{topic}}})
			if err != nil {
				return err
			}
			if res := out.(controller.CreateTopicsResponse).Topics[0]; res.Err != nil && !errors.Is(res.Err, controller.ErrTopicExists) {
				return res.Err
			}
			return nil
		},
		NextProducerID: h.broker.ProducerIDs.NextProducerID,
		Markers:        markers,
		Config:         coord.TxnConfig{TransactionTopicNumPartitions: 3, MaxTimeoutMs: 60000},
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			_, changed := h.cp.Watch()
			c.Refresh()
			select {
			case <-stop:
				return
			case <-changed:
			}
		}
	})
	t.Cleanup(func() { close(stop); wg.Wait(); c.Stop() })
	h.broker.Txns = c
	return h, markers
}

// txnEventually retries req until its error code (read by code) is not a
// retriable coordinator one, as clients do.
func txnEventually[T kmsg.Response](t *testing.T, h *harness, req kmsg.Request, code func(T) int16) T {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp := groupMust[T](t, h, req)
		c := code(resp)
		retry := c == kerr.CoordinatorNotAvailable.Code || c == kerr.CoordinatorLoadInProgress.Code || c == kerr.ConcurrentTransactions.Code
		if !retry || time.Now().After(deadline) {
			return resp
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTxnHandlersCommitAtClientVersions(t *testing.T) {
	h, markers := newTxnHarness(t)
	create := createTopicsRequest(4, false, createTopicsTopic("out", 2, 1))
	groupMust[*kmsg.CreateTopicsResponse](t, h, create)

	find := findCoordinatorRequest(3, 1, "app")
	fresp := txnEventually(t, h, find, func(r *kmsg.FindCoordinatorResponse) int16 { return r.ErrorCode })
	groupWantCode(t, "find", fresp.ErrorCode, nil)
	if fresp.NodeID != 1 {
		t.Fatalf("coordinator node %d", fresp.NodeID)
	}

	id := "app"
	init := kmsg.NewPtrInitProducerIDRequest()
	init.Version, init.TransactionalID, init.TransactionTimeoutMillis = 4, &id, 10000
	iresp := txnEventually(t, h, init, func(r *kmsg.InitProducerIDResponse) int16 { return r.ErrorCode })
	groupWantCode(t, "init", iresp.ErrorCode, nil)
	if iresp.ProducerID < 1000 || iresp.ProducerEpoch != 0 {
		t.Fatalf("init: %+v", iresp)
	}
	pid, epoch := iresp.ProducerID, iresp.ProducerEpoch

	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.Version, add.TransactionalID, add.ProducerID, add.ProducerEpoch = 3, id, pid, epoch
	add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "out", Partitions: []int32{0, 1}}, {Topic: "missing", Partitions: []int32{0}}}
	aresp := groupMust[*kmsg.AddPartitionsToTxnResponse](t, h, add)
	groupWantCode(t, "add out-0 beside a missing topic", aresp.Topics[0].Partitions[0].ErrorCode, kerr.OperationNotAttempted)
	groupWantCode(t, "add missing-0", aresp.Topics[1].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
	add.Topics = add.Topics[:1]
	aresp = groupMust[*kmsg.AddPartitionsToTxnResponse](t, h, add)
	for _, p := range aresp.Topics[0].Partitions {
		groupWantCode(t, "add", p.ErrorCode, nil)
	}

	// The partition leaders' check (v4+, verify_only).
	verify := kmsg.NewPtrAddPartitionsToTxnRequest()
	verify.Version = 5
	verify.Transactions = []kmsg.AddPartitionsToTxnRequestTransaction{{TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch,
		VerifyOnly: true, Topics: []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: "out", Partitions: []int32{1}}}}}
	vresp := groupMust[*kmsg.AddPartitionsToTxnResponse](t, h, verify)
	groupWantCode(t, "verify out-1", vresp.Transactions[0].Topics[0].Partitions[0].ErrorCode, nil)

	// The group's coordinator exists first, as it does for a consumer.
	txnEventually(t, h, findCoordinatorRequest(3, 0, "etl"), func(r *kmsg.FindCoordinatorResponse) int16 { return r.ErrorCode })
	offsets := kmsg.NewPtrAddOffsetsToTxnRequest()
	offsets.Version, offsets.TransactionalID, offsets.ProducerID, offsets.ProducerEpoch, offsets.Group = 3, id, pid, epoch, "etl"
	groupWantCode(t, "add offsets", groupMust[*kmsg.AddOffsetsToTxnResponse](t, h, offsets).ErrorCode, nil)

	describe := kmsg.NewPtrDescribeTransactionsRequest()
	describe.TransactionalIDs = []string{id, "nobody"}
	dresp := groupMust[*kmsg.DescribeTransactionsResponse](t, h, describe)
	st := dresp.TransactionStates[0]
	if st.ErrorCode != 0 || st.State != "Ongoing" || st.ProducerID != pid || len(st.Topics) != 2 {
		t.Fatalf("describe: %+v", st)
	}
	groupWantCode(t, "describe unknown", dresp.TransactionStates[1].ErrorCode, kerr.TransactionalIDNotFound)

	end := kmsg.NewPtrEndTxnRequest()
	end.Version, end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = 3, id, pid, epoch, true
	groupWantCode(t, "end", groupMust[*kmsg.EndTxnResponse](t, h, end).ErrorCode, nil)

	list := kmsg.NewPtrListTransactionsRequest()
	list.Version, list.StateFilters, list.DurationFilterMillis = 1, []string{"CompleteCommit", "Bogus"}, -1
	deadline := time.Now().Add(10 * time.Second)
	for {
		lresp := groupMust[*kmsg.ListTransactionsResponse](t, h, list)
		if len(lresp.UnknownStateFilters) != 1 || lresp.UnknownStateFilters[0] != "Bogus" {
			t.Fatalf("unknown state filters: %v", lresp.UnknownStateFilters)
		}
		if len(lresp.TransactionStates) == 1 && lresp.TransactionStates[0].TransactionalID == id {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never CompleteCommit: %+v", lresp)
		}
		time.Sleep(5 * time.Millisecond)
	}
	calls := markers.written()
	want := fmt.Sprintf("broker=1 pid=%d epoch=0 commit=true [{__consumer_offsets %d} {out 0} {out 1}]", pid, coord.PartitionFor("etl", 3))
	if len(calls) != 1 || calls[0] != want {
		t.Fatalf("markers %v, want %s", calls, want)
	}

	// A second producer fences the first; the first's old-version
	// requests get INVALID_PRODUCER_EPOCH, new ones PRODUCER_FENCED.
	iresp = txnEventually(t, h, init, func(r *kmsg.InitProducerIDResponse) int16 { return r.ErrorCode })
	if iresp.ErrorCode != 0 || iresp.ProducerEpoch != 1 {
		t.Fatalf("second init: %+v", iresp)
	}
	end.Version = 1
	groupWantCode(t, "fenced end v1", groupMust[*kmsg.EndTxnResponse](t, h, end).ErrorCode, kerr.InvalidProducerEpoch)
	end.Version = 4
	groupWantCode(t, "fenced end v4", groupMust[*kmsg.EndTxnResponse](t, h, end).ErrorCode, kerr.ProducerFenced)
	init.TransactionTimeoutMillis = 60001
	groupWantCode(t, "timeout above the max", groupMust[*kmsg.InitProducerIDResponse](t, h, init).ErrorCode, kerr.InvalidTransactionTimeout)
}
