package partition

import (
	"errors"
	"fmt"
	"sync"

	"github.com/sluicelog/sluice/internal/parallel"
	"github.com/sluicelog/sluice/internal/vfs"
)

// Producer-state snapshots are written in sweeps: every checkpoint
// interval for every hosted partition whose log moved, and once more at
// a clean shutdown. (Kafka snapshots at each segment roll and at
// shutdown; the periodic sweep bounds what a restart after a crash
// rescans to one interval of each log instead of up to a segment.)
//
// Written file by file, each snapshot cost an fdatasync of its temporary
// file and an fsync of its partition directory after the rename, and on
// ext4 each of those commits the journal on its own: at 10,000
// partitions, 20,000 journal commits, about 40 s of every 60 s interval
// competing with the produce path for the disk (docs/testing.md). A
// sweep instead goes in phases, each over all partitions:
//
//	1. write   capture the state under the gate; write it to
//	           <offset>.snapshot.tmp, unsynced
//	2. sync    one syncfs of the log directory's file system, shared
//	           with the logs' append rounds (log.Manager.SyncFileSystem)
//	3. rename  each temporary file to <offset>.snapshot
//	4. commit  fsync each partition directory (on ext4 the first
//	           commits the journal holding all the renames, the rest
//	           find it committed), then drop the snapshots past
//	           snapshotsKept
//
// Crash safety is that of the file-by-file write: no name points at
// bytes that are not durable (phase 2 before 3), and the older
// snapshots are removed only after the new one's name is (4). Where no
// syncfs can be shared (refused, log.flush.shared.sync=false, or one
// failed), phase 1 fdatasyncs each file before closing it, as before;
// the renames still share their journal commits.
//
// Between phases a partition's snapshotMu is free, so a follower's
// truncation or a deletion need not wait for a whole sweep. Each phase
// takes it again and drops the snapshot when the partition was deleted,
// its producer state reloaded by a truncation (producerResets moved: the
// snapshot may describe batches no longer in the log), or its log failed.

// pendingSnapshot is a snapshot written in phase 1, not yet named.
type pendingSnapshot struct {
	p      *Partition
	offset int64
	resets uint64 // p.producerResets when it was captured
}

// snapshotSweepParallelism bounds the partitions of a periodic sweep
// written, renamed or committed at once. One: the sweep runs beside the
// produce path, and 32 at once (as hosting does) halved the produce
// spread over 10,000 partitions while sweeps ran, file creations taking
// the CPU and directory fsyncs the disk (docs/testing.md); one at a time
// it was as fast as with the old file-by-file snapshots. Close, with
// nothing left to compete with, sweeps hostParallelism at a time.
const snapshotSweepParallelism = 1

// snapshotProducers snapshots the producer state of every partition of
// parts whose log moved since its last snapshot (see above). Errors are
// per partition (wrapped with its name); a failed syncfs fails the
// whole sweep, and no snapshot of it is named. parallelism partitions
// are worked on at a time.
func (m *Manager) snapshotProducers(parts []*Partition, parallelism int) (failed map[*Partition]error, err error) {
	// One sweep at a time: the temporary files are named by offset, and a
	// closing Manager's sweep must not race a periodic one.
	m.snapshotSweepMu.Lock()
	defer m.snapshotSweepMu.Unlock()
	failed = map[*Partition]error{}
	var mu sync.Mutex
	fail := func(p *Partition, err error) {
		mu.Lock()
		failed[p] = errors.Join(failed[p], err)
		mu.Unlock()
	}
	shared := m.opts.Logs.SharesSyncs()
	var pending []pendingSnapshot
	parallel.ForEach(parts, parallelism, func(p *Partition) {
		s, ok, err := p.writeSnapshotTemp(!shared)
		if err != nil {
			fail(p, err)
		}
		if ok {
			mu.Lock()
			pending = append(pending, s)
			mu.Unlock()
		}
	})
	if len(pending) == 0 {
		return failed, nil
	}
	if m.snapshotSweepFault != nil {
		m.snapshotSweepFault()
	}
	if shared {
		if err := m.opts.Logs.SyncFileSystem(); err != nil {
			for _, s := range pending {
				s.p.discardSnapshotTemp(s)
			}
			return failed, fmt.Errorf("producer state snapshots of %d partitions: %w", len(pending), err)
		}
	}
	parallel.ForEach(pending, parallelism, func(s pendingSnapshot) {
		if err := s.p.renameSnapshot(s); err != nil {
			fail(s.p, err)
		}
	})
	parallel.ForEach(pending, parallelism, func(s pendingSnapshot) {
		if err := s.p.commitSnapshot(s); err != nil {
			fail(s.p, err)
		}
	})
	return failed, nil
}

// snapshotValidLocked reports whether s may still become the partition's
// snapshot (see the sweep's comment); snapshotMu held.
func (p *Partition) snapshotValidLocked(s pendingSnapshot) bool {
	return !p.deleted && s.resets == p.producerResets && p.log.Err() == nil
}

// writeSnapshotTemp is phase 1 for one partition: ok reports a snapshot
// written, to be renamed; sync has the file fdatasynced before it closes.
func (p *Partition) writeSnapshotTemp(sync bool) (s pendingSnapshot, ok bool, err error) {
	p.snapshotMu.Lock()
	defer p.snapshotMu.Unlock()
	// Checked while writing, under snapshotMu: a deleted log's path may
	// be a re-created one's, which must not get this file.
	if p.deleted {
		return s, false, nil
	}
	p.gate.Lock()
	leo := p.log.LogEndOffset()
	// A failed log's producer state may hold batches that were queued
	// (recorded before their write, so a pipelined next batch can follow)
	// and then never written: snapshotted, a restart would answer their
	// retries as duplicates at offsets other records then take. The log
	// already reported its failure; the restart rebuilds the state from
	// the last good snapshot and the log itself.
	if leo == p.lastSnapshotOffset || p.log.Err() != nil {
		p.gate.Unlock()
		return s, false, nil
	}
	producers := p.producers.snapshot(p.nowMs())
	p.gate.Unlock()
	tmp := p.path(snapshotName(leo)) + vfs.TempSuffix
	// A failed write leaves the file to the next listSnapshots, which
	// removes temporary files.
	if err := vfs.WriteFile(p.fs, tmp, encodeSnapshot(leo, producers), sync); err != nil {
		return s, false, fmt.Errorf("partition %s: %w", p.tp, err)
	}
	return pendingSnapshot{p: p, offset: leo, resets: p.producerResets}, true, nil
}

// discardSnapshotTemp removes the temporary file of a snapshot that will
// not be named. A deleted partition's path may be a re-created log's,
// whose files are left alone (its own listSnapshots removes any
// temporary file a crash left).
func (p *Partition) discardSnapshotTemp(s pendingSnapshot) {
	p.snapshotMu.Lock()
	defer p.snapshotMu.Unlock()
	p.removeSnapshotTempLocked(s)
}

func (p *Partition) removeSnapshotTempLocked(s pendingSnapshot) {
	if p.deleted {
		return
	}
	tmp := p.path(snapshotName(s.offset)) + vfs.TempSuffix
	if err := p.fs.Remove(tmp); err != nil && !isNotExist(err) {
		p.logger.Warn("removing an unused producer state snapshot", "file", tmp, "err", err)
	}
}

// renameSnapshot is phase 3 for one partition: the snapshot's bytes are
// durable, so it may take its name.
func (p *Partition) renameSnapshot(s pendingSnapshot) error {
	p.snapshotMu.Lock()
	defer p.snapshotMu.Unlock()
	if !p.snapshotValidLocked(s) {
		p.removeSnapshotTempLocked(s)
		return nil
	}
	name := p.path(snapshotName(s.offset))
	if err := p.fs.Rename(name+vfs.TempSuffix, name); err != nil {
		return fmt.Errorf("partition %s: rename %s: %w", p.tp, name, err)
	}
	return nil
}

// commitSnapshot is phase 4 for one partition: the snapshot's name is
// made durable, and only then are the older snapshots past
// snapshotsKept dropped.
func (p *Partition) commitSnapshot(s pendingSnapshot) error {
	p.snapshotMu.Lock()
	defer p.snapshotMu.Unlock()
	// A truncation since the rename reloaded the state from the
	// snapshots it found, this one maybe, and removed those past the
	// log end itself; a deleted log's directory is no longer its.
	if !p.snapshotValidLocked(s) {
		return nil
	}
	dir := p.log.Dir()
	if err := p.fs.SyncDir(dir); err != nil {
		return fmt.Errorf("partition %s: sync %s: %w", p.tp, dir, err)
	}
	p.lastSnapshotOffset = s.offset
	offsets, err := listSnapshots(p.fs, dir)
	if err != nil {
		return fmt.Errorf("partition %s: %w", p.tp, err)
	}
	kept := 0
	for _, off := range offsets { // newest first
		if off <= s.offset && kept < snapshotsKept {
			kept++
			continue
		}
		if err := p.fs.Remove(p.path(snapshotName(off))); err != nil {
			return fmt.Errorf("partition %s: %w", p.tp, err)
		}
	}
	return nil
}
