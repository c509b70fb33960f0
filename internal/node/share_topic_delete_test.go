package node

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/coord/sharestate"
)

// TestNodeShareTopicDeletionDeletesItsState: a share group reads two
// topics, one per member. Deleting one topic deletes its share
// partition's state from __share_group_state (tombstones, as Kafka's
// share coordinator writes on a topic deletion), while the other member
// goes on consuming its topic. The topic created again under the same
// name is another topic: the group starts it clean, at
// share.auto.offset.reset (earliest), not at the old topic's start
// offset, which the partition leader and the group coordinator must not
// carry over from what they cached by name.
func TestNodeShareTopicDeletionDeletesItsState(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n := startNode(t, t.TempDir(), "share.auto.offset.reset=earliest")
	adm := kadm.NewClient(client(t, n))
	shareTopic(t, ctx, n, "gone", 5)
	shareTopic(t, ctx, n, "kept", 5)
	g := &shareMember{t: t, cl: client(t, n), group: "pair", id: "member-g"}
	g.heartbeat(ctx, []string{"gone"})
	k := &shareMember{t: t, cl: client(t, n), group: "pair", id: "member-k"}
	k.heartbeat(ctx, []string{"kept"})
	if got := acquiredString(g.fetch(ctx, 1000)); got != "[0-4 delivery 1]" {
		t.Fatalf("gone: acquired %s", got)
	}
	g.fetch(ctx, 0, [2]int64{0, 4})
	if got := acquiredString(k.fetch(ctx, 1000)); got != "[0-4 delivery 1]" {
		t.Fatalf("kept: acquired %s", got)
	}
	k.fetch(ctx, 0, [2]int64{0, 2})
	goneKey := coord.ShareStateKey{GroupID: "pair", TopicID: g.topic}
	if !shareStateStored(t, ctx, n, goneKey) {
		t.Fatal("no state stored for gone-0 before its deletion")
	}

	if _, err := adm.DeleteTopic(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the deleted topic's share state tombstoned", func() bool {
		return !shareStateStored(t, ctx, n, goneKey)
	})
	g.heartbeat(ctx, []string{"gone"}) // assigned nothing while the topic is gone

	// The other topic is served as before.
	k.heartbeat(ctx, []string{"kept"})
	produceTo(t, ctx, n, "kept", 3)
	if got := acquiredString(k.fetch(ctx, 1000)); got != "[5-7 delivery 1]" {
		t.Fatalf("kept after the deletion: acquired %s, want [5-7 delivery 1]", got)
	}
	k.fetch(ctx, 0, [2]int64{3, 7})
	if start := shareStateStart(t, ctx, client(t, n), "pair", k.topic, 0); start != 8 {
		t.Fatalf("kept's start offset %d after accepting 3-7, want 8", start)
	}

	shareTopic(t, ctx, n, "gone", 3)
	g.heartbeat(ctx, []string{"gone"})
	if g.topic == goneKey.TopicID || len(g.parts) != 1 {
		t.Fatalf("member-g assigned %x %v, want partition 0 of the new topic", g.topic, g.parts)
	}
	if got := acquiredString(g.fetch(ctx, 1000)); got != "[0-2 delivery 1]" {
		t.Fatalf("the re-created topic: acquired %s, want [0-2 delivery 1] (a clean start)", got)
	}
}

func produceTo(t *testing.T, ctx context.Context, n *Node, topic string, records int) {
	t.Helper()
	p := client(t, n, kgo.DefaultProduceTopic(topic))
	for i := range records {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// shareStateStored replays the __share_group_state partition that holds
// key, as a share coordinator loads it, and says whether key has state.
func shareStateStored(t *testing.T, ctx context.Context, n *Node, key coord.ShareStateKey) bool {
	t.Helper()
	adm := kadm.NewClient(client(t, n))
	md, err := adm.Metadata(ctx, coord.ShareStateTopic)
	if err != nil {
		t.Fatal(err)
	}
	p := coord.PartitionFor(coord.ShareCoordinatorKey(key), int32(len(md.Topics[coord.ShareStateTopic].Partitions)))
	ends, err := adm.ListEndOffsets(ctx, coord.ShareStateTopic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(coord.ShareStateTopic, p)
	cl := client(t, n, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{coord.ShareStateTopic: {p: kgo.NewOffset().AtStart()}}))
	defer cl.Close()
	shard := sharestate.NewShard(sharestate.Config{UpdatesPerSnapshot: 500, MaxBatches: 1 << 16, MaxStates: 1 << 20})
	for next := int64(0); next < end.Offset; {
		fetches := cl.PollFetches(ctx)
		if err := fetches.Err(); err != nil {
			t.Fatalf("reading %s-%d: %v", coord.ShareStateTopic, p, err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			next = r.Offset + 1
			if err := shard.Load(r.Key, r.Value); err != nil {
				t.Fatalf("replaying %s-%d at %d: %v", coord.ShareStateTopic, p, r.Offset, err)
			}
		})
	}
	_, found := shard.ReadSummary(key)
	return found
}

// TestNodeShareStateSummaryErrorCarriesZeros: ReadShareGroupStateSummary
// of a topic id nobody knows (a deleted topic's, say) is
// UNKNOWN_TOPIC_OR_PARTITION with the epochs and start offset left 0, as
// Kafka's error answer carries only the code and message, not -1.
func TestNodeShareStateSummaryErrorCarriesZeros(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := startNode(t, t.TempDir())
	req := kmsg.NewPtrReadShareGroupStateSummaryRequest()
	req.GroupID = "nobody"
	req.Topics = []kmsg.ReadShareGroupStateSummaryRequestTopic{{TopicID: [16]byte{0: 0xDE, 15: 0xAD},
		Partitions: []kmsg.ReadShareGroupStateSummaryRequestTopicPartition{{Partition: 0}}}}
	resp, err := req.RequestWith(ctx, client(t, n))
	if err != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("ReadShareGroupStateSummary: %v %+v", err, resp)
	}
	rp := resp.Topics[0].Partitions[0]
	if rp.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("ReadShareGroupStateSummary of an unknown topic id: %v, want UNKNOWN_TOPIC_OR_PARTITION", kerr.ErrorForCode(rp.ErrorCode))
	}
	if rp.StartOffset != 0 || rp.StateEpoch != 0 || rp.LeaderEpoch != 0 {
		t.Fatalf("the error answer has start offset %d, state epoch %d, leader epoch %d; want Kafka's zeros", rp.StartOffset, rp.StateEpoch, rp.LeaderEpoch)
	}
}

// TestNodeShareTopicRecreatedBetweenHeartbeats: a topic deleted and
// created again with as many partitions between two heartbeats of a
// member. The next heartbeat must hand the member the new topic's id (a
// new group epoch), and the member consumes the new topic from its
// start; with the group comparing partition counts by name, it was told
// nothing and went on with the deleted id.
func TestNodeShareTopicRecreatedBetweenHeartbeats(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := startNode(t, t.TempDir(), "share.auto.offset.reset=earliest")
	adm := kadm.NewClient(client(t, n))
	shareTopic(t, ctx, n, "again", 5)
	m := &shareMember{t: t, cl: client(t, n), group: "g", id: "member"}
	m.heartbeat(ctx, []string{"again"})
	if got := acquiredString(m.fetch(ctx, 1000)); got != "[0-4 delivery 1]" {
		t.Fatalf("acquired %s", got)
	}
	m.fetch(ctx, 0, [2]int64{0, 4})
	old, epoch := m.topic, m.epoch

	if _, err := adm.DeleteTopic(ctx, "again"); err != nil {
		t.Fatal(err)
	}
	shareTopic(t, ctx, n, "again", 3)
	m.heartbeat(ctx, nil)
	if m.topic == old || m.epoch == epoch {
		t.Fatalf("after the re-creation: epoch %d (was %d), topic %x (the deleted one: %v)", m.epoch, epoch, m.topic, m.topic == old)
	}
	m.sess = 0
	eventually(t, 20*time.Second, "the re-created topic consumed from its start", func() bool {
		return acquiredString(m.fetch(ctx, 200)) == "[0-2 delivery 1]"
	})
}
