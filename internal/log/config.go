package log

import (
	"fmt"
	"math"
	"time"
)

// FlushPolicy says when appended bytes are fsynced.
type FlushPolicy int8

const (
	// FlushAlways fsyncs before an append returns. Concurrent appends share
	// one write and one fsync (group commit). Sluice's default: an
	// acknowledged record survives power loss.
	FlushAlways FlushPolicy = iota
	// FlushInterval fsyncs at most every FlushMs; an append returns once its
	// bytes are in the page cache. This is Kafka's flush.ms behaviour.
	FlushInterval
	// FlushNever leaves flushing to the operating system (Kafka's default):
	// only rolls and clean shutdowns fsync.
	FlushNever
)

func (p FlushPolicy) String() string {
	switch p {
	case FlushAlways:
		return "always"
	case FlushInterval:
		return "interval"
	case FlushNever:
		return "never"
	}
	return fmt.Sprintf("FlushPolicy(%d)", int8(p))
}

// ParseFlushPolicy reads a policy name as written in configuration.
func ParseFlushPolicy(s string) (FlushPolicy, error) {
	for _, p := range []FlushPolicy{FlushAlways, FlushInterval, FlushNever} {
		if p.String() == s {
			return p, nil
		}
	}
	return 0, fmt.Errorf("unknown flush policy %q (want always, interval or never)", s)
}

// Config is the per-log configuration, named after Kafka's topic configs.
type Config struct {
	SegmentBytes int64 // segment.bytes: roll when the active segment would exceed it
	SegmentMs    int64 // segment.ms: roll when the active segment is older
	// SegmentJitterMs is segment.jitter.ms: each segment rolls up to this
	// much (drawn at random when it becomes active) before segment.ms.
	SegmentJitterMs    int64
	IndexIntervalBytes int64 // index.interval.bytes: bytes of log between index entries
	SegmentIndexBytes  int64 // segment.index.bytes: index file capacity; a full index rolls
	RetentionMs        int64 // retention.ms: delete sealed segments older than this; -1 keeps forever
	RetentionBytes     int64 // retention.bytes: delete oldest sealed segments above this size; negative = no limit
	FlushPolicy        FlushPolicy
	FlushMs            int64 // flush.ms: with FlushInterval, the longest unsynced time
	// FlushMessages is flush.messages: an append that leaves this many
	// offsets unsynced fsyncs, whatever the policy; 0 or MaxInt64: never.
	FlushMessages int64
	// FileDeleteDelayMs is file.delete.delay.ms: how long the files of a
	// segment removed by retention or DeleteRecords linger renamed
	// .deleted; 0 removes them at once.
	FileDeleteDelayMs int64

	// Compaction (cleanup.policy contains compact; see cleaner.go).
	Compact                bool
	DeleteRetentionMs      int64   // delete.retention.ms: how long a cleaned tombstone stays
	MinCompactionLagMs     int64   // min.compaction.lag.ms: a segment this young is not cleaned
	MaxCompactionLagMs     int64   // max.compaction.lag.ms: a dirty segment this old is cleaned whatever the ratio
	MinCleanableDirtyRatio float64 // min.cleanable.dirty.ratio: dirty share of the log that triggers a clean
}

// DefaultConfig returns Kafka's defaults, except that Sluice fsyncs before
// acknowledging (FlushAlways) where Kafka leaves it to the page cache, and
// that retired segments are removed at once (FileDeleteDelayMs 0): only a
// log whose manager ticks can remove them later, and a bare log (the raft
// log) has none. Topics get Kafka's 60 s from file.delete.delay.ms.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:       1 << 30,
		SegmentMs:          (7 * 24 * time.Hour).Milliseconds(),
		IndexIntervalBytes: 4096,
		SegmentIndexBytes:  10 << 20,
		RetentionMs:        (7 * 24 * time.Hour).Milliseconds(),
		RetentionBytes:     -1,
		FlushPolicy:        FlushAlways,
		FlushMs:            1000,
		FlushMessages:      math.MaxInt64,

		DeleteRetentionMs:      (24 * time.Hour).Milliseconds(),
		MaxCompactionLagMs:     math.MaxInt64,
		MinCleanableDirtyRatio: 0.5,
	}
}

// Validate rejects values Kafka rejects, naming the config key.
func (c Config) Validate() error {
	switch {
	case c.SegmentBytes < minSegmentBytes || c.SegmentBytes > math.MaxInt32:
		return fmt.Errorf("segment.bytes %d must be between %d and %d", c.SegmentBytes, minSegmentBytes, math.MaxInt32)
	case c.SegmentMs < 1:
		return fmt.Errorf("segment.ms %d must be at least 1", c.SegmentMs)
	case c.SegmentJitterMs < 0:
		return fmt.Errorf("segment.jitter.ms %d must not be negative", c.SegmentJitterMs)
	case c.IndexIntervalBytes < 0:
		return fmt.Errorf("index.interval.bytes %d must not be negative", c.IndexIntervalBytes)
	case c.SegmentIndexBytes < minSegmentIndexBytes || c.SegmentIndexBytes > math.MaxInt32:
		// Kafka's bound; an index too small for one entry rolls the
		// segment after every append, as Kafka's does.
		return fmt.Errorf("segment.index.bytes %d must be between %d and %d", c.SegmentIndexBytes, minSegmentIndexBytes, math.MaxInt32)
	case c.RetentionMs < -1:
		return fmt.Errorf("retention.ms %d must be -1 or more", c.RetentionMs)
	case c.FlushPolicy < FlushAlways || c.FlushPolicy > FlushNever:
		return fmt.Errorf("flush policy %d unknown", c.FlushPolicy)
	case c.FileDeleteDelayMs < 0:
		return fmt.Errorf("file.delete.delay.ms %d must not be negative", c.FileDeleteDelayMs)
	case c.FlushMessages < 0:
		return fmt.Errorf("flush.messages %d must not be negative", c.FlushMessages)
	case c.FlushPolicy == FlushInterval && c.FlushMs < 1:
		return fmt.Errorf("flush.ms %d must be at least 1 with the interval policy", c.FlushMs)
	case c.DeleteRetentionMs < 0:
		return fmt.Errorf("delete.retention.ms %d must not be negative", c.DeleteRetentionMs)
	case c.MinCompactionLagMs < 0:
		return fmt.Errorf("min.compaction.lag.ms %d must not be negative", c.MinCompactionLagMs)
	case c.MaxCompactionLagMs < 1:
		return fmt.Errorf("max.compaction.lag.ms %d must be at least 1", c.MaxCompactionLagMs)
	case !(c.MinCleanableDirtyRatio >= 0 && c.MinCleanableDirtyRatio <= 1):
		return fmt.Errorf("min.cleanable.dirty.ratio %v must be between 0 and 1", c.MinCleanableDirtyRatio)
	}
	return nil
}

// rollJitterMs draws a segment's roll jitter as Kafka's randomSegmentJitter
// does: uniform in [0, min(segment.jitter.ms, segment.ms)), 0 without
// jitter. intN is the random source (Options.RollJitter).
func (c Config) rollJitterMs(intN func(n int64) int64) int64 {
	if c.SegmentJitterMs <= 0 {
		return 0
	}
	return intN(min(c.SegmentJitterMs, c.SegmentMs))
}

// rollMs is the age at which the active segment rolls: segment.ms, or
// max.compaction.lag.ms when compaction needs it sooner (Kafka's
// LogConfig.maxSegmentMs), since the cleaner never touches the active
// segment and its records could not be compacted in time otherwise.
func (c Config) rollMs() int64 {
	if c.Compact {
		return min(c.SegmentMs, c.MaxCompactionLagMs)
	}
	return c.SegmentMs
}

// minSegmentBytes is Kafka's lower bound for segment.bytes (14 bytes, the
// legacy record overhead); tests use small segments to exercise rolling.
const minSegmentBytes = 14

// minSegmentIndexBytes is Kafka's lower bound for segment.index.bytes.
const minSegmentIndexBytes = 4

// maxIndexEntries returns how many entries an index file may hold; the
// offset index and the time index each roll the segment when full. The
// capacity is rounded down to whole entries of both kinds, as Kafka does.
func (c Config) maxIndexEntries(entrySize int) int {
	return int(c.SegmentIndexBytes) / entrySize
}
