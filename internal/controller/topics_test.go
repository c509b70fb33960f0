package controller

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/metadata"
)

// TestControllerPlacementSpread checks leaders and replicas are spread
// within one of even over 3 brokers, for every replication factor, many
// partition counts, and placements starting anywhere in the cluster.
func TestControllerPlacementSpread(t *testing.T) {
	brokers := []int32{1, 2, 3}
	for rf := 1; rf <= 3; rf++ {
		for start := 0; start < 7; start++ {
			for partitions := 1; partitions <= 40; partitions++ {
				cl := newCluster(t, DefaultConfig())
				cl.addBrokers("1", "2", "3")
				for i := 0; i < start; i++ { // shifts the starting slot
					cl.createTopic(fmt.Sprintf("pad%d", i), 1, 1)
				}
				topic := cl.createTopic("t", int32(partitions), int16(rf))
				var leaders, replicas []int32
				for _, p := range topic.Partitions {
					leaders = append(leaders, p.Leader)
					replicas = append(replicas, p.Replicas...)
					if p.Leader != p.Replicas[0] || !slices.Equal(p.ISR, p.Replicas) || len(p.Replicas) != rf {
						t.Fatalf("rf %d: partition %+v", rf, p)
					}
				}
				if s := spread(countBy(leaders), brokers); s > 1 {
					t.Errorf("rf %d start %d partitions %d: leaders %v spread %d", rf, start, partitions, countBy(leaders), s)
				}
				if s := spread(countBy(replicas), brokers); s > 1 {
					t.Errorf("rf %d start %d partitions %d: replicas %v spread %d", rf, start, partitions, countBy(replicas), s)
				}
			}
		}
	}
}

// TestControllerPlacementAcrossTopics checks that many one-partition topics
// still spread their leaders: the placement continues round-robin from
// the cluster's partition count instead of restarting at broker 1.
func TestControllerPlacementAcrossTopics(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	cl.addBrokers("1", "2", "3")
	var leaders []int32
	for i := 0; i < 30; i++ {
		leaders = append(leaders, cl.createTopic(fmt.Sprintf("t%02d", i), 1, 2).Partitions[0].Leader)
	}
	if s := spread(countBy(leaders), []int32{1, 2, 3}); s != 0 {
		t.Errorf("leaders of 30 single-partition topics: %v", countBy(leaders))
	}
}

// TestControllerPlacementRacks checks every partition spans as many racks
// as it can, and that leaders still spread.
func TestControllerPlacementRacks(t *testing.T) {
	tests := []struct {
		brokers []string
		rf      int16
		racks   int // racks each partition must span
	}{
		{[]string{"1:a", "2:a", "3:b", "4:b", "5:c", "6:c"}, 3, 3},
		{[]string{"1:a", "2:a", "3:b", "4:b", "5:c", "6:c"}, 2, 2},
		{[]string{"1:a", "2:a", "3:a", "4:b", "5:b", "6:b"}, 3, 2},
		{[]string{"1:a", "2:a", "3:b", "4:b"}, 2, 2},
		{[]string{"1:a", "2:b", "3:c", "4:a", "5:b", "6:c", "7:a"}, 3, 3},
		{[]string{"1:a", "2", "3:b"}, 3, 3}, // no rack counts as a rack of its own
	}
	for _, tt := range tests {
		cl := newCluster(t, DefaultConfig())
		cl.addBrokers(tt.brokers...)
		rack := map[int32]string{}
		var ids []int32
		for _, b := range cl.img.Brokers() {
			rack[b.ID] = b.Rack
			ids = append(ids, b.ID)
		}
		topic := cl.createTopic("t", 60, tt.rf)
		var leaders []int32
		for i, p := range topic.Partitions {
			racks := map[string]bool{}
			for _, r := range p.Replicas {
				racks[rack[r]] = true
			}
			if len(racks) != tt.racks {
				t.Errorf("%v rf %d: partition %d replicas %v span racks %v", tt.brokers, tt.rf, i, p.Replicas, racks)
			}
			leaders = append(leaders, p.Leader)
		}
		if s := spread(countBy(leaders), ids); s > 1 {
			t.Errorf("%v rf %d: leaders %v", tt.brokers, tt.rf, countBy(leaders))
		}
	}
}

// TestControllerPlacementOnlyUnfenced checks placement counts only
// unfenced brokers: with one of three racks' brokers fenced, replicas use
// the other racks, and a replication factor above the unfenced brokers
// fails for new topics and for partitions added to an existing one (Kafka
// answers INVALID_REPLICATION_FACTOR for both).
func TestControllerPlacementOnlyUnfenced(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	cl.addBrokers("1:a", "2:b", "3:c", "4:a")
	cl.createTopic("wide", 1, 4)
	cl.heartbeat(3, true)

	// Unfenced: 1 and 4 in rack a, 2 in rack b. Two replicas must span
	// both racks, so every partition holds broker 2.
	topic := cl.createTopic("t", 12, 2)
	for i, p := range topic.Partitions {
		if slices.Contains(p.Replicas, 3) || !slices.Contains(p.Replicas, 2) {
			t.Errorf("partition %d: replicas %v, want broker 2 and not fenced broker 3", i, p.Replicas)
		}
	}

	recs, resp := cl.c.CreateTopics(cl.img, CreateTopicsRequest{Topics: []CreatableTopic{{Name: "n", NumPartitions: 1, ReplicationFactor: 4}}})
	requireErr(t, resp.Topics[0].Err, ErrNotEnoughBrokers)
	requireErr(t, resp.Topics[0].Err, ErrInvalidReplicationFactor)
	if len(recs) != 0 {
		t.Errorf("failed create emitted %d records", len(recs))
	}
	recs, presp := cl.c.CreatePartitions(cl.img, CreatePartitionsRequest{Topics: []CreatePartitionsTopic{{Name: "wide", Count: 2}}})
	requireErr(t, presp.Topics[0].Err, ErrNotEnoughBrokers)
	requireErr(t, presp.Topics[0].Err, ErrInvalidReplicationFactor)
	if len(recs) != 0 {
		t.Errorf("failed create-partitions emitted %d records", len(recs))
	}
}

// TestControllerCreateTopicsValidation sends each bad topic next to a good
// one: the bad one must fail with its error and emit no record, the good
// one must be created, as Kafka answers per topic.
//
// long: a table, one line per bad input.
func TestControllerCreateTopicsValidation(t *testing.T) {
	long := strings.Repeat("x", 250)
	tests := []struct {
		name  string
		topic CreatableTopic
		want  error
	}{
		{"empty name", CreatableTopic{Name: "", NumPartitions: 1, ReplicationFactor: 1}, ErrInvalidTopicName},
		{"dot", CreatableTopic{Name: ".", NumPartitions: 1, ReplicationFactor: 1}, ErrInvalidTopicName},
		{"dot dot", CreatableTopic{Name: "..", NumPartitions: 1, ReplicationFactor: 1}, ErrInvalidTopicName},
		{"250 chars", CreatableTopic{Name: long, NumPartitions: 1, ReplicationFactor: 1}, ErrInvalidTopicName},
		{"space", CreatableTopic{Name: "a b", NumPartitions: 1, ReplicationFactor: 1}, ErrInvalidTopicName},
		{"slash", CreatableTopic{Name: "a/b", NumPartitions: 1, ReplicationFactor: 1}, ErrInvalidTopicName},
		{"unicode", CreatableTopic{Name: "tópico", NumPartitions: 1, ReplicationFactor: 1}, ErrInvalidTopicName},
		{"exists", CreatableTopic{Name: "existing", NumPartitions: 1, ReplicationFactor: 1}, ErrTopicExists},
		{"collides", CreatableTopic{Name: "with_dot", NumPartitions: 1, ReplicationFactor: 1}, ErrInvalidTopicName},
		{"zero partitions", CreatableTopic{Name: "n", NumPartitions: 0, ReplicationFactor: 1}, ErrInvalidPartitions},
		{"-2 partitions", CreatableTopic{Name: "n", NumPartitions: -2, ReplicationFactor: 1}, ErrInvalidPartitions},
		{"zero rf", CreatableTopic{Name: "n", NumPartitions: 1, ReplicationFactor: 0}, ErrInvalidReplicationFactor},
		{"-2 rf", CreatableTopic{Name: "n", NumPartitions: 1, ReplicationFactor: -2}, ErrInvalidReplicationFactor},
		{"rf above brokers", CreatableTopic{Name: "n", NumPartitions: 1, ReplicationFactor: 4}, ErrNotEnoughBrokers},
		{"too many partitions", CreatableTopic{Name: "n", NumPartitions: 10_001, ReplicationFactor: 1}, ErrTooManyPartitions},
		{"unknown config", CreatableTopic{Name: "n", NumPartitions: 1, ReplicationFactor: 1,
			Configs: []ConfigEntry{{"retention.msec", "1"}}}, ErrInvalidConfig},
		{"bad config value", CreatableTopic{Name: "n", NumPartitions: 1, ReplicationFactor: 1,
			Configs: []ConfigEntry{{"cleanup.policy", "shred"}}}, ErrInvalidConfig},
		{"config twice", CreatableTopic{Name: "n", NumPartitions: 1, ReplicationFactor: 1,
			Configs: []ConfigEntry{{"retention.ms", "1"}, {"retention.ms", "2"}}}, ErrInvalidConfig},
		{"compaction lags crossed", CreatableTopic{Name: "n", NumPartitions: 1, ReplicationFactor: 1,
			Configs: []ConfigEntry{{"min.compaction.lag.ms", "10"}, {"max.compaction.lag.ms", "5"}}}, ErrInvalidConfig},
		{"assignment with counts", CreatableTopic{Name: "n", NumPartitions: 1, ReplicationFactor: -1,
			Assignments: []ReplicaAssignment{{0, []int32{1}}}}, ErrInvalidRequest},
		{"sparse assignment", CreatableTopic{Name: "n", NumPartitions: -1, ReplicationFactor: -1,
			Assignments: []ReplicaAssignment{{0, []int32{1}}, {2, []int32{2}}}}, ErrInvalidReplicaAssignment},
		{"partition assigned twice", CreatableTopic{Name: "n", NumPartitions: -1, ReplicationFactor: -1,
			Assignments: []ReplicaAssignment{{0, []int32{1}}, {0, []int32{2}}}}, ErrInvalidReplicaAssignment},
		{"negative partition", CreatableTopic{Name: "n", NumPartitions: -1, ReplicationFactor: -1,
			Assignments: []ReplicaAssignment{{-1, []int32{1}}}}, ErrInvalidReplicaAssignment},
		{"duplicate broker", CreatableTopic{Name: "n", NumPartitions: -1, ReplicationFactor: -1,
			Assignments: []ReplicaAssignment{{0, []int32{1, 1}}}}, ErrInvalidReplicaAssignment},
		{"unknown broker", CreatableTopic{Name: "n", NumPartitions: -1, ReplicationFactor: -1,
			Assignments: []ReplicaAssignment{{0, []int32{1, 9}}}}, ErrInvalidReplicaAssignment},
		{"uneven rf", CreatableTopic{Name: "n", NumPartitions: -1, ReplicationFactor: -1,
			Assignments: []ReplicaAssignment{{0, []int32{1, 2}}, {1, []int32{3}}}}, ErrInvalidReplicaAssignment},
		{"empty replicas", CreatableTopic{Name: "n", NumPartitions: -1, ReplicationFactor: -1,
			Assignments: []ReplicaAssignment{{0, nil}}}, ErrInvalidReplicaAssignment},
		{"only fenced replicas", CreatableTopic{Name: "n", NumPartitions: -1, ReplicationFactor: -1,
			Assignments: []ReplicaAssignment{{0, []int32{4}}}}, ErrInvalidReplicaAssignment},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := newCluster(t, DefaultConfig())
			cl.addBrokers("1", "2", "3")
			cl.register(4, "", 1) // registered, still fenced
			cl.createTopic("existing", 1, 1)
			cl.createTopic("with.dot", 1, 1)
			before := cl.img
			good := CreatableTopic{Name: "good", NumPartitions: 2, ReplicationFactor: 2}
			recs, resp := cl.c.CreateTopics(cl.img, CreateTopicsRequest{Topics: []CreatableTopic{tt.topic, good}})
			requireErr(t, resp.Topics[0].Err, tt.want)
			requireErr(t, resp.Topics[1].Err, nil)
			if resp.Topics[0].TopicID != (metadata.UUID{}) {
				t.Errorf("failed topic got id %v", resp.Topics[0].TopicID)
			}
			cl.apply(recs)
			if cl.img.NumTopics() != before.NumTopics()+1 || cl.img.NumPartitions() != before.NumPartitions()+2 {
				t.Errorf("records %d: want only the good topic's", len(recs))
			}
			if _, ok := cl.img.Topic("good"); !ok {
				t.Error("good topic missing")
			}
			for _, r := range recs {
				if c, ok := r.(*metadata.Config); ok {
					t.Errorf("config record for a failed topic: %s", formatRecord(c))
				}
			}
		})
	}
}

func TestControllerCreateTopicsDuplicatesInRequest(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	cl.addBrokers("1")
	topics := []CreatableTopic{
		{Name: "dup", NumPartitions: 1, ReplicationFactor: 1},
		{Name: "a_b", NumPartitions: 1, ReplicationFactor: 1},
		{Name: "dup", NumPartitions: 1, ReplicationFactor: 1},
		{Name: "a.b", NumPartitions: 1, ReplicationFactor: 1}, // collides with a_b, created just before
	}
	recs, resp := cl.c.CreateTopics(cl.img, CreateTopicsRequest{Topics: topics})
	requireErr(t, resp.Topics[0].Err, ErrInvalidRequest)
	requireErr(t, resp.Topics[1].Err, nil)
	requireErr(t, resp.Topics[2].Err, ErrInvalidRequest)
	requireErr(t, resp.Topics[3].Err, ErrInvalidTopicName)
	cl.apply(recs)
	if cl.img.NumTopics() != 1 {
		t.Errorf("%d topics, want only a_b", cl.img.NumTopics())
	}
}

func TestControllerCreateTopicsDefaultsAndRecords(t *testing.T) {
	cl := newCluster(t, Config{NumPartitions: 3, DefaultReplicationFactor: 2})
	cl.addBrokers("1", "2", "3")
	recs, resp := cl.c.CreateTopics(cl.img, CreateTopicsRequest{Topics: []CreatableTopic{{
		Name: "d", NumPartitions: -1, ReplicationFactor: -1,
		Configs: []ConfigEntry{{"retention.ms", "1000"}, {"cleanup.policy", "compact"}},
	}}})
	res := resp.Topics[0]
	requireErr(t, res.Err, nil)
	if res.NumPartitions != 3 || res.ReplicationFactor != 2 || res.TopicID == (metadata.UUID{}) {
		t.Errorf("result %+v", res)
	}
	var kinds []string
	for _, r := range recs {
		kinds = append(kinds, strings.Fields(formatRecord(r))[0])
	}
	want := []string{"Topic", "Partition", "Partition", "Partition", "Config", "Config"}
	if !slices.Equal(kinds, want) {
		t.Errorf("records %v, want %v", kinds, want)
	}
	cl.apply(recs)
	if got := cl.img.Configs(metadata.ConfigResourceTopic, "d"); got["retention.ms"] != "1000" || got["cleanup.policy"] != "compact" {
		t.Errorf("configs %v", got)
	}
}

func TestControllerCreateTopicsValidateOnly(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	cl.addBrokers("1", "2")
	recs, resp := cl.c.CreateTopics(cl.img, CreateTopicsRequest{ValidateOnly: true, Topics: []CreatableTopic{
		{Name: "ok", NumPartitions: 4, ReplicationFactor: 2},
		{Name: "bad", NumPartitions: 4, ReplicationFactor: 3},
	}})
	if len(recs) != 0 {
		t.Errorf("validate-only emitted %d records", len(recs))
	}
	requireErr(t, resp.Topics[0].Err, nil)
	requireErr(t, resp.Topics[1].Err, ErrNotEnoughBrokers)
	if resp.Topics[0].NumPartitions != 4 || resp.Topics[0].ReplicationFactor != 2 {
		t.Errorf("validate-only result %+v", resp.Topics[0])
	}
}

// TestControllerCreateTopicsManualAssignment checks an explicit assignment
// is kept as given, with fenced replicas left out of the ISR.
func TestControllerCreateTopicsManualAssignment(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	cl.addBrokers("1", "2", "3")
	cl.register(4, "", 1) // fenced
	recs, resp := cl.c.CreateTopics(cl.img, CreateTopicsRequest{Topics: []CreatableTopic{{
		Name: "m", NumPartitions: -1, ReplicationFactor: -1,
		Assignments: []ReplicaAssignment{{1, []int32{4, 3}}, {0, []int32{2, 1}}},
	}}})
	requireErr(t, resp.Topics[0].Err, nil)
	cl.apply(recs)
	p0, p1 := cl.partition("m", 0), cl.partition("m", 1)
	if !slices.Equal(p0.Replicas, []int32{2, 1}) || p0.Leader != 2 || !slices.Equal(p0.ISR, []int32{2, 1}) {
		t.Errorf("p0 %+v", p0)
	}
	if !slices.Equal(p1.Replicas, []int32{4, 3}) || p1.Leader != 3 || !slices.Equal(p1.ISR, []int32{3}) {
		t.Errorf("p1 %+v", p1)
	}
}

func TestControllerDeleteTopics(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	cl.addBrokers("1")
	a := cl.createTopic("a", 2, 1, ConfigEntry{"retention.ms", "5"})
	b := cl.createTopic("b", 1, 1)
	cl.createTopic("c", 1, 1)
	recs, resp := cl.c.DeleteTopics(cl.img, DeleteTopicsRequest{
		Names: []string{"a", "missing", "c"},
		IDs:   []metadata.UUID{b.ID, {9}, cl.partitionTopicID("c")},
	})
	requireErr(t, resp.Topics[0].Err, nil)
	requireErr(t, resp.Topics[1].Err, ErrUnknownTopic)
	requireErr(t, resp.Topics[2].Err, ErrInvalidRequest) // c named twice
	requireErr(t, resp.Topics[3].Err, nil)
	requireErr(t, resp.Topics[4].Err, ErrUnknownTopicID)
	requireErr(t, resp.Topics[5].Err, ErrInvalidRequest)
	if resp.Topics[0].TopicID != a.ID || resp.Topics[3].Name != "b" {
		t.Errorf("results %+v", resp.Topics)
	}
	cl.apply(recs)
	if cl.img.NumTopics() != 1 || cl.img.Configs(metadata.ConfigResourceTopic, "a") != nil {
		t.Errorf("after delete: %d topics, configs of a %v", cl.img.NumTopics(), cl.img.Configs(metadata.ConfigResourceTopic, "a"))
	}
	cl.createTopic("a", 1, 1) // the name is free again
}

func (cl *cluster) partitionTopicID(name string) metadata.UUID {
	t, _ := cl.img.Topic(name)
	return t.ID
}

func TestControllerCreatePartitions(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	cl.addBrokers("1", "2", "3")
	cl.register(4, "", 1) // fenced
	cl.createTopic("t", 2, 2)
	tests := []struct {
		name string
		req  CreatePartitionsTopic
		want error
	}{
		{"unknown topic", CreatePartitionsTopic{Name: "nope", Count: 3}, ErrUnknownTopic},
		{"shrink", CreatePartitionsTopic{Name: "t", Count: 1}, ErrInvalidPartitions},
		{"same", CreatePartitionsTopic{Name: "t", Count: 2}, ErrInvalidPartitions},
		{"too many", CreatePartitionsTopic{Name: "t", Count: 20_000}, ErrTooManyPartitions},
		{"assignment count", CreatePartitionsTopic{Name: "t", Count: 4, Assignments: [][]int32{{1, 2}}}, ErrInvalidReplicaAssignment},
		{"assignment rf", CreatePartitionsTopic{Name: "t", Count: 3, Assignments: [][]int32{{1}}}, ErrInvalidReplicaAssignment},
		{"assignment dup", CreatePartitionsTopic{Name: "t", Count: 3, Assignments: [][]int32{{1, 1}}}, ErrInvalidReplicaAssignment},
		{"assignment unknown", CreatePartitionsTopic{Name: "t", Count: 3, Assignments: [][]int32{{1, 7}}}, ErrInvalidReplicaAssignment},
	}
	for _, tt := range tests {
		recs, resp := cl.c.CreatePartitions(cl.img, CreatePartitionsRequest{Topics: []CreatePartitionsTopic{tt.req}})
		if len(recs) != 0 {
			t.Errorf("%s: %d records", tt.name, len(recs))
		}
		if err := resp.Topics[0].Err; err == nil || !errorsIs(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	recs, resp := cl.c.CreatePartitions(cl.img, CreatePartitionsRequest{Topics: []CreatePartitionsTopic{
		{Name: "t", Count: 5, Assignments: [][]int32{{3, 4}, {4, 1}, {2, 3}}},
	}})
	requireErr(t, resp.Topics[0].Err, nil)
	cl.apply(recs)
	if p := cl.partition("t", 3); p.Leader != 1 || !slices.Equal(p.ISR, []int32{1}) {
		t.Errorf("partition 3 with a fenced preferred replica: %+v", p)
	}
	recs, resp = cl.c.CreatePartitions(cl.img, CreatePartitionsRequest{Topics: []CreatePartitionsTopic{{Name: "t", Count: 8}}})
	requireErr(t, resp.Topics[0].Err, nil)
	cl.apply(recs)
	topic, _ := cl.img.Topic("t")
	for i, p := range topic.Partitions[5:] {
		if len(p.Replicas) != 2 || slices.Contains(p.Replicas, 4) {
			t.Errorf("placed partition %d: %v (want 2 unfenced replicas)", 5+i, p.Replicas)
		}
	}
}
