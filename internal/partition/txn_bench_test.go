package partition

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// BenchmarkPartitionTxnAppend: 8 producers append 100-record batches
// (100 bytes a record) to one partition on the real file system, fsync on
// every acknowledgement (group-committed). transactional=true makes every
// batch one transaction: the batch, then its COMMIT marker through
// WriteTxnMarker (acks=all on one replica), so each transaction costs two
// appends; transactional=false is the same batches from idempotent
// producers. Reports records/s.
//
//	go test -run '^$' -bench PartitionTxnAppend -benchtime 3000x ./internal/partition/
func BenchmarkPartitionTxnAppend(b *testing.B) {
	for _, transactional := range []bool{false, true} {
		b.Run(fmt.Sprintf("transactional=%v", transactional), func(b *testing.B) {
			benchmarkTxnAppend(b, transactional, 8)
		})
	}
}

func benchPartition(b *testing.B) *Partition {
	dir := b.TempDir()
	logs, err := log.OpenManager(log.ManagerOptions{FS: vfs.OS(), Dir: dir, Config: log.DefaultConfig(), Logger: quietLogger})
	noErr(b, err)
	b.Cleanup(func() { logs.Close() })
	d := benchTopicDelta(b, 1)
	img := d.Apply(1)
	mgr, err := NewManager(Options{NodeID: 1, Logs: logs, FS: vfs.OS(), Dir: dir, Clock: clock.Real(), Logger: quietLogger,
		Image: func() *metadata.Image { return img }})
	noErr(b, err)
	b.Cleanup(func() { mgr.Close() })
	p, err := mgr.Partition("bench", 0)
	noErr(b, err)
	return p
}

func benchmarkTxnAppend(b *testing.B, transactional bool, producers int) {
	p := benchPartition(b)
	const perBatch = 100
	recs := make([]record.Record, perBatch)
	for i := range recs {
		recs[i] = record.Record{Value: make([]byte, 100)}
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for w := range producers {
		n := b.N / producers
		if w < b.N%producers {
			n++
		}
		wg.Go(func() {
			var buf []byte
			for i := range n {
				var err error
				buf, err = record.AppendBatch(buf[:0], record.BatchOptions{ProducerID: int64(w), BaseSequence: int32(i * perBatch),
					Transactional: transactional, FirstTimestamp: clock.UnixMs(clock.Real())}, recs)
				if err == nil {
					_, err = p.Append(buf)
				}
				if err == nil && transactional {
					_, err = p.WriteTxnMarker(context.Background(), TxnMarker{ProducerID: int64(w), Commit: true})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*perBatch)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkPartitionReadCommitted reads 64 KiB from a random offset of a
// log of 2,000 one-record transactions, every fourth aborted, with and
// without isolation_level=read_committed: what the LSO bound and the
// aborted-transaction lookup add to a read (the bytes are not copied).
//
//	go test -run '^$' -bench PartitionReadCommitted -benchmem ./internal/partition/
func BenchmarkPartitionReadCommitted(b *testing.B) {
	p := benchPartition(b)
	recs := []record.Record{{Value: make([]byte, 100)}}
	for i := range 2000 {
		pid := int64(i % 8)
		batch, err := record.AppendBatch(nil, record.BatchOptions{ProducerID: pid, BaseSequence: int32(i / 8),
			Transactional: true, FirstTimestamp: clock.UnixMs(clock.Real())}, recs)
		noErr(b, err)
		_, err = p.Append(batch)
		noErr(b, err)
		_, err = p.WriteTxnMarker(context.Background(), TxnMarker{ProducerID: pid, Commit: i%4 != 0})
		noErr(b, err)
	}
	end := p.Offsets().LastStableOffset
	for _, committed := range []bool{false, true} {
		b.Run(fmt.Sprintf("read_committed=%v", committed), func(b *testing.B) {
			b.ReportAllocs()
			offset := int64(0)
			for b.Loop() {
				offset = (offset + 997) % end
				res, err := p.Read(offset, ReadOptions{MaxBytes: 64 << 10, CurrentLeaderEpoch: -1, ReadCommitted: committed})
				if err != nil {
					b.Fatal(err)
				}
				res.Records.Release()
			}
		})
	}
}
