package config

import "fmt"

// Group configs (Kafka's GROUP config resource, type 32, KIP-848 and
// KIP-932): per-group overrides set with IncrementalAlterConfigs and kept
// in the metadata log like topic configs. Each falls back to the broker
// key named in BrokerName. Only the share-group keys that change what a
// share partition does are served; Kafka's other group keys
// (consumer.session.timeout.ms, share.delivery.count.limit, ...) are
// refused as unknown rather than accepted and ignored.
const (
	ShareRecordLockDurationMs = "share.record.lock.duration.ms"
)

// GroupConfigs are the group config keys Sluice serves, sorted by name.
var GroupConfigs = []Def{
	{
		Name: ShareAutoOffsetReset, BrokerName: ShareAutoOffsetReset, Type: TypeString, Default: ShareAutoOffsetResetLatest,
		Values: []string{ShareAutoOffsetResetLatest, ShareAutoOffsetResetEarliest},
		Doc: "Where the share group starts reading a partition it has no state for: latest (the high watermark) or earliest (the log start). " +
			"Read when a share partition is first used; later changes apply to partitions without state.",
	},
	{
		// Kafka bounds it by group.share.min/max.record.lock.duration.ms
		// (15 s to 60 s by default); Sluice takes the broker key's range.
		Name: ShareRecordLockDurationMs, BrokerName: GroupShareRecordLockDurationMs, Type: TypeInt, Default: "30000", Ranges: atLeast(1, 3600000),
		Doc: "How long a member of this share group holds the records a ShareFetch acquired for it; applies to acquisitions and renewals from the next fetch on.",
	},
}

var groupByName = indexDefs(GroupConfigs, func(d *Def) string { return d.Name })

// LookupGroupConfig returns the definition of a group config key.
func LookupGroupConfig(name string) (*Def, bool) {
	d, ok := groupByName[name]
	return d, ok
}

// GroupOverride returns a group's own value of a group config key when it
// is one the key accepts. One that is not (written by a newer version with
// a wider range) is left for the broker's value, as a topic override is
// (TopicValues), so what DescribeConfigs shows is what the group gets. It
// panics on a key that is not a group config: that is a typo in the
// caller, not input.
func GroupOverride(overrides map[string]string, key string) (string, bool) {
	d, ok := groupByName[key]
	if !ok {
		panic(fmt.Sprintf("config: %q is not a group config", key))
	}
	v, ok := overrides[key]
	if !ok || !d.valid(v) {
		return "", false
	}
	return v, true
}

// ValidateGroupConfigs checks a group's complete set of overrides: an
// unknown key wraps ErrUnknownConfig, a bad value ErrInvalidConfigValue.
func ValidateGroupConfigs(configs map[string]string) error {
	for key, value := range configs {
		d, ok := groupByName[key]
		if !ok {
			return fmt.Errorf("%w: %q is not a group config Sluice serves", ErrUnknownConfig, key)
		}
		if err := d.Validate(value); err != nil {
			return err
		}
	}
	return nil
}
