package log

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/sluicelog/sluice/internal/parallel"
	"github.com/sluicelog/sluice/internal/vfs"
)

// journalDirName is the journal's directory inside the log directory; it
// parses as no partition, so openAll passes it by.
const journalDirName = "journal"

// managerJournal is the manager's side of the journal (journal.go).
type managerJournal struct {
	j      *Journal
	syncer vfs.FileSystemSyncer // the journal's checkpoints' syncfs; closed with it
	// live is j once the replay is done and the logs may use it; logs
	// opened before must not journal into what is being replayed.
	live *Journal
	// writeback starts the write-back of the logs' journaled segment
	// bytes, so that a checkpoint's syncfs has little left to write.
	writeback *segmentWriteback
	// replayedBytes counts what the open's replay appended.
	replayedBytes int64
	// retiring: the journal was turned off (log.flush.journal=false)
	// with one left in the directory, which is replayed, then removed.
	retiring bool
}

// openJournal opens the journal of the log directory when
// ManagerOptions.Journal asks for one. Without syncfs it cannot
// checkpoint, so the logs sync their segments as without it.
//
// A journal left in the directory while the option is off now, or while
// syncfs is refused now (a mount no longer trusted, another kernel),
// still holds rounds that were acknowledged from it alone: it is opened
// to be replayed, then removed (retireJournal). Its replay needs no
// syncfs: the logs' Flush makes what it appended durable.
func (m *Manager) openJournal() error {
	_, statErr := m.opts.FS.Stat(m.path(journalDirName))
	left := statErr == nil // else none; or one the replay cannot read either way
	if !m.opts.Journal && !left {
		return nil
	}
	retiring := !m.opts.Journal
	syncer, err := m.opts.FS.OpenFileSystemSyncer(m.opts.Dir)
	if errors.Is(err, errors.ErrUnsupported) {
		if m.opts.Journal {
			// Info, not a warning: the journal is on by default, and
			// on a system without syncfs (not Linux) nothing is wrong.
			m.opts.Logger.Info("no write-ahead journal here (log.flush.journal needs syncfs); append rounds sync their own segments", "dir", m.opts.Dir, "reason", err)
		}
		if !left {
			return nil
		}
		syncer, retiring = refusedSyncer{err}, true
	} else if err != nil {
		return fmt.Errorf("log dir %s: journal: %w", m.opts.Dir, err)
	}
	fileBytes := m.opts.JournalFileBytes
	if retiring {
		// Read as it is: the configured size would grow its files (a
		// removal cut short may have left either one alone).
		found := int64(0)
		for _, name := range []string{"0.wal", "1.wal"} {
			if st, err := m.opts.FS.Stat(filepath.Join(m.path(journalDirName), name)); err == nil {
				found = max(found, st.Size())
			}
		}
		if found > 0 {
			fileBytes = max(found, minJournalFileBytes)
		}
	}
	j, err := OpenJournal(JournalOptions{FS: m.opts.FS, Dir: m.path(journalDirName), Syncer: syncer, FileBytes: fileBytes,
		Logger: m.opts.Logger, Checkpointed: m.journalCheckpointed})
	if err != nil {
		syncer.Close()
		return fmt.Errorf("log dir %s: %w", m.opts.Dir, err)
	}
	m.journal = managerJournal{j: j, syncer: syncer, retiring: retiring}
	if !retiring {
		m.journal.writeback = newSegmentWriteback(m.opts.Logger, writebackMinBytes)
	}
	return nil
}

// replayJournal puts back, after the logs recovered from their segments,
// what the journal acknowledged and the segments lost; makes it durable
// in the segments; empties the journal; and only then lets the logs use
// it. A log whose records cannot be replayed is reported and left as
// its segments have it.
func (m *Manager) replayJournal() error {
	j := m.journal.j
	if j == nil {
		return nil
	}
	replayed := map[*Log]bool{}
	broken := map[*Log]bool{}
	err := j.Replay(func(name string, base int64, batches []byte, limit int64) error {
		tp, ok := ParseTopicPartition(name)
		if !ok {
			return nil
		}
		l := m.logs[tp]
		if l == nil || broken[l] {
			return nil // deleted since, or already reported
		}
		n, err := l.replayJournaled(base, batches, limit)
		if err != nil {
			m.opts.Logger.Error("journal replay stopped for a log", "log", l.Dir(), "err", err)
			broken[l] = true
			return nil
		}
		if n > 0 {
			replayed[l] = true
			m.journal.replayedBytes += int64(n)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("log dir %s: journal replay: %w", m.opts.Dir, err)
	}
	if err := m.flushReplayed(replayed); err != nil {
		return err
	}
	for _, l := range m.logs {
		if err := l.settleTxnIndexAfterReplay(); err != nil {
			return fmt.Errorf("log dir %s: after the journal replay: %w", m.opts.Dir, err)
		}
	}
	// Before a removal too: its files go in any order, and the older
	// one left alone would be replayed without the newer one's fences.
	if err := j.Reset(); err != nil {
		return fmt.Errorf("log dir %s: journal: %w", m.opts.Dir, err)
	}
	if m.journal.retiring {
		return m.retireJournal()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.journal.live = j
	for _, l := range m.logs {
		l.setJournal(j, m.journal.writeback)
	}
	return nil
}

// refusedSyncer stands in for syncfs where it is refused, for a journal
// opened only to be replayed and removed: that never checkpoints.
type refusedSyncer struct{ err error }

func (s refusedSyncer) SyncFS() error { return s.err }
func (refusedSyncer) Close() error    { return nil }

// retireJournal removes a journal replayed while the option is off, or
// syncfs refused; its rounds are durable in their segments by now
// (flushReplayed).
func (m *Manager) retireJournal() error {
	err := m.closeJournal()
	m.journal = managerJournal{replayedBytes: m.journal.replayedBytes}
	if err != nil {
		return fmt.Errorf("log dir %s: journal: %w", m.opts.Dir, err)
	}
	if err := m.opts.FS.RemoveAll(m.path(journalDirName)); err != nil {
		return fmt.Errorf("log dir %s: removing the journal: %w", m.opts.Dir, err)
	}
	if err := m.opts.FS.SyncDir(m.opts.Dir); err != nil {
		return fmt.Errorf("log dir %s: %w", m.opts.Dir, err)
	}
	m.opts.Logger.Info("the journal, off or without syncfs now, was replayed and removed", "dir", m.opts.Dir)
	return nil
}

// flushReplayed makes what the replay appended durable in the segments.
func (m *Manager) flushReplayed(replayed map[*Log]bool) error {
	logs := make([]*Log, 0, len(replayed))
	for l := range replayed {
		logs = append(logs, l)
	}
	var mu sync.Mutex
	var errs []error
	parallel.ForEach(logs, openParallelism, func(l *Log) {
		if err := l.Flush(); err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			return
		}
		l.restoreStartAfterReplay()
	})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("log dir %s: after the journal replay: %w", m.opts.Dir, err)
	}
	return nil
}

// journalCheckpointed moves the recovery points of the logs a journal
// checkpoint's syncfs made durable, and writes them out, so that the
// journal file holding their rounds may be reused.
func (m *Manager) journalCheckpointed(ends map[string]int64, last uint64) error {
	for name, end := range ends {
		tp, ok := ParseTopicPartition(name)
		if !ok {
			continue
		}
		if l, ok := m.Log(tp); ok {
			l.noteJournalCheckpointed(end, last)
		}
	}
	return m.Checkpoint()
}

// JournalStats reports what the directory's journal did; all zero
// without one.
func (m *Manager) JournalStats() JournalStats {
	if m.journal.j == nil {
		return JournalStats{}
	}
	return m.journal.j.Stats()
}

// JournalReplayedBytes is what the open's journal replay appended to the
// logs: more than zero only after a crash lost segment bytes that the
// journal held.
func (m *Manager) JournalReplayedBytes() int64 {
	return m.journal.replayedBytes
}

// WritebackStats reports the directory's segment write-back hints; all
// zero without a journal.
func (m *Manager) WritebackStats() WritebackStats {
	if m.journal.writeback == nil {
		return WritebackStats{}
	}
	return m.journal.writeback.Stats()
}

// closeJournal closes the journal once the logs are closed (their
// segments synced).
func (m *Manager) closeJournal() error {
	if m.journal.j == nil {
		return nil
	}
	if m.journal.writeback != nil {
		m.journal.writeback.close()
	}
	err := m.journal.j.Close()
	if serr := m.journal.syncer.Close(); err == nil {
		err = serr
	}
	return err
}

// setJournal lets the log's rounds use j, and wb for write-back hints,
// from now on.
func (l *Log) setJournal(j *Journal, wb *segmentWriteback) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.journal.j, l.journal.writeback = j, wb
	l.journal.end = l.writtenEnd
	l.journal.fencedAt = j.LastTicket()
}
