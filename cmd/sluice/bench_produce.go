package main

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/bench"
)

// benchFlushTimeout bounds the wait for acknowledgements once the load has
// been sent (or interrupted). A minute lets a backlog built by an
// overloaded broker drain, so its latency is measured rather than cut off;
// records still unacknowledged after it count as errors.
const benchFlushTimeout = time.Minute

// e2eCounts is what the producers of an e2e run tell its consumers.
type e2eCounts struct {
	acked atomic.Int64 // records the broker acknowledged
}

// benchProduce sends the load from o.producers clients: producer k sends
// records k, k+N, k+2N... each at its scheduled time when --rate is set.
// Without e2e it times each acknowledgement into stats; with e2e it stamps
// each value with its scheduled send time for the consumers to time, and
// counts acknowledgements there.
func benchProduce(ctx context.Context, e *clientEnv, o *benchOptions, stats *benchStats, e2e *e2eCounts) error {
	clients := make([]*kgo.Client, o.producers)
	for k := range clients {
		cl, err := e.client(ctx, o.producerOpts()...)
		if err != nil {
			for _, c := range clients[:k] {
				c.Close()
			}
			return err
		}
		clients[k] = cl
	}
	// One payload for every record: generating random bytes per record
	// would cost more CPU than the produce path being measured.
	payload := randomPayload(o.recordSize)
	sched := bench.Schedule{Start: time.Now(), Rate: o.rate}
	var deadline time.Time
	if o.duration > 0 {
		deadline = sched.Start.Add(o.duration)
	}
	var wg sync.WaitGroup
	for k, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			produceShare(ctx, cl, o, int64(k), sched, deadline, payload, stats, e2e)
			flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), benchFlushTimeout)
			defer cancel()
			if err := cl.Flush(flushCtx); err != nil {
				stats.fail(err)
			}
		}()
	}
	wg.Wait()
	return nil
}

// produceShare is producer k's part of the load.
func produceShare(ctx context.Context, cl *kgo.Client, o *benchOptions, k int64, sched bench.Schedule,
	deadline time.Time, payload []byte, stats *benchStats, e2e *e2eCounts) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	step := int64(o.producers)
	for i := k; o.records == 0 || i < o.records; i += step {
		due := sched.Due(i)
		if o.rate <= 0 {
			// Unpaced (a closed loop), a record is due when it is
			// sent: latency counts from the actual send, and the
			// clock, not the schedule, says when --duration is up.
			due = time.Now()
		}
		if !deadline.IsZero() && !due.Before(deadline) {
			return
		}
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		value := payload
		// e2e needs a copy per record to stamp it; the shared payload
		// must stay unchanged while earlier records wait in batches.
		if e2e != nil {
			value = make([]byte, len(payload))
			copy(value, payload)
			binary.BigEndian.PutUint64(value, uint64(due.UnixNano()))
		}
		cl.Produce(ctx, &kgo.Record{Value: value}, func(r *kgo.Record, err error) {
			switch {
			case err != nil:
				stats.fail(err)
			// In e2e the consumers time each record; the producers only
			// count acknowledgements so the consumers know when to stop.
			case e2e != nil:
				e2e.acked.Add(1)
			default:
				stats.ok(time.Since(due), len(r.Value))
			}
		})
	}
}
