package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchDrainTimeout bounds how long e2e consumers wait for the last
// acknowledged records after the producers finish.
const benchDrainTimeout = 30 * time.Second

// benchPollInterval bounds one poll, so consumers notice the end of a run.
const benchPollInterval = 200 * time.Millisecond

// benchConsume reads o.records records from the start of the topic (no
// more, even when it holds more), producing the shortfall first if the
// topic holds fewer. It returns when the timed part began: the filling
// produce is not part of the consume figure.
func benchConsume(ctx context.Context, stderr io.Writer, e *clientEnv, o *benchOptions, stats *benchStats) (time.Time, error) {
	adm, err := e.admin(ctx)
	if err != nil {
		return time.Time{}, err
	}
	defer adm.Close()
	starts, ends, err := benchBounds(ctx, e, adm, o.topic)
	if err != nil {
		return time.Time{}, err
	}
	var held int64
	ends.Each(func(l kadm.ListedOffset) {
		if s, ok := starts.Lookup(l.Topic, l.Partition); ok {
			held += l.Offset - s.Offset
		}
	})
	if o.records > 0 && held < o.records {
		// Filled unpaced and without a time limit: the filling is set-up,
		// and a --duration meant for the read must not cut it short.
		fill := *o
		fill.records, fill.duration, fill.rate = o.records-held, 0, 0
		fmt.Fprintf(stderr, "sluice: topic %s holds %d records; producing %d more first\n", o.topic, held, fill.records)
		var fillStats benchStats
		if err := benchProduce(ctx, e, &fill, &fillStats, nil); err != nil {
			return time.Time{}, err
		}
		if fillStats.errors > 0 {
			return time.Time{}, fmt.Errorf("filling topic %s: %d records failed: %w", o.topic, fillStats.errors, fillStats.firstErr)
		}
	}
	start := time.Now()
	var consumed atomic.Int64
	err = runConsumers(ctx, e, o, starts.KOffsets(), func(fetches kgo.Fetches, polled time.Duration) bool {
		if len(fetches) > 0 {
			stats.mu.Lock()
			stats.hist.Record(polled)
			stats.mu.Unlock()
		}
		fetches.EachRecord(func(r *kgo.Record) {
			// A fetch returns whole batches, so the one that crosses
			// --records holds more than asked for; each record claims
			// a place first and those past N are not counted, so the
			// run reads exactly N however the consumers race.
			if o.records > 0 && consumed.Add(1) > o.records {
				return
			}
			stats.mu.Lock()
			stats.records++
			stats.bytes += int64(len(r.Value))
			stats.mu.Unlock()
		})
		return (o.records > 0 && consumed.Load() >= o.records) || (o.duration > 0 && time.Since(start) >= o.duration)
	})
	return start, err
}

// benchEndToEnd starts consumers at the end of the topic, then produces the
// load; each record's latency is its arrival at a consumer minus its
// scheduled send time, read from its first 8 bytes.
func benchEndToEnd(ctx context.Context, e *clientEnv, o *benchOptions, stats *benchStats) error {
	adm, err := e.admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	_, ends, err := benchBounds(ctx, e, adm, o.topic)
	if err != nil {
		return err
	}
	var counts e2eCounts
	var received atomic.Int64
	produced := make(chan struct{})
	var drainDeadline atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	var consumeErr error
	go func() {
		defer wg.Done()
		consumeErr = runConsumers(ctx, e, o, ends.KOffsets(), func(fetches kgo.Fetches, _ time.Duration) bool {
			now := time.Now()
			n := int64(0)
			fetches.EachRecord(func(r *kgo.Record) {
				// Records shorter than the stamp were not written by this
				// run (a topic shared with other writers); they cannot be
				// timed and are skipped rather than misread.
				if len(r.Value) < 8 {
					return
				}
				n++
				sent := time.Unix(0, int64(binary.BigEndian.Uint64(r.Value)))
				stats.ok(now.Sub(sent), len(r.Value))
			})
			got := received.Add(n)
			select {
			case <-produced:
				return got >= counts.acked.Load() || now.UnixNano() > drainDeadline.Load()
			default:
				return false
			}
		})
	}()
	// The deadline is stored before produced closes, so a consumer that
	// sees the channel closed always reads a real deadline, never zero.
	err = benchProduce(ctx, e, o, stats, &counts)
	drainDeadline.Store(time.Now().Add(benchDrainTimeout).UnixNano())
	close(produced)
	wg.Wait()
	if err != nil {
		return err
	}
	return consumeErr
}

// benchBounds lists the topic's log start and end offsets.
func benchBounds(ctx context.Context, e *clientEnv, adm *kadm.Client, topic string) (kadm.ListedOffsets, kadm.ListedOffsets, error) {
	rctx, cancel := e.requestContext(ctx)
	defer cancel()
	starts, err := adm.ListStartOffsets(rctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list offsets of topic %q: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(rctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list offsets of topic %q: %w", topic, err)
	}
	return starts, ends, nil
}

// runConsumers splits the topic's partitions among o.consumers clients,
// each starting at from, and polls until onFetch says done (for any
// consumer), ctx ends, or a fetch fails.
func runConsumers(ctx context.Context, e *clientEnv, o *benchOptions, from map[string]map[int32]kgo.Offset,
	onFetch func(kgo.Fetches, time.Duration) bool) error {
	// Partitions are dealt round robin to direct consumers, not through a
	// group: a group's join and rebalance would land inside the measured
	// time and vary from run to run.
	shares := make([]map[string]map[int32]kgo.Offset, o.consumers)
	i := 0
	for topic, parts := range from {
		for p, off := range parts {
			share := shares[i%len(shares)]
			if share == nil {
				share = map[string]map[int32]kgo.Offset{}
				shares[i%len(shares)] = share
			}
			if share[topic] == nil {
				share[topic] = map[int32]kgo.Offset{}
			}
			share[topic][p] = off
			i++
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	errs := make(chan error, len(shares))
	for _, share := range shares {
		if share == nil {
			continue // more consumers than partitions
		}
		// A 100 ms max wait keeps an empty long poll shorter than the
		// 200 ms poll bound, so an idle consumer gets back to checking
		// whether the run is over; data still returns at once.
		cl, err := e.client(ctx, kgo.ConsumePartitions(share), kgo.FetchMaxWait(100*time.Millisecond))
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			for runCtx.Err() == nil {
				// A bounded poll lets onFetch decide it is done even
				// when no more records are coming.
				began := time.Now()
				pollCtx, cancel := context.WithTimeout(runCtx, benchPollInterval)
				fetches := cl.PollFetches(pollCtx)
				cancel()
				if runCtx.Err() != nil {
					return
				}
				if fetches.NumRecords() == 0 {
					fetches = nil // an idle poll: no error, nothing read
				}
				if err := fetches.Err(); err != nil {
					errs <- err
					stop()
					return
				}
				if onFetch(fetches, time.Since(began)) {
					stop()
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return fmt.Errorf("consume topic %q: %w", o.topic, err)
	default:
		return nil
	}
}
