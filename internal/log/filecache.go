package log

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/sluicelog/sluice/internal/vfs"
)

// File-handle policy. A broker may host tens of thousands of partitions but
// the process has a fixed descriptor budget, so:
//
//   - the active segment's .log file ("pinned": never given indexes by
//     the cache) is open while it is written or read; once idle it waits
//     in a second LRU, bounded by the active limit, and the least recently
//     used is closed past it. The writer reaches it through an activeFile
//     handle that reopens it on demand, so 10,000 idle partitions do not
//     hold 10,000 descriptors;
//   - index files are never held open: the active segment's indexes live in
//     memory and are written out when the segment is sealed or the log closed;
//   - a sealed segment's .log file is opened when a reader needs it, together
//     with its indexes loaded into memory, and kept in a shared LRU bounded
//     by FileCache's limit; the least recently used unreferenced one is
//     closed (and its indexes dropped) when the limit is passed;
//   - a file holding bytes no fsync has covered yet (flush policies other
//     than always: an active segment between syncs, a segment sealed at a
//     roll before the tick that syncs it) is fsynced before it is closed,
//     through the descriptor that wrote it, by the goroutine whose open or
//     release passed the bound, after it dropped the cache's lock. A
//     writeback error is reported to the descriptors open when it happens
//     (and to one opened later only if nobody saw it and the kernel kept
//     the inode, which it may evict once no descriptor is open; NFS reports
//     it at close, whose error nobody reads), so closing first could turn
//     a lost write into a successful fsync. A failed fsync is kept on the
//     file and returned by the log's next write or sync of it, which makes
//     the log read-only as its own failed fsync would; a log's fsync of a
//     file the cache is fsyncing waits for it, as only one of two fsyncs
//     of a descriptor at once may see the error. Keeping such files
//     open instead would let a broker with more partitions written under
//     flush.policy=never than the budget run out of descriptors, and a
//     failed open of the active segment fails the write round, which is
//     sticky. The price: past the bound, never pays about an fsync per
//     append, of another log's file (BenchmarkFileCacheManyLogs);
//   - an open that fails for want of descriptors (EMFILE, ENFILE: sockets
//     and other files share the budget) closes the least recently used
//     idle file, syncing it first if needed, and tries again, until the
//     open succeeds or nothing idle is left: a transient shortage must not
//     turn a healthy log read-only. That fsync, too, runs without the
//     cache's lock; only the file's own users wait for it, so that it is
//     closed once synced and the descriptor freed. A roll's opens of files
//     outside the cache (the new segment's, index files, the directory
//     for its fsync) and an index rebuild's do the same (sheddingFS);
//   - every reader holds a reference while it uses a file, so neither
//     eviction nor deletion (retention, truncation) closes a file under it:
//     a deleted segment's file is closed when its last reference goes;
//   - opening a file and loading its indexes run without the cache's lock:
//     with more partitions written round-robin than the budget keeps open,
//     nearly every append reopens its file, and an openat plus an index
//     load under one lock serialised every log of the broker behind it.
//     The opener marks the file opening and counts it against the bound
//     first; whoever else needs that file, or would pin, unpin or remove
//     it, waits for that one open, and nothing else waits at all (a
//     removal must not let a sealed segment's index rebuild write its
//     files back after they were deleted). Closing a descriptor also
//     happens after the lock is dropped, by the goroutine that decided it.
//
// Lock order: Log.mu before FileCache.mu. FileCache never calls into a Log.

// DefaultOpenSealedSegments is the default limit of sealed segment files open
// at once across all logs sharing a FileCache.
const DefaultOpenSealedSegments = 1024

// DefaultOpenActiveSegments is the default limit of idle active segment files
// kept open across all logs sharing a FileCache.
const DefaultOpenActiveSegments = 4096

// fileKind tells the cache's two budgets apart.
type fileKind int

const (
	sealedKind fileKind = iota
	activeKind
)

// Idle lists by whether the file holds bytes no fsync covered.
const (
	idleSynced = iota
	idleUnsynced
)

// FileCache bounds the segment files open at once across logs.
type FileCache struct {
	limit [2]int // by fileKind

	mu sync.Mutex
	// idle holds open files nobody references, by kind and sync state;
	// front = most recently used.
	idle [2][2]idleList
	open [2]int // files open, by kind (idle, referenced or being synced)
	// evicting counts files being fsynced to be closed, by the kind they
	// had then: they are on their way out of the budget.
	evicting [2]int
	syncs    []evictSync // fsyncs for unlock to run
	closes   []vfs.File  // descriptors for unlock to close
	// closing counts descriptors a goroutine took from closes and has
	// not closed yet, closed those it has (read without the lock too):
	// a shed waits for the ones in flight, whoever runs them, and tells
	// an open out of descriptors whether one came back (shed).
	closing int
	closed  atomic.Int64
	// evicted is broadcast each time an eviction's fsync is noted: the
	// log's own fsync of a file waits for the cache's (awaitEvictionLocked);
	// and each time closes taken from the queue are done (shed waits).
	evicted sync.Cond
	// opened is broadcast when an open (openLocked) ends, well or not:
	// others needing the same file, and pin and unpin, wait for it.
	opened sync.Cond
	// openWaits counts waits for another goroutine's open of the same
	// file: the opens the cache saved (tests watch it).
	openWaits int64
}

// evictSync is an fsync an eviction asked for: the file is held by a
// reference until it is done.
type evictSync struct {
	sf   *segmentFile
	file vfs.File
	gen  int64 // the write generation it covers
	kind fileKind
	shed bool // for an open out of descriptors: close it, bound or not
}

// NewFileCache returns a cache keeping at most limit sealed segment files
// open while unreferenced, and DefaultOpenActiveSegments idle active ones.
// Referenced files may briefly exceed it.
func NewFileCache(limit int) *FileCache {
	return NewFileCacheWithActive(limit, DefaultOpenActiveSegments)
}

// NewFileCacheWithActive is NewFileCache with a limit of idle active segment
// files too. Active files in use (being written or read) are never closed,
// so they may exceed it.
func NewFileCacheWithActive(limit, activeLimit int) *FileCache {
	c := &FileCache{limit: [2]int{max(limit, 1), max(activeLimit, 1)}}
	c.evicted.L = &c.mu
	c.opened.L = &c.mu
	return c
}

// SetLimits changes both bounds (see NewFileCacheWithActive) while the
// cache is in use, closing idle files past a lowered one at once, after
// an fsync if they hold unsynced bytes (run by this caller): the node
// shrinks the budget as client connections take descriptors.
func (c *FileCache) SetLimits(sealed, active int) {
	c.mu.Lock()
	defer c.unlock()
	c.limit = [2]int{max(sealed, 1), max(active, 1)}
	c.evictLocked(sealedKind)
	c.evictLocked(activeKind)
}

// Limits reports the bounds in force: sealed, then idle active files.
func (c *FileCache) Limits() (sealed, active int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.limit[sealedKind], c.limit[activeKind]
}

// OpenFiles reports how many sealed segment files are open.
func (c *FileCache) OpenFiles() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open[sealedKind]
}

// OpenActiveFiles reports how many active segment files are open.
func (c *FileCache) OpenActiveFiles() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open[activeKind]
}

// sealedIndexes are a sealed segment's indexes, loaded with its file and
// immutable afterwards.
type sealedIndexes struct {
	offsets offsetIndex
	times   timeIndex
}

// segmentFile is a segment's .log file as the cache sees it.
type segmentFile struct {
	cache *FileCache
	fs    vfs.FS
	path  string
	// loadIndexes reads a sealed segment's index files; set by the segment.
	loadIndexes func(size, nextOffset int64) (*sealedIndexes, error)

	// Guarded by cache.mu.
	file    vfs.File
	indexes *sealedIndexes // sealed segments only
	// A sealed segment's size and next offset, for loading its indexes
	// without Log.mu (a truncation may unseal the segment concurrently).
	sealedSize, sealedNextOffset int64
	refs                         int
	pinned                       bool // the active segment: indexes in the Log, not here
	removed                      bool // deleted: never reopened, closed on last release
	evicting                     bool // an eviction's fsync holds it
	// shedding: the eviction's fsync is a shed's (an open out of
	// descriptors), which closes the file once done: users of the file
	// wait for it (waitShedLocked) rather than keep it open.
	shedding bool
	// opening: a goroutine is opening the file without the lock; it is
	// counted open already (cache.open) and file stays nil until done.
	opening bool
	// The idle list the file is on, and its neighbours there.
	idleOn             *idleList
	idlePrev, idleNext *segmentFile
	// The file's write generations: written counts writes begun, synced
	// the newest generation an fsync covered. The file is closed without
	// an fsync only when they are equal. writesInFlight counts writes
	// begun and not done: an fsync that starts during one (the log syncs
	// a round while the next is written) covers only the generations
	// before it (the log has one writer, so the one in flight is newest).
	written, synced int64
	writesInFlight  int64
	// syncErr is an fsync the cache ran that failed: every later write
	// and sync of the file returns it.
	syncErr error
}

func (sf *segmentFile) kind() fileKind {
	if sf.pinned {
		return activeKind
	}
	return sealedKind
}

// unsyncedLocked says whether closing the file now could lose a writeback
// error: bytes were written since the last fsync and none failed yet.
func (sf *segmentFile) unsyncedLocked() bool {
	return sf.written != sf.synced && sf.syncErr == nil
}

// idleList is an LRU of idle files linked through the files themselves,
// so parking a file after each write or read allocates nothing.
type idleList struct {
	head, tail *segmentFile // head = most recently used
}

// insert links sf at the front (most recently used) or the back.
func (l *idleList) insert(sf *segmentFile, front bool) {
	sf.idleOn = l
	switch {
	case l.head == nil:
		l.head, l.tail = sf, sf
	case front:
		sf.idleNext, l.head.idlePrev, l.head = l.head, sf, sf
	default:
		sf.idlePrev, l.tail.idleNext, l.tail = l.tail, sf, sf
	}
}

func (l *idleList) remove(sf *segmentFile) {
	if sf.idlePrev != nil {
		sf.idlePrev.idleNext = sf.idleNext
	} else {
		l.head = sf.idleNext
	}
	if sf.idleNext != nil {
		sf.idleNext.idlePrev = sf.idlePrev
	} else {
		l.tail = sf.idlePrev
	}
	sf.idleOn, sf.idlePrev, sf.idleNext = nil, nil, nil
}

// fileRef is a reference to an open segment file. Release it exactly once.
type fileRef struct {
	sf      *segmentFile
	file    vfs.File
	indexes *sealedIndexes
}

// acquire opens the file if needed and takes a reference.
func (sf *segmentFile) acquire() (fileRef, error) {
	c := sf.cache
	c.mu.Lock()
	defer c.unlock()
	if err := sf.openLocked(); err != nil {
		if errors.Is(err, errFileRemoved) {
			return fileRef{}, fmt.Errorf("segment %s: %w", sf.path, ErrOffsetOutOfRange)
		}
		return fileRef{}, err
	}
	sf.unlistLocked()
	sf.refs++
	return fileRef{sf: sf, file: sf.file, indexes: sf.indexes}, nil
}

func (sf *segmentFile) unlistLocked() {
	if sf.idleOn != nil {
		sf.idleOn.remove(sf)
	}
}

// parkLocked puts an open file nobody references into its idle list (at
// the front: most recently used; or the back: next to go) and closes
// files past the bound; a removed one is closed at once.
func (sf *segmentFile) parkLocked(front bool) {
	if sf.refs > 0 || sf.file == nil || sf.evicting {
		return
	}
	if sf.removed {
		sf.closeLocked()
		return
	}
	sf.unlistLocked()
	state := idleSynced
	if sf.unsyncedLocked() {
		state = idleUnsynced
	}
	sf.cache.idle[sf.kind()][state].insert(sf, front)
	sf.cache.evictLocked(sf.kind())
}

// evictLocked closes the least recently used idle files of a kind past its
// bound. Synced files go first; an unsynced one is handed to an fsync that
// unlock runs, which parks it again to be closed.
func (c *FileCache) evictLocked(k fileKind) {
	for c.open[k]-c.evicting[k] > c.limit[k] {
		if sf := c.idle[k][idleSynced].tail; sf != nil {
			sf.closeLocked()
			continue
		}
		sf := c.idle[k][idleUnsynced].tail
		if sf == nil {
			return
		}
		sf.startEvictSyncLocked(false)
	}
}

// startEvictSyncLocked hands an idle unsynced file to an fsync that unlock
// runs, holding it by a reference meanwhile. The file counts as on its way
// out of its bound; shed says to close it once synced even if the bound
// has room (an open is out of descriptors).
func (sf *segmentFile) startEvictSyncLocked(shed bool) {
	c, k := sf.cache, sf.kind()
	sf.unlistLocked()
	sf.evicting, sf.shedding = true, shed
	sf.refs++
	c.evicting[k]++
	c.syncs = append(c.syncs, evictSync{sf: sf, file: sf.file, gen: sf.written, kind: k, shed: shed})
}

// unlock releases the lock, first running the fsyncs and closes
// evictions asked for without it: one log's fsync must not stall every
// other log's file operations.
func (c *FileCache) unlock() {
	c.runPendingLocked()
	c.mu.Unlock()
}

// runPendingLocked runs the fsyncs and closes queued under the lock,
// dropping it meanwhile, until none is left. Every goroutine that queues
// some runs them before it lets go of the lock for good (unlock) or waits,
// so none is left behind; any one may run another's. Each fsync is noted
// as soon as it returns: a log waiting to fsync one file of a batch
// (awaitEvictionLocked) must not wait for the rest, and a lowered bound
// may evict thousands at once.
func (c *FileCache) runPendingLocked() {
	for len(c.syncs) > 0 || len(c.closes) > 0 {
		jobs, closes := c.syncs, c.closes
		c.syncs, c.closes = nil, nil
		c.closing += len(closes)
		c.mu.Unlock()
		for _, f := range closes {
			f.Close()
		}
		if len(closes) > 0 {
			// Before the fsyncs: a shed waits for these descriptors,
			// not for other files' disk flushes.
			c.mu.Lock()
			c.closing -= len(closes)
			c.closed.Add(int64(len(closes)))
			c.evicted.Broadcast()
			c.mu.Unlock()
		}
		for _, j := range jobs {
			err := j.file.Sync()
			c.mu.Lock()
			c.noteEvictSyncLocked(j, err)
			c.mu.Unlock()
		}
		c.mu.Lock()
	}
}

// noteEvictSyncLocked ends an eviction's fsync: the file is parked again,
// to be closed if still past the bound (a shed's at once: nobody could
// take it meanwhile), and the log's fsync, the shed and the file's users
// waiting for it go on.
func (c *FileCache) noteEvictSyncLocked(j evictSync, err error) {
	sf := j.sf
	sf.refs--
	sf.evicting, sf.shedding = false, false
	c.evicting[j.kind]--
	sf.noteSyncLocked(j.gen, err)
	sf.parkLocked(false)
	if j.shed && sf.idleOn != nil && !sf.unsyncedLocked() {
		sf.closeLocked()
	}
	c.evicted.Broadcast()
}

// waitShedLocked waits until no shed is fsyncing the file to close it.
// A shed must free a descriptor: were a reader or writer to take the file
// back during the fsync, the open out of descriptors could find nothing
// else idle and fail, and an active segment's failed open fails its log's
// write round. Only the file's own users wait, as they waited for the
// whole cache when the shed fsynced under its lock. Pending fsyncs and
// closes run first, as in waitOpenedLocked.
func (sf *segmentFile) waitShedLocked() {
	for sf.shedding {
		sf.cache.runPendingLocked()
		if sf.shedding {
			sf.cache.evicted.Wait()
		}
	}
}

// waitOpenedLocked waits for sf's open in flight to end, or returns at
// once if none is. Pending fsyncs and closes run first (the cond's wait
// drops the lock without them), which drops the lock too: the open may
// have ended meanwhile, and its broadcast with it.
func (sf *segmentFile) waitOpenedLocked() {
	sf.cache.runPendingLocked()
	if sf.opening {
		sf.cache.openWaits++
		sf.cache.opened.Wait()
	}
}

// awaitEvictionLocked waits until no fsync the cache runs to close the
// file is in flight, and returns the failure of any it ran. The log calls
// it before its own fsync of the file, holding a reference, so none can
// start after: two fsyncs of one descriptor at once split a writeback
// error between them (Linux reports it to one), and the log's could
// succeed while the cache's failed, acknowledging bytes that never
// reached the disk.
func (sf *segmentFile) awaitEvictionLocked() error {
	for sf.evicting {
		sf.cache.evicted.Wait()
	}
	return sf.syncErr
}

// noteSyncLocked records an fsync the cache ran: the generation it covered,
// or its failure, which the file keeps.
func (sf *segmentFile) noteSyncLocked(gen int64, err error) {
	if err != nil {
		if sf.syncErr == nil {
			sf.syncErr = fmt.Errorf("segment %s: fsync before closing an idle file: %w", sf.path, err)
		}
		return
	}
	sf.synced = max(sf.synced, gen)
}

// errFileRemoved: the file was deleted before it could be opened.
var errFileRemoved = errors.New("segment file removed")

// openLocked makes sure the file is open, or says why it cannot be
// (errFileRemoved once it is deleted). It may drop the lock meanwhile,
// so the caller rechecks what it read before: when another goroutine is
// opening the file it waits for that open, when nobody is it opens the
// file itself without the lock (startOpenLocked), and when a shed is
// closing it it waits for that (waitShedLocked), which may be needed
// again after any wait.
func (sf *segmentFile) openLocked() error {
	for sf.file == nil || sf.shedding {
		switch {
		case sf.shedding:
			sf.waitShedLocked()
		case sf.removed:
			return errFileRemoved
		case sf.opening:
			sf.waitOpenedLocked()
		default:
			if err := sf.startOpenLocked(); err != nil {
				return err
			}
		}
	}
	return nil
}

// startOpenLocked opens the file and loads a sealed segment's indexes
// with the lock dropped. The file counts against its kind's bound from
// the start, so the bound holds while opens are in flight, and it is
// marked opening so that it is opened once: pin, unpin and remove, which
// change its kind or delete it, wait for the open to end.
func (sf *segmentFile) startOpenLocked() error {
	c := sf.cache
	sf.opening = true
	c.open[sf.kind()]++
	c.evictLocked(sf.kind())
	loadIndexes := !sf.pinned && sf.loadIndexes != nil
	size, nextOffset := sf.sealedSize, sf.sealedNextOffset
	c.runPendingLocked() // close what the bound evicted before opening more
	c.mu.Unlock()
	f, idx, err := sf.openAndLoad(loadIndexes, size, nextOffset)
	c.mu.Lock()
	sf.opening = false
	c.opened.Broadcast()
	if err != nil {
		c.open[sf.kind()]--
		return err
	}
	sf.file = f
	if loadIndexes {
		sf.indexes = idx
	}
	return nil
}

// openAndLoad opens the file and, for a sealed segment, loads its indexes,
// without the cache's lock. Out of descriptors, it has the cache close one
// idle file at a time and tries again (see the policy above).
func (sf *segmentFile) openAndLoad(loadIndexes bool, size, nextOffset int64) (vfs.File, *sealedIndexes, error) {
	f, err := sheddingFS{FS: sf.fs, cache: sf.cache}.OpenReadWrite(sf.path)
	if err != nil {
		return nil, nil, fmt.Errorf("open segment: %w", err)
	}
	if !loadIndexes {
		return f, nil, nil
	}
	idx, err := sf.loadIndexes(size, nextOffset)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, idx, nil
}

func isDescriptorShortage(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// shedLocked picks one idle file to close for an open that found no
// descriptor: the least recently used, sealed before active, synced before
// unsynced, or nil when none is idle. A synced one is closed at once; an
// unsynced one is fsynced first on its own descriptor, as an eviction's,
// by unlock, without the lock: under it, every open and release of every
// log waited for one disk flush, on the path that is already short of
// descriptors. Meanwhile the file keeps the eviction's rules (a log's
// fsync of it waits and inherits a failure) and its users wait too
// (waitShedLocked), so it is closed once the fsync is done.
func (c *FileCache) shedLocked() *segmentFile {
	for _, l := range []*idleList{&c.idle[sealedKind][idleSynced], &c.idle[activeKind][idleSynced],
		&c.idle[sealedKind][idleUnsynced], &c.idle[activeKind][idleUnsynced]} {
		sf := l.tail
		if sf == nil {
			continue
		}
		if sf.unsyncedLocked() {
			sf.startEvictSyncLocked(true)
		} else {
			sf.closeLocked()
		}
		return sf
	}
	return nil
}

// shed closes one idle file for an open out of descriptors (see
// sheddingFS) and says whether the open should be tried again: a file was
// closed, or a descriptor came back since closedBefore (c.closed read
// before the open). It returns once the fsync of an unsynced file is done
// and the descriptors whose close is in flight are closed, whoever runs
// them: any goroutine that takes the lock while the shed has it dropped
// may run the shed's own close, and a bound's eviction may be closing an
// idle file as the open fails. Returning earlier would shed the next
// file, or fail the open when none is left, with a descriptor on its way
// back.
func (c *FileCache) shed(closedBefore int64) bool {
	c.mu.Lock()
	defer c.unlock()
	sf := c.shedLocked()
	c.runPendingLocked()
	for sf != nil && sf.evicting {
		c.evicted.Wait()
	}
	// Closes finish in any order, so this counts descriptors, not files:
	// as many as were in flight have come back.
	for target := c.closed.Load() + int64(c.closing); c.closed.Load() < target; {
		c.evicted.Wait()
	}
	return sf != nil || c.closed.Load() > closedBefore
}

// sheddingFS opens the files a log opens outside the cache (a new
// segment's, index files at a roll or a sync) as the cache opens its own:
// out of descriptors, it closes an idle file and tries again, so that a
// roll during a transient shortage does not turn the log read-only.
// Never used under the cache's lock: shedding takes it.
type sheddingFS struct {
	vfs.FS
	cache *FileCache
}

func (s sheddingFS) retry(open func(string) (vfs.File, error), name string) (vfs.File, error) {
	for {
		closed := s.cache.closed.Load()
		f, err := open(name)
		if err == nil || !isDescriptorShortage(err) || !s.cache.shed(closed) {
			return f, err
		}
	}
}

func (s sheddingFS) Create(name string) (vfs.File, error) { return s.retry(s.FS.Create, name) }

func (s sheddingFS) Open(name string) (vfs.File, error) { return s.retry(s.FS.Open, name) }

func (s sheddingFS) OpenReadWrite(name string) (vfs.File, error) {
	return s.retry(s.FS.OpenReadWrite, name)
}

// SyncDir fsyncs dir, which opens it first: out of descriptors, it sheds
// and tries again as the opens do. Only the open fails so (an fsync never
// reports EMFILE or ENFILE), so a retry never follows a failed fsync.
func (s sheddingFS) SyncDir(dir string) error {
	_, err := s.retry(func(name string) (vfs.File, error) { return nil, s.FS.SyncDir(name) }, dir)
	return err
}

// release drops a reference taken by acquire.
func (r fileRef) release() {
	if r.sf == nil {
		return
	}
	c := r.sf.cache
	c.mu.Lock()
	defer c.unlock()
	r.sf.refs--
	r.sf.parkLocked(true)
}

// closeLocked forgets the file's descriptor and has unlock close it.
func (sf *segmentFile) closeLocked() {
	if sf.file == nil {
		return
	}
	sf.unlistLocked()
	sf.cache.closes = append(sf.cache.closes, sf.file)
	sf.file = nil
	sf.indexes = nil
	sf.cache.open[sf.kind()]--
}

// isRemoved says whether the segment was deleted.
func (sf *segmentFile) isRemoved() bool {
	sf.cache.mu.Lock()
	defer sf.cache.mu.Unlock()
	return sf.removed
}

// pin makes the file the active segment's, opened now (so a log that
// cannot open its active segment fails to open). The returned handle stays
// valid until the segment is sealed or removed; it reopens the file if the
// cache closed it while idle.
func (sf *segmentFile) pin() (vfs.File, error) {
	c := sf.cache
	c.mu.Lock()
	defer c.unlock()
	for sf.opening { // a reader's open counts the file as sealed
		sf.waitOpenedLocked()
	}
	if sf.removed {
		return nil, fmt.Errorf("segment %s: pin after removal", sf.path)
	}
	if sf.pinned {
		return &activeFile{sf: sf}, nil
	}
	if sf.file != nil {
		// Was open as a sealed file: count it as an active one now.
		sf.unlistLocked()
		c.open[sealedKind]--
		c.open[activeKind]++
		sf.indexes = nil
		sf.pinned = true
		sf.parkLocked(true)
		return &activeFile{sf: sf}, nil
	}
	sf.pinned = true
	if err := sf.openLocked(); err != nil {
		if errors.Is(err, errFileRemoved) {
			err = fmt.Errorf("segment %s: pin after removal", sf.path)
		}
		sf.pinned = false
		return nil, err
	}
	sf.parkLocked(true)
	return &activeFile{sf: sf}, nil
}

// unpin turns the active segment's file into a sealed one, keeping it open
// (it is the most likely to be read next) and handing over the indexes the
// log kept in memory, so sealing costs no reload. A segment sealed without
// an fsync keeps its written generation: the cache fsyncs it before
// closing it, if the log's own sync of sealed segments has not come first.
func (sf *segmentFile) unpin(idx *sealedIndexes, size, nextOffset int64) {
	c := sf.cache
	c.mu.Lock()
	defer c.unlock()
	for sf.opening { // a reopen of the active file counts it as active
		sf.waitOpenedLocked()
	}
	sf.sealedSize, sf.sealedNextOffset = size, nextOffset
	if !sf.pinned {
		return
	}
	sf.unlistLocked()
	sf.pinned = false
	if sf.file == nil {
		return
	}
	c.open[activeKind]--
	sf.indexes = idx
	c.open[sealedKind]++
	sf.parkLocked(true)
	c.evictLocked(sealedKind)
}

// syncSealed fsyncs a segment sealed without a sync, through the
// descriptor that wrote it if it is still open, and says whether the
// segment was deleted (then nothing is needed). A file the cache closed
// needs nothing either: it is closed only once an fsync covered its writes
// (or failed, which is returned).
func (sf *segmentFile) syncSealed() (removed bool, err error) {
	c := sf.cache
	c.mu.Lock()
	sf.waitShedLocked() // which closes it synced, or fails
	removed, err = sf.removed, sf.syncErr
	closed := sf.file == nil && !sf.unsyncedLocked()
	c.mu.Unlock()
	if removed || err != nil || closed {
		return removed, err
	}
	ref, err := sf.acquire()
	if err != nil {
		if sf.isRemoved() {
			return true, nil
		}
		return false, err
	}
	defer ref.release()
	c.mu.Lock()
	err = sf.awaitEvictionLocked()
	gen := sf.written
	c.mu.Unlock()
	if err != nil {
		return false, err
	}
	err = ref.file.Sync()
	c.mu.Lock()
	sf.noteSyncLocked(gen, err)
	c.mu.Unlock()
	return false, err
}

// remove marks the file deleted: it is closed now if unreferenced, else on
// the last release. An open in flight is waited for: a sealed segment's
// may be rebuilding its index files and writing them back, which must not
// happen after the caller deletes them (orphans a later segment at the
// same base offset would take for its own). The wait is for one file's
// openat and index load, which the cache's lock covered before.
func (sf *segmentFile) remove() {
	c := sf.cache
	c.mu.Lock()
	defer c.unlock()
	for sf.opening {
		sf.waitOpenedLocked()
	}
	sf.removed = true
	sf.unlistLocked()
	if sf.pinned {
		sf.pinned = false
		if sf.file != nil {
			// Counted as sealed from now on: closeLocked below or a
			// later release decrements it.
			c.open[activeKind]--
			c.open[sealedKind]++
		}
	}
	if sf.refs == 0 {
		sf.closeLocked()
	}
}

// closeFile closes the file at log close; references still held by readers
// keep it open until they release.
func (sf *segmentFile) closeFile() {
	sf.remove()
}

// activeFile is the writer's handle on the active segment's .log file. Each
// call takes a reference (reopening the file if the cache closed it while
// idle) and releases it after, so the cache can close an idle active file
// and the writer never notices. Writes mark the file unsynced until a Sync
// covers them: an unsynced file is fsynced before the cache closes it.
type activeFile struct{ sf *segmentFile }

// use takes a reference for one call; write says the call may dirty the
// file, and returns the generation it starts. A write after an fsync the
// cache ran failed gets that failure.
func (a *activeFile) use(write bool) (vfs.File, int64, error) {
	sf := a.sf
	c := sf.cache
	c.mu.Lock()
	defer c.unlock()
	sf.waitShedLocked()
	if write && sf.syncErr != nil {
		return nil, 0, sf.syncErr
	}
	if err := sf.openLocked(); err != nil {
		if errors.Is(err, errFileRemoved) {
			return nil, 0, fmt.Errorf("segment %s: %w", sf.path, ErrClosed)
		}
		return nil, 0, err
	}
	sf.unlistLocked()
	sf.refs++
	if write {
		sf.written++
		sf.writesInFlight++
		return sf.file, sf.written, nil
	}
	return sf.file, sf.written - sf.writesInFlight, nil
}

// done releases use's reference; synced, when positive, is the write
// generation a successful fsync covered.
func (a *activeFile) done(synced int64) {
	sf := a.sf
	c := sf.cache
	c.mu.Lock()
	defer c.unlock()
	sf.refs--
	sf.synced = max(sf.synced, synced)
	sf.parkLocked(true)
}

// doneWrite releases a writing use's reference.
func (a *activeFile) doneWrite() {
	sf := a.sf
	c := sf.cache
	c.mu.Lock()
	defer c.unlock()
	sf.refs--
	sf.writesInFlight--
	sf.parkLocked(true)
}

func (a *activeFile) ReadAt(p []byte, off int64) (int, error) {
	f, _, err := a.use(false)
	if err != nil {
		return 0, err
	}
	defer a.done(0)
	return f.ReadAt(p, off)
}

func (a *activeFile) WriteAt(p []byte, off int64) (int, error) {
	f, _, err := a.use(true)
	if err != nil {
		return 0, err
	}
	defer a.doneWrite()
	return f.WriteAt(p, off)
}

func (a *activeFile) WritevAt(bufs [][]byte, off int64) (int64, error) {
	f, _, err := a.use(true)
	if err != nil {
		return 0, err
	}
	defer a.doneWrite()
	return f.WritevAt(bufs, off)
}

func (a *activeFile) Truncate(size int64) error {
	f, _, err := a.use(true)
	if err != nil {
		return err
	}
	defer a.doneWrite()
	return f.Truncate(size)
}

// Sync fsyncs the writes begun before it. A file closed while idle had
// nothing unsynced: it is not reopened for a no-op fsync. A failed fsync
// the cache ran is returned.
func (a *activeFile) Sync() error { return a.syncWith(nil) }

// syncWith is Sync with sync(file) in place of the file's own fsync (an
// append round's, through the SharedSync: sharedsync.go), so the round
// keeps Sync's rules: wait for an eviction's fsync of the file and return
// its failure, and note the generation covered so the cache does not
// fsync it again. A nil sync is the file's own fsync. sync reports
// whether it covered every write done when it was called: a syncfs that
// began earlier covers the round the caller asked for, but perhaps not a
// later one written before the call, which must stay unsynced here.
func (a *activeFile) syncWith(sync func(fileSyncer) (bool, error)) error {
	sf := a.sf
	sf.cache.mu.Lock()
	sf.waitShedLocked() // which closes it synced, or fails: no reopen
	err := sf.syncErr
	clean := sf.file == nil && sf.written == sf.synced && !sf.removed
	sf.cache.mu.Unlock()
	if err != nil {
		return err
	}
	if clean {
		return nil
	}
	f, gen, err := a.use(false)
	if err != nil {
		return err
	}
	sf.cache.mu.Lock()
	err = sf.awaitEvictionLocked()
	sf.cache.mu.Unlock()
	all := true
	if err == nil {
		if sync == nil {
			err = f.Sync()
		} else {
			all, err = sync(f)
		}
	}
	if err != nil || !all {
		a.done(0)
		return err
	}
	a.done(gen)
	return nil
}

func (a *activeFile) Size() (int64, error) {
	f, _, err := a.use(false)
	if err != nil {
		return 0, err
	}
	defer a.done(0)
	return f.Size()
}

// Close does nothing: the cache owns the descriptor (closeFile closes it).
func (a *activeFile) Close() error { return nil }

func (a *activeFile) Name() string { return a.sf.path }
