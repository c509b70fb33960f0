package coord

import (
	"context"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
)

// TestCoordPartitionFor checks Kafka's placement: Java's String.hashCode
// (31*h + UTF-16 unit, int32 overflow), abs by masking, mod partitions.
func TestCoordPartitionFor(t *testing.T) {
	javaHash := func(s string) int32 {
		var h int32
		for _, u := range utf16Units(s) {
			h = 31*h + int32(u)
		}
		return h
	}
	for _, id := range []string{"", "group", "console-consumer-12345", "my-group-with-a-long-name-0123456789", "ключ", "emoji-😀"} {
		want := (javaHash(id) & 0x7fffffff) % 50
		got := PartitionFor(id, 50)
		require(t, got == want, "PartitionFor(%q) = %d, want %d", id, got, want)
	}
	// "polygenelubricants".hashCode() is Integer.MIN_VALUE in Java: abs
	// by masking gives 0, not a negative partition.
	require(t, javaHash("polygenelubricants") == -2147483648, "hash of polygenelubricants")
	require(t, PartitionFor("polygenelubricants", 50) == 0, "MIN_VALUE hash maps to partition 0")
	// Values checked against Kafka's formula by hand: "group".hashCode() = 98629247.
	require(t, javaHash("group") == 98629247, "hash of group")
	require(t, PartitionFor("group", 50) == 98629247%50, "partition of group")
}

func utf16Units(s string) []uint16 {
	var out []uint16
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			out = append(out, uint16(0xd800+(r>>10)), uint16(0xdc00+(r&0x3ff)))
			continue
		}
		out = append(out, uint16(r))
	}
	return out
}

// TestCoordFindCoordinatorCreatesTopic: the first lookup creates
// __consumer_offsets (compact, no retention) and answers
// COORDINATOR_NOT_AVAILABLE until the shard is loaded.
func TestCoordFindCoordinatorCreatesTopic(t *testing.T) {
	f := newFixture(t, clock.Real(), Config{OffsetsTopicNumPartitions: 4})
	_, err := f.coord.FindCoordinator(ctxT(t), "g")
	requireErrorIs(t, err, ErrCoordinatorNotAvailable)
	f.ready("g")
	img := f.image()
	topic, ok := img.Topic(OffsetsTopic)
	require(t, ok && len(topic.Partitions) == 4, "offsets topic with 4 partitions: %v", ok)
	require(t, img.Configs(2, OffsetsTopic)["cleanup.policy"] == "compact", "cleanup.policy=compact")
	_, err = f.coord.FindCoordinator(ctxT(t), "")
	requireErrorIs(t, err, ErrInvalidGroupID)
}

// TestCoordGroupLifecycle drives two members through joins, syncs, a
// rebalance, commits and a leave against a real partition.
func TestCoordGroupLifecycle(t *testing.T) {
	f := newFixture(t, clock.Real(), Config{OffsetsTopicNumPartitions: 4, GroupInitialRebalanceDelayMs: -1})
	f.createTopic("events", 2, nil)
	f.ready("g")
	ctx := ctxT(t)

	// KIP-394: the first join hands out an id.
	req := consumerJoin("g", "")
	req.RequireKnownMemberID = true
	res, err := f.coord.Join(ctx, req)
	requireErrorIs(t, err, ErrMemberIDRequired)
	require(t, res.MemberID != "", "member id handed out")
	req.MemberID = res.MemberID
	a, err := f.coord.Join(ctx, req)
	noErr(t, err)
	require(t, a.GenerationID == 1 && a.LeaderID == a.MemberID && len(a.Members) == 1, "first generation: %+v", a)
	s, err := f.coord.Sync(ctx, SyncRequest{GroupID: "g", GenerationID: 1, MemberID: a.MemberID,
		Assignments: []MemberAssignment{{MemberID: a.MemberID, Assignment: []byte("all")}}})
	noErr(t, err)
	require(t, string(s.Assignment) == "all", "assignment %q", s.Assignment)

	// A second member: its join blocks until the first rejoins.
	bDone := make(chan JoinResult, 1)
	go func() {
		r, err := f.coord.Join(ctx, consumerJoin("g", ""))
		if err != nil {
			t.Errorf("join b: %v", err)
		}
		bDone <- r
	}()
	eventually(t, "the rebalance", func() bool {
		return f.coord.Heartbeat(ctx, HeartbeatRequest{GroupID: "g", GenerationID: 1, MemberID: a.MemberID}) == ErrRebalanceInProgress
	})
	_, err = f.coord.CommitOffsets(ctx, commit("g", 0, a.MemberID, "events", map[int32]int64{0: 1}))
	requireErrorIs(t, err, ErrIllegalGeneration)
	a2, err := f.coord.Join(ctx, consumerJoin("g", a.MemberID))
	noErr(t, err)
	b := <-bDone
	require(t, a2.GenerationID == 2 && b.GenerationID == 2 && len(a2.Members) == 2 && b.LeaderID == a.MemberID, "generation 2: %+v %+v", a2, b)

	syncB := make(chan SyncResult, 1)
	go func() {
		r, err := f.coord.Sync(ctx, SyncRequest{GroupID: "g", GenerationID: 2, MemberID: b.MemberID})
		if err != nil {
			t.Errorf("sync b: %v", err)
		}
		syncB <- r
	}()
	_, err = f.coord.Sync(ctx, SyncRequest{GroupID: "g", GenerationID: 2, MemberID: a.MemberID,
		Assignments: []MemberAssignment{{MemberID: a.MemberID, Assignment: []byte("p0")}, {MemberID: b.MemberID, Assignment: []byte("p1")}}})
	noErr(t, err)
	require(t, string((<-syncB).Assignment) == "p1", "b's assignment")

	cr, err := f.coord.CommitOffsets(ctx, commit("g", 2, b.MemberID, "events", map[int32]int64{1: 42}))
	noErr(t, err)
	noErr(t, cr.Topics[0].Partitions[0].Err)
	cr, err = f.coord.CommitOffsets(ctx, commit("g", 2, b.MemberID, "nope", map[int32]int64{0: 1}))
	noErr(t, err)
	requireErrorIs(t, cr.Topics[0].Partitions[0].Err, ErrUnknownTopicOrPartition)
	_, err = f.coord.CommitOffsets(ctx, commit("g", 2, "stranger", "events", map[int32]int64{1: 1}))
	requireErrorIs(t, err, ErrUnknownMemberID)

	fr, err := f.coord.FetchOffsets(ctx, FetchRequest{GroupID: "g", Topics: []FetchTopic{{Name: "events", Partitions: []int32{0, 1}}}})
	noErr(t, err)
	require(t, fr.Topics[0].Partitions[0].Offset == -1 && fr.Topics[0].Partitions[1].Offset == 42, "fetched %+v", fr)

	// "unknown" may live on another shard, still loading on a busy machine,
	// which is answered COORDINATOR_LOAD_IN_PROGRESS, as Kafka does.
	var d []GroupDescription
	eventually(t, "the shard of group unknown loaded", func() bool {
		d = f.coord.DescribeGroups(ctx, []string{"g", "unknown"})
		return d[1].Err != ErrCoordinatorLoadInProgress
	})
	require(t, d[0].State == StateStable && len(d[0].Members) == 2 && d[0].Protocol == "range", "describe %+v", d[0])
	require(t, d[1].State == StateDead && d[1].Err == nil, "unknown group is Dead: %+v", d[1])
	l, err := f.coord.ListGroups(ctx, []string{"stable"})
	noErr(t, err)
	require(t, len(l) == 1 && l[0].GroupID == "g", "list %+v", l)

	dr := f.coord.DeleteGroups(ctx, []string{"g"})
	requireErrorIs(t, dr[0].Err, ErrNonEmptyGroup)
	lr, err := f.coord.Leave(ctx, LeaveRequest{GroupID: "g", Members: []LeavingMember{{MemberID: a.MemberID}, {MemberID: b.MemberID}}})
	noErr(t, err)
	noErr(t, lr.Members[0].Err)
	noErr(t, lr.Members[1].Err)
	dr = f.coord.DeleteGroups(ctx, []string{"g", "g2"})
	noErr(t, dr[0].Err)
	requireErrorIs(t, dr[1].Err, ErrGroupIDNotFound)
	fr, err = f.coord.FetchOffsets(ctx, FetchRequest{GroupID: "g"})
	noErr(t, err)
	require(t, len(fr.Topics) == 0, "offsets deleted with the group: %+v", fr)
}

// TestCoordRestart: committed offsets and the stable group are rebuilt
// from __consumer_offsets after a restart; deleted offsets stay deleted.
func TestCoordRestart(t *testing.T) {
	f := newFixture(t, clock.Real(), Config{OffsetsTopicNumPartitions: 3, GroupInitialRebalanceDelayMs: -1})
	f.createTopic("events", 4, nil)
	f.ready("g")
	ctx := ctxT(t)
	j, err := f.coord.Join(ctx, consumerJoin("g", ""))
	noErr(t, err)
	_, err = f.coord.Sync(ctx, SyncRequest{GroupID: "g", GenerationID: j.GenerationID, MemberID: j.MemberID,
		Assignments: []MemberAssignment{{MemberID: j.MemberID, Assignment: []byte("a")}}})
	noErr(t, err)
	_, err = f.coord.CommitOffsets(ctx, commit("g", j.GenerationID, j.MemberID, "events", map[int32]int64{0: 10, 1: 11, 2: 12}))
	noErr(t, err)
	_, err = f.coord.CommitOffsets(ctx, commit("simple", -1, "", "events", map[int32]int64{3: 99}))
	noErr(t, err)
	_, err = f.coord.CommitOffsets(ctx, commit("simple", -1, "", "events", map[int32]int64{2: 5}))
	noErr(t, err)
	_, err = f.coord.DeleteOffsets(ctx, DeleteOffsetsRequest{GroupID: "simple", Topics: []FetchTopic{{Name: "events", Partitions: []int32{2}}}})
	noErr(t, err)

	f.restart()
	// WaitLoaded is what a starting node waits on: afterwards the very
	// first request sees the committed state.
	noErr(t, f.coord.WaitLoaded(ctx))
	fr, err := f.coord.FetchOffsets(ctx, FetchRequest{GroupID: "g"})
	noErr(t, err)
	require(t, len(fr.Topics) == 1 && len(fr.Topics[0].Partitions) == 3 && fr.Topics[0].Partitions[2].Offset == 12, "g after restart: %+v", fr)
	fr, err = f.coord.FetchOffsets(ctx, FetchRequest{GroupID: "simple"})
	noErr(t, err)
	require(t, len(fr.Topics) == 1 && len(fr.Topics[0].Partitions) == 1 && fr.Topics[0].Partitions[0].Offset == 99, "simple after restart: %+v", fr)
	d := f.coord.DescribeGroups(ctx, []string{"g"})[0]
	require(t, d.State == StateStable && len(d.Members) == 1 && d.Members[0].MemberID == j.MemberID &&
		string(d.Members[0].Assignment) == "a", "g reloaded stable: %+v", d)
	// The member carries on with its generation.
	noErr(t, f.coord.Heartbeat(ctx, HeartbeatRequest{GroupID: "g", GenerationID: j.GenerationID, MemberID: j.MemberID}))
}

// TestCoordSessionExpiry: with a manual clock, a member that stops
// heartbeating is removed after its session timeout and the group empties.
func TestCoordSessionExpiry(t *testing.T) {
	clk := clock.NewManual(time.UnixMilli(1_700_000_000_000))
	f := newFixture(t, clk, Config{OffsetsTopicNumPartitions: 1, GroupInitialRebalanceDelayMs: -1})
	f.ready("g")
	ctx := ctxT(t)
	j, err := f.coord.Join(ctx, consumerJoin("g", ""))
	noErr(t, err)
	_, err = f.coord.Sync(ctx, SyncRequest{GroupID: "g", GenerationID: j.GenerationID, MemberID: j.MemberID})
	noErr(t, err)
	clk.Advance(9 * time.Second)
	noErr(t, f.coord.Heartbeat(ctx, HeartbeatRequest{GroupID: "g", GenerationID: j.GenerationID, MemberID: j.MemberID}))
	clk.Advance(9 * time.Second) // 18 s: alive thanks to the heartbeat at 9 s
	require(t, f.coord.DescribeGroups(ctx, []string{"g"})[0].State == StateStable, "still stable")
	clk.Advance(2 * time.Second) // 20 s: the session from 9 s ended at 19 s
	eventually(t, "the member's expiry", func() bool {
		return f.coord.DescribeGroups(ctx, []string{"g"})[0].State == StateEmpty
	})
	err = f.coord.Heartbeat(ctx, HeartbeatRequest{GroupID: "g", GenerationID: j.GenerationID, MemberID: j.MemberID})
	requireErrorIs(t, err, ErrUnknownMemberID)
}

// TestCoordOffsetExpiry: offsets of an empty group go after
// offsets.retention, checked every offsets.retention.check.interval.ms.
func TestCoordOffsetExpiry(t *testing.T) {
	clk := clock.NewManual(time.UnixMilli(1_700_000_000_000))
	f := newFixture(t, clk, Config{OffsetsTopicNumPartitions: 1, OffsetsRetentionMs: 60000, OffsetsRetentionCheckIntervalMs: 1000})
	f.createTopic("events", 1, nil)
	f.ready("simple")
	ctx := ctxT(t)
	_, err := f.coord.CommitOffsets(ctx, commit("simple", -1, "", "events", map[int32]int64{0: 7}))
	noErr(t, err)
	fetch := func() int64 {
		fr, err := f.coord.FetchOffsets(ctx, FetchRequest{GroupID: "simple", Topics: []FetchTopic{{Name: "events", Partitions: []int32{0}}}})
		noErr(t, err)
		return fr.Topics[0].Partitions[0].Offset
	}
	clk.Advance(30 * time.Second)
	require(t, fetch() == 7, "kept within retention")
	clk.Advance(31 * time.Second)
	eventually(t, "the offset's expiry", func() bool { return fetch() == -1 })
	// The tombstone is durable: a restart does not bring it back.
	f.restart()
	f.ready("simple")
	require(t, fetch() == -1, "expired offset stays gone after a restart")
}

// TestCoordBadInput: oversized metadata and empty ids get clear errors.
func TestCoordBadInput(t *testing.T) {
	f := newFixture(t, clock.Real(), Config{OffsetsTopicNumPartitions: 1, MaxMemberMetadataBytes: 1024, GroupMaxSize: 2, GroupInitialRebalanceDelayMs: -1})
	f.ready("g")
	ctx := ctxT(t)
	req := consumerJoin("g", "")
	req.Protocols[0].Metadata = make([]byte, 4096)
	_, err := f.coord.Join(ctx, req)
	requireErrorIs(t, err, ErrMemberMetadataTooLarge)
	_, err = f.coord.Join(ctx, consumerJoin("", ""))
	requireErrorIs(t, err, ErrInvalidGroupID)
	req = consumerJoin("g", "")
	req.SessionTimeoutMs = 1
	_, err = f.coord.Join(ctx, req)
	requireErrorIs(t, err, ErrInvalidSessionTimeout)
	// group.max.size 2: a third member is refused.
	for range 2 {
		r := consumerJoin("g", "")
		r.RequireKnownMemberID = true
		_, err := f.coord.Join(ctx, r)
		requireErrorIs(t, err, ErrMemberIDRequired)
	}
	r := consumerJoin("g", "")
	r.RequireKnownMemberID = true
	_, err = f.coord.Join(ctx, r)
	requireErrorIs(t, err, ErrGroupMaxSizeReached)
	// A caller whose context ends stops waiting.
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	_, err = f.coord.Join(short, consumerJoin("slow", ""))
	require(t, err == nil || err == context.DeadlineExceeded, "join with a short context: %v", err)
}
