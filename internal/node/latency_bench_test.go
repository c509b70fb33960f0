package node

import (
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/bench"
	"github.com/sluicelog/sluice/internal/log"
)

// Latency at a fixed rate, the shape of issue 17's targets: 10,000 records
// of 1 KiB a second over 8 partitions, a franz-go producer with linger 0
// (idempotent, acks=all, so one request in flight per broker: franz-go
// allows no more when idempotent), fsync before every
// acknowledgement (the default). b.N records are sent on a fixed schedule
// and each latency counts from the record's due time, so a stall shows in
// the tail instead of slowing the load (no coordinated omission). The
// percentiles are reported as p50-ms, p99-ms, p999-ms; ns/op is only the
// schedule's 100 µs per record.
const (
	latencyBenchRate       = 10000
	latencyBenchPartitions = 8
	latencyBenchRecordSize = 1024
)

// BenchmarkNodeProduceLatency times each record from its due time to its
// acknowledgement. Run it with -benchtime 50000x (5 s of load) or more.
// With one request in flight a record that arrives during a request waits
// for it to end before its own is sent; the Java producer keeps five in
// flight (idempotent too), which the second case copies with a producer
// that is not idempotent, the only way franz-go allows five.
func BenchmarkNodeProduceLatency(b *testing.B) {
	b.Run("inflight=1", func(b *testing.B) { benchProduceLatency(b) })
	b.Run("inflight=5", func(b *testing.B) {
		benchProduceLatency(b, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(5))
	})
}

func benchProduceLatency(b *testing.B, opts ...kgo.Opt) {
	n := startNodeB(b, false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	producer := latencyProducer(ctx, b, n, "latency", opts...)
	var mu sync.Mutex
	var fromDue, fromSend, lag bench.Histogram
	value := randomValue(latencyBenchRecordSize)
	syncs, journalSyncs := n.logs.SharedSyncStats(), n.logs.JournalStats()
	b.ResetTimer()
	sched := bench.Schedule{Start: time.Now(), Rate: latencyBenchRate}
	for i := range int64(b.N) {
		due := sched.Due(i)
		time.Sleep(time.Until(due))
		sent := time.Now()
		lag.Record(sent.Sub(due))
		producer.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
				return
			}
			now := time.Now()
			mu.Lock()
			fromDue.Record(now.Sub(due))
			fromSend.Record(now.Sub(sent))
			mu.Unlock()
		})
	}
	if err := producer.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	reportLatency(b, &fromDue)
	reportGeneratorLag(b, &fromSend, &lag)
	reportSyncs(b, n, syncs, journalSyncs)
}

// reportGeneratorLag separates the load generator's own lateness from the
// system's latency. A record is sent when the loop's sleep ends, and a Go
// sleep shorter than a millisecond lasts about 1.1 ms on this machine's
// VMs (the runtime's netpoller waits in whole milliseconds), so at 100 µs
// per record the loop sends bursts of about eleven, each record up to a
// millisecond behind its due time. The p50-ms figure counts that lag, as
// an open-loop benchmark must for stalls of the system under test;
// p50-send-ms counts from Produce, as Kafka's own producer-perf-test does,
// and lag-p50-ms is the generator's share.
func reportGeneratorLag(b *testing.B, fromSend, lag *bench.Histogram) {
	ms := func(h *bench.Histogram, q float64) float64 { return float64(h.Quantile(q).Microseconds()) / 1000 }
	b.ReportMetric(ms(fromSend, 0.5), "p50-send-ms")
	b.ReportMetric(ms(fromSend, 0.99), "p99-send-ms")
	b.ReportMetric(ms(lag, 0.5), "lag-p50-ms")
	b.ReportMetric(ms(lag, 0.99), "lag-p99-ms")
}

// BenchmarkNodeEndToEndLatency times each record from its due time to its
// arrival at a consumer that long-polls every partition from the end (the
// due time travels in the record's first 8 bytes).
func BenchmarkNodeEndToEndLatency(b *testing.B) {
	n := startNodeB(b, false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	producer := latencyProducer(ctx, b, n, "e2e")
	partitions := map[int32]kgo.Offset{}
	for p := range int32(latencyBenchPartitions) {
		partitions[p] = kgo.NewOffset().At(0)
	}
	consumer := clientB(b, n, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"e2e": partitions}))
	var hist bench.Histogram
	received := make(chan struct{})
	go func() {
		defer close(received)
		for seen := 0; seen < b.N && ctx.Err() == nil; {
			fetches := consumer.PollFetches(ctx)
			now := time.Now()
			fetches.EachRecord(func(r *kgo.Record) {
				hist.Record(now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(r.Value)))))
				seen++
			})
		}
	}()
	payload := randomValue(latencyBenchRecordSize)
	syncs, journalSyncs := n.logs.SharedSyncStats(), n.logs.JournalStats()
	b.ResetTimer()
	sched := bench.Schedule{Start: time.Now(), Rate: latencyBenchRate}
	for i := range int64(b.N) {
		due := sched.Due(i)
		time.Sleep(time.Until(due))
		value := append([]byte(nil), payload...)
		binary.BigEndian.PutUint64(value, uint64(due.UnixNano()))
		producer.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := producer.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	<-received
	b.StopTimer()
	if ctx.Err() != nil {
		b.Fatal("consumer did not see every record:", ctx.Err())
	}
	reportLatency(b, &hist)
	reportSyncs(b, n, syncs, journalSyncs)
}

// latencyProducer creates the benchmark's topic and returns a producer to
// it with linger 0.
func latencyProducer(ctx context.Context, b *testing.B, n *benchNode, topic string, opts ...kgo.Opt) *kgo.Client {
	c := clientB(b, n, append([]kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression())}, opts...)...)
	resp, err := kadm.NewClient(c).CreateTopic(ctx, latencyBenchPartitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// reportSyncs reports the syncs the appends waited for (syncfs calls and
// their own fdatasyncs) per 1,000 records since before: how well group
// commit shares them, a figure the machine's load barely moves.
func reportSyncs(b *testing.B, n *benchNode, before log.SharedSyncStats, journalBefore log.JournalStats) {
	after, journal := n.logs.SharedSyncStats(), n.logs.JournalStats()
	syncs := after.SyncFS - before.SyncFS + after.FileSyncs - before.FileSyncs + journal.Syncs - journalBefore.Syncs
	b.ReportMetric(float64(syncs)*1000/float64(b.N), "syncs/krec")
}

func reportLatency(b *testing.B, h *bench.Histogram) {
	ms := func(q float64) float64 { return float64(h.Quantile(q).Microseconds()) / 1000 }
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(ms(0.999), "p999-ms")
}
