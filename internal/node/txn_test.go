package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/record"
)

// txnDriver plays a transaction coordinator by hand: it produces
// transactional batches with kmsg and ends them with WriteTxnMarkers, so
// the partition side is tested without the coordinator.
type txnDriver struct {
	t        *testing.T
	cl       *kgo.Client
	topic    string
	sequence map[[2]int64]int32 // producer id, partition -> next sequence
}

func (d *txnDriver) initProducer(ctx context.Context) int64 {
	d.t.Helper()
	resp, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctx, d.cl)
	if err != nil || resp.ErrorCode != 0 {
		d.t.Fatalf("init producer id: %v %v", err, kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp.ProducerID
}

func (d *txnDriver) produce(ctx context.Context, pid int64, part int32, transactional bool, values ...string) {
	d.t.Helper()
	key := [2]int64{pid, int64(part)}
	recs := make([]record.Record, len(values))
	for i, v := range values {
		recs[i] = record.Record{Value: []byte(v)}
	}
	opts := record.BatchOptions{ProducerID: -1, BaseSequence: -1, FirstTimestamp: time.Now().UnixMilli()}
	if pid >= 0 {
		opts.ProducerID, opts.BaseSequence, opts.Transactional = pid, d.sequence[key], transactional
		d.sequence[key] += int32(len(values))
	}
	batch, err := record.AppendBatch(nil, opts, recs)
	if err != nil {
		d.t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = d.topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = part, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, d.cl)
	if err != nil {
		d.t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		d.t.Fatalf("produce %v to %d: %v", values, part, kerr.ErrorForCode(code))
	}
}

func (d *txnDriver) end(ctx context.Context, pid int64, commit bool, parts ...int32) {
	d.t.Helper()
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.Version = 1
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.Committed, m.CoordinatorEpoch = pid, commit, 1
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = d.topic, parts
	m.Topics = append(m.Topics, mt)
	req.Markers = append(req.Markers, m)
	resp, err := req.RequestWith(ctx, d.cl)
	if err != nil {
		d.t.Fatal(err)
	}
	for _, p := range resp.Markers[0].Topics[0].Partitions {
		if p.ErrorCode != 0 {
			d.t.Fatalf("marker for producer %d on %d: %v", pid, p.Partition, kerr.ErrorForCode(p.ErrorCode))
		}
	}
}

// consumeValues reads want records from the start of the topic, then
// polls once more for a second to catch any record beyond them.
func consumeValues(t *testing.T, ctx context.Context, n *Node, topic string, level kgo.IsolationLevel, want int) []string {
	t.Helper()
	c := client(t, n, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(level))
	defer c.Close()
	var values []string
	poll := func(ctx context.Context) {
		fetches := c.PollFetches(ctx)
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("fetch %s-%d: %v", topic, p, err)
			}
		})
		fetches.EachRecord(func(r *kgo.Record) { values = append(values, string(r.Value)) })
	}
	for len(values) < want {
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(values), want, err)
		}
		poll(ctx)
	}
	extra, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	poll(extra)
	return values
}

// TestNodeReadCommittedNeverSeesAbortedRecords drives transactions by hand
// against a real node and checks what real franz-go consumers see, before
// and after a restart.
func TestNodeReadCommittedNeverSeesAbortedRecords(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(client(t, n)).CreateTopic(ctx, 2, 1, nil, "etl"); err != nil {
		t.Fatal(err)
	}
	d := &txnDriver{t: t, cl: client(t, n), topic: "etl", sequence: map[[2]int64]int32{}}
	producers := []int64{d.initProducer(ctx), d.initProducer(ctx), d.initProducer(ctx)}
	var committed []string
	for round := range 12 {
		pid := producers[round%len(producers)]
		commit := round%3 != 1
		tag := "abort"
		if commit {
			tag = "commit"
		}
		for part := range int32(2) {
			d.produce(ctx, pid, part, true, fmt.Sprintf("%s-%d-%d-a", tag, round, part), fmt.Sprintf("%s-%d-%d-b", tag, round, part))
			d.produce(ctx, -1, part, false, fmt.Sprintf("plain-%d-%d", round, part))
			committed = append(committed, fmt.Sprintf("plain-%d-%d", round, part))
			if commit {
				committed = append(committed, fmt.Sprintf("%s-%d-%d-a", tag, round, part), fmt.Sprintf("%s-%d-%d-b", tag, round, part))
			}
		}
		d.end(ctx, pid, commit, 0, 1)
	}
	// One transaction stays open: read_committed stops before it.
	d.produce(ctx, producers[0], 0, true, "open-0")

	check := func(n *Node) {
		t.Helper()
		got := consumeValues(t, ctx, n, "etl", kgo.ReadCommitted(), len(committed))
		for _, v := range got {
			if strings.HasPrefix(v, "abort-") || strings.HasPrefix(v, "open-") {
				t.Fatalf("read_committed consumer saw %q", v)
			}
		}
		if len(got) != len(committed) {
			t.Fatalf("read_committed consumer saw %d records, want %d", len(got), len(committed))
		}
		all := consumeValues(t, ctx, n, "etl", kgo.ReadUncommitted(), len(committed)+4*2*2+1)
		if len(all) != len(committed)+4*2*2+1 {
			t.Fatalf("read_uncommitted consumer saw %d records, want %d", len(all), len(committed)+4*2*2+1)
		}
	}
	check(n)
	shutdown(t, n)
	n = startNode(t, dir)
	check(n)

	// Without a transaction coordinator a produce naming a transactional
	// id cannot be verified: refused, retriably.
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10_000
	id := "nobody-coordinates-me"
	req.TransactionID = &id
	batch, _ := record.AppendBatch(nil, record.BatchOptions{ProducerID: producers[1], BaseSequence: d.sequence[[2]int64{producers[1], 1}],
		Transactional: true, FirstTimestamp: time.Now().UnixMilli()}, []record.Record{{Value: []byte("x")}})
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "etl"
	rt.Partitions = []kmsg.ProduceRequestTopicPartition{{Partition: 1, Records: batch}}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, client(t, n))
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; !errors.Is(kerr.ErrorForCode(code), kerr.NotEnoughReplicas) {
		t.Fatalf("unverifiable transactional produce: %v, want NOT_ENOUGH_REPLICAS", kerr.ErrorForCode(code))
	}
}

// TestNodeTxnOffsetCommitSurvivesRestart: transactional offsets become
// visible on their COMMIT marker, and a restart replays both the settled
// and the still pending ones from __consumer_offsets. Each commit is made
// in a transaction the transaction coordinator knows, with the group added
// (AddOffsetsToTxn), which the group coordinator checks; the test writes
// the markers itself.
func TestNodeTxnOffsetCommitSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, n))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "in"); err != nil {
		t.Fatal(err)
	}
	cl := client(t, n)
	d := &txnDriver{t: t, cl: cl, topic: "__consumer_offsets"}
	retry := func(what string, do func() int16) {
		t.Helper()
		for {
			err := kerr.ErrorForCode(do())
			if err == nil {
				return
			}
			if !kerr.IsRetriable(err) || ctx.Err() != nil {
				t.Fatalf("%s: %v", what, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	type producer struct {
		transactionalID string
		id              int64
		epoch           int16
	}
	begin := func(transactionalID string) producer {
		t.Helper()
		p := producer{transactionalID: transactionalID}
		retry("init producer id", func() int16 {
			req := kmsg.NewPtrInitProducerIDRequest()
			req.TransactionalID, req.TransactionTimeoutMillis = &transactionalID, 600_000 // past the test's end
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			p.id, p.epoch = resp.ProducerID, resp.ProducerEpoch
			return resp.ErrorCode
		})
		retry("add offsets to txn", func() int16 {
			req := kmsg.NewPtrAddOffsetsToTxnRequest()
			req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = transactionalID, p.id, p.epoch, "g"
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			return resp.ErrorCode
		})
		return p
	}
	commitTxn := func(cl *kgo.Client, p producer, offset int64) {
		t.Helper()
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.Version, req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch, req.Generation = 3, p.transactionalID, "g", p.id, p.epoch, -1
		req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "in", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: offset, LeaderEpoch: -1}}}}
		for {
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			err = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
			if err == nil {
				return
			}
			if !kerr.IsRetriable(err) || ctx.Err() != nil {
				t.Fatalf("txn offset commit: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	fetch := func(cl *kgo.Client) (int64, error) {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version, req.Group, req.RequireStable = 7, "g", true
		req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "in", Partitions: []int32{0}}}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		p := resp.Topics[0].Partitions[0]
		return p.Offset, kerr.ErrorForCode(p.ErrorCode)
	}
	waitFor := func(cl *kgo.Client, offset int64, want error) {
		t.Helper()
		for {
			got, err := fetch(cl)
			if got == offset && errors.Is(err, want) || (want == nil && err == nil && got == offset) {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("offset fetch: %d %v, want %d %v", got, err, offset, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	partition := coordPartition("g")
	p1, p2 := begin("etl-1"), begin("etl-2")
	// A producer id the coordinator never issued to etl-1 is refused, and
	// nothing is written: the offset is not even pending.
	bogus := kmsg.NewPtrTxnOffsetCommitRequest()
	bogus.Version, bogus.TransactionalID, bogus.Group, bogus.ProducerID, bogus.ProducerEpoch, bogus.Generation = 3, "etl-1", "g", p2.id+1000, 0, -1
	bogus.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "in", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 50, LeaderEpoch: -1}}}}
	if resp, err := bogus.RequestWith(ctx, cl); err != nil || !errors.Is(kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode), kerr.InvalidTxnState) {
		t.Fatalf("txn offset commit with a producer id never issued: %v %+v, want INVALID_TXN_STATE", err, resp)
	}
	if offset, err := fetch(cl); offset != -1 || err != nil {
		t.Fatalf("offset after a refused commit: %d %v, want none and not pending", offset, err)
	}
	commitTxn(cl, p1, 100)
	waitFor(cl, -1, kerr.UnstableOffsetCommit)
	d.end(ctx, p1.id, true, partition)
	waitFor(cl, 100, nil)
	commitTxn(cl, p2, 200)
	waitFor(cl, -1, kerr.UnstableOffsetCommit)

	shutdown(t, n)
	n = startNode(t, dir)
	cl = client(t, n)
	d.cl = cl
	waitFor(cl, -1, kerr.UnstableOffsetCommit) // pid2's offset is still pending
	d.end(ctx, p2.id, false, partition)
	waitFor(cl, 100, nil)
}

// coordPartition is the group's __consumer_offsets partition with the
// default 50 partitions.
func coordPartition(group string) int32 { return coord.PartitionFor(group, 50) }

// TestNodeReadCommittedWhileAbortsRace: transactional producers commit and
// abort concurrently on one partition, so their markers share write rounds
// and finish in any order, while a read_committed consumer reads along. It
// must never see a record of an aborted transaction (values say which kind
// they are). It used to, for a moment, when a later marker's abort was
// indexed before an earlier one's (TestLogTxnIndexMarkersIndexedOutOfOrder
// is the exact case).
func TestNodeReadCommittedWhileAbortsRace(t *testing.T) {
	n := startNode(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(client(t, n)).CreateTopic(ctx, 1, 1, nil, "racing"); err != nil {
		t.Fatal(err)
	}
	const producers, txns = 4, 200
	var wg sync.WaitGroup
	// The producers stop when the test does; their errors are reported
	// from here, never from their goroutines after the test ended.
	errs := make(chan error, producers)
	defer wg.Wait()
	defer cancel()
	for p := range producers {
		wg.Go(func() {
			cl := client(t, n, kgo.TransactionalID(fmt.Sprintf("racer-%d", p)), kgo.DefaultProduceTopic("racing"))
			errs <- produceTxns(ctx, cl, txns)
		})
	}
	c := client(t, n, kgo.ConsumeTopics("racing"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(20*time.Millisecond))
	committed, want := 0, 0
	for i := range txns {
		if i%3 != 0 {
			want += producers * (1 + i%5)
		}
	}
	for finished := 0; finished < producers || committed < want; {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatalf("transactional producer: %v", err)
			}
			finished++
		default:
		}
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d committed records: %v", committed, want, ctx.Err())
		}
		pollCtx, pollCancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fetches := c.PollFetches(pollCtx)
		pollCancel()
		var bad *kgo.Record
		fetches.EachRecord(func(r *kgo.Record) {
			if string(r.Value) != "commit" && bad == nil {
				bad = r
			}
			committed++
		})
		if bad != nil {
			t.Fatalf("read_committed consumer saw %q at offset %d (producer %d)", bad.Value, bad.Offset, bad.ProducerID)
		}
	}
	if committed != want {
		t.Fatalf("read %d committed records, want %d", committed, want)
	}
}

// produceTxns runs txns transactions of 1 to 5 records, aborting every
// third; each record's value says which its transaction will be.
func produceTxns(ctx context.Context, cl *kgo.Client, txns int) error {
	for i := range txns {
		abort := i%3 == 0
		if err := cl.BeginTransaction(); err != nil {
			return err
		}
		value := "commit"
		if abort {
			value = "abort"
		}
		for range 1 + i%5 {
			cl.Produce(ctx, &kgo.Record{Value: []byte(value)}, nil)
		}
		if err := cl.Flush(ctx); err != nil {
			return err
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(!abort)); err != nil {
			return err
		}
	}
	return nil
}
