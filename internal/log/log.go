// Package log is the partition log: the append-only sequence of record
// batches of one partition, stored as Kafka stores it (segments of batches as
// they came off the wire, with sparse offset and time indexes).
//
// Invariants:
//   - offsets are dense and increasing: each append gets the offsets after
//     the previous one, assigned in place in the batch headers; only the
//     cleaner (cleaner.go, cleanup.policy=compact) removes records, and it
//     never renumbers them, so a compacted log has gaps that reads skip;
//   - an append returns only once its bytes are durable under the flush
//     policy (fsynced for FlushAlways), and concurrent appends share one
//     write and one fsync;
//   - a failed write or fsync is sticky: the log turns read-only, every
//     waiting and later append gets ErrStorage, and nothing written after
//     the failure is acknowledged (the page cache state is unknown);
//   - readers only see whole batches that were written; a read is a byte
//     range of one segment file, so the broker can send it as it is;
//   - after a crash, Open validates every batch from the last recovery point
//     and truncates a torn or corrupt tail; synced batches are never lost.
//
// The log knows nothing of replication or networking: the high watermark
// arrives as a read bound, leader epochs as an append option.
package log

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"sync"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// Options configure Open.
type Options struct {
	Config Config
	Clock  clock.Clock  // nil: the real clock
	Files  *FileCache   // shared open-file budget; nil: a private cache
	Logger *slog.Logger // nil: slog.Default()
	// RecoveryPoint is the offset below which everything was fsynced, from
	// the recovery-point checkpoint. Segments at or past it are validated
	// batch by batch on open. 0 validates everything.
	RecoveryPoint int64
	// LogStartOffset comes from the log-start-offset checkpoint
	// (DeleteRecords may have moved it inside the first segment).
	LogStartOffset int64
	// CleanShutdown says the previous Close completed, so the active
	// segment's index files can be trusted.
	CleanShutdown bool
	// FirstDirtyOffset comes from the cleaner-offset checkpoint: where the
	// records never compacted begin (0: from the log start).
	FirstDirtyOffset int64
	// RollJitter returns a random int64 in [0, n) for segment.jitter.ms;
	// nil: math/rand/v2. Tests pass a fixed source.
	RollJitter func(n int64) int64
	// FlushTime observes how long each fsync of an append round took, in
	// seconds (a Prometheus histogram); nil observes nothing.
	FlushTime Observer
	// SharedSync, shared by the logs of one log directory, lets their
	// append rounds share a syncfs (sharedsync.go); nil: each round
	// fdatasyncs its own segment.
	SharedSync *SharedSync
	// Journal, the log directory's write-ahead journal, makes small
	// append rounds durable under FlushAlways (append_journal.go); nil:
	// none. The manager sets it once a replay is done (setJournal).
	Journal *Journal
	// journalWriteback starts the write-back of journaled rounds'
	// segment bytes (writeback.go); set with Journal.
	journalWriteback *segmentWriteback
	// journalReplay says a journal replay follows the open: the active
	// segment's aborted-transaction entries past the recovered end are
	// kept until it is done (settleTxnIndexAfterReplay).
	journalReplay bool
}

// Observer takes one measurement (prometheus.Observer's shape, so the log
// needs no metrics package).
type Observer interface{ Observe(float64) }

// Log is one partition's log in its own directory.
type Log struct {
	fs     vfs.FS
	dir    string
	clock  clock.Clock
	files  *FileCache
	logger *slog.Logger
	// rollJitter is the random source of segment.jitter.ms, called by the
	// writer (roll) and under mu.
	rollJitter func(n int64) int64
	// flushTime times the fsyncs appends wait for; nil: not timed.
	flushTime Observer
	// sharedSync is Options.SharedSync.
	sharedSync *SharedSync
	// journal is this log's use of Options.Journal, under mu.
	journal logJournal
	// txnHeld is set from open until the journal's replay is done
	// (txnindex.go); under mu.
	txnHeld *txnHeld

	mu       sync.Mutex
	cond     sync.Cond // on mu: the writer finished a round
	cfg      Config
	segments []*segment // by base offset; the last is active

	logStartOffset int64
	nextOffset     int64 // next offset to assign, counting queued appends
	logEndOffset   int64 // offset after the last batch written (FlushAlways: and synced): what readers see
	// writtenEnd is the offset after the last batch written. It passes
	// logEndOffset only under FlushAlways, between a round's write and
	// its sync: bytes not yet durable are not shown to readers (nor to
	// followers, nor counted in the log end offset a follower reports).
	writtenEnd    int64
	recoveryPoint int64 // every offset below is fsynced
	lastSyncMs    int64
	// checkpointedBase is the active segment's base offset when the
	// manager last checkpointed this log's recovery point; set at open.
	checkpointedBase int64

	queue      []appendCall // appends with offsets assigned, not yet written
	spareQueue []appendCall
	writing    bool // a goroutine is writing the queue for everyone
	// syncing: a goroutine is fsyncing the active segment for everyone
	// (FlushAlways), without the lock, while a writer may write the next
	// round. syncsPaused: the writer is about to fsync or seal a segment
	// itself and waits for no sync to run (pauseSyncs); cleared when its
	// round is published.
	syncing, syncsPaused bool
	// writtenAt is sharedSync.Started() read when the last round was
	// published: a syncfs of a later generation covers that round.
	writtenAt uint64
	// owesSync: writtenEnd is past logEndOffset, and sharedSync counts
	// this log among those owing a sync (noteOwedLocked).
	owesSync      bool
	syncRequested bool // Flush asked the next round to fsync everything
	// unsyncedSealed are segments sealed without an fsync (flush policies
	// other than always); the recovery point stays below them until a
	// round syncs them (syncSealedRequested: the manager's tick, as Kafka
	// flushes a rolled segment in the background).
	unsyncedSealed      []*segment
	syncSealedRequested bool
	// pendingDeletes are retired segments' renamed files awaiting
	// file.delete.delay.ms (delete.go).
	pendingDeletes []pendingDelete
	err            error
	closed         bool

	round roundScratch // owned by the goroutine with writing set

	// Compaction (cleaner.go). cleanMu lets one clean of this log run at a
	// time; it is taken before mu. firstDirtyOffset is where the records
	// never compacted begin; cleanBound (the partition's high watermark)
	// is the offset the cleaner stays below, nil until the partition sets
	// it; deleteHorizonMs is the earliest tombstone delete horizon the
	// last clean kept (0: none), when a clean would remove tombstones.
	cleanMu          sync.Mutex
	swapping         bool // a swap's file operations run: the segment list must not change
	firstDirtyOffset int64
	truncations      int64 // counts truncations: a clean across one swaps nothing more
	cleanBound       func() int64
	deleteHorizonMs  int64
}

// Open opens (creating if needed) the log in dir and recovers it.
func Open(fsys vfs.FS, dir string, opts Options) (*Log, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, fmt.Errorf("log %s: %w", dir, err)
	}
	l := &Log{fs: fsys, dir: dir, clock: opts.Clock, files: opts.Files, logger: opts.Logger, cfg: opts.Config,
		rollJitter: opts.RollJitter, flushTime: opts.FlushTime, sharedSync: opts.SharedSync,
		journal: logJournal{j: opts.Journal, name: filepath.Base(dir), openedStart: opts.LogStartOffset,
			writeback: opts.journalWriteback}}
	if opts.Journal != nil {
		// A log of the name deleted before may have rounds in files not
		// yet checkpointed: their ends are not this log's.
		l.journal.fencedAt = opts.Journal.LastTicket()
	}
	if l.rollJitter == nil {
		l.rollJitter = rand.Int64N
	}
	if l.clock == nil {
		l.clock = clock.Real()
	}
	if l.files == nil {
		l.files = NewFileCache(DefaultOpenSealedSegments)
	}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	l.logger = l.logger.With("log", dir)
	l.cond.L = &l.mu
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("log %s: %w", dir, err)
	}
	if err := l.load(opts); err != nil {
		l.closeFiles()
		return nil, fmt.Errorf("log %s: %w", dir, err)
	}
	l.checkpointedBase = l.active().baseOffset
	return l, nil
}

func (l *Log) nowMs() int64 { return l.clock.Now().UnixMilli() }

// load reads the segments on disk, recovers those not known to be synced, and
// leaves the last one active.
func (l *Log) load(opts Options) error {
	bases, txnIndexes, err := l.listSegments()
	if err != nil {
		return err
	}
	if len(bases) == 0 {
		start := max(opts.LogStartOffset, 0)
		if err := l.createActiveSegment(start); err != nil {
			return err
		}
		l.logStartOffset, l.nextOffset, l.logEndOffset, l.recoveryPoint = start, start, start, start
		l.writtenEnd = start
		l.firstDirtyOffset = start
		return nil
	}
	if err := l.loadSegments(bases, opts); err != nil {
		return err
	}
	if err := l.loadTxnIndexes(txnIndexes, opts.journalReplay); err != nil {
		return err
	}
	active := l.active()
	active.rollJitterMs = l.cfg.rollJitterMs(l.rollJitter)
	l.logEndOffset, l.nextOffset, l.writtenEnd = active.nextOffset, active.nextOffset, active.nextOffset
	l.logStartOffset = min(max(opts.LogStartOffset, l.segments[0].baseOffset), l.logEndOffset)
	l.recoveryPoint = l.logEndOffset
	l.lastSyncMs = l.nowMs()
	l.firstDirtyOffset = min(max(opts.FirstDirtyOffset, l.logStartOffset), l.logEndOffset)
	return nil
}

// listSegments returns the base offsets of the .log files, and of the
// segments with an aborted-transaction index, removing files that a crash
// can leave behind: temporary files, orphaned indexes and segments renamed
// for delayed deletion.
func (l *Log) listSegments() (bases []int64, txnIndexes map[int64]bool, err error) {
	names, err := l.fs.List(l.dir)
	if err != nil {
		return nil, nil, err
	}
	if err := l.recoverCleanerFiles(names); err != nil {
		return nil, nil, err
	}
	if names, err = l.fs.List(l.dir); err != nil {
		return nil, nil, err
	}
	logs := map[int64]bool{}
	for _, name := range names {
		if base, ok := parseSegmentFileName(name, logSuffix); ok {
			logs[base] = true
			bases = append(bases, base)
		}
	}
	txnIndexes = map[int64]bool{}
	for _, name := range names {
		if l.isOrphan(name, logs) {
			if err := l.fs.Remove(l.path(name)); err != nil {
				return nil, nil, fmt.Errorf("remove leftover %s: %w", name, err)
			}
		} else if base, ok := parseSegmentFileName(name, txnIndexSuffix); ok {
			txnIndexes[base] = true
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	return bases, txnIndexes, nil
}

func (l *Log) isOrphan(name string, logs map[int64]bool) bool {
	if _, ok := parseSegmentFileName(name, tmpSuffix); ok {
		return true
	}
	if isDeletedLeftover(name) {
		return true // retired before a crash or stop; its delay is moot now
	}
	if isTxnIndexLeftover(name) {
		return true // a rewrite a crash interrupted; the old file stands
	}
	for _, suffix := range []string{indexSuffix, timeIndexSuffix, txnIndexSuffix} {
		if base, ok := parseSegmentFileName(name, suffix); ok {
			return !logs[base]
		}
	}
	return false
}

const tmpSuffix = vfs.TempSuffix

func (l *Log) path(name string) string { return l.dir + "/" + name }

// loadSegments opens every segment: those wholly below the recovery point
// are trusted (their indexes load lazily), the rest are scanned and
// validated. The first invalid batch ends the log: it and everything after
// it, including later segments, is removed.
func (l *Log) loadSegments(bases []int64, opts Options) error {
	now := l.nowMs()
	for i, base := range bases {
		s := newSegment(l.fs, l.files, l.dir, base, now, l.cfg.IndexIntervalBytes)
		last := i == len(bases)-1
		var truncated bool
		var err error
		switch {
		case !last && bases[i+1] <= opts.RecoveryPoint:
			err = l.loadTrustedSealed(s, bases[i+1])
		case last && opts.CleanShutdown && opts.RecoveryPoint > base:
			err = l.loadCleanActive(s)
		default:
			truncated, err = l.recoverSegment(s, opts.RecoveryPoint, last)
		}
		if err != nil {
			// s is not in l.segments yet, so Open's cleanup would miss a
			// file its load already pinned (the clean-shutdown path).
			s.file.closeFile()
			return err
		}
		if !last && s.nextOffset != bases[i+1] {
			// The next segment starts inside this one (it cannot be right),
			// or after its end: a roll that did not fsync (flush policies
			// other than always) left the new segment durable while this
			// one lost its unsynced tail at a batch boundary. What follows
			// a hole was never durable, and offsets must stay dense.
			l.logger.Warn("segment does not end where the next one starts; dropping later segments", "segment", base, "end", s.nextOffset, "next", bases[i+1])
			truncated = true
		}
		l.segments = append(l.segments, s)
		if truncated || last {
			return l.finishLoad(bases[i+1:])
		}
	}
	return nil
}

// finishLoad removes the segments after a corrupt one and makes the last
// remaining segment active.
func (l *Log) finishLoad(dropped []int64) error {
	for _, base := range dropped {
		s := newSegment(l.fs, l.files, l.dir, base, 0, l.cfg.IndexIntervalBytes)
		if err := removeSegmentFiles(l.fs, s); err != nil {
			return err
		}
	}
	if len(dropped) > 0 {
		if err := l.syncDir(); err != nil {
			return err
		}
	}
	active := l.active()
	if active.sealed {
		if err := l.unseal(active); err != nil {
			return err
		}
	} else if err := l.pinActive(active); err != nil {
		return err
	}
	return l.restoreSegmentAge(active)
}

// restoreSegmentAge dates a reopened active segment from its first batch,
// as Kafka does for segment.ms, so that restarting a broker more often than
// segment.ms does not keep a quiet partition from ever rolling (and its old
// data from ever expiring). The open time stays the bound: a producer clock
// in the future cannot postpone a roll.
func (l *Log) restoreSegmentAge(s *segment) error {
	if s.size == 0 {
		return nil
	}
	var buf [record.HeaderSize]byte
	if _, err := s.activeFile.ReadAt(buf[:], 0); err != nil {
		return fmt.Errorf("segment %020d: read first batch: %w", s.baseOffset, err)
	}
	if h, err := record.ParseHeader(buf[:]); err == nil && h.MaxTimestamp >= 0 {
		s.createdMs = min(s.createdMs, h.MaxTimestamp)
	}
	return nil
}

// pinActive keeps the active segment's file open for the writer.
func (l *Log) pinActive(s *segment) error {
	f, err := s.file.pin()
	if err != nil {
		return err
	}
	s.activeFile = f
	return nil
}

// loadTrustedSealed sets up a segment below the recovery point from file
// sizes and the last time index entry, without reading its batches.
func (l *Log) loadTrustedSealed(s *segment, nextBase int64) error {
	info, err := l.fs.Stat(s.path(logSuffix))
	if err != nil {
		return err
	}
	s.size, s.nextOffset, s.sealed = info.Size(), nextBase, true
	// Through sheddingFS, and a shortage that shedding could not end
	// fails the load (shortOfDescriptors) rather than cost a rebuild
	// from the whole .log file.
	times, err := readWholeFile(l.shedding(), s.path(timeIndexSuffix))
	if err := shortOfDescriptors(err); err != nil {
		return fmt.Errorf("segment %020d: read %s: %w", s.baseOffset, timeIndexSuffix, err)
	}
	// Sealing always leaves a time entry with the segment's largest
	// timestamp. Without one, maxTimestamp would stay -1 and retention.ms
	// would delete the segment at once: an empty file is damage.
	if err == nil && len(times) > 0 && checkTimeIndex(times, s.relOffset(nextBase-1)) == nil {
		x := timeIndex{buf: times}
		if ts, rel, ok := x.last(); ok {
			s.maxTimestamp, s.offsetOfMaxTimestamp = ts, s.baseOffset+int64(rel)
		}
		s.file.sealedSize, s.file.sealedNextOffset = s.size, s.nextOffset
		return nil
	}
	// The time index is lost: rebuild both from the data (synced, so only
	// headers are read).
	idx, err := rebuildSealedIndexes(s, s.size)
	if err != nil {
		return err
	}
	if ts, rel, ok := idx.times.last(); ok {
		s.maxTimestamp, s.offsetOfMaxTimestamp = ts, s.baseOffset+int64(rel)
	}
	s.file.sealedSize, s.file.sealedNextOffset = s.size, s.nextOffset
	return nil
}

// loadCleanActive trusts the index files the last Close wrote for the active
// segment and reads only the batches after the last index entry to find the
// end. Anything inconsistent falls back to full recovery.
func (l *Log) loadCleanActive(s *segment) error {
	if err := l.pinActive(s); err != nil {
		return err
	}
	ok, err := l.tryCleanActive(s)
	if err != nil || ok {
		return err
	}
	l.logger.Warn("index files of a cleanly closed segment are inconsistent; recovering it", "segment", s.baseOffset)
	s.offsets, s.times = offsetIndex{}, timeIndex{}
	_, err = l.recoverSegment(s, 0, true)
	return err
}

func (l *Log) tryCleanActive(s *segment) (bool, error) {
	ref, err := s.file.acquire()
	if err != nil {
		return false, err
	}
	defer ref.release()
	size, err := ref.file.Size()
	if err != nil {
		return false, err
	}
	fs := l.shedding() // failing costs a full recovery
	offsets, err1 := readWholeFile(fs, s.path(indexSuffix))
	times, err2 := readWholeFile(fs, s.path(timeIndexSuffix))
	if err1 != nil || err2 != nil || checkOffsetIndex(offsets, size) != nil || checkTimeIndex(times, math.MaxInt32) != nil {
		return false, nil
	}
	st := emptyIndexState(s.baseOffset)
	from := int64(0)
	if x := (offsetIndex{buf: offsets}); x.len() > 0 {
		rel, pos := x.entry(x.len() - 1)
		from, st.size, st.nextOffset = int64(pos), int64(pos), s.baseOffset+int64(rel)
	}
	if x := (timeIndex{buf: times}); x.len() > 0 {
		ts, rel, _ := x.last()
		st.maxTimestamp, st.offsetOfMaxTimestamp, st.lastTimeIndexTs = ts, s.baseOffset+int64(rel), ts
	}
	res, err := scanSegment(ref.file, st, from, size, math.MaxInt64, l.cfg.IndexIntervalBytes, offsets, times)
	if err != nil || res.stop != nil || res.state.size != size {
		return false, err
	}
	s.offsets, s.times = offsetIndex{buf: res.offsets}, timeIndex{buf: res.times}
	s.setIndexState(res.state)
	return true, nil
}

// recoverSegment scans a segment from its start, validating batches from
// the recovery point on, rebuilds its indexes, and truncates the file at the
// first invalid batch. It reports whether data was cut. A recovered segment
// that is not the last is sealed with fresh index files.
func (l *Log) recoverSegment(s *segment, recoveryPoint int64, last bool) (bool, error) {
	// Out of descriptors, close an idle file and try again, as every
	// other open of a segment file does: at start-up after a crash,
	// thousands of logs recover under the process's descriptor limit.
	f, err := l.shedding().OpenReadWrite(s.path(logSuffix))
	if err != nil {
		return false, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return false, err
	}
	res, err := scanSegment(f, emptyIndexState(s.baseOffset), 0, size, recoveryPoint, l.cfg.IndexIntervalBytes, nil, nil)
	if err != nil {
		return false, err
	}
	s.offsets, s.times = offsetIndex{buf: res.offsets}, timeIndex{buf: res.times}
	s.setIndexState(res.state)
	truncated := res.stop != nil
	if truncated {
		l.logger.Warn("truncating invalid log tail", "segment", s.baseOffset, "valid_bytes", res.state.size, "file_bytes", size, "reason", res.stop)
		if err := f.Truncate(res.state.size); err != nil {
			return false, err
		}
	}
	// What survived a crash may sit only in the page cache: make it durable
	// before it counts as recovered. Below the recovery point it was
	// fsynced already: a log idle since its last checkpoint costs no
	// fsync (with 10,000 partitions, 10,000 fsyncs after every crash).
	if truncated || res.state.nextOffset > recoveryPoint {
		if err := f.Sync(); err != nil {
			return false, err
		}
	}
	if last || truncated {
		return truncated, nil
	}
	return false, l.seal(s)
}

// seal writes a segment's final index files (during recovery, where no
// other goroutine sees the segment yet) and marks it sealed.
func (l *Log) seal(s *segment) error {
	st := s.indexState()
	tail := st.appendTimeEntry(nil)
	if err := writeIndexes(l.fs, s, nil, tail, true); err != nil {
		return err
	}
	l.markSealedLocked(s, nil, tail)
	return nil
}

// markSealedLocked merges the last index entries into a segment whose index
// files were written, marks it sealed and hands its indexes to the file
// cache, which owns a sealed segment's indexes from now on.
func (l *Log) markSealedLocked(s *segment, extraOffsets, extraTimes []byte) {
	s.offsets.buf = append(s.offsets.buf, extraOffsets...)
	s.times.buf = append(s.times.buf, extraTimes...)
	s.sealed = true
	s.activeFile = nil
	s.file.unpin(&sealedIndexes{offsets: s.offsets, times: s.times}, s.size, s.nextOffset)
	s.offsets, s.times = offsetIndex{}, timeIndex{}
}

// unseal makes a sealed segment active again (after truncation removed the
// segments after it): its indexes move back into memory.
func (l *Log) unseal(s *segment) error {
	ref, err := s.file.acquire()
	if err != nil {
		return err
	}
	idx := ref.indexes
	ref.release()
	if err := l.pinActive(s); err != nil {
		return err
	}
	s.offsets = offsetIndex{buf: append([]byte(nil), idx.offsets.buf...)}
	s.times = timeIndex{buf: append([]byte(nil), idx.times.buf...)}
	s.sealed = false
	// Restart the interval count at the last indexed batch.
	s.bytesSinceIndex = s.size
	if n := s.offsets.len(); n > 0 {
		_, pos := s.offsets.entry(n - 1)
		s.bytesSinceIndex = s.size - int64(pos)
	}
	return nil
}

// createActiveSegment creates an empty segment at baseOffset and makes it
// the active one. The directory is synced so the new files survive a crash.
func (l *Log) createActiveSegment(baseOffset int64) error {
	s := newSegment(l.fs, l.files, l.dir, baseOffset, l.nowMs(), l.cfg.IndexIntervalBytes)
	s.rollJitterMs = l.cfg.rollJitterMs(l.rollJitter)
	if err := createSegmentFiles(l.fs, s, l.cfg); err != nil {
		return err
	}
	if err := l.syncDir(); err != nil {
		return fmt.Errorf("sync %s: %w", l.dir, err)
	}
	if err := l.pinActive(s); err != nil {
		return err
	}
	l.segments = append(l.segments, s)
	return nil
}

// syncDir fsyncs the log's directory, which opens it first. Every
// directory sync goes through here (writeTxnIndexLocked's, inside
// vfs.WriteFileAtomic, through the same sheddingFS): an open that finds
// no descriptor (other logs' files and the sockets share the budget)
// sheds idle files and tries again, as a segment file's open does, instead of failing a roll, a
// truncation, a deletion or a clean and turning the log read-only. Only
// the open fails so, so a failed fsync is never retried.
func (l *Log) syncDir() error { return l.shedding().SyncDir(l.dir) }

// shedding is the log's file system with the file cache's rule for an
// open that finds no descriptor: shed idle files and try again.
func (l *Log) shedding() sheddingFS { return sheddingFS{FS: l.fs, cache: l.files} }

func (l *Log) active() *segment { return l.segments[len(l.segments)-1] }

// LogEndOffset is the offset the next appended record will get, counting
// only appends that have been written.
func (l *Log) LogEndOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.logEndOffset
}

// LogStartOffset is the first offset a reader may fetch.
func (l *Log) LogStartOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.logStartOffset
}

// RecoveryPoint is the offset below which everything is fsynced: what the
// recovery-point checkpoint records.
func (l *Log) RecoveryPoint() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.recoveryPoint
}

// activeBaseOffset is the active segment's base offset: it changes when the
// log rolls (or is truncated or emptied).
func (l *Log) activeBaseOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.active().baseOffset
}

// setCheckpointedBase records the active base offset a written checkpoint
// saw, and rolledSinceCheckpoint compares with it (see the manager's).
func (l *Log) setCheckpointedBase(base int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.checkpointedBase = base
}

func (l *Log) rolledSinceCheckpoint() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.active().baseOffset != l.checkpointedBase
}

// Dir is the log's directory.
func (l *Log) Dir() string { return l.dir }

// Size is the number of bytes in all segments.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var total int64
	for _, s := range l.segments {
		total += s.size
	}
	return total
}

// NumSegments is the number of segments, the active one included.
func (l *Log) NumSegments() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.segments)
}

// Config returns the log's configuration.
func (l *Log) Config() Config {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg
}

// SetConfig changes the configuration, as an alter-configs does; it takes
// effect from the next append, roll or retention pass.
func (l *Log) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("log %s: %w", l.dir, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg = cfg
	return nil
}

// Err returns the sticky storage error, if any.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// waitIdleLocked waits until no round is being written and the queue is
// empty, so the caller may change segments. It fails on a closed log.
func (l *Log) waitIdleLocked() error {
	if l.closed {
		return fmt.Errorf("log %s: %w", l.dir, ErrClosed)
	}
	// A failed log's queue is never written (its waiters already have the
	// error), so it counts as idle: Close must still close the files.
	idle := func() bool {
		return l.err != nil && !l.writing && !l.syncing ||
			!l.writing && !l.syncing && len(l.queue) == 0 && l.writtenEnd == l.logEndOffset
	}
	for {
		if err := l.driveLocked(idle, nil); err != nil {
			return err
		}
		if !l.swapping {
			break
		}
		l.cond.Wait() // the cleaner's swap broadcasts when it is done
	}
	if l.closed { // another Close ran while this one waited
		return fmt.Errorf("log %s: %w", l.dir, ErrClosed)
	}
	return nil
}

// Close flushes everything, writes the active segment's indexes and closes
// the files. Appends waiting on the log complete first; later calls get
// ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.waitIdleLocked(); err != nil {
		return err
	}
	if l.err == nil {
		// Sync what the policy left unsynced, sealed segments included.
		l.syncRequested = true
		l.writeLocked()
	}
	l.closed = true
	l.noteOwedLocked()
	// A waiter may have become the syncer while the round above was
	// written; closeActiveLocked's fsync must not run beside its (closed
	// set, no new one starts).
	for l.syncing {
		l.cond.Wait()
	}
	var err error
	if l.err == nil {
		err = l.closeActiveLocked()
	} else {
		err = l.err
	}
	l.closeFiles()
	l.cond.Broadcast()
	return err
}

func (l *Log) closeActiveLocked() error {
	s := l.active()
	if err := s.activeFile.Sync(); err != nil {
		return fmt.Errorf("log %s: sync: %w", l.dir, err)
	}
	l.recoveryPoint, l.logEndOffset = l.writtenEnd, l.writtenEnd
	st := s.indexState()
	tail := st.appendTimeEntry(nil)
	return writeIndexes(l.fs, s, nil, tail, true)
}

func (l *Log) closeFiles() {
	for _, s := range l.segments {
		s.file.closeFile()
	}
}

// Delete closes the log and removes its directory.
func (l *Log) Delete() error {
	if err := l.Close(); err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrStorage) {
		return err
	}
	if err := l.fs.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("delete log %s: %w", l.dir, err)
	}
	return nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
