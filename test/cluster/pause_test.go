package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterPauseFollower SIGSTOPs a follower: with
// replica.lag.time.max.ms=2000 it must leave the ISR, and acks=all
// produces must keep succeeding (the high watermark keeps advancing) with
// the two others; after SIGCONT it must rejoin, and no acknowledged record
// may be lost.
func TestClusterPauseFollower(t *testing.T) {
	rng := seeded(t)
	c := startCluster(t, 3, clusterOpts{sets: []string{"replica.lag.time.max.ms=2000"}})
	const topic, partitions = "pause-follower", 1
	c.createTopic(t, topic, partitions)
	p := startProducer(t, c, 1, topic, partitions, 2*time.Millisecond)
	p.waitProgress(t, 200, 30*time.Second, "first acknowledgements")

	for round := range short(1, 5) {
		v := c.waitLeader(t, topic, 0, 30*time.Second)
		followers := c.ids(v.leader)
		follower := c.node(followers[rng.IntN(len(followers))])
		t.Logf("round %d: pausing node %d, a follower of %s/0 (%v)", round, follower.id, topic, v)
		follower.Pause()
		took := c.waitISR(t, v.leader, topic, 0, follower.id, false, 20*time.Second)
		t.Logf("round %d: node %d left the ISR after %v", round, follower.id, took.Round(time.Millisecond))

		hw := c.highWatermark(t, v.leader, topic)
		p.waitProgress(t, 200, 20*time.Second, "acks=all produces with a follower paused")
		if now := c.highWatermark(t, v.leader, topic); now <= hw {
			t.Fatalf("round %d: high watermark %d, then %d: not advancing while node %d is paused", round, hw, now, follower.id)
		}

		time.Sleep(time.Duration(rng.IntN(2000)) * time.Millisecond)
		follower.Resume()
		took = c.waitISR(t, v.leader, topic, 0, follower.id, true, 30*time.Second)
		t.Logf("round %d: node %d rejoined the ISR %v after SIGCONT", round, follower.id, took.Round(time.Millisecond))
	}
	p.stop(t)
	t.Log(p.summary())
	c.checkHistory(t, topic, partitions, p.history())
}

// highWatermark asks node ask (the leader) for partition 0's end offset,
// its high watermark. The request goes to that node only: a kadm call would
// ask metadata of any broker, the paused one included.
func (c *cluster) highWatermark(t testing.TB, ask int32, topic string) int64 {
	t.Helper()
	var hw int64
	eventually(t, 10*time.Second, fmt.Sprintf("end offset of %s/0 from node %d", topic, ask), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = 0, -1 // latest: the HW
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := c.probe(t, ask).SeedBrokers()[0].Request(ctx, req)
		if err != nil {
			return err
		}
		for _, tp := range resp.(*kmsg.ListOffsetsResponse).Topics {
			for _, p := range tp.Partitions {
				if p.ErrorCode != 0 {
					return fmt.Errorf("%s/0 from node %d: error code %d", topic, ask, p.ErrorCode)
				}
				hw = p.Offset
				return nil
			}
		}
		return fmt.Errorf("node %d: no answer for %s/0", ask, topic)
	})
	return hw
}
