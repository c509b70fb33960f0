package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

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
