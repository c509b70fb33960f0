package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/bench"
)

// BenchmarkNodeProduceRoundTrip times one produce request at a time, with
// nothing else in flight: a record of 1 KiB to each of `partitions`
// partitions, acks=all, fsync before the acknowledgement (the default).
// It is the floor under BenchmarkNodeProduceLatency, whose records wait
// for the request ahead of them as well as for their own; with
// SLUICE_BENCH_SET=log.flush.policy=never it shows what is not the disk,
// and with log.flush.journal=true what the journal saves. syncs/krec is
// per 1,000 requests here.
func BenchmarkNodeProduceRoundTrip(b *testing.B) {
	for _, partitions := range []int{1, latencyBenchPartitions} {
		b.Run(fmt.Sprintf("partitions=%d", partitions), func(b *testing.B) {
			benchProduceRoundTrip(b, partitions)
		})
	}
}

func benchProduceRoundTrip(b *testing.B, partitions int) {
	n := startNodeB(b, false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	producer := latencyProducer(ctx, b, n, "roundtrip", kgo.RecordPartitioner(kgo.ManualPartitioner()))
	value := randomValue(latencyBenchRecordSize)
	records := make([]*kgo.Record, partitions)
	var hist bench.Histogram
	syncs, journalSyncs := n.logs.SharedSyncStats(), n.logs.JournalStats()
	b.ResetTimer()
	for range b.N {
		for p := range records {
			records[p] = &kgo.Record{Value: value, Partition: int32(p)}
		}
		start := time.Now()
		if err := producer.ProduceSync(ctx, records...).FirstErr(); err != nil {
			b.Fatal(err)
		}
		hist.Record(time.Since(start))
	}
	b.StopTimer()
	reportLatency(b, &hist)
	reportSyncs(b, n, syncs, journalSyncs)
}
