package coord

import (
	"context"
	"testing"

	"github.com/sluicelog/sluice/internal/clock"
)

type shareStateFixture struct {
	*fixture
	share *ShareCoordinator
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
				f.createTopic(ShareStateTopic, 3, ShareStateTopicConfigs)
			}
			f.share.Refresh()
			return nil
		}})
	noErr(f.t, err)
	f.share = c
	f.t.Cleanup(c.Stop)
	c.Refresh()
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
