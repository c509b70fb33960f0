package share

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/coord/sharegroup"
)

// TestShareGroupIDCheckDoesNotWaitOnTheShareLock: JoinGroup,
// ConsumerGroupHeartbeat and generation-less commits of consumer groups
// ask IsShareGroup. A share heartbeat holds the node-wide share lock
// while it waits for a share partition, whose lock is held across a state
// read or write of up to 15 s (and while the heartbeat's records are
// replicated, up to 5 s): the consumer groups' requests must not wait
// behind it.
func TestShareGroupIDCheckDoesNotWaitOnTheShareLock(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1)
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "a", SubscribedTopicNames: []string{"t"}})
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "b", SubscribedTopicNames: []string{"t"}})
	if !f.c.IsShareGroup("g") || f.c.IsShareGroup("consumers") {
		t.Fatal("IsShareGroup before the share lock is held: wrong answer")
	}

	// a's first fetch reads the share partition's state, under its lock,
	// and the share coordinator does not answer.
	entered := f.persister.hold()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer f.persister.release()
	wg.Go(func() {
		_, _ = f.c.Fetch(context.Background(), FetchRequest{GroupID: "g", MemberID: "a",
			Partitions: []TopicPartition{{"t", 0}}, MaxRecords: 10, MaxBytes: 1 << 20})
	})
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the fetch never read the share partition's state")
	}
	// b leaves: its heartbeat releases what b holds in that partition,
	// waiting for its lock with the node-wide lock held.
	wg.Go(func() { _, _ = f.c.Heartbeat("g", sharegroup.Heartbeat{MemberID: "b", MemberEpoch: -1}, f.counts) })
	deadline := time.Now().Add(10 * time.Second)
	for f.c.mu.TryLock() {
		f.c.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("the leaving heartbeat never took the share lock")
		}
		time.Sleep(time.Millisecond)
	}

	var consumers, shares bool
	if !within(5*time.Second, func() { consumers, shares = f.c.IsShareGroup("consumers"), f.c.IsShareGroup("g") }) {
		t.Fatal("IsShareGroup waited for the share lock, held while a share partition's state is read")
	}
	if consumers || !shares {
		t.Fatalf("IsShareGroup under the held lock: consumers %v, g %v", consumers, shares)
	}
}

// TestShareGroupIDsFollowGroups: the ids IsShareGroup reads without the
// share lock follow a group's creation and deletion.
func TestShareGroupIDsFollowGroups(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 2)
	if f.c.IsShareGroup("g") {
		t.Fatal("a share group before any heartbeat")
	}
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "a", SubscribedTopicNames: []string{"t"}})
	if !f.c.IsShareGroup("g") {
		t.Fatal("not a share group after its first heartbeat")
	}
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "a", MemberEpoch: -1})
	if found, err := f.c.DeleteGroup(context.Background(), "g", f.counts); !found || err != nil {
		t.Fatalf("DeleteGroup: found %v, %v", found, err)
	}
	if f.c.IsShareGroup("g") {
		t.Fatal("still a share group once deleted")
	}
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "b", SubscribedTopicNames: []string{"t"}})
	if !f.c.IsShareGroup("g") {
		t.Fatal("not a share group once made again")
	}
}
