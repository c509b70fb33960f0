package log

// Replacing segments with their cleaned version, crash-safely. Kafka's
// protocol, with one simplification: only the .log file goes through the
// swap, because index files are derived data that recovery rebuilds.
//
//	segments of a group: <B>.log <C>.log <D>.log   (B < C < D, next segment at E)
//
//	1. write <B>.log.cleaned, fsync it           crash: .cleaned is deleted at open;
//	                                              the old segments are intact
//	2. rename to <B>.log.swap, fsync the dir     the commit point: from here on,
//	                                              open completes the swap
//	3. delete the old segments' index files and  crash: open finds <B>.log.swap,
//	   <C>.log <D>.log, fsync the dir             deletes every segment file with a
//	                                              base in [B, E) (E: the swap's end)
//	4. rename <B>.log.swap to <B>.log (replacing  and renames the swap to <B>.log
//	   the old one), fsync the dir
//	5. write <B>.index and <B>.timeindex          crash: missing indexes are rebuilt
//
// A cleaned segment always ends where its group ended (the last batch is
// kept, empty if need be), so E is the swap file's own end: recovery needs
// nothing but the swap file to know which old files it replaces. Readers
// holding an old segment keep reading it (unlink semantics); new reads go
// to the new segment.

import (
	"errors"
	"fmt"
	"slices"

	"github.com/sluicelog/sluice/internal/record"
)

// File name suffixes of a clean in progress, after the .log suffix.
const (
	cleanedSuffix = ".cleaned"
	swapSuffix    = ".swap"
)

// cleanedSegment is a group's cleaned .log file, written and fsynced.
type cleanedSegment struct {
	baseOffset int64
	state      indexState
	offsets    []byte
	times      []byte
}

// cleanGroup writes a group's cleaned file and swaps it in.
func (l *Log) cleanGroup(res *cleanerResources, g segmentGroup, cfg Config, stats *CleanStats) error {
	// The group's files stay open until the swap is done: readers keep
	// reading the old segments through them meanwhile.
	refs, err := acquireAll(g.segments)
	if err != nil {
		return err
	}
	defer releaseAll(refs)
	base := g.segments[0].seg.baseOffset
	path := g.segments[0].seg.path(logSuffix) + cleanedSuffix
	cleaned, err := l.writeCleaned(res, g, refs, cfg, path, stats)
	if err != nil {
		_ = l.fs.Remove(path) // best effort: open removes leftovers too
		return fmt.Errorf("log %s: clean segment %020d: %w", l.dir, base, err)
	}
	if err := l.swapIn(g, cleaned); err != nil {
		if errors.Is(err, errCleanAborted) {
			_ = l.fs.Remove(path)
		}
		return err
	}
	stats.Segments += len(g.segments)
	stats.BytesWritten += cleaned.state.size
	return nil
}

// writeCleaned filters the group's batches into path, building the new
// segment's indexes as appends would have, and fsyncs it.
func (l *Log) writeCleaned(res *cleanerResources, g segmentGroup, refs []fileRef, cfg Config, path string, stats *CleanStats) (*cleanedSegment, error) {
	f, err := l.fs.Create(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c := &cleanedSegment{baseOffset: g.segments[0].seg.baseOffset, state: emptyIndexState(g.segments[0].seg.baseOffset)}
	end := g.segments[len(g.segments)-1].nextOffset
	buf, written := res.writeBuf[:0], int64(0)
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if _, err := f.WriteAt(buf, written); err != nil {
			return err
		}
		written += int64(len(buf))
		buf = buf[:0]
		return nil
	}
	records, removed := res.filter.recordsRead, res.filter.recordsRemoved
	for i, s := range g.segments {
		err := res.eachBatch(refs[i].file, s.size, func(batch []byte, h *record.Header) error {
			stats.BytesRead += int64(len(batch))
			out, err := res.filter.filter(batch, h, h.NextOffset() == end)
			if err != nil {
				return err
			}
			// The throttle counts bytes read and written, as Kafka's.
			if err := res.pace(int64(len(batch) + len(out))); err != nil || out == nil {
				return err
			}
			oh, err := record.ParseHeader(out)
			if err != nil {
				return err
			}
			c.offsets, c.times = c.state.add(c.state.size, &oh, int64(len(out)), cfg.IndexIntervalBytes, c.offsets, c.times)
			buf = append(buf, out...)
			if len(buf) >= cleanerWriteBufferBytes {
				return flush()
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("segment %020d: %w", s.seg.baseOffset, err)
		}
	}
	stats.Records += res.filter.recordsRead - records
	stats.RecordsRemoved += res.filter.recordsRemoved - removed
	if err := flush(); err != nil {
		return nil, err
	}
	res.writeBuf = buf[:0]
	if c.state.nextOffset != end {
		// Cannot happen (the last batch is always kept): refuse rather
		// than leave a segment that ends before the next one begins.
		return nil, fmt.Errorf("cleaned segment ends at %d, its group at %d", c.state.nextOffset, end)
	}
	c.times = c.state.appendTimeEntry(c.times)
	return c, f.Sync()
}

// cleanerWriteBufferBytes is how much cleaned data is gathered per write.
const cleanerWriteBufferBytes = 1 << 20

// swapIn replaces the group's segments with the cleaned one (steps 2-5 at
// the top of this file), unless the log changed since the cleaner looked:
// then the cleaned file is dropped (errCleanAborted).
//
// The renames and fsyncs run without the log's lock, so appends and reads
// go on meanwhile: l.swapping holds off every change to the segment list
// (truncation, retention, DeleteRecords, Close wait in waitIdleLocked),
// readers keep using the old segments, whose files the cleaner holds open
// (a reader never reopens an old segment's path, which the new file takes
// over), and the appender only touches the active segment. A failure
// mid-swap fails the log (sticky, as for a failed append): what is on disk
// is then settled by recovery at the next open.
func (l *Log) swapIn(g segmentGroup, c *cleanedSegment) error {
	l.mu.Lock()
	first, err := l.checkGroupLocked(g)
	if err != nil {
		l.mu.Unlock()
		return err
	}
	l.swapping = true
	l.mu.Unlock()
	err = l.swapFiles(g, c)
	l.mu.Lock()
	defer l.mu.Unlock()
	// The writer reads the segment list (its last, active segment) without
	// the lock while it writes a round; the list may change only between
	// rounds.
	for l.writing {
		l.cond.Wait()
	}
	l.swapping = false
	l.cond.Broadcast()
	if err != nil {
		return l.failAndReturnLocked(fmt.Errorf("log %s: swap cleaned segment %020d: %w", l.dir, c.baseOffset, err))
	}
	s := newSegment(l.fs, l.files, l.dir, c.baseOffset, l.nowMs(), l.cfg.IndexIntervalBytes)
	s.setIndexState(c.state)
	// Only a group of one can have aborted-transaction entries
	// (groupSegments); the segment keeps its base, so its .txnindex file,
	// which the swap leaves alone, still describes it.
	s.abortedTxns = g.segments[0].seg.abortedTxns
	s.sealed = true
	s.file.sealedSize, s.file.sealedNextOffset = s.size, s.nextOffset
	for _, old := range g.segments {
		old.seg.file.remove() // readers holding it keep reading the old data
		l.dropUnsyncedLocked(old.seg)
	}
	l.segments = slices.Replace(l.segments, first, first+len(g.segments), s)
	return nil
}

// checkGroupLocked finds the group in the segment list, unchanged since the
// cleaner snapshot it, and returns the index of its first segment.
func (l *Log) checkGroupLocked(g segmentGroup) (int, error) {
	if l.closed || l.err != nil || l.truncations != g.truncations {
		// A truncation may have removed records the offset map holds: a
		// record they superseded must not be dropped.
		return 0, errCleanAborted
	}
	first := slices.Index(l.segments, g.segments[0].seg)
	if first < 0 || first+len(g.segments) >= len(l.segments) {
		return 0, errCleanAborted // removed, or the last one became active again
	}
	for i, snap := range g.segments {
		s := l.segments[first+i]
		if s != snap.seg || !s.sealed || s.size != snap.size || s.nextOffset != snap.nextOffset {
			return 0, errCleanAborted
		}
		// The partition indexes an abort after appending its marker, so
		// a segment may get entries after the snapshot grouped it behind
		// another. The merged segment keeps the first one's entries
		// only: merging it would lose them.
		if i > 0 && len(s.abortedTxns) > 0 {
			return 0, errCleanAborted
		}
	}
	return first, nil
}

// swapFiles does the renames and removals of a swap.
func (l *Log) swapFiles(g segmentGroup, c *cleanedSegment) error {
	base := g.segments[0].seg
	logPath := base.path(logSuffix)
	if err := l.fs.Rename(logPath+cleanedSuffix, logPath+swapSuffix); err != nil {
		return err
	}
	if err := l.syncDir(); err != nil {
		return err
	}
	for i, old := range g.segments {
		suffixes := []string{indexSuffix, timeIndexSuffix, logSuffix}
		if i == 0 {
			suffixes = suffixes[:2] // the rename below replaces <B>.log
		}
		for _, suffix := range suffixes {
			if err := l.fs.Remove(old.seg.path(suffix)); err != nil && !isNotExist(err) {
				return err
			}
		}
	}
	if err := l.syncDir(); err != nil {
		return err
	}
	if err := l.fs.Rename(logPath+swapSuffix, logPath); err != nil {
		return err
	}
	if err := l.syncDir(); err != nil {
		return err
	}
	for _, ix := range []struct {
		suffix string
		buf    []byte
	}{{indexSuffix, c.offsets}, {timeIndexSuffix, c.times}} {
		if err := writeIndexFile(l.fs, base.path(ix.suffix), ix.buf, nil, true); err != nil {
			return err
		}
	}
	return nil
}

// recoverCleanerFiles settles a clean that a crash interrupted, before the
// segments are listed: a .cleaned file was never committed and goes; a
// .swap file was, and the swap is completed.
func (l *Log) recoverCleanerFiles(names []string) error {
	changed := false
	for _, name := range names {
		if _, ok := parseSegmentFileName(name, logSuffix+cleanedSuffix); ok {
			if err := l.fs.Remove(l.path(name)); err != nil {
				return fmt.Errorf("remove unfinished clean %s: %w", name, err)
			}
			changed = true
		}
	}
	for _, name := range names {
		if base, ok := parseSegmentFileName(name, logSuffix+swapSuffix); ok {
			if err := l.completeSwap(base, names); err != nil {
				return err
			}
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return l.syncDir()
}

// completeSwap finishes step 3 and 4 of a committed swap: the swap file
// says which offsets it covers, every old segment file in that range goes,
// and the swap file takes its place.
func (l *Log) completeSwap(base int64, names []string) error {
	swapPath := l.path(segmentFileName(base, logSuffix+swapSuffix))
	f, err := l.fs.Open(swapPath)
	if err != nil {
		return err
	}
	size, err := f.Size()
	if err == nil {
		var res scanResult
		res, err = scanSegment(f, emptyIndexState(base), 0, size, 0, l.cfg.IndexIntervalBytes, nil, nil)
		if err == nil && (res.stop != nil || size == 0) {
			// Fsynced before it was renamed: damage, not a torn write.
			err = fmt.Errorf("%w: swap file %s does not hold whole batches (%v)", ErrLogDirCorrupt, swapPath, res.stop)
		}
		if err == nil {
			err = l.removeReplaced(base, res.state.nextOffset, names)
		}
	}
	f.Close()
	if err != nil {
		return err
	}
	l.logger.Info("completing a swap of cleaned segments interrupted by a crash", "segment", base)
	return l.fs.Rename(swapPath, l.path(segmentFileName(base, logSuffix)))
}

// removeReplaced deletes the files of segments whose base is in [from, to).
func (l *Log) removeReplaced(from, to int64, names []string) error {
	for _, name := range names {
		for _, suffix := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
			if b, ok := parseSegmentFileName(name, suffix); ok && b >= from && b < to {
				if err := l.fs.Remove(l.path(name)); err != nil && !isNotExist(err) {
					return fmt.Errorf("remove replaced %s: %w", name, err)
				}
			}
		}
	}
	return nil
}
