package log

import (
	"fmt"
	"math"
	"slices"

	"github.com/sluicelog/sluice/internal/record"
)

// Truncate removes every batch holding an offset at or past offset, as a
// follower does to drop records that diverge from its leader. A batch that
// straddles offset goes whole, so the log end offset may end below offset.
// An offset at or below the first segment's base empties the log and starts
// it again at offset. The caller must checkpoint the recovery point before
// appending again (Manager.Truncate does).
func (l *Log) Truncate(offset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	// The log end is known only once queued appends are written: the
	// wait for that may journal rounds the truncation then drops.
	if err := l.idleFencedLocked(max(offset, 0), func() bool { return offset < l.logEndOffset }); err != nil {
		return err
	}
	if offset >= l.logEndOffset {
		return nil
	}
	if offset <= l.segments[0].baseOffset {
		return l.restartAtLocked(max(offset, 0))
	}
	keep := 0
	for keep < len(l.segments) && l.segments[keep].baseOffset < offset {
		keep++
	}
	if err := l.removeSegmentsLocked(l.segments[keep:]); err != nil {
		return err
	}
	l.segments = l.segments[:keep]
	s := l.active()
	if s.sealed {
		if err := l.unseal(s); err != nil {
			return l.failAndReturnLocked(err)
		}
	}
	if err := l.truncateActiveLocked(offset); err != nil {
		return l.failAndReturnLocked(err)
	}
	if err := l.dropAbortedTxnsFromLocked(s.nextOffset); err != nil {
		return err
	}
	l.logEndOffset, l.nextOffset, l.writtenEnd = s.nextOffset, s.nextOffset, s.nextOffset
	l.recoveryPoint = min(l.recoveryPoint, l.logEndOffset)
	l.logStartOffset = min(l.logStartOffset, l.logEndOffset)
	// Records appended after the truncation are dirty, and a clean in
	// progress must not swap in what it built from the removed records.
	l.firstDirtyOffset = min(l.firstDirtyOffset, l.logEndOffset)
	l.truncations++
	l.noteTruncatedLocked()
	return nil
}

// truncateActiveLocked cuts the active segment before the first batch
// holding offset, then rescans what is left to rebuild its index state. The
// cut is fsynced, so a crash cannot bring the removed records back.
func (l *Log) truncateActiveLocked(offset int64) error {
	s := l.active()
	ref, err := s.file.acquire()
	if err != nil {
		return err
	}
	defer ref.release()
	v := segmentView{seg: s, size: s.size, nextOffset: s.nextOffset, ref: ref}
	cut, _, err := findBatch(&v, s.offsets.floor(s.relOffset(offset)), func(h *record.Header) bool { return h.LastOffset() >= offset })
	if err != nil {
		return err
	}
	if err := s.activeFile.Truncate(cut); err != nil {
		return err
	}
	if err := s.activeFile.Sync(); err != nil {
		return err
	}
	res, err := scanSegment(s.activeFile, emptyIndexState(s.baseOffset), 0, cut, math.MaxInt64, l.cfg.IndexIntervalBytes, s.offsets.buf[:0], s.times.buf[:0])
	if err != nil {
		return err
	}
	s.offsets, s.times = offsetIndex{buf: res.offsets}, timeIndex{buf: res.times}
	s.setIndexState(res.state)
	return nil
}

// TruncateFullyAndStartAt empties the log and starts it again at offset,
// as a follower does when its log ends below the leader's log start offset
// (or lies entirely outside the leader's log): nothing it holds can be
// reconciled, so it begins again where the leader's log begins. The caller
// checkpoints the recovery point and log start offset (Manager does).
func (l *Log) TruncateFullyAndStartAt(offset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.idleFencedLocked(-1, func() bool { return true }); err != nil {
		return err
	}
	return l.restartAtLocked(max(offset, 0))
}

// restartAtLocked deletes every segment and starts an empty log at offset.
func (l *Log) restartAtLocked(offset int64) error {
	if err := l.removeSegmentsLocked(l.segments); err != nil {
		return err
	}
	l.segments = l.segments[:0]
	if err := l.createActiveSegment(offset); err != nil {
		return l.failAndReturnLocked(err)
	}
	l.logStartOffset, l.logEndOffset, l.nextOffset, l.recoveryPoint = offset, offset, offset, offset
	l.writtenEnd = offset
	l.firstDirtyOffset = offset
	l.truncations++
	l.noteTruncatedLocked()
	return nil
}

// DeleteRecordsBefore moves the log start offset up to offset (the
// DeleteRecords API) and deletes the segments wholly below it. The caller
// persists the new log start offset (the log-start-offset checkpoint).
func (l *Log) DeleteRecordsBefore(offset int64) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.mutableLocked(); err != nil {
		return 0, err
	}
	if offset > l.logEndOffset || offset < 0 {
		return 0, fmt.Errorf("log %s: delete records before %d, log end offset %d: %w", l.dir, offset, l.logEndOffset, ErrOffsetOutOfRange)
	}
	if offset <= l.logStartOffset {
		return l.logStartOffset, nil
	}
	l.logStartOffset = offset
	n := 0
	for n < len(l.segments)-1 && l.segments[n+1].baseOffset <= offset {
		n++
	}
	return l.logStartOffset, l.deleteOldestLocked(n)
}

// DeleteExpiredSegments applies retention.ms and retention.bytes, deleting
// whole sealed segments from the oldest; the active segment is never deleted.
// Like Kafka, it also deletes sealed segments wholly below the log start
// offset (a truncation can leave one there, and with retention off nothing
// else would). It returns how many segments were deleted.
func (l *Log) DeleteExpiredSegments(nowMs int64) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.mutableLocked(); err != nil {
		return 0, err
	}
	var total int64
	for _, s := range l.segments {
		total += s.size
	}
	n := 0
	for ; n < len(l.segments)-1; n++ {
		s := l.segments[n]
		expired := l.cfg.RetentionMs >= 0 && nowMs-s.maxTimestamp > l.cfg.RetentionMs
		oversize := l.cfg.RetentionBytes >= 0 && total-s.size >= l.cfg.RetentionBytes
		if !expired && !oversize && s.nextOffset > l.logStartOffset {
			break
		}
		total -= s.size
	}
	if n == 0 {
		return 0, nil
	}
	return n, l.deleteOldestLocked(n)
}

// deleteOldestLocked deletes the n oldest segments and moves the log start
// offset past them.
func (l *Log) deleteOldestLocked(n int) error {
	if n == 0 {
		return nil
	}
	if err := l.retireSegmentsLocked(l.segments[:n]); err != nil {
		return err
	}
	l.segments = append(l.segments[:0], l.segments[n:]...)
	l.logStartOffset = max(l.logStartOffset, l.segments[0].baseOffset)
	return nil
}

// removeSegmentsLocked deletes segment files and syncs the directory, so a
// crash cannot resurrect a segment that retention or truncation removed.
func (l *Log) removeSegmentsLocked(segments []*segment) error {
	if len(segments) == 0 {
		return nil
	}
	for _, s := range segments {
		if err := removeSegmentFiles(l.fs, s); err != nil {
			return l.failAndReturnLocked(err)
		}
		l.dropUnsyncedLocked(s)
	}
	if err := l.syncDir(); err != nil {
		return l.failAndReturnLocked(fmt.Errorf("sync %s: %w", l.dir, err))
	}
	return nil
}

// dropUnsyncedLocked forgets a removed segment's pending fsync.
func (l *Log) dropUnsyncedLocked(s *segment) {
	l.unsyncedSealed = slices.DeleteFunc(l.unsyncedSealed, func(u *segment) bool { return u == s })
}

// mutableLocked waits for the writer to be idle and checks the log can
// still change.
func (l *Log) mutableLocked() error {
	if err := l.waitIdleLocked(); err != nil {
		return err
	}
	return l.err
}

func (l *Log) failAndReturnLocked(err error) error {
	l.failLocked(err)
	return l.err
}
