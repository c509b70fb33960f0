package node

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestNodeCompactedTopicRefusesKeylessRecords: franz-go producing without
// a key to a compacted topic gets INVALID_RECORD, and a keyed record goes
// through.
func TestNodeCompactedTopicRefusesKeylessRecords(t *testing.T) {
	n := startNode(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, n))
	policy := "compact"
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": &policy}, "changelog"); err != nil {
		t.Fatal(err)
	}
	p := client(t, n, kgo.DefaultProduceTopic("changelog"), kgo.RecordRetries(1))
	err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("no key")}).FirstErr()
	if !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("keyless produce: %v, want INVALID_RECORD", err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("keyed produce: %v", err)
	}
}

// TestNodeCompressionTypeZstd: franz-go producing uncompressed batches to
// a compression.type=zstd topic reads back every record, from batches the
// broker stored as zstd (what a fetch returns is the log's bytes).
func TestNodeCompressionTypeZstd(t *testing.T) {
	n := startNode(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, n))
	zstd := "zstd"
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"compression.type": &zstd}, "zs"); err != nil {
		t.Fatal(err)
	}
	p := client(t, n, kgo.DefaultProduceTopic("zs"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	const total = 50
	for i := range total {
		r := &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "value %d of the zstd test", i)}
		if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	c := client(t, n, kgo.ConsumeTopics("zs"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for seen := 0; seen < total; {
		fetches := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", seen, total, err)
		}
		fetches.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", topic, p, err) })
		fetches.EachRecord(func(r *kgo.Record) {
			want := fmt.Sprintf("value %d of the zstd test", r.Offset)
			if string(r.Value) != want || string(r.Key) != fmt.Sprintf("k%d", r.Offset) {
				t.Fatalf("offset %d: %q=%q, want %q", r.Offset, r.Key, r.Value, want)
			}
			if codec := r.Attrs.CompressionType(); codec != 4 {
				t.Fatalf("offset %d: batch codec %d, want zstd (4)", r.Offset, codec)
			}
			seen++
		})
	}
	// The raw fetch: every stored batch's attributes say zstd.
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.MaxBytes, req.ReplicaID = 11, 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "zs"
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, client(t, n))
	if err != nil {
		t.Fatal(err)
	}
	records := resp.Topics[0].Partitions[0].RecordBatches
	batches := 0
	for len(records) > 0 {
		var b kmsg.RecordBatch
		if err := b.ReadFrom(records); err != nil {
			t.Fatal(err)
		}
		if b.Attributes&7 != 4 {
			t.Fatalf("batch at %d: attributes %#x, want codec zstd", b.FirstOffset, b.Attributes)
		}
		records = records[12+int(b.Length):]
		batches++
	}
	if batches != total {
		t.Fatalf("%d batches fetched, want %d", batches, total)
	}
}
