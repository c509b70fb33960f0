package partition

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/metadata"
)

// Leader-side replication, with fake followers 2 and 3 calling
// ReadAsReplica on broker 1 directly.

// leaderOfThree starts broker 1 leading t-0 with replicas and ISR {1,2,3}.
func leaderOfThree(t *testing.T, o brokerOpts, configs map[string]string) (*cluster, *broker, *Partition) {
	c := newCluster(t)
	b := c.addBroker(1, o)
	c.createTopic("t", 1, configs, []int32{1, 2, 3})
	return c, b, b.leader()
}

func TestReplicationHighWatermarkIsISRMinimum(t *testing.T) {
	c, _, p := leaderOfThree(t, brokerOpts{}, nil)
	_, err := p.Append(c.batch(plain(3)))
	noErr(t, err)
	require(t, p.Offsets() == Offsets{0, 0, 3, 0}, "after append: %+v, want the LEO moved, not the HW", p.Offsets())
	require(t, len(readAll(t, p, 0)) == 0, "a consumer sees records above the high watermark")

	hw, n := fetchAs(t, p, 2, 0)
	require(t, hw == 0 && n > 0, "follower 2 at 0: hw %d, %d bytes", hw, n)
	hw, n = fetchAs(t, p, 2, 3)
	require(t, hw == 0 && n == 0, "follower 3 never fetched, yet hw %d (%d bytes)", hw, n)
	hw, _ = fetchAs(t, p, 3, 1)
	require(t, hw == 1, "ISR LEOs 3,3,1: hw %d", hw)

	_, err = p.Append(c.batch(plain(2)))
	noErr(t, err)
	for _, step := range []struct {
		replica     int32
		offset, hw  int64
		description string
	}{
		{3, 3, 3, "follower 3 at 3, follower 2 at 3"},
		{2, 5, 3, "follower 2 at the LEO, 3 behind"},
		{3, 5, 5, "both at the LEO"},
		{3, 4, 5, "a follower going back (it restarted) does not move the HW back"},
	} {
		hw, _ := fetchAs(t, p, step.replica, step.offset)
		require(t, hw == step.hw && p.Offsets().HighWatermark == step.hw, "%s: hw %d (partition %d), want %d",
			step.description, hw, p.Offsets().HighWatermark, step.hw)
	}
	require(t, len(readAll(t, p, 0)) == 2, "consumer reads %d batches below the HW", len(readAll(t, p, 0)))
}

func TestReplicationFetchOutOfRange(t *testing.T) {
	c, _, p := leaderOfThree(t, brokerOpts{}, nil)
	_, err := p.Append(c.batch(plain(4)))
	noErr(t, err)
	fetchAs(t, p, 2, 2)
	fetchAs(t, p, 3, 2)
	require(t, p.Offsets().HighWatermark == 2, "offsets %+v", p.Offsets())

	// Beyond the LEO: a diverged follower; nothing it says counts.
	_, err = p.ReadAsReplica(3, 5, ReadOptions{MaxBytes: 1 << 20, CurrentLeaderEpoch: 0})
	requireErrorIs(t, err, log.ErrOffsetOutOfRange)
	require(t, p.Offsets().HighWatermark == 2 && followerLEO(p, 3) == 2, "out-of-range fetch moved state: %+v, follower 3 at %d",
		p.Offsets(), followerLEO(p, 3))

	// Below the log start, likewise.
	fetchAs(t, p, 2, 4)
	fetchAs(t, p, 3, 4)
	_, err = p.DeleteRecordsBefore(3)
	noErr(t, err)
	_, err = p.ReadAsReplica(2, 1, ReadOptions{MaxBytes: 1 << 20, CurrentLeaderEpoch: 0})
	requireErrorIs(t, err, log.ErrOffsetOutOfRange)
	require(t, followerLEO(p, 2) == 4, "follower 2 at %d after an out-of-range fetch", followerLEO(p, 2))

	// A replica that is not one, and a stale or future epoch.
	_, err = p.ReadAsReplica(9, 4, ReadOptions{MaxBytes: 1 << 20, CurrentLeaderEpoch: 0})
	requireErrorIs(t, err, ErrNotFollower)
	_, err = p.ReadAsReplica(2, 4, ReadOptions{MaxBytes: 1 << 20, CurrentLeaderEpoch: 1})
	requireErrorIs(t, err, ErrUnknownLeaderEpoch)
}

func TestReplicationAppendAllWaitsForISR(t *testing.T) {
	c, _, p := leaderOfThree(t, brokerOpts{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := appendAllAsync(p, ctx, c.batch(plain(2)))
	eventually(t, func() error {
		if leo := p.Offsets().LogEndOffset; leo != 2 {
			return fmt.Errorf("LEO %d, want 2", leo)
		}
		return nil
	})
	requireWaiting(t, done)
	fetchAs(t, p, 2, 2)
	requireWaiting(t, done) // follower 3 has not fetched
	fetchAs(t, p, 3, 1)
	requireWaiting(t, done) // follower 3 has half the batch
	fetchAs(t, p, 3, 2)
	r := waitResult(t, done)
	noErr(t, r.err)
	require(t, r.res.BaseOffset == 0 && r.res.LastOffset == 1, "result %+v", r.res)

	// Nobody fetches: the produce timeout ends the wait, the records stay.
	short, cancelShort := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancelShort()
	_, err := p.AppendAll(short, c.batch(plain(1)))
	requireErrorIs(t, err, context.DeadlineExceeded)
	require(t, p.Offsets() == Offsets{0, 2, 3, 2}, "offsets %+v", p.Offsets())
}

func TestReplicationAppendAllMinInsyncReplicas(t *testing.T) {
	c, _, p := leaderOfThree(t, brokerOpts{}, map[string]string{config.MinInsyncReplicas: "3"})
	c.change(metadata.NoLeaderChange, 1, 2)
	_, err := p.AppendAll(context.Background(), c.batch(plain(1)))
	requireErrorIs(t, err, ErrNotEnoughReplicas)
	require(t, p.Offsets().LogEndOffset == 0, "refused produce appended: %+v", p.Offsets())

	// The ISR shrinks below min.insync.replicas while a produce waits: it
	// is committed by the smaller ISR and says so.
	c.apply(configRecord("t", config.MinInsyncReplicas, "2"),
		&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: metadata.NoLeaderChange, ISR: []int32{1, 2, 3}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := appendAllAsync(p, ctx, c.batch(plain(1)))
	eventually(t, func() error {
		if leo := p.Offsets().LogEndOffset; leo != 1 {
			return fmt.Errorf("LEO %d, want 1", leo)
		}
		return nil
	})
	requireWaiting(t, done)
	c.change(metadata.NoLeaderChange, 1)
	r := waitResult(t, done)
	requireErrorIs(t, r.err, ErrNotEnoughReplicasAfterAppend)
	require(t, p.Offsets().HighWatermark == 1, "offsets %+v", p.Offsets())
}

func TestReplicationAppendAllLeadershipChange(t *testing.T) {
	for _, tc := range []struct {
		name      string
		newLeader int32
	}{
		{"moves to another broker", 2},
		{"new epoch on the same broker", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, b, p := leaderOfThree(t, brokerOpts{}, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			done := appendAllAsync(p, ctx, c.batch(plain(1)))
			eventually(t, func() error {
				if leo := p.Offsets().LogEndOffset; leo != 1 {
					return fmt.Errorf("LEO %d, want 1", leo)
				}
				return nil
			})
			fetchAs(t, p, 2, 1) // one follower has it: the HW still waits for 3
			requireWaiting(t, done)
			c.change(tc.newLeader)
			r := waitResult(t, done)
			requireErrorIs(t, r.err, ErrNotLeader)
			if tc.newLeader == 1 {
				require(t, b.leader().LeaderEpoch() == 1, "epoch %d", b.leader().LeaderEpoch())
			}
		})
	}
}

// ISR changes, with a recording AlterISR and the manual clock.

func TestReplicationShrinkISRAfterLagTime(t *testing.T) {
	rec := newAlterRecorder()
	c, _, p := leaderOfThree(t, brokerOpts{alterISR: rec.submit}, nil)
	const lagMs = 10_000
	_, err := p.Append(c.batch(plain(4)))
	noErr(t, err)
	fetchAs(t, p, 2, 4) // follower 2 is caught up; 3 never fetches

	c.clock.Advance(lagMs * time.Millisecond)
	p.MaybeShrinkISR(lagMs)
	_, pending := pendingISR(p)
	require(t, !pending, "shrink proposed at exactly the lag time")
	rec.requireNone(t)

	c.clock.Advance(time.Millisecond)
	p.MaybeShrinkISR(lagMs)
	got := rec.next(t)
	want := ISRProposal{TopicID: uuid(1), Topic: "t", Partition: 0, LeaderEpoch: 0, PartitionEpoch: 0, NewISR: []int32{1, 2}}
	require(t, got.TopicID == want.TopicID && got.Topic == want.Topic && got.Partition == want.Partition &&
		got.LeaderEpoch == want.LeaderEpoch && got.PartitionEpoch == want.PartitionEpoch && slices.Equal(got.NewISR, want.NewISR),
		"proposal %+v, want %+v", got, want)

	// In flight: no second proposal; follower 3 still holds the HW (the
	// controller may refuse).
	p.MaybeShrinkISR(lagMs)
	require(t, p.Offsets().HighWatermark == 0, "HW %d moved before the shrink was committed", p.Offsets().HighWatermark)
	// Committed: the HW is the remaining ISR's minimum.
	c.change(metadata.NoLeaderChange, 1, 2)
	_, pending = pendingISR(p)
	isr := p.ISR()
	require(t, !pending && slices.Equal(isr, []int32{1, 2}), "pending %v, ISR %v", pending, isr)
	require(t, p.Offsets().HighWatermark == 4, "HW %d after the shrink", p.Offsets().HighWatermark)
	rec.requireNone(t)
}

func TestReplicationExpandISRWhenCaughtUp(t *testing.T) {
	rec := newAlterRecorder()
	c, _, p := leaderOfThree(t, brokerOpts{alterISR: rec.submit}, nil)
	c.change(metadata.NoLeaderChange, 1, 2) // partition epoch 1
	_, err := p.Append(c.batch(plain(5)))
	noErr(t, err)
	fetchAs(t, p, 2, 5)
	require(t, p.Offsets().HighWatermark == 5, "offsets %+v", p.Offsets())

	fetchAs(t, p, 3, 2) // below the HW: not in sync yet
	_, pending := pendingISR(p)
	require(t, !pending, "expansion proposed for a follower below the HW")
	fetchAs(t, p, 3, 5)
	got := rec.next(t)
	require(t, got.PartitionEpoch == 1 && got.LeaderEpoch == 0 && slices.Equal(got.NewISR, []int32{1, 2, 3}), "proposal %+v", got)

	// The newcomer counts for the HW at once.
	_, err = p.Append(c.batch(plain(1)))
	noErr(t, err)
	hw, _ := fetchAs(t, p, 2, 6)
	require(t, hw == 5, "HW %d while the newcomer is at 5", hw)
	hw, _ = fetchAs(t, p, 3, 6)
	require(t, hw == 6, "HW %d", hw)

	c.change(metadata.NoLeaderChange, 1, 2, 3)
	_, pending = pendingISR(p)
	isr := p.ISR()
	require(t, !pending && slices.Equal(isr, []int32{1, 2, 3}), "pending %v, ISR %v", pending, isr)
}

// TestReplicationISRChangesAreCounted: the leader reports each committed
// ISR change once, as a shrink or an expansion (the ISR metrics); an image
// that leaves the ISR alone reports nothing.
func TestReplicationISRChangesAreCounted(t *testing.T) {
	var shrinks, expands atomic.Int32
	count := func(shrunk bool) {
		if shrunk {
			shrinks.Add(1)
		} else {
			expands.Add(1)
		}
	}
	c, _, _ := leaderOfThree(t, brokerOpts{isrChanged: count}, nil)
	c.change(metadata.NoLeaderChange, 1, 2)
	c.change(metadata.NoLeaderChange, 1, 2) // the same ISR again
	require(t, shrinks.Load() == 1 && expands.Load() == 0, "after a shrink: %d shrinks, %d expands", shrinks.Load(), expands.Load())
	c.change(metadata.NoLeaderChange, 1, 2, 3)
	require(t, shrinks.Load() == 1 && expands.Load() == 1, "after an expansion: %d shrinks, %d expands", shrinks.Load(), expands.Load())
}

func TestReplicationFailedISRProposalIsRetried(t *testing.T) {
	refused := errors.New("controller: invalid update version")
	t.Run("shrink", func(t *testing.T) {
		rec := newAlterRecorder()
		rec.failNext(refused)
		c, _, p := leaderOfThree(t, brokerOpts{alterISR: rec.submit}, nil)
		_, err := p.Append(c.batch(plain(1)))
		noErr(t, err)
		fetchAs(t, p, 2, 1)
		c.clock.Advance(time.Minute)
		p.MaybeShrinkISR(10_000)
		first := rec.next(t)
		eventually(t, func() error {
			if _, pending := pendingISR(p); pending {
				return errors.New("the failed proposal is still pending")
			}
			return nil
		})
		p.MaybeShrinkISR(10_000)
		second := rec.next(t)
		require(t, slices.Equal(first.NewISR, []int32{1, 2}) && slices.Equal(second.NewISR, first.NewISR),
			"proposals %+v then %+v", first, second)
	})
	t.Run("expand", func(t *testing.T) {
		rec := newAlterRecorder()
		rec.failNext(refused)
		c, _, p := leaderOfThree(t, brokerOpts{alterISR: rec.submit}, nil)
		c.change(metadata.NoLeaderChange, 1, 2)
		_, err := p.Append(c.batch(plain(1)))
		noErr(t, err)
		fetchAs(t, p, 2, 1)
		fetchAs(t, p, 3, 1)
		rec.next(t)
		eventually(t, func() error {
			if _, pending := pendingISR(p); pending {
				return errors.New("the failed proposal is still pending")
			}
			return nil
		})
		fetchAs(t, p, 3, 1)
		got := rec.next(t)
		require(t, slices.Equal(got.NewISR, []int32{1, 2, 3}), "second proposal %+v", got)
	})
	// A failed expansion no longer holds the HW back: an acks=all produce
	// the rest of the ISR has must complete without waiting for another
	// fetch or append.
	t.Run("expansion failure releases the HW", func(t *testing.T) {
		rec := newAlterRecorder()
		rec.failNext(refused)
		rec.hold = make(chan struct{})
		c, _, p := leaderOfThree(t, brokerOpts{alterISR: rec.submit}, nil)
		c.change(metadata.NoLeaderChange, 1, 2)
		_, err := p.Append(c.batch(plain(10)))
		noErr(t, err)
		fetchAs(t, p, 2, 10)
		fetchAs(t, p, 3, 10) // caught up: the expansion is proposed and held
		rec.next(t)

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done := appendAllAsync(p, ctx, c.batch(plain(5)))
		eventually(t, func() error {
			if leo := p.Offsets().LogEndOffset; leo != 15 {
				return fmt.Errorf("LEO %d, want 15", leo)
			}
			return nil
		})
		hw, _ := fetchAs(t, p, 2, 15)
		require(t, hw == 10, "HW %d: the proposed newcomer at 10 must hold it", hw)
		requireWaiting(t, done)

		close(rec.hold) // the controller refuses the expansion
		eventually(t, func() error {
			if _, pending := pendingISR(p); pending {
				return errors.New("the failed proposal is still pending")
			}
			return nil
		})
		r := waitResult(t, done)
		noErr(t, r.err)
		require(t, p.Offsets().HighWatermark == 15, "offsets %+v", p.Offsets())
	})
}

// TestReplicationFencedFollowerNotProposed: a follower that is caught up
// but fenced (its broker died) is never proposed back into the ISR, so it
// can neither flood the controller with refused proposals nor, counted in
// a pending expansion, hold the high watermark.
func TestReplicationFencedFollowerNotProposed(t *testing.T) {
	rec := newAlterRecorder()
	c, _, p := leaderOfThree(t, brokerOpts{alterISR: rec.submit}, nil)
	c.apply(&metadata.FenceBroker{BrokerID: 3, BrokerEpoch: 3})
	c.change(metadata.NoLeaderChange, 1, 2)
	_, err := p.Append(c.batch(plain(5)))
	noErr(t, err)
	fetchAs(t, p, 3, 5) // its last word before dying: caught up
	hw, _ := fetchAs(t, p, 2, 5)
	require(t, hw == 5, "HW %d", hw)
	_, pending := pendingISR(p)
	require(t, !pending, "a fenced follower was proposed into the ISR")
	rec.requireNone(t)

	_, err = p.Append(c.batch(plain(1)))
	noErr(t, err)
	hw, _ = fetchAs(t, p, 2, 6)
	require(t, hw == 6, "HW %d: held by the fenced follower", hw)
}
