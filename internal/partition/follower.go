package partition

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/replica"
)

// The follower side of replication: the replica fetcher (fetcher.go)
// truncates the log where it diverges from the leader's, then appends
// what the leader sends, byte for byte. Appending keeps the follower's
// producer state and leader-epoch cache current, so it can take over as
// leader at any moment without rescanning its log.

// FollowerPosition is what a follower fetches with.
type FollowerPosition struct {
	LogEndOffset   int64
	LogStartOffset int64
	// LatestEpoch is the newest leader epoch in the follower's log (-1:
	// none), which OffsetForLeaderEpoch asks the leader about.
	LatestEpoch int32
}

// Position returns the follower's log end offset, log start offset and
// newest epoch.
func (p *Partition) Position() FollowerPosition {
	p.epochMu.Lock()
	latest, ok := p.epochs.Latest()
	p.epochMu.Unlock()
	pos := FollowerPosition{LogEndOffset: p.log.LogEndOffset(), LogStartOffset: p.log.LogStartOffset(), LatestEpoch: -1}
	if ok {
		pos.LatestEpoch = latest.Epoch
	}
	return pos
}

// followerRole checks that this node follows the partition in leaderEpoch:
// a fetcher that lags a leadership change must not write into a partition
// that is now led here, or followed under a newer epoch.
func (p *Partition) followerRole(leaderEpoch int32) error {
	r := p.role.Load()
	if r.stopped || r.isLeader || r.leaderEpoch != leaderEpoch {
		return fmt.Errorf("partition %s: no longer following at epoch %d (leader %d, epoch %d): %w",
			p.tp, leaderEpoch, r.leader, r.leaderEpoch, ErrNotFollower)
	}
	return nil
}

// AppendAsFollower appends batches fetched from the leader in leaderEpoch,
// keeping their offsets and epochs, then moves the follower's high
// watermark to min(the leader's, its own log end offset) and its log start
// offset up to the leader's.
func (p *Partition) AppendAsFollower(records []byte, leaderEpoch int32, leaderHighWatermark, leaderLogStartOffset int64) error {
	p.gate.RLock()
	defer p.gate.RUnlock()
	if err := p.followerRole(leaderEpoch); err != nil {
		return err
	}
	records = wholeBatches(records)
	if len(records) > 0 {
		// The fetcher retries a failed append, from the log end.
		if err := p.persistEpochsOf(records); err != nil {
			return fmt.Errorf("partition %s: follower append: %w: writing the leader epoch checkpoint before the epoch's first records: %w", p.tp, log.ErrStorage, err)
		}
		if _, err := p.log.Append(records, log.AppendOptions{AsFollower: true}); err != nil {
			p.dropEpochsPastLogEnd()
			return fmt.Errorf("partition %s: follower append: %w", p.tp, err)
		}
		if err := p.replayAppended(records); err != nil {
			return err
		}
	}
	if leaderLogStartOffset > p.log.LogStartOffset() && leaderLogStartOffset <= p.log.LogEndOffset() {
		if _, err := p.moveLogStartLocked(leaderLogStartOffset); err != nil {
			return fmt.Errorf("follow the leader's log start offset %d: %w", leaderLogStartOffset, err)
		}
		p.trimEpochsToLogStart()
	}
	p.setFollowerHighWatermark(leaderHighWatermark)
	return nil
}

// persistEpochsOf writes the leader epoch checkpoint with the epochs that
// fetched batches start, before the batches are appended, as Kafka's
// append assigns (and fsyncs) batch epochs before the segment append, and
// as the leader writes a new epoch before its first records. Appended
// first, a crash right after would still be repaired (loading replays the
// batches after the newest producer snapshot, and no snapshot can be
// taken inside an append: both hold the gate), but a failed write would
// not: later batches of the epoch change nothing in the cache, so nothing
// wrote the file again, and once a snapshot passed the epoch's start a
// restart lost the epoch. The cache takes the epochs only once the file
// has them; entries loading dropped go too (see loadLeaderEpochs).
func (p *Partition) persistEpochsOf(records []byte) error {
	leo := p.log.LogEndOffset()
	p.epochMu.Lock()
	defer p.epochMu.Unlock()
	newEpoch, inOrder := scanFetchedEpochs(&p.epochs, records, leo)
	if !inOrder {
		// The append refuses them (as Kafka checks offsets before
		// assigning epochs): an epoch taken from such a batch could
		// start inside records of another.
		return nil
	}
	if !p.epochsUnpersisted && !newEpoch {
		return nil // the common case: no copy of the cache on the fetch path
	}
	next, err := replica.NewLeaderEpochCache(p.epochs.Entries())
	if err != nil {
		return err // cannot happen: the entries come from a cache
	}
	for rest := records; len(rest) > 0; {
		_, after, h, err := record.NextBatch(rest)
		if err != nil {
			break // the append refuses it
		}
		assignBatchEpoch(next, &h)
		rest = after
	}
	previous := p.epochs
	p.epochs = *next
	if err := p.persistEpochsLocked(); err != nil {
		p.epochs = previous
		return err
	}
	return nil
}

// scanFetchedEpochs says whether a fetched batch carries an epoch newer
// than the cache's latest, and whether the batches follow each other from
// the log end, as the append requires.
func scanFetchedEpochs(cache *replica.LeaderEpochCache, records []byte, logEndOffset int64) (newEpoch, inOrder bool) {
	latest, ok := cache.Latest()
	next := logEndOffset
	for rest := records; len(rest) > 0; {
		_, after, h, err := record.NextBatch(rest)
		if err != nil {
			break // the append refuses it; epochs before it may be taken
		}
		if h.BaseOffset < next {
			return false, false
		}
		if h.PartitionLeaderEpoch >= 0 && (!ok || h.PartitionLeaderEpoch > latest.Epoch) {
			newEpoch = true
		}
		next = h.NextOffset()
		rest = after
	}
	return newEpoch, true
}

// dropEpochsPastLogEnd forgets the epochs persistEpochsOf added for
// batches the log then refused: the file keeps them until the next write,
// which must come before the log grows past their start (as for entries
// loading drops).
func (p *Partition) dropEpochsPastLogEnd() {
	p.epochMu.Lock()
	defer p.epochMu.Unlock()
	if p.epochs.TruncateFromEnd(p.log.LogEndOffset()) {
		p.epochsUnpersisted = true
	}
}

// wholeBatches drops a partial batch at the end of fetched records: a
// fetch response cut at its byte limit may end inside a batch (consumers
// skip such a tail too), and the rest of it comes with the next fetch.
func wholeBatches(records []byte) []byte {
	n := 0
	for rest := records; len(rest) > 0; {
		batch, next, _, err := record.NextBatch(rest)
		if err != nil {
			break // corrupt batches are left for the append to refuse
		}
		n += len(batch)
		rest = next
	}
	if n == 0 && len(records) >= record.HeaderSize {
		if _, _, _, err := record.NextBatch(records); !errors.Is(err, record.ErrTruncated) {
			return records // not a cut batch: let the append say what is wrong
		}
	}
	return records[:n]
}

// setFollowerHighWatermark is min(the leader's HW, the local log end):
// a follower never claims as committed what it does not hold.
func (p *Partition) setFollowerHighWatermark(leaderHighWatermark int64) {
	hw := min(leaderHighWatermark, p.log.LogEndOffset())
	if hw > p.highWatermark.Load() {
		p.highWatermark.Store(hw)
		p.watchers.Notify()
	}
}

// replayAppended feeds appended batch headers to the producer state and
// the leader-epoch cache, as recovery does from the log.
func (p *Partition) replayAppended(records []byte) error {
	nowMs := p.nowMs()
	epochsChanged := false
	for rest := records; len(rest) > 0; {
		batch, next, h, err := record.NextBatch(rest)
		if err != nil {
			return fmt.Errorf("partition %s: replay follower batch: %w", p.tp, err)
		}
		var marker *record.Marker
		if h.IsControl() {
			marker = markerOf(batch)
		}
		changed, err := p.replayHeader(&h, marker, nowMs)
		if err != nil {
			return err
		}
		epochsChanged = changed || epochsChanged
		rest = next
	}
	if !epochsChanged {
		return nil
	}
	p.epochMu.Lock()
	defer p.epochMu.Unlock()
	return p.persistEpochsLocked()
}

// TruncateForLeader truncates the log where it diverges from the leader's,
// given the leader's answer to OffsetForLeaderEpoch for this replica's
// newest epoch (KIP-101/279); with an undefined answer it falls back to
// the high watermark, as Kafka does. It reports whether the divergence
// point was reached; when not (the leader answered an epoch this log never
// held) the caller asks again with the newest epoch left after this
// truncation (KIP-279).
func (p *Partition) TruncateForLeader(leaderEpoch, answerEpoch int32, answerEndOffset int64) (final bool, err error) {
	p.snapshotMu.Lock() // truncation reloads producer state, which snapshots guard
	defer p.snapshotMu.Unlock()
	p.gate.Lock()
	defer p.gate.Unlock()
	if err := p.followerRole(leaderEpoch); err != nil {
		return false, err
	}
	leo := p.log.LogEndOffset()
	p.epochMu.Lock()
	offset, ok := replica.TruncationOffset(&p.epochs, leo, answerEpoch, answerEndOffset)
	final = replica.TruncationFinal(&p.epochs, leo, answerEpoch, answerEndOffset)
	p.epochMu.Unlock()
	if !ok {
		offset = min(p.highWatermark.Load(), leo)
	}
	if offset >= leo {
		return final, nil
	}
	p.logger.Info("truncating divergent records", "from", leo, "to", offset,
		slog.Int("leader_epoch", int(answerEpoch)), slog.Int64("leader_end_offset", answerEndOffset), slog.Bool("final", final))
	return final, p.truncateLocked(offset, false)
}

// TruncateFullyAndStartAt empties the log and restarts it at offset (the
// leader's log start offset), when the follower's log ends below it.
func (p *Partition) TruncateFullyAndStartAt(leaderEpoch int32, offset int64) error {
	p.snapshotMu.Lock()
	defer p.snapshotMu.Unlock()
	p.gate.Lock()
	defer p.gate.Unlock()
	if err := p.followerRole(leaderEpoch); err != nil {
		return err
	}
	p.logger.Info("log is behind the leader's log start; starting over", "from", p.log.LogEndOffset(), "at", offset)
	return p.truncateLocked(offset, true)
}

// truncateLocked truncates the log (gate held exclusively) and brings the
// derived state along: the epoch cache loses entries past the end, the
// producer state is rebuilt from the newest snapshot the log still covers,
// the high watermark never points past the log end.
//
// It does so from the log's actual end also when the truncation failed:
// the log may have changed before the failure (the manager checkpoints
// after truncating, and that write can fail), and derived state past the
// log's end would outlive the error. The error is returned all the same.
func (p *Partition) truncateLocked(offset int64, fully bool) error {
	var err error
	if fully {
		// The snapshots go first, durably: a crash after the log's
		// restart but before their removal reached the disk loaded the
		// newest of them at the next start (a snapshot below the log
		// start is trusted, for retention's sake), producers of batches
		// the log no longer holds. Gone first, a crash before the
		// restart leaves the old log, which the next fetch finds behind
		// the leader's start again.
		if err := p.removeSnapshots(); err != nil {
			return fmt.Errorf("partition %s: start over at %d: %w", p.tp, offset, err)
		}
		err = p.logs.TruncateFullyAndStartAt(p.tp, offset)
	} else {
		err = p.logs.Truncate(p.tp, offset)
	}
	if err != nil {
		err = fmt.Errorf("partition %s: truncate to %d: %w", p.tp, offset, err)
	}
	// A full truncation that failed before restarting the log leaves it
	// as it was, high watermark included.
	fully = fully && (err == nil || p.log.LogEndOffset() == offset)
	return errors.Join(err, p.followTruncationLocked(fully))
}

// followTruncationLocked brings the derived state along to the log's end
// after a truncation (see truncateLocked).
func (p *Partition) followTruncationLocked(fully bool) error {
	leo := p.log.LogEndOffset()
	p.epochMu.Lock()
	changed := p.epochs.TruncateFromEnd(leo)
	if fully {
		changed = p.epochs.TruncateFromStart(p.log.LogStartOffset()) || changed
	}
	var errs []error
	// Also when loading left the file with entries the cache dropped: a
	// full truncation may restart the log past their start.
	if changed || p.epochsUnpersisted {
		errs = append(errs, p.persistEpochsLocked())
	}
	p.epochMu.Unlock()
	if p.highWatermark.Load() > leo || fully {
		p.highWatermark.Store(leo)
	}
	p.producers.reset()
	p.producerResets++
	if fully {
		// The log holds none of the batches any snapshot describes, as
		// in Kafka's truncateFullyAndStartAt: truncateLocked removed
		// every snapshot before it restarted the log (under snapshotMu,
		// so none was written since), and none is loaded.
		p.lastSnapshotOffset = leo
	} else {
		errs = append(errs, p.loadProducers())
	}
	return errors.Join(errs...)
}
