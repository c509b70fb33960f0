package share

import (
	"testing"

	"github.com/sluicelog/sluice/internal/coord/sharegroup"
	"github.com/sluicelog/sluice/internal/metadata"
)

// TestShareHeartbeatWithAnOlderImage: a ShareGroupHeartbeat brings the
// image its request read, and requests take the coordinator's lock in any
// order, so one may bring an image older than one an earlier heartbeat
// assigned from. The group must not go back to it: here the older image
// lacks a topic created since, and the heartbeat took that topic's
// partitions from the member (a new group epoch), to give them back at
// the next heartbeat.
func TestShareHeartbeatWithAnOlderImage(t *testing.T) {
	f := newFixture(t)
	f.createTopic("events", 2)
	older := f.image()
	f.createTopic("late", 2)
	newer := f.image()
	heartbeat := func(hb sharegroup.Heartbeat, img *metadata.Image) sharegroup.HeartbeatResult {
		t.Helper()
		res, err := f.c.Heartbeat("g", hb, img)
		if err != nil {
			t.Fatalf("heartbeat %+v: %v", hb, err)
		}
		return res
	}
	joined := heartbeat(sharegroup.Heartbeat{MemberID: "m", SubscribedTopicNames: []string{"events", "late"}}, newer)
	if len(joined.Assignment["late"]) != 2 {
		t.Fatalf("joined: %+v, want both partitions of late", joined)
	}
	again := heartbeat(sharegroup.Heartbeat{MemberID: "m", MemberEpoch: joined.MemberEpoch}, older)
	if again.MemberEpoch != joined.MemberEpoch || again.Assignment != nil {
		t.Fatalf("a heartbeat with an older image: %+v, want epoch %d and no new assignment", again, joined.MemberEpoch)
	}
}

// TestShareHeartbeatTopicRecreated: a subscribed topic deleted and
// created again under its name, with as many partitions, between two
// heartbeats is another topic (a new id). The group must start a new
// epoch, so the member learns the new id with its assignment (it would
// go on fetching the deleted one) and the new share partitions get
// state; comparing partition counts by name alone sees no change.
func TestShareHeartbeatTopicRecreated(t *testing.T) {
	f := newFixture(t)
	f.createTopic("events", 2)
	joined := f.heartbeat("g", sharegroup.Heartbeat{MemberID: "m", SubscribedTopicNames: []string{"events"}})
	old, _ := f.image().Topic("events")
	f.mu.Lock()
	f.topicID++
	id := metadata.UUID{0: 0x5e, 15: f.topicID}
	f.mu.Unlock()
	f.apply([]metadata.Record{&metadata.RemoveTopic{TopicID: old.ID}, &metadata.Topic{Name: "events", ID: id},
		&metadata.Partition{TopicID: id, Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1},
		&metadata.Partition{TopicID: id, Partition: 1, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}})
	again := f.heartbeat("g", sharegroup.Heartbeat{MemberID: "m", MemberEpoch: joined.MemberEpoch})
	if again.MemberEpoch <= joined.MemberEpoch || len(again.Assignment["events"]) != 2 {
		t.Fatalf("after events was re-created: %+v, want an epoch above %d with both partitions of the new topic", again, joined.MemberEpoch)
	}
}
