package log

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"sync"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/parallel"
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
	// MaxOpenActiveSegments bounds idle active segment files kept open
	// (synced, not being written or read); 0 means
	// DefaultOpenActiveSegments. With both bounds below the descriptor
	// limit, hosting more partitions than descriptors works.
	MaxOpenActiveSegments int
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
	// NoSharedSync makes every log fdatasync its own files, never sharing
	// a syncfs (log.flush.shared.sync=false).
	NoSharedSync bool
	// Journal gives the directory a write-ahead journal for small append
	// rounds under FlushAlways (log.flush.journal; journal.go).
	Journal bool
	// JournalFileBytes sizes each journal file; 0: DefaultJournalFileBytes.
	JournalFileBytes int64
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
	opening          map[TopicPartition]chan struct{} // GetOrCreate opening or Delete removing a log; closed when done
	deleting         map[TopicPartition]*logDeletion  // deletions not yet durable, redone by Delete, GetOrCreate and Maintain
	trash            []string                         // renamed log directories whose removal failed; retried by Maintain
	deletedDirs      int64                            // log directories renamed for deletion, to name each uniquely
	lastRetentionMs  int64
	lastCheckpointMs int64
	checkpointMu     sync.Mutex // one checkpoint writer at a time
	dirSync          groupSync  // fsyncs of opts.Dir after creating or deleting a log
	closed           bool
	cleaner          cleanerState
	// logStartMoved is told which logs retention moved the start offset
	// of (OnLogStartMoved); nil: nobody listens.
	logStartMoved func(TopicPartition)
	// deletedSinceCheckpoint holds the partitions deleted since the
	// checkpoints were last written (under mu): their entries there are
	// the deleted logs', which a new log of the same name must not get.
	deletedSinceCheckpoint map[TopicPartition]bool

	// sharedSync lets the logs' append rounds share a syncfs; opened
	// before any log so that its descriptor sees every write-back error
	// of their writes.
	sharedSync *SharedSync
	// journal is the directory's write-ahead journal, if any; its Journal
	// is nil without one.
	journal managerJournal
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
	if opts.MaxOpenActiveSegments == 0 {
		opts.MaxOpenActiveSegments = DefaultOpenActiveSegments
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
	m := &Manager{opts: opts, files: NewFileCacheWithActive(opts.MaxOpenSealedSegments, opts.MaxOpenActiveSegments), logs: map[TopicPartition]*Log{},
		opening: map[TopicPartition]chan struct{}{}, deleting: map[TopicPartition]*logDeletion{},
		deletedSinceCheckpoint: map[TopicPartition]bool{}}
	m.cleaner = cleanerState{throttle: NewThrottler(opts.Clock, opts.Cleaner.IOMaxBytesPerSecond), inProgress: map[*Log]bool{}, uncleanable: map[*Log]bool{}}
	if err := opts.FS.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("log dir %s: %w", opts.Dir, err)
	}
	shared, err := openSharedSync(opts)
	if err != nil {
		return nil, err
	}
	m.sharedSync = shared
	if err := m.openJournal(); err != nil {
		m.sharedSync.Close()
		return nil, err
	}
	if err := m.openAll(); err != nil {
		m.closeLogs()
		m.closeJournal()
		m.sharedSync.Close()
		return nil, err
	}
	now := opts.Clock.Now().UnixMilli()
	m.lastRetentionMs, m.lastCheckpointMs = now, now
	return m, nil
}

// openSharedSync opens the syncfs handle of the log directory; where syncfs
// is refused (see vfs.OpenFileSystemSyncer) the logs fdatasync their own
// files, as they would without a manager.
func openSharedSync(opts ManagerOptions) (*SharedSync, error) {
	if opts.NoSharedSync {
		return NewSharedSync(nil, opts.Dir, opts.Logger), nil
	}
	syncer, err := opts.FS.OpenFileSystemSyncer(opts.Dir)
	if errors.Is(err, errors.ErrUnsupported) {
		opts.Logger.Info("append rounds of different logs will not share a sync", "dir", opts.Dir, "reason", err)
		syncer = nil
	} else if err != nil {
		return nil, fmt.Errorf("log dir %s: %w", opts.Dir, err)
	}
	return NewSharedSync(syncer, opts.Dir, opts.Logger), nil
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
	m.removeDeletedLogDirs(names)
	var errMu sync.Mutex
	var errs []error
	parallel.ForEach(names, openParallelism, func(name string) {
		tp, ok := ParseTopicPartition(name)
		if info, err := m.opts.FS.Stat(m.path(name)); !ok || err != nil || !info.IsDir() {
			return
		}
		l, err := Open(m.opts.FS, m.path(name), m.logOptions(m.opts.Config, Options{
			RecoveryPoint: recoveryPoints[tp], LogStartOffset: startOffsets[tp], CleanShutdown: clean,
			FirstDirtyOffset: firstDirty[tp], journalReplay: m.journal.j != nil,
		}))
		errMu.Lock()
		defer errMu.Unlock()
		if err != nil {
			errs = append(errs, err)
			return
		}
		m.mu.Lock()
		m.logs[tp] = l
		m.mu.Unlock()
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := m.replayJournal(); err != nil {
		return err
	}
	if n := m.journal.replayedBytes; n > 0 {
		// Only a crash that lost page-cache bytes leaves rounds to
		// replay: worth an operator's notice.
		m.opts.Logger.Info("journal replayed acknowledged rounds the segments had lost", "dir", m.opts.Dir, "bytes", n)
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
	o.SharedSync = m.sharedSync
	o.Journal = m.journal.live
	if o.Journal != nil {
		o.journalWriteback = m.journal.writeback
	}
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

// OpenActiveFiles reports the active segment files open across all logs.
func (m *Manager) OpenActiveFiles() int { return m.files.OpenActiveFiles() }

// OpenSegmentLimits reports the bounds on open segment files in force
// (MaxOpenSealedSegments, MaxOpenActiveSegments).
func (m *Manager) OpenSegmentLimits() (sealed, active int) { return m.files.Limits() }

// SetOpenSegmentLimits changes those bounds while logs are in use; idle
// files past a lowered bound are closed before it returns (after an
// fsync, for those holding unsynced bytes).
func (m *Manager) SetOpenSegmentLimits(sealed, active int) { m.files.SetLimits(sealed, active) }

// GetOrCreate returns the partition's log, creating it with cfg if needed.
// Logs of different partitions open in parallel: m.mu is not held across
// the open (its fsyncs), only an opening mark for tp. A failed deletion of
// tp is finished first, and its failure returned if it still fails.
func (m *Manager) GetOrCreate(tp TopicPartition, cfg Config) (*Log, error) {
	if err := m.deleteLog(tp, true); err != nil {
		// The old directory, or its rename, may still be there: a log
		// created now would be made of the old one's files, or lose its
		// own at the next open.
		return nil, fmt.Errorf("partition %s: its earlier deletion is not durable: %w", tp, err)
	}
	m.mu.Lock()
	if err := m.waitOpeningLocked(tp); err != nil {
		m.mu.Unlock()
		return nil, err
	}
	if _, pending := m.deleting[tp]; pending {
		// A Delete that failed while this call waited.
		m.mu.Unlock()
		return m.GetOrCreate(tp, cfg)
	}
	if l, ok := m.logs[tp]; ok {
		m.mu.Unlock()
		return l, nil
	}
	done := make(chan struct{})
	m.opening[tp] = done
	m.mu.Unlock()
	l, err := m.create(tp, cfg)
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.opening, tp)
	close(done)
	if err != nil {
		return nil, err
	}
	if m.closed {
		l.Close()
		return nil, ErrClosed
	}
	m.logs[tp] = l
	return l, nil
}

// waitOpeningLocked waits, releasing m.mu meanwhile, until no GetOrCreate
// is opening tp and no Delete removing it.
func (m *Manager) waitOpeningLocked(tp TopicPartition) error {
	for {
		if m.closed {
			return ErrClosed
		}
		done, ok := m.opening[tp]
		if !ok {
			return nil
		}
		m.mu.Unlock()
		<-done
		m.mu.Lock()
	}
}

func (m *Manager) create(tp TopicPartition, cfg Config) (*Log, error) {
	m.mu.Lock()
	deleted := m.deletedSinceCheckpoint[tp]
	m.mu.Unlock()
	if deleted {
		// The checkpoints still hold the deleted log's log start and
		// recovery point under this name: after a crash, the new log
		// would open with them (its records below that start out of
		// reach, its unsynced tail trusted without recovery).
		if err := m.Checkpoint(); err != nil {
			return nil, fmt.Errorf("partition %s: checkpoint its deletion: %w", tp, err)
		}
	}
	l, err := Open(m.opts.FS, m.path(tp.String()), m.logOptions(cfg, Options{}))
	if err != nil {
		return nil, err
	}
	if err := m.dirSync.sync(m.syncDir); err != nil {
		l.Close()
		return nil, fmt.Errorf("log dir %s: %w", m.opts.Dir, err)
	}
	return l, nil
}

// groupSync shares fsyncs of one directory among concurrent callers, as
// appends share a segment's fsync: a caller waits for a sync that started
// after it asked, so its change is covered, and one sync serves everyone
// who asked while the previous one ran. Creating a topic of thousands of
// partitions in parallel then syncs the log directory a few times, not
// once per partition.
//
// A failure is sticky, as the shared syncfs's (see SharedSync): a failed
// fsync's write-back may have dropped the entry of any caller that asked
// before it ended, and the error is reported once, so a later fsync on a
// fresh descriptor can succeed over it. Every later call returns the
// first failure, until a restart, and runs no fsync.
type groupSync struct {
	mu        sync.Mutex
	cond      sync.Cond
	running   bool
	started   int64 // syncs begun
	completed int64 // the newest sync finished
	err       error // its result
	failed    error // the first failure, wrapped for later callers
}

func (g *groupSync) sync(fn func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond.L == nil {
		g.cond.L = &g.mu
	}
	// A sync running now may have begun before the caller's change.
	want := g.started + 1
	for g.completed < want {
		if g.failed != nil {
			return g.failed
		}
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		g.started++
		gen := g.started
		g.mu.Unlock()
		err := fn()
		g.mu.Lock()
		g.running, g.completed, g.err = false, gen, err
		if err != nil && g.failed == nil {
			g.failed = fmt.Errorf("a directory fsync failed earlier (restart the node): %w", err)
		}
		g.cond.Broadcast()
	}
	return g.err
}

// syncDir fsyncs the log directory, shedding idle files if its open finds
// no descriptor (see Log.syncDir).
func (m *Manager) syncDir() error {
	return m.shedding().SyncDir(m.opts.Dir)
}

// shedding is the manager's file system with the file cache's rule for
// an open that finds no descriptor (see Log.shedding).
func (m *Manager) shedding() sheddingFS { return sheddingFS{FS: m.opts.FS, cache: m.files} }

// FS is the manager's file system for the files others keep beside the
// logs (a partition's leader-epoch checkpoint and producer snapshots, the
// high-watermark checkpoint): an open or a directory fsync that finds no
// descriptor closes an idle segment file and tries again, as the logs'
// own opens do, instead of failing the append or the checkpoint that
// needed it. Only opens are retried, never a failed fsync.
func (m *Manager) FS() vfs.FS { return m.shedding() }

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
	bases := make(map[*Log]int64, len(m.logs))
	deleted := m.deletedSinceCheckpoint
	m.deletedSinceCheckpoint = map[TopicPartition]bool{}
	for tp, l := range m.logs {
		recoveryPoints[tp], startOffsets[tp] = l.RecoveryPoint(), l.LogStartOffset()
		bases[l] = l.activeBaseOffset()
		if offset := l.FirstDirtyOffset(); offset > 0 && l.Config().Compact {
			firstDirty[tp] = offset
		}
	}
	m.mu.Unlock()
	if err := m.writeCheckpoints(recoveryPoints, firstDirty, startOffsets); err != nil {
		m.mu.Lock()
		maps.Copy(m.deletedSinceCheckpoint, deleted)
		m.mu.Unlock()
		return err
	}
	for l, base := range bases {
		l.setCheckpointedBase(base)
	}
	return nil
}

func (m *Manager) writeCheckpoints(recoveryPoints, firstDirty, startOffsets map[TopicPartition]int64) error {
	// Out of descriptors, the files' creates and the directory's open shed
	// idle files and try again, as Manager.syncDir does: a failure here
	// fails a Truncate or DeleteRecordsBefore whose log already changed.
	fsys := m.shedding()
	if err := writeCheckpoint(fsys, m.path(recoveryPointCheckpointFile), recoveryPoints); err != nil {
		return err
	}
	if err := writeCheckpoint(fsys, m.path(cleanerOffsetCheckpointFile), firstDirty); err != nil {
		return err
	}
	return writeCheckpoint(fsys, m.path(logStartOffsetCheckpointFile), startOffsets)
}

// rolledSinceCheckpoint reports whether a log rolled a segment after the
// last checkpoint. The segments it sealed are synced (or will be, by the
// same tick) but not yet below a checkpointed recovery point, so a crash
// would validate them again, CRC by CRC: at 200 MB/s, up to 12 GB of reads
// for the default 60 s checkpoint interval. Checkpointing on the next tick
// after a roll bounds what recovery reads to about one segment per log
// plus its active one, at the cost of one checkpoint per tick at most.
func rolledSinceCheckpoint(logs []partitionLog) bool {
	for _, pl := range logs {
		if pl.log.rolledSinceCheckpoint() {
			return true
		}
	}
	return false
}

// OnLogStartMoved has f called, with no lock held, for each log whose
// start offset retention moved up: what derives from the log's start (a
// partition's leader epoch cache) follows it, as Kafka's deleteSegments
// does through maybeIncrementLogStartOffset. DeleteRecordsBefore and the
// truncations do not call it: their callers bring their state along. f
// may be called for different logs at once (retention runs logs in
// parallel), never twice at once for one log.
func (m *Manager) OnLogStartMoved(f func(TopicPartition)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logStartMoved = f
}

// Maintain runs what is due at nowMs: fsync of interval-policy logs past
// flush.ms, retention every RetentionCheckIntervalMs, checkpoints every
// CheckpointIntervalMs. Errors of single logs are logged: a failed log is
// read-only and the others carry on.
func (m *Manager) Maintain(nowMs int64) error {
	m.mu.Lock()
	logs := make([]partitionLog, 0, len(m.logs))
	for tp, l := range m.logs {
		logs = append(logs, partitionLog{tp, l})
	}
	retention := nowMs-m.lastRetentionMs >= m.opts.RetentionCheckIntervalMs
	checkpoint := nowMs-m.lastCheckpointMs >= m.opts.CheckpointIntervalMs
	if retention {
		m.lastRetentionMs = nowMs
	}
	moved := m.logStartMoved
	m.mu.Unlock()
	width := 1 // one log after another
	if retention {
		m.finishDeletions()
		// Retention renames and syncs, and each moved start has the
		// listener write and fsync a checkpoint: one log after another
		// that took 1.5 s a tick for 1,000 partitions (docs/testing.md),
		// while interval flushes waited. Logs are independent, and the
		// disk serves their fsyncs many at a time.
		width = openParallelism
	}
	parallel.ForEach(logs, width, func(pl partitionLog) {
		if m.maintainLog(pl.log, nowMs, retention) && moved != nil {
			moved(pl.tp)
		}
	})
	if checkpoint && m.journal.live != nil {
		// An idle journal's rounds reach their segments too, so that a
		// restart does not replay them.
		m.journal.live.Checkpoint()
	}
	// After the flushes above, so sealed segments they synced count.
	if checkpoint || rolledSinceCheckpoint(logs) {
		m.mu.Lock()
		m.lastCheckpointMs = nowMs
		m.mu.Unlock()
		return m.Checkpoint()
	}
	return nil
}

// partitionLog is a log and the partition it belongs to.
type partitionLog struct {
	tp  TopicPartition
	log *Log
}

// maintainLog runs what is due for one log, and says whether retention
// moved its start offset.
func (m *Manager) maintainLog(l *Log, nowMs int64, retention bool) (startMoved bool) {
	if err := l.flushIfDue(nowMs); err != nil && !errors.Is(err, ErrClosed) {
		m.opts.Logger.Error("interval flush failed", "log", l.Dir(), "err", err)
	}
	if err := l.removeDeletedSegments(nowMs); err != nil {
		m.opts.Logger.Warn("removing deleted segment files failed", "log", l.Dir(), "err", err)
	}
	if !retention {
		return false
	}
	start := l.LogStartOffset()
	n, err := l.DeleteExpiredSegments(nowMs)
	if err != nil && !errors.Is(err, ErrClosed) {
		m.opts.Logger.Error("retention failed", "log", l.Dir(), "err", err)
	} else if n > 0 {
		m.opts.Logger.Info("deleted segments past retention", "log", l.Dir(), "segments", n)
	}
	// Also after a failure: the segments retired before it are gone.
	return l.LogStartOffset() > start
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
	if jerr := m.closeJournal(); err == nil {
		err = jerr
	}
	if cerr := m.Checkpoint(); err == nil {
		err = cerr
	}
	if serr := m.sharedSync.Close(); err == nil {
		err = serr
	}
	if err != nil {
		return err
	}
	// Through shedding, as the checkpoint above: the logs are closed, so
	// no idle file is left to close, but a close still in flight gives
	// its descriptor back.
	return vfs.WriteFileAtomic(m.shedding(), m.path(cleanShutdownFile), nil)
}

// SharesSyncs reports whether SyncFileSystem can run: the logs share a
// syncfs of the directory's file system (SharedSync.Shared).
func (m *Manager) SharesSyncs() bool { return m.sharedSync.Shared() }

// SyncFileSystem makes every file of the log directory's file system
// written before the call durable with one syncfs, shared with the logs'
// append rounds (SharedSync.SyncAll); an error wrapping
// errors.ErrUnsupported where SharesSyncs is false.
func (m *Manager) SyncFileSystem() error { return m.sharedSync.SyncAll() }

// SharedSyncStats reports what the logs' shared syncs did.
func (m *Manager) SharedSyncStats() SharedSyncStats { return m.sharedSync.Stats() }

// closeLogs closes every log, openParallelism at a time: each close waits
// for fsyncs (the active segment and its index files).
func (m *Manager) closeLogs() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	logs := make([]*Log, 0, len(m.logs))
	for _, l := range m.logs {
		logs = append(logs, l)
	}
	var errMu sync.Mutex
	var errs []error
	parallel.ForEach(logs, openParallelism, func(l *Log) {
		if err := l.Close(); err != nil && !errors.Is(err, ErrClosed) {
			errMu.Lock()
			errs = append(errs, err)
			errMu.Unlock()
		}
	})
	return errors.Join(errs...)
}

// openParallelism bounds the logs opened or closed at once. Opening or
// closing a log is mostly waiting for fsyncs and small reads, which a disk
// serves many at a time; one log at a time, 10,000 partitions took a minute
// to create and tens of seconds to stop or recover.
const openParallelism = 32
