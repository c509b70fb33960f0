package sharegroup

import (
	"fmt"
	"testing"
)

// TestShareGroupStateMetadataOffsets: what the offset admin APIs record.
// An alter records its partitions as initialized (a second alter of them
// writes nothing) and takes a deleting topic out of deleting; a delete
// moves its topics to deleting (once); a heartbeat that assigns a
// deleting topic again makes it initialized; a group deletion deletes the
// deleting topics with the others. Every step's log replays to the live
// record, whole and compacted.
func TestShareGroupStateMetadataOffsets(t *testing.T) {
	g := NewGroup("g")
	var log []Record
	step := func(what string, r Record, changed bool, wantChanged bool, want string) {
		t.Helper()
		if changed != wantChanged {
			t.Fatalf("%s: changed %v, want %v", what, changed, wantChanged)
		}
		if changed {
			log = append(log, r)
		}
		live := map[string]*Group{"g": g}
		if got := describe(live); got != want {
			t.Fatalf("%s: record\n%swant\n%s", what, got, want)
		}
		if got := describe(replay(t, log)); got != want {
			t.Fatalf("%s: replayed\n%swant\n%s", what, got, want)
		}
		if got := describe(replay(t, compact(log))); got != want {
			t.Fatalf("%s: compacted replay\n%swant\n%s", what, got, want)
		}
	}
	r, ok := g.RecordInitialized(testTopicIDs["t"], "t", []int32{1})
	step("alter t-1", r, ok, true, "g epoch=0\n  share state: initialized=map[t:[1]] deleting=[]\n")
	r, ok = g.RecordInitialized(testTopicIDs["t"], "t", []int32{1})
	step("alter t-1 again", r, ok, false, "g epoch=0\n  share state: initialized=map[t:[1]] deleting=[]\n")
	r, ok = g.RecordInitialized(testTopicIDs["u"], "u", nil)
	step("alter nothing of u", r, ok, false, "g epoch=0\n  share state: initialized=map[t:[1]] deleting=[]\n")
	r, ok = g.RecordInitialized(testTopicIDs["u"], "u", []int32{0})
	step("alter u-0", r, ok, true, "g epoch=0\n  share state: initialized=map[t:[1] u:[0]] deleting=[]\n")
	r, ok = g.RecordDeletingTopics(map[[16]byte]string{testTopicIDs["t"]: "t"})
	step("delete t", r, ok, true, "g epoch=0\n  share state: initialized=map[u:[0]] deleting=[t/01]\n")
	if !g.IsDeleting(testTopicIDs["t"]) || g.IsDeleting(testTopicIDs["u"]) {
		t.Fatalf("IsDeleting t %v u %v", g.IsDeleting(testTopicIDs["t"]), g.IsDeleting(testTopicIDs["u"]))
	}
	r, ok = g.RecordDeletingTopics(map[[16]byte]string{testTopicIDs["t"]: "t"})
	step("delete t again", r, ok, false, "g epoch=0\n  share state: initialized=map[u:[0]] deleting=[t/01]\n")
	r, ok = g.RecordInitialized(testTopicIDs["t"], "t", []int32{0})
	step("alter t-0", r, ok, true, "g epoch=0\n  share state: initialized=map[t:[0] u:[0]] deleting=[]\n")
	r, ok = g.RecordDeletingTopics(map[[16]byte]string{testTopicIDs["t"]: "t", testTopicIDs["u"]: "u"})
	step("delete t and u", r, ok, true, "g epoch=0\n  share state: initialized=map[] deleting=[t/01 u/02]\n")

	cfg := GroupConfig{SessionTimeoutMs: 1000, HeartbeatIntervalMs: 100, MaxSize: 10}
	counts := testTopics(func(topic string) int32 { return map[string]int32{"t": 2, "u": 1}[topic] })
	if _, err := g.Heartbeat(cfg, Heartbeat{MemberID: "a", SubscribedTopicNames: []string{"u"}}, counts, 0); err != nil {
		t.Fatal(err)
	}
	log = append(log, g.TakeRecords(testTopicID)...)
	if got, want := fmt.Sprint(g.InitializedTopics(testTopicName), stateTopicNames(g.DeletingTopics())), "map[u:[0]] [t/01]"; got != want {
		t.Fatalf("after u is assigned again: %s, want %s", got, want)
	}
	if got, want := describe(replay(t, compact(log))), describe(map[string]*Group{"g": g}); got != want {
		t.Fatalf("after u is assigned again, compacted replay\n%swant\n%s", got, want)
	}
	if _, err := g.Heartbeat(cfg, Heartbeat{MemberID: "a", MemberEpoch: -1}, counts, 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := g.BeginDelete(nil); !ok {
		t.Fatal("BeginDelete found nothing to delete")
	}
	if got, want := fmt.Sprint(stateTopicNames(g.DeletingTopics())), "[t/01 u/02]"; got != want {
		t.Fatalf("the group's deletion deletes %s, want %s", got, want)
	}
}
