package coord

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/metadata"
)

// fakeMarkers is the partition side as the coordinator sees it: it
// records every WriteTxnMarkers call and answers with fail (nil: success).
type fakeMarkers struct {
	mu    sync.Mutex
	calls []string
	fail  func(m TxnMarker) error
}

func (f *fakeMarkers) WriteTxnMarkers(_ context.Context, broker int32, m TxnMarker) ([]error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var err error
	if f.fail != nil {
		err = f.fail(m)
	}
	f.calls = append(f.calls, fmt.Sprintf("broker=%d pid=%d epoch=%d commit=%v coord-epoch=%d %v err=%v",
		broker, m.ProducerID, m.ProducerEpoch, m.Commit, m.CoordinatorEpoch, m.Partitions, err))
	errs := make([]error, len(m.Partitions))
	for i := range errs {
		errs[i] = err
	}
	return errs, nil
}

func (f *fakeMarkers) written() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

type txnFixture struct {
	*fixture
	txn     *TxnCoordinator
	markers *fakeMarkers
	nextPID int64
	cfg     TxnConfig
	// onImage, when set, runs once inside the coordinator's next image
	// read, after the image was read: what happens in the meantime.
	onImage atomic.Pointer[func()]
}

// txnImage is the image as the transaction coordinator reads it.
func (f *txnFixture) txnImage() *metadata.Image {
	img := f.image()
	if meanwhile := f.onImage.Swap(nil); meanwhile != nil {
		(*meanwhile)()
	}
	return img
}

func newTxnFixture(t *testing.T, cfg TxnConfig) *txnFixture {
	f := &txnFixture{fixture: newFixture(t, clock.Real(), Config{}), markers: &fakeMarkers{}, cfg: cfg}
	f.createTopic("out", 2, nil)
	f.startTxn()
	return f
}

func (f *txnFixture) startTxn() {
	c, err := StartTxn(TxnOptions{NodeID: testNode, Partitions: f.mgr, Image: f.txnImage, Clock: f.clock, Logger: quietLogger,
		CreateTransactionTopic: func(context.Context) error {
			if _, ok := f.image().Topic(TransactionStateTopic); !ok {
				f.createTopic(TransactionStateTopic, 3, TransactionTopicConfigs)
			}
			f.txn.Refresh()
			return nil
		},
		NextProducerID: func(context.Context) (int64, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.nextPID++
			return 1000 + f.nextPID, nil
		},
		Markers: f.markers, Config: f.cfg})
	noErr(f.t, err)
	f.txn = c
	f.t.Cleanup(c.Stop)
	c.Refresh()
}

// restartTxn stops the partitions and both coordinators and opens them
// again on the same directory, as a broker restart does.
func (f *txnFixture) restartTxn() {
	f.txn.Stop()
	f.restart()
	f.startTxn()
}

func (f *txnFixture) ready(id string) {
	f.t.Helper()
	eventually(f.t, "the transaction coordinator of "+id, func() bool {
		node, err := f.txn.FindCoordinator(context.Background(), id)
		return err == nil && node == testNode
	})
}

func (f *txnFixture) state(id string) TxnDescription {
	return f.txn.DescribeTransactions(context.Background(), []string{id})[0]
}

func TestTxnCoordinatorCommitWritesMarkersThenCompletes(t *testing.T) {
	f := newTxnFixture(t, TxnConfig{TransactionTopicNumPartitions: 3})
	f.createTopic(OffsetsTopic, 4, OffsetsTopicConfigs)
	ctx := ctxT(t)
	f.ready("app")
	res, err := f.txn.InitProducerID(ctx, InitProducerIDReq{TransactionalID: "app", TimeoutMs: 60000, ProducerID: -1, ProducerEpoch: -1})
	noErr(t, err)
	require(t, res.ProducerID == 1001 && res.ProducerEpoch == 0, "init: %+v", res)
	p := TxnProducer{TransactionalID: "app", ProducerID: res.ProducerID, ProducerEpoch: res.ProducerEpoch}
	noErr(t, f.txn.AddPartitions(ctx, p, []TxnTopicPartition{{Topic: "out", Partition: 0}, {Topic: "out", Partition: 1}}))
	noErr(t, f.txn.AddOffsets(ctx, p, "etl"))
	errs, err := f.txn.VerifyPartitions(ctx, p, []TxnTopicPartition{{Topic: "out", Partition: 1}, {Topic: "other", Partition: 0}})
	noErr(t, err)
	require(t, errs[0] == nil && errs[1] != nil, "verify: %v", errs)
	noErr(t, f.txn.EndTxn(ctx, p, true))
	eventually(t, "CompleteCommit", func() bool { return f.state("app").State == 4 })
	calls := f.markers.written()
	want := fmt.Sprintf("broker=1 pid=1001 epoch=0 commit=true coord-epoch=0 [{__consumer_offsets %d} {out 0} {out 1}] err=<nil>", PartitionFor("etl", 4))
	require(t, len(calls) == 1 && calls[0] == want, "markers:\n%v\nwant\n%s", calls, want)

	// The epoch is bumped by the next InitProducerId, and it survives a
	// restart (the shard is replayed from __transaction_state).
	res, err = f.txn.InitProducerID(ctx, InitProducerIDReq{TransactionalID: "app", TimeoutMs: 60000, ProducerID: -1, ProducerEpoch: -1})
	noErr(t, err)
	require(t, res.ProducerID == 1001 && res.ProducerEpoch == 1, "second init: %+v", res)
	f.restartTxn()
	f.ready("app")
	d := f.state("app")
	require(t, d.Err == nil && d.ProducerEpoch == 1 && d.State == 0, "after restart: %+v", d)
	err = f.txn.AddPartitions(ctx, p, []TxnTopicPartition{{Topic: "out", Partition: 0}})
	requireErrorIs(t, err, ErrProducerFenced)
}

func TestTxnCoordinatorRetriesMarkersAndResumesThemAfterRestart(t *testing.T) {
	f := newTxnFixture(t, TxnConfig{TransactionTopicNumPartitions: 3})
	ctx := ctxT(t)
	f.ready("app")
	blocked := func(TxnMarker) error { return fmt.Errorf("%w: NOT_LEADER_OR_FOLLOWER", ErrTxnMarkerRetriable) }
	f.markers.mu.Lock()
	f.markers.fail = blocked
	f.markers.mu.Unlock()
	res, err := f.txn.InitProducerID(ctx, InitProducerIDReq{TransactionalID: "app", TimeoutMs: 60000, ProducerID: -1, ProducerEpoch: -1})
	noErr(t, err)
	p := TxnProducer{TransactionalID: "app", ProducerID: res.ProducerID, ProducerEpoch: res.ProducerEpoch}
	noErr(t, f.txn.AddPartitions(ctx, p, []TxnTopicPartition{{Topic: "out", Partition: 0}}))
	noErr(t, f.txn.EndTxn(ctx, p, false))
	eventually(t, "retried markers", func() bool { return len(f.markers.written()) >= 3 })
	require(t, f.state("app").State == 3, "not PrepareAbort while markers fail: %+v", f.state("app"))
	requireErrorIs(t, f.txn.EndTxn(ctx, p, false), ErrConcurrentTransactions)

	// A coordinator that loads the shard (here: after a restart) resumes
	// the markers of the prepared transaction.
	f.markers.mu.Lock()
	f.markers.fail, f.markers.calls = nil, nil
	f.markers.mu.Unlock()
	f.restartTxn()
	f.ready("app")
	eventually(t, "CompleteAbort after restart", func() bool { return f.state("app").State == 5 })
	calls := f.markers.written()
	require(t, len(calls) == 1 && calls[0] == "broker=1 pid=1001 epoch=0 commit=false coord-epoch=0 [{out 0}] err=<nil>", "markers: %v", calls)
	noErr(t, f.txn.EndTxn(ctx, p, false)) // a retried abort succeeds
}

func TestTxnCoordinatorAbortsTimedOutTransactions(t *testing.T) {
	f := newTxnFixture(t, TxnConfig{TransactionTopicNumPartitions: 3, AbortTimedOutIntervalMs: 5})
	ctx := ctxT(t)
	f.ready("slow")
	res, err := f.txn.InitProducerID(ctx, InitProducerIDReq{TransactionalID: "slow", TimeoutMs: 20, ProducerID: -1, ProducerEpoch: -1})
	noErr(t, err)
	p := TxnProducer{TransactionalID: "slow", ProducerID: res.ProducerID, ProducerEpoch: res.ProducerEpoch}
	noErr(t, f.txn.AddPartitions(ctx, p, []TxnTopicPartition{{Topic: "out", Partition: 1}}))
	eventually(t, "the timed-out transaction aborted", func() bool { return f.state("slow").State == 5 })
	calls := f.markers.written()
	require(t, len(calls) == 1 && calls[0] == "broker=1 pid=1001 epoch=1 commit=false coord-epoch=0 [{out 1}] err=<nil>", "markers: %v", calls)
	requireErrorIs(t, f.txn.EndTxn(ctx, p, true), ErrProducerFenced)
	_, err = f.txn.InitProducerID(ctx, InitProducerIDReq{TransactionalID: "slow", TimeoutMs: 1 << 30, ProducerID: -1, ProducerEpoch: -1})
	requireErrorIs(t, err, ErrInvalidTransactionTimeout)
	l, err := f.txn.ListTransactions(ctx, TxnListFilter{MinDurationMs: -1})
	noErr(t, err)
	require(t, len(l) == 1 && l[0].TransactionalID == "slow", "list: %+v", l)
}

// A request that finds its transaction being completed waits for the
// completion instead of failing with CONCURRENT_TRANSACTIONS (which makes
// clients back off 20 ms), as long as the markers take under a second.
func TestTxnCoordinatorHoldsRequestsWhileMarkersAreWritten(t *testing.T) {
	f := newTxnFixture(t, TxnConfig{TransactionTopicNumPartitions: 3})
	ctx := ctxT(t)
	f.ready("app")
	f.markers.mu.Lock()
	f.markers.fail = func(TxnMarker) error { time.Sleep(50 * time.Millisecond); return nil }
	f.markers.mu.Unlock()
	res, err := f.txn.InitProducerID(ctx, InitProducerIDReq{TransactionalID: "app", TimeoutMs: 60000, ProducerID: -1, ProducerEpoch: -1})
	noErr(t, err)
	p := TxnProducer{TransactionalID: "app", ProducerID: res.ProducerID, ProducerEpoch: res.ProducerEpoch}
	out := []TxnTopicPartition{{Topic: "out", Partition: 0}}
	for range 3 {
		noErr(t, f.txn.AddPartitions(ctx, p, out))
		noErr(t, f.txn.EndTxn(ctx, p, true))
	}
	// A second producer's InitProducerId while a transaction is open: the
	// open one is aborted (fencing the first producer) and the answer,
	// held until the abort completes, is the bumped epoch.
	noErr(t, f.txn.AddPartitions(ctx, p, out))
	res, err = f.txn.InitProducerID(ctx, InitProducerIDReq{TransactionalID: "app", TimeoutMs: 60000, ProducerID: -1, ProducerEpoch: -1})
	noErr(t, err)
	require(t, res.ProducerEpoch == 2, "epoch after fencing an open transaction: %d", res.ProducerEpoch)
	require(t, len(f.markers.written()) == 4, "markers: %v", f.markers.written())
}

// TestTxnCoordinatorStaleRefreshKeepsTheCoordinatorEpoch: a Refresh reads
// the image, and before it applies it another Refresh applies a newer one
// in which this node leads the shard's partition in a new leader epoch.
// The stale Refresh must not reload the shard under the old epoch: its
// markers carry the shard's epoch as their coordinator epoch, and a
// partition that saw the newer one refuses them (COORDINATOR_FENCED), so
// the transaction would stay prepared, its partitions' LSO held, until
// some later metadata change reloaded the shard.
func TestTxnCoordinatorStaleRefreshKeepsTheCoordinatorEpoch(t *testing.T) {
	f := newTxnFixture(t, TxnConfig{TransactionTopicNumPartitions: 3})
	ctx := ctxT(t)
	f.ready("app")
	topic, _ := f.image().Topic(TransactionStateTopic)
	shard := PartitionFor("app", 3)
	require(t, topic.Partitions[shard].LeaderEpoch == 0, "leader epoch %d, want 0", topic.Partitions[shard].LeaderEpoch)

	// The stale Refresh reads the image of epoch 0; meanwhile the leader
	// is elected again (epoch 1) and the node's Refresh applies that.
	meanwhile := func() {
		f.apply(&metadata.PartitionChange{TopicID: topic.ID, Partition: shard, Leader: testNode})
		f.txn.Refresh()
	}
	f.onImage.Store(&meanwhile)
	f.txn.Refresh()
	require(t, f.onImage.Load() == nil, "the Refresh did not read the image")

	f.ready("app")
	res, err := f.txn.InitProducerID(ctx, InitProducerIDReq{TransactionalID: "app", TimeoutMs: 60000, ProducerID: -1, ProducerEpoch: -1})
	noErr(t, err)
	p := TxnProducer{TransactionalID: "app", ProducerID: res.ProducerID, ProducerEpoch: res.ProducerEpoch}
	noErr(t, f.txn.AddPartitions(ctx, p, []TxnTopicPartition{{Topic: "out", Partition: 0}}))
	noErr(t, f.txn.EndTxn(ctx, p, true))
	eventually(t, "CompleteCommit", func() bool { return f.state("app").State == 4 })
	calls := f.markers.written()
	want := "broker=1 pid=1001 epoch=0 commit=true coord-epoch=1 [{out 0}] err=<nil>"
	require(t, len(calls) == 1 && calls[0] == want, "markers:\n%v\nwant\n%s", calls, want)
}
