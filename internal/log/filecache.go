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
//   - the active segment of every open log keeps its .log file open
//     ("pinned"): one descriptor per idle log, needed for appends anyway;
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

// FileCache bounds the sealed segment files open at once across logs.
type FileCache struct {
	limit int

	mu   sync.Mutex
	lru  list.List // *segmentFile, open, unreferenced and unpinned; front = most recent
	open int       // sealed files open (in lru or referenced)
}

// NewFileCache returns a cache keeping at most limit sealed segment files
// open while unreferenced. Referenced files may briefly exceed it.
func NewFileCache(limit int) *FileCache {
	if limit < 1 {
		limit = 1
	}
	return &FileCache{limit: limit}
}

// OpenFiles reports how many sealed segment files are open.
func (c *FileCache) OpenFiles() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open
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
	pinned                       bool // the active segment: always open, never evicted
	removed                      bool // deleted: never reopened, closed on last release
	elem                         *list.Element
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
	sf.refs++
	return fileRef{sf: sf, file: sf.file, indexes: sf.indexes}, nil
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
	if sf.refs > 0 || sf.pinned {
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
	}
}

// isRemoved says whether the segment was deleted.
func (sf *segmentFile) isRemoved() bool {
	sf.cache.mu.Lock()
	defer sf.cache.mu.Unlock()
	return sf.removed
}

// pin makes the file the active segment's: opened now and never evicted.
// The returned file stays valid until the segment is sealed or removed.
func (sf *segmentFile) pin() (vfs.File, error) {
	c := sf.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if sf.removed {
		return nil, fmt.Errorf("segment %s: pin after removal", sf.path)
	}
	if sf.pinned {
		return sf.file, nil
	}
	if sf.file != nil {
		// Was open as a sealed file: stop counting it against the limit.
		if sf.elem != nil {
			c.lru.Remove(sf.elem)
			sf.elem = nil
		}
		c.open--
		sf.indexes = nil
		sf.pinned = true
		return sf.file, nil
	}
	sf.pinned = true
	if err := sf.openLocked(); err != nil {
		sf.pinned = false
		return nil, err
	}
	return sf.file, nil
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
	sf.pinned = false
	if sf.file == nil {
		return
	}
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
		sf.pinned = false
		if sf.file != nil {
			c.open++ // closeLocked below or a later release decrements it
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
