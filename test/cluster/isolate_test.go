package cluster

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterIsolatedLeader cuts a partition's leader off from both peers
// while a client still reaches it. The cut is made by fault proxies on
// every link between nodes (test/cluster/faultproxy) rather than network
// namespaces and iptables: proxies need no root or packages, keep all
// traffic on 127.0.0.0/8, and cut one node's links without touching the
// test's own connections (its dialer goes straight to each client port).
//
// The isolated leader must acknowledge nothing with acks=all; the two
// others must elect a new leader that acknowledges; after the heal the old
// leader must truncate and rejoin the ISR, and no acknowledged record may
// be lost.
func TestClusterIsolatedLeader(t *testing.T) {
	rng := seeded(t)
	c := startCluster(t, 3, clusterOpts{proxied: true})
	const topic, partitions = "isolated-leader", 1
	c.createTopic(t, topic, partitions)
	p := startProducer(t, c, 1, topic, partitions, 2*time.Millisecond)
	p.waitProgress(t, 200, 30*time.Second, "first acknowledgements")

	var acks []Ack
	for round := range short(1, 4) {
		old := c.waitLeader(t, topic, 0, 30*time.Second)
		majority := c.ids(old.leader)
		t.Logf("round %d: isolating node %d, leader of %s/0 (%v)", round, old.leader, topic, old)
		c.isolate(old.leader)

		// Pinned to the isolated node, with a producer id of its own,
		// while the majority elects a new leader.
		stale := make(chan []Ack, 1)
		go func() { stale <- pinnedProduce(t, c, old.leader, 100+round, topic, 12*time.Second) }()
		nv := c.waitLeader(t, topic, 0, 30*time.Second, old.leader)
		t.Logf("round %d: the majority elected %v", round, nv)
		fresh := pinnedProduce(t, c, nv.leader, 200+round, topic, 20*time.Second)
		if len(fresh) == 0 {
			t.Fatalf("round %d: new leader %d acknowledged nothing", round, nv.leader)
		}
		staleAfter := <-stale
		acks = append(append(acks, staleAfter...), fresh...)
		if len(staleAfter) > 0 {
			t.Errorf("round %d: isolated node %d acknowledged %d acks=all records after the cut, e.g. %+v",
				round, old.leader, len(staleAfter), staleAfter[0])
		}
		p.waitProgress(t, 100, 30*time.Second, "the producer moves to the new leader")

		time.Sleep(time.Duration(rng.IntN(2000)) * time.Millisecond)
		c.heal(old.leader)
		took := c.waitISR(t, majority[0], topic, 0, old.leader, true, 45*time.Second)
		t.Logf("round %d: node %d truncated and rejoined the ISR %v after the heal", round, old.leader, took.Round(time.Millisecond))
	}
	p.stop(t)
	t.Log(p.summary())
	c.checkHistory(t, topic, partitions, append(acks, p.history()...))
}

// pinnedProduce sends records, one at a time for bound, through a client
// that can only ever reach node id (its dialer refuses every other node),
// and returns the acknowledgements (at most 20): any success is node id's
// doing.
func pinnedProduce(t testing.TB, c *cluster, id int32, producerID int, topic string, bound time.Duration) []Ack {
	t.Helper()
	only := c.node(id).clientAddr
	dial := func(ctx context.Context, network, host string) (net.Conn, error) {
		if real, ok := c.realAddr[host]; ok {
			host = real
		}
		if host != only {
			return nil, fmt.Errorf("pinned to node %d: refusing %s", id, host)
		}
		return c.dial(ctx, network, host)
	}
	cl := c.client(t, []int32{id}, kgo.Dialer(dial), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DisableIdempotentWrite(), kgo.ProduceRequestTimeout(3*time.Second),
		kgo.RecordDeliveryTimeout(bound))
	defer cl.Close()
	var out []Ack
	deadline := time.Now().Add(bound)
	for seq := int64(0); time.Now().Before(deadline); seq++ {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		r := &kgo.Record{Partition: 0, Value: []byte(Value(producerID, seq))}
		err := cl.ProduceSync(ctx, r).FirstErr()
		cancel()
		if err == nil {
			out = append(out, Ack{producerID, seq, r.Partition, r.Offset})
			if len(out) >= 20 {
				break
			}
		}
	}
	return out
}
