package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sluicelog/sluice/internal/api"
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/httpserver"
	"github.com/sluicelog/sluice/internal/kraft"
	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/metrics"
	"github.com/sluicelog/sluice/internal/netserver"
	"github.com/sluicelog/sluice/internal/partition"
)

// observed are the components a scrape or a readiness probe reads. The
// HTTP listener starts before them, so each is published here once built
// and read through the atomics, never through Node's plain fields.
type observed struct {
	stage  atomic.Pointer[string] // why the node does not serve clients; nil once it does
	cp     atomic.Pointer[kraft.ControlPlane]
	parts  atomic.Pointer[partition.Manager]
	logs   atomic.Pointer[log.Manager]
	groups atomic.Pointer[coord.Coordinator]
	server atomic.Pointer[netserver.Server]
}

// Start-up stages, as /readyz reports them while the node is not ready.
const (
	stageQuorum       = "joining the metadata quorum"
	stageLogs         = "recovering partition logs"
	stageRegistration = "registering with the controller and waiting to be unfenced"
	stageGroups       = "loading consumer groups from __consumer_offsets"
	stageTxns         = "loading transactions from __transaction_state"
	stageShareStates  = "loading share partition state from __share_group_state"
	stageShuttingDown = "shutting down"
)

func (n *Node) setStage(stage string) {
	if stage == "" {
		n.obs.stage.Store(nil)
		return
	}
	n.obs.stage.Store(&stage)
}

// ready is /readyz: nil when this node serves clients (a controller-only
// node: when it takes part in a quorum with a leader), else the reason.
func (n *Node) ready() error {
	if s := n.obs.stage.Load(); s != nil {
		return errors.New(*s)
	}
	if cp := n.obs.cp.Load(); cp == nil || cp.Leader() < 0 {
		return errors.New("the metadata quorum has no leader: fewer than a majority of controller.quorum.voters are reachable")
	}
	return nil
}

// httpShutdownTimeout bounds the wait for HTTP requests in flight when
// the node stops; a streaming profile is cut off after it.
const httpShutdownTimeout = 5 * time.Second

// startHTTP binds http.listener, if set, and serves metrics, health and
// the console from the very start, so /readyz can say what the node waits
// for during a long recovery.
func (n *Node) startHTTP() error {
	cfg := n.opts.Config
	n.metrics = metrics.New(metrics.Options{APIKeys: api.APIKeyNames(), State: nodeState{n},
		RefusedConnections: func() map[string]int64 {
			if srv := n.obs.server.Load(); srv != nil {
				return srv.RefusedConnections()
			}
			return nil
		},
		SharedSyncs: func() (metrics.SharedSyncCounts, bool) {
			logs := n.obs.logs.Load()
			if logs == nil {
				return metrics.SharedSyncCounts{}, false
			}
			st := logs.SharedSyncStats()
			js, ws := logs.JournalStats(), logs.WritebackStats()
			return metrics.SharedSyncCounts{SyncFS: st.SyncFS, EarlySyncFS: st.EarlySyncFS, CoveredRounds: st.SharedRuns, OwnSyncs: st.FileSyncs,
				JournalSyncs: js.Syncs, JournalRecords: js.Records, JournalFull: js.Full, JournalCheckpoints: js.Checkpoints,
				WritebackBytes: ws.Bytes, WritebackRefused: ws.Failed + ws.Dropped}, true
		}})
	addr := cfg.String(config.HTTPListener)
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w (set it to another host:port, or empty to disable it)", config.HTTPListener, err)
	}
	// The built-in console is mounted on brokers; a controller-only node
	// has no client listener for it to talk to, so it serves the index.
	consoleHandler := n.opts.Console
	if consoleHandler == nil && n.IsBroker() && cfg.Bool(config.HTTPConsoleEnabled) {
		n.consoleSlot = &consoleSlot{}
		consoleHandler = n.consoleSlot
	}
	n.http = httpserver.Start(ln, httpserver.Options{
		Metrics: n.metrics.Handler(), Ready: n.ready, Console: consoleHandler,
		Pprof: cfg.Bool(config.HTTPPprofEnabled), Logger: n.log,
	})
	return nil
}

func (n *Node) stopHTTP() error {
	if n.http == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	defer cancel()
	return n.http.Shutdown(ctx)
}

// HTTPAddr is the HTTP listener's address; nil when http.listener is empty.
func (n *Node) HTTPAddr() net.Addr {
	if n.http == nil {
		return nil
	}
	return n.http.Addr()
}

// isrChanged counts a committed ISR change of a partition led here.
func (n *Node) isrChanged(shrunk bool) {
	if shrunk {
		n.metrics.ISRShrinks.Inc()
	} else {
		n.metrics.ISRExpands.Inc()
	}
}

// nodeState is what a metrics scrape reads from the node.
type nodeState struct{ n *Node }

// scrapeTimeout bounds what a scrape waits for from the quorum driver and
// the group shards, so a stuck component leaves a gap in the metrics
// rather than a hung scrape.
const scrapeTimeout = 2 * time.Second

func (s nodeState) Node() metrics.NodeSample {
	var out metrics.NodeSample
	if srv := s.n.obs.server.Load(); srv != nil {
		out.Connections = srv.NumConnections()
	}
	cp := s.n.obs.cp.Load()
	if cp == nil {
		return out
	}
	img := cp.Image()
	out.ActiveController = cp.Leader() == s.n.meta.NodeID
	out.GlobalTopics, out.GlobalPartitions = img.NumTopics(), img.NumPartitions()
	if out.ActiveController {
		for _, t := range img.Topics() {
			for _, pi := range t.Partitions {
				if pi != nil && pi.Leader == metadata.NoLeader {
					out.OfflinePartitions++
				}
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	raftSample(ctx, cp, &out)
	return out
}

// raftSample reads the metadata quorum's state: the only place metrics
// touch the Raft driver (through the control plane's DescribeQuorum view).
func raftSample(ctx context.Context, cp *kraft.ControlPlane, out *metrics.NodeSample) {
	st, err := cp.QuorumStatus(ctx)
	if err != nil {
		return
	}
	out.RaftKnown = true
	out.RaftEpoch, out.RaftLeader, out.RaftHighWatermark = int64(st.LeaderEpoch), int64(st.LeaderID), st.HighWatermark
}

func (s nodeState) Partitions(visit func(*metrics.PartitionSample)) {
	cp, parts := s.n.obs.cp.Load(), s.n.obs.parts.Load()
	if cp == nil || parts == nil {
		return
	}
	img := cp.Image()
	// Forget the counters of deleted topics here, once per scrape, rather
	// than on the hot path.
	s.n.metrics.Topics.Retain(func(topic string) bool { _, ok := img.Topic(topic); return ok })
	minISR := minISRByTopic(s.n, img)
	var sample metrics.PartitionSample
	for _, p := range parts.Hosted() {
		tp := p.TopicPartition()
		sample = metrics.PartitionSample{Topic: tp.Topic, Partition: tp.Partition, SizeBytes: p.Size()}
		if pi, ok := img.Partition(tp.Topic, tp.Partition); ok && pi.Leader == s.n.meta.NodeID {
			sample.Leader = true
			sample.UnderReplicated = len(pi.ISR) < len(pi.Replicas)
			sample.UnderMinISR = int64(len(pi.ISR)) < minISR(tp.Topic)
		}
		visit(&sample)
	}
}

// minISRByTopic returns each topic's min.insync.replicas: its own config
// over the cluster-wide default, read once per topic per scrape.
func minISRByTopic(n *Node, img *metadata.Image) func(topic string) int64 {
	defaults := n.topicDefaults()
	clusterDefault := parseMinISR(defaults[config.MinInsyncReplicas], 1)
	cache := map[string]int64{}
	return func(topic string) int64 {
		if v, ok := cache[topic]; ok {
			return v
		}
		v := parseMinISR(img.Configs(metadata.ConfigResourceTopic, topic)[config.MinInsyncReplicas], clusterDefault)
		cache[topic] = v
		return v
	}
}

func parseMinISR(s string, fallback int64) int64 {
	if v, err := strconv.ParseInt(s, 10, 32); err == nil {
		return v
	}
	return fallback
}

func (s nodeState) GroupOffsets(visit func(*metrics.GroupOffsetSample)) {
	groups, parts := s.n.obs.groups.Load(), s.n.obs.parts.Load()
	if groups == nil || parts == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	offsets := groups.CommittedOffsets(ctx)
	if len(offsets) == 0 {
		return
	}
	highWatermarks := map[string][]int64{} // topic -> HW by partition, -1 where not hosted
	for _, p := range parts.Hosted() {
		tp := p.TopicPartition()
		hws := highWatermarks[tp.Topic]
		for int(tp.Partition) >= len(hws) {
			hws = append(hws, -1)
		}
		hws[tp.Partition] = p.Offsets().HighWatermark
		highWatermarks[tp.Topic] = hws
	}
	var sample metrics.GroupOffsetSample
	for _, o := range offsets {
		sample = metrics.GroupOffsetSample{Group: o.GroupID, Topic: o.Topic, Partition: o.Partition, Offset: o.Offset, Lag: -1}
		if hws := highWatermarks[o.Topic]; int(o.Partition) < len(hws) && hws[o.Partition] >= 0 {
			sample.Lag = max(hws[o.Partition]-o.Offset, 0)
		}
		visit(&sample)
	}
}
