package config

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/vfs"
)

// TestConfigTopicTable checks the invariants generated docs and
// DescribeConfigs rely on: sorted unique names, a doc line, a broker
// synonym, and a default that its own validation accepts.
func TestConfigTopicTable(t *testing.T) {
	brokerNames := map[string]bool{}
	for i, d := range TopicConfigs {
		if i > 0 && TopicConfigs[i-1].Name >= d.Name {
			t.Errorf("%s: table not sorted by name (after %s)", d.Name, TopicConfigs[i-1].Name)
		}
		if d.Doc == "" || strings.Contains(d.Doc, "\n") || !strings.HasSuffix(d.Doc, ".") {
			t.Errorf("%s: doc must be one sentence on one line: %q", d.Name, d.Doc)
		}
		if d.BrokerName == "" || brokerNames[d.BrokerName] {
			t.Errorf("%s: broker name %q empty or shared", d.Name, d.BrokerName)
		}
		brokerNames[d.BrokerName] = true
		if err := d.Validate(d.Default); err != nil {
			t.Errorf("%s: default rejected: %v", d.Name, err)
		}
		if got, ok := LookupTopicConfig(d.Name); !ok || got.Name != d.Name {
			t.Errorf("%s: lookup failed", d.Name)
		}
		if got, ok := LookupBrokerConfig(d.BrokerName); !ok || got.Name != d.Name {
			t.Errorf("%s: broker lookup of %s failed", d.Name, d.BrokerName)
		}
	}
}

// TestConfigTopicRequiredKeys pins the keys Kafka clients are known to set.
func TestConfigTopicRequiredKeys(t *testing.T) {
	for _, key := range []string{
		"cleanup.policy", "retention.ms", "retention.bytes", "segment.bytes", "segment.ms",
		"segment.index.bytes", "index.interval.bytes", "max.message.bytes", "message.timestamp.type",
		"min.insync.replicas", "unclean.leader.election.enable", "flush.ms", "flush.messages",
		"compression.type", "file.delete.delay.ms", "min.cleanable.dirty.ratio", "delete.retention.ms",
		"message.timestamp.difference.max.ms", "message.timestamp.before.max.ms",
		"message.timestamp.after.max.ms", "min.compaction.lag.ms", "max.compaction.lag.ms",
		"preallocate", "segment.jitter.ms", "message.downconversion.enable",
	} {
		if _, ok := LookupTopicConfig(key); !ok {
			t.Errorf("%s missing", key)
		}
	}
}

func TestConfigTopicValidate(t *testing.T) {
	tests := []struct {
		key, value string
		want       error // nil: accepted
	}{
		{"cleanup.policy", "delete", nil},
		{"cleanup.policy", "compact", nil},
		{"cleanup.policy", "delete,compact", nil},
		{"cleanup.policy", "compact, delete", nil},
		{"cleanup.policy", "", ErrInvalidConfigValue},
		{"cleanup.policy", "delete,delete", ErrInvalidConfigValue},
		{"cleanup.policy", "Compact", ErrInvalidConfigValue},
		{"cleanup.policy", "delete,", ErrInvalidConfigValue},
		{"retention.ms", "-1", nil},
		{"retention.ms", "-2", ErrInvalidConfigValue},
		{"retention.ms", "9223372036854775807", nil},
		{"retention.ms", "9223372036854775808", ErrInvalidConfigValue},
		{"retention.ms", "1h", ErrInvalidConfigValue},
		{"retention.ms", " 1000 ", nil},
		{"retention.bytes", "-5", nil}, // Kafka: any negative is no limit
		{"segment.bytes", "13", ErrInvalidConfigValue},
		{"segment.bytes", "14", nil},
		{"segment.bytes", "2147483647", nil},
		{"segment.bytes", "2147483648", ErrInvalidConfigValue},
		{"segment.ms", "0", ErrInvalidConfigValue},
		{"min.insync.replicas", "0", ErrInvalidConfigValue},
		{"min.insync.replicas", "2", nil},
		{"message.timestamp.type", "LogAppendTime", nil},
		{"message.timestamp.type", "logappendtime", ErrInvalidConfigValue},
		{"unclean.leader.election.enable", "TRUE", nil},
		{"unclean.leader.election.enable", "yes", ErrInvalidConfigValue},
		{"min.cleanable.dirty.ratio", "0", nil},
		{"min.cleanable.dirty.ratio", "1.0", nil},
		{"min.cleanable.dirty.ratio", "1.01", ErrInvalidConfigValue},
		{"min.cleanable.dirty.ratio", "NaN", ErrInvalidConfigValue},
		{"compression.type", "zstd", nil},
		{"compression.type", "brotli", ErrInvalidConfigValue},
		{"compression.gzip.level", "-1", nil},
		{"compression.gzip.level", "0", ErrInvalidConfigValue},
		{"compression.gzip.level", "9", nil},
		{"compression.zstd.level", "-131072", nil},
		{"flush.messages", "0", ErrInvalidConfigValue},
		{"max.compaction.lag.ms", "0", ErrInvalidConfigValue},
		{"no.such.config", "1", ErrUnknownConfig},
		{"log.retention.ms", "1", ErrUnknownConfig}, // a broker key, not a topic key
	}
	for _, tt := range tests {
		err := ValidateTopicConfig(tt.key, tt.value)
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("ValidateTopicConfig(%q, %q) = %v, want %v", tt.key, tt.value, err, tt.want)
		}
	}
}

// TestConfigTopicErrorMessage checks a user learns the key and the form.
func TestConfigTopicErrorMessage(t *testing.T) {
	tests := []struct{ key, value, want string }{
		{"retention.ms", "x", `retention.ms="x": want an integer ≥ -1`},
		{"segment.bytes", "1", `segment.bytes="1": want an integer in [14, 2147483647]`},
		{"cleanup.policy", "x", `want a comma-separated list of delete, compact`},
		{"message.timestamp.type", "x", `want one of CreateTime, LogAppendTime`},
		{"compression.gzip.level", "0", `want -1 or an integer in [1, 9]`},
		{"preallocate", "x", `want true or false`},
		{"min.cleanable.dirty.ratio", "2", `want a number in [0, 1]`},
	}
	for _, tt := range tests {
		err := ValidateTopicConfig(tt.key, tt.value)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ValidateTopicConfig(%q, %q) = %v, want it to contain %q", tt.key, tt.value, err, tt.want)
		}
	}
}

func TestConfigTopicValidateSet(t *testing.T) {
	if err := ValidateTopicConfigs(map[string]string{"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"}); !errors.Is(err, ErrInvalidConfigValue) {
		t.Errorf("min > max compaction lag: %v", err)
	}
	if err := ValidateTopicConfigs(map[string]string{"min.compaction.lag.ms": "10"}); err != nil {
		t.Errorf("min lag below the default max: %v", err)
	}
	if err := ValidateTopicConfigs(map[string]string{"bogus": "1"}); !errors.Is(err, ErrUnknownConfig) {
		t.Errorf("unknown key: %v", err)
	}
}

func TestConfigBrokerValidate(t *testing.T) {
	if err := ValidateBrokerConfig("log.retention.ms", "1000"); err != nil {
		t.Error(err)
	}
	if err := ValidateBrokerConfig("log.retention.ms", "-7"); !errors.Is(err, ErrInvalidConfigValue) || !strings.Contains(err.Error(), "log.retention.ms") {
		t.Errorf("bad broker value: %v", err)
	}
	if err := ValidateBrokerConfig("retention.ms", "1000"); !errors.Is(err, ErrUnknownConfig) {
		t.Errorf("topic key as broker key: %v", err)
	}
}

func TestConfigTopicValuesLayers(t *testing.T) {
	v := TopicValues{
		Overrides:      map[string]string{"retention.ms": "1000", "segment.ms": "garbage"},
		BrokerDefaults: map[string]string{"log.retention.ms": "2000", "log.roll.ms": "3000", "log.cleanup.policy": "compact"},
	}
	if got := v.Int64(RetentionMs); got != 1000 {
		t.Errorf("override: %d", got)
	}
	if got := v.Int64(SegmentMs); got != 3000 {
		t.Errorf("invalid override falls to the broker default: %d", got)
	}
	if got := v.List(CleanupPolicy); !slices.Equal(got, []string{"compact"}) {
		t.Errorf("broker default list: %v", got)
	}
	if got := v.Int64(MaxMessageBytes); got != 1048588 {
		t.Errorf("built-in default: %d", got)
	}
	if v.Bool(UncleanLeaderElectionEnable) || v.Float64(MinCleanableDirtyRatio) != 0.5 {
		t.Error("built-in defaults of bool and double")
	}
	if got := (TopicValues{}).String(MessageTimestampType); got != TimestampCreateTime {
		t.Errorf("zero TopicValues: %q", got)
	}
}

func TestConfigTopicValuesPanicsOnTypo(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for an unknown key")
		}
	}()
	TopicValues{}.Int64("retention.msec")
}

func TestConfigSplitList(t *testing.T) {
	if got := SplitList(" a , b,c "); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("SplitList: %q", got)
	}
	if got := SplitList("  "); got != nil {
		t.Errorf("empty: %q", got)
	}
}

// TestTopicConfigRefusedValue: preallocate=true parses but is refused with
// the key and the reason, at create/alter time and in a broker's file.
func TestTopicConfigRefusedValue(t *testing.T) {
	for _, v := range []string{"true", " TRUE "} {
		err := ValidateTopicConfig(Preallocate, v)
		if !errors.Is(err, ErrInvalidConfigValue) || !strings.Contains(err.Error(), "preallocate") || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("preallocate=%q: %v", v, err)
		}
		if err := ValidateBrokerConfig("log.preallocate", v); !errors.Is(err, ErrInvalidConfigValue) {
			t.Fatalf("log.preallocate=%q as a dynamic broker config: %v", v, err)
		}
	}
	if err := ValidateTopicConfig(Preallocate, "false"); err != nil {
		t.Fatalf("preallocate=false: %v", err)
	}
	_, _, err := Load(vfs.NewMem(), Sources{Sets: []string{"log.preallocate=true"}})
	if !errors.Is(err, ErrInvalidConfigValue) || !strings.Contains(err.Error(), "log.preallocate") {
		t.Fatalf("log.preallocate=true at start-up: %v", err)
	}
	// A refused value stored by an older version reads as the default.
	if (TopicValues{Overrides: map[string]string{Preallocate: "true"}}).Bool(Preallocate) {
		t.Fatal("a stored preallocate=true is read as true")
	}
}

// TestGroupOverride: a group's value counts only when its key accepts it,
// by the same rule that let it in (spaces around a number included), so
// the share coordinator and DescribeConfigs agree on what a group has.
func TestGroupOverride(t *testing.T) {
	overrides := map[string]string{
		ShareRecordLockDurationMs: " 5000",
		ShareAutoOffsetReset:      "sideways",
	}
	if v, ok := GroupOverride(overrides, ShareRecordLockDurationMs); !ok || v != " 5000" {
		t.Errorf("lock duration override = %q, %v; want \" 5000\", true", v, ok)
	}
	if v, ok := GroupOverride(overrides, ShareAutoOffsetReset); ok {
		t.Errorf("an unaccepted reset value counted: %q", v)
	}
	overrides[ShareRecordLockDurationMs] = "3600001" // above the range
	if v, ok := GroupOverride(overrides, ShareRecordLockDurationMs); ok {
		t.Errorf("an out-of-range lock duration counted: %q", v)
	}
	if _, ok := GroupOverride(nil, ShareAutoOffsetReset); ok {
		t.Error("no overrides, yet one counted")
	}
}
