package partition

import (
	"testing"

	"github.com/sluicelog/sluice/internal/config"
)

// TestPartitionSettingsCompactOnlyHasNoRetention: a topic whose
// cleanup.policy lacks delete (like __consumer_offsets) keeps its records
// whatever the retention settings; with delete they apply.
func TestPartitionSettingsCompactOnlyHasNoRetention(t *testing.T) {
	defaults := map[string]string{"log.retention.ms": "1000", "log.retention.bytes": "4096"}
	for _, tc := range []struct {
		policy         string
		overrides      map[string]string
		retentionMs    int64
		retentionBytes int64
	}{
		{policy: "delete", retentionMs: 1000, retentionBytes: 4096},
		{policy: "compact", retentionMs: -1, retentionBytes: -1},
		{policy: "compact", overrides: map[string]string{"retention.ms": "5"}, retentionMs: -1, retentionBytes: -1},
		{policy: "compact,delete", retentionMs: 1000, retentionBytes: 4096},
		{policy: "delete, compact", retentionMs: 1000, retentionBytes: 4096},
	} {
		overrides := map[string]string{config.CleanupPolicy: tc.policy}
		for k, v := range tc.overrides {
			overrides[k] = v
		}
		cfg, _ := topicSettings(config.TopicValues{Overrides: overrides, BrokerDefaults: defaults})
		require(t, cfg.RetentionMs == tc.retentionMs && cfg.RetentionBytes == tc.retentionBytes,
			"cleanup.policy=%q %v: retention %d ms / %d bytes, want %d / %d", tc.policy, tc.overrides,
			cfg.RetentionMs, cfg.RetentionBytes, tc.retentionMs, tc.retentionBytes)
	}
}

// TestPartitionSettingsActedOnKeys: the topic keys the log acts on reach
// its Config, from the topic override or the broker default.
func TestPartitionSettingsActedOnKeys(t *testing.T) {
	cfg, _ := topicSettings(config.TopicValues{BrokerDefaults: map[string]string{"log.flush.interval.messages": "7"}})
	require(t, cfg.FlushMessages == 7, "broker default flush.messages: %d", cfg.FlushMessages)
	cfg, _ = topicSettings(config.TopicValues{Overrides: map[string]string{config.FlushMessages: "3"},
		BrokerDefaults: map[string]string{"log.flush.interval.messages": "7"}})
	require(t, cfg.FlushMessages == 3, "topic flush.messages: %d", cfg.FlushMessages)
	cfg, _ = topicSettings(config.TopicValues{Overrides: map[string]string{config.SegmentJitterMs: "250"}})
	require(t, cfg.SegmentJitterMs == 250, "segment.jitter.ms: %d", cfg.SegmentJitterMs)
	cfg, _ = topicSettings(config.TopicValues{BrokerDefaults: map[string]string{"log.segment.delete.delay.ms": "0"}})
	require(t, cfg.FileDeleteDelayMs == 0, "file.delete.delay.ms: %d", cfg.FileDeleteDelayMs)
	cfg, _ = topicSettings(config.TopicValues{})
	require(t, cfg.FileDeleteDelayMs == 60_000, "default file.delete.delay.ms: %d", cfg.FileDeleteDelayMs)
}
