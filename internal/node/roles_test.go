package node

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/metadata"
)

// freeAddrs returns n loopback addresses that were free a moment ago.
//
// They come from below the kernel's ephemeral range when it leaves room:
// a node restarted on its old address would otherwise find the port taken
// by some process's outgoing connection (which draws its local port from
// that range), and the test would fail with "address already in use".
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	low, high := portsOutsideEphemeralRange()
	for len(addrs) < n {
		port := 0
		if high > low {
			port = low + rand.IntN(high-low)
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			if port != 0 {
				continue // taken by someone else: draw again
			}
			t.Fatal(err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}

// portsOutsideEphemeralRange is [low, high) below the kernel's ephemeral
// port range, or an empty range where the kernel says nothing or leaves
// no room.
func portsOutsideEphemeralRange() (low, high int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	var first, last int
	if _, err := fmt.Sscan(string(b), &first, &last); err != nil || first <= 12000 {
		return 0, 0
	}
	return 10000, first
}

// startNodes starts nodes concurrently: a voter's Start waits for a
// quorum, so starting them one by one would deadlock.
func startNodes(t *testing.T, sets [][]string) []*Node {
	t.Helper()
	nodes := make([]*Node, len(sets))
	errs := make([]error, len(sets))
	var wg sync.WaitGroup
	for i, s := range sets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			nodes[i], errs[i] = Start(ctx, Options{Config: loadConfig(t, s...), Logger: quietLogger})
		}()
	}
	wg.Wait()
	// Stopped together, as an operator stopping a cluster would: one by
	// one, the last voters would wait for a quorum that has left.
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, n := range nodes {
			if n != nil {
				wg.Go(func() { shutdown(t, n) })
			}
		}
		wg.Wait()
	})
	for i := range nodes {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i+1, errs[i])
		}
	}
	return nodes
}

// TestNodeClusterRoles runs the three kinds of node together: voters 1
// and 2 are broker and controller, voter 3 is controller-only, node 4 is a
// broker-only learner. Node 4 must register, be listed to clients, and
// host a partition placed on it, produced and consumed through it; node 3
// must serve no clients and never be listed as a broker.
func TestNodeClusterRoles(t *testing.T) {
	controllerAddrs := freeAddrs(t, 3)
	var voters []string
	for i, addr := range controllerAddrs {
		voters = append(voters, fmt.Sprintf("%d@%s", i+1, addr))
	}
	common := []string{"controller.quorum.voters=" + strings.Join(voters, ","), "listeners=PLAINTEXT://127.0.0.1:0"}
	node := func(id int, roles string) []string {
		return append([]string{fmt.Sprintf("node.id=%d", id), "process.roles=" + roles, "log.dirs=" + t.TempDir()}, common...)
	}
	nodes := startNodes(t, [][]string{
		node(1, "broker,controller"), node(2, "broker,controller"), node(3, "controller"), node(4, "broker"),
	})
	if nodes[2].IsBroker() || nodes[2].Addr() != nil {
		t.Fatalf("controller-only node serves clients at %v", nodes[2].Addr())
	}
	if !nodes[3].IsBroker() || nodes[3].cp.IsActive() {
		t.Fatal("broker-only node is not a broker, or leads the quorum")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Node 4 is ready once its own image has it unfenced; node 1, a
	// follower perhaps, may not have applied that yet.
	if _, err := nodes[0].cp.WaitForOffset(ctx, nodes[3].cp.Image().Offset()); err != nil {
		t.Fatal(err)
	}
	c := client(t, nodes[0])
	meta, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int32
	for _, b := range meta.Brokers {
		ids = append(ids, b.NodeID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []int32{1, 2, 4}) {
		t.Fatalf("Metadata lists brokers %v, want [1 2 4]", ids)
	}

	// A topic placed on the broker-only node alone, created through node 1.
	create := kmsg.NewPtrCreateTopicsRequest()
	topic := kmsg.NewCreateTopicsRequestTopic()
	topic.Topic, topic.NumPartitions, topic.ReplicationFactor = "on-four", -1, -1
	assignment := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	assignment.Partition, assignment.Replicas = 0, []int32{4}
	topic.ReplicaAssignment = append(topic.ReplicaAssignment, assignment)
	create.Topics = append(create.Topics, topic)
	create.TimeoutMillis = 30_000
	created, err := create.RequestWith(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if code := created.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create on-four: error code %d", code)
	}

	p := client(t, nodes[0], kgo.DefaultProduceTopic("on-four"))
	for i := range 10 {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	got := consumeAll(t, ctx, nodes[0], "on-four", 10)
	for i := range 10 {
		if v := got[partitionOffset{0, int64(i)}]; v != fmt.Sprint(i) {
			t.Fatalf("offset %d = %q, want %q", i, v, fmt.Sprint(i))
		}
	}
	// The records are on node 4's disk: it leads the partition.
	if pi, ok := nodes[3].cp.Image().Partition("on-four", 0); !ok || pi.Leader != 4 {
		t.Fatalf("on-four-0 in node 4's image: %+v", pi)
	}

	// Restarted, the learner binds a new free port; the voters must learn
	// it again, and it serves the same records.
	shutdown(t, nodes[3])
	restartCtx, restartCancel := context.WithTimeout(ctx, 30*time.Second)
	defer restartCancel()
	again, err := Start(restartCtx, Options{Config: nodes[3].opts.Config, Logger: quietLogger})
	if err != nil {
		t.Fatalf("restart broker-only node: %v", err)
	}
	t.Cleanup(func() { shutdown(t, again) })
	if got := consumeAll(t, ctx, again, "on-four", 10); len(got) != 10 {
		t.Fatalf("after restart: %d records", len(got))
	}
}

// TestNodeOffsetsReplicationFactorCappedAtLiveBrokers keeps a cluster of
// one working with Kafka's default offsets.topic.replication.factor=3.
func TestNodeOffsetsReplicationFactorCappedAtLiveBrokers(t *testing.T) {
	delta := metadata.NewDelta(metadata.EmptyImage())
	for id, fenced := range map[int32]bool{1: false, 2: false, 3: true} {
		if err := delta.Replay(&metadata.RegisterBroker{BrokerID: id, BrokerEpoch: int64(id), Fenced: fenced}); err != nil {
			t.Fatal(err)
		}
	}
	img := delta.Apply(10)
	for _, tc := range []struct {
		configured int16
		img        *metadata.Image
		want       int16
	}{
		{3, img, 2}, // broker 3 is fenced
		{1, img, 1},
		{3, metadata.EmptyImage(), 1},
	} {
		if got := offsetsReplicationFactor(tc.configured, tc.img); got != tc.want {
			t.Errorf("offsetsReplicationFactor(%d, %d brokers) = %d, want %d", tc.configured, len(tc.img.Brokers()), got, tc.want)
		}
	}
}
