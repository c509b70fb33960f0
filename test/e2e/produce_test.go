package e2e

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// consumeN reads topic from the start of every partition until it has n
// records, failing the test on a bound or a fetch error.
func consumeN(t testing.TB, addr, topic string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl := newClient(t, addr, append([]kgo.Opt{
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500 * time.Millisecond),
	}, opts...)...)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume %s: got %d of %d records before the bound", topic, len(out), n)
		}
		fs.EachError(func(tp string, p int32, err error) {
			t.Errorf("fetch %s/%d: %v", tp, p, err)
		})
		if t.Failed() {
			t.FailNow()
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// testRecord is a record as produced, to compare with what comes back.
type testRecord struct {
	key, value []byte
	headers    []kgo.RecordHeader
}

// makeRecords builds n records with distinct keys, compressible values of
// varied sizes, headers, one null value and one empty value.
func makeRecords(n int) []testRecord {
	out := make([]testRecord, n)
	for i := range out {
		r := testRecord{
			key:   fmt.Appendf(nil, "key-%05d", i),
			value: bytes.Repeat(fmt.Appendf(nil, "value %d; ", i), 1+i%40),
			headers: []kgo.RecordHeader{
				{Key: "seq", Value: fmt.Appendf(nil, "%d", i)},
				{Key: "empty", Value: nil},
			},
		}
		switch i {
		case 3:
			r.value = nil // a tombstone
		case 4:
			r.value = []byte{}
			r.headers = nil
		}
		out[i] = r
	}
	return out
}

func compareRecords(t testing.TB, want []testRecord, got []*kgo.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("consumed %d records, produced %d", len(got), len(want))
	}
	byKey := map[string]testRecord{}
	for _, w := range want {
		byKey[string(w.key)] = w
	}
	seen := map[string]bool{}
	for _, g := range got {
		w, ok := byKey[string(g.Key)]
		if !ok {
			t.Errorf("consumed unknown key %q", g.Key)
			continue
		}
		if seen[string(g.Key)] {
			t.Errorf("key %q consumed twice", g.Key)
		}
		seen[string(g.Key)] = true
		if !bytes.Equal(g.Value, w.value) || (w.value == nil) != (g.Value == nil) {
			t.Errorf("key %q: value %q (nil %v), want %q (nil %v)", g.Key, abbrev(string(g.Value)), g.Value == nil, abbrev(string(w.value)), w.value == nil)
		}
		if len(g.Headers) != len(w.headers) {
			t.Errorf("key %q: %d headers, want %d", g.Key, len(g.Headers), len(w.headers))
			continue
		}
		for i := range w.headers {
			if g.Headers[i].Key != w.headers[i].Key || !bytes.Equal(g.Headers[i].Value, w.headers[i].Value) {
				t.Errorf("key %q header %d: %q=%q, want %q=%q", g.Key, i, g.Headers[i].Key, g.Headers[i].Value, w.headers[i].Key, w.headers[i].Value)
			}
		}
	}
}

// TestE2ECompressionCodecs produces and consumes with every codec and
// checks the batches are stored as sent (codec bits kept).
func TestE2ECompressionCodecs(t *testing.T) {
	b := startBroker(t)
	adm := newAdmin(t, b.Addr())
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
		id    int16 // record batch attributes & 0x7
	}{
		{"none", kgo.NoCompression(), 0},
		{"gzip", kgo.GzipCompression(), 1},
		{"snappy", kgo.SnappyCompression(), 2},
		{"lz4", kgo.Lz4Compression(), 3},
		{"zstd", kgo.ZstdCompression(), 4},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			topic := "codec-" + c.name
			createTopic(t, adm, topic, 2, nil)
			want := makeRecords(300)
			cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(c.codec),
				kgo.ProducerLinger(5*time.Millisecond))
			recs := make([]*kgo.Record, len(want))
			for i, w := range want {
				recs[i] = &kgo.Record{Key: w.key, Value: w.value, Headers: w.headers}
			}
			if err := cl.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
				t.Fatalf("produce with %s: %v", c.name, err)
			}
			got := consumeN(t, b.Addr(), topic, len(want))
			compareRecords(t, want, got)
			for p := int32(0); p < 2; p++ {
				attrs, ok := firstBatchAttributes(t, cl, topic, p)
				if ok && attrs&0x7 != c.id {
					t.Errorf("partition %d: first batch codec %d, want %d (stored as sent)", p, attrs&0x7, c.id)
				}
			}
		})
	}
}

// firstBatchAttributes fetches partition p from offset 0 with a raw Fetch
// and returns the first batch's attributes.
func firstBatchAttributes(t testing.TB, cl *kgo.Client, topic string, p int32) (int16, bool) {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(11)
	req.ReplicaID = -1
	req.MaxWaitMillis = 100
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = p
	rp.FetchOffset = 0
	rp.PartitionMaxBytes = 1 << 20
	rp.LogStartOffset = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Errorf("raw fetch %s/%d: %v", topic, p, err)
		return 0, false
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				t.Errorf("raw fetch %s/%d: %v", topic, p, kerr.ErrorForCode(rp.ErrorCode))
				return 0, false
			}
			if len(rp.RecordBatches) < 23 {
				return 0, false // partition got no records: nothing to check
			}
			return int16(rp.RecordBatches[21])<<8 | int16(rp.RecordBatches[22]), true
		}
	}
	t.Errorf("raw fetch %s/%d: partition missing from response", topic, p)
	return 0, false
}

// TestE2EIdempotentManyRecords produces many records with kgo's default
// idempotent producer (several requests in flight per broker) across
// partitions and checks each appears once, at its acknowledged offset.
func TestE2EIdempotentManyRecords(t *testing.T) {
	b := startBroker(t)
	adm := newAdmin(t, b.Addr())
	const topic, n, partitions = "idem", 6000, 4
	createTopic(t, adm, topic, partitions, nil)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchMaxBytes(4096), // many small batches, so requests pipeline
		kgo.MaxBufferedRecords(1000),
		kgo.ProducerLinger(0))

	var mu sync.Mutex
	acked := map[string]*kgo.Record{}
	var firstErr error
	ctx := testCtx(t)
	for i := 0; i < n; i++ {
		r := &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%97), Value: fmt.Appendf(nil, "idem-%06d", i)}
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			if err == nil {
				acked[string(r.Value)] = r
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	mu.Lock()
	if firstErr != nil {
		t.Fatalf("produce: %v", firstErr)
	}
	mu.Unlock()

	got := consumeN(t, b.Addr(), topic, n)
	if len(got) != n {
		t.Errorf("consumed %d records, produced %d", len(got), n)
	}
	seen := map[string]bool{}
	next := map[int32]int64{}
	for _, g := range got {
		v := string(g.Value)
		if seen[v] {
			t.Errorf("value %s consumed twice", v)
		}
		seen[v] = true
		a, ok := acked[v]
		if !ok {
			t.Errorf("consumed %s which was never produced", v)
			continue
		}
		if a.Partition != g.Partition || a.Offset != g.Offset {
			t.Errorf("%s acknowledged at %d/%d, read at %d/%d", v, a.Partition, a.Offset, g.Partition, g.Offset)
		}
		if g.Offset != next[g.Partition] {
			t.Errorf("partition %d: offset %d after %d (offsets must be dense)", g.Partition, g.Offset, next[g.Partition]-1)
		}
		next[g.Partition] = g.Offset + 1
	}
	if len(next) != partitions {
		t.Errorf("records landed in %d partitions, want %d", len(next), partitions)
	}
}

// TestE2ELongPollWakeUp checks a consumer parked in a long fetch receives a
// record produced later without waiting out max_wait_ms: the fetch is woken
// by the append, not a timer. The bound is a hang guard, far below the
// 30 s max wait and far above any sane latency.
func TestE2ELongPollWakeUp(t *testing.T) {
	b := startBroker(t)
	adm := newAdmin(t, b.Addr())
	const topic = "longpoll"
	createTopic(t, adm, topic, 1, nil)
	producer := newClient(t, b.Addr(), kgo.DefaultProduceTopic(topic))
	ctx := testCtx(t)
	if err := producer.ProduceSync(ctx, kgo.StringRecord("warm-up")).FirstErr(); err != nil {
		t.Fatalf("produce warm-up: %v", err)
	}
	consumer := newClient(t, b.Addr(),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(30*time.Second))
	fs := consumer.PollFetches(ctx)
	if err := fs.Err(); err != nil || len(fs.Records()) == 0 {
		t.Fatalf("first poll: %d records, err %v", len(fs.Records()), err)
	}

	got := make(chan time.Time, 1)
	go func() {
		for ctx.Err() == nil {
			fs := consumer.PollFetches(ctx)
			for _, r := range fs.Records() {
				if string(r.Value) == "wake" {
					got <- time.Now()
					return
				}
			}
		}
	}()
	// Give the consumer time to issue its next fetch and park in it; this
	// only makes the check meaningful, correctness does not depend on it.
	time.Sleep(time.Second)
	if err := producer.ProduceSync(ctx, kgo.StringRecord("wake")).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	produced := time.Now()
	select {
	case at := <-got:
		t.Logf("record delivered %v after its produce was acknowledged", at.Sub(produced))
	case <-time.After(15 * time.Second):
		t.Fatalf("consumer parked in a 30 s fetch did not receive a new record within 15 s: fetch not woken by append")
	}
}

// TestE2EAutoCreateTopic produces to a topic that does not exist; with
// auto.create.topics.enable (default true) it is created with
// num.partitions partitions.
func TestE2EAutoCreateTopic(t *testing.T) {
	b := startBroker(t, withSet("num.partitions=3"))
	ctx := testCtx(t)
	cl := newClient(t, b.Addr(), kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "auto-made", Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce to a new topic: %v", err)
	}
	adm := newAdmin(t, b.Addr())
	md, err := adm.ListTopics(ctx, "auto-made")
	if err != nil {
		t.Fatalf("ListTopics: %v", err)
	}
	if n := len(md["auto-made"].Partitions); n != 3 {
		t.Errorf("auto-created topic has %d partitions, want num.partitions=3", n)
	}
	got := consumeN(t, b.Addr(), "auto-made", 1)
	if string(got[0].Value) != "hello" {
		t.Errorf("consumed %q, want hello", got[0].Value)
	}
}

// TestE2EAutoCreateDisabled: with auto.create.topics.enable=false a
// Metadata request asking for auto-creation gets UNKNOWN_TOPIC_OR_PARTITION
// and creates nothing.
func TestE2EAutoCreateDisabled(t *testing.T) {
	b := startBroker(t, withSet("auto.create.topics.enable=false"))
	cl := newClient(t, b.Addr())
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(9)
	req.AllowAutoTopicCreation = true
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("not-auto")
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("metadata for not-auto with auto-create disabled: %+v, want UNKNOWN_TOPIC_OR_PARTITION", resp.Topics)
	}
	md, err := newAdmin(t, b.Addr()).ListTopics(testCtx(t))
	if err != nil {
		t.Fatalf("ListTopics: %v", err)
	}
	if md.Has("not-auto") {
		t.Errorf("topic created although auto.create.topics.enable=false")
	}
}

// TestE2EProducePipelinedKgo keeps many produce requests in flight on one
// connection without idempotence (acks=1) and checks per-partition order.
func TestE2EProducePipelinedKgo(t *testing.T) {
	b := startBroker(t)
	adm := newAdmin(t, b.Addr())
	const topic, n = "pipelined", 3000
	createTopic(t, adm, topic, 1, nil)
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic(topic),
		kgo.DisableIdempotentWrite(),
		kgo.RequiredAcks(kgo.LeaderAck()),
		kgo.MaxProduceRequestsInflightPerBroker(10),
		kgo.ProducerBatchMaxBytes(2048),
		kgo.MaxBufferedRecords(n))
	ctx := testCtx(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := 0; i < n; i++ {
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, "p-%06d", i)}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d produce errors, first: %v", len(errs), errs[0])
	}
	got := consumeN(t, b.Addr(), topic, n)
	// Without idempotence a retry could reorder; with a healthy broker
	// there are no retries, so order and density must hold.
	for i, g := range got {
		if want := fmt.Sprintf("p-%06d", i); string(g.Value) != want || g.Offset != int64(i) {
			t.Fatalf("record %d: offset %d value %s, want offset %d value %s", i, g.Offset, g.Value, i, want)
		}
	}
}
