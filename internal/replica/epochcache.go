// Package replica holds the pure per-partition replication state, the
// decisions of docs/replication.md without their I/O: on a leader, LeaderState
// tracks each follower's log end offset and catch-up time, computes the high
// watermark and decides when to propose shrinking or expanding the ISR; on a
// follower, TruncationOffset finds where its log diverges from a new
// leader's; on both, the leader-epoch cache maps each leader epoch to the
// first offset written in it, which answers OffsetForLeaderEpoch for
// followers and for consumers detecting truncation (KIP-101, KIP-279,
// KIP-320).
//
// Invariants: the high watermark only grows and never passes the leader's
// log end offset. It is computed from the ISR the controller committed plus
// the pending proposal's members (Kafka's maximal ISR), never from a
// proposal alone: a member we proposed to remove keeps holding the HW until
// the controller commits its removal, since the controller may refuse and
// that member may still become leader. One ISR proposal is in flight at a
// time. Epoch-cache entries are ordered by strictly increasing epoch and
// non-decreasing start offset. Nothing here does I/O or reads a clock (time
// enters as nowMs): internal/partition persists EncodeCheckpoint's bytes, feeds
// ParseCheckpoint what it read, sends the proposals as AlterPartition and
// hands back the controller's answers.
package replica

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Kafka's "no epoch" and "no offset" answers (UNDEFINED_EPOCH,
// UNDEFINED_EPOCH_OFFSET).
const (
	UndefinedEpoch       int32 = -1
	UndefinedEpochOffset int64 = -1
)

// EpochEntry says that leader epoch Epoch wrote its first record at
// StartOffset.
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// LeaderEpochCache is Kafka's LeaderEpochFileCache without the file. The
// zero value is empty. Not safe for concurrent use: its owner locks.
type LeaderEpochCache struct {
	entries []EpochEntry
}

// ErrInvalidCheckpoint: a leader-epoch-checkpoint file does not parse.
var ErrInvalidCheckpoint = errors.New("invalid leader-epoch-checkpoint")

// NewLeaderEpochCache returns a cache holding entries, which must keep the
// invariants (as ParseCheckpoint's result does).
func NewLeaderEpochCache(entries []EpochEntry) (*LeaderEpochCache, error) {
	if err := checkEntries(entries); err != nil {
		return nil, err
	}
	return &LeaderEpochCache{entries: append([]EpochEntry(nil), entries...)}, nil
}

func checkEntries(entries []EpochEntry) error {
	for i, e := range entries {
		if e.Epoch < 0 || e.StartOffset < 0 {
			return fmt.Errorf("%w: entry %d (epoch %d, offset %d) is negative", ErrInvalidCheckpoint, i, e.Epoch, e.StartOffset)
		}
		if i > 0 && (e.Epoch <= entries[i-1].Epoch || e.StartOffset < entries[i-1].StartOffset) {
			return fmt.Errorf("%w: entry %d (epoch %d, offset %d) does not follow (epoch %d, offset %d)",
				ErrInvalidCheckpoint, i, e.Epoch, e.StartOffset, entries[i-1].Epoch, entries[i-1].StartOffset)
		}
	}
	return nil
}

// Entries returns a copy of the entries, oldest first.
func (c *LeaderEpochCache) Entries() []EpochEntry {
	return append([]EpochEntry(nil), c.entries...)
}

// Latest returns the newest entry.
func (c *LeaderEpochCache) Latest() (EpochEntry, bool) {
	if len(c.entries) == 0 {
		return EpochEntry{}, false
	}
	return c.entries[len(c.entries)-1], true
}

// Assign records that epoch started at startOffset, as Kafka's assign does:
// it is a no-op when the newest entry already has this epoch at an offset no
// higher; otherwise every entry that would contradict the new one (an epoch
// as new or newer, or a start offset as high or higher) is dropped first.
// It reports whether the cache changed, so the caller knows to persist it.
func (c *LeaderEpochCache) Assign(epoch int32, startOffset int64) bool {
	if epoch < 0 || startOffset < 0 {
		return false
	}
	if latest, ok := c.Latest(); ok && latest.Epoch == epoch && latest.StartOffset <= startOffset {
		return false
	}
	n := len(c.entries)
	for n > 0 && (c.entries[n-1].Epoch >= epoch || c.entries[n-1].StartOffset >= startOffset) {
		n--
	}
	c.entries = append(c.entries[:n], EpochEntry{Epoch: epoch, StartOffset: startOffset})
	return true
}

// EndOffsetFor answers OffsetForLeaderEpoch as Kafka's endOffsetFor does:
// the largest epoch at or below the requested one, and the offset where the
// next higher epoch starts (the log end offset when the requested epoch is
// the latest). An epoch below every entry gets the requested epoch and the
// first entry's start offset (older epochs may have been truncated away);
// an undefined epoch, or one above every entry, gets (-1, -1).
func (c *LeaderEpochCache) EndOffsetFor(epoch int32, logEndOffset int64) (int32, int64) {
	if epoch == UndefinedEpoch {
		return UndefinedEpoch, UndefinedEpochOffset
	}
	if latest, ok := c.Latest(); ok && latest.Epoch == epoch {
		return epoch, logEndOffset
	}
	higher := -1 // first entry with a larger epoch
	for i, e := range c.entries {
		if e.Epoch > epoch {
			higher = i
			break
		}
	}
	switch higher {
	case -1:
		return UndefinedEpoch, UndefinedEpochOffset
	case 0:
		return epoch, c.entries[0].StartOffset
	}
	return c.entries[higher-1].Epoch, c.entries[higher].StartOffset
}

// TruncateFromEnd drops the entries starting at or after endOffset: the log
// was truncated there (or a crash lost its tail), so those epochs wrote
// nothing that remains. It reports whether the cache changed.
func (c *LeaderEpochCache) TruncateFromEnd(endOffset int64) bool {
	n := len(c.entries)
	for n > 0 && c.entries[n-1].StartOffset >= endOffset {
		n--
	}
	changed := n != len(c.entries)
	c.entries = c.entries[:n]
	return changed
}

// TruncateFromStart forgets epochs wholly below startOffset, the new log
// start offset: the entries starting at or below it collapse into the last
// of them, moved up to startOffset, as Kafka does. This is what bounds the
// cache: it holds one entry per leader epoch still in the log.
func (c *LeaderEpochCache) TruncateFromStart(startOffset int64) bool {
	n := 0
	for n < len(c.entries) && c.entries[n].StartOffset <= startOffset {
		n++
	}
	if n == 0 || (n == 1 && c.entries[0].StartOffset == startOffset) {
		return false
	}
	kept := c.entries[n-1]
	kept.StartOffset = startOffset
	c.entries = append(c.entries[:0], append([]EpochEntry{kept}, c.entries[n:]...)...)
	return true
}

// The leader-epoch-checkpoint file, Kafka's format (it must not change:
// Kafka tools read it):
//
//	0               version
//	2               number of entries
//	0 0             epoch, space, start offset; one line per entry,
//	3 150           oldest first
const checkpointVersion = 0

// MaxCheckpointEntries bounds what ParseCheckpoint accepts before
// allocating: far above any real number of leader epochs in one log.
const MaxCheckpointEntries = 1 << 20

// EncodeCheckpoint returns the checkpoint file's contents for entries.
func EncodeCheckpoint(entries []EpochEntry) []byte {
	b := make([]byte, 0, 8+len(entries)*16)
	b = strconv.AppendInt(b, checkpointVersion, 10)
	b = append(b, '\n')
	b = strconv.AppendInt(b, int64(len(entries)), 10)
	b = append(b, '\n')
	for _, e := range entries {
		b = strconv.AppendInt(b, int64(e.Epoch), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, e.StartOffset, 10)
		b = append(b, '\n')
	}
	return b
}

// ParseCheckpoint reads a checkpoint file's contents, checking the version,
// the count against the lines present, and the entries' order.
func ParseCheckpoint(data []byte) ([]EpochEntry, error) {
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte{'\n'})
	if len(lines) < 2 {
		return nil, fmt.Errorf("%w: %d lines, need a version and a count", ErrInvalidCheckpoint, len(lines))
	}
	if v, err := strconv.Atoi(string(bytes.TrimSpace(lines[0]))); err != nil || v != checkpointVersion {
		return nil, fmt.Errorf("%w: version %q, want %d", ErrInvalidCheckpoint, lines[0], checkpointVersion)
	}
	count, err := strconv.Atoi(string(bytes.TrimSpace(lines[1])))
	if err != nil || count < 0 || count > MaxCheckpointEntries || count != len(lines)-2 {
		return nil, fmt.Errorf("%w: count %q with %d entry lines", ErrInvalidCheckpoint, lines[1], len(lines)-2)
	}
	entries := make([]EpochEntry, 0, count)
	for i, line := range lines[2:] {
		fields := bytes.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("%w: line %d %q", ErrInvalidCheckpoint, i+3, line)
		}
		epoch, err1 := strconv.ParseInt(string(fields[0]), 10, 32)
		offset, err2 := strconv.ParseInt(string(fields[1]), 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%w: line %d %q", ErrInvalidCheckpoint, i+3, line)
		}
		entries = append(entries, EpochEntry{Epoch: int32(epoch), StartOffset: offset})
	}
	if err := checkEntries(entries); err != nil {
		return nil, err
	}
	return entries, nil
}
