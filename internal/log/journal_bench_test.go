package log

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/vfs"
)

// BenchmarkJournalSpread: one op is a produce request spread over many
// logs of one directory, one at a time (a client with one request in
// flight), done as the broker's produce does it (api/00_produce.go): 2
// KiB queued to every log, written on two goroutines, then waited for on
// up to 1,024. Modes: journal is log.flush.journal, shared the shared
// syncfs without it, never flush.policy=never (no sync at all: the
// floor). write-ms is the queueing and writes of a request, wait-ms the
// rest. Logs from SLUICE_BENCH_SPREAD_LOGS (default 2,000), requests in
// flight from SLUICE_BENCH_SPREAD_INFLIGHT (default 1), on the disk of
// SLUICE_BENCH_DIR or the test's temporary directory.
//
//	go test -run='^$' -bench=BenchmarkJournalSpread -benchtime=20x ./internal/log/
func BenchmarkJournalSpread(b *testing.B) {
	logs := 2000
	if s := os.Getenv("SLUICE_BENCH_SPREAD_LOGS"); s != "" {
		n, err := strconv.Atoi(s)
		noErr(b, err)
		logs = n
	}
	for _, mode := range []string{"journal", "shared", "never"} {
		b.Run(fmt.Sprintf("logs=%d/%s", logs, mode), func(b *testing.B) {
			benchJournalSpread(b, logs, mode)
		})
	}
}

func benchJournalSpread(b *testing.B, logs int, mode string) {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 256 << 20
	if mode == "never" {
		cfg.FlushPolicy = FlushNever
	}
	m, err := OpenManager(ManagerOptions{FS: vfs.OS(), Dir: benchDir(b), Config: cfg, Logger: quietLogger,
		Journal: mode != "shared" && mode != "never", JournalFileBytes: 256 << 20, MaxOpenActiveSegments: 2 * logs})
	noErr(b, err)
	b.Cleanup(func() { m.Close() })
	all := make([]*Log, logs)
	for i := range all {
		all[i], err = m.GetOrCreate(TopicPartition{Topic: fmt.Sprintf("spread-%03d", i/100), Partition: int32(i % 100)}, cfg)
		noErr(b, err)
	}
	batch := benchBatch(b, 2048)
	b.SetBytes(int64(len(batch) * logs))
	before := m.JournalStats()
	b.ResetTimer()
	lat, writes, waits := runSpread(b, all, batch, benchSpreadInFlight(b))
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(writes.Microseconds())/1000/float64(b.N), "write-ms/op")
	b.ReportMetric(float64(waits.Microseconds())/1000/float64(b.N), "wait-ms/op")
	st := m.JournalStats()
	b.ReportMetric(float64(st.Syncs-before.Syncs)/float64(b.N), "journal-syncs/op")
	b.ReportMetric(float64(st.Full-before.Full)/float64(b.N), "refused/op")
}

// benchSpreadInFlight is how many requests run at once, from
// SLUICE_BENCH_SPREAD_INFLIGHT (default 1): more, as a client without
// idempotence sends, let one request's sync overlap the next one's
// writes.
func benchSpreadInFlight(b *testing.B) int {
	s := os.Getenv("SLUICE_BENCH_SPREAD_INFLIGHT")
	if s == "" {
		return 1
	}
	n, err := strconv.Atoi(s)
	noErr(b, err)
	return max(n, 1)
}

// runSpread runs b.N spread requests, inFlight at a time, each with
// buffers of its own, and returns their latencies and the time spent in
// their writes and their waits.
func runSpread(b *testing.B, all []*Log, batch []byte, inFlight int) ([]time.Duration, time.Duration, time.Duration) {
	var mu sync.Mutex
	var lat []time.Duration
	var writes, waits time.Duration
	var next atomic.Int64
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			bufs := make([][]byte, len(all))
			for i := range bufs {
				bufs[i] = slices.Clone(batch)
			}
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				w := spreadProduce(b, all, bufs)
				mu.Lock()
				lat = append(lat, time.Since(t0))
				writes += w
				waits += time.Since(t0) - w
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return lat, writes, waits
}

// spreadProduce appends bufs[i] to all[i] as the produce handler does,
// and returns how long the queueing and writes took (the rest is the
// waits).
func spreadProduce(b *testing.B, all []*Log, bufs [][]byte) time.Duration {
	t0 := time.Now()
	ends := make([]int64, len(all))
	for i, l := range all {
		info, err := l.Enqueue(bufs[i], AppendOptions{LeaderEpoch: -1})
		if err != nil {
			b.Error(err)
			return 0
		}
		ends[i] = info.LastOffset + 1
	}
	each := func(workers int, fn func(i int)) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < len(all); i = int(next.Add(1) - 1) {
					fn(i)
				}
			})
		}
		wg.Wait()
	}
	each(2, func(i int) { all[i].Write(ends[i]) })
	written := time.Since(t0)
	each(min(len(all), 1024), func(i int) {
		if _, err := all[i].WaitDurable(ends[i]); err != nil {
			b.Error(err)
		}
	})
	return written
}
