package controller

import (
	"slices"
	"testing"

	"github.com/sluicelog/sluice/internal/metadata"
)

func TestControllerRegisterBroker(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	first := cl.register(1, "a", 1)
	requireErr(t, first.Err, nil)
	b, _ := cl.img.Broker(1)
	if !b.Fenced || b.Epoch != first.BrokerEpoch || b.Rack != "a" {
		t.Fatalf("registered broker %+v", b)
	}
	// A retried registration of the same incarnation changes nothing.
	recs, again := cl.c.RegisterBroker(cl.img, RegisterBrokerRequest{BrokerID: 1, Incarnation: b.Incarnation}, cl.nowMs)
	if len(recs) != 0 || again.Err != nil || again.BrokerEpoch != first.BrokerEpoch {
		t.Errorf("idempotent registration: %d records, %+v", len(recs), again)
	}
	cl.heartbeat(1, false)
	// A new incarnation while the old session lives is refused...
	requireErr(t, cl.register(1, "a", 2).Err, ErrDuplicateBrokerRegistration)
	// ...and accepted once it expired, with a larger epoch.
	cl.nowMs += 9001
	recs, fenced := cl.c.FenceExpiredBrokers(cl.img, cl.nowMs)
	cl.apply(recs)
	if !slices.Equal(fenced, []int32{1}) {
		t.Fatalf("fenced %v", fenced)
	}
	second := cl.register(1, "b", 2)
	requireErr(t, second.Err, nil)
	if second.BrokerEpoch <= first.BrokerEpoch {
		t.Errorf("epoch %d after %d", second.BrokerEpoch, first.BrokerEpoch)
	}
	// The old incarnation's epoch is now stale.
	_, resp := cl.c.BrokerHeartbeat(cl.img, BrokerHeartbeatRequest{BrokerID: 1, BrokerEpoch: first.BrokerEpoch}, cl.nowMs)
	requireErr(t, resp.Err, ErrStaleBrokerEpoch)
	_, resp = cl.c.BrokerHeartbeat(cl.img, BrokerHeartbeatRequest{BrokerID: 7}, cl.nowMs)
	requireErr(t, resp.Err, ErrUnknownBroker)
	_, reg := cl.c.RegisterBroker(cl.img, RegisterBrokerRequest{BrokerID: -1, Incarnation: metadata.UUID{1}}, cl.nowMs)
	requireErr(t, reg.Err, ErrInvalidRequest)
	_, reg = cl.c.RegisterBroker(cl.img, RegisterBrokerRequest{BrokerID: 3}, cl.nowMs)
	requireErr(t, reg.Err, ErrInvalidRequest)
}

// TestControllerHeartbeatUnfencesWhenCaughtUp checks a broker stays fenced
// until it has replayed its own registration and stops asking to be fenced.
func TestControllerHeartbeatUnfencesWhenCaughtUp(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	reg := cl.register(1, "", 1)
	hb := func(offset int64, wantFence bool) BrokerHeartbeatResponse {
		recs, resp := cl.c.BrokerHeartbeat(cl.img, BrokerHeartbeatRequest{
			BrokerID: 1, BrokerEpoch: reg.BrokerEpoch, CurrentMetadataOffset: offset, WantFence: wantFence,
		}, cl.nowMs)
		requireErr(t, resp.Err, nil)
		cl.apply(recs)
		return resp
	}
	if r := hb(reg.BrokerEpoch-1, false); r.IsCaughtUp || !r.IsFenced {
		t.Errorf("behind its registration: %+v", r)
	}
	if r := hb(reg.BrokerEpoch, true); !r.IsCaughtUp || !r.IsFenced {
		t.Errorf("wants fence: %+v", r)
	}
	if r := hb(reg.BrokerEpoch, false); !r.IsCaughtUp || r.IsFenced {
		t.Errorf("caught up: %+v", r)
	}
	if b, _ := cl.img.Broker(1); b.Fenced {
		t.Error("still fenced in the image")
	}
	if r := hb(cl.img.Offset(), true); !r.IsFenced {
		t.Errorf("asked to be fenced again: %+v", r)
	}
	if b, _ := cl.img.Broker(1); !b.Fenced {
		t.Error("not fenced in the image")
	}
}

// TestControllerFencingMovesLeadership misses leases one broker at a time:
// leadership moves within the ISR, the ISR shrinks but keeps its last
// member, the partition goes leaderless rather than elect outside the ISR,
// and the last member coming back restores it.
func TestControllerFencingMovesLeadership(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	cl.addBrokers("1", "2", "3")
	cl.createTopic("t", 1, 3) // replicas [1 2 3]
	beat := func(ids ...int32) {
		for _, id := range ids {
			cl.heartbeat(id, false)
		}
	}
	expire := func(want ...int32) {
		t.Helper()
		recs, fenced := cl.c.FenceExpiredBrokers(cl.img, cl.nowMs)
		if !slices.Equal(fenced, want) {
			t.Fatalf("at %d fenced %v, want %v", cl.nowMs, fenced, want)
		}
		cl.apply(recs)
	}
	check := func(leader int32, isr ...int32) {
		t.Helper()
		p := cl.partition("t", 0)
		if p.Leader != leader || !slices.Equal(p.ISR, isr) {
			t.Fatalf("partition leader %d isr %v, want %d %v", p.Leader, p.ISR, leader, isr)
		}
	}
	check(1, 1, 2, 3)
	cl.nowMs += 5000
	beat(2, 3)
	expire() // broker 1 heartbeated at 0: 5000 ms is within the 9000 ms lease
	cl.nowMs += 4001
	expire(1)
	check(2, 2, 3)
	beat(3)
	cl.nowMs += 9001
	beat(3)
	expire(2)
	check(3, 3)
	cl.nowMs += 9001
	expire(3)
	check(metadata.NoLeader, 3) // the last ISR member stays in the ISR
	// Broker 1 comes back: it is a replica but not in the ISR, so with
	// unclean election off the partition stays leaderless.
	cl.heartbeat(1, false)
	check(metadata.NoLeader, 3)
	cl.heartbeat(3, false)
	check(3, 3)
}

// TestControllerFencingSimultaneous fences every ISR member in one
// decision: the ISR keeps only the old leader, which has every committed
// record.
func TestControllerFencingSimultaneous(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	cl.addBrokers("1", "2", "3")
	cl.createTopic("t", 3, 2)
	cl.nowMs += 10_000
	recs, fenced := cl.c.FenceExpiredBrokers(cl.img, cl.nowMs)
	if len(fenced) != 3 {
		t.Fatalf("fenced %v", fenced)
	}
	cl.apply(recs)
	topic, _ := cl.img.Topic("t")
	for i, p := range topic.Partitions {
		if p.Leader != metadata.NoLeader || !slices.Equal(p.ISR, p.Replicas[:1]) {
			t.Errorf("partition %d: leader %d isr %v replicas %v", i, p.Leader, p.ISR, p.Replicas)
		}
	}
}

// TestControllerFailoverGivesFreshSessions checks a new controller (no
// heartbeat history) does not fence live brokers at once.
func TestControllerFailoverGivesFreshSessions(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	cl.addBrokers("1", "2")
	cl.c = New(DefaultConfig(), &seqIDs{})
	cl.nowMs += 60_000
	if recs, fenced := cl.c.FenceExpiredBrokers(cl.img, cl.nowMs); len(recs) != 0 || len(fenced) != 0 {
		t.Fatalf("new controller fenced %v", fenced)
	}
	if next, ok := cl.c.NextExpiryMs(cl.img, cl.nowMs); !ok || next != cl.nowMs+9001 {
		t.Errorf("next expiry %d %t", next, ok)
	}
	cl.nowMs += 9001
	if _, fenced := cl.c.FenceExpiredBrokers(cl.img, cl.nowMs); len(fenced) != 2 {
		t.Errorf("after a full session without heartbeats fenced %v", fenced)
	}
}

// TestControllerUncleanElection checks a live replica outside the ISR is
// elected only when unclean election is enabled for the topic.
func TestControllerUncleanElection(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		cl := newCluster(t, DefaultConfig())
		cl.addBrokers("1", "2")
		var configs []ConfigEntry
		if enabled {
			configs = append(configs, ConfigEntry{"unclean.leader.election.enable", "true"})
		}
		cl.createTopic("t", 1, 2, configs...) // replicas [1 2]
		// Broker 2 leaves the ISR (leader 1 shrinks it), then 1 dies.
		p := cl.partition("t", 0)
		id := cl.partitionTopicID("t")
		recs, resp := cl.c.AlterPartition(cl.img, AlterPartitionRequest{BrokerID: 1, BrokerEpoch: cl.epoch[1],
			Partitions: []AlterPartitionItem{{TopicID: id, Partition: 0, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: []int32{1}}}})
		requireErr(t, resp.Partitions[0].Err, nil)
		cl.apply(recs)
		cl.nowMs += 5000
		cl.heartbeat(2, false)
		cl.nowMs += 5000
		recs, _ = cl.c.FenceExpiredBrokers(cl.img, cl.nowMs)
		cl.apply(recs)
		p = cl.partition("t", 0)
		if enabled && (p.Leader != 2 || !slices.Equal(p.ISR, []int32{2})) {
			t.Errorf("unclean enabled: leader %d isr %v", p.Leader, p.ISR)
		}
		if !enabled && (p.Leader != metadata.NoLeader || !slices.Equal(p.ISR, []int32{1})) {
			t.Errorf("unclean disabled: leader %d isr %v", p.Leader, p.ISR)
		}
	}
}

// TestControllerUncleanEnabledLater checks turning unclean election on
// elects leaderless partitions at once.
func TestControllerUncleanEnabledLater(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	cl.addBrokers("1", "2")
	recs, _ := cl.c.CreateTopics(cl.img, CreateTopicsRequest{Topics: []CreatableTopic{{
		Name: "t", NumPartitions: -1, ReplicationFactor: -1, Assignments: []ReplicaAssignment{{0, []int32{1, 2}}},
	}}})
	cl.apply(recs)
	cl.heartbeat(2, true) // 2 fenced: leaves the ISR
	cl.heartbeat(2, false)
	cl.heartbeat(1, true) // 1 fenced: the last ISR member, so leaderless
	if p := cl.partition("t", 0); p.Leader != metadata.NoLeader {
		t.Fatalf("leader %d", p.Leader)
	}
	recs, resp := cl.c.IncrementalAlterConfigs(cl.img, IncrementalAlterConfigsRequest{Resources: []IncrementalAlterConfigsResource{{
		ConfigResource: ConfigResource{metadata.ConfigResourceBroker, ""},
		Ops:            []ConfigOp{{Name: "unclean.leader.election.enable", Op: OpSet, Value: "true"}},
	}}})
	requireErr(t, resp.Resources[0].Err, nil)
	cl.apply(recs)
	if p := cl.partition("t", 0); p.Leader != 2 || !slices.Equal(p.ISR, []int32{2}) {
		t.Errorf("after enabling unclean: leader %d isr %v", p.Leader, p.ISR)
	}
}

// TestControllerControlledShutdown checks WantShutDown moves leadership
// away in the same batch and tells the broker it may stop.
func TestControllerControlledShutdown(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	cl.addBrokers("1", "2")
	cl.createTopic("t", 4, 2)
	recs, resp := cl.c.BrokerHeartbeat(cl.img, BrokerHeartbeatRequest{
		BrokerID: 1, BrokerEpoch: cl.epoch[1], CurrentMetadataOffset: cl.img.Offset(), WantShutDown: true,
	}, cl.nowMs)
	if !resp.ShouldShutDown || !resp.IsFenced {
		t.Errorf("response %+v", resp)
	}
	cl.apply(recs)
	topic, _ := cl.img.Topic("t")
	for i, p := range topic.Partitions {
		if p.Leader != 2 || !slices.Equal(p.ISR, []int32{2}) {
			t.Errorf("partition %d: leader %d isr %v", i, p.Leader, p.ISR)
		}
	}
}

// TestControllerReregistrationMovesLeadership checks a broker restarting
// after its session expired, but before FenceExpiredBrokers ran, loses its
// leaderships in the same batch as its new (fenced) registration.
func TestControllerReregistrationMovesLeadership(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	cl.addBrokers("1", "2")
	cl.createTopic("t", 2, 2)
	cl.nowMs += 9001
	cl.heartbeat(2, false)
	// The controller has not yet run FenceExpiredBrokers: broker 1 is still
	// unfenced in the image but its session is over.
	resp := cl.register(1, "", 2)
	requireErr(t, resp.Err, nil)
	topic, _ := cl.img.Topic("t")
	for i, p := range topic.Partitions {
		if p.Leader != 2 || slices.Contains(p.ISR, 1) {
			t.Errorf("partition %d: leader %d isr %v", i, p.Leader, p.ISR)
		}
	}
	if b, _ := cl.img.Broker(1); !b.Fenced || b.Epoch != resp.BrokerEpoch {
		t.Errorf("broker %+v", b)
	}
}

func TestControllerAllocateProducerIDs(t *testing.T) {
	cl := newCluster(t, Config{ProducerIDBlockSize: 10})
	cl.addBrokers("1", "2")
	var starts []int64
	for _, id := range []int32{1, 2, 1} {
		recs, resp := cl.c.AllocateProducerIDs(cl.img, id, cl.epoch[id])
		requireErr(t, resp.Err, nil)
		if resp.ProducerIDLen != 10 {
			t.Errorf("len %d", resp.ProducerIDLen)
		}
		cl.apply(recs)
		starts = append(starts, resp.ProducerIDStart)
	}
	if !slices.Equal(starts, []int64{0, 10, 20}) || cl.img.NextProducerID() != 30 {
		t.Errorf("starts %v next %d", starts, cl.img.NextProducerID())
	}
	_, resp := cl.c.AllocateProducerIDs(cl.img, 1, cl.epoch[1]+1)
	requireErr(t, resp.Err, ErrStaleBrokerEpoch)
	_, resp = cl.c.AllocateProducerIDs(cl.img, 5, 0)
	requireErr(t, resp.Err, ErrUnknownBroker)
}
