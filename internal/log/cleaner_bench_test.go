package log

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// Cleaner benchmarks, on the real file system like the others:
//
//	go test -run='^$' -bench='BenchmarkCleaner|BenchmarkAppendWhileCleaning' -benchtime=5x ./internal/log/
//
// BenchmarkCleaner reports MB/s of log cleaned (the bytes of the segments
// a clean reads). BenchmarkAppendWhileCleaning reports append throughput
// with no cleaner, and with a cleaner compacting the same log over and
// over while appenders run.

// benchKeyedBatch builds a batch of records of about 1 KiB whose keys run
// through keys distinct values from start. Values are random lowercase
// letters, which compress to about 60%, so a compressed log is not an
// unrealistic number of records per byte.
func benchKeyedBatch(b *testing.B, size, keys int, start int, codec record.Codec) []byte {
	rng := rand.New(rand.NewPCG(uint64(start), 1))
	recs := make([]record.Record, max(size/1024, 1))
	for i := range recs {
		value := make([]byte, 1024-40)
		for j := range value {
			value[j] = byte('a' + rng.IntN(26))
		}
		recs[i] = record.Record{Key: fmt.Appendf(nil, "key-%08d", (start+i)%keys), Value: value, TimestampDelta: int64(i)}
	}
	batch, err := record.AppendBatch(nil, record.BatchOptions{ProducerID: -1, Codec: codec, FirstTimestamp: 1_700_000_000_000}, recs)
	noErr(b, err)
	return batch
}

func BenchmarkCleaner(b *testing.B) {
	for _, codec := range []record.Codec{record.CodecNone, record.CodecZstd} {
		for _, keys := range []int{1000, 100_000} {
			b.Run(fmt.Sprintf("codec=%v/keys=%d", codec, keys), func(b *testing.B) { benchCleaner(b, codec, keys) })
		}
	}
}

// benchCleaner cleans a freshly written 64 MiB log per iteration: 16 KiB
// batches of keyed 1 KiB records, 8 MiB segments, every record dirty.
func benchCleaner(b *testing.B, codec record.Codec, keys int) {
	cfg := compactConfig()
	cfg.SegmentBytes = 8 << 20
	cfg.IndexIntervalBytes = 4096
	cfg.SegmentIndexBytes = 10 << 20
	cfg.FlushPolicy = FlushNever
	dir := benchDir(b)
	var cleaned int64
	// One thread's resources, reused as a cleaner thread reuses them: the
	// default 128 MiB dedupe buffer, cleared at every clean.
	res := newCleanerResources(128<<20, nil, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		l, err := Open(vfs.OS(), filepath.Join(dir, fmt.Sprintf("clean-%d", i)), Options{Config: cfg, Logger: quietLogger})
		noErr(b, err)
		l.SetCleanableBound(unbounded)
		for n := 0; l.Size() < 64<<20; n += 16 {
			_, err := l.Append(benchKeyedBatch(b, 16<<10, keys, n, codec), AppendOptions{LeaderEpoch: -1})
			noErr(b, err)
		}
		noErr(b, l.Flush())
		b.StartTimer()
		stats, err := l.clean(res, l.nowMs())
		noErr(b, err)
		b.StopTimer()
		cleaned += stats.BytesRead
		noErr(b, l.Delete())
		b.StartTimer()
	}
	b.SetBytes(cleaned / int64(max(b.N, 1)))
}

func BenchmarkAppendWhileCleaning(b *testing.B) {
	for _, policy := range []FlushPolicy{FlushNever, FlushAlways} {
		for _, cleaner := range []bool{false, true} {
			b.Run(fmt.Sprintf("flush=%s/cleaner=%v", policy, cleaner), func(b *testing.B) {
				benchAppendWhileCleaning(b, policy, cleaner)
			})
		}
	}
}

// benchAppendWhileCleaning: 4 appenders of 16 KiB keyed batches (1000 keys)
// on a log that already holds 32 MiB, with or without a goroutine cleaning
// that log again and again until the appenders are done.
func benchAppendWhileCleaning(b *testing.B, policy FlushPolicy, cleaner bool) {
	const appenders = 4
	cfg := compactConfig()
	cfg.SegmentBytes = 4 << 20
	cfg.IndexIntervalBytes = 4096
	cfg.SegmentIndexBytes = 10 << 20
	cfg.FlushPolicy = policy
	l, err := Open(vfs.OS(), filepath.Join(benchDir(b), "append-0"), Options{Config: cfg, Logger: quietLogger})
	noErr(b, err)
	defer l.Close()
	l.SetCleanableBound(unbounded)
	batches := make([][]byte, appenders)
	for i := range batches {
		batches[i] = benchKeyedBatch(b, 16<<10, 1000, i*16, record.CodecNone)
	}
	for l.Size() < 32<<20 {
		_, err := l.Append(batches[0], AppendOptions{LeaderEpoch: -1})
		noErr(b, err)
	}
	var stop atomic.Bool
	var cleanedBytes atomic.Int64
	var cleanerDone sync.WaitGroup
	if cleaner {
		cleanerDone.Add(1)
		go func() {
			defer cleanerDone.Done()
			res := newCleanerResources(16<<20, nil, nil)
			for !stop.Load() {
				// The manager's tick: under flush=never only synced
				// segments are cleanable.
				if err := l.flushIfDue(l.nowMs()); err != nil {
					b.Error(err)
					return
				}
				stats, err := l.clean(res, l.nowMs())
				if err != nil {
					b.Error(err)
					return
				}
				cleanedBytes.Add(stats.BytesRead)
			}
		}()
	}
	b.SetBytes(int64(len(batches[0])))
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range appenders {
		n := b.N / appenders
		if w < b.N%appenders {
			n++
		}
		wg.Add(1)
		go func(batch []byte, n int) {
			defer wg.Done()
			for range n {
				if _, err := l.Append(batch, AppendOptions{LeaderEpoch: -1}); err != nil {
					b.Error(err)
					return
				}
			}
		}(batches[w], n)
	}
	wg.Wait()
	b.StopTimer()
	stop.Store(true)
	cleanerDone.Wait()
	if cleaner {
		b.ReportMetric(float64(cleanedBytes.Load())/(1<<20), "MiB-cleaned")
	}
}
