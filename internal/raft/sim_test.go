package raft

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"testing"
	"time"

	etcdraft "go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/vfs"
)

// The simulation drives whole members (core, Storage on a crash-simulating
// MemFS, a state machine) in one goroutine, over an in-memory network that
// drops, delays and reorders frames and can be partitioned, on a manual
// clock, from one seed. Named invariants are checked as it runs and at the
// end.
//
// One thing the seed does not fix: etcd Raft draws its randomized election
// timeouts from crypto/rand, so elections may go differently on a rerun.
// The workload and the faults replay exactly.

const (
	simRoundsPerTick  = 4 // network delivery rounds per Raft tick
	simMaxDelayRounds = 6 // a frame arrives 1..this many rounds after it is sent
	simDropRate       = 0.05
	simProposalTicks  = 200 // a proposer gives up after this many ticks
	simHealTicks      = 3000
	simTickInterval   = 100 * time.Millisecond
)

// simFrame is a frame in flight: a payload encoded as on the wire, or a
// transport report for the sender.
type simFrame struct {
	at, seq          uint64 // delivery round; send order
	from, to         uint64
	toIncarnation    int // for reports: only that incarnation hears it
	kind             byte
	payload          []byte
	report           bool
	unreachable      bool
	snapshotStatus   etcdraft.SnapshotStatus
	hasSnapshotState bool
}

type simNode struct {
	id          uint64
	learner     bool
	fs          *vfs.MemFS
	efs         *vfs.ErrorFS // over fs: injects a write or sync failure
	sm          *simMachine
	core        *core // nil while down
	incarnation int
	downUntil   uint64 // tick
}

// simMachine checks every entry it applies or restores against the one
// history of the cluster: an index means the same entry everywhere.
type simMachine struct {
	listMachine
	s *sim
}

func (m *simMachine) Apply(index uint64, data []byte) error {
	m.s.checkHistory(index, string(data))
	return m.listMachine.Apply(index, data)
}

func (m *simMachine) Restore(index uint64, data []byte) error {
	if err := m.listMachine.Restore(index, data); err != nil {
		return err
	}
	for _, e := range m.list() {
		m.s.checkHistory(e.index, e.data)
	}
	return nil
}

type simProposal struct {
	data  string
	index uint64
	done  bool
	err   error
}

type sim struct {
	t     *testing.T
	seed  uint64
	rng   *rand.Rand
	clock *clock.Manual
	nodes []*simNode

	frames    []simFrame
	round     uint64
	tick      uint64
	seq       uint64
	group     map[uint64]int // partition: nodes talk only within a group
	healAt    uint64
	dropRate  float64
	history   map[uint64]string // index -> data, as first applied anywhere
	leaders   map[uint64]uint64 // term -> the one leader of that term
	proposals []*simProposal
	stats     struct{ crashes, diskFailures, partitions, snapshotsSent, delivered, dropped int }
}

func newSim(t *testing.T, seed uint64, voters, learners int) *sim {
	s := &sim{
		t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)),
		clock: clock.NewManual(time.Unix(1_700_000_000, 0)),
		group: map[uint64]int{}, dropRate: simDropRate,
		history: map[uint64]string{}, leaders: map[uint64]uint64{},
	}
	for i := range voters + learners {
		n := &simNode{id: uint64(i + 1), learner: i >= voters, fs: vfs.NewMem()}
		n.efs = vfs.NewErrorFS(n.fs)
		s.nodes = append(s.nodes, n)
	}
	for _, n := range s.nodes {
		s.start(n)
	}
	return s
}

func (s *sim) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("seed %d, tick %d: %s\nreplay: SLUICE_SIM_SEED=%d go test -run TestRaftSimulation ./internal/raft/",
		s.seed, s.tick, fmt.Sprintf(format, args...), s.seed)
}

func (s *sim) voters() []uint64 {
	var ids []uint64
	for _, n := range s.nodes {
		if !n.learner {
			ids = append(ids, n.id)
		}
	}
	return ids
}

// start opens a node's storage from its disk, as a process start would.
func (s *sim) start(n *simNode) {
	n.incarnation++
	n.sm = &simMachine{s: s}
	storage, err := OpenStorage(StorageOptions{
		FS: n.efs, Dir: "/meta", Clock: s.clock, Logger: testLogger(), SegmentBytes: 2048,
		InitialConfState: &raftpb.ConfState{Voters: s.voters()},
	})
	if err != nil {
		s.fatalf("node %d does not recover: %v", n.id, err)
	}
	c, err := newCore(coreConfig{
		id: n.id, learner: n.learner, electionTicks: 10, heartbeatTicks: 1, snapshotEntries: 25,
		requestIDBase: uint64(n.incarnation) << 40, logger: testLogger(),
	}, storage, n.sm, &simSender{s: s, from: n.id})
	if err != nil {
		s.fatalf("node %d does not start: %v", n.id, err)
	}
	n.core = c
	s.process(n)
}

// crash throws a node away mid-flight and keeps of its disk only what a
// power cut would.
func (s *sim) crash(n *simNode) {
	s.stats.crashes++
	n.core = nil
	n.efs.Clear()
	n.fs.Crash(s.rng)
	n.downUntil = s.tick + 10 + uint64(s.rng.IntN(100))
}

func (s *sim) process(n *simNode) {
	injected := n.efs.Injected()
	if err := n.core.process(); err != nil {
		if n.efs.Injected() == injected {
			s.fatalf("node %d: %v", n.id, err)
		}
		// The injected failure stopped the node, as it stops a Node: the
		// process dies and restarts from what its disk kept.
		s.stats.diskFailures++
		s.crash(n)
		return
	}
	n.sm.check(s.t)
	if n.core.state == etcdraft.StateLeader {
		term := n.core.rn.BasicStatus().GetTerm()
		if other, ok := s.leaders[term]; ok && other != n.id {
			s.fatalf("election safety: nodes %d and %d both lead term %d", other, n.id, term)
		}
		s.leaders[term] = n.id
	}
}

// checkHistory is state machine safety: no two members apply different
// entries at one index.
func (s *sim) checkHistory(index uint64, data string) {
	if prev, ok := s.history[index]; ok && prev != data {
		s.fatalf("state machine safety: index %d is %q on one node, %q on another", index, prev, data)
	}
	s.history[index] = data
}

// simSender is a node's transport: frames go into the network encoded as
// they would be on the wire.
type simSender struct {
	s    *sim
	from uint64
}

func (x *simSender) Send(msgs []*raftpb.Message) {
	for _, m := range msgs {
		b, err := proto.Marshal(m)
		if err != nil {
			x.s.fatalf("marshal: %v", err)
		}
		x.s.send(simFrame{from: x.from, to: m.GetTo(), kind: kindRaft, payload: b}, m.GetType() == raftpb.MsgSnap)
	}
}

func (x *simSender) SendProposal(to uint64, p ForwardedProposal) {
	x.s.send(simFrame{from: x.from, to: to, kind: kindProposal, payload: encodeProposal(p)}, false)
}

func (x *simSender) SendReply(to uint64, r ProposalReply) {
	x.s.send(simFrame{from: x.from, to: to, kind: kindReply, payload: encodeReply(r)}, false)
}

func (s *sim) node(id uint64) *simNode {
	if id == 0 || id > uint64(len(s.nodes)) {
		return nil
	}
	return s.nodes[id-1]
}

func (s *sim) connected(a, b uint64) bool { return s.group[a] == s.group[b] }

// send puts a frame in flight, or drops it (and, for a Raft message, tells
// the sender next round, as a real transport would).
func (s *sim) send(f simFrame, snapshot bool) {
	if snapshot {
		s.stats.snapshotsSent++
	}
	if !s.connected(f.from, f.to) || s.rng.Float64() < s.dropRate || s.node(f.to) == nil {
		s.stats.dropped++
		if f.kind == kindRaft {
			s.report(f.from, f.to, snapshot, etcdraft.SnapshotFailure)
		}
		return
	}
	s.seq++
	f.at, f.seq = s.round+1+uint64(s.rng.IntN(simMaxDelayRounds)), s.seq
	f.hasSnapshotState = snapshot
	s.frames = append(s.frames, f)
}

// report queues a transport report for the sender's current incarnation.
func (s *sim) report(from, peer uint64, snapshot bool, status etcdraft.SnapshotStatus) {
	n := s.node(from)
	s.seq++
	s.frames = append(s.frames, simFrame{
		at: s.round + 1, seq: s.seq, from: peer, to: from, toIncarnation: n.incarnation, report: true,
		unreachable: status == etcdraft.SnapshotFailure, snapshotStatus: status, hasSnapshotState: snapshot,
	})
}

// deliverRound delivers every frame due this round, in send order among
// those due (delays already reordered them).
func (s *sim) deliverRound() {
	s.round++
	var due []simFrame
	rest := s.frames[:0]
	for _, f := range s.frames {
		if f.at <= s.round {
			due = append(due, f)
		} else {
			rest = append(rest, f)
		}
	}
	s.frames = rest
	slices.SortFunc(due, func(a, b simFrame) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.seq, b.seq)) })
	for _, f := range due {
		s.deliver(f)
	}
}

func (s *sim) deliver(f simFrame) {
	n := s.node(f.to)
	if f.report && (n.core == nil || n.incarnation != f.toIncarnation) {
		return
	}
	if f.report {
		if f.hasSnapshotState {
			n.core.reportSnapshot(f.from, f.snapshotStatus)
		}
		if f.unreachable {
			n.core.reportUnreachable(f.from)
		}
		s.process(n)
		return
	}
	if n.core == nil || !s.connected(f.from, f.to) {
		if f.kind == kindRaft {
			s.report(f.from, f.to, f.hasSnapshotState, etcdraft.SnapshotFailure)
		}
		return
	}
	s.stats.delivered++
	v, err := decodeFrame(f.kind, f.payload)
	if err != nil {
		s.fatalf("decode frame: %v", err)
	}
	switch v := v.(type) {
	case *raftpb.Message:
		n.core.step(v)
		if f.hasSnapshotState {
			s.report(f.from, f.to, true, etcdraft.SnapshotFinish)
		}
	case ForwardedProposal:
		n.core.receiveProposal(f.from, v)
	case ProposalReply:
		n.core.receiveReply(f.from, v)
	}
	s.process(n)
}

// checkPrefixes is the applied-sequence invariant: every member's applied
// entries are a prefix of the longest.
func (s *sim) checkPrefixes() {
	var longest []appliedEntry
	var longestID uint64
	for _, n := range s.nodes {
		if n.core == nil {
			continue
		}
		got := n.sm.list()
		short, long := got, longest
		if len(got) > len(longest) {
			short, long = longest, got
		}
		if !slices.Equal(short, long[:len(short)]) {
			s.fatalf("applied prefix: node %d applied %v\nnode %d applied %v", n.id, got, longestID, longest)
		}
		if len(got) > len(longest) {
			longest, longestID = got, n.id
		}
	}
}

// runTick runs one tick's delivery rounds, then ticks every live node.
func (s *sim) runTick() {
	for range simRoundsPerTick {
		s.deliverRound()
	}
	s.tick++
	s.clock.Advance(simTickInterval)
	for _, n := range s.nodes {
		if n.core != nil {
			n.core.tick()
			s.process(n)
		}
	}
}

// propose submits a proposal on a node and records how it ends.
func (s *sim) propose(n *simNode) *simProposal {
	p := &simProposal{data: fmt.Sprintf("p%d", len(s.proposals))}
	s.proposals = append(s.proposals, p)
	deadline := s.tick + simProposalTicks
	n.core.propose(&proposal{
		data: []byte(p.data),
		done: func(index uint64, err error) {
			if p.done {
				s.fatalf("proposal %s completed twice", p.data)
			}
			p.done, p.index, p.err = true, index, err
		},
		expired: func() bool { return s.tick > deadline },
	})
	s.process(n)
	return p
}

// pick draws a node among those still up.
func (s *sim) pick(nodes []*simNode) *simNode {
	if len(nodes) == 0 {
		return nil
	}
	if n := nodes[s.rng.IntN(len(nodes))]; n.core != nil {
		return n
	}
	return nil
}

// chaos applies this tick's random workload and faults.
func (s *sim) chaos() {
	live := slices.DeleteFunc(slices.Clone(s.nodes), func(n *simNode) bool { return n.core == nil })
	for _, n := range s.nodes {
		if n.core == nil && s.tick >= n.downUntil {
			s.start(n)
		}
	}
	if len(live) > 0 && s.rng.Float64() < 0.4 {
		for range 1 + s.rng.IntN(3) {
			if n := live[s.rng.IntN(len(live))]; n.core != nil { // a disk failure may have stopped it
				s.propose(n)
			}
		}
	}
	if n := s.pick(live); n != nil && s.rng.Float64() < 0.01 {
		s.crash(n)
	}
	if n := s.pick(live); n != nil && s.rng.Float64() < 0.005 {
		// A write-side failure somewhere in the next few operations.
		ops := []vfs.Op{vfs.OpWrite, vfs.OpSync, vfs.OpSyncDir, vfs.OpRename, vfs.OpCreate, vfs.OpTruncate}
		n.efs.Inject(vfs.Rule{Op: ops[s.rng.IntN(len(ops))], After: s.rng.IntN(20)})
	}
	switch {
	case s.healAt != 0 && s.tick >= s.healAt:
		clear(s.group)
		s.healAt = 0
	case s.healAt == 0 && s.rng.Float64() < 0.01:
		s.stats.partitions++
		for _, n := range s.nodes {
			s.group[n.id] = s.rng.IntN(2)
		}
		s.healAt = s.tick + 20 + uint64(s.rng.IntN(150))
	}
}

// heal ends every fault and runs until all members applied one last entry
// proposed to the leader; then every acknowledged proposal must be at its
// index on every member, and the members' state machines identical.
func (s *sim) heal() {
	clear(s.group)
	s.dropRate = 0
	for _, n := range s.nodes {
		n.efs.Clear()
		if n.core == nil {
			s.start(n)
		}
	}
	var barrier *simProposal
	for start := s.tick; ; s.runTick() {
		if s.tick-start > simHealTicks {
			s.fatalf("liveness: no convergence %d ticks after healing", simHealTicks)
		}
		if barrier == nil || barrier.done && barrier.err != nil {
			if leader := s.leader(); leader != nil {
				barrier = s.propose(leader)
			}
			continue
		}
		if barrier.done && s.allApplied(barrier.index) {
			break
		}
	}
	s.checkFinal()
}

func (s *sim) leader() *simNode {
	for _, n := range s.nodes {
		if n.core.state == etcdraft.StateLeader {
			return n
		}
	}
	return nil
}

func (s *sim) allApplied(index uint64) bool {
	for _, n := range s.nodes {
		if n.core.applied < index {
			return false
		}
	}
	return true
}

func (s *sim) checkFinal() {
	want := s.nodes[0].sm.list()
	for _, n := range s.nodes[1:] {
		got := n.sm.list()
		k := min(len(got), len(want))
		if !slices.Equal(got[:k], want[:k]) {
			s.fatalf("convergence: node %d applied %v\nnode 1 applied %v", n.id, got, want)
		}
		if len(got) > len(want) {
			want = got
		}
	}
	at := map[uint64]string{}
	for _, e := range want {
		at[e.index] = e.data
	}
	acked := 0
	for _, p := range s.proposals {
		if p.done && p.err == nil {
			acked++
			if at[p.index] != p.data {
				s.fatalf("durability: acknowledged %s at index %d, but the index holds %q", p.data, p.index, at[p.index])
			}
		}
	}
	s.t.Logf("seed %d: %d ticks, %d proposals, %d acknowledged, %d applied, %d terms, %d crashes (%d disk failures), %d partitions, %d snapshots sent, %d frames delivered, %d dropped",
		s.seed, s.tick, len(s.proposals), acked, len(want), len(s.leaders), s.stats.crashes, s.stats.diskFailures, s.stats.partitions, s.stats.snapshotsSent, s.stats.delivered, s.stats.dropped)
}

// TestRaftSimulation runs seeded simulations of three voters and a
// learner under drops, delays, partitions and crashes. SLUICE_SIM_SEED
// replays one seed; SLUICE_LONG_TESTS=1 runs many more, longer.
func TestRaftSimulation(t *testing.T) {
	seeds, ticks := []uint64{1, 2, 3, 4, 5, 6}, 3000
	if os.Getenv("SLUICE_LONG_TESTS") != "" {
		seeds, ticks = nil, 6000
		base := uint64(time.Now().UnixNano())
		for i := range uint64(40) {
			seeds = append(seeds, base+i)
		}
	}
	if v := os.Getenv("SLUICE_SIM_SEED"); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		require(t, err)
		seeds = []uint64{seed}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			var s *sim
			defer func() {
				if r := recover(); r != nil {
					tick := uint64(0)
					if s != nil {
						tick = s.tick
					}
					t.Fatalf("seed %d, tick %d: panic: %v\n%s\nreplay: SLUICE_SIM_SEED=%d go test -run TestRaftSimulation ./internal/raft/", seed, tick, r, debug.Stack(), seed)
				}
			}()
			s = newSim(t, seed, 3, 1)
			for i := range ticks {
				s.chaos()
				s.runTick()
				if i%100 == 0 {
					s.checkPrefixes()
				}
			}
			s.heal()
		})
	}
}
