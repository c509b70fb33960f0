package share

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/coord/sharegroup"
	"github.com/sluicelog/sluice/internal/metadata"
)

// TestShareHeartbeatInitializesAssignedPartitions: the group coordinator
// initializes a member's assigned share partitions (state epoch 0, no
// start offset) before it answers the heartbeat that assigns them, as
// Kafka's does, and only once per loaded group; state already there is
// kept. The leader then reads the state and picks the start itself.
func TestShareHeartbeatInitializesAssignedPartitions(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 2)
	f.produce("t", 0, 3)
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "a", SubscribedTopicNames: []string{"t"}})
	for p := range int32(2) {
		st, ok := f.persister.stateOf("g", "t", p)
		if !ok || st.StateEpoch != 0 || st.StartOffset != -1 {
			t.Fatalf("t-%d after the assigning heartbeat: %+v (found %v), want state epoch 0, start offset -1", p, st, ok)
		}
	}
	if got := f.fetch("g", "a", 0); got != 0 {
		t.Fatalf("acquired %d records, want none (share.auto.offset.reset=latest)", got)
	}
	if st := f.persister.state("g", "t", 0); st.StartOffset != 3 {
		t.Fatalf("state after the first fetch %+v, want start offset 3 written by the leader", st)
	}
	initialized := f.persister.initialized
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "a", MemberEpoch: 1})
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "b", SubscribedTopicNames: []string{"t"}})
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "a", MemberEpoch: 1})
	if f.persister.initialized != initialized {
		t.Fatalf("%d initializations after the first heartbeat's, want none: the partitions are known", f.persister.initialized-initialized)
	}
	if st := f.persister.state("g", "t", 0); st.StartOffset != 3 {
		t.Fatalf("state after a reassignment %+v, want start offset 3 kept", st)
	}
}

// TestShareHeartbeatRetriesAFailedInitialization: an initialization that
// does not finish (the share coordinator does not answer) leaves the
// partition to the member's next heartbeat; meanwhile its leader finds no
// state and answers a retriable error, and creates none itself.
func TestShareHeartbeatRetriesAFailedInitialization(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1)
	ctx, cancel := context.WithCancel(context.Background())
	f.c.ctx = ctx // the coordinator's shutdown, to cut the initialization short
	entered := f.persister.hold()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.heartbeat("g", sharegroup.Heartbeat{MemberID: "a", SubscribedTopicNames: []string{"t"}})
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("the heartbeat did not initialize the partition it assigned")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the heartbeat waits on, past its cancelled initialization")
	}
	f.persister.release()
	f.c.ctx = context.Background()
	if _, ok := f.persister.stateOf("g", "t", 0); ok {
		t.Fatal("state after a cut-short initialization")
	}
	res, err := f.c.Fetch(context.Background(), FetchRequest{GroupID: "g", MemberID: "a", Partitions: []TopicPartition{{"t", 0}}, MaxRecords: 10, MaxBytes: 1 << 20})
	if err != nil || len(res) != 1 || !errors.Is(res[0].Err, ErrStateUninitialized) {
		t.Fatalf("fetch before the state is initialized: %v %+v, want ErrStateUninitialized", err, res)
	}
	if _, ok := f.persister.stateOf("g", "t", 0); ok {
		t.Fatal("the leader created state")
	}
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "a", MemberEpoch: 1})
	if st, ok := f.persister.stateOf("g", "t", 0); !ok || st.StartOffset != -1 {
		t.Fatalf("state after the next heartbeat: %+v (found %v)", st, ok)
	}
	f.produce("t", 0, 2)
	if got := f.fetch("g", "a", 1); got != 0 {
		t.Fatalf("acquired %d", got)
	}
}

// TestShareStaleLeaderCannotWriteADeletedGroupBack: a leader holds a
// share partition's state (acquired records) when a group coordinator
// elsewhere deletes the group's state. The leader's next
// acknowledgement is refused (a retriable error), writes nothing, and
// drops the leader's copy, so its next fetch reads the state again,
// finds none, and fails again rather than resurrecting it. Once the group
// is deleted, a new group of the same id starts clean.
func TestShareStaleLeaderCannotWriteADeletedGroupBack(t *testing.T) {
	f := newFixture(t)
	f.c.opts.Config.AutoOffsetResetEarliest = true
	f.createTopic("t", 1)
	f.produce("t", 0, 10)
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "a", SubscribedTopicNames: []string{"t"}})
	if got := f.fetch("g", "a", 0); got != 10 {
		t.Fatalf("acquired %d records, want 10", got)
	}
	// DeleteGroups on the group's coordinator, elsewhere: this leader is
	// not told.
	if err := f.persister.DeleteState(context.Background(), "g", "t", 0); err != nil {
		t.Fatal(err)
	}
	tp := TopicPartition{"t", 0}
	res, err := f.c.Fetch(context.Background(), FetchRequest{GroupID: "g", MemberID: "a", SessionEpoch: 1, AcknowledgeOnly: true,
		Acks: map[TopicPartition][]Acknowledgement{tp: {{FirstOffset: 0, LastOffset: 4, Types: []int8{1}}}}})
	if err != nil || len(res) != 1 || !errors.Is(res[0].AckErr, ErrStateUninitialized) {
		t.Fatalf("acknowledging after the delete: %v %+v, want ErrStateUninitialized", err, res)
	}
	if st, ok := f.persister.stateOf("g", "t", 0); ok {
		t.Fatalf("the deleted state was written back: %+v", st)
	}
	res, err = f.c.Fetch(context.Background(), FetchRequest{GroupID: "g", MemberID: "a", SessionEpoch: 2, MaxRecords: 10, MaxBytes: 1 << 20})
	if err != nil || len(res) != 1 || !errors.Is(res[0].Err, ErrStateUninitialized) || len(res[0].Acquired) != 0 {
		t.Fatalf("fetching after the delete: %v %+v, want ErrStateUninitialized", err, res)
	}
	if _, ok := f.persister.stateOf("g", "t", 0); ok {
		t.Fatal("the leader created state for the deleted group")
	}

	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "a", MemberEpoch: -1})
	if _, err := f.c.DeleteGroup(context.Background(), "g", f.image()); err != nil {
		t.Fatalf("deleting the group: %v", err)
	}
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "b", SubscribedTopicNames: []string{"t"}})
	if st := f.persister.state("g", "t", 0); st.StateEpoch != 0 || st.StartOffset != -1 {
		t.Fatalf("the new group's state %+v, want a new one: state epoch 0, no start offset", st)
	}
	res, err = f.c.Fetch(context.Background(), FetchRequest{GroupID: "g", MemberID: "b", Partitions: []TopicPartition{tp}, MaxRecords: 100, MaxBytes: 1 << 20})
	if err != nil || len(res) != 1 || res[0].Err != nil {
		t.Fatalf("the new group's fetch: %v %+v", err, res)
	}
	if got := res[0].Acquired; len(got) != 1 || got[0].FirstOffset != 0 || got[0].LastOffset != 9 || got[0].DeliveryCount != 1 {
		t.Fatalf("the new group acquired %+v, want 0-9 in a first delivery", got)
	}
}

// TestShareStaleCopyOfADeletedTopicNotWritten: a member holds records of
// a topic's partition when the topic is deleted and created again under
// its name. The leader's copy of the deleted topic's share partition
// stays cached by name until the partition's next fetch; a release
// before that (the member's session closes) must not write it: the
// persister names the topic, so the write would land on the new topic's
// state. The share coordinator fences it only while the new state is
// unread; once the new topic's leader (elsewhere, in the same leader
// epoch 0) read it, the old start offset and batches would be taken.
// memPersister fences no epoch, as the coordinator then does not.
func TestShareStaleCopyOfADeletedTopicNotWritten(t *testing.T) {
	f := newFixture(t)
	f.c.opts.Config.AutoOffsetResetEarliest = true
	f.createTopic("t", 1)
	f.produce("t", 0, 10)
	f.heartbeat("g", sharegroup.Heartbeat{MemberID: "a", SubscribedTopicNames: []string{"t"}})
	if got := f.fetch("g", "a", 0); got != 10 {
		t.Fatalf("acquired %d records, want 10", got)
	}
	old, _ := f.image().Topic("t")
	f.mu.Lock()
	f.topicID++
	id := metadata.UUID{0: 0x5e, 15: f.topicID}
	f.mu.Unlock()
	f.apply([]metadata.Record{&metadata.RemoveTopic{TopicID: old.ID}, &metadata.Topic{Name: "t", ID: id},
		&metadata.Partition{TopicID: id, Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}})
	// The share coordinator tombstoned the old state; the group's
	// coordinator initialized the new topic's.
	ctx := context.Background()
	if err := f.persister.DeleteState(ctx, "g", "t", 0); err != nil {
		t.Fatal(err)
	}
	if err := f.persister.InitializeState(ctx, "g", "t", 0, 0, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Fetch(ctx, FetchRequest{GroupID: "g", MemberID: "a", SessionEpoch: -1}); err != nil {
		t.Fatalf("closing the session: %v", err)
	}
	if st := f.persister.state("g", "t", 0); st.StartOffset != -1 || len(st.Batches) != 0 {
		t.Fatalf("the new topic's state %+v after the release, want it untouched (no start offset, no batches)", st)
	}
}
