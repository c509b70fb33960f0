package log

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/vfs"
)

// timedSyncFS times every syncfs: with shared syncs off, the journal's
// checkpoints are the only ones.
type timedSyncFS struct {
	vfs.FS
	mu    sync.Mutex
	times []time.Duration
}

type timedSyncer struct {
	vfs.FileSystemSyncer
	fs *timedSyncFS
}

func (t *timedSyncFS) OpenFileSystemSyncer(dir string) (vfs.FileSystemSyncer, error) {
	s, err := t.FS.OpenFileSystemSyncer(dir)
	if err != nil {
		return nil, err
	}
	return &timedSyncer{FileSystemSyncer: s, fs: t}, nil
}

func (s *timedSyncer) SyncFS() error {
	start := time.Now()
	err := s.FileSystemSyncer.SyncFS()
	s.fs.mu.Lock()
	s.fs.times = append(s.fs.times, time.Since(start))
	s.fs.mu.Unlock()
	return err
}

// BenchmarkJournalCheckpointWriteback: 8 logs on the real disk append 1
// KiB rounds, each waiting for its ack, through 8 MiB journal files, with
// and without the write-back hints. It reports how long the checkpoints'
// syncfs took and the appends' latency; the stall the hints remove is in
// both. Without a network or a client it is less sensitive to a loaded
// machine than BenchmarkNodeProduceLatency. b.N must write several
// journal files to cross checkpoints: -benchtime 40000x for 8 MiB files,
// 300000x for 64 MiB.
func BenchmarkJournalCheckpointWriteback(b *testing.B) {
	for _, fileBytes := range []int64{DefaultJournalFileBytes, 64 << 20} {
		for _, hints := range []bool{false, true} {
			b.Run(fmt.Sprintf("file=%dMiB/writeback=%v", fileBytes>>20, hints), func(b *testing.B) {
				benchCheckpointWriteback(b, fileBytes, hints)
			})
		}
	}
}

func benchCheckpointWriteback(b *testing.B, fileBytes int64, hints bool) {
	const logs = 8
	fsys := &timedSyncFS{FS: vfs.OS()}
	m, err := OpenManager(ManagerOptions{FS: fsys, Dir: benchDir(b), Config: DefaultConfig(), Logger: quietLogger,
		NoSharedSync: true, Journal: true, JournalFileBytes: fileBytes, CheckpointIntervalMs: math.MaxInt32})
	noErr(b, err)
	defer m.Close()
	if m.journal.writeback == nil {
		b.Skip("no journal here (syncfs refused)")
	}
	if !hints {
		m.journal.writeback.minBytes = math.MaxInt64
	}
	batchBytes := len(benchBatch(b, 1024))
	latencies := make([][]time.Duration, logs)
	var wg sync.WaitGroup
	b.SetBytes(int64(batchBytes))
	b.ResetTimer()
	for i := range logs {
		l, err := m.GetOrCreate(TopicPartition{"bench", int32(i)}, DefaultConfig())
		noErr(b, err)
		batch := benchBatch(b, 1024) // Append writes the offsets into it
		wg.Go(func() {
			for range b.N / logs {
				start := time.Now()
				if _, err := l.Append(batch, AppendOptions{LeaderEpoch: -1}); err != nil {
					b.Error(err)
					return
				}
				latencies[i] = append(latencies[i], time.Since(start))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	all := slices.Concat(latencies...)
	reportQuantiles(b, all, "append")
	fsys.mu.Lock()
	reportQuantiles(b, fsys.times, "syncfs")
	b.ReportMetric(float64(len(fsys.times)), "syncfs")
	fsys.mu.Unlock()
	ws := m.WritebackStats()
	b.ReportMetric(float64(ws.Bytes)/float64(max(b.N, 1)*batchBytes), "hinted/written")
}

// reportQuantiles reports the p50, p99 and max of ds in milliseconds.
func reportQuantiles(b *testing.B, ds []time.Duration, name string) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	ms := func(q float64) float64 { return float64(ds[int(q*float64(len(ds)-1))]) / 1e6 }
	b.ReportMetric(ms(0.5), name+"-p50-ms")
	b.ReportMetric(ms(0.99), name+"-p99-ms")
	b.ReportMetric(ms(1), name+"-max-ms")
}
