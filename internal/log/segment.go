package log

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sluicelog/sluice/internal/vfs"
)

// File names, as Kafka names them: the segment's base offset in 20 digits,
// so that a directory listing sorts in offset order.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
)

func segmentFileName(baseOffset int64, suffix string) string {
	return fmt.Sprintf("%020d%s", baseOffset, suffix)
}

// parseSegmentFileName returns the base offset of a "<20 digits><suffix>" name.
func parseSegmentFileName(name, suffix string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, suffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	base, err := strconv.ParseInt(digits, 10, 64)
	return base, err == nil && base >= 0
}

// segment is one .log file and its indexes. The last segment of a log is the
// active one: the only one appended to.
type segment struct {
	baseOffset         int64
	dir                string
	file               *segmentFile
	indexIntervalBytes int64 // for rebuilding lost indexes as appends built them

	// Guarded by Log.mu; changed only by the log's writer or by operations
	// that wait for the writer to be idle.
	size                 int64 // bytes of whole batches readers may see
	nextOffset           int64 // offset after the last batch; baseOffset when empty
	maxTimestamp         int64 // largest batch max timestamp; -1 when empty
	offsetOfMaxTimestamp int64 // last offset of the batch holding maxTimestamp
	createdMs            int64 // when the segment was rolled, for segment.ms
	rollJitterMs         int64 // subtracted from segment.ms for this segment (segment.jitter.ms)
	sealed               bool
	// activeFile is the pinned .log file of the active segment, written by
	// the log's writer without taking a cache reference.
	activeFile vfs.File

	// The active segment's indexes, kept in memory (see filecache.go);
	// bytesSinceIndex counts log bytes since the last offset index entry.
	offsets         offsetIndex
	times           timeIndex
	bytesSinceIndex int64

	// abortedTxns is the segment's aborted-transaction index (txnindex.go),
	// by marker offset.
	abortedTxns []AbortedTxn
}

func newSegment(fs vfs.FS, cache *FileCache, dir string, baseOffset, nowMs, indexIntervalBytes int64) *segment {
	s := &segment{
		indexIntervalBytes:   indexIntervalBytes,
		baseOffset:           baseOffset,
		dir:                  dir,
		nextOffset:           baseOffset,
		maxTimestamp:         -1,
		offsetOfMaxTimestamp: -1,
		createdMs:            nowMs,
	}
	s.file = &segmentFile{cache: cache, fs: fs, path: s.path(logSuffix), loadIndexes: s.loadSealedIndexes}
	return s
}

func (s *segment) path(suffix string) string {
	return filepath.Join(s.dir, segmentFileName(s.baseOffset, suffix))
}

// relOffset converts an offset of this segment to the index's int32 form.
func (s *segment) relOffset(offset int64) int32 {
	return int32(offset - s.baseOffset)
}

// createSegmentFiles creates an empty segment on disk: the .log file and its
// index files preallocated to segment.index.bytes, as Kafka lays them out.
// The caller syncs the directory before relying on the new names.
func createSegmentFiles(fs vfs.FS, s *segment, cfg Config) error {
	fs = sheddingFS{FS: fs, cache: s.file.cache}
	f, err := fs.Create(s.path(logSuffix))
	if err != nil {
		return fmt.Errorf("create segment %020d: %w", s.baseOffset, err)
	}
	f.Close()
	for _, ix := range []struct {
		suffix    string
		entrySize int
	}{{indexSuffix, offsetIndexEntrySize}, {timeIndexSuffix, timeIndexEntrySize}} {
		if err := preallocate(fs, s.path(ix.suffix), int64(cfg.maxIndexEntries(ix.entrySize)*ix.entrySize)); err != nil {
			return fmt.Errorf("create segment %020d: %w", s.baseOffset, err)
		}
	}
	return nil
}

// preallocate creates a file of the given size. The file is sparse: it costs
// no disk until written, and a crash before it is trimmed leaves zero
// entries that index validation rejects.
func preallocate(fs vfs.FS, path string, size int64) error {
	f, err := fs.Create(path)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeIndexes writes the segment's in-memory indexes to their files, trimmed
// to their entries, and syncs them. Called when the segment is sealed and when
// the log is closed. extraOffsets/extraTimes are entries the writer computed
// but has not yet merged into s (sealing happens mid-round).
func writeIndexes(fs vfs.FS, s *segment, extraOffsets, extraTimes []byte, sync bool) error {
	fs = sheddingFS{FS: fs, cache: s.file.cache}
	for _, ix := range []struct {
		suffix      string
		kept, extra []byte
	}{{indexSuffix, s.offsets.buf, extraOffsets}, {timeIndexSuffix, s.times.buf, extraTimes}} {
		if err := writeIndexFile(fs, s.path(ix.suffix), ix.kept, ix.extra, sync); err != nil {
			return fmt.Errorf("segment %020d: write %s: %w", s.baseOffset, ix.suffix, err)
		}
	}
	return nil
}

func writeIndexFile(fs vfs.FS, path string, kept, extra []byte, sync bool) error {
	f, err := fs.OpenReadWrite(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WritevAt([][]byte{kept, extra}, 0); err != nil {
		return err
	}
	if err := f.Truncate(int64(len(kept) + len(extra))); err != nil {
		return err
	}
	if !sync {
		return nil
	}
	return f.Sync()
}

// syncSealedSegment fsyncs a segment sealed without a sync (flush policies
// other than always): its .log file and its index files. A segment deleted
// meanwhile needs nothing.
func syncSealedSegment(fs vfs.FS, s *segment) error {
	if removed, err := s.file.syncSealed(); err != nil || removed {
		if err != nil {
			return fmt.Errorf("sync segment %020d: %w", s.baseOffset, err)
		}
		return nil
	}
	fs = sheddingFS{FS: fs, cache: s.file.cache}
	for _, suffix := range []string{indexSuffix, timeIndexSuffix} {
		f, err := fs.OpenReadWrite(s.path(suffix))
		if err != nil {
			return fmt.Errorf("sync segment %020d: %w", s.baseOffset, err)
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("sync segment %020d %s: %w", s.baseOffset, suffix, err)
		}
	}
	return nil
}

// loadSealedIndexes reads a sealed segment's index files for the file cache.
// Indexes that fail validation are rebuilt from the .log file: they are
// derived data.
// It runs without the cache's lock, so its opens may shed idle files.
func (s *segment) loadSealedIndexes(size, nextOffset int64) (*sealedIndexes, error) {
	idx := &sealedIndexes{}
	fs := sheddingFS{FS: s.file.fs, cache: s.file.cache}
	offsets, err1 := readWholeFile(fs, s.path(indexSuffix))
	times, err2 := readWholeFile(fs, s.path(timeIndexSuffix))
	if err := shortOfDescriptors(err1, err2); err != nil {
		return nil, fmt.Errorf("segment %020d: read indexes: %w", s.baseOffset, err)
	}
	if err1 == nil && err2 == nil && checkOffsetIndex(offsets, size) == nil &&
		checkTimeIndex(times, s.relOffset(nextOffset-1)) == nil {
		idx.offsets.buf, idx.times.buf = offsets, times
		return idx, nil
	}
	rebuilt, err := rebuildSealedIndexes(s, size)
	if err != nil {
		return nil, fmt.Errorf("segment %020d: rebuild indexes: %w", s.baseOffset, err)
	}
	return rebuilt, nil
}

// shortOfDescriptors returns the first of errs that is a descriptor
// shortage. An index read that failed so, with no idle file left to
// close (sheddingFS), says nothing about the index: rebuilding it would
// scan the whole .log, opening it a second time, short of the same
// descriptors. The read fails instead, as any open out of descriptors
// does, and the next one loads the files; only a missing or damaged
// index is rebuilt.
func shortOfDescriptors(errs ...error) error {
	for _, err := range errs {
		if err != nil && isDescriptorShortage(err) {
			return err
		}
	}
	return nil
}

// readWholeFile reads an index or checkpoint file (bounded like an index:
// int32 positions).
func readWholeFile(fs vfs.FS, path string) ([]byte, error) {
	return vfs.ReadFile(fs, path, math.MaxInt32)
}

// removeSegmentFiles deletes a segment's files. Open readers keep reading the
// .log data through their references (POSIX unlink semantics).
func removeSegmentFiles(fs vfs.FS, s *segment) error {
	s.file.remove()
	for _, suffix := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
		if err := fs.Remove(s.path(suffix)); err != nil && !isNotExist(err) {
			return fmt.Errorf("delete segment %020d: %w", s.baseOffset, err)
		}
	}
	return nil
}
