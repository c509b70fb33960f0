package cluster

import (
	"testing"
	"time"
)

// TestClusterKillLeaderDuringProduce kills the leader of a random
// partition with SIGKILL while an idempotent acks=all producer runs, keeps
// producing through the failover, restarts the node on its data dir and
// requires it back in the ISR; every acknowledged record must survive.
func TestClusterKillLeaderDuringProduce(t *testing.T) {
	rng := seeded(t)
	c := startCluster(t, 3, clusterOpts{})
	const topic, partitions = "kill-leader", 3
	c.createTopic(t, topic, partitions)
	p := startProducer(t, c, 1, topic, partitions, 2*time.Millisecond)
	p.waitProgress(t, 200, 30*time.Second, "first acknowledgements")

	rounds := short(2, 10)
	for round := range rounds {
		part := int32(rng.IntN(partitions))
		v := c.waitLeader(t, topic, part, 30*time.Second)
		victim := c.node(v.leader)
		t.Logf("round %d: killing node %d, leader of %s/%d (%v)", round, victim.id, topic, part, v)
		victim.Kill()

		nv := c.waitLeader(t, topic, part, 30*time.Second, victim.id)
		t.Logf("round %d: new leader of %s/%d: %v", round, topic, part, nv)
		p.waitProgress(t, 100, 30*time.Second, "acks=all produces with one node down")

		time.Sleep(time.Duration(500+rng.IntN(2000)) * time.Millisecond)
		victim.Restart()
		for q := range int32(partitions) {
			took := c.waitISR(t, c.ids(victim.id)[0], topic, q, victim.id, true, 45*time.Second)
			t.Logf("round %d: node %d back in the ISR of %s/%d after %v", round, victim.id, topic, q, took.Round(time.Millisecond))
		}
		p.waitProgress(t, 100, 30*time.Second, "acks=all produces after the restart")
	}
	p.stop(t)
	t.Log(p.summary())
	c.checkHistory(t, topic, partitions, p.history())
}
