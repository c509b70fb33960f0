package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/test/cluster/faultproxy"
)

// baseSets make failures visible fast: a silent broker is fenced after 4 s,
// a lagging follower leaves the ISR after 5 s. Tests add or override.
var baseSets = []string{
	"broker.heartbeat.interval.ms=500",
	"broker.session.timeout.ms=4000",
	"replica.lag.time.max.ms=5000",
	"group.initial.rebalance.delay.ms=0",
	"default.replication.factor=3",
	"offsets.topic.num.partitions=3",
	"offsets.topic.replication.factor=3",
}

type clusterOpts struct {
	sets []string // --set key=value for every node, after baseSets
	// proxied routes every link between nodes through a fault proxy so
	// isolate can cut one node off (see isolate for why proxies).
	proxied bool
}

// cluster is n nodes with ids 1..n; nodes[i] has id i+1.
type cluster struct {
	t     testing.TB
	nodes []*node
	// With proxied: dataProxy[id] is the address node id advertises, so
	// peers fetch through it; quorumProxy[{from,to}] is the address from
	// uses for to's controller. Clients of the test bypass both (dialer).
	dataProxy   map[int32]*faultproxy.Proxy
	quorumProxy map[[2]int32]*faultproxy.Proxy
	realAddr    map[string]string // advertised -> client address
	lastProxy   *faultproxy.Proxy
	probes      map[int32]*kgo.Client // see probe
}

// freePorts reserves n distinct loopback ports by listening on them all at
// once, then frees them for the nodes.
func freePorts(t testing.TB, n int) []string {
	t.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out
}

// startCluster starts n nodes concurrently (a node is ready only once a
// quorum is up) and waits for all. Every node is killed when the test
// ends; if it failed, the tail of each node's stderr is logged.
func startCluster(t testing.TB, n int, opts clusterOpts) *cluster {
	t.Helper()
	sluiceBinary(t) // build before starting the clock on any node
	// Free ports are found by binding and closing, and another test
	// process may take one before a node binds it: then start again on
	// fresh ports (the failed attempt's nodes and proxies are stopped by
	// its cleanup, and its logs kept there for a failing test).
	for attempt := 1; ; attempt++ {
		c, err := tryStartCluster(t, n, opts)
		if err == nil {
			return c
		}
		if attempt == startAttempts || !c.portTaken() {
			t.Fatalf("start cluster: %v", err)
		}
		t.Logf("start cluster, attempt %d: %v; again on other ports", attempt, err)
		c.stopAll()
	}
}

// startAttempts bounds the restarts after a port was taken meanwhile.
const startAttempts = 3

// portTaken says whether a node failed because its port was in use.
func (c *cluster) portTaken() bool {
	for _, nd := range c.nodes {
		if strings.Contains(nd.logTail(5000), "address already in use") {
			return true
		}
	}
	return false
}

// stopAll kills a failed attempt's nodes and closes its proxies.
func (c *cluster) stopAll() {
	for _, nd := range c.nodes {
		nd.Kill()
	}
	for _, p := range c.dataProxy {
		p.Close()
	}
	for _, p := range c.quorumProxy {
		p.Close()
	}
}

func tryStartCluster(t testing.TB, n int, opts clusterOpts) (*cluster, error) {
	t.Helper()
	c := &cluster{t: t, dataProxy: map[int32]*faultproxy.Proxy{}, quorumProxy: map[[2]int32]*faultproxy.Proxy{}, realAddr: map[string]string{}}
	ports := freePorts(t, 2*n)
	clientAddrs, controllerAddrs := ports[:n], ports[n:]
	dir := t.TempDir()
	t.Cleanup(func() {
		c.stopAll()
		if t.Failed() {
			for _, nd := range c.nodes {
				t.Logf("node %d stderr (%s), tail:\n%s", nd.id, nd.logPath, nd.logTail(5000))
			}
			keepLogs(t, c.nodes)
		}
	})
	for i := range n {
		id := int32(i + 1)
		advertised := clientAddrs[i]
		if opts.proxied {
			advertised = c.proxy(t, clientAddrs[i]).Addr()
			c.dataProxy[id] = c.lastProxy
		}
		c.realAddr[advertised] = clientAddrs[i]
		args := []string{
			"--data-dir", filepath.Join(dir, fmt.Sprintf("node%d", id)),
			"--listen", clientAddrs[i],
			"--http", "127.0.0.1:0",
			"--set", "node.id=" + fmt.Sprint(id),
			"--set", "controller.listener=" + controllerAddrs[i],
			"--set", "controller.quorum.voters=" + c.voters(t, id, controllerAddrs, opts.proxied),
			"--set", "advertised.listeners=PLAINTEXT://" + advertised,
		}
		for _, s := range append(append([]string(nil), baseSets...), opts.sets...) {
			args = append(args, "--set", s)
		}
		c.nodes = append(c.nodes, &node{t: t, id: id, clientAddr: clientAddrs[i], args: args,
			logPath: filepath.Join(dir, fmt.Sprintf("node%d.stderr", id))})
	}
	for _, nd := range c.nodes {
		if err := nd.launch(); err != nil {
			return c, fmt.Errorf("start node %d: %w", nd.id, err)
		}
	}
	for _, nd := range c.nodes {
		if err := nd.awaitReady(); err != nil {
			return c, err
		}
	}
	return c, nil
}

// keepLogs copies every node's whole stderr to $SLUICE_CLUSTER_LOGS/<test>/
// when that is set: the tail logged on failure is often not enough.
func keepLogs(t testing.TB, nodes []*node) {
	root := os.Getenv("SLUICE_CLUSTER_LOGS")
	if root == "" {
		return
	}
	dir := filepath.Join(root, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("keeping logs: %v", err)
		return
	}
	for _, nd := range nodes {
		b, err := os.ReadFile(nd.logPath)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, filepath.Base(nd.logPath)), b, 0o644)
		}
		if err != nil {
			t.Logf("keeping logs: %v", err)
		}
	}
	t.Logf("node logs kept in %s", dir)
}

// voters is node from's controller.quorum.voters: its own controller
// address (where it listens) and, when proxied, a proxy per peer.
func (c *cluster) voters(t testing.TB, from int32, controllerAddrs []string, proxied bool) string {
	var parts []string
	for i, addr := range controllerAddrs {
		to := int32(i + 1)
		if proxied && to != from {
			addr = c.proxy(t, addr).Addr()
			c.quorumProxy[[2]int32{from, to}] = c.lastProxy
		}
		parts = append(parts, fmt.Sprintf("%d@%s", to, addr))
	}
	return strings.Join(parts, ",")
}

// proxy starts a fault proxy to target; lastProxy keeps it for the caller.
func (c *cluster) proxy(t testing.TB, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Listen(target)
	if err != nil {
		t.Fatal(err)
	}
	c.lastProxy = p
	return p
}

func (c *cluster) node(id int32) *node { return c.nodes[id-1] }

// ids lists node ids, leaving out the given ones.
func (c *cluster) ids(except ...int32) []int32 {
	var out []int32
	for _, nd := range c.nodes {
		if !slices.Contains(except, nd.id) {
			out = append(out, nd.id)
		}
	}
	return out
}

// linksOf lists every proxy on a link to or from node id: its quorum links
// both ways and the address peers fetch from it at. Node id's own fetches
// from a peer share that peer's data proxy with the third node, so they are
// not cut; an isolated node learns no new leader, so it does not fetch.
func (c *cluster) linksOf(id int32) []*faultproxy.Proxy {
	out := []*faultproxy.Proxy{c.dataProxy[id]}
	for pair, p := range c.quorumProxy {
		if pair[0] == id || pair[1] == id {
			out = append(out, p)
		}
	}
	return out
}

// isolate blackholes every link of node id: it keeps running and clients
// still reach it, but it neither hears nor is heard by its peers.
func (c *cluster) isolate(id int32) {
	c.t.Helper()
	if len(c.dataProxy) == 0 {
		c.t.Fatal("isolate needs a proxied cluster")
	}
	for _, p := range c.linksOf(id) {
		p.Blackhole()
	}
}

// heal forwards node id's links again.
func (c *cluster) heal(id int32) {
	for _, p := range c.linksOf(id) {
		p.Heal()
	}
}

// dial reaches a node's client port directly, whatever it advertises.
func (c *cluster) dial(ctx context.Context, network, host string) (net.Conn, error) {
	if real, ok := c.realAddr[host]; ok {
		host = real
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	return d.DialContext(ctx, network, host)
}

// client is a franz-go client seeded with the given nodes (all by
// default), closed when the test ends.
func (c *cluster) client(t testing.TB, seeds []int32, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	if seeds == nil {
		seeds = c.ids()
	}
	var addrs []string
	for _, id := range seeds {
		addrs = append(addrs, c.node(id).clientAddr)
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(addrs...),
		kgo.ClientID("sluice-cluster-test"),
		kgo.Dialer(c.dial),
		kgo.RetryTimeout(15 * time.Second),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.MetadataMaxAge(2 * time.Second),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (c *cluster) admin(t testing.TB) *kadm.Client { return kadm.NewClient(c.client(t, nil)) }

// createTopic creates an RF=3 topic with min.insync.replicas=2.
func (c *cluster) createTopic(t testing.TB, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.admin(t).CreateTopics(ctx, partitions, 3, map[string]*string{"min.insync.replicas": strp("2")}, topic)
	if err == nil {
		var r kadm.CreateTopicResponse
		if r, err = resp.On(topic, nil); err == nil && r.Err != nil {
			err = fmt.Errorf("%w (%s)", r.Err, r.ErrMessage)
		}
	}
	if err != nil {
		t.Fatalf("CreateTopics %s: %v", topic, err)
	}
	for p := range partitions {
		c.waitLeader(t, topic, p, 30*time.Second)
	}
}

func strp(s string) *string { return &s }

// partitionView is one node's metadata for one partition.
type partitionView struct {
	leader      int32
	leaderEpoch int32
	replicas    []int32
	isr         []int32
}

func (v partitionView) String() string {
	return fmt.Sprintf("leader %d epoch %d replicas %v isr %v", v.leader, v.leaderEpoch, v.replicas, v.isr)
}

// view asks node ask (not any broker: an isolated or stale node may
// disagree with the quorum) for a partition's metadata.
func (c *cluster) view(t testing.TB, ask int32, topic string, partition int32) (partitionView, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := c.probe(t, ask).SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return partitionView{}, fmt.Errorf("metadata from node %d: %w", ask, err)
	}
	for _, tp := range resp.(*kmsg.MetadataResponse).Topics {
		for _, p := range tp.Partitions {
			if p.Partition == partition {
				if p.ErrorCode != 0 {
					return partitionView{}, fmt.Errorf("node %d: %s/%d: error code %d", ask, topic, partition, p.ErrorCode)
				}
				return partitionView{p.Leader, p.LeaderEpoch, p.Replicas, p.ISR}, nil
			}
		}
	}
	return partitionView{}, fmt.Errorf("node %d does not know %s/%d", ask, topic, partition)
}

// probe is a client seeded with node ask only, kept per test and node, for
// requests that must go to that node.
func (c *cluster) probe(t testing.TB, ask int32) *kgo.Client {
	if c.probes == nil {
		c.probes = map[int32]*kgo.Client{}
	}
	if cl := c.probes[ask]; cl != nil {
		return cl
	}
	cl := c.client(t, []int32{ask}, kgo.RetryTimeout(2*time.Second))
	c.probes[ask] = cl
	return cl
}

// waitLeader waits until a running node reports a leader for the
// partition, and returns that node's view.
func (c *cluster) waitLeader(t testing.TB, topic string, partition int32, bound time.Duration, except ...int32) partitionView {
	t.Helper()
	var v partitionView
	eventually(t, bound, fmt.Sprintf("a leader for %s/%d outside %v", topic, partition, except), func() error {
		var err error
		v, err = c.viewFromAny(t, topic, partition, except...)
		if err == nil && (v.leader < 0 || slices.Contains(except, v.leader)) {
			err = fmt.Errorf("%v", v)
		}
		return err
	})
	return v
}

// viewFromAny asks the running nodes not in except in turn.
func (c *cluster) viewFromAny(t testing.TB, topic string, partition int32, except ...int32) (partitionView, error) {
	err := fmt.Errorf("no running node outside %v", except)
	for _, id := range c.ids(except...) {
		if !c.node(id).Running() {
			continue
		}
		var v partitionView
		if v, err = c.view(t, id, topic, partition); err == nil {
			return v, nil
		}
	}
	return partitionView{}, err
}

// waitISR waits until node ask reports want in the partition's ISR (or,
// with in=false, not in it).
func (c *cluster) waitISR(t testing.TB, ask int32, topic string, partition, want int32, in bool, bound time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	eventually(t, bound, fmt.Sprintf("node %d in=%v the ISR of %s/%d (asking node %d)", want, in, topic, partition, ask), func() error {
		v, err := c.view(t, ask, topic, partition)
		if err == nil && slices.Contains(v.isr, want) != in {
			err = fmt.Errorf("%v", v)
		}
		return err
	})
	return time.Since(start)
}

func adminOf(cl *kgo.Client) *kadm.Client { return kadm.NewClient(cl) }
