package log

import (
	"container/list"
	"fmt"
	"sync"

	"github.com/sluicelog/sluice/internal/vfs"
)

// File-handle policy. A broker may host tens of thousands of partitions but
// the process has a fixed descriptor budget, so:
//
//   - the active segment's .log file ("pinned": never given indexes by
//     the cache) is open while it is written, read, or holds bytes not yet
//     fsynced; once idle and synced it waits in a second LRU, bounded by
//     the active limit, and the least recently used is closed past it. The
//     writer reaches it through an activeFile handle that reopens it on
//     demand, so 10,000 idle partitions do not hold 10,000 descriptors.
//     Only synced files are closed: a write error the kernel reports at
//     the next fsync must reach this process on the descriptor it wrote
//     through;
//   - index files are never held open: the active segment's indexes live in
//     memory and are written out when the segment is sealed or the log closed;
//   - a sealed segment's .log file is opened when a reader needs it, together
//     with its indexes loaded into memory, and kept in a shared LRU bounded
//     by FileCache's limit; the least recently used unreferenced one is
//     closed (and its indexes dropped) when the limit is passed;
//   - every reader holds a reference while it uses a file, so neither
//     eviction nor deletion (retention, truncation) closes a file under it:
//     a deleted segment's file is closed when its last reference goes.
//
// Lock order: Log.mu before FileCache.mu. FileCache never calls into a Log.

// DefaultOpenSealedSegments is the default limit of sealed segment files open
// at once across all logs sharing a FileCache.
const DefaultOpenSealedSegments = 1024

// DefaultOpenActiveSegments is the default limit of idle active segment files
// kept open across all logs sharing a FileCache.
const DefaultOpenActiveSegments = 4096

// FileCache bounds the segment files open at once across logs.
type FileCache struct {
	limit       int
	activeLimit int

	mu         sync.Mutex
	lru        list.List // *segmentFile, open, unreferenced and unpinned; front = most recent
	open       int       // sealed files open (in lru or referenced)
	idleActive list.List // *segmentFile, pinned, open, unreferenced and synced; front = most recent
	activeOpen int       // active files open (idle or not)
}

// NewFileCache returns a cache keeping at most limit sealed segment files
// open while unreferenced, and DefaultOpenActiveSegments idle active ones.
// Referenced files may briefly exceed it.
func NewFileCache(limit int) *FileCache {
	return NewFileCacheWithActive(limit, DefaultOpenActiveSegments)
}

// NewFileCacheWithActive is NewFileCache with a limit of idle active segment
// files too. Active files in use (being written, read, or holding unsynced
// bytes) are never closed, so they may exceed it.
func NewFileCacheWithActive(limit, activeLimit int) *FileCache {
	return &FileCache{limit: max(limit, 1), activeLimit: max(activeLimit, 1)}
}

// OpenFiles reports how many sealed segment files are open.
func (c *FileCache) OpenFiles() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open
}

// OpenActiveFiles reports how many active segment files are open.
func (c *FileCache) OpenActiveFiles() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.activeOpen
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
	elem                         *list.Element
	// The active file's write generations: written counts writes begun,
	// synced the newest generation an fsync covered. The file may be
	// closed only when they are equal.
	written, synced int64
	activeElem      *list.Element // in idleActive
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
	defer c.mu.Unlock()
	if sf.removed {
		return fileRef{}, fmt.Errorf("segment %s: %w", sf.path, ErrOffsetOutOfRange)
	}
	if sf.file == nil {
		// Opening under the cache lock keeps the bookkeeping simple; opens
		// are rare next to cache hits, and index loading is bounded by
		// segment.index.bytes.
		if err := sf.openLocked(); err != nil {
			return fileRef{}, err
		}
	}
	if sf.elem != nil {
		c.lru.Remove(sf.elem)
		sf.elem = nil
	}
	sf.leaveIdleActiveLocked()
	sf.refs++
	return fileRef{sf: sf, file: sf.file, indexes: sf.indexes}, nil
}

func (sf *segmentFile) leaveIdleActiveLocked() {
	if sf.activeElem != nil {
		sf.cache.idleActive.Remove(sf.activeElem)
		sf.activeElem = nil
	}
}

// idleLocked parks an unreferenced, synced active file in the idle LRU,
// closing the least recently used idle ones past the limit.
func (sf *segmentFile) idleLocked() {
	if sf.refs > 0 || sf.file == nil || sf.written != sf.synced || sf.activeElem != nil {
		return
	}
	sf.activeElem = sf.cache.idleActive.PushFront(sf)
	sf.cache.evictActiveLocked()
}

// evictActiveLocked closes idle active files past the active limit.
func (c *FileCache) evictActiveLocked() {
	for c.activeOpen > c.activeLimit {
		back := c.idleActive.Back()
		if back == nil {
			return
		}
		sf := back.Value.(*segmentFile)
		c.idleActive.Remove(back)
		sf.activeElem = nil
		sf.file.Close()
		sf.file = nil
		c.activeOpen--
	}
}

func (sf *segmentFile) openLocked() error {
	f, err := sf.fs.OpenReadWrite(sf.path)
	if err != nil {
		return fmt.Errorf("open segment: %w", err)
	}
	if !sf.pinned && sf.loadIndexes != nil {
		idx, err := sf.loadIndexes(sf.sealedSize, sf.sealedNextOffset)
		if err != nil {
			f.Close()
			return err
		}
		sf.indexes = idx
	}
	sf.file = f
	if !sf.pinned {
		sf.cache.open++
		sf.cache.evictLocked()
	} else {
		sf.cache.activeOpen++
		sf.cache.evictActiveLocked()
	}
	return nil
}

// release drops a reference taken by acquire.
func (r fileRef) release() {
	if r.sf == nil {
		return
	}
	sf := r.sf
	c := sf.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	sf.refs--
	if sf.pinned {
		sf.idleLocked()
		return
	}
	if sf.refs > 0 {
		return
	}
	if sf.removed {
		sf.closeLocked()
		return
	}
	sf.elem = c.lru.PushFront(sf)
	c.evictLocked()
}

// evictLocked closes least recently used unreferenced files over the limit.
func (c *FileCache) evictLocked() {
	for c.open > c.limit {
		back := c.lru.Back()
		if back == nil {
			return
		}
		sf := back.Value.(*segmentFile)
		c.lru.Remove(back)
		sf.elem = nil
		sf.closeLocked()
	}
}

func (sf *segmentFile) closeLocked() {
	if sf.file == nil {
		return
	}
	sf.file.Close()
	sf.file = nil
	sf.indexes = nil
	if !sf.pinned {
		sf.cache.open--
	} else {
		sf.leaveIdleActiveLocked()
		sf.cache.activeOpen--
	}
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
	defer c.mu.Unlock()
	if sf.removed {
		return nil, fmt.Errorf("segment %s: pin after removal", sf.path)
	}
	if sf.pinned {
		return &activeFile{sf: sf}, nil
	}
	if sf.file != nil {
		// Was open as a sealed file: count it as an active one now.
		if sf.elem != nil {
			c.lru.Remove(sf.elem)
			sf.elem = nil
		}
		c.open--
		c.activeOpen++
		sf.indexes = nil
		sf.pinned = true
		sf.idleLocked()
		return &activeFile{sf: sf}, nil
	}
	sf.pinned = true
	if err := sf.openLocked(); err != nil {
		sf.pinned = false
		return nil, err
	}
	sf.idleLocked()
	return &activeFile{sf: sf}, nil
}

// unpin turns the active segment's file into a sealed one, keeping it open
// (it is the most likely to be read next) and handing over the indexes the
// log kept in memory, so sealing costs no reload.
func (sf *segmentFile) unpin(idx *sealedIndexes, size, nextOffset int64) {
	c := sf.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	sf.sealedSize, sf.sealedNextOffset = size, nextOffset
	if !sf.pinned {
		return
	}
	sf.leaveIdleActiveLocked()
	sf.pinned = false
	if sf.file == nil {
		return
	}
	c.activeOpen--
	sf.indexes = idx
	c.open++
	if sf.refs == 0 {
		sf.elem = c.lru.PushFront(sf)
	}
	c.evictLocked()
}

// remove marks the file deleted: it is closed now if unreferenced, else on
// the last release.
func (sf *segmentFile) remove() {
	c := sf.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	sf.removed = true
	if sf.elem != nil {
		c.lru.Remove(sf.elem)
		sf.elem = nil
	}
	if sf.pinned {
		sf.leaveIdleActiveLocked()
		sf.pinned = false
		if sf.file != nil {
			// Counted as sealed from now on: closeLocked below or a
			// later release decrements it.
			c.activeOpen--
			c.open++
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
// covers them: an unsynced file is never closed.
type activeFile struct{ sf *segmentFile }

// use takes a reference for one call; write says the call may dirty the
// file, and returns the generation it starts.
func (a *activeFile) use(write bool) (vfs.File, int64, error) {
	sf := a.sf
	c := sf.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if sf.file == nil {
		if sf.removed {
			return nil, 0, fmt.Errorf("segment %s: %w", sf.path, ErrClosed)
		}
		if err := sf.openLocked(); err != nil {
			return nil, 0, err
		}
	}
	sf.leaveIdleActiveLocked()
	sf.refs++
	if write {
		sf.written++
	}
	return sf.file, sf.written, nil
}

// done releases use's reference; synced, when positive, is the write
// generation a successful fsync covered.
func (a *activeFile) done(synced int64) {
	sf := a.sf
	c := sf.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	sf.refs--
	if synced > sf.synced {
		sf.synced = synced
	}
	switch {
	case sf.removed && sf.refs == 0:
		sf.closeLocked()
	case sf.pinned:
		sf.idleLocked()
	}
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
	defer a.done(0)
	return f.WriteAt(p, off)
}

func (a *activeFile) WritevAt(bufs [][]byte, off int64) (int64, error) {
	f, _, err := a.use(true)
	if err != nil {
		return 0, err
	}
	defer a.done(0)
	return f.WritevAt(bufs, off)
}

func (a *activeFile) Truncate(size int64) error {
	f, _, err := a.use(true)
	if err != nil {
		return err
	}
	defer a.done(0)
	return f.Truncate(size)
}

// Sync fsyncs the writes begun before it. A file closed while idle had
// nothing unsynced: it is not reopened for a no-op fsync.
func (a *activeFile) Sync() error {
	sf := a.sf
	sf.cache.mu.Lock()
	clean := sf.file == nil && sf.written == sf.synced && !sf.removed
	sf.cache.mu.Unlock()
	if clean {
		return nil
	}
	f, gen, err := a.use(false)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
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
