package node

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkNodeShareConsume reads b.N 1 KiB records with one franz-go
// share consumer that accepts every record, as BenchmarkNodeConsume reads
// them with a plain consumer: each fetch acquires up to 500 records, and
// each acknowledgement round writes the share partition's state to the
// share coordinator (WriteShareGroupState over loopback, appended to
// __share_group_state with fsync).
// The final FlushAcks is timed: the last records count only once accepted.
func BenchmarkNodeShareConsume(b *testing.B) {
	cfg := loadConfig(b, "log.dirs="+b.TempDir(), "listeners=PLAINTEXT://127.0.0.1:0", "share.auto.offset.reset=earliest")
	startCtx, startCancel := context.WithTimeout(context.Background(), 30*time.Second)
	n, err := Start(startCtx, Options{Config: cfg, Logger: quietLogger})
	startCancel()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	bn := &benchNode{Node: n, opts: []kgo.Opt{kgo.SeedBrokers(n.Addr().String())}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p := clientB(b, bn, kgo.DefaultProduceTopic("bench"), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(1<<16),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if _, err := kadm.NewClient(p).CreateTopic(ctx, 4, 1, nil, "bench"); err != nil {
		b.Fatal(err)
	}
	value := randomValue(1024)
	for range b.N {
		p.Produce(ctx, &kgo.Record{Value: value}, nil)
	}
	if err := p.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1024)
	// Joining the group (and creating __consumer_offsets) is left out of
	// the timing: the timer starts once the first records are in.
	c := clientB(b, bn, kgo.ShareGroup("bench-share"), kgo.ConsumeTopics("bench"))
	seen := 0
	for seen == 0 {
		fetches := c.PollFetches(ctx)
		if ctx.Err() != nil {
			b.Fatal(ctx.Err())
		}
		fetches.EachRecord(func(r *kgo.Record) { r.Ack(kgo.AckAccept) })
		seen += fetches.NumRecords()
	}
	b.ResetTimer()
	for seen < b.N {
		fetches := c.PollFetches(ctx)
		if ctx.Err() != nil {
			b.Fatal(ctx.Err())
		}
		fetches.EachRecord(func(r *kgo.Record) { r.Ack(kgo.AckAccept) })
		seen += fetches.NumRecords()
	}
	if err := c.FlushAcks(ctx); err != nil {
		b.Fatal(err)
	}
}
