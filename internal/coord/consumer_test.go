package coord

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/vfs"
)

// TestCoordConsumerGroupSurvivesRestart: a consumer-protocol group's
// records go to __consumer_offsets and a restarted coordinator replays
// them: same epochs and assignments, and the members carry on at their
// epochs with no rebalance.
func TestCoordConsumerGroupSurvivesRestart(t *testing.T) {
	f := newFixture(t, clock.Real(), Config{OffsetsTopicNumPartitions: 1})
	f.createTopic("events", 4, nil)
	f.ready("g")
	ctx := ctxT(t)
	join := func(id string) ConsumerHeartbeatResult {
		res, err := f.coord.ConsumerGroupHeartbeat(ctx, ConsumerHeartbeatRequest{GroupID: "g", MemberID: id, RebalanceTimeoutMs: 5000,
			SubscribedTopicNames: []string{"events"}})
		noErr(t, err)
		return res
	}
	beat := func(id string, epoch int32, owned []ConsumerTopicPartitions) (ConsumerHeartbeatResult, error) {
		return f.coord.ConsumerGroupHeartbeat(ctx, ConsumerHeartbeatRequest{GroupID: "g", MemberID: id, MemberEpoch: epoch,
			RebalanceTimeoutMs: -1, OwnedTopics: owned})
	}
	a := join("a")
	b := join("b")
	// a revokes half, then b takes it.
	a1, err := beat("a", a.MemberEpoch, a.Assignment)
	noErr(t, err)
	a2, err := beat("a", a1.MemberEpoch, a1.Assignment)
	noErr(t, err)
	b1, err := beat("b", b.MemberEpoch, []ConsumerTopicPartitions{})
	noErr(t, err)
	before := f.coord.ConsumerGroupDescribe(ctx, []string{"g"})[0]
	require(t, before.State == "Stable" && len(before.Members) == 2, "before the restart: %+v", before)

	f.restart()
	noErr(t, f.coord.WaitLoaded(ctx))
	after := f.coord.ConsumerGroupDescribe(ctx, []string{"g"})[0]
	require(t, after.Err == nil && after.State == "Stable" && after.GroupEpoch == before.GroupEpoch &&
		after.AssignmentEpoch == before.AssignmentEpoch && len(after.Members) == 2, "after the restart: %+v", after)
	for i := range after.Members {
		require(t, after.Members[i].MemberEpoch == before.Members[i].MemberEpoch &&
			len(after.Members[i].Assignment) == 1 && len(after.Members[i].Assignment[0].Partitions) == 2,
			"member %d after the restart: %+v", i, after.Members[i])
	}
	// The members carry on at their epochs: no epoch bump, no new assignment.
	a3, err := beat("a", a2.MemberEpoch, a2.Assignment)
	noErr(t, err)
	require(t, a3.MemberEpoch == a2.MemberEpoch && !a3.HasAssignment, "a after the restart: %+v", a3)
	_, err = beat("b", b1.MemberEpoch+5, nil)
	require(t, errors.Is(err, ErrFencedMemberEpoch), "b at a wrong epoch after the restart: %v", err)
}

// TestCoordConsumerSessionExpiry: with a manual clock, the runtime's timer
// removes a consumer-protocol member whose session expires
// (group.consumer.session.timeout.ms) and the group empties.
func TestCoordConsumerSessionExpiry(t *testing.T) {
	clk := clock.NewManual(time.UnixMilli(1_700_000_000_000))
	f := newFixture(t, clk, Config{OffsetsTopicNumPartitions: 1, ConsumerSessionTimeoutMs: 10000})
	f.createTopic("events", 2, nil)
	f.ready("g")
	ctx := ctxT(t)
	_, err := f.coord.ConsumerGroupHeartbeat(ctx, ConsumerHeartbeatRequest{GroupID: "g", MemberID: "a", RebalanceTimeoutMs: 5000,
		SubscribedTopicNames: []string{"events"}})
	noErr(t, err)
	clk.Advance(9 * time.Second)
	require(t, len(f.coord.ConsumerGroupDescribe(ctx, []string{"g"})[0].Members) == 1, "a is still in the group before its session ends")
	clk.Advance(2 * time.Second)
	eventually(t, "the member expires", func() bool {
		d := f.coord.ConsumerGroupDescribe(ctx, []string{"g"})[0]
		return d.State == "Empty" && len(d.Members) == 0
	})
}

// TestCoordConsumerGroupSurvivesCompaction: a consumer-protocol group whose
// members come and go writes many records and tombstones; once the log
// cleaner has compacted __consumer_offsets (tombstones removed after
// delete.retention.ms=0), a restarted coordinator replays the same group:
// epochs, members and their assignments.
func TestCoordConsumerGroupSurvivesCompaction(t *testing.T) {
	f := &fixture{t: t, fs: vfs.OS(), dir: t.TempDir(), clock: clock.Real(), img: metadata.EmptyImage(),
		cfg:     Config{OffsetsTopicNumPartitions: 1, GroupInitialRebalanceDelayMs: -1},
		cleaner: log.CleanerConfig{Threads: 1, DedupeBufferBytes: 1 << 20, BackoffMs: 10}}
	f.open()
	f.createTopic("events", 100, nil)
	f.ready("g")
	f.apply(
		&metadata.Config{ResourceType: metadata.ConfigResourceTopic, ResourceName: OffsetsTopic, Name: config.SegmentBytes, Value: "16384"},
		&metadata.Config{ResourceType: metadata.ConfigResourceTopic, ResourceName: OffsetsTopic, Name: config.DeleteRetentionMs, Value: "0"},
	)
	ctx := ctxT(t)
	owned := map[string][]ConsumerTopicPartitions{}
	epochs := map[string]int32{}
	beat := func(id string) {
		req := ConsumerHeartbeatRequest{GroupID: "g", MemberID: id, MemberEpoch: epochs[id], RebalanceTimeoutMs: -1, OwnedTopics: owned[id]}
		if req.MemberEpoch == 0 {
			req.RebalanceTimeoutMs, req.SubscribedTopicNames, req.OwnedTopics = 5000, []string{"events"}, nil
		}
		res, err := f.coord.ConsumerGroupHeartbeat(ctx, req)
		noErr(t, err)
		epochs[id] = res.MemberEpoch
		if res.HasAssignment {
			owned[id] = res.Assignment
		} else if owned[id] == nil {
			owned[id] = []ConsumerTopicPartitions{}
		}
	}
	var live []string
	for r := range 30 {
		id := fmt.Sprintf("member-%d", r)
		live = append(live, id)
		if len(live) > 4 {
			gone := live[0]
			live = live[1:]
			_, err := f.coord.ConsumerGroupHeartbeat(ctx, ConsumerHeartbeatRequest{GroupID: "g", MemberID: gone, MemberEpoch: -1})
			noErr(t, err)
		}
		for range 4 {
			for _, m := range live {
				beat(m)
			}
		}
	}
	before := f.coord.ConsumerGroupDescribe(ctx, []string{"g"})[0]
	require(t, before.State == "Stable" && len(before.Members) == 4, "before compaction: %+v", before)
	l, ok := f.logs.Log(log.TopicPartition{Topic: OffsetsTopic, Partition: 0})
	require(t, ok, "no __consumer_offsets-0 log")
	noErr(t, rollLog(l, f, "other"))
	sizeBefore := l.Size()
	for range 3 {
		_, err := l.CleanNow(1 << 20)
		noErr(t, err)
		time.Sleep(2 * time.Millisecond) // past the horizon, with delete.retention.ms=0
	}
	t.Logf("__consumer_offsets-0: %d bytes before cleaning, %d after", sizeBefore, l.Size())
	require(t, l.Size() < sizeBefore, "the cleaner removed nothing: %d bytes", l.Size())

	f.restart()
	f.ready("g")
	after := f.coord.ConsumerGroupDescribe(ctx, []string{"g"})[0]
	require(t, after.Err == nil && after.State == before.State && after.GroupEpoch == before.GroupEpoch &&
		after.AssignmentEpoch == before.AssignmentEpoch && len(after.Members) == len(before.Members), "after compaction and restart: %+v, before %+v", after, before)
	for i := range after.Members {
		a, b := after.Members[i], before.Members[i]
		require(t, a.MemberID == b.MemberID && a.MemberEpoch == b.MemberEpoch && fmt.Sprint(a.Assignment) == fmt.Sprint(b.Assignment),
			"member %d: %+v, before %+v", i, a, b)
	}
}

// classicSubscriptionV0 is a classic consumer's JoinGroup metadata
// (ConsumerProtocolSubscription v0: version, topics, null user data).
func classicSubscriptionV0(topics ...string) []byte {
	b := []byte{0, 0, 0, 0, 0, byte(len(topics))}
	for _, t := range topics {
		b = append(b, 0, byte(len(t)))
		b = append(b, t...)
	}
	return append(b, 0xff, 0xff, 0xff, 0xff)
}

// TestCoordMixedGroupSurvivesRestart: a classic group is upgraded when a
// consumer-protocol member joins, and downgraded when it leaves; after
// each conversion a restarted coordinator replays the group in its
// converted form, with the classic member carrying on at its generation
// and the offsets it committed kept.
func TestCoordMixedGroupSurvivesRestart(t *testing.T) {
	f := newFixture(t, clock.Real(), Config{OffsetsTopicNumPartitions: 1, GroupInitialRebalanceDelayMs: -1})
	f.createTopic("events", 2, nil)
	f.ready("g")
	ctx := ctxT(t)
	joinReq := JoinRequest{GroupID: "g", ProtocolType: "consumer", Protocols: []Protocol{{Name: "range", Metadata: classicSubscriptionV0("events")}},
		SessionTimeoutMs: 30000, RebalanceTimeoutMs: 30000, ClientID: "classic"}
	j, err := f.coord.Join(ctx, joinReq)
	noErr(t, err)
	_, err = f.coord.Sync(ctx, SyncRequest{GroupID: "g", GenerationID: j.GenerationID, MemberID: j.MemberID,
		Assignments: []MemberAssignment{{MemberID: j.MemberID, Assignment: []byte{0, 0, 0, 0, 0, 1, 0, 6, 'e', 'v', 'e', 'n', 't', 's', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}}}})
	noErr(t, err)
	commit := func(gen int32, offset int64) error {
		_, err := f.coord.CommitOffsets(ctx, CommitRequest{GroupID: "g", GenerationID: gen, MemberID: j.MemberID, RetentionTimeMs: -1,
			Topics: []CommitTopic{{Name: "events", Partitions: []CommitPartition{{Partition: 0, Offset: offset, LeaderEpoch: -1}}}}})
		return err
	}
	noErr(t, commit(j.GenerationID, 7))

	// The upgrade: c joins, the classic member keeps its generation as
	// its epoch and is told to rejoin.
	c, err := f.coord.ConsumerGroupHeartbeat(ctx, ConsumerHeartbeatRequest{GroupID: "g", MemberID: "c", RebalanceTimeoutMs: 5000,
		SubscribedTopicNames: []string{"events"}})
	noErr(t, err)
	err = f.coord.Heartbeat(ctx, HeartbeatRequest{GroupID: "g", GenerationID: j.GenerationID, MemberID: j.MemberID})
	require(t, errors.Is(err, ErrRebalanceInProgress), "the classic member's heartbeat after the upgrade: %v", err)
	joinReq.MemberID = j.MemberID
	j2, err := f.coord.Join(ctx, joinReq)
	noErr(t, err)
	before := f.coord.ConsumerGroupDescribe(ctx, []string{"g"})[0]
	require(t, before.Err == nil && len(before.Members) == 2 && before.GroupEpoch == c.MemberEpoch, "the upgraded group: %+v", before)

	f.restart()
	noErr(t, f.coord.WaitLoaded(ctx))
	after := f.coord.ConsumerGroupDescribe(ctx, []string{"g"})[0]
	require(t, after.Err == nil && after.GroupEpoch == before.GroupEpoch && len(after.Members) == 2, "after the restart: %+v", after)
	for i, m := range after.Members {
		require(t, m.Classic == (m.MemberID == j.MemberID) && m.MemberEpoch == before.Members[i].MemberEpoch, "member %d after the restart: %+v", i, m)
	}
	_, err = f.coord.Sync(ctx, SyncRequest{GroupID: "g", GenerationID: j2.GenerationID, MemberID: j.MemberID})
	noErr(t, err)
	noErr(t, commit(j2.GenerationID, 8))

	// The downgrade: c leaves; the classic group rebalances.
	_, err = f.coord.ConsumerGroupHeartbeat(ctx, ConsumerHeartbeatRequest{GroupID: "g", MemberID: "c", MemberEpoch: -1})
	noErr(t, err)
	f.restart()
	noErr(t, f.coord.WaitLoaded(ctx))
	d := f.coord.DescribeGroups(ctx, []string{"g"})[0]
	require(t, d.Err == nil && d.ProtocolType == "consumer" && d.State == StateStable && len(d.Members) == 1 && d.Members[0].MemberID == j.MemberID,
		"the downgraded group after a restart: %+v", d)
	fr, err := f.coord.FetchOffsets(ctx, FetchRequest{GroupID: "g", Topics: []FetchTopic{{Name: "events", Partitions: []int32{0}}}})
	noErr(t, err)
	require(t, fr.Topics[0].Partitions[0].Offset == 8, "the offset after both conversions and restarts: %+v", fr)
	j3, err := f.coord.Join(ctx, joinReq)
	noErr(t, err)
	require(t, j3.LeaderID == j.MemberID && j3.GenerationID > j2.GenerationID, "the classic rejoin: %+v", j3)
}
