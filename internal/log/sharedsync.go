package log

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/sluicelog/sluice/internal/vfs"
)

// Group commit across logs. Each log already shares one fdatasync among the
// appends of a write round (append.go); a produce spread over many
// partitions still pays one fdatasync per partition, and ext4 serialises
// them: measured on this project's disk, 8 files written then fdatasynced
// in parallel took 0.76 ms, one syncfs(2) of them 0.28 ms; 64 files 6.5 ms
// against 1.25 ms. SharedSync lets the logs of one log directory share a
// syncfs instead:
//
//	log A round: pwritev ─ Sync ─┐ no other log syncing: A fdatasyncs its
//	                             │ own file, as without a SharedSync
//	log B round: pwritev ─ Sync ─┤ A is syncing: B runs a syncfs now
//	log C round: pwritev ─ Sync ─┤ a syncfs runs: C waits for the next one
//	log D round: pwritev ─ Sync ─┤ likewise
//	                             ▼ B's syncfs ends; C (the first awake)
//	                               runs the next, which covers C and D
//
// Generations: a caller wants a syncfs that started after its write
// completed, i.e. generation started+1 as of the moment the write was
// done (writtenAt, read by the log when it publishes the round, not when
// it asks for the sync: a round written while a syncfs was queued behind
// another, or before a syncfs that another log's caller began, rides on
// that one instead of waiting for the next). A syncfs of that generation
// or later covers it; one that began before the write completed does not.
// Only one syncfs runs at a time, which is what lets rounds pile up
// behind it and share the next one.
//
// The rule: a caller syncs its own file when no other log is syncing,
// waiting to, or holding a round written and not yet synced
// (defaultMinSharedSync), and shares a syncfs otherwise. A lone
// log, however busy, is as fast with fdatasync (0.21 against 0.22 ms
// here), and syncfs also writes back every other dirty file of the file
// system: the logs of flush.policy=never and interval topics, other
// programs' files. Measured with BenchmarkAppendSpread (one request
// appending to N logs at once, as a produce does), sharing cut the
// request p50 by a quarter or more at 8 logs and two to three times at 64,
// and the p99 more; with 8 logs each appending back to back on its own
// (BenchmarkAppendManyLogs) it costs a third to two thirds of the appends
// per second: every sync then waits for the syncfs before it, and syncfs
// hands its writeback to a kernel flusher thread that waits for a core,
// where independent fdatasyncs write back in the caller and overlap in
// the journal. Requiring 4 or 8 logs before sharing did not win that back
// and lost most of the spread gain (docs/testing.md has the figures).
//
// Errors: a failed syncfs fails every caller it covered, and nothing is
// acknowledged from it; the caller cannot tell whose write failed. It also
// ends sharing for good (until a restart): syncfs reports a write-back
// error once per descriptor, so a later syncfs could succeed over data
// whose write-back failed before it, of a log that was not waiting then.
// From then on every log fdatasyncs its own file, and each file's
// descriptor still reports its own errors. A failed fdatasync fails its
// caller only, as before.
type SharedSync struct {
	syncer vfs.FileSystemSyncer // nil: syncfs refused here; every caller fdatasyncs
	dir    string
	logger *slog.Logger
	// minShared is how many callers syncing at once make a syncfs worth it
	// (defaultMinSharedSync; tests lower it).
	minShared int

	mu      sync.Mutex
	cond    sync.Cond
	running bool // a syncfs runs
	// fileSyncing counts callers in their own fdatasync now.
	fileSyncing int
	// waitingNext counts the callers the next syncfs would cover: those
	// that arrived since the last one began and are not in their own
	// fdatasync. Callers still asleep that a syncfs already covered are
	// not counted.
	waitingNext int
	// started counts syncfs generations begun. It changes under mu, and
	// is read without it by logs noting which syncfs may still cover a
	// round they just wrote (Started).
	started atomic.Uint64
	// owing counts the logs holding rounds written and not yet synced
	// (Log.owesSync), the caller's own included: when others owe one too,
	// they are about to sync, so a lone caller runs a syncfs that covers
	// them rather than its own fdatasync (a produce writes all of its
	// partitions before it waits on any: they all ride on that syncfs).
	owing atomic.Int64
	// pendingRounds counts the rounds published through Written since
	// the last syncfs began; minEarly is how many start one early
	// (defaultMinEarlySync; tests lower it).
	pendingRounds atomic.Int64
	minEarly      int64
	// noEarly mirrors, for Written to read without mu, that no early
	// syncfs can start: one runs, or Close ran, or a syncfs failed. It
	// is stored under mu with what it mirrors (noteEarlyLocked), so a
	// stale read only delays an early start to a later Written; the
	// lock still decides one.
	noEarly atomic.Bool
	covered uint64 // the newest generation of a successful syncfs
	failed  uint64 // the generation of the syncfs that failed; 0: none
	failErr error
	closed  bool // Close ran: syncs are each caller's own
	stats   SharedSyncStats
}

// SharedSyncStats count what a SharedSync did, for tests and benchmarks.
type SharedSyncStats struct {
	SyncFS     int64 // syncfs calls
	FileSyncs  int64 // callers' own fdatasyncs
	SharedRuns int64 // callers a syncfs covered, summed over syncfs calls
	// EarlySyncFS counts the syncfs calls (among SyncFS) that Written
	// started while rounds were still being written.
	EarlySyncFS int64
}

// NewSharedSync shares syncs among the logs of dir through syncer; a nil
// syncer (syncfs refused on this system) makes every Sync an fdatasync of
// the caller's own file. The SharedSync owns syncer from now on.
func NewSharedSync(syncer vfs.FileSystemSyncer, dir string, logger *slog.Logger) *SharedSync {
	if logger == nil {
		logger = slog.Default()
	}
	s := &SharedSync{syncer: syncer, dir: dir, logger: logger, minShared: defaultMinSharedSync, minEarly: defaultMinEarlySync}
	s.cond.L = &s.mu
	return s
}

// defaultMinSharedSync: see the rule in the comment on SharedSync.
const defaultMinSharedSync = 2

// defaultMinEarlySync is how many rounds written for later waits, and
// logs owing a sync, start a syncfs before the writer is done
// (Written); 32 and 2,048 measured the same. Well above the partitions
// of a typical produce (8 logs never start one: their syncs already
// share a syncfs as soon as they wait), and low enough that with
// thousands of partitions in a request the syncfs starts within a few
// milliseconds of writes.
const defaultMinEarlySync = 256

// fileSyncer is what a caller's own fsync is (vfs.File's Sync).
type fileSyncer interface{ Sync() error }

// Sync returns once the data the caller wrote to file before calling is
// durable: by file.Sync(), or by a syncfs that started after the call. A nil
// SharedSync is file.Sync().
func (s *SharedSync) Sync(file fileSyncer) error {
	_, err := s.SyncWritten(file, s.Started())
	return err
}

// Started is the number of syncfs calls begun so far. A caller that reads
// it after its write to a file completed, as writtenAt, knows that any
// syncfs of a later generation began after that write and covers it.
func (s *SharedSync) Started() uint64 {
	if s == nil {
		return 0
	}
	return s.started.Load()
}

// SyncWritten returns once the data written to file before Started
// returned writtenAt is durable: by a syncfs of a later generation, one
// already running or finished included (a round written while another
// log's syncfs was queued rides on it, rather than waiting for the next),
// or by file.Sync(). covered is the syncfs generation that made it
// durable, 0 for the file's own fsync, which covers only what was written
// before SyncWritten was called.
func (s *SharedSync) SyncWritten(file fileSyncer, writtenAt uint64) (covered uint64, err error) {
	if s == nil || s.syncer == nil {
		return 0, file.Sync()
	}
	s.mu.Lock()
	want := writtenAt + 1
	waiting := want > s.started.Load() // the next syncfs would cover it: count it
	if waiting {
		s.waitingNext++
	}
	for {
		switch {
		case s.covered >= want:
			if !waiting {
				s.stats.SharedRuns++ // a rider: runLocked did not count it
			}
			covered = s.covered
			s.mu.Unlock()
			return covered, nil
		case s.failed != 0 && want <= s.failed:
			// A syncfs that began after this caller's write failed (a
			// successful one would have set covered first).
			err := s.failErr
			s.mu.Unlock()
			return 0, err
		case s.running:
			s.cond.Wait()
		case !waiting || s.failed != 0 || s.closed ||
			s.waitingNext < s.minShared && s.fileSyncing+1 < s.minShared && s.owing.Load() < int64(s.minShared):
			// A caller not waiting for the next syncfs had one of its
			// generation begin and end, which then either covered it or
			// failed (the cases above): it cannot get here, but its own
			// fsync would be correct if it did.
			return 0, s.fileSyncLocked(file, waiting)
		default:
			return s.runLocked()
		}
	}
}

// Shared reports whether a syncfs can be shared now (SyncAll): one was
// opened, none failed, and Close has not run.
func (s *SharedSync) Shared() bool {
	if s == nil || s.syncer == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed == 0 && !s.closed
}

// SyncAll returns once every file of the file system written before the
// call is durable, by a syncfs generation that began after it: the next
// one appending logs wait for, which this call may run itself. Callers
// with many small files to sync (the producer-state snapshots of a
// checkpoint) pay one syncfs instead of one fdatasync each. Where Shared
// is false it syncs nothing and fails with an error wrapping
// errors.ErrUnsupported; the caller then syncs its files itself, on the
// descriptors it wrote them with. Directory entries are not covered.
func (s *SharedSync) SyncAll() error {
	if s == nil || s.syncer == nil {
		return fmt.Errorf("log dir: no shared syncfs: %w", errors.ErrUnsupported)
	}
	s.mu.Lock()
	want := s.started.Load() + 1
	for {
		switch {
		case s.covered >= want:
			s.mu.Unlock()
			return nil
		case s.failed != 0 && want <= s.failed:
			err := s.failErr
			s.mu.Unlock()
			return err
		case s.failed != 0 || s.closed:
			s.mu.Unlock()
			return fmt.Errorf("log dir %s: syncfs no longer shared: %w", s.dir, errors.ErrUnsupported)
		case s.running:
			s.cond.Wait()
		default:
			_, err := s.runLocked()
			return err
		}
	}
}

// fileSyncLocked runs the caller's own fdatasync, in parallel with any
// other, and unlocks s.mu.
func (s *SharedSync) fileSyncLocked(file fileSyncer, counted bool) error {
	if counted {
		s.waitingNext--
	}
	s.fileSyncing++
	s.stats.FileSyncs++
	s.mu.Unlock()
	err := file.Sync()
	s.mu.Lock()
	s.fileSyncing--
	s.mu.Unlock()
	return err
}

// runLocked runs a syncfs for the callers waiting for it, the caller among
// them, and unlocks s.mu.
func (s *SharedSync) runLocked() (uint64, error) {
	gen, covers := s.beginLocked()
	s.mu.Unlock()
	err := s.syncer.SyncFS()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.endLocked(gen, covers, err)
}

// beginLocked marks a syncfs started: the generation it is, and how many
// waiting callers it covers.
func (s *SharedSync) beginLocked() (gen uint64, covers int) {
	covers = s.waitingNext
	s.waitingNext = 0
	s.running = true
	s.noteEarlyLocked()
	s.pendingRounds.Store(0)
	gen = s.started.Add(1)
	s.stats.SyncFS++
	s.stats.SharedRuns += int64(covers)
	return gen, covers
}

// endLocked records how syncfs generation gen ended and wakes the callers
// waiting for it.
func (s *SharedSync) endLocked(gen uint64, covers int, err error) (uint64, error) {
	s.running = false
	s.cond.Broadcast()
	defer s.noteEarlyLocked()
	if err != nil {
		s.failed = gen
		s.failErr = fmt.Errorf("syncfs of log dir %s for %d logs: %w", s.dir, covers, err)
		s.logger.Error("shared sync failed: the logs it covered are read-only, every log syncs its own file from now on", "dir", s.dir, "logs", covers, "err", err)
		return 0, s.failErr
	}
	s.covered = gen
	return gen, nil
}

// Written tells the SharedSync that a log published a round its callers
// will wait on later (Log.Write: a produce writing each of its
// partitions before it waits on any). Once minEarly such rounds were
// published since the last syncfs began, as many logs owe a sync
// (Log.owesSync), and none runs, it starts one on a goroutine of its
// own, so that the disk writes back the rounds written so far while the
// caller writes the rest: measured with 10,000 logs, a produce waiting
// for one syncfs after writing them all spent as long in the syncfs as
// in the writes, and syncfs' cost grows with the files and bytes it
// writes back (docs/testing.md). The waiters later
// find their rounds covered (SyncWritten: a syncfs of a later generation
// than writtenAt began after the write) or share the next syncfs; a
// failure fails them as a caller's own syncfs would. Nothing is
// acknowledged by this syncfs that the generation rule would not let
// acknowledge: it only starts a generation sooner.
func (s *SharedSync) Written() {
	// Both counts: rounds since the last syncfs began (one just ended
	// leaves its rounds owed until their waits run), and logs owing a
	// sync now (a few busy logs syncing their own files never begin a
	// syncfs, however many rounds they write).
	// noEarly last: while a syncfs runs, thousands of calls would each
	// take mu only to find it running (BenchmarkSharedSyncWrittenDuringSyncfs).
	if s == nil || s.syncer == nil || s.pendingRounds.Add(1) < s.minEarly || s.owing.Load() < s.minEarly || s.noEarly.Load() {
		return
	}
	s.mu.Lock()
	if s.running || s.closed || s.failed != 0 || s.pendingRounds.Load() < s.minEarly {
		s.mu.Unlock()
		return
	}
	gen, covers := s.beginLocked()
	s.stats.EarlySyncFS++
	s.mu.Unlock()
	go s.runEarly(gen, covers)
}

// noteEarlyLocked updates noEarly from what it mirrors.
func (s *SharedSync) noteEarlyLocked() {
	s.noEarly.Store(s.running || s.closed || s.failed != 0)
}

// runEarly is the syncfs Written started.
func (s *SharedSync) runEarly(gen uint64, covers int) {
	err := s.syncer.SyncFS()
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = s.endLocked(gen, covers, err) // its callers read the outcome in SyncWritten
}

// owe counts a log that starts (+1) or stops (-1) owing a sync.
func (s *SharedSync) owe(delta int64) {
	if s != nil {
		s.owing.Add(delta)
	}
}

// Stats returns the counts so far.
func (s *SharedSync) Stats() SharedSyncStats {
	if s == nil {
		return SharedSyncStats{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Close releases the file system handle once the sync running (if any)
// ends; a log still syncing after it (one a racing GetOrCreate opened)
// fdatasyncs its own file.
func (s *SharedSync) Close() error {
	if s == nil || s.syncer == nil {
		return nil
	}
	s.mu.Lock()
	s.closed = true
	s.noteEarlyLocked()
	for s.running {
		s.cond.Wait()
	}
	s.mu.Unlock()
	return s.syncer.Close()
}
