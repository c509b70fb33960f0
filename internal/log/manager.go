package log

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/vfs"
)

// Files at the top of a log directory (log.dirs), next to the partitions.
const (
	recoveryPointCheckpointFile  = "recovery-point-offset-checkpoint"
	logStartOffsetCheckpointFile = "log-start-offset-checkpoint"
	// cleanShutdownFile exists only between a completed Close and the next
	// open: its presence lets the active segments' index files be trusted.
	cleanShutdownFile = ".sluice_cleanshutdown"
)

// ManagerOptions configure OpenManager.
type ManagerOptions struct {
	FS     vfs.FS
	Dir    string       // the log directory (log.dirs)
	Config Config       // for logs opened from disk and created without one
	Clock  clock.Clock  // nil: the real clock
	Logger *slog.Logger // nil: slog.Default()
	// MaxOpenSealedSegments bounds sealed segment files open at once across
	// all logs; 0 means DefaultOpenSealedSegments.
	MaxOpenSealedSegments int
	// RetentionCheckIntervalMs is log.retention.check.interval.ms; 0 means
	// Kafka's 5 minutes. CheckpointIntervalMs is
	// log.flush.offset.checkpoint.interval.ms; 0 means 60 seconds.
	RetentionCheckIntervalMs int64
	CheckpointIntervalMs     int64
	// Cleaner configures the log cleaner that RunCleaner runs, and
	// CleanerMetrics receive what its cleans do.
	Cleaner        CleanerConfig
	CleanerMetrics CleanerMetrics
	// FlushTime observes every log's append fsyncs (Options.FlushTime).
	FlushTime Observer
}

// Manager owns the logs of one log directory, as Kafka's LogManager: it opens
// them at start-up with the recovery points of the last checkpoint, shares
// one open-file budget among them, and runs the periodic work (interval
// flushes, retention, checkpoints) from a single goroutine, so idle logs cost
// no goroutine and no timer.
type Manager struct {
	opts  ManagerOptions
	files *FileCache

	mu               sync.Mutex
	logs             map[TopicPartition]*Log
	lastRetentionMs  int64
	lastCheckpointMs int64
	checkpointMu     sync.Mutex // one checkpoint writer at a time
	closed           bool
	cleaner          cleanerState
}

// OpenManager opens every partition log found in opts.Dir.
func OpenManager(opts ManagerOptions) (*Manager, error) {
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxOpenSealedSegments == 0 {
		opts.MaxOpenSealedSegments = DefaultOpenSealedSegments
	}
	if opts.RetentionCheckIntervalMs == 0 {
		opts.RetentionCheckIntervalMs = (5 * time.Minute).Milliseconds()
	}
	if opts.CheckpointIntervalMs == 0 {
		opts.CheckpointIntervalMs = time.Minute.Milliseconds()
	}
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	m := &Manager{opts: opts, files: NewFileCache(opts.MaxOpenSealedSegments), logs: map[TopicPartition]*Log{}}
	m.cleaner = cleanerState{throttle: NewThrottler(opts.Clock, opts.Cleaner.IOMaxBytesPerSecond), inProgress: map[*Log]bool{}, uncleanable: map[*Log]bool{}}
	if err := opts.FS.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("log dir %s: %w", opts.Dir, err)
	}
	if err := m.openAll(); err != nil {
		m.closeLogs()
		return nil, err
	}
	now := opts.Clock.Now().UnixMilli()
	m.lastRetentionMs, m.lastCheckpointMs = now, now
	return m, nil
}

func (m *Manager) path(name string) string { return filepath.Join(m.opts.Dir, name) }

// openAll opens the logs, then forgets the clean-shutdown marker (and writes
// fresh checkpoints) before any append, so a later crash is never mistaken
// for a clean stop.
func (m *Manager) openAll() error {
	recoveryPoints, err := readCheckpoint(m.opts.FS, m.path(recoveryPointCheckpointFile))
	if err != nil {
		return err
	}
	startOffsets, err := readCheckpoint(m.opts.FS, m.path(logStartOffsetCheckpointFile))
	if err != nil {
		return err
	}
	firstDirty, err := readCheckpoint(m.opts.FS, m.path(cleanerOffsetCheckpointFile))
	if err != nil {
		return err
	}
	_, statErr := m.opts.FS.Stat(m.path(cleanShutdownFile))
	clean := statErr == nil
	names, err := m.opts.FS.List(m.opts.Dir)
	if err != nil {
		return fmt.Errorf("log dir %s: %w", m.opts.Dir, err)
	}
	for _, name := range names {
		tp, ok := ParseTopicPartition(name)
		if info, err := m.opts.FS.Stat(m.path(name)); !ok || err != nil || !info.IsDir() {
			continue
		}
		l, err := Open(m.opts.FS, m.path(name), m.logOptions(m.opts.Config, Options{
			RecoveryPoint: recoveryPoints[tp], LogStartOffset: startOffsets[tp], CleanShutdown: clean,
			FirstDirtyOffset: firstDirty[tp],
		}))
		if err != nil {
			return err
		}
		m.logs[tp] = l
	}
	if clean {
		if err := m.opts.FS.Remove(m.path(cleanShutdownFile)); err != nil {
			return err
		}
	}
	return m.Checkpoint()
}

func (m *Manager) logOptions(cfg Config, o Options) Options {
	o.Config, o.Clock, o.Files, o.Logger, o.FlushTime = cfg, m.opts.Clock, m.files, m.opts.Logger, m.opts.FlushTime
	return o
}

// Log returns the log of a partition, if this directory has it.
func (m *Manager) Log(tp TopicPartition) (*Log, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.logs[tp]
	return l, ok
}

// Partitions lists the partitions with a log here.
func (m *Manager) Partitions() []TopicPartition {
	m.mu.Lock()
	defer m.mu.Unlock()
	tps := make([]TopicPartition, 0, len(m.logs))
	for tp := range m.logs {
		tps = append(tps, tp)
	}
	return tps
}

// OpenFiles reports the sealed segment files open across all logs.
func (m *Manager) OpenFiles() int { return m.files.OpenFiles() }

// GetOrCreate returns the partition's log, creating it with cfg if needed.
func (m *Manager) GetOrCreate(tp TopicPartition, cfg Config) (*Log, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if l, ok := m.logs[tp]; ok {
		return l, nil
	}
	l, err := Open(m.opts.FS, m.path(tp.String()), m.logOptions(cfg, Options{}))
	if err != nil {
		return nil, err
	}
	if err := m.opts.FS.SyncDir(m.opts.Dir); err != nil {
		l.Close()
		return nil, fmt.Errorf("log dir %s: %w", m.opts.Dir, err)
	}
	m.logs[tp] = l
	return l, nil
}

// Delete removes a partition's log and its files.
func (m *Manager) Delete(tp TopicPartition) error {
	m.mu.Lock()
	l, ok := m.logs[tp]
	delete(m.logs, tp)
	m.mu.Unlock()
	if !ok {
		return nil
	}
	if err := l.Delete(); err != nil {
		return err
	}
	return m.opts.FS.SyncDir(m.opts.Dir)
}

// DeleteRecordsBefore advances a log's start offset and checkpoints it before
// returning, so an acknowledged DeleteRecords survives a crash.
func (m *Manager) DeleteRecordsBefore(tp TopicPartition, offset int64) (int64, error) {
	l, ok := m.Log(tp)
	if !ok {
		return 0, fmt.Errorf("partition %s: %w", tp, ErrClosed)
	}
	start, err := l.DeleteRecordsBefore(offset)
	if err != nil {
		return 0, err
	}
	return start, m.Checkpoint()
}

// Truncate truncates a partition's log (a follower dropping divergent
// records) and checkpoints at once, as Kafka's LogManager does: a recovery
// point left above the new log end would make the next open trust records
// appended after the truncation without validating them.
func (m *Manager) Truncate(tp TopicPartition, offset int64) error {
	l, ok := m.Log(tp)
	if !ok {
		return fmt.Errorf("partition %s: %w", tp, ErrClosed)
	}
	if err := l.Truncate(offset); err != nil {
		return err
	}
	return m.Checkpoint()
}

// TruncateFullyAndStartAt empties a partition's log, restarting it at
// offset, and checkpoints at once (see Truncate).
func (m *Manager) TruncateFullyAndStartAt(tp TopicPartition, offset int64) error {
	l, ok := m.Log(tp)
	if !ok {
		return fmt.Errorf("partition %s: %w", tp, ErrClosed)
	}
	if err := l.TruncateFullyAndStartAt(offset); err != nil {
		return err
	}
	return m.Checkpoint()
}

// Checkpoint writes the recovery points and log start offsets of every log.
func (m *Manager) Checkpoint() error {
	m.checkpointMu.Lock()
	defer m.checkpointMu.Unlock()
	m.mu.Lock()
	recoveryPoints := make(map[TopicPartition]int64, len(m.logs))
	startOffsets := make(map[TopicPartition]int64, len(m.logs))
	firstDirty := map[TopicPartition]int64{}
	for tp, l := range m.logs {
		recoveryPoints[tp], startOffsets[tp] = l.RecoveryPoint(), l.LogStartOffset()
		if offset := l.FirstDirtyOffset(); offset > 0 && l.Config().Compact {
			firstDirty[tp] = offset
		}
	}
	m.mu.Unlock()
	if err := writeCheckpoint(m.opts.FS, m.path(recoveryPointCheckpointFile), recoveryPoints); err != nil {
		return err
	}
	if err := writeCheckpoint(m.opts.FS, m.path(cleanerOffsetCheckpointFile), firstDirty); err != nil {
		return err
	}
	return writeCheckpoint(m.opts.FS, m.path(logStartOffsetCheckpointFile), startOffsets)
}

// Maintain runs what is due at nowMs: fsync of interval-policy logs past
// flush.ms, retention every RetentionCheckIntervalMs, checkpoints every
// CheckpointIntervalMs. Errors of single logs are logged: a failed log is
// read-only and the others carry on.
func (m *Manager) Maintain(nowMs int64) error {
	m.mu.Lock()
	logs := make([]*Log, 0, len(m.logs))
	for _, l := range m.logs {
		logs = append(logs, l)
	}
	retention := nowMs-m.lastRetentionMs >= m.opts.RetentionCheckIntervalMs
	checkpoint := nowMs-m.lastCheckpointMs >= m.opts.CheckpointIntervalMs
	if retention {
		m.lastRetentionMs = nowMs
	}
	if checkpoint {
		m.lastCheckpointMs = nowMs
	}
	m.mu.Unlock()
	for _, l := range logs {
		m.maintainLog(l, nowMs, retention)
	}
	if checkpoint {
		return m.Checkpoint()
	}
	return nil
}

func (m *Manager) maintainLog(l *Log, nowMs int64, retention bool) {
	if err := l.flushIfDue(nowMs); err != nil && !errors.Is(err, ErrClosed) {
		m.opts.Logger.Error("interval flush failed", "log", l.Dir(), "err", err)
	}
	if err := l.removeDeletedSegments(nowMs); err != nil {
		m.opts.Logger.Warn("removing deleted segment files failed", "log", l.Dir(), "err", err)
	}
	if !retention {
		return
	}
	if n, err := l.DeleteExpiredSegments(nowMs); err != nil && !errors.Is(err, ErrClosed) {
		m.opts.Logger.Error("retention failed", "log", l.Dir(), "err", err)
	} else if n > 0 {
		m.opts.Logger.Info("deleted segments past retention", "log", l.Dir(), "segments", n)
	}
}

// Run calls Maintain every interval until ctx is done.
func (m *Manager) Run(ctx context.Context, interval time.Duration) {
	ticker := m.opts.Clock.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticker.C():
			if err := m.Maintain(now.UnixMilli()); err != nil {
				m.opts.Logger.Error("log maintenance failed", "err", err)
			}
		}
	}
}

// Close closes every log, checkpoints, and marks the shutdown clean if all
// logs closed cleanly.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	err := m.closeLogs()
	if cerr := m.Checkpoint(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return vfs.WriteFileAtomic(m.opts.FS, m.path(cleanShutdownFile), nil)
}

func (m *Manager) closeLogs() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, l := range m.logs {
		if err := l.Close(); err != nil && !errors.Is(err, ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
