package cluster

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestClusterRestartReplacesCrashedIncarnation kills the leader of a
// partition with SIGKILL while an acks=all producer runs and restarts it
// at once, long before its broker session could expire (60 s here): the
// restarted node must register without waiting for it, its partitions
// must get new leaders (new leader epochs) while it comes back as a
// follower, it must rejoin every ISR, and every acknowledged record must
// survive.
func TestClusterRestartReplacesCrashedIncarnation(t *testing.T) {
	c := startCluster(t, 3, clusterOpts{sets: []string{"broker.session.timeout.ms=60000"}})
	const topic, partitions = "restart-fast", 3
	c.createTopic(t, topic, partitions)
	p := startProducer(t, c, 1, topic, partitions, 2*time.Millisecond)
	p.waitProgress(t, 200, 30*time.Second, "first acknowledgements")

	before := c.waitLeader(t, topic, 0, 30*time.Second)
	victim := c.node(before.leader)
	t.Logf("killing node %d, leader of %s/0 (%v)", victim.id, topic, before)
	victim.Kill()
	victim.Restart()

	// Bounded well below the 60 s session: only the replacement of the
	// crashed registration lets the node back this soon.
	for q := range int32(partitions) {
		took := c.waitISR(t, c.ids(victim.id)[0], topic, q, victim.id, true, 30*time.Second)
		t.Logf("node %d back in the ISR of %s/%d after %v", victim.id, topic, q, took.Round(time.Millisecond))
	}
	after, err := c.viewFromAny(t, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	if after.leaderEpoch <= before.leaderEpoch {
		t.Errorf("%s/0 led by %v after the restart, %v before: the crashed leader's epoch was not fenced", topic, after, before)
	}
	p.waitProgress(t, 100, 30*time.Second, "acks=all produces after the restart")
	p.stop(t)
	t.Log(p.summary())
	c.checkHistory(t, topic, partitions, p.history())
	logs, err := os.ReadFile(victim.logPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(logs), "waiting for the previous run's broker session to expire") {
		t.Error("the restarted node waited for its crashed run's session to expire")
	}
}
