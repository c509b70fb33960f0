package log

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/sluicelog/sluice/internal/record"
)

// cleanerOffsetCheckpointFile holds each compacted log's first dirty
// offset, Kafka's cleaner-offset-checkpoint (same format as the others),
// so a restart does not compact everything again.
const cleanerOffsetCheckpointFile = "cleaner-offset-checkpoint"

// CleanerConfig configures a log directory's cleaner, Kafka's log.cleaner.*.
type CleanerConfig struct {
	Threads             int     // log.cleaner.threads; 0 runs no cleaner
	DedupeBufferBytes   int64   // log.cleaner.dedupe.buffer.size, shared by the threads
	IOMaxBytesPerSecond float64 // log.cleaner.io.max.bytes.per.second; 0 or less: no limit
	BackoffMs           int64   // log.cleaner.backoff.ms: sleep when nothing is worth a clean
}

// DefaultCleanerConfig is Kafka's.
func DefaultCleanerConfig() CleanerConfig {
	return CleanerConfig{Threads: 1, DedupeBufferBytes: 128 << 20, IOMaxBytesPerSecond: math.MaxFloat64, BackoffMs: 15000}
}

// CleanerMetrics receive what each clean that rewrote segments did (the
// node passes Prometheus metrics; Kafka's LogCleaner gauges and Sluice's
// totals). Nil fields are skipped.
type CleanerMetrics struct {
	CleanTimeSecs            Gauge // the last clean's duration (max-clean-time-secs)
	RecopyPercent            Gauge // bytes written over bytes read, last clean (cleaner-recopy-percent)
	BufferUtilizationPercent Gauge // offset map fill, last clean (max-buffer-utilization-percent)
	BytesRead                Counter
	BytesWritten             Counter
	RecordsRemoved           Counter
}

// Gauge and Counter are prometheus.Gauge's and prometheus.Counter's
// shapes, so the log needs no metrics package.
type (
	Gauge   interface{ Set(float64) }
	Counter interface{ Add(float64) }
)

func (cm *CleanerMetrics) record(stats CleanStats, seconds float64) {
	set := func(g Gauge, v float64) {
		if g != nil {
			g.Set(v)
		}
	}
	add := func(c Counter, v float64) {
		if c != nil {
			c.Add(v)
		}
	}
	set(cm.CleanTimeSecs, seconds)
	if stats.BytesRead > 0 {
		set(cm.RecopyPercent, 100*float64(stats.BytesWritten)/float64(stats.BytesRead))
	}
	set(cm.BufferUtilizationPercent, 100*stats.MapUtilization)
	add(cm.BytesRead, float64(stats.BytesRead))
	add(cm.BytesWritten, float64(stats.BytesWritten))
	add(cm.RecordsRemoved, float64(stats.RecordsRemoved))
}

// cleanerState is the manager's bookkeeping of its cleaner threads.
type cleanerState struct {
	throttle   *Throttler
	inProgress map[*Log]bool // guarded by Manager.mu: one thread per log
	// uncleanable are logs whose clean failed (an I/O error, a batch that
	// does not decode): as Kafka's uncleanable partitions, they are not
	// tried again until a restart, rather than failing in a loop.
	uncleanable map[*Log]bool // guarded by Manager.mu
}

// RunCleaner runs the cleaner threads until ctx is done. Each thread picks
// the log most in need (cleanScore), cleans it, and sleeps BackoffMs when
// none is. The threads share the dedupe buffer (each gets its share) and
// the I/O throttle, as Kafka's do.
func (m *Manager) RunCleaner(ctx context.Context) {
	cfg := m.opts.Cleaner
	if cfg.Threads <= 0 {
		return
	}
	share := max(cfg.DedupeBufferBytes/int64(cfg.Threads), 2*offsetMapSlotSize)
	var wg sync.WaitGroup
	for range cfg.Threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.cleanerThread(ctx, &cleanerResources{dedupeBytes: share, throttle: m.cleaner.throttle, stop: ctx.Done()})
		}()
	}
	wg.Wait()
}

func (m *Manager) cleanerThread(ctx context.Context, res *cleanerResources) {
	backoff := time.Duration(max(m.opts.Cleaner.BackoffMs, 1)) * time.Millisecond
	for ctx.Err() == nil {
		if _, _, ok := m.cleanOnce(res); ok {
			continue
		}
		timer := m.opts.Clock.NewTimer(backoff)
		select {
		case <-ctx.Done():
		case <-timer.C():
		}
		timer.Stop()
	}
}

// CleanOnce cleans the log most in need of it, if any, with a dedupe buffer
// of dedupeBytes: one step of a cleaner thread, for tests and tools.
func (m *Manager) CleanOnce(dedupeBytes int64) (TopicPartition, CleanStats, bool) {
	return m.cleanOnce(&cleanerResources{dedupeBytes: dedupeBytes, throttle: m.cleaner.throttle})
}

func (m *Manager) cleanOnce(res *cleanerResources) (TopicPartition, CleanStats, bool) {
	nowMs := m.opts.Clock.Now().UnixMilli()
	tp, l := m.grabFilthiestLog(nowMs)
	if l == nil {
		return tp, CleanStats{}, false
	}
	defer m.doneCleaning(l)
	start := m.opts.Clock.Now()
	stats, err := l.clean(res, nowMs)
	if stats.Segments > 0 {
		m.opts.CleanerMetrics.record(stats, m.opts.Clock.Since(start).Seconds())
	}
	switch {
	case errors.Is(err, errCleanAborted) || errors.Is(err, ErrClosed) || l.isClosed():
		// Deleted or closed under the cleaner (a partition moved away):
		// nothing to report.
		m.opts.Logger.Debug("clean abandoned", "log", l.Dir(), "err", err)
	case err != nil:
		m.opts.Logger.Error("clean failed; the log is not cleaned again until a restart", "log", l.Dir(), "err", err)
		m.mu.Lock()
		m.cleaner.uncleanable[l] = true
		m.mu.Unlock()
	case stats.Segments > 0:
		m.opts.Logger.Info("cleaned log", "log", l.Dir(), "segments", stats.Segments,
			"bytes_read", stats.BytesRead, "bytes_written", stats.BytesWritten, "records_removed", stats.RecordsRemoved)
	}
	return tp, stats, true
}

// grabFilthiestLog picks the log with the best cleanScore and marks it in
// progress. Scores are computed without the manager's lock (one may read a
// batch header).
func (m *Manager) grabFilthiestLog(nowMs int64) (TopicPartition, *Log) {
	m.mu.Lock()
	candidates := map[TopicPartition]*Log{}
	live := make(map[*Log]bool, len(m.logs))
	for tp, l := range m.logs {
		live[l] = true
		if !m.cleaner.inProgress[l] && !m.cleaner.uncleanable[l] {
			candidates[tp] = l
		}
	}
	for l := range m.cleaner.uncleanable {
		if !live[l] { // deleted since (the partition moved away)
			delete(m.cleaner.uncleanable, l)
		}
	}
	m.mu.Unlock()
	var bestTP TopicPartition
	var best *Log
	bestScore := 0.0
	for tp, l := range candidates {
		if score := l.cleanScore(nowMs); score > bestScore {
			bestTP, best, bestScore = tp, l, score
		}
	}
	if best == nil {
		return bestTP, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cleaner.inProgress[best] || m.closed {
		return bestTP, nil
	}
	m.cleaner.inProgress[best] = true
	return bestTP, best
}

func (m *Manager) doneCleaning(l *Log) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.cleaner.inProgress, l)
}

func (l *Log) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// cleanScore orders logs for the cleaner, as Kafka's LogCleanerManager
// does: 0 means not now; a log past max.compaction.lag.ms comes first
// (2 + dirty ratio), then logs at or above min.cleanable.dirty.ratio
// (1 + ratio), then logs with tombstones whose delete horizon passed.
func (l *Log) cleanScore(nowMs int64) float64 {
	l.mu.Lock()
	if l.closed || l.err != nil || !l.cfg.Compact || l.cleanBound == nil {
		l.mu.Unlock()
		return 0
	}
	cfg := l.cfg
	c := l.cleanableLocked(nowMs)
	horizonDue := l.deleteHorizonMs != 0 && l.deleteHorizonMs <= nowMs
	l.mu.Unlock()
	ratio := c.dirtyRatio()
	switch {
	case c.dirtyBytes > 0 && cfg.MaxCompactionLagMs < math.MaxInt64 && c.firstDirtySegment != nil &&
		firstBatchTimestamp(c.firstDirtySegment) <= nowMs-cfg.MaxCompactionLagMs:
		return 2 + ratio
	case c.dirtyBytes > 0 && ratio >= cfg.MinCleanableDirtyRatio:
		return 1 + ratio
	case horizonDue && len(c.segments) > 0:
		return 0.5
	}
	return 0
}

// firstBatchTimestamp is the max timestamp of a sealed segment's first batch,
// the age max.compaction.lag.ms measures (Kafka's getFirstBatchTimestamp);
// math.MaxInt64 when it cannot be read, which never forces a clean.
func firstBatchTimestamp(s *segment) int64 {
	ref, err := s.file.acquire()
	if err != nil {
		return math.MaxInt64
	}
	defer ref.release()
	var buf [record.HeaderSize]byte
	if _, err := ref.file.ReadAt(buf[:], 0); err != nil {
		return math.MaxInt64
	}
	h, err := record.ParseHeader(buf[:])
	if err != nil {
		return math.MaxInt64
	}
	return h.MaxTimestamp
}
