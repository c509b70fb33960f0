package log

import (
	"errors"
	"fmt"
	"strings"
)

// Deleting a partition's log, as Kafka's LogManager.asyncDelete: the
// directory is first renamed out of the partition's name, the rename made
// durable by an fsync of the log directory, and only then are its files
// removed:
//
//	orders-0 ──rename──▶ orders-0.<unique>-sluice-delete ──fsync /data──▶ deleted ──remove──▶ (gone)
//
// Removing in place (RemoveAll, then an fsync) left, when it failed
// halfway, a directory under the partition's name that the next open or a
// GetOrCreate took for the log, with some of its segments gone. Renamed,
// the old files can never be mistaken for the partition: a name ending in
// deletedLogDirSuffix is not "<topic>-<partition>", and OpenManager
// removes whatever a crash or a failed removal left.
//
// A deletion is done once the rename is durable. Until then it is kept in
// Manager.deleting: Delete returns the failure, and a later Delete, a
// GetOrCreate of the partition or the retention tick redoes the steps that
// did not complete. The fsync goes through the manager's sticky dirSync,
// so after a failed one no deletion (nor creation) succeeds until a
// restart, where the rename either reached the disk (the directory is
// removed at open) or did not (the log is back, and the partition layer
// deletes it again as a stray).

// deletedLogDirSuffix ends the name of a log directory renamed for
// deletion; Kafka's own "-delete" directories are left alone.
const deletedLogDirSuffix = "-sluice-delete"

// maxFileNameBytes is a file name's limit on the file systems a log
// directory lives on (NAME_MAX).
const maxFileNameBytes = 255

// deletedLogDirName names tp's directory renamed for deletion,
// "<topic>-<partition>.<unique>-sluice-delete", the topic cut short, as
// Kafka's logDeleteDirName does, so that it fits a file name: a topic's
// may take 249 bytes, and a rename to a longer name failed every time,
// leaving the log undeletable.
func deletedLogDirName(tp TopicPartition, unique string) string {
	tail := fmt.Sprintf("-%d.%s%s", tp.Partition, unique, deletedLogDirSuffix)
	topic := tp.Topic
	if len(topic)+len(tail) > maxFileNameBytes {
		topic = topic[:max(0, maxFileNameBytes-len(tail))]
	}
	return topic + tail
}

// logDeletion is a deletion's progress, touched only by the goroutine
// that holds the partition's opening mark.
type logDeletion struct {
	tp      TopicPartition
	log     *Log   // nil once closed
	dir     string // the log's directory under the partition's name
	renamed bool   // dir no longer exists under that name
	trash   string // what dir was renamed to; "" once removed (or none)
	synced  bool   // a directory fsync covered the rename
}

// Delete removes a partition's log and its files; a GetOrCreate of the
// same partition meanwhile waits for it, as one waits for an open. It
// returns nil only once the deletion is durable; after a failure, calling
// it again redoes what failed.
func (m *Manager) Delete(tp TopicPartition) error {
	return m.deleteLog(tp, false)
}

// deleteLog runs or resumes tp's deletion; pendingOnly resumes a failed
// one only, never starting one of a live log.
func (m *Manager) deleteLog(tp TopicPartition, pendingOnly bool) error {
	m.mu.Lock()
	if err := m.waitOpeningLocked(tp); err != nil && !errors.Is(err, ErrClosed) {
		m.mu.Unlock()
		return err
	}
	d := m.deleting[tp]
	if d == nil {
		l, ok := m.logs[tp]
		if !ok || pendingOnly {
			m.mu.Unlock()
			return nil
		}
		d = &logDeletion{tp: tp, log: l, dir: m.path(tp.String())}
		delete(m.logs, tp)
		m.deletedSinceCheckpoint[tp] = true
		m.deleting[tp] = d
	}
	// A GetOrCreate of tp waits for the deletion as for an open: the
	// directory it would create is the one being removed.
	done := make(chan struct{})
	m.opening[tp] = done
	m.mu.Unlock()
	err := m.runDeletion(d)
	m.mu.Lock()
	if err == nil {
		delete(m.deleting, tp)
	}
	delete(m.opening, tp)
	close(done)
	m.mu.Unlock()
	if err != nil {
		// ErrStorage (KAFKA_STORAGE_ERROR, retried by clients): a produce
		// to a topic created again under the name fails with it until the
		// deletion is finished.
		return fmt.Errorf("delete log %s: %w: %w", d.dir, ErrStorage, err)
	}
	return nil
}

// runDeletion does the steps of d not yet done.
func (m *Manager) runDeletion(d *logDeletion) error {
	if d.log != nil {
		// A log that failed (ErrStorage) is deleted all the same.
		if err := d.log.Close(); err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrStorage) {
			return err
		}
		// Before the directory goes: a log created again under its name
		// must not have this one's journaled rounds replayed onto it.
		// After Close, which journals the rounds of appends still queued.
		if err := d.log.fenceJournal(-1); err != nil {
			return err
		}
		d.log = nil
	}
	if !d.renamed {
		m.mu.Lock()
		m.deletedDirs++
		unique := fmt.Sprintf("%x.%d", m.opts.Clock.Now().UnixNano(), m.deletedDirs)
		m.mu.Unlock()
		trash := m.path(deletedLogDirName(d.tp, unique))
		err := m.opts.FS.Rename(d.dir, trash)
		switch {
		case isNotExist(err):
			trash = "" // nothing on disk to remove
		case err != nil:
			return err
		}
		d.renamed, d.trash = true, trash
	}
	if !d.synced {
		if err := m.dirSync.sync(m.syncDir); err != nil {
			return fmt.Errorf("log dir %s: %w", m.opts.Dir, err)
		}
		d.synced = true
	}
	if d.trash != "" {
		m.removeTrash(d.trash)
		d.trash = ""
	}
	return nil
}

// removeTrash removes a directory renamed for deletion. The deletion is
// durable already, so a failure loses nothing: it is reported, and the
// retention tick (or the next open) tries again.
func (m *Manager) removeTrash(dir string) {
	if err := m.opts.FS.RemoveAll(dir); err != nil {
		m.opts.Logger.Warn("removing a deleted log's files failed; will retry", "dir", dir, "err", err)
		m.mu.Lock()
		m.trash = append(m.trash, dir)
		m.mu.Unlock()
	}
}

// finishDeletions, on the retention tick, redoes the deletions that
// failed and removes what failed removals left.
func (m *Manager) finishDeletions() {
	m.mu.Lock()
	trash := m.trash
	m.trash = nil
	pending := make([]TopicPartition, 0, len(m.deleting))
	for tp := range m.deleting {
		pending = append(pending, tp)
	}
	m.mu.Unlock()
	for _, dir := range trash {
		m.removeTrash(dir)
	}
	for _, tp := range pending {
		if err := m.deleteLog(tp, true); err != nil {
			m.opts.Logger.Error("deleting a partition's log failed; will retry", "partition", tp.String(), "err", err)
		}
	}
}

// removeDeletedLogDirs removes, at open, the directories of deletions a
// crash or a failed removal left behind.
func (m *Manager) removeDeletedLogDirs(names []string) {
	for _, name := range names {
		if strings.HasSuffix(name, deletedLogDirSuffix) {
			m.removeTrash(m.path(name))
		}
	}
}
