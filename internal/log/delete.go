package log

// Delayed segment deletion (file.delete.delay.ms), as Kafka's
// asyncDeleteSegment: a segment that retention or DeleteRecords removes
// leaves the log at once, and its files are renamed with the .deleted
// suffix (a directory sync makes the rename durable, so a restart never
// loads them again). The manager's tick removes them once the delay has
// passed; Open removes any left by a crash or a stop before that. Readers
// that hold the file open keep reading it whatever its name, so the delay
// is for tools and operators looking at the directory, as in Kafka.
//
//	00000000000000000000.log ──rename──▶ 00000000000000000000.log.deleted ──after delay──▶ (removed)
//
// Truncation deletes at once: what it removes is not the log's any more.

import (
	"fmt"
	"strings"
)

// deletedSuffix is appended to the file names of a segment awaiting
// removal, as Kafka names them.
const deletedSuffix = ".deleted"

// pendingDelete is a renamed segment's files and when to remove them.
type pendingDelete struct {
	paths []string
	dueMs int64
}

// isDeletedLeftover says whether name is a file renamed for delayed
// removal; Open removes them.
func isDeletedLeftover(name string) bool { return strings.HasSuffix(name, deletedSuffix) }

// retireSegmentsLocked takes segments out of service: removed at once
// without a delay, else renamed for removal after file.delete.delay.ms.
func (l *Log) retireSegmentsLocked(segments []*segment) error {
	if l.cfg.FileDeleteDelayMs <= 0 || len(segments) == 0 {
		return l.removeSegmentsLocked(segments)
	}
	dueMs := l.nowMs() + l.cfg.FileDeleteDelayMs
	for _, s := range segments {
		s.file.remove()
		pending := pendingDelete{dueMs: dueMs}
		for _, suffix := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
			from := s.path(suffix)
			if err := l.fs.Rename(from, from+deletedSuffix); err != nil {
				if isNotExist(err) {
					continue
				}
				return l.failAndReturnLocked(fmt.Errorf("rename segment %020d for deletion: %w", s.baseOffset, err))
			}
			pending.paths = append(pending.paths, from+deletedSuffix)
		}
		l.pendingDeletes = append(l.pendingDeletes, pending)
		l.dropUnsyncedLocked(s)
	}
	if err := l.syncDir(); err != nil {
		return l.failAndReturnLocked(fmt.Errorf("sync %s: %w", l.dir, err))
	}
	return nil
}

// removeDeletedSegments removes the renamed files whose delay has passed,
// on the manager's tick. A failed unlink loses nothing (the segment is out
// of the log already, and Open removes it later), so it is reported, not
// made sticky.
func (l *Log) removeDeletedSegments(nowMs int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var failed error
	kept := l.pendingDeletes[:0]
	for _, p := range l.pendingDeletes {
		if p.dueMs > nowMs {
			kept = append(kept, p)
			continue
		}
		for _, path := range p.paths {
			if err := l.fs.Remove(path); err != nil && !isNotExist(err) && failed == nil {
				failed = fmt.Errorf("log %s: remove %s: %w", l.dir, path, err)
			}
		}
	}
	clear(l.pendingDeletes[len(kept):])
	l.pendingDeletes = kept
	return failed
}
