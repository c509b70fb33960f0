package share

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/coord/sharegroup"
)

// TestShareIdleDropWritesAQueuedRelease: a member's leave queues its
// release (memberGoneLocked), and the group's last share session on the
// node ends before the leave's writer runs. Dropping the group's share
// partitions (dropIfNoSessions) must write the release first: with a
// delivery count limit of 1 the release archives the records, and a lost
// release leaves them available in the stored state, to be delivered
// once more.
func TestShareIdleDropWritesAQueuedRelease(t *testing.T) {
	f := newFixture(t)
	f.c.opts.Config.Partition.DeliveryCountLimit = 1 // a release archives
	f.c.opts.Config.AutoOffsetResetEarliest = true
	f.createTopic("t", 1)
	f.produce("t", 0, 5)
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "a", SubscribedTopicNames: []string{"t"}})
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "b", SubscribedTopicNames: []string{"t"}})
	if got := f.fetch("g", "b", 0); got != 5 {
		t.Fatalf("b acquired %d records, want 5", got)
	}
	f.fetch("g", "a", 0) // a's session, the group's other one here

	// b's leave as a heartbeat makes it, up to its writer.
	f.c.mu.Lock()
	f.c.memberGoneLocked("g", "b")
	f.c.mu.Unlock()
	// a closes the group's last share session here, which drops the
	// group's share partitions; then the leave's writer runs, late.
	if _, err := f.c.Fetch(context.Background(), FetchRequest{GroupID: "g", MemberID: "a", SessionEpoch: -1}); err != nil {
		t.Fatalf("closing a's session: %v", err)
	}
	f.c.writeGroupReleased("g")

	if st := f.persister.state("g", "t", 0); st.StartOffset != 5 {
		t.Fatalf("stored state %+v, want start offset 5: b's release archived its records", st)
	}
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "c", SubscribedTopicNames: []string{"t"}})
	if got := f.fetch("g", "c", 0); got != 0 {
		t.Fatalf("c acquired %d records archived by b's release", got)
	}
}

// TestShareIdleDropDoesNotHoldTheShareLockForAPartition: the group's last
// share session here ends while a leave's release is being written (the
// share coordinator does not answer, up to 15 s). Dropping the group's
// share partitions waits for that write, and must not wait with the
// node-wide share lock held: another group's members heartbeat meanwhile.
func TestShareIdleDropDoesNotHoldTheShareLockForAPartition(t *testing.T) {
	f := newFixture(t)
	f.c.opts.Config.AutoOffsetResetEarliest = true
	f.createTopic("t", 1)
	f.createTopic("u", 1)
	f.createTopic("v", 1)
	f.produce("t", 0, 5)
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "a", SubscribedTopicNames: []string{"t", "v"}})
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "b", SubscribedTopicNames: []string{"t", "v"}})
	f.heartbeat("h", sharegroup.Heartbeat{MemberID: "c", SubscribedTopicNames: []string{"u"}})
	if got := f.fetch("g", "b", 0); got != 5 {
		t.Fatalf("b acquired %d records, want 5", got)
	}
	// a's session fetches v-0 only, so closing it releases nothing in
	// t-0 and goes straight to the drop.
	if _, err := f.c.Fetch(context.Background(), FetchRequest{GroupID: "g", MemberID: "a", SessionEpoch: 0,
		Partitions: []TopicPartition{{"v", 0}}, MaxRecords: 100, MaxBytes: 1 << 20}); err != nil {
		t.Fatalf("a's fetch of v-0: %v", err)
	}

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
	closed := make(chan struct{})
	wg.Go(func() {
		defer close(closed)
		_, _ = f.c.Fetch(context.Background(), FetchRequest{GroupID: "g", MemberID: "a", SessionEpoch: -1})
	})
	var heartbeatErr error
	stop := time.Now().Add(10 * time.Second) // the loop's own bound, should within give up
	ok := within(5*time.Second, func() {
		// a's session is gone once the close is under way; then h's
		// member heartbeats while the drop waits for the partition.
		for open := true; open && time.Now().Before(stop); time.Sleep(time.Millisecond) {
			f.c.mu.Lock()
			_, open = f.c.sessions[sessionKey{"g", "a"}]
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
		t.Fatal("share group h waited for the node-wide share lock while g's idle drop waited for a share partition")
	}
	if heartbeatErr != nil {
		t.Fatalf("heartbeat of h: %v", heartbeatErr)
	}
	f.persister.release()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("closing a's session never returned")
	}
}
