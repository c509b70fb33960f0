package log

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// Benchmarks run on the real file system: fsync cost is the point. They use
// the test temp dir, or SLUICE_BENCH_DIR to measure another disk.
//
//	go test -run='^$' -bench='BenchmarkAppend|BenchmarkRead' -benchtime=2s ./internal/log/
//
// BenchmarkAppend also measures the raw bandwidth of the same directory
// (plain sequential writes, buffered and with fdatasync per write) so each
// append figure can be read against what the disk gives without a log.

func benchDir(b *testing.B) string {
	if dir := os.Getenv("SLUICE_BENCH_DIR"); dir != "" {
		d, err := os.MkdirTemp(dir, "sluice-bench-")
		noErr(b, err)
		b.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	return b.TempDir()
}

// benchBatch builds a batch of 1 KiB records totalling about size bytes.
func benchBatch(b *testing.B, size int) []byte {
	recs := make([]record.Record, max(size/1024, 1))
	value := make([]byte, 1024-20) // record overhead keeps batches near size
	for i := range recs {
		recs[i] = record.Record{Value: value, TimestampDelta: int64(i)}
	}
	batch, err := record.AppendBatch(nil, record.BatchOptions{ProducerID: -1, FirstTimestamp: 1_700_000_000_000}, recs)
	noErr(b, err)
	return batch
}

func BenchmarkAppend(b *testing.B) {
	for _, batchSize := range []int{16 << 10, 1 << 20} {
		name := sizeName(batchSize)
		b.Run("raw=buffered/write="+name, func(b *testing.B) { benchRawWrite(b, batchSize, false) })
		b.Run("raw=fdatasync/write="+name, func(b *testing.B) { benchRawWrite(b, batchSize, true) })
		for _, policy := range []FlushPolicy{FlushNever, FlushAlways} {
			for _, appenders := range []int{1, 8} {
				b.Run(fmt.Sprintf("batch=%s/flush=%s/appenders=%d", name, policy, appenders), func(b *testing.B) {
					benchAppend(b, batchSize, policy, appenders)
				})
			}
		}
	}
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}

func benchAppend(b *testing.B, batchSize int, policy FlushPolicy, appenders int) {
	cfg := DefaultConfig()
	cfg.FlushPolicy = policy
	cfg.SegmentBytes = 256 << 20
	l, err := Open(vfs.OS(), filepath.Join(benchDir(b), "bench-0"), Options{Config: cfg, Logger: quietLogger})
	noErr(b, err)
	defer l.Close()
	batches := make([][]byte, appenders)
	for i := range batches {
		batches[i] = benchBatch(b, batchSize)
	}
	// Warm up so the steady path (grown queues and index buffers) is measured.
	for i := 0; i < 4; i++ {
		_, err := l.Append(batches[0], AppendOptions{LeaderEpoch: -1})
		noErr(b, err)
	}
	b.SetBytes(int64(len(batches[0])))
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := 0; w < appenders; w++ {
		n := b.N / appenders
		if w < b.N%appenders {
			n++
		}
		wg.Add(1)
		go func(batch []byte, n int) {
			defer wg.Done()
			for i := 0; i < n; i++ {
				if _, err := l.Append(batch, AppendOptions{LeaderEpoch: -1}); err != nil {
					b.Error(err)
					return
				}
			}
		}(batches[w], n)
	}
	wg.Wait()
}

// benchRawWrite is the disk without the log: sequential writes of the same
// size, with or without fdatasync after each, rolling to a new file every
// 256 MiB as the log's segments do. Files are kept (not truncated) so dirty
// pages reach the disk as the log's do, rather than being discarded.
func benchRawWrite(b *testing.B, size int, sync bool) {
	fsys, dir := vfs.OS(), benchDir(b)
	const fileBytes = 256 << 20
	buf := make([]byte, size)
	var f vfs.File
	var pos int64
	files := 0
	roll := func() {
		if f != nil {
			noErr(b, f.Close())
		}
		var err error
		f, err = fsys.Create(filepath.Join(dir, fmt.Sprintf("raw-%d", files)))
		noErr(b, err)
		files, pos = files+1, 0
	}
	roll()
	defer func() { f.Close() }()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if pos+int64(size) > fileBytes {
			roll()
		}
		_, err := f.WriteAt(buf, pos)
		noErr(b, err)
		pos += int64(size)
		if sync {
			noErr(b, f.Sync())
		}
	}
}

// BenchmarkRead consumes a log front to back in 1 MiB reads, copying into a
// reused buffer as a broker without sendfile would.
func BenchmarkRead(b *testing.B) {
	for _, batchSize := range []int{16 << 10, 1 << 20} {
		b.Run("batch="+sizeName(batchSize), func(b *testing.B) { benchRead(b, batchSize) })
	}
}

func benchRead(b *testing.B, batchSize int) {
	cfg := DefaultConfig()
	cfg.FlushPolicy = FlushNever
	cfg.SegmentBytes = 64 << 20
	l, err := Open(vfs.OS(), filepath.Join(benchDir(b), "bench-0"), Options{Config: cfg, Logger: quietLogger})
	noErr(b, err)
	defer l.Close()
	batch := benchBatch(b, batchSize)
	for l.Size() < 256<<20 {
		_, err := l.Append(batch, AppendOptions{LeaderEpoch: -1})
		noErr(b, err)
	}
	buf := make([]byte, 0, 2<<20)
	const readBytes = 1 << 20
	b.SetBytes(readBytes)
	b.ReportAllocs()
	b.ResetTimer()
	offset := int64(0)
	for i := 0; i < b.N; i++ {
		if offset >= l.LogEndOffset() {
			offset = 0
		}
		s, err := l.Read(offset, ReadOptions{MaxBytes: readBytes, MaxOffset: NoMaxOffset, MinOneBatch: true})
		noErr(b, err)
		buf, err = s.AppendTo(buf[:0])
		s.Release()
		noErr(b, err)
		offset = nextOffsetAfter(buf, offset)
	}
}

// nextOffsetAfter returns the offset after the last whole batch in buf.
func nextOffsetAfter(buf []byte, offset int64) int64 {
	for rest := buf; len(rest) > 0; {
		_, next, h, err := record.NextBatch(rest)
		if err != nil {
			break
		}
		offset, rest = h.NextOffset(), next
	}
	return offset
}

// BenchmarkAppendManyLogs: N logs of one directory, one appender each
// appending a 1 KiB record at a time under FlushAlways, as a produce
// spread over N partitions does: every append waits for a sync. sync=file
// fdatasyncs each log's segment (the logs' own group commit only);
// sync=shared gives the logs a SharedSync, so rounds that wait together
// share one syncfs. Reported: appends/s over all logs, and each append's
// latency (p50-ms, p99-ms); ns/op is per append of all logs.
//
//	go test -run='^$' -bench=BenchmarkAppendManyLogs -benchtime=3s ./internal/log/
func BenchmarkAppendManyLogs(b *testing.B) {
	for _, logs := range []int{1, 8, 64} {
		for _, shared := range []bool{false, true} {
			mode := "file"
			if shared {
				mode = "shared"
			}
			b.Run(fmt.Sprintf("logs=%d/sync=%s", logs, mode), func(b *testing.B) {
				benchAppendManyLogs(b, logs, shared)
			})
		}
	}
}

// openBenchLogs opens logs on a real directory, sharing a syncfs if
// shared (skipping where syncfs is refused); cleanup closes them.
func openBenchLogs(b *testing.B, logs int, shared bool) ([]*Log, *SharedSync) {
	dir := benchDir(b)
	var ss *SharedSync
	if shared {
		syncer, err := vfs.OS().OpenFileSystemSyncer(dir)
		if err != nil {
			b.Skipf("syncfs refused here: %v", err)
		}
		ss = NewSharedSync(syncer, dir, quietLogger)
		b.Cleanup(func() { ss.Close() })
	}
	cfg := DefaultConfig()
	cfg.SegmentBytes = 256 << 20
	files := NewFileCache(DefaultOpenSealedSegments)
	all := make([]*Log, logs)
	for i := range all {
		l, err := Open(vfs.OS(), filepath.Join(dir, fmt.Sprintf("bench-%d", i)), Options{Config: cfg, Logger: quietLogger, Files: files, SharedSync: ss})
		noErr(b, err)
		b.Cleanup(func() { l.Close() })
		all[i] = l
	}
	return all, ss
}

func benchAppendManyLogs(b *testing.B, logs int, shared bool) {
	all, ss := openBenchLogs(b, logs, shared)
	batch := benchBatch(b, 1024)
	b.SetBytes(int64(len(batch)))
	before := ss.Stats()
	latencies := make([][]time.Duration, logs)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w, l := range all {
		n := b.N / logs
		if w < b.N%logs {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := append([]byte(nil), batch...) // Append assigns offsets in place
			lat := make([]time.Duration, 0, n)
			for range n {
				t0 := time.Now()
				if _, err := l.Append(own, AppendOptions{LeaderEpoch: -1}); err != nil {
					b.Error(err)
					return
				}
				lat = append(lat, time.Since(t0))
			}
			latencies[w] = lat
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	var lat []time.Duration
	for _, l := range latencies {
		lat = append(lat, l...)
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "appends/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
	if st := ss.Stats(); shared && st.SyncFS > before.SyncFS {
		b.ReportMetric(float64(st.SharedRuns-before.SharedRuns)/float64(st.SyncFS-before.SyncFS), "logs/syncfs")
	}
}

// BenchmarkAppendSpread: one op is a produce request spread over N logs of
// one directory: a 1 KiB record appended to each, in parallel, and the
// request waits for all of them. Two such requests are in flight at a
// time. sync=file and sync=shared as in BenchmarkAppendManyLogs; p50-ms
// and p99-ms are per request. write=each appends to each log on a
// goroutine of its own (Append: each writes, then syncs); write=first
// does what the broker's produce does: it queues and writes every log
// (Enqueue, Write) before it waits on any (WaitDurable, in parallel).
//
//	go test -run='^$' -bench=BenchmarkAppendSpread -benchtime=2s ./internal/log/
func BenchmarkAppendSpread(b *testing.B) {
	for _, logs := range []int{8, 64} {
		for _, shared := range []bool{false, true} {
			mode := "file"
			if shared {
				mode = "shared"
			}
			for _, writeFirst := range []bool{false, true} {
				order := "each"
				if writeFirst {
					order = "first"
				}
				b.Run(fmt.Sprintf("logs=%d/sync=%s/write=%s", logs, mode, order), func(b *testing.B) {
					benchAppendSpread(b, logs, shared, writeFirst)
				})
			}
		}
	}
}

// spreadRequest appends bufs[i] to all[i], as one produce request does.
func spreadRequest(b *testing.B, all []*Log, bufs [][]byte, writeFirst bool) {
	var req sync.WaitGroup
	if !writeFirst {
		for i, l := range all {
			req.Go(func() {
				if _, err := l.Append(bufs[i], AppendOptions{LeaderEpoch: -1}); err != nil {
					b.Error(err)
				}
			})
		}
		req.Wait()
		return
	}
	ends := make([]int64, len(all))
	for i, l := range all {
		info, err := l.Enqueue(bufs[i], AppendOptions{LeaderEpoch: -1})
		if err != nil {
			b.Fatal(err)
		}
		ends[i] = info.LastOffset + 1
	}
	for i, l := range all {
		l.Write(ends[i])
	}
	for i, l := range all {
		req.Go(func() {
			if _, err := l.WaitDurable(ends[i]); err != nil {
				b.Error(err)
			}
		})
	}
	req.Wait()
}

func benchAppendSpread(b *testing.B, logs int, shared, writeFirst bool) {
	const inFlight = 2
	all, ss := openBenchLogs(b, logs, shared)
	batch := benchBatch(b, 1024)
	b.SetBytes(int64(len(batch) * logs))
	latencies := make([][]time.Duration, inFlight)
	before := ss.Stats()
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range inFlight {
		n := b.N / inFlight
		if w < b.N%inFlight {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			bufs := make([][]byte, logs)
			for i := range bufs {
				bufs[i] = append([]byte(nil), batch...)
			}
			lat := make([]time.Duration, 0, n)
			for range n {
				t0 := time.Now()
				spreadRequest(b, all, bufs, writeFirst)
				lat = append(lat, time.Since(t0))
			}
			latencies[w] = lat
		}()
	}
	wg.Wait()
	b.StopTimer()
	var lat []time.Duration
	for _, l := range latencies {
		lat = append(lat, l...)
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
	if shared {
		st := ss.Stats()
		b.ReportMetric(float64(st.SyncFS-before.SyncFS+st.FileSyncs-before.FileSyncs)/float64(b.N), "syncs/op")
	}
}
