package sharegroup

import (
	"fmt"
	"testing"
)

// TestShareGroupTopicRecreated: a subscribed topic deleted and created
// again under its name, with as many partitions, is another topic: the
// group starts a new epoch, so its members learn the new id.
func TestShareGroupTopicRecreated(t *testing.T) {
	cfg := GroupConfig{SessionTimeoutMs: 1000, HeartbeatIntervalMs: 100, MaxSize: 10}
	topics := func(id byte) Topics {
		return func(name string) TopicMetadata { return TopicMetadata{ID: [16]byte{id}, Partitions: 2} }
	}
	g := NewGroup("g")
	joined, err := g.Heartbeat(cfg, Heartbeat{MemberID: "a", SubscribedTopicNames: []string{"t"}}, topics(1), 0)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := g.Heartbeat(cfg, Heartbeat{MemberID: "a", MemberEpoch: joined.MemberEpoch}, topics(1), 0); err != nil || res.Assignment != nil {
		t.Fatalf("steady heartbeat: %+v, %v", res, err)
	}
	res, err := g.Heartbeat(cfg, Heartbeat{MemberID: "a", MemberEpoch: joined.MemberEpoch}, topics(9), 0)
	if err != nil || res.MemberEpoch != joined.MemberEpoch+1 || fmt.Sprint(res.Assignment) != "map[t:[0 1]]" {
		t.Fatalf("after t was re-created: %+v, %v; want epoch %d and t's partitions", res, err, joined.MemberEpoch+1)
	}
}

// TestShareGroupLoadedAfterTopicRecreated: a group loaded after its
// subscribed topic was deleted and created again has an assignment
// without it (the records name the deleted id). Its first heartbeat
// must assign the new topic; taking today's topics as what the loaded
// assignment was computed from would leave the member without it.
// Likewise for partitions added while the group was not loaded.
func TestShareGroupLoadedAfterTopicRecreated(t *testing.T) {
	t.Run("grown", testShareGroupLoadedAfterTopicGrew)
	cfg := GroupConfig{SessionTimeoutMs: 1000, HeartbeatIntervalMs: 100, MaxSize: 10}
	g := NewGroup("g")
	joined, err := g.Heartbeat(cfg, Heartbeat{MemberID: "a", SubscribedTopicNames: []string{"t"}}, testTopics(func(string) int32 { return 2 }), 0)
	if err != nil {
		t.Fatal(err)
	}
	recreated := [16]byte{9}
	topicName := func(id [16]byte) (string, bool) { return "t", id == recreated }
	loaded := map[string]*Group{}
	for _, r := range g.TakeRecords(testTopicID) {
		if _, err := LoadRecord(loaded, r.Key, r.Value, topicName, 0); err != nil {
			t.Fatal(err)
		}
	}
	now := func(string) TopicMetadata { return TopicMetadata{ID: recreated, Partitions: 2} }
	loaded["g"].Restored(now)
	res, err := loaded["g"].Heartbeat(cfg, Heartbeat{MemberID: "a", MemberEpoch: joined.MemberEpoch}, now, 0)
	if err != nil || fmt.Sprint(res.Assignment) != "map[t:[0 1]]" {
		t.Fatalf("first heartbeat after the load: %+v, %v; want t's partitions", res, err)
	}
}

func testShareGroupLoadedAfterTopicGrew(t *testing.T) {
	cfg := GroupConfig{SessionTimeoutMs: 1000, HeartbeatIntervalMs: 100, MaxSize: 10}
	g := NewGroup("g")
	joined, err := g.Heartbeat(cfg, Heartbeat{MemberID: "a", SubscribedTopicNames: []string{"t"}}, testTopics(func(string) int32 { return 2 }), 0)
	if err != nil {
		t.Fatal(err)
	}
	loaded := replay(t, g.TakeRecords(testTopicID))["g"]
	grown := testTopics(func(string) int32 { return 3 })
	loaded.Restored(grown)
	res, err := loaded.Heartbeat(cfg, Heartbeat{MemberID: "a", MemberEpoch: joined.MemberEpoch}, grown, 0)
	if err != nil || fmt.Sprint(res.Assignment) != "map[t:[0 1 2]]" {
		t.Fatalf("first heartbeat after the load: %+v, %v; want the 3 partitions of t", res, err)
	}
}
