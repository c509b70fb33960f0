package sharegroup

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"sort"
	"testing"
)

var testTopicIDs = map[string][16]byte{"t": {1}, "u": {2}, "v": {3}}

func testTopicID(name string) ([16]byte, bool) { id, ok := testTopicIDs[name]; return id, ok }

// testTopics describes the topics counts gives partitions to, with the
// ids of testTopicIDs.
func testTopics(counts func(string) int32) Topics {
	return func(name string) TopicMetadata {
		n := counts(name)
		if n == 0 {
			return TopicMetadata{}
		}
		id, _ := testTopicID(name)
		return TopicMetadata{ID: id, Partitions: n}
	}
}

func testTopicName(id [16]byte) (string, bool) {
	for name, x := range testTopicIDs {
		if x == id {
			return name, true
		}
	}
	return "", false
}

func describe(groups map[string]*Group) string {
	var b bytes.Buffer
	for _, id := range []string{"g", "h"} {
		g := groups[id]
		if g == nil {
			continue
		}
		fmt.Fprintf(&b, "%s epoch=%d\n", id, g.Epoch)
		for _, m := range g.Members() {
			fmt.Fprintf(&b, "  %s epoch=%d client=%s/%s rack=%q subs=%v assignment=%v\n", m.ID, m.Epoch, m.ClientID, m.ClientHost, m.RackID, m.SubscribedTopicNames, m.Assignment)
		}
		fmt.Fprintf(&b, "  share state: initialized=%v deleting=%v\n", g.InitializedTopics(testTopicName), stateTopicNames(g.DeletingTopics()))
	}
	return b.String()
}

func replay(t *testing.T, log []Record) map[string]*Group {
	t.Helper()
	groups := map[string]*Group{}
	for _, r := range log {
		handled, err := LoadRecord(groups, r.Key, r.Value, testTopicName, 0)
		if !handled || err != nil {
			t.Fatalf("load %x: handled %v, %v", r.Key, handled, err)
		}
	}
	return groups
}

func stateTopicNames(ids map[[16]byte]string) []string {
	var out []string
	for id, name := range ids {
		out = append(out, fmt.Sprintf("%s/%02x", name, id[0]))
	}
	sort.Strings(out)
	return out
}

// compact keeps each key's newest record, in log order, as the cleaner does.
func compact(log []Record) []Record {
	newest := map[string]int{}
	for i, r := range log {
		newest[string(r.Key)] = i
	}
	var out []Record
	for i, r := range log {
		if newest[string(r.Key)] == i {
			out = append(out, r)
		}
	}
	return out
}

// TestShareGroupRecordsReplay: the records a group's changes write rebuild
// it (epochs, members, subscriptions, assignments), whole and compacted;
// an unchanged group writes nothing; a member leaving and the group's
// deletion write tombstones.
func TestShareGroupRecordsReplay(t *testing.T) {
	cfg := GroupConfig{SessionTimeoutMs: 1000, HeartbeatIntervalMs: 100, MaxSize: 10}
	counts := testTopics(func(topic string) int32 { return map[string]int32{"t": 2, "u": 1}[topic] })
	g := NewGroup("g")
	var log []Record
	step := func(hb Heartbeat) {
		t.Helper()
		if _, err := g.Heartbeat(cfg, hb, counts, 0); err != nil {
			t.Fatal(err)
		}
		log = append(log, g.TakeRecords(testTopicID)...)
		live := map[string]*Group{"g": g}
		if got, want := describe(replay(t, log)), describe(live); got != want {
			t.Fatalf("after %+v replay gives\n%swant\n%s", hb, got, want)
		}
		if got, want := describe(replay(t, compact(log))), describe(live); got != want {
			t.Fatalf("after %+v compacted replay gives\n%swant\n%s", hb, got, want)
		}
	}
	step(Heartbeat{MemberID: "a", SubscribedTopicNames: []string{"t"}, ClientID: "c1", ClientHost: "/127.0.0.1"})
	step(Heartbeat{MemberID: "b", SubscribedTopicNames: []string{"t", "u"}, ClientID: "c2", ClientHost: "/127.0.0.2", RackID: "r1"})
	step(Heartbeat{MemberID: "a", MemberEpoch: 1, ClientID: "c1", ClientHost: "/127.0.0.1"})
	n := len(log)
	step(Heartbeat{MemberID: "a", MemberEpoch: 2, ClientID: "c1", ClientHost: "/127.0.0.1"})
	if len(log) != n {
		t.Fatalf("an unchanged heartbeat wrote %d records", len(log)-n)
	}
	step(Heartbeat{MemberID: "b", MemberEpoch: -1})
	log = append(log, g.DeleteRecords()...)
	if groups := replay(t, log); len(groups) != 0 {
		t.Fatalf("deleted group replays as %s", describe(groups))
	}
	if groups := replay(t, compact(log)); len(groups) != 0 {
		t.Fatalf("deleted group replays compacted as %s", describe(groups))
	}
}

// TestShareGroupRecordBytes pins the layout of two records against bytes
// written out by hand from Kafka's schemas.
func TestShareGroupRecordBytes(t *testing.T) {
	if got, want := hex.EncodeToString(groupKey(recordTargetMember, "g", "m")), "000d"+"000167"+"00016d"; got != want {
		t.Errorf("target member key %s, want %s", got, want)
	}
	if got, want := hex.EncodeToString(groupMetadataValue(7)), "0000"+"00000007"+"0000000000000000"+"00"; got != want {
		t.Errorf("group metadata value %s, want %s", got, want)
	}
	m := &Member{ClientID: "c", ClientHost: "h", SubscribedTopicNames: []string{"t"}}
	if got, want := hex.EncodeToString(memberMetadataValue(m)), "0000"+"00"+"0263"+"0268"+"02"+"0274"+"00"; got != want {
		t.Errorf("member metadata value %s, want %s", got, want)
	}
	if handled, _ := LoadRecord(map[string]*Group{}, []byte{0, 1, 0, 0}, nil, nil, 0); handled {
		t.Errorf("an offset commit key was taken for a share group's")
	}
	for i := 2; i < 15; i++ {
		v := append(groupMetadataValue(3), 0xff)[:i]
		if _, err := LoadRecord(map[string]*Group{}, groupKey(recordGroupMetadata, "g", ""), v, nil, 0); err == nil && i < 15 {
			t.Errorf("group metadata cut at %d bytes loaded", i)
		}
	}
}

// TestShareGroupStateMetadataReplay: the group's share state record
// (type 15) grows with every partition the assignment ever covered, keeps
// a topic no member subscribes to any more and partitions added later,
// moves everything to deleting when a deletion begins (a topic assigned
// again leaves it), and replays the same whole and compacted, up to the
// group's deletion.
func TestShareGroupStateMetadataReplay(t *testing.T) {
	cfg := GroupConfig{SessionTimeoutMs: 1000, HeartbeatIntervalMs: 100, MaxSize: 10}
	parts := map[string]int32{"t": 2, "u": 1}
	counts := testTopics(func(topic string) int32 { return parts[topic] })
	g := NewGroup("g")
	var log []Record
	check := func(what string) {
		t.Helper()
		live := map[string]*Group{"g": g}
		if got, want := describe(replay(t, log)), describe(live); got != want {
			t.Fatalf("after %s replay gives\n%swant\n%s", what, got, want)
		}
		if got, want := describe(replay(t, compact(log))), describe(live); got != want {
			t.Fatalf("after %s compacted replay gives\n%swant\n%s", what, got, want)
		}
	}
	step := func(hb Heartbeat) {
		t.Helper()
		if _, err := g.Heartbeat(cfg, hb, counts, 0); err != nil {
			t.Fatal(err)
		}
		log = append(log, g.TakeRecords(testTopicID)...)
		check(fmt.Sprintf("%+v", hb))
	}
	initialized := func(want string) {
		t.Helper()
		if got := fmt.Sprint(g.InitializedTopics(testTopicName)); got != want {
			t.Fatalf("initialized %s, want %s", got, want)
		}
	}
	step(Heartbeat{MemberID: "a", SubscribedTopicNames: []string{"t"}})
	initialized("map[t:[0 1]]")
	step(Heartbeat{MemberID: "b", SubscribedTopicNames: []string{"t", "u"}})
	initialized("map[t:[0 1] u:[0]]")
	n := len(log)
	step(Heartbeat{MemberID: "a", MemberEpoch: 1})
	for _, r := range log[n:] {
		if r.Key[1] == recordStatePartitionMeta {
			t.Fatalf("a heartbeat that assigned nothing new wrote %x", r.Value)
		}
	}
	// b leaves: nobody subscribes to u, whose state stays the group's.
	step(Heartbeat{MemberID: "b", MemberEpoch: -1})
	parts["t"] = 3
	step(Heartbeat{MemberID: "a", MemberEpoch: 2})
	initialized("map[t:[0 1 2] u:[0]]")
	step(Heartbeat{MemberID: "a", MemberEpoch: -1})

	r, ok := g.BeginDelete(map[[16]byte]string{{3}: "v"})
	if !ok {
		t.Fatal("nothing to delete")
	}
	log = append(log, r)
	check("BeginDelete")
	initialized("map[]")
	if got := fmt.Sprint(stateTopicNames(g.DeletingTopics())); got != "[t/01 u/02 v/03]" {
		t.Fatalf("deleting %s", got)
	}
	// A member joins before the deletion is done: t is the group's again.
	step(Heartbeat{MemberID: "c", SubscribedTopicNames: []string{"t"}})
	initialized("map[t:[0 1 2]]")
	if got := fmt.Sprint(stateTopicNames(g.DeletingTopics())); got != "[u/02 v/03]" {
		t.Fatalf("deleting after t was assigned again: %s", got)
	}
	step(Heartbeat{MemberID: "c", MemberEpoch: -1})
	r, _ = g.BeginDelete(nil)
	log = append(log, r)
	check("second BeginDelete")
	log = append(log, g.DeleteRecords()...)
	if groups := replay(t, log); len(groups) != 0 {
		t.Fatalf("deleted group replays as %s", describe(groups))
	}
	if groups := replay(t, compact(log)); len(groups) != 0 {
		t.Fatalf("deleted group replays compacted as %s", describe(groups))
	}
	if _, ok := NewGroup("h").BeginDelete(nil); ok {
		t.Fatal("a group without share state wrote a deletion")
	}
}

// TestShareGroupStateMetadataBytes pins record type 15 against bytes
// written out by hand from Kafka 4.1's ShareGroupStatePartitionMetadata
// schemas, and reads Kafka's initializing topics as initialized.
func TestShareGroupStateMetadataBytes(t *testing.T) {
	g := NewGroup("g")
	g.initialized = map[[16]byte]stateTopic{{1}: {name: "t", partitions: []int32{0, 1}}}
	g.deleting = map[[16]byte]string{{2}: "u"}
	r := g.stateRecord()
	zeros := "000000000000000000000000000000"
	if got, want := hex.EncodeToString(r.Key), "000f"+"000167"; got != want {
		t.Errorf("key %s, want %s", got, want)
	}
	wantValue := "0000" + "01" + // version, no initializing topics
		"02" + "01" + zeros + "0274" + "03" + "00000000" + "00000001" + "00" + // initialized t [0 1]
		"02" + "02" + zeros + "0275" + "00" + // deleting u
		"00"
	if got := hex.EncodeToString(r.Value); got != wantValue {
		t.Errorf("value %s, want %s", got, wantValue)
	}
	// Kafka's: t [1] initializing, t [0] initialized, nothing deleting.
	kafka, _ := hex.DecodeString("0000" + "02" + "01" + zeros + "0274" + "02" + "00000001" + "00" +
		"02" + "01" + zeros + "0274" + "02" + "00000000" + "00" + "01" + "00")
	groups := map[string]*Group{}
	if _, err := LoadRecord(groups, r.Key, kafka, testTopicName, 0); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(groups["g"].InitializedTopics(testTopicName)); got != "map[t:[0 1]]" {
		t.Errorf("Kafka's record loads as %s", got)
	}
	for i := 2; i < len(r.Value); i++ {
		if _, err := LoadRecord(map[string]*Group{}, r.Key, r.Value[:i], testTopicName, 0); err == nil {
			t.Errorf("a value cut at %d bytes loaded", i)
		}
	}
}

// TestShareGroupStateMetadataFromAnEarlierLog: a group loaded from records
// without type 15 (an earlier Sluice wrote none) records its assignment
// at its first heartbeat, though that heartbeat changes nothing else.
func TestShareGroupStateMetadataFromAnEarlierLog(t *testing.T) {
	cfg := GroupConfig{SessionTimeoutMs: 1000, HeartbeatIntervalMs: 100, MaxSize: 10}
	counts := testTopics(func(topic string) int32 { return map[string]int32{"t": 2}[topic] })
	g := NewGroup("g")
	if _, err := g.Heartbeat(cfg, Heartbeat{MemberID: "a", SubscribedTopicNames: []string{"t"}}, counts, 0); err != nil {
		t.Fatal(err)
	}
	var earlier []Record
	for _, r := range g.TakeRecords(testTopicID) {
		if r.Key[1] != recordStatePartitionMeta {
			earlier = append(earlier, r)
		}
	}
	loaded := replay(t, earlier)["g"]
	loaded.Restored(counts)
	if got := fmt.Sprint(loaded.InitializedTopics(testTopicName)); got != "map[]" {
		t.Fatalf("loaded without the record, initialized %s", got)
	}
	if _, err := loaded.Heartbeat(cfg, Heartbeat{MemberID: "a", MemberEpoch: 1}, counts, 0); err != nil {
		t.Fatal(err)
	}
	rs := loaded.TakeRecords(testTopicID)
	if len(rs) != 1 || rs[0].Key[1] != recordStatePartitionMeta {
		t.Fatalf("first heartbeat after the load wrote %d records, want only type 15", len(rs))
	}
	if got := fmt.Sprint(loaded.InitializedTopics(testTopicName)); got != "map[t:[0 1]]" {
		t.Fatalf("initialized %s after the first heartbeat", got)
	}
}
