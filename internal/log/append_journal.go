package log

import (
	"errors"
	"fmt"

	"github.com/sluicelog/sluice/internal/record"
)

// A log's use of its directory's write-ahead journal (journal.go,
// log.flush.journal). Under FlushAlways each small round is journaled
// right after its segment write, and the syncer waits for the journal's
// fdatasync instead of the segment's: the round is then acknowledged
// (logEndOffset moves) while the recovery point stays, since the segment
// itself is not yet durable. A journal checkpoint's syncfs makes it so
// and moves the recovery point (noteJournalCheckpointed). A round that is
// not journaled (too large, or the journal full or failed) takes the
// usual sync, which covers every round before it too.

// journalMaxRoundBytes bounds the rounds the journal takes: a large
// round is sequential bytes that the segment's own fdatasync writes at
// the disk's speed, and journaling it would write it twice.
const journalMaxRoundBytes = 64 << 10

// logJournal is a log's journal state, under the log's mu.
type logJournal struct {
	j    *Journal // nil: no journal, every round syncs its segment
	name string   // the log's directory name, the journal's key
	// end is the offset after the last round journaled; the rounds from
	// logEndOffset up to it are all in the journal when it is at least
	// logEndOffset.
	end    int64
	ticket uint64 // the journal ticket of that round
	// realSyncs counts callers (Flush, Close) that need the segment
	// itself durable: meanwhile the syncer does not use the journal.
	realSyncs int
	// fencedAt is the ticket of the log's last fence, or the journal's
	// newest ticket when the log began to use it: a checkpointed file
	// whose records all came before names ends that a truncation (or an
	// older log of the name) made stale, offsets whose bytes now are
	// newer rounds that its syncfs may not have covered. A segment sync
	// since does not make them valid: it covers only up to its own end.
	fencedAt uint64
	// openedStart is the log start offset the checkpoint named at open:
	// the log's recovered end may lie below it (a DeleteRecords over
	// rounds the journal alone held), and the replay brings them back.
	openedStart int64
	bufs        [][]byte // scratch for Append
	// writeback takes the segment ranges of acknowledged rounds
	// (writeback.go); hintedTo is where the last hint of hintSegment,
	// the active segment then, ended.
	writeback   *segmentWriteback
	hintSegment *segment
	hintedTo    int64
}

// journalRoundLocked journals a round just published (calls, which
// started at offset before): only if every round since the recovery
// point is journaled, so that the journal alone makes them all durable.
// Not the log end offset: rounds acknowledged under another flush policy
// (a topic altered to flush.ms=0) lie below it and in no sync or journal.
func (l *Log) journalRoundLocked(calls []appendCall, before int64) {
	js := &l.journal
	if js.j == nil || len(calls) == 0 || l.cfg.FlushPolicy != FlushAlways || l.err != nil {
		return
	}
	if js.end < before && l.recoveryPoint < before {
		return // an earlier round waits for a segment sync, which covers this one
	}
	n := 0
	js.bufs = js.bufs[:0]
	for _, c := range calls {
		n += len(c.buf)
		js.bufs = append(js.bufs, c.buf)
	}
	if n > journalMaxRoundBytes {
		clear(js.bufs)
		return
	}
	ticket, ok := js.j.Append(js.name, calls[0].baseOffset, l.writtenEnd, js.bufs)
	clear(js.bufs)
	if ok {
		js.ticket, js.end = ticket, l.writtenEnd
	}
}

// journaledLocked says whether every round written is in the journal.
func (l *Log) journaledLocked() bool {
	js := &l.journal
	return js.j != nil && js.realSyncs == 0 && js.end == l.writtenEnd && js.end > l.logEndOffset
}

// segmentSyncOwedLocked says whether the syncer must make the segment
// itself durable up to writtenEnd (FlushAlways): always without a
// journal; with one, only for Flush and Close.
func (l *Log) segmentSyncOwedLocked() bool {
	return l.journal.j == nil || l.journal.realSyncs > 0
}

// journalSyncLocked is the syncer's turn when the journal holds every
// round written: it waits for the journal's sync instead of the
// segment's. It returns false, having done nothing, otherwise.
func (l *Log) journalSyncLocked() bool {
	if !l.journaledLocked() {
		return false
	}
	js := &l.journal
	target, ticket := js.end, js.ticket
	l.syncing = true
	l.mu.Unlock()
	start := l.flushStart()
	err := js.j.Wait(js.name, ticket)
	l.flushObserved(start)
	l.mu.Lock()
	l.syncing = false
	l.cond.Broadcast()
	switch {
	case errors.Is(err, ErrJournalFull):
		// Not written: the segment's own sync covers the rounds.
		js.end = min(js.end, l.logEndOffset)
	case err != nil:
		l.failLocked(fmt.Errorf("journal: %w", err))
	default:
		l.logEndOffset = max(l.logEndOffset, target)
		l.lastSyncMs = l.nowMs()
		l.noteOwedLocked()
		l.startWritebackLocked()
	}
	return true
}

// noteJournalCheckpointed moves the recovery point to end, which a
// journal checkpoint's syncfs made durable in the segment files; last is
// the newest ticket of the checkpointed file.
func (l *Log) noteJournalCheckpointed(end int64, last uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if last < l.journal.fencedAt || l.closed || l.err != nil {
		return
	}
	l.recoveryPoint = max(l.recoveryPoint, min(end, l.writtenEnd))
}

// fenceJournal journals a fence before a truncation to from (< 0: the
// whole log): a replay must not bring back what the truncation drops.
func (l *Log) fenceJournal(from int64) error {
	l.mu.Lock()
	j, name := l.journal.j, l.journal.name
	l.mu.Unlock()
	if j == nil {
		return nil
	}
	ticket, err := j.Fence(name, from)
	if err != nil {
		return fmt.Errorf("log %s: journal fence at %d: %w: %w", l.dir, from, ErrStorage, err)
	}
	l.mu.Lock()
	l.journal.fencedAt = max(l.journal.fencedAt, ticket)
	l.mu.Unlock()
	return nil
}

// idleFencedLocked waits, mu held, until the log is idle (mutableLocked:
// every queued append written and acknowledged) and, if needed says the
// truncation about to run drops offsets at or past from, until a fence
// for them is durable after the log's last journaled round. The wait
// for idleness journals the rounds it writes: a fence journaled before
// them would not drop them at replay, so it is journaled again until no
// round of the log came after it.
func (l *Log) idleFencedLocked(from int64, needed func() bool) error {
	fenced, after := false, uint64(0)
	for {
		if err := l.mutableLocked(); err != nil {
			return err
		}
		js := &l.journal
		if js.j == nil || !needed() || fenced && js.ticket == after {
			return nil
		}
		after = js.ticket
		l.mu.Unlock()
		err := l.fenceJournal(from)
		l.mu.Lock()
		if err != nil {
			return err
		}
		fenced = true
	}
}

// restoreStartAfterReplay moves the log start offset back up to where
// the checkpoint had it once the replay has brought the log's end past
// it: records a DeleteRecords deleted stay deleted.
func (l *Log) restoreStartAfterReplay() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if start := min(l.journal.openedStart, l.logEndOffset); start > l.logStartOffset {
		l.logStartOffset = start
		l.firstDirtyOffset = max(l.firstDirtyOffset, start)
	}
}

// noteTruncatedLocked resets the journal state after a truncation.
func (l *Log) noteTruncatedLocked() {
	js := &l.journal
	js.end = min(js.end, l.writtenEnd)
}

// replayJournaled appends, at the log's end, a copy of the batches of a
// journal record (base: its first offset) that the segment lost: those below the
// end are there already, and those holding an offset at or past limit a
// later truncation dropped. It returns how many bytes it queued; the
// caller flushes the log afterwards.
//
// A record that starts past the end follows rounds the journal does not
// hold. A round refused as full leaves such a gap when the crash cut
// short the segment sync that stood in for it; the log's syncer waited
// for that sync, so neither that round nor any after it was
// acknowledged. Otherwise the segment lost acknowledged rounds. A refusal
// leaves no trace in the journal, so the error names both; either way
// the log keeps what its segments hold.
func (l *Log) replayJournaled(base int64, batches []byte, limit int64) (int, error) {
	l.mu.Lock()
	end := l.nextOffset
	l.mu.Unlock()
	var keep []byte
	first := int64(-1)
	for rest := batches; len(rest) > 0; {
		b, next, h, err := record.NextBatch(rest)
		if err != nil {
			return 0, fmt.Errorf("log %s: journal record at %d: %w: %w", l.dir, base, ErrStorage, err)
		}
		rest = next
		if h.BaseOffset+int64(h.LastOffsetDelta) >= limit {
			break
		}
		if h.BaseOffset < end {
			continue
		}
		if first < 0 {
			first = h.BaseOffset
		}
		keep = append(keep, b...)
	}
	if len(keep) == 0 {
		return 0, nil
	}
	if first != end {
		return 0, fmt.Errorf("log %s: journal record at %d lies past the log end %d, after rounds the journal does not hold: "+
			"refused while it was full, with their segment sync cut short by the crash (then none of them was acknowledged), "+
			"or lost by the segment: %w", l.dir, first, end, ErrStorage)
	}
	if _, err := l.Enqueue(keep, AppendOptions{AsFollower: true, LeaderEpoch: -1}); err != nil {
		return 0, err
	}
	return len(keep), nil
}
