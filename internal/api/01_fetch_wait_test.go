package api

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/clock"
)

// BenchmarkFetchLongPollExpires serves what a caught-up consumer sends over
// and over: an incremental fetch (KIP-227 session, nothing changed) on an
// idle partition, which waits out its max wait (1 ms here) and answers
// empty. Its allocations are the handler's share of an idle consumer's
// cost (bench/idleconsumers measures the whole broker). Run with
//
//	go test -run '^$' -bench FetchLongPollExpires -benchmem ./internal/api/
func BenchmarkFetchLongPollExpires(b *testing.B) {
	h := newHarness(b, Config{})
	dpCreateTopic(b, h, "idle", 1)
	create := dpFetchRequest(12, 0, 1, dpFetchPart{topic: "idle"})
	create.SessionEpoch = 0
	session := dpFetch(b, h, create).SessionID
	if session == 0 {
		b.Fatal("no fetch session created")
	}
	incremental := func(epoch int32) *kmsg.FetchRequest {
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.MaxWaitMillis, req.MinBytes = 12, 1, 1
		req.SessionID, req.SessionEpoch = session, epoch
		return req
	}
	if resp := dpFetch(b, h, incremental(1)); resp.ErrorCode != 0 || resp.SessionID != session {
		b.Fatalf("incremental fetch: %+v", resp)
	}
	frames := make([][]byte, b.N)
	for i := range frames {
		frames[i] = h.frame(incremental(int32(i + 2)))
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		out, err := h.server.Serve(ctx, "127.0.0.1:1", frames[i])
		if err != nil {
			b.Fatal(err)
		}
		out.Release()
	}
}

// TestFetchWaitPoolPutLeavesNothingStale: a pooled wait is handed to the
// next long poll, so put must leave it as new: watches cancelled, no
// signal left on wake, and a timer that will not fire.
func TestFetchWaitPoolPutLeavesNothingStale(t *testing.T) {
	clk := clock.NewManual(time.Unix(1000, 0))
	var pool fetchWaitPool
	w := pool.get()
	expired := w.arm(clk, 500*time.Millisecond)
	cancelled := 0
	w.cancels = append(w.cancels, func() { cancelled++ }, func() { cancelled++ })
	w.wake <- struct{}{} // a watch that fired as the fetch returned
	pool.put(w)
	if cancelled != 2 || len(w.cancels) != 0 {
		t.Fatalf("%d of 2 watches cancelled, %d left in the list", cancelled, len(w.cancels))
	}
	select {
	case <-w.wake:
		t.Fatal("a stale wake-up is left for the next fetch")
	default:
	}
	clk.Advance(time.Second)
	select {
	case <-expired:
		t.Fatal("the timer of a finished wait fired")
	default:
	}
	// Armed again, it fires at its new deadline, not before.
	expired = w.arm(clk, 500*time.Millisecond)
	clk.Advance(499 * time.Millisecond)
	select {
	case <-expired:
		t.Fatal("fired before its max wait")
	default:
	}
	clk.Advance(time.Millisecond)
	select {
	case <-expired:
	default:
		t.Fatal("did not fire at its max wait")
	}
}
