package partition

import (
	"errors"
	"math"
	"testing"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/metadata"
)

func TestPartitionHostingFollowsImage(t *testing.T) {
	f := newFixture(t)
	f.createTopic("orders", 1, nil, []int32{1, 2}, []int32{2, 3}, []int32{2, 1})
	noErr(t, f.mgr.Refresh())

	p0 := f.partition("orders", 0)
	require(t, p0.LeaderEpoch() == 0, "leader epoch %d", p0.LeaderEpoch())
	_, err := f.mgr.Partition("orders", 1) // not a replica here
	requireErrorIs(t, err, ErrNotLeader)
	_, err = f.mgr.Partition("orders", 2) // a follower here
	requireErrorIs(t, err, ErrNotLeader)
	_, err = f.mgr.Partition("orders", 3)
	requireErrorIs(t, err, ErrUnknownTopicOrPartition)
	_, err = f.mgr.Partition("nope", 0)
	requireErrorIs(t, err, ErrUnknownTopicOrPartition)
	for tp, want := range map[log.TopicPartition]bool{{Topic: "orders", Partition: 0}: true, {Topic: "orders", Partition: 1}: false, {Topic: "orders", Partition: 2}: true} {
		_, ok := f.logs.Log(tp)
		require(t, ok == want, "log %s hosted=%v, want %v", tp, ok, want)
	}

	// Leadership moves away: the partition stays hosted, watchers wake.
	ch := make(chan struct{}, 1)
	cancel := p0.Watch(ch)
	defer cancel()
	f.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: 2})
	_, err = f.mgr.Partition("orders", 0)
	requireErrorIs(t, err, ErrNotLeader)
	requireSignalled(t, ch)
	_, err = p0.Append(f.batch(plain(1)))
	requireErrorIs(t, err, ErrNotLeader)
	// ... and back, in a new epoch.
	f.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: 1})
	require(t, f.partition("orders", 0) == p0 && p0.LeaderEpoch() == 2, "epoch %d", p0.LeaderEpoch())

	// The topic goes: logs deleted, watchers woken.
	ch2 := make(chan struct{}, 1)
	defer p0.Watch(ch2)()
	f.apply(&metadata.RemoveTopic{TopicID: uuid(1)})
	_, err = f.mgr.Partition("orders", 0)
	requireErrorIs(t, err, ErrUnknownTopicOrPartition)
	requireSignalled(t, ch2)
	require(t, len(f.logs.Partitions()) == 0, "logs left: %v", f.logs.Partitions())
	_, err = p0.Append(f.batch(plain(1)))
	requireErrorIs(t, err, ErrNotLeader)
}

func TestPartitionRecreatedTopicStartsEmpty(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{1})
	_, err := f.partition("t", 0).Append(f.batch(plain(3)))
	noErr(t, err)
	noErr(t, f.mgr.Close())
	noErr(t, f.logs.Close())
	// Deleted and created again while this broker was down.
	f.apply(&metadata.RemoveTopic{TopicID: uuid(1)})
	f.createTopic("t", 2, nil, []int32{1})
	f.open(f.fs)
	p := f.partition("t", 0)
	require(t, p.Offsets().LogEndOffset == 0, "recreated topic has %d records of the old one", p.Offsets().LogEndOffset)

	// A stray log (its topic gone while down) is removed.
	noErr(t, f.mgr.Close())
	noErr(t, f.logs.Close())
	f.apply(&metadata.RemoveTopic{TopicID: uuid(2)})
	f.open(f.fs)
	require(t, len(f.logs.Partitions()) == 1, "want the stray log before the first refresh")
	noErr(t, f.mgr.Refresh())
	require(t, len(f.logs.Partitions()) == 0, "stray logs left: %v", f.logs.Partitions())
}

func TestPartitionConfigMapping(t *testing.T) {
	f := newFixture(t)
	f.setDefaults(map[string]string{"log.retention.ms": "5000", FlushPolicyKey: "interval", FlushIntervalMsKey: "250"})
	f.createTopic("t", 1, map[string]string{
		config.SegmentBytes: "4096", config.SegmentMs: "60000", config.IndexIntervalBytes: "100",
		config.SegmentIndexBytes: "800", config.RetentionBytes: "99999",
	}, []int32{1})
	p := f.partition("t", 0)
	want := log.Config{SegmentBytes: 4096, SegmentMs: 60000, IndexIntervalBytes: 100, SegmentIndexBytes: 800,
		RetentionMs: 5000, RetentionBytes: 99999, FlushPolicy: log.FlushInterval, FlushMs: 250,
		FlushMessages: math.MaxInt64, FileDeleteDelayMs: 60_000,
		DeleteRetentionMs: 86400000, MaxCompactionLagMs: math.MaxInt64, MinCleanableDirtyRatio: 0.5}
	require(t, p.log.Config() == want, "config %+v\nwant   %+v", p.log.Config(), want)

	// Compaction keys reach the log; compact,delete keeps time retention.
	f.createTopic("c", 2, map[string]string{
		config.CleanupPolicy: "compact,delete", config.DeleteRetentionMs: "100", config.MinCompactionLagMs: "7",
		config.MaxCompactionLagMs: "9000", config.MinCleanableDirtyRatio: "0.25",
	}, []int32{1})
	c := f.partition("c", 0).log.Config()
	require(t, c.Compact && c.RetentionMs == 5000 && c.DeleteRetentionMs == 100 && c.MinCompactionLagMs == 7 &&
		c.MaxCompactionLagMs == 9000 && c.MinCleanableDirtyRatio == 0.25, "compaction config %+v", c)

	// A topic override of flush.ms picks the interval policy, 0 means always.
	f.apply(&metadata.Config{ResourceType: metadata.ConfigResourceTopic, ResourceName: "t", Name: config.FlushMs, Value: "700"})
	f.partition("t", 0)
	got := p.log.Config()
	require(t, got.FlushPolicy == log.FlushInterval && got.FlushMs == 700, "flush.ms=700: %+v", got)
	f.apply(&metadata.Config{ResourceType: metadata.ConfigResourceTopic, ResourceName: "t", Name: config.FlushMs, Value: "0"})
	f.partition("t", 0)
	require(t, p.log.Config().FlushPolicy == log.FlushAlways, "flush.ms=0: %+v", p.log.Config())

	// Broker default changes apply to open logs too.
	f.setDefaults(map[string]string{FlushPolicyKey: "never"})
	f.apply(&metadata.Config{ResourceType: metadata.ConfigResourceTopic, ResourceName: "t", Name: config.FlushMs, Delete: true})
	f.partition("t", 0)
	got = p.log.Config()
	require(t, got.FlushPolicy == log.FlushNever && got.RetentionMs == log.DefaultConfig().RetentionMs, "defaults: %+v", got)
}

func TestPartitionFlushSettings(t *testing.T) {
	for _, tc := range []struct {
		overrides, defaults map[string]string
		policy              log.FlushPolicy
		ms                  int64
	}{
		{nil, nil, log.FlushAlways, 1000},
		{nil, map[string]string{FlushPolicyKey: "interval"}, log.FlushInterval, 1000},
		{nil, map[string]string{FlushPolicyKey: "interval", FlushIntervalMsKey: "30"}, log.FlushInterval, 30},
		{map[string]string{"flush.ms": "9223372036854775807"}, map[string]string{FlushPolicyKey: "never"}, log.FlushNever, 1000},
		{map[string]string{"flush.ms": "5"}, map[string]string{FlushPolicyKey: "never"}, log.FlushInterval, 5},
		{map[string]string{"flush.ms": "0"}, map[string]string{FlushPolicyKey: "interval"}, log.FlushAlways, 1000},
	} {
		policy, ms := flushSettings(config.TopicValues{Overrides: tc.overrides, BrokerDefaults: tc.defaults})
		require(t, policy == tc.policy && ms == tc.ms, "%v %v: got %v/%d, want %v/%d", tc.overrides, tc.defaults, policy, ms, tc.policy, tc.ms)
	}
}

func requireSignalled(t testing.TB, ch chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	default:
		t.Fatal("watcher not signalled")
	}
}

func requireQuiet(t testing.TB, ch chan struct{}) {
	t.Helper()
	select {
	case <-ch:
		t.Fatal("watcher signalled unexpectedly")
	default:
	}
}

// The in-memory FS has no volume: the manager says so rather than invent
// sizes, and DescribeLogDirs reports -1. statfs on a real directory is
// tested in vfs and through the api harness.
func TestPartitionLogDirUsageUnsupportedInMemory(t *testing.T) {
	f := newFixture(t)
	if _, err := f.mgr.LogDirUsage(); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("LogDirUsage on MemFS: %v, want errors.ErrUnsupported", err)
	}
}
