package kraft

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/raft"
)

// TestKRaftQuorumStatus reads the quorum's status from the leader
// of three controllers, which knows every voter's progress, and from a
// follower, which knows only its own log and who leads.
func TestKRaftQuorumStatus(t *testing.T) {
	c := newCluster(t, 3, Options{})
	registerBrokers(t, c.nodes[c.leader()], 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	leaderID := c.leader()
	leader := c.nodes[leaderID]
	var st QuorumStatus
	deadline := time.Now().Add(10 * time.Second)
	for caughtUp := false; !caughtUp; {
		var err error
		if st, err = leader.QuorumStatus(ctx); err != nil {
			t.Fatal(err)
		}
		caughtUp = len(st.Voters) == 3
		for _, v := range st.Voters {
			caughtUp = caughtUp && v.LogEndOffset >= st.HighWatermark && v.LastCaughtUpMs > 0 && v.LastFetchMs > 0
		}
		if !caughtUp && time.Now().After(deadline) {
			t.Fatalf("leader status never showed the voters caught up: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !st.IsLeader || st.LeaderID != leaderID || st.LeaderEpoch <= 0 || st.HighWatermark < leader.Image().Offset() ||
		len(st.Observers) != 0 || !reflect.DeepEqual(st.VoterAddresses, c.voters) {
		t.Fatalf("leader status %+v", st)
	}

	followerID := c.follower()
	fs, err := c.nodes[followerID].QuorumStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fs.IsLeader || fs.LeaderID != leaderID || fs.NodeID != followerID || len(fs.Voters) != 3 {
		t.Fatalf("follower status %+v", fs)
	}
	for _, v := range fs.Voters {
		known := v.LogEndOffset >= 0
		if known != (v.NodeID == followerID) || v.LastFetchMs != -1 || v.LastCaughtUpMs != -1 {
			t.Errorf("follower reports voter %+v: only its own log end offset is known", v)
		}
	}
}

// TestKRaftQuorumStatusOffsets pins the conversion from Raft
// indexes to Kafka's exclusive offsets and -1 for what is unknown.
func TestKRaftQuorumStatusOffsets(t *testing.T) {
	st := raft.Status{NodeID: 1, Term: 4, Leader: 1, IsLeader: true, CommitIndex: 10, LastIndex: 12,
		Voters: []uint64{1, 2}, Learners: []uint64{5},
		Progress: map[uint64]raft.MemberProgress{
			1: {Match: 11, LastHeardMs: 900, LastCaughtUpMs: 900},
			2: {Match: 9, LastHeardMs: 800, LastCaughtUpMs: -1},
		}}
	got := quorumStatus(st, map[int32]string{1: "a:1", 2: "b:2"})
	want := QuorumStatus{NodeID: 1, LeaderID: 1, LeaderEpoch: 4, HighWatermark: 10, IsLeader: true,
		Voters: []QuorumMember{{1, 12, 900, 900}, {2, 9, 800, -1}},
		// The learner has not been heard from since this node leads.
		Observers:      []QuorumMember{{5, -1, -1, -1}},
		VoterAddresses: map[int32]string{1: "a:1", 2: "b:2"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	none := quorumStatus(raft.Status{NodeID: 2, Term: 4, LastIndex: 3, Voters: []uint64{1, 2}}, nil)
	if none.LeaderID != -1 || none.Voters[0].LogEndOffset != -1 || none.Voters[1].LogEndOffset != 3 {
		t.Fatalf("without a leader: %+v", none)
	}
}
