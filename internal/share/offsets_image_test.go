package share

import (
	"context"
	"testing"

	"github.com/sluicelog/sluice/internal/coord/sharegroup"
)

// TestShareOffsetAdminWithAnOlderImage: the share offset admin calls and
// DeleteGroups bring the image their request read, which may be older than
// one the coordinator acted on already (a CreatePartitions in between).
// Counting the topic's partitions in it, DeleteShareGroupOffsets left the
// new partition's start offset behind, DescribeShareGroupOffsets answered
// it as none and AlterShareGroupOffsets refused it as unknown.
func TestShareOffsetAdminWithAnOlderImage(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.createTopic("t", 2)
	older := f.image()
	f.addPartitions("t", 3)
	joined := f.heartbeat("g", sharegroup.Heartbeat{MemberID: "a", SubscribedTopicNames: []string{"t"}})
	if len(joined.Assignment["t"]) != 3 {
		t.Fatalf("joined: %+v, want the 3 partitions of t", joined)
	}
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "a", MemberEpoch: -1})

	altered, err := f.c.AlterOffsets(ctx, "g", map[string]map[int32]int64{"t": {0: 5, 1: 5, 2: 5}}, older)
	if err != nil {
		t.Fatal(err)
	}
	for tp, err := range altered {
		if err != nil {
			t.Fatalf("alter %v with an older image: %v", tp, err)
		}
	}
	described, err := f.c.DescribeOffsets(ctx, "g", nil, older)
	if err != nil {
		t.Fatal(err)
	}
	if len(described) != 3 || described[2].Partition != 2 || described[2].StartOffset != 5 {
		t.Fatalf("described with an older image: %+v, want t-2 at start offset 5", described)
	}

	deleted, err := f.c.DeleteOffsets(ctx, "g", []string{"t"}, older)
	if err != nil || deleted["t"] != nil {
		t.Fatalf("delete offsets with an older image: %v %v", err, deleted)
	}
	for p := range int32(3) {
		if st, ok := f.persister.stateOf("g", "t", p); ok && st.StartOffset != -1 {
			t.Fatalf("t-%d after DeleteShareGroupOffsets: %+v, want no start offset", p, st)
		}
	}

	if _, err := f.c.AlterOffsets(ctx, "g", map[string]map[int32]int64{"t": {2: 7}}, f.image()); err != nil {
		t.Fatal(err)
	}
	if found, err := f.c.DeleteGroup(ctx, "g", older); !found || err != nil {
		t.Fatalf("delete group with an older image: found %v, %v", found, err)
	}
	for p := range int32(3) {
		if st, ok := f.persister.stateOf("g", "t", p); ok {
			t.Fatalf("t-%d after DeleteGroups: %+v, want no state for a later group of the same id", p, st)
		}
	}
}
