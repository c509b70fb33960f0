package coord

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
)

// BenchmarkCoordConsumerRebalance100 is BenchmarkCoordRebalance100 for the
// consumer group protocol (KIP-848): 100 members join one group at once
// with ConsumerGroupHeartbeat and heartbeat every millisecond, each
// acknowledging what it is told at once, until the group is Stable (every
// member at the assignment epoch owning its whole target) over a topic of
// 200 partitions. Unlike the classic benchmark the broker computes the
// assignment (uniform assignor) and moves partitions only once revoked.
func BenchmarkCoordConsumerRebalance100(b *testing.B) {
	const members, partitions = 100, 200
	f := newFixture(b, clock.Real(), Config{OffsetsTopicNumPartitions: 1, GroupInitialRebalanceDelayMs: -1})
	f.createTopic("events", partitions, nil)
	f.ready("warm")
	ctx := ctxT(b)
	b.ResetTimer()
	for i := range b.N {
		groupID := fmt.Sprintf("bench-%d", i)
		var wg sync.WaitGroup
		var stop atomic.Bool
		for m := range members {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runConsumerMember(ctx, f.coord, groupID, fmt.Sprintf("member-%d", m), &stop, nil)
			}()
		}
		waitConsumerStable(ctx, f.coord, groupID, members)
		b.StopTimer()
		stop.Store(true)
		wg.Wait()
		b.StartTimer()
	}
}

// runConsumerMember is a KIP-848 consumer's heartbeat loop that revokes
// and takes partitions as soon as it is told to; owns (if not nil) is
// closed when it first owns a partition.
func runConsumerMember(ctx context.Context, c *Coordinator, groupID, memberID string, stop *atomic.Bool, owns chan struct{}) {
	req := ConsumerHeartbeatRequest{GroupID: groupID, MemberID: memberID, RebalanceTimeoutMs: 30000, SubscribedTopicNames: []string{"events"}}
	for !stop.Load() {
		res, err := c.ConsumerGroupHeartbeat(ctx, req)
		if err != nil {
			return
		}
		req.MemberEpoch, req.RebalanceTimeoutMs, req.SubscribedTopicNames = res.MemberEpoch, -1, nil
		if res.HasAssignment {
			req.OwnedTopics = res.Assignment
			if owns != nil && len(res.Assignment) > 0 {
				close(owns)
				owns = nil
			}
		}
		time.Sleep(time.Millisecond)
	}
	req.MemberEpoch = -1
	_, _ = c.ConsumerGroupHeartbeat(ctx, req)
}

// BenchmarkCoordRebalanceJoin100 times what a rebalance costs a running
// group, classic protocol: one member joins a stable group of 100 (formed
// untimed), and every member must rejoin and sync before the group is
// stable again (the stop-the-world rebalance KIP-848 removes).
func BenchmarkCoordRebalanceJoin100(b *testing.B) {
	const members = 100
	f := newFixture(b, clock.Real(), Config{OffsetsTopicNumPartitions: 1, GroupInitialRebalanceDelayMs: -1})
	f.ready("warm")
	ctx := ctxT(b)
	b.ResetTimer() // the fixture is not the rebalance
	for i := range b.N {
		b.StopTimer()
		groupID := fmt.Sprintf("bench-%d", i)
		var wg sync.WaitGroup
		var stop atomic.Bool
		gens := make([]atomic.Int32, members+1)
		start := func(m int) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runMember(ctx, f.coord, groupID, &gens[m], &stop)
			}()
		}
		for m := range members {
			start(m)
		}
		waitClassicSynced(ctx, f.coord, groupID, gens[:members])
		b.StartTimer()
		start(members)
		waitClassicSynced(ctx, f.coord, groupID, gens)
		b.StopTimer()
		stop.Store(true)
		wg.Wait()
	}
}

// waitClassicSynced waits until the group is Stable with len(gens)
// members that all synced its generation.
func waitClassicSynced(ctx context.Context, c *Coordinator, groupID string, gens []atomic.Int32) {
	for {
		d := c.DescribeGroups(ctx, []string{groupID})[0]
		if d.State == StateStable && len(d.Members) == len(gens) {
			gen := gens[0].Load()
			all := gen > 0
			for m := range gens {
				all = all && gens[m].Load() == gen
			}
			if all {
				return
			}
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// BenchmarkCoordConsumerRebalanceJoin100 is the same with the consumer
// protocol: one member joins a Stable group of 100 over 200 partitions,
// timed until the group is Stable again (every member has heartbeated its
// way to the new epoch, each writing a record). Members that keep their
// partitions go on consuming throughout, so the metric that matters to
// them is newcomer-owns-ms: when the one partition that moved is consumed
// again, by the newcomer.
func BenchmarkCoordConsumerRebalanceJoin100(b *testing.B) {
	const members, partitions = 100, 200
	f := newFixture(b, clock.Real(), Config{OffsetsTopicNumPartitions: 1, GroupInitialRebalanceDelayMs: -1})
	f.createTopic("events", partitions, nil)
	f.ready("warm")
	ctx := ctxT(b)
	var ownsTotal time.Duration
	defer func() { b.ReportMetric(float64(ownsTotal.Microseconds())/1000/float64(b.N), "newcomer-owns-ms") }()
	b.ResetTimer() // the fixture (200 partitions' logs) is not the rebalance
	for i := range b.N {
		b.StopTimer()
		groupID := fmt.Sprintf("bench-%d", i)
		var wg sync.WaitGroup
		var stop atomic.Bool
		start := func(m int, owns chan struct{}) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runConsumerMember(ctx, f.coord, groupID, fmt.Sprintf("member-%d", m), &stop, owns)
			}()
		}
		for m := range members {
			start(m, nil)
		}
		waitConsumerStable(ctx, f.coord, groupID, members)
		owns := make(chan struct{})
		b.StartTimer()
		began := time.Now()
		start(members, owns)
		<-owns
		ownsTotal += time.Since(began)
		waitConsumerStable(ctx, f.coord, groupID, members+1)
		b.StopTimer()
		stop.Store(true)
		wg.Wait()
	}
}

func waitConsumerStable(ctx context.Context, c *Coordinator, groupID string, members int) {
	for {
		d := c.ConsumerGroupDescribe(ctx, []string{groupID})[0]
		if d.Err == nil && d.State == "Stable" && len(d.Members) == members {
			return
		}
		time.Sleep(100 * time.Microsecond)
	}
}
