package api

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/wire"
)

// dpFetchPart is one partition of a test fetch.
type dpFetchPart struct {
	topic     string
	partition int32
	offset    int64
	maxBytes  int32 // 0: 1 MiB
}

func dpFetchRequest(version int16, maxWaitMs, minBytes int32, parts ...dpFetchPart) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.MaxWaitMillis, req.MinBytes = version, maxWaitMs, minBytes
	for _, p := range parts {
		if len(req.Topics) == 0 || req.Topics[len(req.Topics)-1].Topic != p.topic {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = p.topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p.partition, p.offset, p.maxBytes
		if rp.PartitionMaxBytes == 0 {
			rp.PartitionMaxBytes = 1 << 20
		}
		rt := &req.Topics[len(req.Topics)-1]
		rt.Partitions = append(rt.Partitions, rp)
	}
	return req
}

// dpServeFetch serves a fetch frame and returns the response frame's bytes.
func dpServeFetch(t testing.TB, h *harness, ctx context.Context, frame []byte) []byte {
	t.Helper()
	out, err := h.server.Serve(ctx, "127.0.0.1:1", frame)
	if err != nil {
		t.Error(err)
		return nil
	}
	defer out.Release()
	var buf writeBuffer
	if _, err := out.WriteTo(&buf); err != nil {
		t.Error(err)
	}
	return buf
}

// dpDecodeFetch decodes a fetch response frame and checks that the hand
// framing is byte for byte what kmsg writes for the same response.
func dpDecodeFetch(t testing.TB, req *kmsg.FetchRequest, frame []byte) *kmsg.FetchResponse {
	t.Helper()
	body := frame[8:]
	if req.Version >= 12 {
		body = body[1:]
	}
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("fetch v%d: decode: %v", req.Version, err)
	}
	corrID := int32(frame[4])<<24 | int32(frame[5])<<16 | int32(frame[6])<<8 | int32(frame[7])
	if want := wire.AppendResponse(nil, 1, req.Version, corrID, resp); !bytes.Equal(frame, want) {
		t.Fatalf("fetch v%d: hand-framed response differs from kmsg's encoding\n got %x\nwant %x", req.Version, frame, want)
	}
	return resp
}

// dpFetch runs one fetch through Serve.
func dpFetch(t testing.TB, h *harness, req *kmsg.FetchRequest) *kmsg.FetchResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	frame := dpServeFetch(t, h, ctx, h.frame(req))
	if t.Failed() {
		t.FailNow()
	}
	return dpDecodeFetch(t, req, frame)
}

// dpFetchOne fetches one partition from offset without waiting.
func dpFetchOne(t testing.TB, h *harness, version int16, topic string, p int32, offset int64) kmsg.FetchResponseTopicPartition {
	t.Helper()
	resp := dpFetch(t, h, dpFetchRequest(version, 0, 0, dpFetchPart{topic: topic, partition: p, offset: offset}))
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch v%d: %+v", version, resp)
	}
	return resp.Topics[0].Partitions[0]
}

// TestFetchLongPollWokenByProduce: a fetch waiting up to 30 s for one byte
// returns as soon as a produce lands, with the new records.
func TestFetchLongPollWokenByProduce(t *testing.T) {
	h := newHarness(t, Config{})
	dpCreateTopic(t, h, "lp", 2)
	req := dpFetchRequest(12, 30_000, 1, dpFetchPart{topic: "lp", partition: 0}, dpFetchPart{topic: "lp", partition: 1})
	frame := h.frame(req)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan []byte, 1)
	go func() { done <- dpServeFetch(t, h, ctx, frame) }()
	select {
	case <-done:
		t.Fatal("the fetch returned before there was anything to return")
	case <-time.After(200 * time.Millisecond):
		// Still waiting, as it should; this is not what wakes it.
	}
	dpMustProduce(t, h, "lp", 1, dpBatch(t, "wake", 2, dpBatchOptions{}))
	var got []byte
	select {
	case got = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the produce did not wake the fetch")
	}
	resp := dpDecodeFetch(t, req, got)
	ps := resp.Topics[0].Partitions
	if len(ps) != 2 || ps[1].HighWatermark != 2 || len(dpBatchHeaders(t, ps[1].RecordBatches)) != 1 || len(ps[0].RecordBatches) != 0 {
		t.Fatalf("woken fetch: %+v", resp)
	}
}

func TestFetchLongPollEndsAtMaxWaitOrContext(t *testing.T) {
	h := newHarness(t, Config{})
	dpCreateTopic(t, h, "lpt", 1)
	// max_wait passes with nothing: an empty answer, no error.
	fp := dpFetch(t, h, dpFetchRequest(11, 50, 1, dpFetchPart{topic: "lpt"})).Topics[0].Partitions[0]
	if fp.ErrorCode != 0 || len(fp.RecordBatches) != 0 || fp.PreferredReadReplica != -1 {
		t.Fatalf("timed-out fetch: %+v", fp)
	}
	// The request's context ending (the connection closing) ends the wait.
	ctx, cancel := context.WithCancel(context.Background())
	req := dpFetchRequest(12, 300_000, 1, dpFetchPart{topic: "lpt"})
	frame := h.frame(req)
	done := make(chan []byte, 1)
	go func() { done <- dpServeFetch(t, h, ctx, frame) }()
	cancel()
	select {
	case got := <-done:
		if resp := dpDecodeFetch(t, req, got); resp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("cancelled fetch: %+v", resp)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("cancelling the context did not end the wait")
	}
	// min_bytes already met: no wait even with a long max_wait.
	dpMustProduce(t, h, "lpt", 0, dpBatch(t, "x", 1, dpBatchOptions{}))
	fp = dpFetch(t, h, dpFetchRequest(12, 300_000, 1, dpFetchPart{topic: "lpt"})).Topics[0].Partitions[0]
	if len(dpBatchHeaders(t, fp.RecordBatches)) != 1 {
		t.Fatalf("fetch with data: %+v", fp)
	}
}

// TestFetchByteLimits: partition_max_bytes and max_bytes bound the
// response, except that the first batch of the first partition with data
// comes back whole (KIP-74).
func TestFetchByteLimits(t *testing.T) {
	h := newHarness(t, Config{})
	dpCreateTopic(t, h, "lim", 2)
	var batchSize int
	for p := range int32(2) {
		for i := range 3 {
			b := dpBatch(t, "big", 10, dpBatchOptions{valueSize: 1000})
			batchSize = len(b)
			if off := dpMustProduce(t, h, "lim", p, b); off != int64(10*i) {
				t.Fatalf("offset %d", off)
			}
		}
	}
	fetch := func(maxBytes, partitionMaxBytes int32) []kmsg.FetchResponseTopicPartition {
		req := dpFetchRequest(12, 0, 0, dpFetchPart{topic: "lim", partition: 0, maxBytes: partitionMaxBytes},
			dpFetchPart{topic: "lim", partition: 1, maxBytes: partitionMaxBytes})
		req.MaxBytes = maxBytes
		return dpFetch(t, h, req).Topics[0].Partitions
	}
	// Tiny limits: partition 0's first batch whole, partition 1 nothing.
	ps := fetch(1, 1)
	if len(ps[0].RecordBatches) != batchSize || len(ps[1].RecordBatches) != 0 || ps[1].HighWatermark != 30 {
		t.Fatalf("tiny limits: %d and %d bytes, batch %d", len(ps[0].RecordBatches), len(ps[1].RecordBatches), batchSize)
	}
	// partition_max_bytes of one and a half batches: exactly that many
	// bytes from each partition, the second batch cut.
	limit := int32(batchSize * 3 / 2)
	ps = fetch(1<<30, limit)
	for _, p := range ps {
		if len(p.RecordBatches) != int(limit) || len(dpBatchHeaders(t, p.RecordBatches)) != 1 {
			t.Fatalf("partition limit %d: partition %d got %d bytes", limit, p.Partition, len(p.RecordBatches))
		}
	}
	// max_bytes of two batches: partition 0 takes it all.
	ps = fetch(int32(2*batchSize), 1<<20)
	if len(ps[0].RecordBatches) != 2*batchSize || len(ps[1].RecordBatches) != 0 {
		t.Fatalf("response limit: %d and %d bytes", len(ps[0].RecordBatches), len(ps[1].RecordBatches))
	}
	// fetch.max.bytes caps max_bytes.
	h.broker.Config.FetchMaxBytes = int32(batchSize)
	ps = fetch(1<<30, 1<<20)
	if len(ps[0].RecordBatches) != batchSize || len(ps[1].RecordBatches) != 0 {
		t.Fatalf("fetch.max.bytes: %d and %d bytes", len(ps[0].RecordBatches), len(ps[1].RecordBatches))
	}
}

func TestFetchPartitionErrors(t *testing.T) {
	h := newHarness(t, Config{})
	dpCreateTopic(t, h, "fe", 1)
	for range 2 {
		dpMustProduce(t, h, "fe", 0, dpBatch(t, "x", 5, dpBatchOptions{}))
	}
	// Out of range: the partition's offsets come back for a reset.
	fp := dpFetchOne(t, h, 12, "fe", 0, 1000)
	if fp.ErrorCode != kerr.OffsetOutOfRange.Code || fp.HighWatermark != 10 || fp.LogStartOffset != 0 || len(fp.RecordBatches) != 0 {
		t.Fatalf("out of range: %+v", fp)
	}
	// An error answers at once even with a long max_wait.
	req := dpFetchRequest(12, 300_000, 1<<20, dpFetchPart{topic: "fe", offset: 10}, dpFetchPart{topic: "missing"})
	resp := dpFetch(t, h, req)
	if resp.Topics[0].Partitions[0].ErrorCode != 0 || resp.Topics[1].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code ||
		resp.Topics[1].Partitions[0].HighWatermark != -1 {
		t.Fatalf("unknown topic: %+v", resp)
	}
	// A follower fetch: replication is not supported yet.
	req = dpFetchRequest(12, 0, 0, dpFetchPart{topic: "fe"})
	req.ReplicaID = 2
	if code := dpFetch(t, h, req).Topics[0].Partitions[0].ErrorCode; code != kerr.NotLeaderForPartition.Code {
		t.Fatalf("follower fetch: error %d", code)
	}
	// current_leader_epoch (v9+): newer than ours is UNKNOWN_LEADER_EPOCH;
	// before v9 the field is not sent and not checked.
	for _, v := range []int16{8, 9, 12} {
		req = dpFetchRequest(v, 0, 0, dpFetchPart{topic: "fe"})
		req.Topics[0].Partitions[0].CurrentLeaderEpoch = 1000
		want := kerr.UnknownLeaderEpoch.Code
		if v < 9 {
			want = 0
		}
		if code := dpFetch(t, h, req).Topics[0].Partitions[0].ErrorCode; code != want {
			t.Fatalf("v%d: epoch 1000: error %d, want %d", v, code, want)
		}
	}
}

func TestFetchReadCommitted(t *testing.T) {
	h := newHarness(t, Config{})
	dpCreateTopic(t, h, "rc", 1)
	dpMustProduce(t, h, "rc", 0, dpBatch(t, "x", 4, dpBatchOptions{}))
	for _, level := range []int8{0, 1} {
		req := dpFetchRequest(12, 0, 0, dpFetchPart{topic: "rc"})
		req.IsolationLevel = level
		fp := dpFetch(t, h, req).Topics[0].Partitions[0]
		if fp.LastStableOffset != 4 || (fp.AbortedTransactions == nil) != (level == 0) {
			t.Fatalf("isolation %d: lso %d, aborted %v", level, fp.LastStableOffset, fp.AbortedTransactions)
		}
	}
}

// TestFetchEveryVersionMatchesKmsg: responses with data, empty partitions
// and errors decode with kmsg and equal its encoding at every version.
func TestFetchEveryVersionMatchesKmsg(t *testing.T) {
	h := newHarness(t, Config{})
	dpCreateTopic(t, h, "ev", 3)
	dpMustProduce(t, h, "ev", 0, dpBatch(t, "x", 3, dpBatchOptions{}))
	dpMustProduce(t, h, "ev", 2, dpBatch(t, "y", 3, dpBatchOptions{}))
	for v := int16(4); v <= 12; v++ {
		req := dpFetchRequest(v, 0, 0, dpFetchPart{topic: "ev", partition: 0}, dpFetchPart{topic: "ev", partition: 1},
			dpFetchPart{topic: "ev", partition: 2, offset: 99}, dpFetchPart{topic: "nope"})
		resp := dpFetch(t, h, req) // dpDecodeFetch compares the bytes
		if len(resp.Topics) != 2 || len(resp.Topics[0].Partitions) != 3 || resp.Topics[0].Partitions[2].ErrorCode != kerr.OffsetOutOfRange.Code {
			t.Fatalf("v%d: %+v", v, resp)
		}
	}
}
