package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/log"
)

// cluster is three in-process nodes, each a controller and a broker, on
// loopback ports.
type cluster struct {
	t       *testing.T
	dirs    []string
	voters  string
	ctrl    []string
	clients []string
	nodes   []*Node
	sets    []string
	// perNode, when set, adds settings that differ by node (index 0-2).
	perNode func(i int) []string
}

func startCluster(t *testing.T, sets ...string) *cluster {
	return startClusterPerNode(t, nil, sets...)
}

// startClusterPerNode is startCluster with settings that differ by node.
func startClusterPerNode(t *testing.T, perNode func(i int) []string, sets ...string) *cluster {
	// Free addresses are found by binding and closing; another test
	// process may take one before a node binds it, and then the cluster
	// starts again on fresh ones.
	for attempt := 1; ; attempt++ {
		c, err := tryStartCluster(t, sets, perNode)
		if err == nil {
			t.Cleanup(func() {
				for _, n := range c.nodes {
					if n != nil {
						shutdown(t, n)
					}
				}
			})
			return c
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("start attempt %d: %v; again on other addresses", attempt, err)
	}
}

func tryStartCluster(t *testing.T, sets []string, perNode func(int) []string) (*cluster, error) {
	c := &cluster{t: t, sets: sets, nodes: make([]*Node, 3), perNode: perNode}
	c.ctrl = freeAddrs(t, 3)
	c.clients = freeAddrs(t, 3)
	var voters []string
	for i := range 3 {
		voters = append(voters, fmt.Sprintf("%d@%s", i+1, c.ctrl[i]))
		c.dirs = append(c.dirs, filepath.Join(t.TempDir(), fmt.Sprint("node", i+1)))
	}
	c.voters = strings.Join(voters, ",")
	// One node failing to start cancels the others, which would otherwise
	// wait for a quorum that cannot form.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			if c.nodes[i], errs[i] = c.startNode(ctx, i); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, n := range c.nodes {
			if n != nil {
				shutdown(t, n)
			}
		}
		return nil, err
	}
	return c, nil
}

// start starts node i+1 again on its directory and ports, after stop.
func (c *cluster) start(i int) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := c.startNode(ctx, i)
	if err != nil {
		c.t.Error(err)
		return
	}
	c.nodes[i] = n
}

func (c *cluster) startNode(ctx context.Context, i int) (*Node, error) {
	cfg := loadConfig(c.t, append([]string{
		"log.dirs=" + c.dirs[i], "listeners=PLAINTEXT://" + c.clients[i], fmt.Sprint("node.id=", i+1),
		"controller.quorum.voters=" + c.voters, "broker.heartbeat.interval.ms=200", "broker.session.timeout.ms=2000",
		"group.initial.rebalance.delay.ms=0", "replica.fetch.wait.max.ms=200",
	}, c.nodeSets(i)...)...)
	n, err := Start(ctx, Options{Config: cfg, Logger: quietLogger})
	if err != nil {
		return nil, fmt.Errorf("node %d: %w", i+1, err)
	}
	return n, nil
}

func (c *cluster) nodeSets(i int) []string {
	if c.perNode == nil {
		return c.sets
	}
	return append(slices.Clone(c.sets), c.perNode(i)...)
}

// stop shuts node i+1 down cleanly (a controlled shutdown).
func (c *cluster) stop(i int) {
	shutdown(c.t, c.nodes[i])
	c.nodes[i] = nil
}

func (c *cluster) live() []string {
	var addrs []string
	for i, n := range c.nodes {
		if n != nil {
			addrs = append(addrs, c.clients[i])
		}
	}
	return addrs
}

func (c *cluster) client(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.live()...)}, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// partitionState is a partition's leader and ISR as Metadata reports it.
func (c *cluster) partitionState(ctx context.Context, topic string, p int32) (leader int32, isr []int32) {
	c.t.Helper()
	md, err := kadm.NewClient(c.client()).Metadata(ctx, topic)
	if err != nil {
		c.t.Fatal(err)
	}
	pd, ok := md.Topics[topic].Partitions[p]
	if !ok {
		return -1, nil // the broker asked has not seen the topic yet
	}
	return pd.Leader, pd.ISR
}

// waitLeader waits until Metadata names a leader for the partition.
func (c *cluster) waitLeader(ctx context.Context, topic string, p int32) int32 {
	c.t.Helper()
	var leader int32 = -1
	eventually(c.t, 20*time.Second, fmt.Sprintf("a leader for %s-%d", topic, p), func() bool {
		leader, _ = c.partitionState(ctx, topic, p)
		return leader > 0
	})
	return leader
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logOf returns the local log of a partition on node i+1 (leader or not).
func (c *cluster) logOf(i int, topic string, p int32) *log.Log {
	l, ok := c.nodes[i].logs.Log(log.TopicPartition{Topic: topic, Partition: p})
	if !ok {
		c.t.Fatalf("node %d hosts no log for %s-%d", i+1, topic, p)
	}
	return l
}

// TestNodeReplicationFailover: acks=all records reach every replica's
// log; a controlled shutdown of the leader moves leadership to an ISR
// member; an idempotent producer goes on there; every acknowledged record
// is read back once, in order; the stopped node rejoins the ISR.
func TestNodeReplicationFailover(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	adm := kadm.NewClient(c.client())
	if _, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": new("2")}, "orders"); err != nil {
		t.Fatal(err)
	}
	prod := c.client(kgo.DefaultProduceTopic("orders"), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(100))
	var acked []string
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			v := fmt.Sprint("v", i)
			if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatalf("produce %s: %v", v, err)
			}
			acked = append(acked, v)
		}
	}
	produce(0, 100)
	leader := c.waitLeader(ctx, "orders", 0)
	_, isr := c.partitionState(ctx, "orders", 0)
	if len(isr) != 3 {
		t.Fatalf("ISR %v, want all three replicas", isr)
	}
	// Acknowledged with acks=all: every ISR member holds them already.
	for i := range 3 {
		if leo := c.logOf(i, "orders", 0).LogEndOffset(); leo < 100 {
			t.Errorf("node %d holds %d records of 100 acknowledged", i+1, leo)
		}
	}

	c.stop(int(leader) - 1)
	newLeader := c.waitLeader(ctx, "orders", 0)
	if newLeader == leader {
		t.Fatalf("leader after shutting down %d: %d", leader, newLeader)
	}
	produce(100, 200)

	c.start(int(leader) - 1)
	eventually(t, 30*time.Second, "the restarted node rejoins the ISR", func() bool {
		_, isr := c.partitionState(ctx, "orders", 0)
		return slices.Contains(isr, leader)
	})
	checkReadBack(t, ctx, c, "orders", acked)
}

func checkReadBack(t *testing.T, ctx context.Context, c *cluster, topic string, acked []string) {
	t.Helper()
	cons := c.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) < len(acked) {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records: %v", len(got), len(acked), err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if !slices.Equal(got, acked) {
		t.Fatalf("read back %d records, first difference at %d (got %v...)", len(got), firstDiff(got, acked), got[:min(5, len(got))])
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestNodeReplicationNotEnoughReplicas: with min.insync.replicas=3 and a
// replica gone, acks=all is refused with NOT_ENOUGH_REPLICAS (and nothing
// appended), while acks=1 still succeeds.
func TestNodeReplicationNotEnoughReplicas(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	adm := kadm.NewClient(c.client())
	if _, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": new("3")}, "strict"); err != nil {
		t.Fatal(err)
	}
	leader := c.waitLeader(ctx, "strict", 0)
	follower := int(leader % 3) // another node's index
	c.stop(follower)
	eventually(t, 20*time.Second, "the stopped follower leaves the ISR", func() bool {
		_, isr := c.partitionState(ctx, "strict", 0)
		return len(isr) == 2
	})
	all := c.client(kgo.DefaultProduceTopic("strict"), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(),
		kgo.RecordRetries(0), kgo.RecordDeliveryTimeout(5*time.Second))
	err := all.ProduceSync(ctx, &kgo.Record{Value: []byte("refused")}).FirstErr()
	if !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all with ISR 2 < min.insync.replicas 3: %v, want NOT_ENOUGH_REPLICAS", err)
	}
	one := c.client(kgo.DefaultProduceTopic("strict"), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	if err := one.ProduceSync(ctx, &kgo.Record{Value: []byte("accepted")}).FirstErr(); err != nil {
		t.Fatalf("acks=1: %v", err)
	}
	if leo := c.logOf(int(leader)-1, "strict", 0).LogEndOffset(); leo != 1 {
		t.Fatalf("leader log end %d: the refused record was appended", leo)
	}
}

// TestNodeReplicationGroupSurvivesCoordinatorLoss: offsets committed to a
// group whose coordinator then stops are served by the next coordinator,
// which loaded them from its replica of __consumer_offsets.
func TestNodeReplicationGroupSurvivesCoordinatorLoss(t *testing.T) {
	c := startCluster(t, "offsets.topic.num.partitions=3")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	adm := kadm.NewClient(c.client())
	if _, err := adm.CreateTopic(ctx, 2, 3, nil, "events"); err != nil {
		t.Fatal(err)
	}
	var offsets kadm.Offsets
	for p := range int32(2) {
		offsets.Add(kadm.Offset{Topic: "events", Partition: p, At: int64(40 + p), LeaderEpoch: -1})
	}
	var coordinator int32 = -1
	eventually(t, 30*time.Second, "the group's first commit", func() bool {
		resp, err := adm.CommitOffsets(ctx, "billing", offsets)
		if err != nil || resp.Error() != nil {
			return false
		}
		fc := adm.FindGroupCoordinators(ctx, "billing")["billing"]
		coordinator = fc.NodeID
		return fc.Err == nil
	})
	c.stop(int(coordinator) - 1)

	adm2 := kadm.NewClient(c.client())
	eventually(t, 30*time.Second, "committed offsets from the new coordinator", func() bool {
		got, err := adm2.FetchOffsets(ctx, "billing")
		if err != nil || got.Error() != nil {
			return false
		}
		for p := range int32(2) {
			o, ok := got.Lookup("events", p)
			if !ok || o.At != int64(40+p) {
				t.Logf("partition %d: %+v", p, o)
				return false
			}
		}
		return true
	})
	if fc := adm2.FindGroupCoordinators(ctx, "billing")["billing"]; fc.NodeID == coordinator {
		t.Fatalf("coordinator still %d after it stopped", coordinator)
	}
}
