package node

import (
	"context"
	"crypto/rand"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkNodeProduce is a franz-go producer (idempotent, acks=all,
// uncompressed batches of up to 1 MiB, incompressible values) against one in-process node with fsync on every
// append: b.N records of 1 KiB to a 4-partition topic.
func BenchmarkNodeProduce(b *testing.B) {
	benchProduce(b, 1024, false)
}

// BenchmarkNodeProduceTLS is BenchmarkNodeProduce over an SSL listener
// (TLS 1.3, ECDSA P-256 certificate): what encryption costs a producer.
func BenchmarkNodeProduceTLS(b *testing.B) {
	benchProduce(b, 1024, true)
}

func benchProduce(b *testing.B, recordSize int, secure bool) {
	n := startNodeB(b, secure)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := clientB(b, n, kgo.DefaultProduceTopic("bench"), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(1<<16), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if _, err := kadm.NewClient(c).CreateTopic(ctx, 4, 1, nil, "bench"); err != nil {
		b.Fatal(err)
	}
	value := randomValue(recordSize)
	b.SetBytes(int64(recordSize))
	b.ResetTimer()
	for range b.N {
		c.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := c.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkNodeConsume reads b.N 1 KiB records back with a franz-go
// consumer (fetches of up to 50 MiB, the partitions' data in the page
// cache).
func BenchmarkNodeConsume(b *testing.B) {
	benchConsume(b, false)
}

// BenchmarkNodeConsumeTLS is BenchmarkNodeConsume over an SSL listener,
// where the broker cannot use sendfile: record bytes pass through user
// space to be encrypted.
func BenchmarkNodeConsumeTLS(b *testing.B) {
	benchConsume(b, true)
}

func benchConsume(b *testing.B, secure bool) {
	n := startNodeB(b, secure)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p := clientB(b, n, kgo.DefaultProduceTopic("bench"), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(1<<16),
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
	b.ResetTimer()
	c := clientB(b, n, kgo.ConsumeTopics("bench"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for seen := 0; seen < b.N; {
		fetches := c.PollFetches(ctx)
		if ctx.Err() != nil {
			b.Fatal(ctx.Err())
		}
		seen += fetches.NumRecords()
	}
}

// benchNode is a node and how its benchmark clients reach it.
type benchNode struct {
	*Node
	opts []kgo.Opt
}

// startNodeB starts a node whose only listener is PLAINTEXT, or SSL when
// secure (clients then dial with the test CA).
func startNodeB(b *testing.B, secure bool) *benchNode {
	b.Helper()
	dir := b.TempDir()
	sets := []string{"log.dirs=" + dir, "listeners=PLAINTEXT://127.0.0.1:0"}
	var opts []kgo.Opt
	if secure {
		p := newPKI(b)
		sets = append(append(sets, "listeners=SSL://127.0.0.1:0"), p.sets()...)
		opts = append(opts, kgo.DialTLSConfig(p.clientTLS(b, false)))
	}
	// SLUICE_BENCH_SET="key=value;key=value" sets broker configs, so one
	// test binary compares settings (log.flush.policy=never, say).
	if extra := os.Getenv("SLUICE_BENCH_SET"); extra != "" {
		sets = append(sets, strings.Split(extra, ";")...)
	}
	cfg := loadConfig(b, sets...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Start(ctx, Options{Config: cfg, Logger: quietLogger})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	return &benchNode{Node: n, opts: append(opts, kgo.SeedBrokers(n.Addr().String()))}
}

func clientB(b *testing.B, n *benchNode, opts ...kgo.Opt) *kgo.Client {
	c, err := kgo.NewClient(append(append([]kgo.Opt{}, n.opts...), opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return c
}

// randomValue is incompressible, so no codec flatters the figures.
func randomValue(size int) []byte {
	v := make([]byte, size)
	_, _ = rand.Read(v)
	return v
}
