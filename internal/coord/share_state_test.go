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
	eventually(t, "the share coordinator", func() bool {
		node, err := f.share.FindCoordinator(ctx, ShareCoordinatorKey(k))
		return err == nil && node == testNode
	})
	res, err := f.share.ReadState(ctx, k, 0)
	noErr(t, err)
	require(t, res.StartOffset == -1, "no state yet: %+v", res)
	for i, start := range []int64{10, 12, 15, 16} { // past UpdatesPerSnapshot: a second snapshot
		noErr(t, f.share.WriteState(ctx, k, ShareWriteRequest{LeaderEpoch: 3, StartOffset: start,
			Batches: []ShareStateBatch{{FirstOffset: start, LastOffset: start + 4, DeliveryCount: int16(i + 1)}}}))
	}
	_, err = f.share.ReadState(ctx, f.key("other", 0), 0)
	noErr(t, err)
	_, err = f.share.ReadState(ctx, ShareStateKey{GroupID: "sg", Partition: 0}, 0)
	requireErrorIs(t, err, ErrUnknownShareTopic)

	f.share.Stop()
	f.restart()
	f.startShare()
	eventually(t, "the share coordinator after restart", func() bool {
		_, err := f.share.ReadStateSummary(ctx, k)
		return err == nil
	})
	sum, err := f.share.ReadStateSummary(ctx, k)
	noErr(t, err)
	require(t, sum.StartOffset == 16 && sum.LeaderEpoch == 3, "summary after restart: %+v", sum)
	res, err = f.share.ReadState(ctx, k, 4)
	noErr(t, err)
	require(t, res.StartOffset == 16 && len(res.Batches) == 1 && res.Batches[0].LastOffset == 20 && res.Batches[0].DeliveryCount == 4,
		"state after restart: %+v", res)
	err = f.share.WriteState(ctx, k, ShareWriteRequest{LeaderEpoch: 3, StartOffset: 17})
	requireErrorIs(t, err, ErrFencedLeaderEpoch)
	noErr(t, f.share.DeleteState(ctx, k))
	res, err = f.share.ReadState(ctx, k, 4)
	noErr(t, err)
	require(t, res.StartOffset == -1, "deleted: %+v", res)
}
