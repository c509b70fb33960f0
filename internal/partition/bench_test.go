package partition

import (
	"fmt"
	"sync"
	"testing"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// BenchmarkPartitionAppend appends 16 KiB batches (16 records of 1 KiB)
// from 8 concurrent producers to one partition on the real file system,
// fsync on every acknowledgement (group-committed): idempotent producers
// against plain ones shows what the sequence checks and per-producer locks
// cost. Reports MB/s.
//
//	go test -run '^$' -bench PartitionAppend -benchtime 2000x ./internal/partition/
func BenchmarkPartitionAppend(b *testing.B) {
	for _, idempotent := range []bool{false, true} {
		b.Run(fmt.Sprintf("idempotent=%v", idempotent), func(b *testing.B) {
			benchmarkAppend(b, idempotent, 8)
		})
	}
}

func benchmarkAppend(b *testing.B, idempotent bool, producers int) {
	dir := b.TempDir()
	logs, err := log.OpenManager(log.ManagerOptions{FS: vfs.OS(), Dir: dir, Config: log.DefaultConfig(), Logger: quietLogger})
	noErr(b, err)
	defer logs.Close()
	d := benchTopicDelta(b, 1)
	img := d.Apply(1)
	mgr, err := NewManager(Options{NodeID: 1, Logs: logs, FS: vfs.OS(), Dir: dir, Clock: clock.Real(), Logger: quietLogger,
		Image: func() *metadata.Image { return img }})
	noErr(b, err)
	defer mgr.Close()
	p, err := mgr.Partition("bench", 0)
	noErr(b, err)

	value := make([]byte, 1024)
	recs := make([]record.Record, 16)
	for i := range recs {
		recs[i] = record.Record{Value: value}
	}
	build := func(dst []byte, pid int64, seq int32) []byte {
		opts := record.BatchOptions{ProducerID: -1, FirstTimestamp: clock.UnixMs(clock.Real())}
		if idempotent {
			opts.ProducerID, opts.BaseSequence = pid, seq
		}
		out, err := record.AppendBatch(dst[:0], opts, recs)
		if err != nil {
			panic(err)
		}
		return out
	}
	b.SetBytes(int64(len(build(nil, 0, 0))))
	b.ResetTimer()
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for w := range producers {
		n := b.N / producers
		if w < b.N%producers {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for i := range n {
				buf = build(buf, int64(w), int32(i*len(recs)))
				if _, err := p.Append(buf); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// BenchmarkCompressionTypeAppend appends one producer's 16 KiB
// batches (64 records of about 256 bytes of JSON-like text) with
// compression.type producer, zstd and lz4 (Kafka's default levels: zstd 3,
// lz4 9), sent uncompressed and as snappy. It runs on the real file system
// with log.flush.policy=never, so the figure is the append path's CPU and
// not the disk's fsync. MB/s counts the records' uncompressed bytes, so
// the cases compare at the same logical rate.
//
//	go test -run '^$' -bench CompressionTypeAppend -benchmem ./internal/partition/
func BenchmarkCompressionTypeAppend(b *testing.B) {
	for _, compressionType := range []string{"producer", "zstd", "lz4"} {
		for _, sent := range []record.Codec{record.CodecNone, record.CodecSnappy} {
			b.Run(fmt.Sprintf("type=%s/sent=%v", compressionType, sent), func(b *testing.B) {
				benchmarkAppendCompression(b, compressionType, sent)
			})
		}
	}
}

func benchmarkAppendCompression(b *testing.B, compressionType string, sent record.Codec) {
	dir := b.TempDir()
	logs, err := log.OpenManager(log.ManagerOptions{FS: vfs.OS(), Dir: dir, Config: log.DefaultConfig(), Logger: quietLogger})
	noErr(b, err)
	defer logs.Close()
	d := benchTopicDelta(b, 1)
	noErr(b, d.Replay(configRecord("bench", "compression.type", compressionType)))
	img := d.Apply(1)
	mgr, err := NewManager(Options{NodeID: 1, Logs: logs, FS: vfs.OS(), Dir: dir, Clock: clock.Real(), Logger: quietLogger,
		Image:         func() *metadata.Image { return img },
		TopicDefaults: func() map[string]string { return map[string]string{FlushPolicyKey: "never"} }})
	noErr(b, err)
	defer mgr.Close()
	p, err := mgr.Partition("bench", 0)
	noErr(b, err)

	recs := make([]record.Record, 64)
	for i := range recs {
		value := make([]byte, 0, 256)
		for len(value) < 240 {
			value = fmt.Appendf(value, `{"user":%d,"event":"view","page":"/item/%d"},`, (i*31+len(value))%997, (i*17+len(value))%113)
		}
		recs[i] = record.Record{Key: fmt.Appendf(nil, "user-%d", i%97), Value: value}
	}
	opts := record.BatchOptions{ProducerID: -1, FirstTimestamp: clock.UnixMs(clock.Real())}
	plainBatch, err := record.AppendBatch(nil, opts, recs)
	noErr(b, err)
	opts.Codec = sent
	batch, err := record.AppendBatch(nil, opts, recs)
	noErr(b, err)
	b.SetBytes(int64(len(plainBatch)))
	b.ReportAllocs()
	for b.Loop() {
		// Each append rewrites the base offset in place; the records and
		// the CRC stay valid, so one batch serves every iteration.
		if _, err := p.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	stored := readBatches(b, p, p.Offsets().LogEndOffset-int64(len(recs)))
	b.ReportMetric(float64(len(stored[0])), "stored-bytes/batch")
}

// BenchmarkPartitionApplyCommitted adopts an unchanged image's partition
// into a leader of three replicas, as every Refresh does for every
// partition this node leads (10,000 on a loaded node). It copied the ISR
// twice per call only to read its length.
//
//	go test -run '^$' -bench PartitionApplyCommitted -benchmem ./internal/partition/
func BenchmarkPartitionApplyCommitted(b *testing.B) {
	f := newFixture(b)
	f.createTopic("isr", 1, nil, []int32{testNode, 2, 3})
	p := f.partition("isr", 0)
	pi, ok := f.image().Partition("isr", 0)
	require(b, ok && p.ISR() != nil, "partition not led here")
	b.ReportAllocs()
	for b.Loop() {
		p.applyCommitted(pi)
	}
}

// benchTopicDelta is a metadata delta holding topic "bench" with
// partitions partitions, each led by node 1 alone.
func benchTopicDelta(b *testing.B, partitions int) *metadata.Delta {
	b.Helper()
	d := metadata.NewDelta(metadata.EmptyImage())
	noErr(b, d.Replay(&metadata.Topic{Name: "bench", ID: uuid(1)}))
	for i := range partitions {
		noErr(b, d.Replay(&metadata.Partition{TopicID: uuid(1), Partition: int32(i), Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}))
	}
	return d
}
