package raft

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestRaftProposeAsLeader: an entry bound to a leader's term is appended
// only by that leader in that term; anywhere else it fails with
// ErrNotLeader and is not forwarded (Propose on a follower would be).
func TestRaftProposeAsLeader(t *testing.T) {
	c := newCluster(t, 3, Config{TickInterval: 10 * time.Millisecond, Logger: testLogger()})
	leader := c.leader()
	follower := c.follower(leader)
	ctx := testContext(t)
	term := c.nodes[leader].LeaderTerm()
	if term == 0 || c.nodes[follower].LeaderTerm() != 0 {
		t.Fatalf("leader term %d, follower term %d", term, c.nodes[follower].LeaderTerm())
	}
	for _, tc := range []struct {
		node uint64
		term uint64
	}{{follower, term}, {leader, term + 1}, {leader, term - 1}, {leader, 0}} {
		if _, err := c.nodes[tc.node].ProposeAsLeader(ctx, tc.term, []byte("refused")); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("node %d in term %d: %v, want ErrNotLeader", tc.node, tc.term, err)
		}
	}
	index, err := c.nodes[leader].ProposeAsLeader(ctx, term, []byte("accepted"))
	require(t, err)
	for _, e := range c.converged(index) {
		if e.data == "refused" {
			t.Fatalf("a refused entry was applied at %d", e.index)
		}
	}
}

// TestRaftForward: a follower's Forward reaches the leader's
// HandleForward and brings back its answer or its failure.
func TestRaftForward(t *testing.T) {
	handle := func(_ context.Context, payload []byte) ([]byte, error) {
		switch string(payload) {
		case "fail":
			return nil, errors.New("handler failed")
		case "moved":
			return nil, ErrNotLeader
		}
		return append([]byte("answer:"), payload...), nil
	}
	c := newCluster(t, 3, Config{TickInterval: 10 * time.Millisecond, Logger: testLogger(), HandleForward: handle})
	leader := c.leader()
	follower := c.nodes[c.follower(leader)]
	ctx := testContext(t)
	got, err := follower.Forward(ctx, []byte("q"))
	if err != nil || string(got) != "answer:q" {
		t.Fatalf("forward: %q, %v", got, err)
	}
	if _, err := follower.Forward(ctx, []byte("fail")); err == nil || !strings.Contains(err.Error(), "handler failed") {
		t.Fatalf("failing handler: %v", err)
	}
	if _, err := follower.Forward(ctx, []byte("moved")); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("handler no longer leading: %v, want ErrNotLeader", err)
	}
	if _, err := c.nodes[leader].Forward(ctx, []byte("q")); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("forward on the leader: %v, want ErrNotLeader", err)
	}
}
