package api

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/vfs"
	"github.com/sluicelog/sluice/internal/wire"
)

// With DeferResponses, a produce (acks 1 or all) is answered with a
// response that becomes ready once its appends are durable; requests that
// are pipelined behind it are queued after it; and only produces may be
// pipelined. acks=0 is served in full and gets no response, as before.
func TestProduceDeferredResponses(t *testing.T) {
	h := newHarness(t, Config{})
	h.server.DeferResponses()
	dpCreateTopic(t, h, "deferred", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	serve := func(req kmsg.Request) wire.Response {
		t.Helper()
		out, err := h.server.Serve(ctx, "127.0.0.1:1", h.frame(req))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	parts := map[int32][]byte{0: dpBatch(t, "a", 2, dpBatchOptions{}), 1: dpBatch(t, "b", 3, dpBatchOptions{})}
	first := serve(dpProduceRequest(9, -1, "deferred", parts))
	firstCorr := h.corrID
	second := serve(dpProduceRequest(9, 1, "deferred", map[int32][]byte{0: dpBatch(t, "c", 1, dpBatchOptions{})}))
	secondCorr := h.corrID
	for i, out := range []wire.Response{first, second} {
		d, ok := out.(*deferredResponse)
		if !ok {
			t.Fatalf("produce %d answered with %T, want a deferred response", i, out)
		}
		select {
		case <-d.Ready():
		case <-ctx.Done():
			t.Fatalf("produce %d never became ready", i)
		}
	}
	var buf writeBuffer
	if _, err := first.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	h.corrID = firstCorr
	resp := h.decode(dpProduceRequest(9, -1, "deferred", nil), buf).(*kmsg.ProduceResponse)
	if p := resp.Topics[0].Partitions; len(p) != 2 || p[0].ErrorCode != 0 || p[0].BaseOffset != 0 || p[1].BaseOffset != 0 {
		t.Fatalf("first response %+v", p)
	}
	buf = buf[:0]
	if _, err := second.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	h.corrID = secondCorr
	resp = h.decode(dpProduceRequest(9, 1, "deferred", nil), buf).(*kmsg.ProduceResponse)
	if p := resp.Topics[0].Partitions; p[0].ErrorCode != 0 || p[0].BaseOffset != 2 {
		t.Fatalf("pipelined produce answered %+v, want offset 2 after the first request's 2 records", p)
	}
	if out := serve(dpProduceRequest(9, 0, "deferred", map[int32][]byte{1: dpBatch(t, "d", 1, dpBatchOptions{})})); out != nil {
		t.Fatalf("acks=0 produce answered with %T", out)
	}
	if fp := dpFetchOne(t, h, 12, "deferred", 1, 0); fp.HighWatermark != 4 {
		t.Fatalf("partition 1 high watermark %d after 3 + 1 records", fp.HighWatermark)
	}
	if !h.server.CanPipeline(ctx, h.frame(dpProduceRequest(9, 1, "deferred", parts))) {
		t.Error("a produce may not be pipelined")
	}
	if h.server.CanPipeline(ctx, h.frame(kmsg.NewPtrMetadataRequest())) {
		t.Error("a metadata request may be pipelined")
	}
}

// When the write of a round fails, every produce whose batches were queued
// in it, pipelined or not, acks=1 or all, is answered KAFKA_STORAGE_ERROR
// once the round is done, and so is a produce that comes after: nothing is
// acknowledged from a failed log.
func TestProduceDeferredStorageError(t *testing.T) {
	efs := vfs.NewErrorFS(vfs.OS())
	h := newHarnessOn(t, Config{}, efs)
	h.server.DeferResponses()
	dpCreateTopic(t, h, "failing", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The segments' writes fail, not the hosting of the partitions.
	efs.Inject(vfs.Rule{Op: vfs.OpWrite, PathContains: "failing-", Count: -1,
		Match: func(path string) bool { return strings.HasSuffix(path, ".log") }})
	type sent struct {
		out  wire.Response
		corr int32
		req  *kmsg.ProduceRequest
	}
	var all []sent
	for i, acks := range []int16{-1, 1, -1} {
		req := dpProduceRequest(9, acks, "failing", map[int32][]byte{
			0: dpBatch(t, "a", 2, dpBatchOptions{}), int32(i % 2): dpBatch(t, "b", 1, dpBatchOptions{})})
		out, err := h.server.Serve(ctx, "127.0.0.1:1", h.frame(req))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, sent{out: out, corr: h.corrID, req: req})
	}
	for i, s := range all {
		var buf writeBuffer
		if _, err := s.out.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		h.corrID = s.corr
		resp := h.decode(s.req, buf).(*kmsg.ProduceResponse)
		for _, p := range resp.Topics[0].Partitions {
			if p.ErrorCode != kerr.KafkaStorageError.Code || p.BaseOffset != -1 {
				t.Errorf("produce %d partition %d answered code %d offset %d (%v), want KAFKA_STORAGE_ERROR",
					i, p.Partition, p.ErrorCode, p.BaseOffset, *p.ErrorMessage)
			}
		}
	}
}

// A panic while a deferred response is finished (throttle, audit,
// framing) runs outside the connection's recovery; it must fail that
// response, so the network server closes the connection, and not take
// the broker down.
func TestDeferredFinishPanicFailsTheResponse(t *testing.T) {
	d := &deferredResponse{ready: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.finish(slog.New(slog.DiscardHandler), 0, func() wire.Frame { panic("audit blew up") })
	}()
	<-done
	select {
	case <-d.Ready():
	default:
		t.Fatal("a response whose finish panicked never became ready: its connection would wait forever")
	}
	var buf bytes.Buffer
	if _, err := d.WriteTo(&buf); !errors.Is(err, errDeferredFailed) || buf.Len() > 0 {
		t.Fatalf("WriteTo after a panic: %d bytes, err %v; want nothing and errDeferredFailed", buf.Len(), err)
	}

	ok := &deferredResponse{ready: make(chan struct{})}
	ok.finish(slog.New(slog.DiscardHandler), 0, func() wire.Frame { return wire.Frame("frame") })
	buf.Reset()
	if _, err := ok.WriteTo(&buf); err != nil || buf.String() != "frame" {
		t.Fatalf("WriteTo of a finished response: %q, %v", buf.String(), err)
	}
}
