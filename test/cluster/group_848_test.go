package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterConsumerProtocolGroupSurvivesCoordinatorKill: two members of
// a consumer-protocol group (KIP-848) consume a topic; the group's
// coordinator is SIGKILLed. The new leader of the group's
// __consumer_offsets partition replays the group's records, the members
// carry on heartbeating to it, and they go on consuming what is produced
// afterwards, the group Stable again with both members.
func TestClusterConsumerProtocolGroupSurvivesCoordinatorKill(t *testing.T) {
	testGroupSurvivesCoordinatorKill(t, "kip848-survivors", false)
}

// TestClusterMixedGroupSurvivesCoordinatorKill: the same with a mixed
// group: a classic member forms a classic group, a consumer-protocol
// member joining converts it (Kafka 4's online upgrade), and the new
// coordinator replays the converted group, classic member included.
func TestClusterMixedGroupSurvivesCoordinatorKill(t *testing.T) {
	testGroupSurvivesCoordinatorKill(t, "mixed-survivors", true)
}

// long: one story, start to kill to recovery, with its helpers inline.
func testGroupSurvivesCoordinatorKill(t *testing.T, group string, mixed bool) {
	c := startCluster(t, 3, clusterOpts{sets: []string{"group.consumer.session.timeout.ms=20000", "group.consumer.heartbeat.interval.ms=500",
		"group.initial.rebalance.delay.ms=0"}})
	const topic, partitions = "kip848-input", 4
	c.createTopic(t, topic, partitions)
	prod := c.client(t, nil, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(30*time.Second))
	adm := c.admin(t)

	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); wg.Wait() }()
	for i := range 2 {
		opts := []kgo.Opt{kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ServerSideBalancer(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500 * time.Millisecond),
			kgo.AutoCommitInterval(500 * time.Millisecond)}
		if mixed && i == 0 {
			// The first member is classic (no ServerSideBalancer) and
			// forms a classic group before the second one joins.
			opts = append(opts[:2:2], opts[3:]...)
		}
		cl := c.client(t, nil, opts...)
		wg.Go(func() {
			for ctx.Err() == nil {
				fs := cl.PollFetches(ctx)
				mu.Lock()
				for _, r := range fs.Records() {
					seen[string(r.Value)]++
				}
				mu.Unlock()
			}
		})
		if mixed && i == 0 {
			eventually(t, 60*time.Second, "a stable classic group", func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				described, err := adm.DescribeGroups(ctx, group)
				if err != nil {
					return err
				}
				if g := described[group]; g.Err != nil || g.State != "Stable" || len(g.Members) != 1 {
					return fmt.Errorf("classic group %+v", g)
				}
				return nil
			})
		}
	}
	stable := func(what string) kadm.DescribedConsumerGroup {
		var g kadm.DescribedConsumerGroup
		eventually(t, 60*time.Second, what, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			described, err := adm.DescribeConsumerGroups(ctx, group)
			if err != nil {
				return err
			}
			g = described[group]
			if g.Err != nil {
				return g.Err
			}
			if g.State != "Stable" || len(g.Members) != 2 {
				return fmt.Errorf("state %s with %d members", g.State, len(g.Members))
			}
			return nil
		})
		return g
	}
	consumed := func(what string, from, n int) {
		eventually(t, 60*time.Second, what, func() error {
			mu.Lock()
			defer mu.Unlock()
			for i := from; i < from+n; i++ {
				if seen[Value(1, int64(i))] == 0 {
					return fmt.Errorf("record %d not consumed", i)
				}
			}
			return nil
		})
	}
	before := stable("a stable group of two")
	produceN(t, prod, 0, 100)
	consumed("the records produced before the kill", 0, 100)

	victim := c.node(before.Coordinator.NodeID)
	t.Logf("killing node %d, coordinator of group %s at group epoch %d", victim.id, group, before.Epoch)
	victim.Kill()
	after := stable("the group stable again under the new coordinator")
	t.Logf("new coordinator %d, group epoch %d (was %d)", after.Coordinator.NodeID, after.Epoch, before.Epoch)
	if after.Coordinator.NodeID == victim.id || after.Epoch < before.Epoch {
		t.Errorf("after the kill: coordinator %d, epoch %d; before: coordinator %d, epoch %d",
			after.Coordinator.NodeID, after.Epoch, victim.id, before.Epoch)
	}
	produceN(t, prod, 100, 100)
	consumed("the records produced after the kill", 100, 100)
}
