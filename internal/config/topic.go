package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Topic config keys, spelled as Kafka spells them.
const (
	CleanupPolicy                   = "cleanup.policy"
	CompressionType                 = "compression.type"
	CompressionGzipLevel            = "compression.gzip.level"
	CompressionLz4Level             = "compression.lz4.level"
	CompressionZstdLevel            = "compression.zstd.level"
	DeleteRetentionMs               = "delete.retention.ms"
	FileDeleteDelayMs               = "file.delete.delay.ms"
	FlushMessages                   = "flush.messages"
	FlushMs                         = "flush.ms"
	IndexIntervalBytes              = "index.interval.bytes"
	MaxCompactionLagMs              = "max.compaction.lag.ms"
	MaxMessageBytes                 = "max.message.bytes"
	MessageDownconversionEnable     = "message.downconversion.enable"
	MessageTimestampAfterMaxMs      = "message.timestamp.after.max.ms"
	MessageTimestampBeforeMaxMs     = "message.timestamp.before.max.ms"
	MessageTimestampDifferenceMaxMs = "message.timestamp.difference.max.ms"
	MessageTimestampType            = "message.timestamp.type"
	MinCleanableDirtyRatio          = "min.cleanable.dirty.ratio"
	MinCompactionLagMs              = "min.compaction.lag.ms"
	MinInsyncReplicas               = "min.insync.replicas"
	Preallocate                     = "preallocate"
	RetentionBytes                  = "retention.bytes"
	RetentionMs                     = "retention.ms"
	SegmentBytes                    = "segment.bytes"
	SegmentIndexBytes               = "segment.index.bytes"
	SegmentJitterMs                 = "segment.jitter.ms"
	SegmentMs                       = "segment.ms"
	UncleanLeaderElectionEnable     = "unclean.leader.election.enable"
)

// Values of cleanup.policy and message.timestamp.type.
const (
	CleanupPolicyDelete    = "delete"
	CleanupPolicyCompact   = "compact"
	TimestampCreateTime    = "CreateTime"
	TimestampLogAppendTime = "LogAppendTime"
)

const (
	maxLong = math.MaxInt64
	maxInt  = math.MaxInt32
	// maxLongText is Kafka's "no limit" default for the long configs that
	// are off unless set (Long.MAX_VALUE).
	maxLongText = "9223372036854775807"
)

func atLeast(n, max int64) []Range { return []Range{{n, max}} }

// TopicConfigs are the per-topic configs, sorted by name. Defaults are
// Kafka 4's, with two exceptions noted on the entries: segment.bytes keeps
// Kafka 3's lower bound so tests and demos can roll small segments, and
// the deprecated keys Kafka 4 removed are still accepted, because clients
// written against Kafka 3 still send them.
var TopicConfigs = []Def{
	{
		Name: CleanupPolicy, BrokerName: "log.cleanup.policy", Type: TypeList, Default: CleanupPolicyDelete,
		Values: []string{CleanupPolicyDelete, CleanupPolicyCompact},
		Doc:    "How old segments are cleaned: delete drops them past retention; compact keeps the latest record per key (the log cleaner); both together do both. A compact-only topic has no time or size retention.",
	},
	{
		Name: CompressionGzipLevel, BrokerName: "compression.gzip.level", Type: TypeInt, Default: "-1",
		Ranges: []Range{{-1, -1}, {1, 9}},
		Doc:    "The gzip level the leader recompresses with when compression.type is gzip; -1 is the codec's default.",
	},
	{
		Name: CompressionLz4Level, BrokerName: "compression.lz4.level", Type: TypeInt, Default: "9",
		Ranges: []Range{{1, 17}},
		Doc:    "The lz4 level the leader recompresses with when compression.type is lz4: 1-9 are lz4's high-compression levels; 10-17 compress as 9 (the Go library's highest).",
	},
	{
		Name: CompressionType, BrokerName: "compression.type", Type: TypeString, Default: "producer",
		Values: []string{"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"},
		Doc:    "The codec batches are stored with: producer keeps what the producer sent; a codec makes the leader re-encode every batch sent in another codec (uncompressed decompresses); followers store the leader's bytes.",
	},
	{
		Name: CompressionZstdLevel, BrokerName: "compression.zstd.level", Type: TypeInt, Default: "3",
		Ranges: []Range{{-131072, 22}},
		Doc:    "The zstd level the leader recompresses with when compression.type is zstd; the Go library has four speeds: below 3 fastest, 3-5 default, 6-9 better, 10 and above best.",
	},
	{
		Name: DeleteRetentionMs, BrokerName: "log.cleaner.delete.retention.ms", Type: TypeLong, Default: "86400000",
		Ranges: atLeast(0, maxLong),
		Doc:    "How long a compacted topic keeps a tombstone, counted from the first clean that kept it (its delete horizon, as Kafka 3+), so a consumer reading from the start sees deletes it would otherwise miss.",
	},
	{
		Name: FileDeleteDelayMs, BrokerName: "log.segment.delete.delay.ms", Type: TypeLong, Default: "60000",
		Ranges: atLeast(0, maxLong),
		Doc:    "How long the files of a segment that retention or DeleteRecords removed linger, renamed .deleted, before they are removed (on the manager's tick; a restart removes leftovers). Readers hold open files, so reads in flight finish either way.",
	},
	{
		Name: FlushMessages, BrokerName: "log.flush.interval.messages", Type: TypeLong, Default: maxLongText,
		Ranges: atLeast(1, maxLong),
		Doc:    "Fsync in the append that leaves this many messages (offsets) unsynced, whatever log.flush.policy says; the default leaves it to the flush policy and the OS.",
	},
	{
		Name: FlushMs, BrokerName: "log.flush.interval.ms", Type: TypeLong, Default: maxLongText,
		Ranges: atLeast(0, maxLong),
		Doc:    "Fsync when the oldest unflushed message is this old; the default leaves it to the flush policy and the OS.",
	},
	{
		Name: IndexIntervalBytes, BrokerName: "log.index.interval.bytes", Type: TypeInt, Default: "4096",
		Ranges: atLeast(0, maxInt),
		Doc:    "Bytes of log between offset-index entries: smaller makes lookups scan less and indexes grow faster.",
	},
	{
		Name: MaxCompactionLagMs, BrokerName: "log.cleaner.max.compaction.lag.ms", Type: TypeLong, Default: maxLongText,
		Ranges: atLeast(1, maxLong),
		Doc:    "The longest a record may stay uncompacted; an older dirty segment is compacted regardless of the dirty ratio.",
	},
	{
		Name: MaxMessageBytes, BrokerName: "message.max.bytes", Type: TypeInt, Default: "1048588",
		Ranges: atLeast(0, maxInt),
		Doc:    "The largest record batch (after compression) the topic accepts; consumers' fetch sizes must allow it.",
	},
	{
		Name: MessageDownconversionEnable, BrokerName: "log.message.downconversion.enable", Type: TypeBoolean, Default: "true",
		Deprecated: "no effect: Sluice stores and serves record batch v2 only, as Kafka 4 does",
		Doc:        "Whether fetches by old consumers may be down-converted to old message formats; accepted and ignored.",
	},
	{
		Name: MessageTimestampAfterMaxMs, BrokerName: "log.message.timestamp.after.max.ms", Type: TypeLong, Default: "3600000",
		Ranges: atLeast(0, maxLong),
		Doc:    "How far ahead of the broker's clock a CreateTime timestamp may be before the batch is rejected.",
	},
	{
		Name: MessageTimestampBeforeMaxMs, BrokerName: "log.message.timestamp.before.max.ms", Type: TypeLong, Default: maxLongText,
		Ranges: atLeast(0, maxLong),
		Doc:    "How far behind the broker's clock a CreateTime timestamp may be before the batch is rejected.",
	},
	{
		Name: MessageTimestampDifferenceMaxMs, BrokerName: "log.message.timestamp.difference.max.ms", Type: TypeLong, Default: maxLongText,
		Ranges:     atLeast(0, maxLong),
		Deprecated: "use message.timestamp.before.max.ms and message.timestamp.after.max.ms",
		Doc:        "How far a CreateTime timestamp may be from the broker's clock, either way, before the batch is rejected.",
	},
	{
		Name: MessageTimestampType, BrokerName: "log.message.timestamp.type", Type: TypeString, Default: TimestampCreateTime,
		Values: []string{TimestampCreateTime, TimestampLogAppendTime},
		Doc:    "Whether records keep the producer's timestamp (CreateTime) or get the broker's append time (LogAppendTime).",
	},
	{
		Name: MinCleanableDirtyRatio, BrokerName: "log.cleaner.min.cleanable.ratio", Type: TypeDouble, Default: "0.5",
		MinDouble: 0, MaxDouble: 1,
		Doc: "The share of a compacted log that must be uncompacted before the cleaner compacts it again.",
	},
	{
		Name: MinCompactionLagMs, BrokerName: "log.cleaner.min.compaction.lag.ms", Type: TypeLong, Default: "0",
		Ranges: atLeast(0, maxLong),
		Doc:    "The shortest time a record stays uncompacted, so consumers can see every update for at least this long.",
	},
	{
		Name: MinInsyncReplicas, BrokerName: "min.insync.replicas", Type: TypeInt, Default: "1",
		Ranges: atLeast(1, maxInt),
		Doc:    "The fewest in-sync replicas for an acks=all produce to succeed; with fewer it fails with NOT_ENOUGH_REPLICAS.",
	},
	{
		Name: Preallocate, BrokerName: "log.preallocate", Type: TypeBoolean, Default: "false",
		Doc: "Whether a new segment file is allocated at full segment.bytes up front.",
		Refused: &Refusal{Value: "true", Why: "Sluice does not preallocate segments (Kafka does it for Windows " +
			"file systems); recovery would have to tell a preallocated zero tail from a torn write"},
	},
	{
		Name: RetentionBytes, BrokerName: "log.retention.bytes", Type: TypeLong, Default: "-1",
		Doc: "The size a partition may reach before its oldest segments are deleted (delete policy); negative means no limit.",
	},
	{
		Name: RetentionMs, BrokerName: "log.retention.ms", Type: TypeLong, Default: "604800000",
		Ranges: atLeast(-1, maxLong),
		Doc:    "How long a segment is kept after its newest record before it is deleted (delete policy); -1 keeps it forever.",
	},
	{
		Name: SegmentBytes, BrokerName: "log.segment.bytes", Type: TypeInt, Default: "1073741824",
		Ranges: atLeast(14, maxInt),
		Doc:    "The size at which the active segment rolls; retention and compaction work in whole segments.",
	},
	{
		Name: SegmentIndexBytes, BrokerName: "log.index.size.max.bytes", Type: TypeInt, Default: "10485760",
		Ranges: atLeast(4, maxInt),
		Doc:    "The size of each segment's offset and time index; a full index rolls the segment.",
	},
	{
		Name: SegmentJitterMs, BrokerName: "log.roll.jitter.ms", Type: TypeLong, Default: "0",
		Ranges: atLeast(0, maxLong),
		Doc:    "The most a random delay subtracted from segment.ms, drawn for each segment when it becomes active, so partitions created together do not all roll at once.",
	},
	{
		Name: SegmentMs, BrokerName: "log.roll.ms", Type: TypeLong, Default: "604800000",
		Ranges: atLeast(1, maxLong),
		Doc:    "The age at which the active segment rolls even if not full, so time-based retention and compaction can reach it.",
	},
	{
		Name: UncleanLeaderElectionEnable, BrokerName: "unclean.leader.election.enable", Type: TypeBoolean, Default: "false",
		Doc: "Whether a replica outside the ISR may become leader when no ISR member is alive: availability at the cost of losing records.",
	},
}

var (
	topicByName   = indexDefs(TopicConfigs, func(d *Def) string { return d.Name })
	topicByBroker = indexDefs(TopicConfigs, func(d *Def) string { return d.BrokerName })
)

func indexDefs(defs []Def, key func(*Def) string) map[string]*Def {
	m := make(map[string]*Def, len(defs))
	for i := range defs {
		m[key(&defs[i])] = &defs[i]
	}
	return m
}

// LookupTopicConfig returns the definition of a topic config key.
func LookupTopicConfig(name string) (*Def, bool) {
	d, ok := topicByName[name]
	return d, ok
}

// LookupBrokerConfig returns the topic config whose cluster-wide default a
// broker config key sets (log.retention.ms → retention.ms).
func LookupBrokerConfig(brokerName string) (*Def, bool) {
	d, ok := topicByBroker[brokerName]
	return d, ok
}

// ValidateTopicConfig checks one topic config: an unknown key wraps
// ErrUnknownConfig, a bad value ErrInvalidConfigValue.
func ValidateTopicConfig(key, value string) error {
	d, ok := topicByName[key]
	if !ok {
		return fmt.Errorf("%w: %q is not a topic config", ErrUnknownConfig, key)
	}
	return d.Validate(value)
}

// ValidateBrokerConfig checks one dynamic broker config: only the keys that
// set a topic config's cluster-wide default can be changed at run time.
func ValidateBrokerConfig(key, value string) error {
	d, ok := topicByBroker[key]
	if !ok {
		return fmt.Errorf("%w: %q is not a dynamic broker config", ErrUnknownConfig, key)
	}
	if err := d.Validate(value); err != nil {
		return fmt.Errorf("%s (broker default of %s): %w", key, d.Name, err)
	}
	return nil
}

// ValidateTopicConfigs checks a topic's complete set of overrides: each key
// and value, then the rules between keys, which Kafka checks on the
// effective values (override, else default).
func ValidateTopicConfigs(configs map[string]string) error {
	for key, value := range configs {
		if err := ValidateTopicConfig(key, value); err != nil {
			return err
		}
	}
	view := TopicValues{Overrides: configs}
	minLag, maxLag := view.Int64(MinCompactionLagMs), view.Int64(MaxCompactionLagMs)
	if minLag > maxLag {
		return fmt.Errorf("%w: %s (%d) is greater than %s (%d)",
			ErrInvalidConfigValue, MinCompactionLagMs, minLag, MaxCompactionLagMs, maxLag)
	}
	return nil
}

// TopicValues resolves a topic's effective configs: the topic's override,
// else the cluster-wide default set through the broker key, else the
// built-in default. Values in the maps were validated when they were set;
// one that does not parse (written by a newer version with a wider range)
// falls through to the next layer rather than failing a reader.
type TopicValues struct {
	Overrides      map[string]string // by topic key (retention.ms)
	BrokerDefaults map[string]string // by broker key (log.retention.ms)
}

// String returns the effective value of key as text. It panics on a key
// that is not a topic config: that is a typo in the caller, not input.
func (v TopicValues) String(key string) string {
	d := mustTopicDef(key)
	if s, ok := v.Overrides[key]; ok && d.valid(s) {
		return s
	}
	if s, ok := v.BrokerDefaults[d.BrokerName]; ok && d.valid(s) {
		return s
	}
	return d.Default
}

// Int64 returns the effective value of an int or long config.
func (v TopicValues) Int64(key string) int64 {
	mustType(key, TypeInt, TypeLong)
	n, _ := strconv.ParseInt(strings.TrimSpace(v.String(key)), 10, 64)
	return n
}

// Bool returns the effective value of a boolean config.
func (v TopicValues) Bool(key string) bool {
	mustType(key, TypeBoolean)
	b, _ := parseBool(v.String(key))
	return b
}

// Float64 returns the effective value of a double config.
func (v TopicValues) Float64(key string) float64 {
	mustType(key, TypeDouble)
	f, _ := strconv.ParseFloat(strings.TrimSpace(v.String(key)), 64)
	return f
}

// List returns the effective items of a list config.
func (v TopicValues) List(key string) []string {
	mustType(key, TypeList)
	return SplitList(v.String(key))
}

func mustTopicDef(key string) *Def {
	d, ok := topicByName[key]
	if !ok {
		panic(fmt.Sprintf("config: %q is not a topic config", key))
	}
	return d
}

func mustType(key string, types ...Type) {
	d := mustTopicDef(key)
	for _, t := range types {
		if d.Type == t {
			return
		}
	}
	panic(fmt.Sprintf("config: %s is a %s, not a %s", key, d.Type, types[0]))
}
