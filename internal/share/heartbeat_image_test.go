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
