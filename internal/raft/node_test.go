package raft

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/vfs"
)

const testTimeout = 5 * time.Second

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	require(t, err)
	return ln
}

// checkpoints lists the snapshot files in a quorum directory.
func checkpoints(t testing.TB, fs vfs.FS, dir string) []snapshotFile {
	t.Helper()
	files, err := listSnapshots(fs, dir)
	require(t, err)
	return files
}

// TestRaftQuorumOfOneRestart proposes to a quorum of one (on the manual clock:
// it needs no election timeout), stops it, and restarts it from the same
// directory: the state machine comes back identical from the snapshot and
// the log after it. Then the same after a crash of the file system: every
// acknowledged entry survives.
func TestRaftQuorumOfOneRestart(t *testing.T) {
	fs := vfs.NewMem()
	clk := clock.NewManual(time.Unix(1_700_000_000, 0))
	cfg := Config{
		NodeID: 1, Voters: map[uint64]string{1: "127.0.0.1:0"}, Dir: "/meta", FS: fs, Clock: clk,
		SnapshotEntries: 7, SegmentBytes: 1024, ListenAddr: "127.0.0.1:0", Logger: testLogger(),
	}
	ctx := testContext(t)
	sm := &listMachine{}
	n, err := Start(cfg, sm)
	require(t, err)
	want := proposeConcurrently(t, n, 60, 20)
	sm.check(t)
	if got := sm.list(); !slices.Equal(got, want) {
		t.Fatalf("applied %v\nwant %v", got, want)
	}
	if !n.IsLeader() || n.Leader() != 1 {
		t.Fatalf("leader %d, is leader %v", n.Leader(), n.IsLeader())
	}
	applied := n.AppliedIndex()
	require(t, n.Stop())
	if files := checkpoints(t, fs, "/meta"); len(files) != 2 || files[1].index < applied-7 {
		t.Fatalf("checkpoints %v after %d applied", files, applied)
	}
	if segments, _ := fs.List("/meta/" + logDirName); slices.Contains(segments, "00000000000000000000.log") {
		t.Fatalf("log not compacted: %v", segments)
	}

	restarted := func(what string) *listMachine {
		sm := &listMachine{}
		n, err := Start(cfg, sm)
		require(t, err)
		defer n.Stop()
		require(t, n.WaitApplied(ctx, applied))
		sm.check(t)
		if got := sm.list(); !slices.Equal(got, want) {
			t.Fatalf("%s: applied %v\nwant %v", what, got, want)
		}
		if len(sm.restoredFrom()) == 0 {
			t.Fatalf("%s: not restored from a snapshot", what)
		}
		// It still takes proposals.
		index, err := n.Propose(ctx, []byte("after-"+what))
		require(t, err)
		want = append(want, appliedEntry{index, "after-" + what})
		applied = index
		if what == "crash" {
			n.Kill()
			fs.Crash(rand.New(rand.NewPCG(1, 2)))
		}
		return sm
	}
	restarted("stop")
	restarted("crash")
	restarted("after crash")
}

// proposeConcurrently proposes count entries from the given number of
// goroutines, which share Readies; each learns its own index. It returns
// the entries in index order.
func proposeConcurrently(t *testing.T, n *Node, count, proposers int) []appliedEntry {
	ctx := testContext(t)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var want []appliedEntry
	for p := range proposers {
		wg.Go(func() {
			for i := p; i < count; i += proposers {
				data := fmt.Sprintf("entry-%d", i)
				index, err := n.Propose(ctx, []byte(data))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				want = append(want, appliedEntry{index, data})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.SortFunc(want, func(a, b appliedEntry) int { return cmp.Compare(a.index, b.index) })
	return want
}

// TestRaftNodeDiskFailure fails an fsync under a quorum of one: the node
// stops with the error instead of acknowledging, and restarts from disk.
func TestRaftNodeDiskFailure(t *testing.T) {
	mem := vfs.NewMem()
	efs := vfs.NewErrorFS(mem)
	cfg := Config{
		NodeID: 1, Voters: map[uint64]string{1: "127.0.0.1:0"}, Dir: "/meta", FS: efs,
		ListenAddr: "127.0.0.1:0", Logger: testLogger(),
	}
	n, err := Start(cfg, &listMachine{})
	require(t, err)
	ctx := testContext(t)
	index, err := n.Propose(ctx, []byte("kept"))
	require(t, err)
	efs.Inject(vfs.Rule{Op: vfs.OpSync, Count: -1})
	if _, err := n.Propose(ctx, []byte("lost")); !errors.Is(err, ErrStopped) || !errors.Is(err, vfs.ErrInjected) {
		t.Fatalf("propose with failing fsync: %v", err)
	}
	<-n.Done()
	if !errors.Is(n.Err(), vfs.ErrInjected) {
		t.Fatalf("node error: %v", n.Err())
	}
	n.Kill()
	efs.Clear()
	mem.Crash(rand.New(rand.NewPCG(3, 3)))
	sm := &listMachine{}
	n, err = Start(cfg, sm)
	require(t, err)
	defer n.Stop()
	require(t, n.WaitApplied(ctx, index))
	if got := sm.list(); len(got) == 0 || got[0] != (appliedEntry{index, "kept"}) {
		t.Fatalf("after restart: %v", got)
	}
}

// cluster is n voters in-process on loopback, each on its own MemFS.
type cluster struct {
	t     *testing.T
	addrs map[uint64]string
	fss   map[uint64]*vfs.MemFS
	sms   map[uint64]*listMachine
	nodes map[uint64]*Node
	cfg   Config
}

func newCluster(t *testing.T, size int, cfg Config) *cluster {
	c := &cluster{t: t, addrs: map[uint64]string{}, fss: map[uint64]*vfs.MemFS{}, sms: map[uint64]*listMachine{}, nodes: map[uint64]*Node{}, cfg: cfg}
	listeners := map[uint64]net.Listener{}
	for id := uint64(1); id <= uint64(size); id++ {
		listeners[id] = listen(t, "127.0.0.1:0")
		c.addrs[id] = listeners[id].Addr().String()
		c.fss[id] = vfs.NewMem()
	}
	for id, ln := range listeners {
		c.start(id, ln)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.Stop()
		}
	})
	return c
}

func (c *cluster) start(id uint64, ln net.Listener) {
	cfg := c.cfg
	cfg.NodeID, cfg.Voters, cfg.Dir, cfg.FS, cfg.Listener = id, c.addrs, "/meta", c.fss[id], ln
	c.sms[id] = &listMachine{}
	n, err := Start(cfg, c.sms[id])
	require(c.t, err)
	c.nodes[id] = n
}

// leader waits until the live nodes agree on one leader among them.
func (c *cluster) leader() uint64 {
	var leader uint64
	eventually(c.t, testTimeout, "a leader", func() bool {
		leader = 0
		for _, n := range c.nodes {
			if l := n.Leader(); l == 0 || leader != 0 && l != leader || c.nodes[l] == nil {
				return false
			} else {
				leader = l
			}
		}
		return c.nodes[leader].IsLeader()
	})
	return leader
}

func (c *cluster) follower(leader uint64) uint64 {
	for id := range c.nodes {
		if id != leader {
			return id
		}
	}
	c.t.Fatal("no follower")
	return 0
}

// converged waits until every live node applied at least index, then checks
// their state machines are identical.
func (c *cluster) converged(index uint64) []appliedEntry {
	eventually(c.t, testTimeout, fmt.Sprintf("every node to apply %d", index), func() bool {
		for _, n := range c.nodes {
			if n.AppliedIndex() < index {
				return false
			}
		}
		return true
	})
	var first []appliedEntry
	for id, sm := range c.sms {
		if c.nodes[id] == nil {
			continue
		}
		sm.check(c.t)
		got := sm.list()
		for len(got) > 0 && got[len(got)-1].index > index {
			got = got[:len(got)-1]
		}
		if first == nil {
			first = got
		} else if !slices.Equal(got, first) {
			c.t.Fatalf("node %d applied %v\nanother applied %v", id, got, first)
		}
	}
	return first
}

// proposeAll proposes count entries one after the other, retrying those
// that certainly did not commit (a leader change under a slow machine).
func proposeAll(t testing.TB, n *Node, prefix string, count int) (last uint64, acked []string) {
	ctx := testContext(t)
	for i := range count {
		data := fmt.Sprintf("%s-%d", prefix, i)
		index, err := n.Propose(ctx, []byte(data))
		for errors.Is(err, ErrProposalDropped) || errors.Is(err, ErrProposalLost) {
			index, err = n.Propose(ctx, []byte(data))
		}
		require(t, err)
		last, acked = index, append(acked, data)
	}
	return last, acked
}

func containsAll(t testing.TB, applied []appliedEntry, acked []string) {
	t.Helper()
	seen := map[string]int{}
	for _, e := range applied {
		seen[e.data]++
	}
	for _, data := range acked {
		if seen[data] != 1 {
			t.Fatalf("acknowledged %q applied %d times", data, seen[data])
		}
	}
}

// TestRaftThreeNodes runs three voters on loopback: proposals through a
// follower are forwarded; killing the leader elects another and proposals
// go on; the killed node, restarted after its disk lost unsynced data and
// after the leader compacted its log, catches up through a snapshot.
func TestRaftThreeNodes(t *testing.T) {
	c := newCluster(t, 3, Config{
		TickInterval: 10 * time.Millisecond, SnapshotEntries: 5, SegmentBytes: 1024, Logger: testLogger(),
	})
	leader := c.leader()
	follower := c.follower(leader)
	last, acked := proposeAll(t, c.nodes[follower], "via-follower", 10)
	lastLeader, more := proposeAll(t, c.nodes[leader], "via-leader", 5)
	acked = append(acked, more...)
	containsAll(t, c.converged(max(last, lastLeader)), acked)

	// Kill the leader; the others elect a new one and carry on.
	killedApplied := c.nodes[leader].AppliedIndex()
	c.nodes[leader].Kill()
	delete(c.nodes, leader)
	killed := leader
	leader = c.leader()
	if leader == killed {
		t.Fatal("the killed node still leads")
	}
	_, more = proposeAll(t, c.nodes[c.follower(leader)], "after-kill-follower", 15)
	acked = append(acked, more...)
	last, more = proposeAll(t, c.nodes[leader], "after-kill-leader", 15)
	acked = append(acked, more...)
	containsAll(t, c.converged(last), acked)
	eventually(t, testTimeout, "the leader to compact past the killed node", func() bool {
		files := checkpoints(t, c.fss[leader], "/meta")
		return len(files) > 0 && files[0].index > killedApplied+1
	})

	// Restart the killed node on the same address after a crash of its
	// disk: it must catch up, and can only do so through a snapshot.
	c.fss[killed].Crash(rand.New(rand.NewPCG(uint64(killed), 0)))
	c.start(killed, listen(t, c.addrs[killed]))
	applied := c.converged(last)
	containsAll(t, applied, acked)
	if r := c.sms[killed].restoredFrom(); len(r) == 0 || r[len(r)-1] <= killedApplied {
		t.Fatalf("restarted node restored from %v, applied %d before", r, killedApplied)
	}
	last, more = proposeAll(t, c.nodes[killed], "after-restart", 5)
	acked = append(acked, more...)
	containsAll(t, c.converged(last), acked)
}

// TestRaftLearner adds a learner to a quorum of one: it asks to join,
// follows the log, and its proposals are forwarded to the leader.
func TestRaftLearner(t *testing.T) {
	voterLn, learnerLn := listen(t, "127.0.0.1:0"), listen(t, "127.0.0.1:0")
	voters := map[uint64]string{1: voterLn.Addr().String()}
	base := Config{Voters: voters, Dir: "/meta", TickInterval: 10 * time.Millisecond, Logger: testLogger()}
	voterCfg, learnerCfg := base, base
	voterCfg.NodeID, voterCfg.FS, voterCfg.Listener = 1, vfs.NewMem(), voterLn
	learnerCfg.NodeID, learnerCfg.FS, learnerCfg.Listener, learnerCfg.Learner = 2, vfs.NewMem(), learnerLn, true
	voterSM, learnerSM := &listMachine{}, &listMachine{}
	voter, err := Start(voterCfg, voterSM)
	require(t, err)
	defer voter.Stop()
	learner, err := Start(learnerCfg, learnerSM)
	require(t, err)
	defer learner.Stop()

	ctx := testContext(t)
	_, err = voter.Propose(ctx, []byte("from-voter"))
	require(t, err)
	index, err := learner.Propose(ctx, []byte("from-learner"))
	require(t, err)
	require(t, voter.WaitApplied(ctx, index))
	if got, want := learnerSM.list(), voterSM.list(); !slices.Equal(got, want) || len(got) != 2 {
		t.Fatalf("learner applied %v, voter %v", got, want)
	}
	if learner.IsLeader() || learner.Leader() != 1 {
		t.Fatalf("learner sees leader %d", learner.Leader())
	}
}

// TestRaftProposeErrors covers what Propose refuses before and after a
// stop.
func TestRaftProposeErrors(t *testing.T) {
	n, err := Start(Config{
		NodeID: 1, Voters: map[uint64]string{1: "127.0.0.1:0"}, Dir: "/meta", FS: vfs.NewMem(),
		ListenAddr: "127.0.0.1:0", Logger: testLogger(),
	}, &listMachine{})
	require(t, err)
	ctx := testContext(t)
	if _, err := n.Propose(ctx, nil); !errors.Is(err, ErrEmptyProposal) {
		t.Fatalf("empty: %v", err)
	}
	if _, err := n.Propose(ctx, make([]byte, MaxProposalBytes+1)); !errors.Is(err, ErrProposalTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	require(t, n.Stop())
	if _, err := n.Propose(ctx, []byte("x")); !errors.Is(err, ErrStopped) {
		t.Fatalf("after stop: %v", err)
	}
	for _, bad := range []Config{
		{Voters: map[uint64]string{1: "a:1"}, Dir: "/d"},
		{NodeID: 2, Voters: map[uint64]string{1: "a:1"}, Dir: "/d"},
		{NodeID: 1, Voters: map[uint64]string{1: "a:1"}, Dir: "/d", Learner: true},
		{NodeID: 1, Voters: map[uint64]string{1: "a:1"}},
	} {
		if _, err := Start(bad, &listMachine{}); err == nil || !strings.HasPrefix(err.Error(), "quorum:") {
			t.Fatalf("config %+v: %v", bad, err)
		}
	}
}
