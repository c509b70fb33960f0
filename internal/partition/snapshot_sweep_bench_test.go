package partition

import (
	"fmt"
	"testing"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/parallel"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// BenchmarkPartitionSnapshotSweep times one producer-state checkpoint
// (Manager.Checkpoint) on the real file system after an idempotent
// producer appended one batch to every partition, as the node's
// periodic tick finds a produce spread over that many partitions.
// Reports the syncs a sweep made: snapshot fdatasyncs, partition
// directory fsyncs and syncfs calls (the appends' own are not counted).
//
//	go test -run '^$' -bench PartitionSnapshotSweep -benchtime 3x ./internal/partition/
func BenchmarkPartitionSnapshotSweep(b *testing.B) {
	for _, partitions := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("partitions=%d", partitions), func(b *testing.B) {
			benchmarkSnapshotSweep(b, partitions)
		})
	}
}

func benchmarkSnapshotSweep(b *testing.B, partitions int) {
	dir := b.TempDir()
	counting := &syncCountingFS{FS: vfs.OS()}
	counting.reset()
	cfg := log.DefaultConfig()
	cfg.SegmentIndexBytes = 65536
	logs, err := log.OpenManager(log.ManagerOptions{FS: counting, Dir: dir, Config: cfg, Logger: quietLogger})
	noErr(b, err)
	defer logs.Close()
	d := benchTopicDelta(b, partitions)
	img := d.Apply(1)
	mgr, err := NewManager(Options{NodeID: 1, Logs: logs, FS: counting, Dir: dir, Clock: clock.Real(), Logger: quietLogger,
		Image: func() *metadata.Image { return img }})
	noErr(b, err)
	defer mgr.Close()
	noErr(b, mgr.Refresh())
	parts := make([]*Partition, partitions)
	for i := range parts {
		parts[i], err = mgr.Partition("bench", int32(i))
		noErr(b, err)
	}
	recs := []record.Record{{Value: make([]byte, 100)}}
	syncs := 0
	b.ResetTimer()
	for n := range b.N {
		b.StopTimer()
		parallel.ForEach(parts, 64, func(p *Partition) {
			batch, err := record.AppendBatch(nil, record.BatchOptions{ProducerID: 7, BaseSequence: int32(n), FirstTimestamp: clock.UnixMs(clock.Real())}, recs)
			if err == nil {
				_, err = p.Append(batch)
			}
			if err != nil {
				panic(err)
			}
		})
		counting.reset()
		b.StartTimer()
		noErr(b, mgr.Checkpoint())
		b.StopTimer()
		counting.mu.Lock()
		syncs += counting.snapshotSyncs + counting.syncFS
		for d, k := range counting.dirSyncs {
			if d != dir {
				syncs += k
			}
		}
		counting.mu.Unlock()
	}
	b.ReportMetric(float64(syncs)/float64(b.N), "syncs/sweep")
}
