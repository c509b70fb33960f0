package partition

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/record"
)

// Broker keys read from Options.TopicDefaults besides the topic defaults.
const (
	// FlushPolicyKey is Sluice's log.flush.policy: always (fsync before
	// acknowledging; the default), interval (fsync every
	// log.flush.interval.ms) or never (leave it to the OS, as Kafka does).
	FlushPolicyKey = "log.flush.policy"
	// FlushIntervalMsKey is Kafka's log.flush.interval.ms, the broker
	// default of flush.ms.
	FlushIntervalMsKey = "log.flush.interval.ms"
)

// appendSettings are the topic configs the append path checks, resolved
// once per config change.
type appendSettings struct {
	maxMessageBytes      int64
	logAppendTime        bool
	timestampBeforeMaxMs int64
	timestampAfterMaxMs  int64
	// minInsyncReplicas is min.insync.replicas: an acks=all produce fails
	// with NOT_ENOUGH_REPLICAS while the committed ISR is smaller.
	minInsyncReplicas int
	// requireKeys: cleanup.policy includes compact, so every record needs
	// a key (validate.go).
	requireKeys bool
	// recompress: compression.type names a codec, which batches in
	// another codec are re-encoded to (validate.go); false for producer.
	recompress  bool
	compression record.Compression
}

// topicSettings resolves a topic's effective configs into the log's Config
// and the append path's settings.
func topicSettings(v config.TopicValues) (log.Config, appendSettings) {
	cfg := log.Config{
		SegmentBytes:       v.Int64(config.SegmentBytes),
		SegmentMs:          v.Int64(config.SegmentMs),
		SegmentJitterMs:    v.Int64(config.SegmentJitterMs),
		IndexIntervalBytes: v.Int64(config.IndexIntervalBytes),
		SegmentIndexBytes:  v.Int64(config.SegmentIndexBytes),
		RetentionMs:        v.Int64(config.RetentionMs),
		RetentionBytes:     v.Int64(config.RetentionBytes),
	}
	if !slices.Contains(v.List(config.CleanupPolicy), config.CleanupPolicyDelete) {
		// A compact-only topic (like __consumer_offsets) keeps records
		// until compaction supersedes them; time and size retention would
		// delete the only copy of live state.
		cfg.RetentionMs, cfg.RetentionBytes = -1, -1
	}
	cfg.Compact = slices.Contains(v.List(config.CleanupPolicy), config.CleanupPolicyCompact)
	cfg.DeleteRetentionMs = v.Int64(config.DeleteRetentionMs)
	cfg.MinCompactionLagMs = v.Int64(config.MinCompactionLagMs)
	cfg.MaxCompactionLagMs = v.Int64(config.MaxCompactionLagMs)
	cfg.MinCleanableDirtyRatio = v.Float64(config.MinCleanableDirtyRatio)
	cfg.FlushPolicy, cfg.FlushMs = flushSettings(v)
	cfg.FlushMessages = v.Int64(config.FlushMessages)
	cfg.FileDeleteDelayMs = v.Int64(config.FileDeleteDelayMs)
	// The deprecated difference bound applies both ways when set; unset,
	// its default (Long.MAX_VALUE) bounds nothing.
	difference := v.Int64(config.MessageTimestampDifferenceMaxMs)
	settings := appendSettings{
		maxMessageBytes:      v.Int64(config.MaxMessageBytes),
		logAppendTime:        v.String(config.MessageTimestampType) == config.TimestampLogAppendTime,
		timestampBeforeMaxMs: min(v.Int64(config.MessageTimestampBeforeMaxMs), difference),
		timestampAfterMaxMs:  min(v.Int64(config.MessageTimestampAfterMaxMs), difference),
		minInsyncReplicas:    int(v.Int64(config.MinInsyncReplicas)),
		requireKeys:          slices.Contains(v.List(config.CleanupPolicy), config.CleanupPolicyCompact),
	}
	settings.compression, settings.recompress = compressionSettings(v)
	return cfg, settings
}

// compressionSettings resolves compression.type and the level of the codec
// it names; producer means no recompression.
func compressionSettings(v config.TopicValues) (record.Compression, bool) {
	var c record.Compression
	switch v.String(config.CompressionType) {
	case "uncompressed":
		c.Codec = record.CodecNone
	case "gzip":
		c = record.Compression{Codec: record.CodecGzip, Level: int(v.Int64(config.CompressionGzipLevel))}
	case "snappy":
		c.Codec = record.CodecSnappy
	case "lz4":
		c = record.Compression{Codec: record.CodecLZ4, Level: int(v.Int64(config.CompressionLz4Level))}
	case "zstd":
		c = record.Compression{Codec: record.CodecZstd, Level: int(v.Int64(config.CompressionZstdLevel))}
	default: // producer
		return c, false
	}
	return c, true
}

// flushSettings picks the flush policy: the broker's log.flush.policy
// (interval uses log.flush.interval.ms), unless the topic overrides
// flush.ms with a finite value, which selects the interval policy with that
// interval (0: fsync every append, i.e. always).
func flushSettings(v config.TopicValues) (log.FlushPolicy, int64) {
	def := log.DefaultConfig()
	if s, ok := v.Overrides[config.FlushMs]; ok {
		if ms, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil && ms >= 0 && ms < math.MaxInt64 {
			if ms == 0 {
				return log.FlushAlways, def.FlushMs
			}
			return log.FlushInterval, ms
		}
	}
	policy, err := log.ParseFlushPolicy(strings.TrimSpace(v.BrokerDefaults[FlushPolicyKey]))
	if err != nil {
		policy = log.FlushAlways // unset (or unknown, which config validation refuses)
	}
	flushMs := def.FlushMs
	if policy == log.FlushInterval {
		if ms, err := strconv.ParseInt(strings.TrimSpace(v.BrokerDefaults[FlushIntervalMsKey]), 10, 64); err == nil && ms >= 1 {
			flushMs = ms
		}
	}
	return policy, flushMs
}
