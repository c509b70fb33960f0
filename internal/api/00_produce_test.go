package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/kraft"
	"github.com/sluicelog/sluice/internal/metrics"
	"github.com/sluicelog/sluice/internal/partition"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
	"github.com/sluicelog/sluice/internal/wire"
)

// Helpers shared by the data-plane handler tests (prefix dp).

// dpCreateTopic creates a topic through the control plane directly, so these
// tests do not depend on the CreateTopics handler.
func dpCreateTopic(t testing.TB, h *harness, name string, partitions int32, configs ...controller.ConfigEntry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := h.cp.Submit(ctx, kraft.CreateTopics{Request: controller.CreateTopicsRequest{Topics: []controller.CreatableTopic{{
		Name: name, NumPartitions: partitions, ReplicationFactor: 1, Configs: configs}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.(controller.CreateTopicsResponse).Topics[0].Err; err != nil {
		t.Fatal(err)
	}
}

// dpBatchOptions shape a test batch.
type dpBatchOptions struct {
	producerID    int64 // 0: none
	producerEpoch int16
	sequence      int32
	timestampMs   int64 // 0: now
	valueSize     int
}

// dpBatch builds one uncompressed batch of n records whose values name
// their position, "<tag>/<i>" padded to valueSize.
func dpBatch(t testing.TB, tag string, n int, o dpBatchOptions) []byte {
	t.Helper()
	recs := make([]record.Record, n)
	for i := range recs {
		v := fmt.Appendf(nil, "%s/%d", tag, i)
		if len(v) < o.valueSize {
			v = append(v, bytes.Repeat([]byte{'.'}, o.valueSize-len(v))...)
		}
		recs[i] = record.Record{Value: v, TimestampDelta: int64(i)}
	}
	opts := record.BatchOptions{ProducerID: -1, FirstTimestamp: o.timestampMs}
	if opts.FirstTimestamp == 0 {
		opts.FirstTimestamp = time.Now().UnixMilli()
	}
	if o.producerID != 0 {
		opts.ProducerID, opts.ProducerEpoch, opts.BaseSequence = o.producerID, o.producerEpoch, o.sequence
	}
	b, err := record.AppendBatch(nil, opts, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dpProduceRequest is a produce of records to each topic partition.
func dpProduceRequest(version, acks int16, topic string, parts map[int32][]byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = version, acks, 10_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	for _, p := range slices.Sorted(maps.Keys(parts)) {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, parts[p]
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// dpProduce appends records to one partition and returns its response.
func dpProduce(t testing.TB, h *harness, version int16, topic string, p int32, records []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	resp := h.do(dpProduceRequest(version, -1, topic, map[int32][]byte{p: records})).(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce response %+v", resp)
	}
	return resp.Topics[0].Partitions[0]
}

func dpMustProduce(t testing.TB, h *harness, topic string, p int32, records []byte) int64 {
	t.Helper()
	out := dpProduce(t, h, 9, topic, p, records)
	if out.ErrorCode != 0 {
		t.Fatalf("produce to %s-%d: %v %v", topic, p, kerr.ErrorForCode(out.ErrorCode), out.ErrorMessage)
	}
	return out.BaseOffset
}

// dpBatchHeaders parses the whole batches of a fetched record set; a
// trailing partial batch (a byte limit inside it) is dropped, as clients
// drop it.
func dpBatchHeaders(t testing.TB, records []byte) []record.Header {
	t.Helper()
	var hs []record.Header
	for len(records) > 0 {
		_, rest, h, err := record.NextBatch(records)
		if errors.Is(err, record.ErrTruncated) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
		records = rest
	}
	return hs
}

func TestProduceFetchRoundTripAtEveryVersion(t *testing.T) {
	h := newHarness(t, Config{})
	dpCreateTopic(t, h, "rt", 2)
	var next int64
	var sent [][]byte
	for _, v := range []int16{3, 5, 7, 8, 9, 11, 12} {
		batch := dpBatch(t, fmt.Sprintf("v%d", v), 3, dpBatchOptions{})
		out := dpProduce(t, h, v, "rt", 1, batch)
		if out.ErrorCode != 0 || out.BaseOffset != next {
			t.Fatalf("produce v%d: error %d, base offset %d, want %d", v, out.ErrorCode, out.BaseOffset, next)
		}
		if v >= 2 && out.LogAppendTime != -1 {
			t.Fatalf("produce v%d: log append time %d for CreateTime", v, out.LogAppendTime)
		}
		if v >= 5 && out.LogStartOffset != 0 {
			t.Fatalf("produce v%d: log start offset %d", v, out.LogStartOffset)
		}
		next += 3
		sent = append(sent, batch)
	}
	for v := int16(4); v <= 12; v++ {
		fp := dpFetchOne(t, h, v, "rt", 1, 0)
		if fp.ErrorCode != 0 || fp.HighWatermark != next || fp.LastStableOffset != next {
			t.Fatalf("fetch v%d: error %d, hw %d, lso %d, want hw %d", v, fp.ErrorCode, fp.HighWatermark, fp.LastStableOffset, next)
		}
		if v >= 5 && fp.LogStartOffset != 0 {
			t.Fatalf("fetch v%d: log start %d", v, fp.LogStartOffset)
		}
		hs := dpBatchHeaders(t, fp.RecordBatches)
		if len(hs) != len(sent) {
			t.Fatalf("fetch v%d: %d batches, want %d", v, len(hs), len(sent))
		}
		// The records come back as sent, with the broker's base offset.
		got := fp.RecordBatches
		for i, batch := range sent {
			want := bytes.Clone(batch)
			record.SetBaseOffset(want, int64(3*i))
			if !bytes.Equal(got[:len(want)][12:], want[12:]) || hs[i].BaseOffset != int64(3*i) {
				t.Fatalf("fetch v%d: batch %d differs", v, i)
			}
			got = got[len(want):]
		}
	}
}

func TestProduceAcksZeroGetsNoResponse(t *testing.T) {
	h := newHarness(t, Config{})
	dpCreateTopic(t, h, "a0", 1)
	if resp := h.do(dpProduceRequest(9, 0, "a0", map[int32][]byte{0: dpBatch(t, "x", 2, dpBatchOptions{})})); resp != nil {
		t.Fatalf("acks=0 got a response: %+v", resp)
	}
	// But the records were appended before Serve returned.
	if fp := dpFetchOne(t, h, 12, "a0", 0, 0); fp.HighWatermark != 2 || len(dpBatchHeaders(t, fp.RecordBatches)) != 1 {
		t.Fatalf("after acks=0: hw %d", fp.HighWatermark)
	}
}

func TestProduceRejectsWholeRequests(t *testing.T) {
	h := newHarness(t, Config{})
	dpCreateTopic(t, h, "rej", 2)
	batch := dpBatch(t, "x", 1, dpBatchOptions{})
	cases := []struct {
		name string
		req  *kmsg.ProduceRequest
		code int16
	}{
		{"acks=2", dpProduceRequest(9, 2, "rej", map[int32][]byte{0: batch, 1: batch}), kerr.InvalidRequiredAcks.Code},
		{"v2", dpProduceRequest(2, 1, "rej", map[int32][]byte{0: batch, 1: batch}), kerr.UnsupportedVersion.Code},
		{"v0", dpProduceRequest(0, 1, "rej", map[int32][]byte{0: batch}), kerr.UnsupportedVersion.Code},
	}
	for _, tc := range cases {
		resp := h.do(tc.req).(*kmsg.ProduceResponse)
		for _, p := range resp.Topics[0].Partitions {
			if p.ErrorCode != tc.code || p.BaseOffset != -1 {
				t.Fatalf("%s: partition %d: error %d base %d, want error %d", tc.name, p.Partition, p.ErrorCode, p.BaseOffset, tc.code)
			}
			if tc.req.Version >= 8 && p.ErrorMessage == nil {
				t.Fatalf("%s: no error message", tc.name)
			}
		}
	}
	if fp := dpFetchOne(t, h, 12, "rej", 0, 0); fp.HighWatermark != 0 {
		t.Fatalf("rejected produces appended: hw %d", fp.HighWatermark)
	}
}

func TestProducePartitionErrors(t *testing.T) {
	h := newHarness(t, Config{})
	dpCreateTopic(t, h, "pe", 1)
	batch := dpBatch(t, "x", 1, dpBatchOptions{})
	corrupt := bytes.Clone(batch)
	corrupt[len(corrupt)-1] ^= 0xff
	cases := []struct {
		name    string
		topic   string
		p       int32
		records []byte
		code    int16
	}{
		{"null records", "pe", 0, nil, kerr.CorruptMessage.Code},
		{"bad crc", "pe", 0, corrupt, kerr.CorruptMessage.Code},
		{"unknown topic", "nope", 0, batch, kerr.UnknownTopicOrPartition.Code},
		{"unknown partition", "pe", 5, batch, kerr.UnknownTopicOrPartition.Code},
	}
	for _, tc := range cases {
		out := dpProduce(t, h, 12, tc.topic, tc.p, tc.records)
		if out.ErrorCode != tc.code || out.ErrorMessage == nil || out.BaseOffset != -1 {
			t.Fatalf("%s: error %d (%v), base %d; want error %d", tc.name, out.ErrorCode, out.ErrorMessage, out.BaseOffset, tc.code)
		}
	}
}

// TestProduceManyPartitionsInOneRequest: more partitions than the
// concurrency bound, each appended once with its own offsets.
func TestProduceManyPartitionsInOneRequest(t *testing.T) {
	defer func(saved int) { produceMaxConcurrentWaits = saved }(produceMaxConcurrentWaits)
	produceMaxConcurrentWaits = 32 // 1,000 partitions cost 10 s under -race
	h := newHarness(t, Config{})
	n := int32(produceMaxConcurrentWaits + 9)
	dpCreateTopic(t, h, "many", n)
	parts := map[int32][]byte{}
	for p := range n {
		parts[p] = dpBatch(t, fmt.Sprint(p), int(p)+1, dpBatchOptions{})
	}
	for round := range 2 {
		resp := h.do(dpProduceRequest(9, 1, "many", parts)).(*kmsg.ProduceResponse)
		if got := int32(len(resp.Topics[0].Partitions)); got != n {
			t.Fatalf("%d partitions answered, want %d", got, n)
		}
		for _, p := range resp.Topics[0].Partitions {
			if p.ErrorCode != 0 || p.BaseOffset != int64(round)*int64(p.Partition+1) {
				t.Fatalf("round %d partition %d: error %d base %d", round, p.Partition, p.ErrorCode, p.BaseOffset)
			}
		}
	}
}

// TestProduceManyPartitionsShareOneSync: a produce to many partitions
// writes every one of them before any of their syncs begins, so the first
// partition to sync runs a syncfs of the log directory (the others owe
// one) and every other partition rides on it: one sync for the request.
func TestProduceManyPartitionsShareOneSync(t *testing.T) {
	efs := vfs.NewErrorFS(vfs.OS())
	var mu sync.Mutex
	var ops []byte // 'w': a segment write, 's': a segment fsync or a syncfs
	note := func(op byte) func(string) bool {
		return func(string) bool {
			mu.Lock()
			ops = append(ops, op)
			mu.Unlock()
			return false // observe only, never fail
		}
	}
	efs.Inject(vfs.Rule{Op: vfs.OpWrite, PathContains: ".log", Match: note('w')})
	efs.Inject(vfs.Rule{Op: vfs.OpSync, PathContains: ".log", Match: note('s')})
	efs.Inject(vfs.Rule{Op: vfs.OpSyncFS, Match: note('s')})
	h := newHarnessOn(t, Config{}, efs)
	const n = 16
	dpCreateTopic(t, h, "spread", n)
	parts := map[int32][]byte{}
	for p := range int32(n) {
		parts[p] = dpBatch(t, fmt.Sprint(p), 1, dpBatchOptions{valueSize: 1024})
	}
	h.do(dpProduceRequest(9, -1, "spread", parts)) // opens every log
	if h.logs.SharedSyncStats().SyncFS == 0 {
		t.Skip("the file system under t.TempDir() refuses syncfs")
	}
	for round := range 5 {
		before := h.logs.SharedSyncStats()
		mu.Lock()
		ops = ops[:0]
		mu.Unlock()
		resp := h.do(dpProduceRequest(9, -1, "spread", parts)).(*kmsg.ProduceResponse)
		for _, p := range resp.Topics[0].Partitions {
			if p.ErrorCode != 0 {
				t.Fatalf("round %d partition %d: %v", round, p.Partition, kerr.ErrorForCode(p.ErrorCode))
			}
		}
		mu.Lock()
		seen := string(ops)
		mu.Unlock()
		if want := strings.Repeat("w", n) + "s"; seen != want {
			t.Fatalf("round %d: writes and syncs %q, want every write before the one sync %q", round, seen, want)
		}
		after := h.logs.SharedSyncStats()
		syncfs, files := after.SyncFS-before.SyncFS, after.FileSyncs-before.FileSyncs
		if syncfs != 1 || files != 0 {
			t.Fatalf("round %d: a produce to %d partitions ran %d syncfs and %d fdatasyncs, want one syncfs", round, n, syncfs, files)
		}
	}
}

func TestProduceIdempotentRetryGetsTheSameOffsets(t *testing.T) {
	h := newHarness(t, Config{})
	dpCreateTopic(t, h, "idem", 1)
	init := kmsg.NewPtrInitProducerIDRequest()
	init.Version = 4
	ir := h.do(init).(*kmsg.InitProducerIDResponse)
	if ir.ErrorCode != 0 || ir.ProducerID < 0 || ir.ProducerEpoch != 0 {
		t.Fatalf("init producer id: %+v", ir)
	}
	dpMustProduce(t, h, "idem", 0, dpBatch(t, "plain", 2, dpBatchOptions{}))
	first := dpBatch(t, "a", 3, dpBatchOptions{producerID: ir.ProducerID, sequence: 0})
	second := dpBatch(t, "b", 2, dpBatchOptions{producerID: ir.ProducerID, sequence: 3})
	if off := dpMustProduce(t, h, "idem", 0, first); off != 2 {
		t.Fatalf("first batch at %d", off)
	}
	if off := dpMustProduce(t, h, "idem", 0, second); off != 5 {
		t.Fatalf("second batch at %d", off)
	}
	// The retry of the first batch is answered with its original offset.
	if off := dpMustProduce(t, h, "idem", 0, first); off != 2 {
		t.Fatalf("retried batch answered %d, want 2", off)
	}
	if fp := dpFetchOne(t, h, 12, "idem", 0, 0); fp.HighWatermark != 7 {
		t.Fatalf("retry appended again: hw %d", fp.HighWatermark)
	}
	// A gap in the sequence is refused.
	gap := dpBatch(t, "c", 1, dpBatchOptions{producerID: ir.ProducerID, sequence: 9})
	if out := dpProduce(t, h, 12, "idem", 0, gap); out.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("sequence gap: error %d", out.ErrorCode)
	}

	// DescribeProducers shows the producer.
	dreq := kmsg.NewPtrDescribeProducersRequest()
	dt := kmsg.NewDescribeProducersRequestTopic()
	dt.Topic, dt.Partitions = "idem", []int32{0, 3}
	dreq.Topics = append(dreq.Topics, dt)
	dresp := h.do(dreq).(*kmsg.DescribeProducersResponse)
	ps := dresp.Topics[0].Partitions
	if len(ps) != 2 || ps[0].ErrorCode != 0 || len(ps[0].ActiveProducers) != 1 {
		t.Fatalf("describe producers: %+v", dresp)
	}
	if ap := ps[0].ActiveProducers[0]; ap.ProducerID != ir.ProducerID || ap.ProducerEpoch != 0 || ap.LastSequence != 4 ||
		ap.CurrentTxnStartOffset != -1 {
		t.Fatalf("active producer %+v", ap)
	}
	if ps[1].ErrorCode != kerr.UnknownTopicOrPartition.Code || ps[1].ErrorMessage == nil {
		t.Fatalf("unknown partition: %+v", ps[1])
	}
}

// TestProduceAppendsWhatWasReadEvenIfTheClientLeft: a request whose
// connection context has ended (the client closed after sending it, or the
// broker is shutting down) is still appended and answered, as in Kafka:
// the records alias the request frame, which must not be reused while an
// append still reads it, and an acks=0 producer's last request counts.
func TestProduceAppendsWhatWasReadEvenIfTheClientLeft(t *testing.T) {
	h := newHarness(t, Config{})
	dpCreateTopic(t, h, "to", 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out, err := h.server.Serve(ctx, "127.0.0.1:1", h.frame(dpProduceRequest(9, -1, "to", map[int32][]byte{0: dpBatch(t, "x", 1, dpBatchOptions{})})))
	if err != nil {
		t.Fatal(err)
	}
	var buf writeBuffer
	if _, err := out.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	resp := h.decode(dpProduceRequest(9, -1, "to", nil), buf).(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("error %d, want the append done", code)
	}
	if fp := dpFetchOne(t, h, 12, "to", 0, 0); fp.HighWatermark != 1 {
		t.Fatalf("high watermark %d after the produce, want 1", fp.HighWatermark)
	}
}

// TestProduceAcksZeroFailureClosesTheConnection: an acks=0 producer gets no
// response, so a failed partition closes its connection (Kafka's signal to
// refresh metadata).
func TestProduceAcksZeroFailureClosesTheConnection(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := h.server.Serve(ctx, "127.0.0.1:1", h.frame(dpProduceRequest(9, 0, "missing", map[int32][]byte{0: dpBatch(t, "x", 1, dpBatchOptions{})})))
	if err == nil || out != nil {
		t.Fatalf("acks=0 produce to a missing topic: response %v, error %v; want no response and an error", out, err)
	}
}

// TestProduceKeylessToCompactedTopic: INVALID_RECORD with one record_errors
// entry per keyless record and a message at v8+, nothing appended; older
// versions get the code alone.
func TestProduceKeylessToCompactedTopic(t *testing.T) {
	h := newHarness(t, Config{})
	dpCreateTopic(t, h, "changelog", 1, controller.ConfigEntry{Name: "cleanup.policy", Value: "compact"})
	keyless := dpBatch(t, "k", 3, dpBatchOptions{}) // dpBatch writes no keys
	for _, v := range []int16{7, 8, 12} {
		out := dpProduce(t, h, v, "changelog", 0, keyless)
		if out.ErrorCode != kerr.InvalidRecord.Code {
			t.Fatalf("v%d: error %v, want INVALID_RECORD", v, kerr.ErrorForCode(out.ErrorCode))
		}
		if v < 8 {
			if len(out.ErrorRecords) != 0 || out.ErrorMessage != nil {
				t.Fatalf("v%d: record errors %+v and message %v outside the version's fields", v, out.ErrorRecords, out.ErrorMessage)
			}
			continue
		}
		if len(out.ErrorRecords) != 3 || out.ErrorMessage == nil {
			t.Fatalf("v%d: record errors %+v, message %v", v, out.ErrorRecords, out.ErrorMessage)
		}
		for i, e := range out.ErrorRecords {
			if e.RelativeOffset != int32(i) || e.ErrorMessage == nil || !strings.Contains(*e.ErrorMessage, "without a key") {
				t.Fatalf("v%d: record error %d: %d %v", v, i, e.RelativeOffset, e.ErrorMessage)
			}
		}
	}
	if end := dpListOffsets(t, h, 7, "changelog", 0, -1, nil).Offset; end != 0 {
		t.Fatalf("log end offset %d after refused produces", end)
	}
}

// BenchmarkProduceSpread: one request appending one small batch to each
// of many partitions, as a client spread over many partitions sends them.
// flush.messages keeps fsync out of it, so what shows is the handler's
// per-partition cost: queueing, writing, waiting, answering. plain-512 is
// one record of no producer to each of 512 partitions; idempotent-4096
// two records of one idempotent producer to each of 4,096, nearer what
// franz-go sends at 100 × 100 (about 7,400 partitions of 2 records per
// request).
func BenchmarkProduceSpread(b *testing.B) {
	b.Run("plain-512", func(b *testing.B) { benchmarkProduceSpread(b, 512, 1, false) })
	b.Run("idempotent-4096", func(b *testing.B) { benchmarkProduceSpread(b, 4096, 2, true) })
}

func benchmarkProduceSpread(b *testing.B, partitions int32, records int, idempotent bool) {
	h := newHarness(b, Config{})
	dpCreateTopic(b, h, "spread", partitions, controller.ConfigEntry{Name: "flush.messages", Value: "1000000000"})
	dpWaitLed(b, h, "spread", partitions)
	opts := dpBatchOptions{}
	if idempotent {
		init := kmsg.NewPtrInitProducerIDRequest()
		init.Version = 4
		opts.producerID = h.do(init).(*kmsg.InitProducerIDResponse).ProducerID
	}
	parts := map[int32][]byte{}
	request := func() *kmsg.ProduceRequest {
		for p := range partitions {
			parts[p] = dpBatch(b, "r", records, opts)
		}
		opts.sequence += int32(records)
		return dpProduceRequest(9, 1, "spread", parts)
	}
	produce := func(req *kmsg.ProduceRequest) {
		resp := h.do(req).(*kmsg.ProduceResponse)
		for _, p := range resp.Topics[0].Partitions {
			if p.ErrorCode != 0 {
				b.Fatalf("produce to partition %d: %v", p.Partition, kerr.ErrorForCode(p.ErrorCode))
			}
		}
	}
	req := request()
	produce(req) // opens every segment file
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if idempotent {
			// Each request carries the producer's next sequences.
			b.StopTimer()
			req = request()
			b.StartTimer()
		}
		produce(req)
	}
}

// dpWaitLed waits until this node leads every partition of the topic:
// until then a request for one not yet hosted hosts it, at its cost.
func dpWaitLed(t testing.TB, h *harness, topic string, partitions int32) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for p := int32(0); p < partitions; {
		if _, err := h.broker.Partitions.Partition(topic, p); err == nil {
			p++
			continue
		} else if time.Now().After(deadline) {
			t.Fatalf("partition %s-%d not led after 30 s: %v", topic, p, err)
		}
		time.Sleep(time.Millisecond)
	}
	if err := h.broker.Partitions.Refresh(); err != nil {
		t.Fatal(err)
	}
}

// TestProducePartitionListedTwice: a request may list a partition twice.
// Each queued append holds the partition's gate shared until its wait
// ends, and the waits begin once the request's partitions are queued: if
// a gate's exclusive holder (here the producer-state checkpoint) arrives
// between the two, the second shared hold waits behind it, and it behind
// the first, whose wait never begins. The request must still complete.
func TestProducePartitionListedTwice(t *testing.T) {
	h := newHarness(t, Config{})
	dpCreateTopic(t, h, "twice", 1)
	checkpointed := make(chan error, 1)
	var calls atomic.Int32
	h.broker.TxnVerifier = &fakeVerifier{during: func() {
		if calls.Add(1) != 2 {
			return
		}
		// The second verification runs with the first append queued.
		go func() { checkpointed <- h.broker.Partitions.Checkpoint() }()
		deadline := time.Now().Add(10 * time.Second)
		for !goroutineBlockedIn("partition.(*Partition).checkpoint(", "sync.(*RWMutex).Lock(") {
			select {
			case err := <-checkpointed:
				checkpointed <- err // it did not need to wait
				return
			case <-time.After(time.Millisecond):
			}
			if time.Now().After(deadline) {
				panic("the checkpoint neither ran nor waited for the partition's gate")
			}
		}
	}}
	req := dpProduceRequest(9, -1, "twice", map[int32][]byte{0: txnTestBatch(t, 5, 0, 2)})
	second := kmsg.NewProduceRequestTopicPartition()
	second.Partition, second.Records = 0, txnTestBatch(t, 6, 0, 1)
	req.Topics[0].Partitions = append(req.Topics[0].Partitions, second)
	id := "app-1"
	req.TransactionID = &id
	answered := make(chan *kmsg.ProduceResponse, 1)
	go func() { answered <- h.do(req).(*kmsg.ProduceResponse) }()
	select {
	case resp := <-answered:
		for i, p := range resp.Topics[0].Partitions {
			if p.ErrorCode != 0 {
				t.Fatalf("append %d: %v %v", i, kerr.ErrorForCode(p.ErrorCode), p.ErrorMessage)
			}
		}
		if a, b := resp.Topics[0].Partitions[0], resp.Topics[0].Partitions[1]; a.BaseOffset != 0 || b.BaseOffset != 2 {
			t.Fatalf("base offsets %d and %d, want 0 and 2", a.BaseOffset, b.BaseOffset)
		}
	case <-time.After(20 * time.Second):
		// Deadlocked. The harness's cleanup would hang on the gate too,
		// so end the binary the way go test's own timeout does.
		msg := "a produce listing a partition twice deadlocked with the checkpoint\n" + allStacks()
		go func() { panic(msg) }()
		select {}
	}
	if err := resultWithin(t, checkpointed, "the checkpoint"); err != nil {
		t.Fatal(err)
	}
}

// goroutineBlockedIn says whether some goroutine's stack holds both frames.
func goroutineBlockedIn(frames ...string) bool {
	for g := range strings.SplitSeq(allStacks(), "\n\n") {
		if !slices.ContainsFunc(frames, func(f string) bool { return !strings.Contains(g, f) }) {
			return true
		}
	}
	return false
}

func allStacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

func resultWithin(t *testing.T, ch <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return nil
	}
}

// TestProduceReplicationWaitHoldsNoOtherGate: a partition waiting for
// its ISR (acks=all, a follower that never fetches) waits until the
// produce timeout, but every other partition of the request finishes its
// append first, letting go of its gate: a checkpoint (or a leadership
// change) of another partition of the same request does not wait for the
// timeout. One waiter goroutine makes the order plain; with a thousand,
// a request of more partitions than that did the same.
func TestProduceReplicationWaitHoldsNoOtherGate(t *testing.T) {
	defer func(saved int) { produceMaxConcurrentWaits = saved }(produceMaxConcurrentWaits)
	produceMaxConcurrentWaits = 1
	h := newHarness(t, Config{})
	registerAndUnfence(t, h.cp, 2) // a follower that never fetches
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for name, replicas := range map[string][]int32{"a-stuck": {1, 2}, "b-free": {1}} {
		resp, err := h.cp.Submit(ctx, kraft.CreateTopics{Request: controller.CreateTopicsRequest{Topics: []controller.CreatableTopic{{
			Name: name, NumPartitions: -1, ReplicationFactor: -1,
			Assignments: []controller.ReplicaAssignment{{Partition: 0, Replicas: replicas}}}}}})
		if err != nil || resp.(controller.CreateTopicsResponse).Topics[0].Err != nil {
			t.Fatalf("create %s: %v %+v", name, err, resp)
		}
	}
	dpMustProduce(t, h, "b-free", 0, dpBatch(t, "warm", 1, dpBatchOptions{}))

	const timeoutMs = 8000
	req := dpProduceRequest(9, -1, "a-stuck", map[int32][]byte{0: dpBatch(t, "a", 1, dpBatchOptions{})})
	req.TimeoutMillis = timeoutMs
	free := dpProduceRequest(9, -1, "b-free", map[int32][]byte{0: dpBatch(t, "b", 1, dpBatchOptions{})})
	req.Topics = append(req.Topics, free.Topics...)
	answered := make(chan *kmsg.ProduceResponse, 1)
	go func() { answered <- h.do(req).(*kmsg.ProduceResponse) }()
	for !goroutineBlockedIn("partition.(*Partition).waitCommitted(") {
		select {
		case <-ctx.Done():
			t.Fatal("the acks=all produce never waited for its ISR\n" + allStacks())
		case <-time.After(time.Millisecond):
		}
	}
	checkpointed := make(chan error, 1)
	began := time.Now()
	go func() { checkpointed <- h.broker.Partitions.Checkpoint() }()
	select {
	case err := <-checkpointed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(timeoutMs / 2 * time.Millisecond):
		t.Errorf("the checkpoint still waits for a gate %v after a partition began waiting for its ISR", time.Since(began))
		if err := resultWithin(t, checkpointed, "the checkpoint"); err != nil {
			t.Fatal(err)
		}
	}
	r := <-answered
	if p := r.Topics[0].Partitions[0]; p.ErrorCode != kerr.RequestTimedOut.Code {
		t.Errorf("a-stuck: %v, want REQUEST_TIMED_OUT", kerr.ErrorForCode(p.ErrorCode))
	}
	if p := r.Topics[1].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != 1 {
		t.Errorf("b-free: %v at %d, want appended at 1", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
}

// TestProducePipelinedKeepsPartitionOrder: produces pipelined on one
// connection, served before the ones ahead of them are written, append
// each partition's batches in request order, with the offsets their
// responses say; a partition that fails (here one that does not exist)
// fails only itself.
func TestProducePipelinedKeepsPartitionOrder(t *testing.T) {
	h := newHarness(t, Config{})
	h.server.DeferResponses()
	const partitions, requests = 6, 12
	dpCreateTopic(t, h, "piped", partitions)
	dpMustProduce(t, h, "piped", 0, dpBatch(t, "warm", 1, dpBatchOptions{})) // hosts the topic
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type sent struct {
		out  wire.Response
		corr int32
		acks int16
	}
	var all []sent
	for r := range requests {
		parts := map[int32][]byte{partitions: dpBatch(t, "missing", 1, dpBatchOptions{})}
		for p := range int32(partitions) {
			parts[p] = dpBatch(t, fmt.Sprintf("r%d", r), 1+(r+int(p))%3, dpBatchOptions{})
		}
		acks := []int16{1, -1, 0}[r%3]
		out, err := h.server.Serve(ctx, "127.0.0.1:1", h.frame(dpProduceRequest(9, acks, "piped", parts)))
		if acks == 0 {
			// The missing partition failed it: acks=0 closes the connection.
			if err == nil || out != nil {
				t.Fatalf("request %d (acks=0): response %v, error %v; want no response and an error", r, out, err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, sent{out, h.corrID, acks})
	}
	want := make([]int64, partitions) // each partition's next offset
	want[0] = 1
	next := 0
	for r := range requests {
		if r%3 == 2 {
			// acks=0: appended, unanswered.
			for p := range want {
				want[p] += int64(1 + (r+p)%3)
			}
			continue
		}
		s := all[next]
		next++
		var buf writeBuffer
		if _, err := s.out.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		h.corrID = s.corr
		resp := h.decode(dpProduceRequest(9, s.acks, "piped", nil), buf).(*kmsg.ProduceResponse)
		for _, p := range resp.Topics[0].Partitions {
			if p.Partition == partitions {
				if p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
					t.Fatalf("request %d: missing partition answered %v", r, kerr.ErrorForCode(p.ErrorCode))
				}
				continue
			}
			if p.ErrorCode != 0 || p.BaseOffset != want[p.Partition] {
				t.Fatalf("request %d partition %d: %v at %d, want appended at %d", r, p.Partition, kerr.ErrorForCode(p.ErrorCode), p.BaseOffset, want[p.Partition])
			}
			want[p.Partition] += int64(1 + (r+int(p.Partition))%3)
		}
	}
	for p := range int32(partitions) {
		fp := dpFetchOne(t, h, 12, "piped", p, 0)
		if fp.HighWatermark != want[p] {
			t.Fatalf("partition %d: high watermark %d, want %d", p, fp.HighWatermark, want[p])
		}
		// dpBatch writes no compression: each batch names its request.
		batches := fp.RecordBatches
		if p == 0 {
			_, batches, _, _ = record.NextBatch(batches) // the warm-up
		}
		for r := range requests {
			batch, rest, _, err := record.NextBatch(batches)
			if err != nil {
				t.Fatalf("partition %d: batch of request %d: %v", p, r, err)
			}
			if !bytes.Contains(batch, fmt.Appendf(nil, "r%d/0", r)) {
				t.Fatalf("partition %d: batch %d is not request %d's", p, r, r)
			}
			batches = rest
		}
	}
}

// TestProduceAcksZeroFinishesBeforeReturning: an acks=0 produce gets no
// response to wait for, so its handler returns only once every partition
// is appended: the connection's next request (here a fetch) sees them
// all, and the frame the records alias is freed only after.
func TestProduceAcksZeroFinishesBeforeReturning(t *testing.T) {
	h := newHarness(t, Config{})
	h.server.DeferResponses()
	const partitions = 64
	dpCreateTopic(t, h, "fire", partitions)
	parts := map[int32][]byte{}
	for p := range int32(partitions) {
		parts[p] = dpBatch(t, fmt.Sprint(p), 2, dpBatchOptions{valueSize: 4096})
	}
	for round := range 3 {
		if resp := h.do(dpProduceRequest(9, 0, "fire", parts)); resp != nil {
			t.Fatalf("acks=0 produce answered %+v", resp)
		}
		for p := range int32(partitions) {
			if fp := dpFetchOne(t, h, 12, "fire", p, 0); fp.HighWatermark != int64(2*(round+1)) {
				t.Fatalf("round %d partition %d: high watermark %d right after the acks=0 produce returned, want %d",
					round, p, fp.HighWatermark, 2*(round+1))
			}
		}
	}
}

// TestProducePanicWhileQueueingReleasesTheQueuedPartitions: a panic on
// the connection's goroutine while a request is being queued (here the
// transaction coordinator's verification of its second partition) fails
// that partition only. The partitions queued before it hold their gates
// shared until their waits end, and their records alias the request frame:
// the panic must not leave them queued with no wait to come, holding the
// gate for ever (a checkpoint or leadership change of the partition then
// never runs) with the frame gone back to the network server.
func TestProducePanicWhileQueueingReleasesTheQueuedPartitions(t *testing.T) {
	h := newHarness(t, Config{})
	h.server.DeferResponses()
	dpCreateTopic(t, h, "boom", 2)
	var calls atomic.Int32
	h.broker.TxnVerifier = &fakeVerifier{during: func() {
		if calls.Add(1) == 2 {
			panic("coordinator bug")
		}
	}}
	req := dpProduceRequest(9, -1, "boom", map[int32][]byte{0: txnTestBatch(t, 5, 0, 2), 1: txnTestBatch(t, 6, 0, 1)})
	id := "app-1"
	req.TransactionID = &id
	answered := make(chan *kmsg.ProduceResponse, 1)
	panicked := make(chan any, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				panicked <- r
			}
		}()
		answered <- h.do(req).(*kmsg.ProduceResponse)
	}()
	select {
	case resp := <-answered:
		byPartition := map[int32]kmsg.ProduceResponseTopicPartition{}
		for _, p := range resp.Topics[0].Partitions {
			byPartition[p.Partition] = p
		}
		if p := byPartition[0]; p.ErrorCode != 0 || p.BaseOffset != 0 {
			t.Errorf("partition 0: %v %v at %d, want appended at 0", kerr.ErrorForCode(p.ErrorCode), p.ErrorMessage, p.BaseOffset)
		}
		if p := byPartition[1]; p.ErrorCode != kerr.UnknownServerError.Code {
			t.Errorf("partition 1: %v, want UNKNOWN_SERVER_ERROR", kerr.ErrorForCode(p.ErrorCode))
		}
	case r := <-panicked:
		t.Errorf("the produce panicked out of its handler: %v", r)
	case <-time.After(20 * time.Second):
		t.Fatal("the produce was never answered\n" + allStacks())
	}
	finishOrDumpStacks(t, "the checkpoint waits for a gate the panicked produce still holds", h.broker.Partitions.Checkpoint)
}

// panickyError is a partition's error whose text cannot be read: a bug
// that makes produceFill panic.
type panickyError struct{}

func (panickyError) Error() string { panic("error text bug") }

// TestProducePanicWhileFillingStillAnswers: the last part of a produce to
// finish fills its response, usually on a background goroutine, outside
// the connection's panic recovery. A panic there must fail the partition
// it hit (UNKNOWN_SERVER_ERROR, as the other steps' guards do) and still
// send the response, not take the broker down nor leave the client
// waiting.
func TestProducePanicWhileFillingStillAnswers(t *testing.T) {
	b := &Broker{Logger: quietLogger}
	outs := make([]kmsg.ProduceResponseTopicPartition, 2)
	appends := []*produceAppend{{topic: "fill", partition: 0, out: &outs[0], err: panickyError{}},
		{topic: "fill", partition: 1, out: &outs[1], result: partition.AppendResult{BaseOffset: 7, LastOffset: 7, LogAppendTimeMs: -1}}}
	finished := make(chan struct{})
	run := &produceRun{ctx: context.Background(), b: b, r: &Request{}, appends: appends, finished: func() { close(finished) }}
	run.running.Store(1)
	go run.done() // as produceRun.complete's last group does
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatal("the response was never sent\n" + allStacks())
	}
	if outs[0].ErrorCode != kerr.UnknownServerError.Code || outs[0].BaseOffset != -1 {
		t.Errorf("partition 0: %v at %d, want UNKNOWN_SERVER_ERROR", kerr.ErrorForCode(outs[0].ErrorCode), outs[0].BaseOffset)
	}
	if outs[1].ErrorCode != 0 || outs[1].BaseOffset != 7 {
		t.Errorf("partition 1: %v at %d, want appended at 7", kerr.ErrorForCode(outs[1].ErrorCode), outs[1].BaseOffset)
	}
}

// TestProduceLaterInTheTransactionRacingItsMarker: a produce to a
// partition where its producer's transaction is already open is not
// verified again, but the transaction must still be open when it is
// appended, as Kafka's append requires of a batch whose verification was
// skipped (TxnOffsetCommit's TestTxnOffsetCommitLaterInTheTransactionRacingItsEndTxn).
// The test drives produceStart's two steps itself, with the transaction's
// COMMIT marker between them, where in the broker it can only land by a
// race of microseconds: the append must be refused, INVALID_TXN_STATE,
// rather than open a transaction nobody will end.
func TestProduceLaterInTheTransactionRacingItsMarker(t *testing.T) {
	h := newHarness(t, Config{})
	h.broker.TxnVerifier = &fakeVerifier{}
	dpCreateTopic(t, h, "open", 1)
	if out := txnProduce(t, h, "open", txnTestBatch(t, 5, 0, 1)); out.ErrorCode != 0 {
		t.Fatalf("the transaction's first produce: %v", kerr.ErrorForCode(out.ErrorCode))
	}
	p, err := h.broker.Partitions.Partition("open", 0)
	if err != nil {
		t.Fatal(err)
	}
	id := "app-1"
	a := &produceAppend{topic: "open", partition: 0, records: txnTestBatch(t, 5, 1, 1), acks: 1, transactionalID: &id}
	waits := waitClock{clock: fetchClock(h.broker)}
	guard, producerID, err := verifyTxnProduce(context.Background(), h.broker, a, p, &waits)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := p.WriteTxnMarker(context.Background(), partition.TxnMarker{ProducerID: 5, Commit: true}); err != nil || res.Ignored {
		t.Fatalf("marker: %+v, %v", res, err)
	}
	pending, err := p.StartProduce(a.records, partition.ProduceOptions{Guard: guard})
	if err == nil {
		_, err = pending.Durable()
	}
	p.EndTxnVerification(producerID, guard)
	if !errors.Is(err, partition.ErrInvalidTxnState) {
		t.Fatalf("a produce the marker overtook was appended (%v): it opened a transaction nobody will end", err)
	}
}

// TestProducePanicWhileCountingKeepsTheAppend: the fill's guard failed the
// partition whatever panicked, so a panic in the metrics, after the
// result was filled, told the client UNKNOWN_SERVER_ERROR for records
// that are in the log, and a plain producer's retry appended them again.
// The metrics' panic is now logged and the result kept.
func TestProducePanicWhileCountingKeepsTheAppend(t *testing.T) {
	// A Topics not made by the registry: its first lookup panics, as a
	// bug in the metrics would.
	b := &Broker{Logger: quietLogger, Metrics: &metrics.Registry{Topics: &metrics.Topics{}}}
	outs := make([]kmsg.ProduceResponseTopicPartition, 1)
	produceFill(b, []*produceAppend{{topic: "count", partition: 0, out: &outs[0], records: []byte("batch"),
		result: partition.AppendResult{BaseOffset: 7, LastOffset: 8, LogAppendTimeMs: -1, LogStartOffset: 2}}})
	if outs[0].ErrorCode != 0 || outs[0].BaseOffset != 7 || outs[0].LogStartOffset != 2 {
		t.Errorf("%v at %d (log start %d), want appended at 7 (log start 2)", kerr.ErrorForCode(outs[0].ErrorCode), outs[0].BaseOffset, outs[0].LogStartOffset)
	}
}

// TestProduceRetryInTheTransactionRacingItsMarker: a retry of a batch
// already appended in its producer's open transaction (its answer was
// lost) is not verified again, and gets partition.TxnOpenGuard. If the
// transaction's marker lands before the retry is appended, the retry is
// still a duplicate: it appends nothing, so it opens nothing, and Kafka's
// append answers a duplicate before it looks at the transaction
// (UnifiedLog.analyzeAndValidateProducerState). Refused INVALID_TXN_STATE
// instead, the producer is told a batch that was written, and committed,
// failed.
func TestProduceRetryInTheTransactionRacingItsMarker(t *testing.T) {
	h := newHarness(t, Config{})
	h.broker.TxnVerifier = &fakeVerifier{}
	dpCreateTopic(t, h, "retry", 1)
	batch := txnTestBatch(t, 5, 0, 1)
	if out := txnProduce(t, h, "retry", batch); out.ErrorCode != 0 {
		t.Fatalf("the transaction's first produce: %v", kerr.ErrorForCode(out.ErrorCode))
	}
	p, err := h.broker.Partitions.Partition("retry", 0)
	if err != nil {
		t.Fatal(err)
	}
	id := "app-1"
	a := &produceAppend{topic: "retry", partition: 0, records: batch, acks: 1, transactionalID: &id}
	waits := waitClock{clock: fetchClock(h.broker)}
	guard, producerID, err := verifyTxnProduce(context.Background(), h.broker, a, p, &waits)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := p.WriteTxnMarker(context.Background(), partition.TxnMarker{ProducerID: 5, Commit: true}); err != nil || res.Ignored {
		t.Fatalf("marker: %+v, %v", res, err)
	}
	var res partition.AppendResult
	pending, err := p.StartProduce(a.records, partition.ProduceOptions{Guard: guard})
	if err == nil {
		res, err = pending.Durable()
	}
	p.EndTxnVerification(producerID, guard)
	if err != nil || !res.Duplicate || res.BaseOffset != 0 {
		t.Fatalf("the retry of a batch appended at 0: %+v, %v; want its duplicate's answer", res, err)
	}
}

// TestProduceLooksUpEveryPartitionBeforeQueueing: a queued append holds
// its partition's gate shared until its wait, which begins only once the
// request's partitions are all queued. Looking up a later partition of
// the request runs a Refresh when the image moved (here this broker's
// controlled shutdown took its leaderships away), and that Refresh takes
// every gate whose leadership changed exclusively: an earlier partition's
// too, held by this very request. Looked up in the queueing loop, the
// produce waited for the Refresh and the Refresh for the produce, for
// ever, and with them the node's shutdown.
func TestProduceLooksUpEveryPartitionBeforeQueueing(t *testing.T) {
	h := newHarness(t, Config{})
	dpCreateTopic(t, h, "moving", 3)
	dpMustProduce(t, h, "moving", 0, dpBatch(t, "warm", 1, dpBatchOptions{})) // hosts the topic
	var calls atomic.Int32
	h.broker.TxnVerifier = &fakeVerifier{during: func() {
		if calls.Add(1) != 2 {
			return
		}
		// With partition 0 queued: the controller moves every
		// leadership of this broker away, as a controlled shutdown does.
		bi, _ := h.cp.Image().Broker(1)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := h.cp.Submit(ctx, kraft.BrokerHeartbeat{Request: controller.BrokerHeartbeatRequest{
			BrokerID: 1, BrokerEpoch: bi.Epoch, CurrentMetadataOffset: h.cp.Image().Offset(), WantShutDown: true}})
		if err != nil || out.(controller.BrokerHeartbeatResponse).Err != nil {
			panic(fmt.Sprintf("controlled shutdown: %v %+v", err, out))
		}
	}}
	req := dpProduceRequest(9, -1, "moving", map[int32][]byte{
		0: txnTestBatch(t, 5, 0, 1), 1: txnTestBatch(t, 5, 0, 1), 2: txnTestBatch(t, 5, 0, 1)})
	id := "app-1"
	req.TransactionID = &id
	answered := make(chan *kmsg.ProduceResponse, 1)
	go func() { answered <- h.do(req).(*kmsg.ProduceResponse) }()
	select {
	case resp := <-answered:
		for _, p := range resp.Topics[0].Partitions {
			if p.ErrorCode != 0 && p.ErrorCode != kerr.NotLeaderForPartition.Code {
				t.Errorf("partition %d: %v %v, want appended or NOT_LEADER_OR_FOLLOWER", p.Partition, kerr.ErrorForCode(p.ErrorCode), p.ErrorMessage)
			}
		}
	case <-time.After(20 * time.Second):
		// Deadlocked. The harness's cleanup would hang on the gate too,
		// so end the binary the way go test's own timeout does.
		msg := "a produce deadlocked with the Refresh its partition lookup ran\n" + allStacks()
		go func() { panic(msg) }()
		select {}
	}
	// No gate is left held: the image applies (the harness's next
	// heartbeat may unfence the broker again meanwhile, so which leader
	// it names is not checked), and the checkpoint takes every gate.
	finishOrDumpStacks(t, "the Refresh or the checkpoint waits for a gate the produce still holds", func() error {
		return errors.Join(h.broker.Partitions.Refresh(), h.broker.Partitions.Checkpoint())
	})
}

// finishOrDumpStacks fails the test with fn's error. If fn is not done
// within 10 s, a gate is held for ever and the harness's cleanup would
// hang on it too, so it ends the binary the way go test's own timeout
// does, with every goroutine's stack.
func finishOrDumpStacks(t *testing.T, hung string, fn func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		msg := hung + "\n" + allStacks()
		go func() { panic(msg) }()
		select {}
	}
}
