package controller

import (
	"math/rand"
	"slices"
	"testing"

	"github.com/sluicelog/sluice/internal/metadata"
)

func TestControllerAlterPartition(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	cl.addBrokers("1", "2", "3")
	cl.register(4, "", 1)              // fenced, and not a replica
	topic := cl.createTopic("t", 1, 3) // replicas [1 2 3], leader 1
	p := topic.Partitions[0]
	item := func(isr ...int32) AlterPartitionItem {
		return AlterPartitionItem{TopicID: topic.ID, Partition: 0, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: isr}
	}
	tests := []struct {
		name   string
		broker int32
		item   AlterPartitionItem
		want   error
	}{
		{"stale partition epoch", 1, func() AlterPartitionItem { i := item(1, 2); i.PartitionEpoch--; return i }(), ErrInvalidUpdateVersion},
		{"future partition epoch", 1, func() AlterPartitionItem { i := item(1, 2); i.PartitionEpoch++; return i }(), ErrInvalidUpdateVersion},
		{"stale leader epoch", 1, func() AlterPartitionItem { i := item(1, 2); i.LeaderEpoch--; return i }(), ErrFencedLeaderEpoch},
		{"not the leader", 2, item(1, 2), ErrFencedLeaderEpoch},
		{"no leader in isr", 1, item(2, 3), ErrInvalidRequest},
		{"not a replica", 1, item(1, 4), ErrInvalidRequest},
		{"twice", 1, item(1, 2, 2), ErrInvalidRequest},
		{"unknown topic", 1, AlterPartitionItem{TopicID: metadata.UUID{7}, NewISR: []int32{1}}, ErrUnknownTopicID},
		{"unknown partition", 1, func() AlterPartitionItem { i := item(1); i.Partition = 1; return i }(), ErrUnknownTopic},
	}
	for _, tt := range tests {
		recs, resp := cl.c.AlterPartition(cl.img, AlterPartitionRequest{BrokerID: tt.broker, BrokerEpoch: cl.epoch[tt.broker], Partitions: []AlterPartitionItem{tt.item}})
		requireErr(t, resp.Err, nil)
		if len(recs) != 0 || !errorsIs(resp.Partitions[0].Err, tt.want) {
			t.Errorf("%s: %d records, %v, want %v", tt.name, len(recs), resp.Partitions[0].Err, tt.want)
		}
	}
	_, resp := cl.c.AlterPartition(cl.img, AlterPartitionRequest{BrokerID: 1, BrokerEpoch: cl.epoch[1] + 100, Partitions: []AlterPartitionItem{item(1)}})
	requireErr(t, resp.Err, ErrStaleBrokerEpoch)

	// Shrink to [1 2]: the response predicts the replayed state.
	recs, resp := cl.c.AlterPartition(cl.img, AlterPartitionRequest{BrokerID: 1, BrokerEpoch: cl.epoch[1], Partitions: []AlterPartitionItem{item(1, 2)}})
	res := resp.Partitions[0]
	requireErr(t, res.Err, nil)
	cl.apply(recs)
	got := cl.partition("t", 0)
	if res.Leader != got.Leader || res.LeaderEpoch != got.LeaderEpoch || res.PartitionEpoch != got.PartitionEpoch || !slices.Equal(res.ISR, got.ISR) {
		t.Errorf("response %+v, image %+v", res, got)
	}
	if got.PartitionEpoch != p.PartitionEpoch+1 || got.LeaderEpoch != p.LeaderEpoch {
		t.Errorf("epochs %d/%d after %d/%d", got.LeaderEpoch, got.PartitionEpoch, p.LeaderEpoch, p.PartitionEpoch)
	}
	// The same proposal again is now stale.
	_, resp = cl.c.AlterPartition(cl.img, AlterPartitionRequest{BrokerID: 1, BrokerEpoch: cl.epoch[1], Partitions: []AlterPartitionItem{item(1, 2)}})
	requireErr(t, resp.Partitions[0].Err, ErrInvalidUpdateVersion)

	// Broker 3 is fenced: the leader may not add it back.
	cl.heartbeat(3, true)
	p = cl.partition("t", 0)
	_, resp = cl.c.AlterPartition(cl.img, AlterPartitionRequest{BrokerID: 1, BrokerEpoch: cl.epoch[1], Partitions: []AlterPartitionItem{item(1, 2, 3)}})
	requireErr(t, resp.Partitions[0].Err, ErrIneligibleReplica)

	// An unchanged ISR emits nothing and reports the current state.
	recs, resp = cl.c.AlterPartition(cl.img, AlterPartitionRequest{BrokerID: 1, BrokerEpoch: cl.epoch[1], Partitions: []AlterPartitionItem{item(1, 2)}})
	if len(recs) != 0 || resp.Partitions[0].Err != nil || resp.Partitions[0].PartitionEpoch != p.PartitionEpoch {
		t.Errorf("no-op: %d records, %+v", len(recs), resp.Partitions[0])
	}
	// A partition named twice fails both times.
	_, resp = cl.c.AlterPartition(cl.img, AlterPartitionRequest{BrokerID: 1, BrokerEpoch: cl.epoch[1], Partitions: []AlterPartitionItem{item(1), item(1, 2)}})
	requireErr(t, resp.Partitions[0].Err, ErrInvalidRequest)
	requireErr(t, resp.Partitions[1].Err, ErrInvalidRequest)
}

func TestControllerElectLeaders(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	cl.addBrokers("1", "2", "3")
	cl.createTopic("t", 3, 2)
	// Fence and unfence broker 1: it loses leadership and its ISR places,
	// then the leaders re-add it (AlterPartition), so it is preferred,
	// in the ISR and not leading.
	cl.heartbeat(1, true)
	cl.heartbeat(1, false)
	topic, _ := cl.img.Topic("t")
	for i, p := range topic.Partitions {
		if slices.Contains(p.Replicas, 1) && !slices.Contains(p.ISR, 1) {
			recs, resp := cl.c.AlterPartition(cl.img, AlterPartitionRequest{BrokerID: p.Leader, BrokerEpoch: cl.epoch[p.Leader],
				Partitions: []AlterPartitionItem{{TopicID: topic.ID, Partition: int32(i), LeaderEpoch: p.LeaderEpoch,
					PartitionEpoch: p.PartitionEpoch, NewISR: append(slices.Clone(p.ISR), 1)}}})
			requireErr(t, resp.Partitions[0].Err, nil)
			cl.apply(recs)
		}
	}
	topic, _ = cl.img.Topic("t")
	var wantElected []int32
	for i, p := range topic.Partitions {
		if p.Replicas[0] == 1 {
			wantElected = append(wantElected, int32(i))
		}
	}
	if len(wantElected) == 0 {
		t.Fatal("no partition prefers broker 1")
	}
	recs, resp := cl.c.ElectLeaders(cl.img, ElectLeadersRequest{Type: ElectPreferred})
	var elected []int32
	for _, r := range resp.Results {
		requireErr(t, r.Err, nil)
		elected = append(elected, r.Partition)
	}
	if !slices.Equal(elected, wantElected) {
		t.Errorf("elected %v, want %v (all-partitions results omit elections not needed)", elected, wantElected)
	}
	cl.apply(recs)
	topic, _ = cl.img.Topic("t")
	for i, p := range topic.Partitions {
		if p.Leader != p.Replicas[0] {
			t.Errorf("partition %d led by %d, preferred %d", i, p.Leader, p.Replicas[0])
		}
	}
	// Named partitions report every outcome.
	_, resp = cl.c.ElectLeaders(cl.img, ElectLeadersRequest{Type: ElectPreferred, Partitions: []TopicPartitions{
		{"t", []int32{0, 0, 7}}, {"nope", []int32{0}},
	}})
	if len(resp.Results) != 3 {
		t.Fatalf("results %+v", resp.Results)
	}
	requireErr(t, resp.Results[0].Err, ErrElectionNotNeeded)
	requireErr(t, resp.Results[1].Err, ErrUnknownTopic)
	requireErr(t, resp.Results[2].Err, ErrUnknownTopic)
}

func TestControllerElectPreferredNotAvailable(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	cl.addBrokers("1", "2")
	recs, _ := cl.c.CreateTopics(cl.img, CreateTopicsRequest{Topics: []CreatableTopic{{
		Name: "t", NumPartitions: -1, ReplicationFactor: -1, Assignments: []ReplicaAssignment{{0, []int32{1, 2}}},
	}}})
	cl.apply(recs)
	cl.heartbeat(1, true) // fenced: leadership moves to 2
	req := ElectLeadersRequest{Type: ElectPreferred, Partitions: []TopicPartitions{{"t", []int32{0}}}}
	recs, resp := cl.c.ElectLeaders(cl.img, req)
	requireErr(t, resp.Results[0].Err, ErrPreferredLeaderNotAvailable)
	cl.heartbeat(1, false) // alive, but out of the ISR: still not available
	recs, resp = cl.c.ElectLeaders(cl.img, req)
	requireErr(t, resp.Results[0].Err, ErrPreferredLeaderNotAvailable)
	if len(recs) != 0 {
		t.Errorf("%d records", len(recs))
	}
}

// TestControllerElectUnclean checks an explicit unclean election elects a
// live replica outside the ISR even though the topic config forbids it.
func TestControllerElectUnclean(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	cl.addBrokers("1", "2")
	recs, _ := cl.c.CreateTopics(cl.img, CreateTopicsRequest{Topics: []CreatableTopic{{
		Name: "t", NumPartitions: -1, ReplicationFactor: -1, Assignments: []ReplicaAssignment{{0, []int32{1, 2}}},
	}}})
	cl.apply(recs)
	req := ElectLeadersRequest{Type: ElectUnclean, Partitions: []TopicPartitions{{"t", []int32{0}}}}
	_, resp := cl.c.ElectLeaders(cl.img, req)
	requireErr(t, resp.Results[0].Err, ErrElectionNotNeeded)
	cl.heartbeat(2, true)
	cl.heartbeat(2, false)
	cl.heartbeat(1, true) // ISR [1], leaderless
	if p := cl.partition("t", 0); p.Leader != metadata.NoLeader {
		t.Fatalf("leader %d", p.Leader)
	}
	recs, resp = cl.c.ElectLeaders(cl.img, req)
	requireErr(t, resp.Results[0].Err, nil)
	cl.apply(recs)
	if p := cl.partition("t", 0); p.Leader != 2 || !slices.Equal(p.ISR, []int32{2}) {
		t.Errorf("after unclean election: %+v", p)
	}
	cl.heartbeat(2, true) // no live replica at all
	cl.heartbeat(1, false)
	cl.heartbeat(1, true)
	_, resp = cl.c.ElectLeaders(cl.img, req)
	requireErr(t, resp.Results[0].Err, ErrEligibleLeadersNotAvailable)
}

// TestControllerEpochsOnlyGrow drives random fencing, unfencing, ISR
// changes and elections through the controller, replaying everything, and
// checks after every step that no epoch went back, that leaders come only
// from the ISR of live brokers, and that the ISR never empties.
func TestControllerEpochsOnlyGrow(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewSource(seed))
		cl := newCluster(t, DefaultConfig())
		cl.addBrokers("1", "2", "3", "4")
		cl.createTopic("a", 8, 3)
		cl.createTopic("b", 4, 2)
		last := snapshotEpochs(cl.img)
		for step := 0; step < 300; step++ {
			randomStep(t, cl, rng)
			now := snapshotEpochs(cl.img)
			for key, e := range now {
				if old := last[key]; e[0] < old[0] || e[1] < old[1] {
					t.Fatalf("seed %d step %d: %v epochs %v after %v", seed, step, key, e, old)
				}
			}
			last = now
			checkInvariants(t, cl, seed, step)
		}
	}
}

func snapshotEpochs(img *metadata.Image) map[TopicPartition][2]int32 {
	m := map[TopicPartition][2]int32{}
	for _, t := range img.Topics() {
		for i, p := range t.Partitions {
			m[TopicPartition{t.Name, int32(i)}] = [2]int32{p.LeaderEpoch, p.PartitionEpoch}
		}
	}
	return m
}

// randomStep applies one random decision.
func randomStep(t *testing.T, cl *cluster, rng *rand.Rand) {
	id := int32(1 + rng.Intn(4))
	switch rng.Intn(5) {
	case 0, 1:
		cl.heartbeat(id, rng.Intn(2) == 0)
	case 2: // a leader grows or shrinks an ISR
		topic := cl.img.Topics()[rng.Intn(2)]
		pid := rng.Intn(len(topic.Partitions))
		p := topic.Partitions[pid]
		if p.Leader == metadata.NoLeader {
			return
		}
		isr := []int32{p.Leader}
		for _, r := range p.Replicas {
			if b, _ := cl.img.Broker(r); r != p.Leader && !b.Fenced && rng.Intn(2) == 0 {
				isr = append(isr, r)
			}
		}
		recs, resp := cl.c.AlterPartition(cl.img, AlterPartitionRequest{BrokerID: p.Leader, BrokerEpoch: cl.epoch[p.Leader],
			Partitions: []AlterPartitionItem{{TopicID: topic.ID, Partition: int32(pid), LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: isr}}})
		requireErr(t, resp.Partitions[0].Err, nil)
		cl.apply(recs)
	case 3:
		recs, _ := cl.c.ElectLeaders(cl.img, ElectLeadersRequest{Type: ElectionType(rng.Intn(2))})
		cl.apply(recs)
	case 4:
		cl.nowMs += int64(rng.Intn(6000))
		recs, _ := cl.c.FenceExpiredBrokers(cl.img, cl.nowMs)
		cl.apply(recs)
	}
}

// checkInvariants checks every partition: a leader is live and in the ISR;
// the ISR is never empty; without a leader, the ISR is one member.
func checkInvariants(t *testing.T, cl *cluster, seed int64, step int) {
	for _, topic := range cl.img.Topics() {
		for i, p := range topic.Partitions {
			if len(p.ISR) == 0 {
				t.Fatalf("seed %d step %d: %s-%d empty ISR", seed, step, topic.Name, i)
			}
			if p.Leader == metadata.NoLeader {
				continue
			}
			b, _ := cl.img.Broker(p.Leader)
			if b.Fenced || !slices.Contains(p.ISR, p.Leader) {
				t.Fatalf("seed %d step %d: %s-%d leader %d fenced=%t isr %v", seed, step, topic.Name, i, p.Leader, b.Fenced, p.ISR)
			}
			for _, r := range p.ISR {
				if b, _ := cl.img.Broker(r); b.Fenced && len(p.ISR) > 1 {
					t.Fatalf("seed %d step %d: %s-%d fenced %d in ISR %v with leader %d", seed, step, topic.Name, i, r, p.ISR, p.Leader)
				}
			}
		}
	}
}
