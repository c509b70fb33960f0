package coord

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/coord/sharestate"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/partition"
)

type shareStateFixture struct {
	*fixture
	share *ShareCoordinator
	// stateReplicas are __share_group_state's replicas, this node's alone
	// unless set; the ISR is all of them.
	stateReplicas []int32
}

func newShareStateFixture(t *testing.T) *shareStateFixture {
	f := &shareStateFixture{fixture: newFixture(t, clock.Real(), Config{})}
	f.createTopic("t", 2, nil)
	f.startShare()
	return f
}

func (f *shareStateFixture) startShare() {
	c, err := StartShareState(ShareStateOptions{NodeID: testNode, Partitions: f.mgr, Image: f.image, Clock: f.clock, Logger: quietLogger,
		Config: ShareStateConfig{NumPartitions: 3, UpdatesPerSnapshot: 2},
		CreateShareStateTopic: func(context.Context) error {
			if _, ok := f.image().Topic(ShareStateTopic); !ok {
				f.createStateTopic()
			}
			f.share.Refresh()
			return nil
		}})
	noErr(f.t, err)
	f.share = c
	f.t.Cleanup(c.Stop)
	c.Refresh()
}

// createStateTopic creates __share_group_state (3 partitions) on
// stateReplicas, led here.
func (f *shareStateFixture) createStateTopic() {
	if len(f.stateReplicas) == 0 {
		f.createTopic(ShareStateTopic, 3, ShareStateTopicConfigs)
		return
	}
	id := metadata.UUID{0: 0x5E, 15: 1}
	records := []metadata.Record{&metadata.Topic{Name: ShareStateTopic, ID: id}}
	for i := range 3 {
		records = append(records, &metadata.Partition{TopicID: id, Partition: int32(i), Replicas: f.stateReplicas,
			ISR: f.stateReplicas, Leader: testNode})
	}
	f.apply(records...)
}

func (f *shareStateFixture) key(group string, partition int32) ShareStateKey {
	t, _ := f.image().Topic("t")
	return ShareStateKey{GroupID: group, TopicID: t.ID, Partition: partition}
}

// TestShareCoordinatorStateSurvivesRestart: a write is answered once it
// is in __share_group_state, and a restarted node reads it back by
// replaying the partition, with the leader epoch fence intact.
func TestShareCoordinatorStateSurvivesRestart(t *testing.T) {
	f := newShareStateFixture(t)
	ctx := ctxT(t)
	k := f.key("sg", 1)
	f.waitCoordinator(k)
	noErr(t, f.share.InitializeState(ctx, k, 0, -1))
	res, err := f.share.ReadState(ctx, k, 3)
	noErr(t, err)
	require(t, res.StartOffset == -1, "initialized without a start offset: %+v", res)
	for i, start := range []int64{10, 12, 15, 16} { // past UpdatesPerSnapshot: a second snapshot
		noErr(t, f.share.WriteState(ctx, k, ShareWriteRequest{LeaderEpoch: 3, StartOffset: start,
			Batches: []ShareStateBatch{{FirstOffset: start, LastOffset: start + 4, DeliveryCount: int16(i + 1)}}}))
	}
	_, err = f.share.ReadState(ctx, ShareStateKey{GroupID: "sg", Partition: 0}, 0)
	requireErrorIs(t, err, ErrUnknownShareTopic)

	f.restartShare()
	sum, err := f.share.ReadStateSummary(ctx, k)
	noErr(t, err)
	require(t, sum.StartOffset == 16 && sum.LeaderEpoch == 3, "summary after restart: %+v", sum)
	res, err = f.share.ReadState(ctx, k, 4)
	noErr(t, err)
	require(t, res.StartOffset == 16 && len(res.Batches) == 1 && res.Batches[0].LastOffset == 20 && res.Batches[0].DeliveryCount == 4,
		"state after restart: %+v", res)
	err = f.share.WriteState(ctx, k, ShareWriteRequest{LeaderEpoch: 3, StartOffset: 17})
	requireErrorIs(t, err, ErrFencedLeaderEpoch)
}

// TestShareCoordinatorRefusesStateItDidNotInitialize: as in Kafka 4.1,
// only InitializeShareGroupState creates a share partition's state. A
// write or read of a share partition never initialized, or deleted (a
// deleted share group), is refused and writes nothing, so a leader that
// still holds a deleted group's state cannot write it back, before or
// after the coordinator restarts; a new initialization starts clean, and
// that leader cannot write its copy into it either.
func TestShareCoordinatorRefusesStateItDidNotInitialize(t *testing.T) {
	f := newShareStateFixture(t)
	ctx := ctxT(t)
	k := f.key("sg", 1)
	f.waitCoordinator(k)
	_, err := f.share.ReadState(ctx, k, 0)
	requireErrorIs(t, err, ErrUninitializedShareState)
	err = f.share.WriteState(ctx, k, ShareWriteRequest{LeaderEpoch: 0, StartOffset: 5})
	requireErrorIs(t, err, ErrUninitializedShareState)
	sum, err := f.share.ReadStateSummary(ctx, k)
	noErr(t, err)
	require(t, sum.StartOffset == -1, "summary of a share partition never initialized: %+v", sum)

	noErr(t, f.share.InitializeState(ctx, k, 0, -1))
	_, err = f.share.ReadState(ctx, k, 2)
	noErr(t, err)
	stale := ShareWriteRequest{StateEpoch: 1, LeaderEpoch: 2, StartOffset: 40,
		Batches: []ShareStateBatch{{FirstOffset: 40, LastOffset: 49, DeliveryState: 2, DeliveryCount: 1}}}
	noErr(t, f.share.WriteState(ctx, k, stale))
	noErr(t, f.share.DeleteState(ctx, k))
	// The leader of the deleted group acknowledges once more.
	err = f.share.WriteState(ctx, k, stale)
	requireErrorIs(t, err, ErrUninitializedShareState)
	_, err = f.share.ReadState(ctx, k, 2)
	requireErrorIs(t, err, ErrUninitializedShareState)

	f.restartShare()
	err = f.share.WriteState(ctx, k, stale)
	requireErrorIs(t, err, ErrUninitializedShareState)
	sum, err = f.share.ReadStateSummary(ctx, k)
	noErr(t, err)
	require(t, sum.StartOffset == -1, "summary after delete and restart: %+v", sum)

	noErr(t, f.share.InitializeState(ctx, k, 0, -1))
	// A new group of the same id: its state (state epoch 0, no leader
	// epoch) is older in both epochs than the deleted group's copy, which
	// was never read from it and is refused all the same, before and
	// after a restart.
	err = f.share.WriteState(ctx, k, stale)
	requireErrorIs(t, err, ErrFencedStateEpoch)
	f.restartShare()
	err = f.share.WriteState(ctx, k, stale)
	requireErrorIs(t, err, ErrFencedStateEpoch)
	res, err := f.share.ReadState(ctx, k, 2)
	noErr(t, err)
	require(t, res.StateEpoch == 0 && res.StartOffset == -1 && len(res.Batches) == 0, "a new group of the same id: %+v", res)
	// Read in leader epoch 2, the state takes that leader's writes.
	noErr(t, f.share.WriteState(ctx, k, ShareWriteRequest{StateEpoch: 1, LeaderEpoch: 2, StartOffset: 0}))
}

func (f *shareStateFixture) waitCoordinator(k ShareStateKey) {
	f.t.Helper()
	ctx := ctxT(f.t)
	eventually(f.t, "the share coordinator", func() bool {
		node, err := f.share.FindCoordinator(ctx, ShareCoordinatorKey(k))
		return err == nil && node == testNode
	})
}

// restartShare restarts the node's partitions and a new share
// coordinator, which replays __share_group_state.
func (f *shareStateFixture) restartShare() {
	f.t.Helper()
	f.share.Stop()
	f.restart()
	f.startShare()
	ctx := ctxT(f.t)
	eventually(f.t, "the share coordinator after restart", func() bool {
		_, err := f.share.ReadStateSummary(ctx, f.key("sg", 1))
		return err == nil
	})
}

// TestShareCoordinatorInitializeRepeatedAfterATimeout: an initialization
// (AlterShareGroupOffsets' InitializeShareGroupState) whose caller gave up
// while its record waited for a slow follower (acks=all) is applied all
// the same; the persister sends it again. The repeat finds the state in
// the state epoch it asks for, and must succeed, as in Kafka (its share
// coordinator fences only an older state epoch), not answer
// FENCED_STATE_EPOCH, which the alter reported as NOT_LEADER_OR_FOLLOWER.
// Another initialization in that state epoch is still refused.
func TestShareCoordinatorInitializeRepeatedAfterATimeout(t *testing.T) {
	const follower = testNode + 1
	f := &shareStateFixture{fixture: newFixture(t, clock.Real(), Config{})}
	f.createTopic("t", 2, nil)
	f.stateReplicas = []int32{testNode, follower}
	f.startShare()
	ctx := ctxT(t)
	k := f.key("sg", 1)
	f.waitCoordinator(k)
	part, err := f.mgr.Partition(ShareStateTopic, PartitionFor(ShareCoordinatorKey(k), 3))
	noErr(t, err)

	timeoutCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err = f.share.InitializeState(timeoutCtx, k, 2, 10)
	cancel()
	requireErrorIs(t, err, context.DeadlineExceeded)
	// The follower catches up: the record is committed.
	leo := part.Offsets().LogEndOffset
	require(t, leo > 0, "the initialization was not appended")
	r, err := part.ReadAsReplica(follower, leo, partition.ReadOptions{CurrentLeaderEpoch: -1, MaxBytes: 1 << 20})
	noErr(t, err)
	r.Records.Release()
	eventually(t, "the initialization committed", func() bool { return part.Offsets().HighWatermark == leo })

	repeat := make(chan error, 1)
	go func() { repeat <- f.share.InitializeState(ctx, k, 2, 10) }()
	// The repeat's record waits for the follower too.
	eventually(t, "the repeat appended", func() bool {
		if end := part.Offsets().LogEndOffset; end > leo {
			r, err := part.ReadAsReplica(follower, end, partition.ReadOptions{CurrentLeaderEpoch: -1, MaxBytes: 1 << 20})
			noErr(t, err)
			r.Records.Release()
			return true
		}
		select {
		case err := <-repeat:
			repeat <- err
			return true
		default:
			return false
		}
	})
	noErr(t, <-repeat)
	sum, err := f.share.ReadStateSummary(ctx, k)
	noErr(t, err)
	require(t, sum.StateEpoch == 2 && sum.StartOffset == 10, "state after the repeat: %+v", sum)
	err = f.share.InitializeState(ctx, k, 2, 20)
	requireErrorIs(t, err, ErrFencedStateEpoch)
}

// TestShareCoordinatorDeletesADeletedTopicsStateOnLoad: a topic deleted
// while this node did not lead the __share_group_state partition holding
// its share state (leadership elsewhere, or being moved) has its state
// tombstoned when the shard loads here again, as it would have been live;
// a topic that stays keeps its state.
func TestShareCoordinatorDeletesADeletedTopicsStateOnLoad(t *testing.T) {
	f := newShareStateFixture(t)
	f.createTopic("u", 1, nil)
	ctx := ctxT(t)
	k := f.key("sg", 1)
	u, _ := f.image().Topic("u")
	kept := ShareStateKey{GroupID: "sg", TopicID: u.ID, Partition: 0}
	f.waitCoordinator(k)
	noErr(t, f.share.InitializeState(ctx, k, 0, 5))
	noErr(t, f.share.InitializeState(ctx, kept, 0, 7))
	stored := func(key ShareStateKey) bool {
		r, err := f.share.call(ctx, key, shareRequest{read: func(m *sharestate.Shard) any {
			_, ok := m.ReadSummary(key)
			return ok
		}})
		noErr(t, err)
		return r.Value.(bool)
	}
	require(t, stored(k) && stored(kept), "the states were not initialized")

	stateTopic, _ := f.image().Topic(ShareStateTopic)
	var moves []metadata.Record
	for p := range stateTopic.Partitions {
		moves = append(moves, &metadata.PartitionChange{TopicID: stateTopic.ID, Partition: int32(p), Leader: metadata.NoLeader})
	}
	f.apply(moves...)
	f.share.Refresh()
	t0, _ := f.image().Topic("t")
	f.apply(&metadata.RemoveTopic{TopicID: t0.ID})
	f.share.Refresh()
	for _, m := range moves {
		m.(*metadata.PartitionChange).Leader = testNode
	}
	f.apply(moves...)
	f.share.Refresh()
	eventually(t, "the deleted topic's state tombstoned on load", func() bool {
		r, err := f.share.call(ctx, k, shareRequest{read: func(m *sharestate.Shard) any {
			_, ok := m.ReadSummary(k)
			return ok
		}})
		return err == nil && !r.Value.(bool)
	})
	require(t, stored(kept), "the state of a topic that stays was deleted")
	// And the tombstones are in the log: a restart (which knows nothing of
	// the deletion) finds no state.
	f.share.Stop()
	f.restart()
	f.startShare()
	eventually(t, "the share coordinator after restart", func() bool {
		_, err := f.share.ReadStateSummary(ctx, kept)
		return err == nil
	})
	require(t, !stored(k), "the deleted topic's state is back after a restart")
}

// TestShareCoordinatorInitializeRacingATopicDeletion: an initialization
// checks its topic against the image before its step is queued; the
// topic may be deleted, and its state tombstoned, in between. The step
// must not then create state for the deleted topic: nothing would ever
// delete it again (the deletion was handled), so it stayed in
// __share_group_state for ever, counted against the shard's bound. The
// race is played here by the check reading the image of before the
// deletion.
func TestShareCoordinatorInitializeRacingATopicDeletion(t *testing.T) {
	f := newShareStateFixture(t)
	ctx := ctxT(t)
	k := f.key("sg", 1)
	f.waitCoordinator(k)
	noErr(t, f.share.InitializeState(ctx, k, 0, 5))
	stored := func() bool {
		r, err := f.share.call(ctx, k, shareRequest{read: func(m *sharestate.Shard) any {
			_, ok := m.ReadSummary(k)
			return ok
		}})
		noErr(t, err)
		return r.Value.(bool)
	}
	before := f.image()
	topic, _ := before.Topic("t")
	f.apply(&metadata.RemoveTopic{TopicID: topic.ID})
	f.share.Refresh()
	eventually(t, "the deleted topic's state tombstoned", func() bool { return !stored() })

	after := f.image()
	f.mu.Lock()
	f.img = before // the check reads the image of before the deletion
	f.mu.Unlock()
	err := f.share.InitializeState(ctx, k, 1, 5)
	f.mu.Lock()
	f.img = after
	f.mu.Unlock()
	requireErrorIs(t, err, ErrUnknownShareTopic)
	require(t, !stored(), "an initialization racing the deletion created the deleted topic's state again")
}

// TestShareCoordinatorDeletionHandsShardsOnlyNewTopics: each topic
// deletion wakes every shard loaded here; one that has removed the
// topics deleted before must be handed the new ones only. Handing it
// every remembered deletion (up to maxDeletedTopics) cloned about 2.4 MB
// and 4 ms per shard per deletion once a node had seen that many, on
// the shard's owner goroutine, so each later deletion cost in proportion
// to all those before it.
func TestShareCoordinatorDeletionHandsShardsOnlyNewTopics(t *testing.T) {
	id := func(i int) metadata.UUID {
		return metadata.UUID{0: 0x70, 1: byte(i), 2: byte(i >> 8), 3: byte(i >> 16)}
	}
	d := metadata.NewDelta(metadata.EmptyImage())
	for i := range maxDeletedTopics + 1 {
		noErr(t, d.Replay(&metadata.Topic{Name: "t" + strconv.Itoa(i), ID: id(i)}))
	}
	img := d.Apply(1)
	c := &ShareCoordinator{deletedTopics: map[[16]byte]bool{}, knownOffset: -1}
	c.opts.Image = func() *metadata.Image { return img }
	c.noteDeletedTopics()

	d = metadata.NewDelta(img)
	for i := range maxDeletedTopics {
		noErr(t, d.Replay(&metadata.RemoveTopic{TopicID: id(i)}))
	}
	img = d.Apply(2)
	require(t, c.noteDeletedTopics(), "the deletions were not noted")
	all, gen, changed := c.deletedTopicsSince(0) // a shard loaded now
	require(t, changed && len(all) == maxDeletedTopics, "a new shard was handed %d deleted topics, want %d", len(all), maxDeletedTopics)

	d = metadata.NewDelta(img)
	noErr(t, d.Replay(&metadata.RemoveTopic{TopicID: id(maxDeletedTopics)}))
	img = d.Apply(3)
	require(t, c.noteDeletedTopics(), "the last deletion was not noted")
	next, _, changed := c.deletedTopicsSince(gen)
	require(t, changed && len(next) == 1 && next[id(maxDeletedTopics)], "a shard that had caught up was handed %d deleted topics, want the new one", len(next))
}

// BenchmarkShareCoordinatorDeletedTopicsSince: what one more topic
// deletion hands a shard that had caught up, once the node remembers
// maxDeletedTopics deletions.
func BenchmarkShareCoordinatorDeletedTopicsSince(b *testing.B) {
	c := &ShareCoordinator{deletedTopics: map[[16]byte]bool{}}
	for i := range maxDeletedTopics + 1 {
		c.rememberDeletedLocked(metadata.UUID{0: 0x70, 1: byte(i), 2: byte(i >> 8), 3: byte(i >> 16)})
	}
	gen := c.deletedGen - 1
	b.ReportAllocs()
	for b.Loop() {
		c.deletedTopicsSince(gen)
	}
}
