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
// while its records are replicated (up to 5 s), and held it while it
// waited for a share partition's lock, held across a state read or write
// of up to 15 s: the consumer groups' requests must not wait behind it.
func TestShareGroupIDCheckDoesNotWaitOnTheShareLock(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1)
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "a", SubscribedTopicNames: []string{"t"}})
	if !f.c.IsShareGroup("g") || f.c.IsShareGroup("consumers") {
		t.Fatal("IsShareGroup before the share lock is held: wrong answer")
	}
	f.c.mu.Lock() // a heartbeat waiting for its records' replication, say
	var consumers, shares bool
	ok := within(5*time.Second, func() { consumers, shares = f.c.IsShareGroup("consumers"), f.c.IsShareGroup("g") })
	f.c.mu.Unlock()
	if !ok {
		t.Fatal("IsShareGroup waited for the node-wide share lock")
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
	if found, err := f.c.DeleteGroup(context.Background(), "g", f.image()); !found || err != nil {
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

// TestShareLeaveDoesNotHoldTheShareLockForAPartition: a member's leave
// releases what it holds in each share partition of its group, and a
// partition's lock is held across its state read or write (up to 15 s).
// The leave must not wait for it with the node-wide share lock held:
// every heartbeat, fetch and acknowledgement of every share group of the
// node takes that lock. The release is still written before the leave is
// answered.
func TestShareLeaveDoesNotHoldTheShareLockForAPartition(t *testing.T) {
	f := newFixture(t)
	f.c.opts.Config.Partition.DeliveryCountLimit = 1 // a release archives
	f.c.opts.Config.AutoOffsetResetEarliest = true
	f.createTopic("t", 1)
	f.createTopic("u", 1)
	f.produce("t", 0, 5)
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "a", SubscribedTopicNames: []string{"t"}})
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "b", SubscribedTopicNames: []string{"t"}})
	f.heartbeat("h", sharegroup.Heartbeat{MemberID: "c", SubscribedTopicNames: []string{"u"}})
	tp := TopicPartition{"t", 0}
	if got := f.fetch("g", "b", 0); got != 5 {
		t.Fatalf("b acquired %d records, want 5", got)
	}
	f.fetch("g", "a", 0) // opens a's session; b holds everything

	// a's acknowledgement writes the partition's state, under its lock,
	// and the share coordinator does not answer.
	entered := f.persister.hold()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer f.persister.release()
	wg.Go(func() {
		_, _ = f.c.Fetch(context.Background(), FetchRequest{GroupID: "g", MemberID: "a", SessionEpoch: 1, AcknowledgeOnly: true,
			Acks: map[TopicPartition][]Acknowledgement{tp: {{FirstOffset: 0, LastOffset: 0, Types: []int8{1}}}}})
	})
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the acknowledgement never wrote the share partition's state")
	}
	left := make(chan struct{})
	wg.Go(func() {
		defer close(left)
		_, _ = f.c.Heartbeat("g", sharegroup.Heartbeat{MemberID: "b", MemberEpoch: -1}, f.image())
	})
	// b is gone from the group at once, though its release waits for the
	// partition; h's members heartbeat meanwhile.
	var heartbeatErr error
	stop := time.Now().Add(10 * time.Second) // the loop's own bound, should within give up
	ok := within(5*time.Second, func() {
		for time.Now().Before(stop) {
			if _, err := f.c.Heartbeat("h", sharegroup.Heartbeat{MemberID: "c", MemberEpoch: 1}, f.image()); err != nil {
				heartbeatErr = err
				return
			}
			f.c.mu.Lock()
			n := len(f.c.groups["g"].Members())
			f.c.mu.Unlock()
			if n == 1 {
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	if !ok {
		t.Fatal("share group h waited for the node-wide share lock while g's leave waited for a share partition")
	}
	if heartbeatErr != nil {
		t.Fatalf("heartbeat of h: %v", heartbeatErr)
	}
	select {
	case <-left:
		t.Fatal("the leave was answered before its release was written")
	default:
	}
	f.persister.release()
	select {
	case <-left:
	case <-time.After(10 * time.Second):
		t.Fatal("the leave never returned")
	}
	// b's records were on their last delivery: released, they are
	// archived, and the stored state starts past them.
	if st := f.persister.state("g", "t", 0); st.StartOffset != 5 {
		t.Fatalf("stored state once the leave is answered: %+v, want start offset 5", st)
	}
}

// TestShareLeaveQueuedReleaseComesBeforeARejoin: a leave's release is
// queued in the share partition; the member rejoins under its id and
// fetches before the leave's writer takes the partition's lock. The fetch
// must make the release first, so it takes the old records, never those
// the member acquires anew.
func TestShareLeaveQueuedReleaseComesBeforeARejoin(t *testing.T) {
	f := newFixture(t)
	f.c.opts.Config.AutoOffsetResetEarliest = true
	f.createTopic("t", 1)
	f.produce("t", 0, 5)
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "a", SubscribedTopicNames: []string{"t"}})
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "b", SubscribedTopicNames: []string{"t"}})
	if got := f.fetch("g", "b", 0); got != 5 {
		t.Fatalf("b acquired %d records, want 5", got)
	}
	// b's leave as a heartbeat makes it, up to its writer; b is back
	// (under its id, still in the group here) before that writer runs.
	f.c.mu.Lock()
	f.c.memberGoneLocked("g", "b")
	f.c.mu.Unlock()
	if got := f.fetch("g", "b", 0); got != 5 {
		t.Fatalf("b acquired %d records after rejoining, want its 5 back", got)
	}
	f.c.writeGroupReleased("g") // the leave's writer, late
	if got := f.fetch("g", "a", 0); got != 0 {
		t.Fatalf("a acquired %d records that b holds since it rejoined", got)
	}
	if st := f.persister.state("g", "t", 0); len(st.Batches) != 1 || st.Batches[0].DeliveryCount != 2 {
		t.Fatalf("stored state %+v, want the 5 records in their second delivery", st)
	}
}

// TestShareDeleteGroupDoesNotHoldTheShareLockForAPartition: DeleteGroups
// drops the group's share partitions once a state write in progress ends
// (none may land after the state is deleted), and must not wait for it
// with the node-wide share lock held.
func TestShareDeleteGroupDoesNotHoldTheShareLockForAPartition(t *testing.T) {
	f := newFixture(t)
	f.c.opts.Config.AutoOffsetResetEarliest = true
	f.createTopic("t", 1)
	f.createTopic("u", 1)
	f.produce("t", 0, 5)
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "b", SubscribedTopicNames: []string{"t"}})
	f.heartbeat("h", sharegroup.Heartbeat{MemberID: "c", SubscribedTopicNames: []string{"u"}})
	if got := f.fetch("g", "b", 0); got != 5 {
		t.Fatalf("b acquired %d records, want 5", got)
	}

	// b leaves: its release's write holds the partition's lock, and the
	// share coordinator does not answer.
	entered := f.persister.hold()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer f.persister.release()
	wg.Go(func() { _, _ = f.c.Heartbeat("g", sharegroup.Heartbeat{MemberID: "b", MemberEpoch: -1}, f.image()) })
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the leave never wrote its release")
	}
	deleted := make(chan error, 1)
	wg.Go(func() {
		_, err := f.c.DeleteGroup(context.Background(), "g", f.image())
		deleted <- err
	})
	var heartbeatErr error
	stop := time.Now().Add(10 * time.Second) // the loop's own bound, should within give up
	ok := within(5*time.Second, func() {
		// The deletion is under way once its topics are recorded as
		// deleting (its first step); then h's member heartbeats.
		for deleting := false; !deleting && time.Now().Before(stop); time.Sleep(time.Millisecond) {
			f.c.mu.Lock()
			g := f.c.groups["g"]
			deleting = g == nil || len(g.DeletingTopics()) > 0
			f.c.mu.Unlock()
		}
		for n := 0; n < 20 && time.Now().Before(stop); n++ {
			if _, heartbeatErr = f.c.Heartbeat("h", sharegroup.Heartbeat{MemberID: "c", MemberEpoch: 1}, f.image()); heartbeatErr != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	if !ok {
		t.Fatal("share group h waited for the node-wide share lock while g's deletion waited for a share partition")
	}
	if heartbeatErr != nil {
		t.Fatalf("heartbeat of h: %v", heartbeatErr)
	}
	f.persister.release()
	select {
	case err := <-deleted:
		if err != nil {
			t.Fatalf("DeleteGroup: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("DeleteGroup never returned")
	}
	wg.Wait()
	if st, ok := f.persister.stateOf("g", "t", 0); ok {
		t.Fatalf("the group's state is left after its deletion: %+v", st)
	}
}
