package raft

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/vfs"
)

// TestRaftStatus reads the status of a voter that leads and of a learner
// following it: both see the same term, leader and membership; only the
// leader knows each member's progress and when it last heard from it.
func TestRaftStatus(t *testing.T) {
	voterLn, learnerLn := listen(t, "127.0.0.1:0"), listen(t, "127.0.0.1:0")
	base := Config{Voters: map[uint64]string{1: voterLn.Addr().String()}, Dir: "/meta",
		TickInterval: 10 * time.Millisecond, Logger: testLogger()}
	voterCfg, learnerCfg := base, base
	voterCfg.NodeID, voterCfg.FS, voterCfg.Listener = 1, vfs.NewMem(), voterLn
	learnerCfg.NodeID, learnerCfg.FS, learnerCfg.Listener, learnerCfg.Learner = 2, vfs.NewMem(), learnerLn, true
	started := time.Now().UnixMilli()
	voter, err := Start(voterCfg, &listMachine{})
	require(t, err)
	defer voter.Stop()
	learner, err := Start(learnerCfg, &listMachine{})
	require(t, err)

	ctx := testContext(t)
	index, err := voter.Propose(ctx, []byte("x"))
	require(t, err)
	require(t, learner.WaitApplied(ctx, index))
	var lead Status
	eventually(t, testTimeout, "the leader to see the learner caught up", func() bool {
		lead, err = voter.Status(ctx)
		require(t, err)
		p, ok := lead.Progress[2]
		return ok && p.Match == lead.LastIndex && p.LastCaughtUpMs >= 0
	})
	now := time.Now().UnixMilli()
	if !lead.IsLeader || lead.Leader != 1 || lead.Term == 0 || lead.CommitIndex < index || lead.LastIndex < lead.CommitIndex ||
		!slices.Equal(lead.Voters, []uint64{1}) || !slices.Equal(lead.Learners, []uint64{2}) {
		t.Fatalf("leader status %+v", lead)
	}
	self, peer := lead.Progress[1], lead.Progress[2]
	if self.Match != lead.LastIndex || self.LastHeardMs < started || self.LastCaughtUpMs != self.LastHeardMs {
		t.Errorf("leader's own progress %+v", self)
	}
	// A tick's error either way: the times are counted in ticks.
	for _, ms := range []int64{peer.LastHeardMs, peer.LastCaughtUpMs} {
		if ms < started-10 || ms > now+10 {
			t.Errorf("learner's progress %+v: time outside [%d, %d]", peer, started, now)
		}
	}

	follow, err := learner.Status(ctx)
	require(t, err)
	if follow.IsLeader || follow.Leader != 1 || follow.Term != lead.Term || follow.Progress != nil ||
		follow.LastIndex < index || !slices.Equal(follow.Learners, []uint64{2}) {
		t.Fatalf("learner status %+v", follow)
	}
	require(t, learner.Stop())
	if _, err := learner.Status(ctx); !errors.Is(err, ErrStopped) {
		t.Fatalf("status after stop: %v", err)
	}
}
