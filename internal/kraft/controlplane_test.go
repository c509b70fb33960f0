package kraft

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/raft"
	"github.com/sluicelog/sluice/internal/vfs"
)

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// cluster is n controllers on loopback, each with its own directory.
type cluster struct {
	t      testing.TB
	dirs   map[int32]string
	voters map[int32]string
	nodes  map[int32]*ControlPlane
	opts   Options
}

func newCluster(t testing.TB, n int, opts Options) *cluster {
	c := &cluster{t: t, dirs: map[int32]string{}, voters: map[int32]string{}, nodes: map[int32]*ControlPlane{}, opts: opts}
	root := t.TempDir()
	for id := int32(1); id <= int32(n); id++ {
		c.voters[id] = freeAddr(t)
		c.dirs[id] = filepath.Join(root, fmt.Sprintf("node-%d", id))
	}
	for id := range c.voters {
		c.start(id)
	}
	t.Cleanup(func() {
		for _, cp := range c.nodes {
			cp.Kill()
		}
	})
	return c
}

func (c *cluster) start(id int32) {
	c.t.Helper()
	opts := c.opts
	opts.Quorum = QuorumConfig{NodeID: id, Roles: []Role{RoleBroker, RoleController}, Voters: c.voters,
		MetadataLogDir: c.dirs[id], ControllerListen: c.voters[id]}
	opts.FS, opts.Logger = vfs.OS(), quietLogger
	if opts.TickInterval == 0 {
		opts.TickInterval = 20 * time.Millisecond
	}
	cp, err := Start(opts)
	if err != nil {
		c.t.Fatalf("start node %d: %v", id, err)
	}
	c.nodes[id] = cp
}

func (c *cluster) kill(id int32) {
	c.nodes[id].Kill()
	delete(c.nodes, id)
}

// leader waits for an active controller among the running nodes.
func (c *cluster) leader() int32 {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for id, cp := range c.nodes {
			if cp.IsActive() {
				return id
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatal("no active controller elected within 20s")
	return -1
}

func (c *cluster) follower() int32 {
	leader := c.leader()
	for id := range c.nodes {
		if id != leader {
			return id
		}
	}
	c.t.Fatal("no follower")
	return -1
}

func submit(t testing.TB, cp *ControlPlane, cmd Command) any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := cp.Submit(ctx, cmd)
	if err != nil {
		t.Fatalf("submit %T: %v", cmd, err)
	}
	return resp
}

func registerBrokers(t testing.TB, cp *ControlPlane, ids ...int32) {
	t.Helper()
	for _, id := range ids {
		incarnation := metadata.UUID{byte(id), 1}
		reg := submit(t, cp, RegisterBroker{Request: controller.RegisterBrokerRequest{BrokerID: id, Incarnation: incarnation,
			Listeners: []metadata.Listener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: uint16(9000 + id), SecurityProtocol: "PLAINTEXT"}}}}).(controller.RegisterBrokerResponse)
		if reg.Err != nil {
			t.Fatalf("register broker %d: %v", id, reg.Err)
		}
		// Submit returned once the registration was in this node's image,
		// so the broker has caught up with it.
		hb := submit(t, cp, BrokerHeartbeat{Request: controller.BrokerHeartbeatRequest{BrokerID: id, BrokerEpoch: reg.BrokerEpoch,
			CurrentMetadataOffset: cp.Image().Offset()}}).(controller.BrokerHeartbeatResponse)
		if hb.Err != nil || hb.IsFenced {
			t.Fatalf("heartbeat broker %d: fenced=%v err=%v", id, hb.IsFenced, hb.Err)
		}
	}
}

func createTopics(t testing.TB, cp *ControlPlane, rf int16, names ...string) controller.CreateTopicsResponse {
	t.Helper()
	req := controller.CreateTopicsRequest{}
	for _, name := range names {
		req.Topics = append(req.Topics, controller.CreatableTopic{Name: name, NumPartitions: 3, ReplicationFactor: rf})
	}
	return submit(t, cp, CreateTopics{Request: req}).(controller.CreateTopicsResponse)
}

// sameImage compares two images by the records that rebuild them.
func sameImage(a, b *metadata.Image) bool { return reflect.DeepEqual(a.Records(), b.Records()) }

func TestKRaftQuorumOfOneSurvivesRestart(t *testing.T) {
	c := newCluster(t, 1, Options{SnapshotEntries: 5})
	cp := c.nodes[c.leader()]
	registerBrokers(t, cp, 1)
	for i := 0; i < 6; i++ {
		resp := createTopics(t, cp, 1, fmt.Sprintf("orders-%d", i))
		if err := resp.Topics[0].Err; err != nil {
			t.Fatalf("create orders-%d: %v", i, err)
		}
	}
	resp := createTopics(t, cp, 1, "orders-0")
	if !errors.Is(resp.Topics[0].Err, controller.ErrTopicExists) {
		t.Fatalf("duplicate topic: got %v, want ErrTopicExists", resp.Topics[0].Err)
	}
	before := cp.Image()
	if before.NumTopics() != 6 || before.NumPartitions() != 18 {
		t.Fatalf("image has %d topics, %d partitions; want 6, 18", before.NumTopics(), before.NumPartitions())
	}
	c.kill(1) // no graceful stop: replay must come from disk alone
	c.start(1)
	after, err := c.nodes[1].WaitForOffset(context.Background(), before.Offset())
	if err != nil {
		t.Fatal(err)
	}
	if !sameImage(before, after) {
		t.Fatalf("image after restart differs:\nbefore %v\nafter  %v", before.Records(), after.Records())
	}
}

func TestKRaftThreeControllers(t *testing.T) {
	c := newCluster(t, 3, Options{SnapshotEntries: 8})
	follower := c.nodes[c.follower()]
	registerBrokers(t, follower, 1, 2, 3)
	resp := createTopics(t, follower, 3, "payments") // forwarded to the leader
	if resp.Topics[0].Err != nil {
		t.Fatalf("create through a follower: %v", resp.Topics[0].Err)
	}
	if _, ok := follower.Image().Topic("payments"); !ok {
		t.Fatal("the follower's image lacks the topic it created")
	}
	bad := createTopics(t, follower, 4, "too-many-replicas")
	if !errors.Is(bad.Topics[0].Err, controller.ErrInvalidReplicationFactor) {
		t.Fatalf("RF above brokers through a follower: got %v", bad.Topics[0].Err)
	}

	alter := func(value string) error {
		resp := submit(t, follower, IncrementalAlterConfigs{Request: controller.IncrementalAlterConfigsRequest{
			Resources: []controller.IncrementalAlterConfigsResource{{
				ConfigResource: controller.ConfigResource{Type: metadata.ConfigResourceTopic, Name: "payments"},
				Ops:            []controller.ConfigOp{{Name: "retention.ms", Op: controller.OpSet, Value: value}},
			}}}}).(controller.AlterConfigsResponse)
		return resp.Resources[0].Err
	}
	if err := alter("3600000"); err != nil {
		t.Fatalf("alter config through a follower: %v", err)
	}
	if got := follower.Image().Configs(metadata.ConfigResourceTopic, "payments")["retention.ms"]; got != "3600000" {
		t.Fatalf("retention.ms in the follower's image: %q", got)
	}
	if err := alter("an hour"); !errors.Is(err, controller.ErrInvalidConfig) {
		t.Fatalf("bad config value through a follower: got %v, want ErrInvalidConfig", err)
	}

	oldLeader := c.leader()
	c.kill(oldLeader)
	survivor := c.nodes[c.leader()]
	if _, ok := survivor.Image().Topic("payments"); !ok {
		t.Fatal("metadata lost with the old leader")
	}
	for i := 0; i < 12; i++ { // enough entries for snapshots and log compaction
		if r := createTopics(t, survivor, 3, fmt.Sprintf("after-%d", i)); r.Topics[0].Err != nil {
			t.Fatalf("create after failover: %v", r.Topics[0].Err)
		}
	}
	c.start(oldLeader)
	want := survivor.Image()
	got, err := c.nodes[oldLeader].WaitForOffset(context.Background(), want.Offset())
	if err != nil {
		t.Fatal(err)
	}
	if !sameImage(want, got) {
		t.Fatal("restarted controller did not converge to the leader's image")
	}
}

func TestKRaftWireErrorsMatchSentinels(t *testing.T) {
	resp := controller.CreateTopicsResponse{Topics: []controller.CreateTopicResult{
		{Name: "a", Err: fmt.Errorf("topic a: %w", controller.ErrTopicExists)}, {Name: "b"}}}
	data, err := encodeReply(resp, 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, index, err := decodeReply(data)
	if err != nil || index != 7 {
		t.Fatalf("decode: %v, index %d", err, index)
	}
	topics := got.(controller.CreateTopicsResponse).Topics
	if !errors.Is(topics[0].Err, controller.ErrTopicExists) || topics[0].Err.Error() != "topic a: topic already exists" || topics[1].Err != nil {
		t.Fatalf("errors after the wire: %+v", topics)
	}
}

func TestKRaftParseVoters(t *testing.T) {
	voters, err := ParseVoters("1@a:9093, 2@b:9094,3@[::1]:9093")
	if err != nil || len(voters) != 3 || voters[2] != "b:9094" || voters[3] != "[::1]:9093" {
		t.Fatalf("ParseVoters: %v %v", voters, err)
	}
	for _, bad := range []string{"", "1@a", "x@a:1", "1@a:0", "1@a:1,1@b:2", "1a:9093"} {
		if _, err := ParseVoters(bad); err == nil {
			t.Errorf("ParseVoters(%q) accepted", bad)
		}
	}
	cfg, err := ParseQuorumConfig(map[string]string{})
	if err != nil || cfg.NodeID != 1 || !cfg.IsController() || cfg.Voters[1] != "localhost:9093" {
		t.Fatalf("default quorum config: %+v %v", cfg, err)
	}
	if _, err := ParseQuorumConfig(map[string]string{"node.id": "4", "controller.quorum.voters": "1@a:9093"}); err == nil {
		t.Error("a controller outside the voters was accepted")
	}
	if _, err := ParseProcessRoles("broker,zookeeper"); err == nil {
		t.Error("unknown role accepted")
	}
}

// BenchmarkKRaftCreateTopics measures topics created per second
// through a quorum of one with fsync, 100 topics of 10 partitions per
// CreateTopics request.
func BenchmarkKRaftCreateTopics(b *testing.B) {
	c := newCluster(b, 1, Options{})
	cp := c.nodes[c.leader()]
	registerBrokers(b, cp, 1)
	const perRequest = 100
	b.ResetTimer()
	created := 0
	for i := 0; created < b.N; i++ {
		req := controller.CreateTopicsRequest{}
		for j := 0; j < perRequest && created < b.N; j++ {
			req.Topics = append(req.Topics, controller.CreatableTopic{Name: fmt.Sprintf("t-%d-%d", i, j), NumPartitions: 10, ReplicationFactor: 1})
			created++
		}
		resp := submit(b, cp, CreateTopics{Request: req}).(controller.CreateTopicsResponse)
		if resp.Topics[0].Err != nil {
			b.Fatal(resp.Topics[0].Err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "topics/s")
}

// A stopped node that never knew a leader must not leave Submit spinning
// until its context expires: waitForLeader saw Done with a nil Err (a
// graceful stop) as "try again".
func TestKRaftSubmitAfterStopFailsFast(t *testing.T) {
	voters := map[int32]string{1: freeAddr(t), 2: freeAddr(t), 3: freeAddr(t)}
	cp, err := Start(Options{Quorum: QuorumConfig{NodeID: 1, Roles: []Role{RoleController}, Voters: voters,
		MetadataLogDir: t.TempDir(), ControllerListen: voters[1]}, FS: vfs.OS(), Logger: quietLogger, TickInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	_, err = cp.Submit(ctx, CreateTopics{})
	if !errors.Is(err, raft.ErrStopped) || time.Since(start) > time.Second {
		t.Fatalf("Submit on a stopped node: %v after %v; want ErrStopped at once", err, time.Since(start))
	}
}

// Only the leader may decide: a node that is not (or no longer) the leader
// must not read its own image, decide, and have Propose forward the records
// to the real leader, which decides concurrently on the same image.
func TestKRaftFollowerDoesNotDecide(t *testing.T) {
	c := newCluster(t, 3, Options{})
	leader := c.nodes[c.leader()]
	registerBrokers(t, leader, 1)
	follower := c.nodes[c.follower()]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := CreateTopics{Request: controller.CreateTopicsRequest{Topics: []controller.CreatableTopic{{Name: "x", NumPartitions: 1, ReplicationFactor: 1}}}}
	if _, _, err := follower.decideAndCommit(ctx, cmd); !errors.Is(err, raft.ErrNotLeader) {
		t.Fatalf("decideAndCommit on a follower: %v, want ErrNotLeader", err)
	}
	// A forwarded command that finds the node no longer leading is refused
	// with ErrNotLeader itself (so the follower retries), not with a
	// decision's WireError.
	payload, err := encodeForward(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := follower.handleForward(ctx, payload); !errors.Is(err, raft.ErrNotLeader) {
		t.Fatalf("handleForward on a follower: %v, want ErrNotLeader", err)
	}
	if _, ok := leader.Image().Topic("x"); ok {
		t.Fatal("a follower's decision was committed")
	}
}

// A decision with no records still answers with an index, the image's it
// read, so a follower that submitted it waits until its image holds what
// the decision saw (a duplicate CreateTopics must find the topic there).
func TestKRaftNoRecordDecisionHasIndex(t *testing.T) {
	c := newCluster(t, 1, Options{})
	cp := c.nodes[c.leader()]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, index, err := cp.decideAndCommit(ctx, CreateTopics{})
	if err != nil || index == 0 || cp.Image().Offset() < int64(index) {
		t.Fatalf("empty decision: index %d, err %v, image offset %d", index, err, cp.Image().Offset())
	}
}

// A decision that failed in the quorum on the leader keeps, on the
// follower, the sentinel that says whether it may have been committed.
func TestKRaftWireErrorsKeepQuorumOutcome(t *testing.T) {
	data, err := encodeReply(nil, 0, fmt.Errorf("commit: %w", raft.ErrProposalLost))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := decodeReply(data); !errors.Is(err, raft.ErrProposalLost) {
		t.Fatalf("after the wire: %v, want ErrProposalLost", err)
	}
}

// TestKRaftRebalancesLeaders checks the active controller runs the
// preferred-leader check on its timer: leadership that moved away while
// broker 1 was fenced returns to it once it is back in the ISR, without
// any client command.
func TestKRaftRebalancesLeaders(t *testing.T) {
	cfg := controller.Config{AutoLeaderRebalanceEnable: true, LeaderImbalanceCheckIntervalMs: 50}
	cl := newCluster(t, 1, Options{Controller: cfg})
	cp := cl.nodes[cl.leader()]
	registerBrokers(t, cp, 1, 2)
	if resp := createTopics(t, cp, 2, "t"); resp.Topics[0].Err != nil {
		t.Fatal(resp.Topics[0].Err)
	}
	preferredOne := func() (int32, *metadata.PartitionImage) {
		topic, _ := cp.Image().Topic("t")
		for id, p := range topic.Partitions {
			if p.Replicas[0] == 1 {
				return int32(id), p
			}
		}
		t.Fatal("broker 1 is preferred for no partition")
		return 0, nil
	}
	id, _ := preferredOne()
	epoch := func(broker int32) int64 { b, _ := cp.Image().Broker(broker); return b.Epoch }

	fence := submit(t, cp, BrokerHeartbeat{Request: controller.BrokerHeartbeatRequest{BrokerID: 1, BrokerEpoch: epoch(1), WantFence: true}})
	if err := fence.(controller.BrokerHeartbeatResponse).Err; err != nil {
		t.Fatal(err)
	}
	submit(t, cp, BrokerHeartbeat{Request: controller.BrokerHeartbeatRequest{BrokerID: 1, BrokerEpoch: epoch(1), CurrentMetadataOffset: cp.Image().Offset()}})
	_, p := preferredOne()
	if p.Leader != 2 {
		t.Fatalf("after fencing broker 1, partition %d is led by %d", id, p.Leader)
	}
	topic, _ := cp.Image().Topic("t")
	alter := submit(t, cp, AlterPartition{Request: controller.AlterPartitionRequest{BrokerID: 2, BrokerEpoch: epoch(2),
		Partitions: []controller.AlterPartitionItem{{TopicID: topic.ID, Partition: id, LeaderEpoch: p.LeaderEpoch,
			PartitionEpoch: p.PartitionEpoch, NewISR: []int32{2, 1}}}}}).(controller.AlterPartitionResponse)
	if alter.Err != nil || alter.Partitions[0].Err != nil {
		t.Fatalf("alter ISR: %v %v", alter.Err, alter.Partitions[0].Err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, p := preferredOne(); p.Leader == 1 {
			return
		}
		if time.Now().After(deadline) {
			_, p := preferredOne()
			t.Fatalf("partition %d still led by %d with ISR %v after 10s", id, p.Leader, p.ISR)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKRaftIdleClusterWritesNothing checks that heartbeats that change
// nothing and session checks with no session near expiry append no
// entry to the metadata log (an idle controller used to commit a barrier
// entry, and fsync it, every second), while a broker that stops
// heartbeating is still fenced by the timer.
func TestKRaftIdleClusterWritesNothing(t *testing.T) {
	cl := newCluster(t, 1, Options{SessionCheckInterval: 10 * time.Millisecond,
		Controller: controller.Config{BrokerSessionTimeoutMs: 400}})
	cp := cl.nodes[cl.leader()]
	registerBrokers(t, cp, 1, 2)
	epoch := func(id int32) int64 { b, _ := cp.Image().Broker(id); return b.Epoch }
	heartbeat := func(id int32) {
		hb := submit(t, cp, BrokerHeartbeat{Request: controller.BrokerHeartbeatRequest{BrokerID: id, BrokerEpoch: epoch(id),
			CurrentMetadataOffset: cp.Image().Offset()}}).(controller.BrokerHeartbeatResponse)
		if hb.Err != nil || hb.IsFenced {
			t.Fatalf("heartbeat broker %d: fenced=%v err=%v", id, hb.IsFenced, hb.Err)
		}
	}
	heartbeat(1)
	heartbeat(2)
	applied := cp.node.AppliedIndex()
	// Twenty session checks pass with both sessions alive.
	for range 10 {
		time.Sleep(20 * time.Millisecond)
		heartbeat(1)
		heartbeat(2)
	}
	if now := cp.node.AppliedIndex(); now != applied {
		t.Fatalf("idle: the metadata log grew from %d to %d", applied, now)
	}
	// Broker 2 stops heartbeating: the timer fences it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		heartbeat(1)
		if b, _ := cp.Image().Broker(2); b.Fenced {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("broker 2 not fenced 10 s after its last heartbeat")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if b, _ := cp.Image().Broker(1); b.Fenced {
		t.Fatal("broker 1 fenced although it heartbeated")
	}
}
