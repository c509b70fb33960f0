package partition

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// BenchmarkPartitionRetentionManyPartitions times one retention tick of
// the log manager (Maintain) on the real file system when every one of
// many partitions has one expired segment: retention renames it and syncs
// the log's directory, and the partition trims its leader epoch cache to
// the new log start and writes the checkpoint (a file fsync and a
// directory fsync), one partition after another on the Maintain
// goroutine. trim=false unhooks the trimming to show its share.
//
//	go test -run '^$' -bench PartitionRetentionManyPartitions -benchtime 5x ./internal/partition/
func BenchmarkPartitionRetentionManyPartitions(b *testing.B) {
	for _, trim := range []bool{true, false} {
		b.Run(fmt.Sprintf("partitions=1000/trim=%v", trim), func(b *testing.B) {
			benchmarkRetention(b, 1000, trim)
		})
	}
}

func benchmarkRetention(b *testing.B, partitions int, trim bool) {
	dir := b.TempDir()
	logs, err := log.OpenManager(log.ManagerOptions{FS: vfs.OS(), Dir: dir, Config: log.DefaultConfig(), Logger: quietLogger})
	noErr(b, err)
	defer logs.Close()
	d := benchTopicDelta(b, partitions)
	for k, v := range map[string]string{"segment.bytes": "1024", "retention.ms": "3600000", "segment.index.bytes": "4096"} {
		noErr(b, d.Replay(&metadata.Config{ResourceType: metadata.ConfigResourceTopic, ResourceName: "bench", Name: k, Value: v}))
	}
	img := d.Apply(int64(partitions) + 4)
	mgr, err := NewManager(Options{NodeID: 1, Logs: logs, FS: vfs.OS(), Dir: dir, Clock: clock.Real(), Logger: quietLogger,
		Image: func() *metadata.Image { return img }})
	noErr(b, err)
	defer mgr.Close()
	noErr(b, mgr.Refresh())
	if !trim {
		logs.OnLogStartMoved(nil)
	}
	parts := mgr.Hosted()
	if len(parts) != partitions {
		b.Fatalf("hosting %d partitions, want %d", len(parts), partitions)
	}
	old := time.Now().Add(-2 * time.Hour).UnixMilli()
	batch, err := record.AppendBatch(nil, record.BatchOptions{ProducerID: -1, FirstTimestamp: old},
		[]record.Record{{Value: make([]byte, 600)}})
	noErr(b, err)
	nowMs := time.Now().UnixMilli()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		// Each append rolls the previous one's segment: sealed, and
		// expired by its timestamps.
		for _, p := range parts {
			if _, err := p.Append(batch); err != nil {
				b.Fatal(err)
			}
		}
		nowMs += (10 * time.Minute).Milliseconds() // past the retention check interval
		b.StartTimer()
		noErr(b, logs.Maintain(nowMs))
	}
}
