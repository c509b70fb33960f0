// Package node is the composition root: it builds a node's components from
// its configuration, starts them in dependency order and stops them in the
// reverse order.
//
// Start order: identity (meta.properties, under the data-dir lock) →
// client listener (bound, not yet serving: connections wait in the listen
// backlog, and the broker can register the real port) → metadata quorum →
// partition logs → broker registration (naming the previous incarnation on
// the directory), unfenced → group coordinator → transaction coordinator →
// serving. Shutdown reverses it: stop serving (requests already read are
// answered), stop heartbeats, tell the controller (controlled shutdown),
// stop the group and transaction coordinators, snapshot producer state,
// close the logs cleanly, leave the quorum.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicelog/sluice/internal/api"
	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/httpserver"
	"github.com/sluicelog/sluice/internal/kraft"
	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/metrics"
	"github.com/sluicelog/sluice/internal/netserver"
	"github.com/sluicelog/sluice/internal/partition"
	"github.com/sluicelog/sluice/internal/peer"
	"github.com/sluicelog/sluice/internal/quota"
	"github.com/sluicelog/sluice/internal/share"
	"github.com/sluicelog/sluice/internal/vfs"
)

// Options configure Start.
type Options struct {
	Config *config.Broker
	FS     vfs.FS       // nil: the real filesystem
	Clock  clock.Clock  // nil: the real clock
	Logger *slog.Logger // nil: slog.Default()
	// Console is the web console, mounted at "/" of the HTTP listener;
	// nil serves an index of the other endpoints there.
	Console http.Handler

	// testPrincipal, when set, names the principal of a client connection
	// by its address (tests only: they act as several principals over
	// PLAINTEXT before SASL exists); false leaves the listener's own.
	testPrincipal func(clientAddr string) (auth.Principal, bool)
}

// Node is a running Sluice node.
type Node struct {
	opts   Options
	log    *slog.Logger
	meta   metaProperties
	cp     *kraft.ControlPlane
	logs   *log.Manager
	parts  *partition.Manager
	groups *coord.Coordinator
	server *netserver.Server // every client listener's
	// unserved are the client listeners bound at start, closed by stop
	// if the start fails before server takes them over.
	unserved []clientListener
	session  *brokerSession
	metrics  *metrics.Registry
	http     *httpserver.Server
	// consoleSlot is mounted at "/" when the built-in console is on.
	consoleSlot *consoleSlot
	// txnVerifier asks transaction coordinators about transactional
	// produces (KIP-890); its connections close with the node.
	txnVerifier *peer.TxnVerifier
	obs         observed
	unlock      func() error
	cancel      context.CancelFunc
	// stopHeartbeats stops the heartbeat loop and waits for it, so a
	// controlled shutdown's fencing is not undone by a late heartbeat.
	stopHeartbeats func()
	bg             sync.WaitGroup
	closeOnce      sync.Once
	// connectionsChanged wakes fitSegmentFiles when clients connect or
	// leave (capacity 1: signals coalesce).
	connectionsChanged chan struct{}
	// descriptorShortage wakes it when an accept found no descriptor
	// (capacity 1, as connectionsChanged).
	descriptorShortage chan struct{}

	txns *coord.TxnCoordinator
	// txnPeers holds the connections the transaction coordinator writes
	// markers over; closed after it stops.
	txnPeers *peerPool
	// shareStates is the share coordinator on __share_group_state; it
	// sends over txnPeers too.
	shareStates *coord.ShareCoordinator
	// shares runs share groups; its persister sends over txnPeers.
	shares *share.Coordinator
	// producerIDs hands out producer ids to idempotent producers
	// (InitProducerId) and to the transaction coordinator alike.
	producerIDs *producerIDBlocks
	// authorizer is the ACL authorizer's settings, nil without one.
	authorizer *auth.AuthorizerConfig
}

// Start starts a node; ctx bounds the start-up only.
//
// long: the start order of the package comment, step by step, with the
// controller-only branch; split up, the order would be harder to check.
func Start(ctx context.Context, opts Options) (_ *Node, err error) {
	if opts.FS == nil {
		opts.FS = vfs.OS()
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	cfg := opts.Config
	authorizer, err := authorizerConfig(cfg)
	if err != nil {
		return nil, err
	}
	bgCtx, cancel := context.WithCancel(context.Background())
	n := &Node{opts: opts, log: opts.Logger, cancel: cancel, authorizer: authorizer, connectionsChanged: make(chan struct{}, 1), descriptorShortage: make(chan struct{}, 1)}
	// A failed start unwinds what it built through the same stop as a
	// shutdown, so the lock, listeners and quorum membership are released
	// and the process (or a test) can start a node on the directory again.
	defer func() {
		if err != nil {
			n.stop(context.Background())
		}
	}()
	n.setStage(stageQuorum)
	if err = opts.FS.MkdirAll(cfg.LogDir(), 0o755); err != nil {
		return nil, fmt.Errorf("log dir: %w", err)
	}
	// The lock comes before anything reads the directory: two processes on
	// one data dir would each recover the same segments and append to them.
	if n.unlock, err = vfs.LockDir(opts.FS, cfg.LogDir()); err != nil {
		return nil, fmt.Errorf("log dir: %w (is another sluice serve using it?)", err)
	}
	// Identity before the quorum: a data dir written by another node.id is
	// refused here, before this node could join the quorum under an
	// identity its data does not have.
	if n.meta, err = loadOrCreateMeta(opts.FS, cfg.LogDir(), cfg.Int32("node.id")); err != nil {
		return nil, err
	}
	// After the lock, so a second node on one data dir is told that, not
	// that the HTTP port is taken; before everything slow, so /readyz
	// can say what the node waits for.
	if err = n.startHTTP(); err != nil {
		return nil, err
	}
	// The client port is bound first thing, before the quorum and the
	// logs: from now on a client that connects is held by the kernel in
	// the listen backlog (its requests wait there) until serve accepts,
	// as Kafka holds connections until request processing is enabled.
	// Refused connections, before, made kcat give up at once after a
	// restart.
	var lns []clientListener
	if n.IsBroker() {
		if lns, err = n.listenAll(); err != nil {
			return nil, err
		}
		n.unserved = lns
	}
	if err = n.startControlPlane(); err != nil {
		return nil, err
	}
	n.obs.cp.Store(n.cp)
	if !n.IsBroker() {
		// A controller-only node does not wait for the quorum to start,
		// so its offline credentials are applied once a leader is there.
		n.goBackground(func() {
			if err := n.applyBootstrapCredentials(bgCtx); err != nil && bgCtx.Err() == nil {
				n.log.Error("applying bootstrap credentials", "err", err)
			}
		})
		n.setStage("")
		// A controller-only node votes and decides; clients are served
		// by the brokers, so it opens no logs and no client listener.
		n.log.Info("controller-only node: serving the metadata quorum, not Kafka clients", "node", n.meta.NodeID)
		return n, nil
	}
	n.setStage(stageLogs)
	if err = n.openLogs(); err != nil {
		return nil, err
	}
	n.obs.parts.Store(n.parts)
	n.obs.logs.Store(n.logs)
	n.setStage(stageRegistration)
	// Before registration, so that clients of a SASL listener can
	// authenticate with the offline admin credential as soon as it serves.
	if err = n.applyBootstrapCredentials(ctx); err != nil {
		return nil, err
	}
	n.session = &brokerSession{
		cp: n.cp, id: n.meta.NodeID, rack: cfg.String("broker.rack"), clock: opts.Clock, log: n.log,
		interval:  time.Duration(cfg.Int64("broker.heartbeat.interval.ms")) * time.Millisecond,
		listeners: registeredListeners(lns),
	}
	if n.session.incarnation, n.session.previousIncarnation, err = newIncarnation(opts.FS, cfg.LogDir()); err != nil {
		return nil, err
	}
	if err = n.session.register(ctx); err != nil {
		return nil, err
	}
	// The first Refresh deletes logs the metadata no longer places here
	// (topics deleted while the node was down), so it must see every
	// committed record: the registration above was applied after them.
	if err = n.parts.Refresh(); err != nil {
		return nil, err
	}
	n.setStage(stageGroups)
	if err = n.startGroupCoordinator(); err != nil {
		return nil, err
	}
	n.obs.groups.Store(n.groups)
	// Serve only once the groups are rebuilt: right after a restart a
	// consumer's first request must see its committed offsets.
	if err = n.groups.WaitLoaded(ctx); err != nil {
		return nil, err
	}
	n.setStage(stageTxns)
	if err = n.startTxnCoordinator(); err != nil {
		return nil, err
	}
	// As for groups: a producer's first InitProducerId after a restart
	// must see its transactional id's epoch.
	if err = n.txns.WaitLoaded(ctx); err != nil {
		return nil, err
	}
	n.setStage(stageShareStates)
	if err = n.startShareStateCoordinator(); err != nil {
		closeListeners(lns)
		return nil, err
	}
	// As for groups: a share partition's first fetch after a restart must
	// find its state.
	if err = n.shareStates.WaitLoaded(ctx); err != nil {
		closeListeners(lns)
		return nil, err
	}
	n.txnVerifier = n.newTxnVerifier()
	n.shares = n.newShares()
	if err = n.serve(lns); err != nil {
		return nil, err
	}
	n.startConsole(lns)
	n.setStage("")
	// Heartbeats run outside n.bg on purpose: shutdown stops them first,
	// before the controlled shutdown, while the loops in n.bg stop only
	// after the listener has closed.
	hbCtx, stopHeartbeats := context.WithCancel(bgCtx)
	heartbeatsDone := make(chan struct{})
	n.stopHeartbeats = func() {
		stopHeartbeats()
		<-heartbeatsDone
	}
	go func() {
		defer close(heartbeatsDone)
		n.session.run(hbCtx, func(err error) { n.log.Warn("broker heartbeat failed", "err", err) })
	}()
	n.goBackground(func() { n.followImages(bgCtx) })
	n.goBackground(func() { n.logs.Run(bgCtx, time.Second) })
	n.goBackground(func() { n.logs.RunCleaner(bgCtx) })
	n.goBackground(func() { n.checkpointProducers(bgCtx) })
	n.goBackground(func() { n.parts.RunISRChecks(bgCtx) })
	n.goBackground(func() {
		fitSegmentFiles(bgCtx, vfs.DescriptorLimit(), n.connectionsChanged, n.descriptorShortage, descriptorShortageMemory, n.server.NumConnections, n.logs)
	})
	return n, nil
}

func (n *Node) goBackground(f func()) {
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		f()
	}()
}

func (n *Node) startControlPlane() error {
	cfg := n.opts.Config
	props := map[string]string{
		"node.id":                  cfg.String("node.id"),
		"process.roles":            cfg.String("process.roles"),
		"controller.quorum.voters": cfg.String("controller.quorum.voters"),
		"metadata.log.dir":         cfg.MetadataLogDir(),
	}
	quorum, err := kraft.ParseQuorumConfig(props)
	if err != nil {
		return err
	}
	var learnerLn net.Listener
	switch {
	case !quorum.IsController():
		// A broker-only node follows the metadata log as a Raft learner
		// and forwards its commands (registration, heartbeats, topic
		// creation) to the active controller. The voters must reach it
		// to replicate to it, so it binds a listener and says where.
		if learnerLn, quorum.ControllerAdvertised, err = n.learnerListener(); err != nil {
			return err
		}
		quorum.ControllerListen = learnerLn.Addr().String()
	case cfg.String("controller.quorum.voters") == "":
		// A cluster of one talks to nobody: its controller listens where
		// controller.listener says, by default a free loopback port, so
		// two nodes can run side by side.
		host, port, err := cfg.ControllerListener()
		if err != nil {
			return err
		}
		quorum.ControllerListen = net.JoinHostPort(host, strconv.Itoa(port))
	case cfg.String("controller.listener") != "":
		// A voter is dialed at its controller.quorum.voters address but
		// may bind elsewhere (0.0.0.0:9093 behind host:9093).
		quorum.ControllerListen = cfg.String("controller.listener")
	}
	ccfg := controller.DefaultConfig()
	ccfg.NumPartitions = cfg.Int32("num.partitions")
	ccfg.DefaultReplicationFactor = int16(cfg.Int32("default.replication.factor"))
	ccfg.BrokerSessionTimeoutMs = cfg.Int64("broker.session.timeout.ms")
	ccfg.AutoLeaderRebalanceEnable = cfg.Bool("auto.leader.rebalance.enable")
	// Kafka's key is in seconds; the controller, like every pure package,
	// works in milliseconds.
	ccfg.LeaderImbalanceCheckIntervalMs = cfg.Int64("leader.imbalance.check.interval.seconds") * 1000
	ccfg.LeaderImbalancePerBrokerPercentage = cfg.Int32("leader.imbalance.per.broker.percentage")
	tlsServer, tlsClient, err := n.controllerTLS()
	if err != nil {
		if learnerLn != nil {
			learnerLn.Close()
		}
		return err
	}
	n.cp, err = kraft.Start(kraft.Options{
		Quorum: quorum, FS: n.opts.FS, Clock: n.opts.Clock, Logger: n.log, Controller: ccfg, Listener: learnerLn,
		TLSServer: tlsServer, TLSClient: tlsClient,
	})
	if err != nil && learnerLn != nil {
		learnerLn.Close() // the quorum may have failed before taking it over
	}
	return err
}

// cleanerConfig reads the log.cleaner.* keys; log.cleaner.enable=false
// runs no cleaner thread.
func cleanerConfig(cfg *config.Broker) log.CleanerConfig {
	c := log.CleanerConfig{
		Threads:             int(cfg.Int32(config.LogCleanerThreads)),
		DedupeBufferBytes:   cfg.Int64(config.LogCleanerDedupeBufferSize),
		IOMaxBytesPerSecond: cfg.Float64(config.LogCleanerIOMaxBytesPerSecond),
		BackoffMs:           cfg.Int64(config.LogCleanerBackoffMs),
	}
	if !cfg.Bool(config.LogCleanerEnable) {
		c.Threads = 0
	}
	return c
}

func (n *Node) openLogs() error {
	cfg := n.opts.Config
	var err error
	sealedFiles, activeFiles := segmentFileBudget(vfs.DescriptorLimit(), 0, 0)
	n.logs, err = log.OpenManager(log.ManagerOptions{
		FS: n.opts.FS, Dir: cfg.LogDir(), Config: log.DefaultConfig(), Clock: n.opts.Clock, Logger: n.log,
		MaxOpenSealedSegments: sealedFiles, MaxOpenActiveSegments: activeFiles,
		RetentionCheckIntervalMs: cfg.Int64("log.retention.check.interval.ms"),
		CheckpointIntervalMs:     cfg.Int64("log.flush.offset.checkpoint.interval.ms"),
		Cleaner:                  cleanerConfig(cfg),
		CleanerMetrics: log.CleanerMetrics{
			CleanTimeSecs: n.metrics.Cleaner.CleanTimeSecs, RecopyPercent: n.metrics.Cleaner.RecopyPercent,
			BufferUtilizationPercent: n.metrics.Cleaner.BufferUtilizationPercent, BytesRead: n.metrics.Cleaner.BytesRead,
			BytesWritten: n.metrics.Cleaner.BytesWritten, RecordsRemoved: n.metrics.Cleaner.RecordsRemoved,
		},
		FlushTime:        n.metrics.LogFlush,
		NoSharedSync:     !cfg.Bool(config.LogFlushSharedSync),
		Journal:          cfg.Bool(config.LogFlushJournal),
		JournalFileBytes: cfg.Int64(config.LogFlushJournalFileBytes),
	})
	if err != nil {
		return fmt.Errorf("open log dir %s: %w", cfg.LogDir(), err)
	}
	n.parts, err = partition.NewManager(partition.Options{
		NodeID: n.meta.NodeID, Logs: n.logs, FS: n.opts.FS, Dir: cfg.LogDir(), Clock: n.opts.Clock, Logger: n.log,
		Image: n.cp.Image, TopicDefaults: n.topicDefaults,
		ProducerIDExpirationMs: cfg.Int64("producer.id.expiration.ms"),
		AlterISR:               n.alterISR,
		DialLeader:             n.dialLeader,
		ReplicaLagTimeMaxMs:    cfg.Int64(config.ReplicaLagTimeMaxMs),
		ISRChanged:             n.isrChanged,
		Fetcher: partition.FetcherConfig{
			MaxWaitMs:        cfg.Int32(config.ReplicaFetchWaitMaxMs),
			MaxBytes:         cfg.Int32(config.ReplicaFetchMaxBytes),
			ResponseMaxBytes: cfg.Int32(config.ReplicaFetchResponseMaxBytes),
			SocketTimeoutMs:  cfg.Int32(config.ReplicaSocketTimeoutMs),
		},
	})
	return err
}

// topicDefaults are the cluster-wide topic config defaults by broker key:
// the static config, with dynamic cluster-wide broker configs over it.
// The flush policy rides along: it is Sluice's broker-wide default for how
// every log syncs, read where the topic configs are.
//
// It is read at every call, not cached, so a dynamic cluster-wide change
// (`sluice cluster config set`) applies without a restart. Dynamic values
// are merged last and win, as Kafka's dynamic cluster-wide defaults win
// over server.properties.
func (n *Node) topicDefaults() map[string]string {
	static := n.opts.Config.TopicDefaults()
	dynamic := n.cp.Image().Configs(metadata.ConfigResourceBroker, "")
	merged := make(map[string]string, len(static)+len(dynamic)+1)
	merged[partition.FlushPolicyKey] = n.opts.Config.String(partition.FlushPolicyKey)
	for k, v := range static {
		merged[k] = v
	}
	for k, v := range dynamic {
		merged[k] = v
	}
	return merged
}

// serve starts the network server on every bound listener, with one API
// server behind it: the listener a request came in on reaches the
// handlers through its connection's session. The listeners share the
// server's limits (max.connections, the request memory pool, the
// per-address limits), which are the broker's, as in Kafka.
func (n *Node) serve(lns []clientListener) error {
	listeners := make([]netserver.Listener, 0, len(lns))
	for _, l := range lns {
		sec, err := n.listenerSecurity(l.cfg)
		if err != nil {
			return err
		}
		listeners = append(listeners, netserver.Listener{Listener: l.ln, Security: sec})
	}
	h := handler{s: api.NewServer(n.brokerDeps(lns[0].host, lns[0].port)), principal: n.opts.testPrincipal}
	// The network server writes Deferred responses in order and keeps
	// their frames, so produces pipelined on a connection share fsyncs.
	h.s.DeferResponses()
	n.server = netserver.NewListeners(listeners, n.netserverConfig(), h)
	n.obs.server.Store(n.server)
	return nil
}

func (n *Node) netserverConfig() netserver.Config {
	cfg := n.opts.Config
	// Checked when the config was loaded.
	overrides, _ := config.ConnectionsPerIPOverrides(cfg.String("max.connections.per.ip.overrides"))
	return netserver.Config{
		MaxRequestBytes:       cfg.Int32("socket.request.max.bytes"),
		QueuedMaxRequestBytes: cfg.Int64("queued.max.request.bytes"),
		IdleTimeout:           time.Duration(cfg.Int64("connections.max.idle.ms")) * time.Millisecond,
		MaxConnections:        int(cfg.Int32("max.connections")),
		Logger:                n.log,
		ConnectionsChanged: func() {
			select {
			case n.connectionsChanged <- struct{}{}:
			default: // a resize is pending already; it reads the count then
			}
		},
		DescriptorShortage: func() {
			select {
			case n.descriptorShortage <- struct{}{}:
			default: // one is pending: the accept loop reports the next after its backoff
			}
		},

		MaxConnectionsPerIP:          connectionsPerIP(cfg.Int32("max.connections.per.ip")),
		MaxConnectionsPerIPOverrides: overrides,
		MaxConnectionCreationRate:    connectionCreationRate(cfg.Int32("max.connection.creation.rate")),
		IPConnectionRate: func(ip string) (float64, bool) {
			return quota.ResolveIP(n.cp.Image().ClientQuotas, ip)
		},
		QuotaWindow: n.quotaWindow(),
	}
}

func (n *Node) brokerDeps(host string, port int) *api.Broker {
	cfg := n.opts.Config
	return &api.Broker{
		NodeID: n.meta.NodeID, ClusterID: n.meta.ClusterID, Host: host, Port: int32(port), Rack: cfg.String("broker.rack"),
		Config: api.Config{
			AutoCreateTopicsEnable:               cfg.Bool("auto.create.topics.enable"),
			NumPartitions:                        cfg.Int32("num.partitions"),
			DefaultReplicationFactor:             int16(cfg.Int32("default.replication.factor")),
			MaxIncrementalFetchSessionCacheSlots: int(cfg.Int32("max.incremental.fetch.session.cache.slots")),
			FetchMaxBytes:                        cfg.Int32("fetch.max.bytes"),
			Static:                               cfg.Values(),
			StaticSources:                        cfg.Sources(),
			Authorizer:                           n.authorizer,
		},
		Control: n.cp, Partitions: n.parts, ProducerIDs: n.producerIDs, Groups: n.groups, Txns: n.txns,
		Clock: n.opts.Clock, Logger: n.log, TopicDefaults: n.topicDefaults, Metrics: n.metrics,
		Quotas: quota.NewManager(n.quotaWindow()),
		// Transactions on the partition side: KIP-890 produce checks, and
		// markers on __consumer_offsets settling transactional commits.
		TxnVerifier: n.txnVerifier, TxnMarkerListener: n.groups,
		Shares: n.shares, ShareStates: n.shareStates,
	}
}

// authorizerConfig is the ACL authorizer's settings, nil when
// authorizer.class.name is empty (no authorization, as in Kafka). A
// super user that is not Type:name refuses the start, as Kafka's does: it
// could never match, and the operator would be locked out.
func authorizerConfig(cfg *config.Broker) (*auth.AuthorizerConfig, error) {
	if cfg.String(config.AuthorizerClassName) == "" {
		return nil, nil
	}
	superUsers := auth.ParseSuperUsers(cfg.String(config.SuperUsers))
	for _, u := range superUsers {
		if typ, name, ok := strings.Cut(u, ":"); !ok || typ == "" || name == "" {
			return nil, fmt.Errorf("config: super.users entry %q: want Type:name, e.g. User:admin", u)
		}
	}
	return &auth.AuthorizerConfig{SuperUsers: superUsers, AllowEveryoneIfNoACL: cfg.Bool(config.AllowEveryoneIfNoACLFound)}, nil
}

// followImages hosts partitions as the metadata changes.
func (n *Node) followImages(ctx context.Context) {
	for {
		// Watch before Refresh: an image published while Refresh runs
		// closes this changed channel, so the loop runs once more and no
		// change is missed, at the cost of an occasional extra Refresh.
		_, changed := n.cp.Watch()
		if err := n.parts.Refresh(); err != nil {
			n.log.Error("hosting partitions from metadata", "err", err)
		}
		// After the partitions: a shard loads from its partition's log.
		n.groups.Refresh()
		n.txns.Refresh()
		n.shareStates.Refresh()
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// checkpointProducers snapshots producer state now and then, so a restart
// after a crash rescans only the log written since.
func (n *Node) checkpointProducers(ctx context.Context) {
	t := n.opts.Clock.NewTicker(time.Duration(n.opts.Config.Int64("log.flush.offset.checkpoint.interval.ms")) * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			if err := n.parts.Checkpoint(); err != nil {
				n.log.Warn("producer state checkpoint", "err", err)
			}
		}
	}
}

// Addr is the first client listener's address; nil on a controller-only node.
func (n *Node) Addr() net.Addr {
	if n.server == nil {
		return nil
	}
	return n.server.Addr()
}

// Listeners are the client listeners' names and bound addresses, in the
// order of listeners; none on a controller-only node.
func (n *Node) Listeners() []netserver.ListenerAddr {
	if n.server == nil {
		return nil
	}
	return n.server.Listeners()
}

// ListenerAddr is the address of the client listener of that name; nil
// when there is none.
func (n *Node) ListenerAddr(name string) net.Addr {
	for _, l := range n.Listeners() {
		if l.Name == name {
			return l.Addr
		}
	}
	return nil
}

// ClusterID is the cluster's id from meta.properties.
func (n *Node) ClusterID() string { return n.meta.ClusterID }

// Shutdown stops the node cleanly: requests already read are answered and
// every log is flushed and marked cleanly shut down. ctx bounds the wait
// for in-flight requests.
func (n *Node) Shutdown(ctx context.Context) error {
	return n.stop(ctx)
}

func (n *Node) stop(ctx context.Context) error {
	var errs []error
	n.closeOnce.Do(func() {
		n.setStage(stageShuttingDown)
		if n.server != nil && n.session != nil && n.stopHeartbeats != nil {
			// Controlled shutdown first, while still serving: leadership
			// moves to other ISR members and clients still connected are
			// told NOT_LEADER_OR_FOLLOWER and move with it, so a rolling
			// restart of RF>1 topics never leaves a partition leaderless.
			n.stopHeartbeats()
			n.controlledShutdown(ctx)
		}
		if n.server != nil {
			errs = append(errs, n.server.Shutdown(ctx))
		} else {
			closeListeners(n.unserved)
		}
		// The background loops use the groups, partitions and logs, so
		// they stop before any of those close. The group coordinator
		// stops before the partitions: it writes to __consumer_offsets.
		n.cancel()
		n.bg.Wait()
		if n.groups != nil {
			n.groups.Stop()
		}
		// Before the partitions too: it writes to __transaction_state.
		if n.txns != nil {
			n.txns.Stop()
		}
		// The releases of records that closing connections started stop
		// before the share coordinator and the peers they write through.
		if n.shares != nil {
			n.shares.Close()
		}
		// Before the partitions too: it writes to __share_group_state.
		if n.shareStates != nil {
			n.shareStates.Stop()
		}
		if n.txnPeers != nil {
			n.txnPeers.close()
		}
		if n.txnVerifier != nil {
			n.txnVerifier.Close()
		}
		if n.parts != nil {
			errs = append(errs, n.parts.Close())
		}
		if n.logs != nil {
			errs = append(errs, n.logs.Close())
		}
		if n.cp != nil {
			errs = append(errs, n.cp.Stop())
		}
		// The data-dir lock goes last, after the logs are closed: a
		// second process must not open segments this one may still be
		// writing.
		if n.unlock != nil {
			errs = append(errs, n.unlock())
		}
		// Last: /readyz says "shutting down" until the node is gone.
		errs = append(errs, n.stopConsole(), n.stopHTTP())
	})
	return errors.Join(errs...)
}

// controlledShutdownTimeout bounds the controlled shutdown: when the
// controller quorum is gone (the last nodes of a cluster stopping at once)
// the broker stops without it, as Kafka's does after its retries. Its logs
// are closed cleanly all the same; the cost is that its next start waits
// for the session to expire, as after a crash.
const controlledShutdownTimeout = 5 * time.Second

// controlledShutdown asks the controller to fence this broker and move its
// leaderships, then applies the resulting image so its partitions stop
// being led here before the listener closes.
func (n *Node) controlledShutdown(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, controlledShutdownTimeout)
	defer cancel()
	if err := n.session.shutDown(ctx); err != nil {
		n.log.Warn("controlled shutdown: the controller was not told; the next start waits for this session to expire", "err", err)
		return
	}
	if err := n.parts.Refresh(); err != nil {
		n.log.Warn("controlled shutdown: hosting partitions from metadata", "err", err)
	}
}

// handler adapts the api server to the network server: the same method
// with the network server's own Response interface.
type handler struct {
	s         *api.Server
	principal func(clientAddr string) (auth.Principal, bool)
}

func (h handler) Serve(ctx context.Context, clientAddr string, frame []byte) (netserver.Response, error) {
	if h.principal != nil {
		if p, ok := h.principal(clientAddr); ok {
			ctx = auth.WithPrincipal(ctx, p)
		}
	}
	resp, err := h.s.Serve(ctx, clientAddr, frame)
	if resp == nil {
		return nil, err
	}
	return resp, err
}

// CanInline makes the handler a netserver.Inliner.
func (h handler) CanInline(ctx context.Context, frame []byte) bool {
	return h.s.CanInline(ctx, frame)
}

// CanPipeline makes the handler a netserver.Pipeliner.
func (h handler) CanPipeline(ctx context.Context, frame []byte) bool {
	return h.s.CanPipeline(ctx, frame)
}
