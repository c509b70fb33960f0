package node

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// txnBenchRecords is the size of one transaction (and of one idempotent
// round) in the transaction benchmarks: 100 records of 1 KiB.
const txnBenchRecords = 100

// BenchmarkNodeTxn100 commits b.N transactions of 100 1 KiB records over
// a 4-partition topic with a franz-go transactional producer: per
// transaction AddPartitionsToTxn, the produce (fsynced), EndTxn
// (PrepareCommit fsynced) and the markers (one WriteTxnMarkers per broker,
// fsynced) before the next can begin.
func BenchmarkNodeTxn100(b *testing.B) {
	benchRounds(b, kgo.TransactionalID("bench-txn"))
}

// BenchmarkNodeIdempotent100 is the same rounds of 100 records without
// transactions (an idempotent producer flushing each round), the baseline
// for BenchmarkNodeTxn100.
func BenchmarkNodeIdempotent100(b *testing.B) {
	benchRounds(b)
}

func benchRounds(b *testing.B, extra ...kgo.Opt) {
	n := startNodeB(b, false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	opts := append([]kgo.Opt{kgo.DefaultProduceTopic("bench"), kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordPartitioner(kgo.RoundRobinPartitioner())}, extra...)
	c := clientB(b, n, opts...)
	if _, err := kadm.NewClient(c).CreateTopic(ctx, 4, 1, nil, "bench"); err != nil {
		b.Fatal(err)
	}
	transactional := len(extra) > 0
	value := randomValue(1024)
	// One round before the clock starts: the first finds the coordinator
	// (creating __transaction_state) and the producer id.
	round := func() {
		if transactional {
			if err := c.BeginTransaction(); err != nil {
				b.Fatal(err)
			}
		}
		for range txnBenchRecords {
			c.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
				if err != nil {
					b.Error(err)
				}
			})
		}
		if err := c.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		if transactional {
			if err := c.EndTransaction(ctx, kgo.TryCommit); err != nil {
				b.Fatal(err)
			}
		}
	}
	round()
	b.SetBytes(txnBenchRecords * 1024)
	b.ResetTimer()
	for range b.N {
		round()
	}
	b.ReportMetric(float64(b.N*txnBenchRecords)/b.Elapsed().Seconds(), "records/s")
}
