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
	d := metadata.NewDelta(metadata.EmptyImage())
	noErr(b, d.Replay(&metadata.Topic{Name: "bench", ID: uuid(1)}))
	noErr(b, d.Replay(&metadata.Partition{TopicID: uuid(1), Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}))
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
