package config

import (
	"math"
	"slices"
	"strings"
)

// Static broker config keys, spelled as Kafka spells them. The keys that
// set a topic config's cluster-wide default (log.retention.ms, ...) are in
// TopicConfigs' BrokerName fields and are accepted here too.
const (
	NodeID                               = "node.id"
	BrokerID                             = "broker.id" // Kafka's older name for node.id
	ProcessRoles                         = "process.roles"
	ControllerQuorumVoters               = "controller.quorum.voters"
	ControllerListener                   = "controller.listener"
	MetadataLogDir                       = "metadata.log.dir"
	LogDirs                              = "log.dirs"
	LogDir                               = "log.dir"
	Listeners                            = "listeners"
	AdvertisedListeners                  = "advertised.listeners"
	BrokerRack                           = "broker.rack"
	NumPartitions                        = "num.partitions"
	DefaultReplicationFactor             = "default.replication.factor"
	AutoCreateTopicsEnable               = "auto.create.topics.enable"
	SocketRequestMaxBytes                = "socket.request.max.bytes"
	QueuedMaxRequestBytes                = "queued.max.request.bytes"
	MaxConnections                       = "max.connections"
	ConnectionsMaxIdleMs                 = "connections.max.idle.ms"
	BrokerHeartbeatIntervalMs            = "broker.heartbeat.interval.ms"
	BrokerSessionTimeoutMs               = "broker.session.timeout.ms"
	MaxIncrementalFetchSessionCacheSlots = "max.incremental.fetch.session.cache.slots"
	FetchMaxBytes                        = "fetch.max.bytes"
	LogFlushPolicy                       = "log.flush.policy"
	LogFlushSharedSync                   = "log.flush.shared.sync"
	LogFlushJournal                      = "log.flush.journal"
	LogFlushJournalFileBytes             = "log.flush.journal.file.bytes"
	LogRetentionCheckIntervalMs          = "log.retention.check.interval.ms"
	LogFlushOffsetCheckpointIntervalMs   = "log.flush.offset.checkpoint.interval.ms"
	ProducerIDExpirationMs               = "producer.id.expiration.ms"
	OffsetsTopicNumPartitions            = "offsets.topic.num.partitions"
	OffsetsTopicReplicationFactor        = "offsets.topic.replication.factor"
	GroupInitialRebalanceDelayMs         = "group.initial.rebalance.delay.ms"
	GroupMinSessionTimeoutMs             = "group.min.session.timeout.ms"
	GroupMaxSessionTimeoutMs             = "group.max.session.timeout.ms"
	GroupMaxSize                         = "group.max.size"
	GroupConsumerAssignors               = "group.consumer.assignors"
	GroupConsumerHeartbeatIntervalMs     = "group.consumer.heartbeat.interval.ms"
	GroupConsumerMaxSize                 = "group.consumer.max.size"
	GroupConsumerMigrationPolicy         = "group.consumer.migration.policy"
	GroupConsumerSessionTimeoutMs        = "group.consumer.session.timeout.ms"
	OffsetsRetentionMinutes              = "offsets.retention.minutes"
	ReplicaLagTimeMaxMs                  = "replica.lag.time.max.ms"
	ReplicaFetchWaitMaxMs                = "replica.fetch.wait.max.ms"
	ReplicaFetchMaxBytes                 = "replica.fetch.max.bytes"
	ReplicaFetchResponseMaxBytes         = "replica.fetch.response.max.bytes"
	ReplicaSocketTimeoutMs               = "replica.socket.timeout.ms"
	AutoLeaderRebalanceEnable            = "auto.leader.rebalance.enable"
	LeaderImbalanceCheckIntervalSeconds  = "leader.imbalance.check.interval.seconds"
	LeaderImbalancePerBrokerPercentage   = "leader.imbalance.per.broker.percentage"
	HTTPListener                         = "http.listener"
	HTTPConsoleEnabled                   = "http.console.enabled"
	HTTPPprofEnabled                     = "http.pprof.enabled"
	LogFormat                            = "log.format"
	AuthorizerClassName                  = "authorizer.class.name"
	SuperUsers                           = "super.users"
	AllowEveryoneIfNoACLFound            = "allow.everyone.if.no.acl.found"

	// The log cleaner (compaction), one set of threads per log directory.
	LogCleanerEnable              = "log.cleaner.enable"
	LogCleanerThreads             = "log.cleaner.threads"
	LogCleanerDedupeBufferSize    = "log.cleaner.dedupe.buffer.size"
	LogCleanerIOMaxBytesPerSecond = "log.cleaner.io.max.bytes.per.second"
	LogCleanerBackoffMs           = "log.cleaner.backoff.ms"

	// The transaction coordinator's keys.
	TransactionMaxTimeoutMs                   = "transaction.max.timeout.ms"
	TransactionStateLogNumPartitions          = "transaction.state.log.num.partitions"
	TransactionStateLogReplicationFactor      = "transaction.state.log.replication.factor"
	TransactionStateLogMinISR                 = "transaction.state.log.min.isr"
	TransactionalIDExpirationMs               = "transactional.id.expiration.ms"
	TransactionAbortTimedOutCleanupIntervalMs = "transaction.abort.timed.out.transaction.cleanup.interval.ms"
	TransactionRemoveExpiredCleanupIntervalMs = "transaction.remove.expired.transaction.cleanup.interval.ms"

	// Client quotas and connection limits (docs/security.md#quotas).
	QuotaWindowNum               = "quota.window.num"
	QuotaWindowSizeSeconds       = "quota.window.size.seconds"
	MaxConnectionsPerIP          = "max.connections.per.ip"
	MaxConnectionsPerIPOverrides = "max.connections.per.ip.overrides"
	MaxConnectionCreationRate    = "max.connection.creation.rate"

	// Aliases of topic-default keys, resolved as Kafka resolves them:
	// log.retention.ms > log.retention.minutes > log.retention.hours, and
	// log.roll.ms > log.roll.hours.
	LogRetentionMs      = "log.retention.ms"
	LogRetentionMinutes = "log.retention.minutes"
	LogRetentionHours   = "log.retention.hours"
	LogRollMs           = "log.roll.ms"
	LogRollHours        = "log.roll.hours"
)

// Share groups (KIP-932; docs/groups.md#share-groups).
const (
	GroupShareSessionTimeoutMs        = "group.share.session.timeout.ms"
	GroupShareHeartbeatIntervalMs     = "group.share.heartbeat.interval.ms"
	GroupShareMaxSize                 = "group.share.max.size"
	GroupShareRecordLockDurationMs    = "group.share.record.lock.duration.ms"
	GroupShareDeliveryCountLimit      = "group.share.delivery.count.limit"
	GroupSharePartitionMaxRecordLocks = "group.share.partition.max.record.locks"
	GroupShareMaxShareSessions        = "group.share.max.share.sessions"
	ShareAutoOffsetReset              = "share.auto.offset.reset"

	ShareCoordinatorStateTopicNumPartitions     = "share.coordinator.state.topic.num.partitions"
	ShareCoordinatorStateTopicReplicationFactor = "share.coordinator.state.topic.replication.factor"
	ShareCoordinatorStateTopicMinISR            = "share.coordinator.state.topic.min.isr"
	ShareCoordinatorSnapshotUpdateRecords       = "share.coordinator.snapshot.update.records.per.snapshot"
)

// Values of share.auto.offset.reset.
const (
	ShareAutoOffsetResetLatest   = "latest"
	ShareAutoOffsetResetEarliest = "earliest"
)

// Values of log.flush.policy.
const (
	FlushAlways   = "always"
	FlushInterval = "interval"
	FlushNever    = "never"
)

// Values of log.format.
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// Values of authorizer.class.name that turn ACL authorization on: Kafka's
// KRaft authorizer class, so a Kafka server.properties works unchanged, and
// Sluice's short name for the same thing.
const (
	StandardAuthorizerClass = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
	SluiceAuthorizer        = "acl"
)

// DefaultHTTPListener is where metrics, health and the console are served
// when http.listener is not set: loopback only, because nothing on it is
// authenticated yet (Redpanda's admin port).
const DefaultHTTPListener = "localhost:9644"

// DefaultListenPort is the client port when neither listeners nor --listen
// says otherwise: Kafka's.
const DefaultListenPort = 9092

// maxShort bounds replication factors, which travel as int16 on the wire.
const maxShort = math.MaxInt16

// BrokerConfigs are the static broker configs Sluice honours that are not
// topic defaults, sorted by name. Defaults are Kafka 4's except where an
// entry's Doc says why Sluice differs; the Sluice-only keys say so.
var BrokerConfigs = []Def{
	{
		Name: AdvertisedListeners, Type: TypeString,
		Doc: "The address clients are told to connect to (PLAINTEXT://host:port); empty means the listener's, with localhost for an all-interfaces host.",
	},
	{
		Name: AllowEveryoneIfNoACLFound, Type: TypeBoolean, Default: "false",
		Doc: "With an authorizer, whether a resource that no ACL names is open to every principal (true) or only to super.users (false).",
	},
	{
		Name: AuthorizerClassName, Type: TypeString,
		Values: []string{StandardAuthorizerClass, SluiceAuthorizer},
		Doc: "Turns on ACL authorization of every request (docs/security.md): " + StandardAuthorizerClass + " (Kafka's name) or " +
			SluiceAuthorizer + " (the same, short). Empty: no authorization, every request is allowed.",
	},
	{
		Name: AutoCreateTopicsEnable, Type: TypeBoolean, Default: "true",
		Doc: "Whether a Metadata or Produce request naming a missing topic creates it with num.partitions and the topic defaults.",
	},
	{
		Name: AutoLeaderRebalanceEnable, Type: TypeBoolean, Default: "true",
		Doc: "Whether the controller periodically moves each partition's leadership back to its preferred replica (the first one) when that replica is in the ISR.",
	},
	{
		Name: BrokerHeartbeatIntervalMs, Type: TypeInt, Default: "2000", Ranges: atLeast(1, maxInt),
		Doc: "How often a broker tells the controller it is alive.",
	},
	{
		Name: BrokerID, Type: TypeInt, Ranges: atLeast(1, maxInt),
		Deprecated: "use node.id; if both are set they must agree",
		Doc:        "The older name of node.id.",
	},
	{
		Name: BrokerRack, Type: TypeString,
		Doc: "The rack or zone this broker is in, reported in Metadata so clients and replica placement can use it.",
	},
	{
		Name: BrokerSessionTimeoutMs, Type: TypeInt, Default: "9000", Ranges: atLeast(1, maxInt),
		Doc: "How long the controller waits without a heartbeat before it fences a broker and moves its leaderships.",
	},
	{
		Name: ConnectionsMaxIdleMs, Type: TypeLong, Default: "600000", Ranges: []Range{{-1, -1}, {1, maxLong}},
		Doc: "How long a client connection may sit without a request before the broker closes it; -1 never closes idle connections.",
	},
	{
		Name: ControllerListener, Type: TypeString,
		Doc: "Sluice only: host:port where this node listens for the metadata quorum. Empty: a cluster of one picks a free loopback port, " +
			"a voter listens at its controller.quorum.voters address, and a broker-only node picks a free port on its client listener's interface " +
			"(it tells the voters its address, with the advertised.listeners host for an all-interfaces bind).",
	},
	{
		Name: ControllerQuorumVoters, Type: TypeList,
		Doc: "The metadata quorum's voters as id@host:port,...; empty makes this node a cluster of one.",
	},
	{
		Name: DefaultReplicationFactor, Type: TypeInt, Default: "1", Ranges: atLeast(1, maxShort),
		Doc: "The replication factor of topics created without one (auto-created or with -1).",
	},
	{
		Name: FetchMaxBytes, Type: TypeInt, Default: "57671680", Ranges: atLeast(1024, maxInt),
		Doc: "The most bytes one Fetch response carries, whatever the client asks for (at least one whole batch is always returned).",
	},
	{
		Name: GroupConsumerAssignors, Type: TypeList, Default: "uniform,range", Values: []string{"uniform", "range"},
		Doc: "The server-side assignors of consumer-protocol (KIP-848) groups; the first is used unless a member asks for another by name.",
	},
	{
		Name: GroupConsumerHeartbeatIntervalMs, Type: TypeInt, Default: "5000", Ranges: atLeast(1, maxInt),
		Doc: "How often members of consumer-protocol (KIP-848) groups are told to heartbeat.",
	},
	{
		Name: GroupConsumerMaxSize, Type: TypeInt, Default: "2147483647", Ranges: atLeast(1, maxInt),
		Doc: "The most members one consumer-protocol (KIP-848) group may have.",
	},
	{
		Name: GroupConsumerMigrationPolicy, Type: TypeString, Default: "bidirectional",
		Values: []string{"bidirectional", "upgrade", "downgrade", "disabled"},
		Doc: "Which conversions a consumer group with members may make between the classic and the consumer (KIP-848) protocol while its members roll: " +
			"upgrade converts a classic group when a consumer-protocol member joins it, downgrade converts a consumer group back when its last consumer-protocol member leaves. " +
			"Classic members may join a consumer-protocol group whatever the policy.",
	},
	{
		Name: GroupConsumerSessionTimeoutMs, Type: TypeInt, Default: "45000", Ranges: atLeast(1, maxInt),
		Doc: "How long a member of a consumer-protocol (KIP-848) group may go without a heartbeat before it is removed and its partitions reassigned. " +
			"The broker sets it (the client's session.timeout.ms is not used by this protocol).",
	},
	{
		Name: GroupInitialRebalanceDelayMs, Type: TypeInt, Default: "3000", Ranges: atLeast(0, maxInt),
		Doc: "How long a new, empty consumer group waits for more members before its first rebalance. " +
			"Unless set, a cluster of one (no controller.quorum.voters) uses 0, as Kafka's own development config does: " +
			"there a one-off consumer should not wait 3 s, and a cluster's groups still get Kafka's 3 s.",
	},
	{
		Name: GroupMaxSessionTimeoutMs, Type: TypeInt, Default: "1800000", Ranges: atLeast(1, maxInt),
		Doc: "The longest session timeout a group member may ask for.",
	},
	{
		Name: GroupMaxSize, Type: TypeInt, Default: "2147483647", Ranges: atLeast(1, maxInt),
		Doc: "The most members one consumer group may have.",
	},
	{
		Name: GroupMinSessionTimeoutMs, Type: TypeInt, Default: "6000", Ranges: atLeast(1, maxInt),
		Doc: "The shortest session timeout a group member may ask for; shorter ones make failure detection noisy.",
	},
	{
		Name: GroupShareDeliveryCountLimit, Type: TypeInt, Default: "5", Ranges: []Range{{2, 10}},
		Doc: "How many times a share group delivers a record (acquisition lock expired or released) before it archives it and moves on.",
	},
	{
		Name: GroupShareHeartbeatIntervalMs, Type: TypeInt, Default: "5000", Ranges: atLeast(1, maxInt),
		Doc: "How often share group members are told to heartbeat.",
	},
	{
		Name: GroupShareMaxShareSessions, Type: TypeInt, Default: "2000", Ranges: atLeast(1, maxInt),
		Doc: "The most share sessions (ShareFetch sessions of share group members) one broker keeps.",
	},
	{
		Name: GroupShareMaxSize, Type: TypeInt, Default: "200", Ranges: atLeast(1, 1000),
		Doc: "The most members one share group may have.",
	},
	{
		Name: GroupSharePartitionMaxRecordLocks, Type: TypeInt, Default: "2000", Ranges: atLeast(1, 10000),
		Doc: "The most in-flight records (between the share-partition start and end offsets, acquired or not) of one share partition; " +
			"a record stuck in delivery holds the window, and the share partition takes no new records until it moves. " +
			"Kafka's minimum is 100; Sluice accepts smaller values for tests.",
	},
	{
		Name: GroupShareRecordLockDurationMs, Type: TypeInt, Default: "30000", Ranges: atLeast(1, 3600000),
		Doc: "How long a share group member holds the records a ShareFetch acquired for it; unacknowledged records become available again after it. " +
			"Kafka's minimum is 1000 ms; Sluice accepts shorter locks for tests.",
	},
	{
		Name: GroupShareSessionTimeoutMs, Type: TypeInt, Default: "45000", Ranges: atLeast(1, maxInt),
		Doc: "A share group member that has not heartbeated for this long leaves the group, and its acquired records are released.",
	},
	{
		Name: HTTPConsoleEnabled, Type: TypeBoolean, Default: "true",
		Doc: "Sluice only: whether the HTTP listener serves the web console at / on a broker (an index of the other endpoints when off). " +
			"The console is a Kafka client of its own node; it samples throughput and group lag only after its first page is opened.",
	},
	{
		Name: HTTPListener, Type: TypeString, Default: DefaultHTTPListener,
		Doc: "Sluice only: host:port of the HTTP listener serving /metrics (Prometheus), /healthz, /readyz, /debug/pprof/ and the console; " +
			"port 0 picks a free port, empty disables it. Nothing on it is authenticated, so the default binds to loopback only.",
	},
	{
		Name: HTTPPprofEnabled, Type: TypeBoolean, Default: "false",
		Doc: "Sluice only: whether the HTTP listener serves Go's profiler at /debug/pprof/ (404 when off). " +
			"A profile costs CPU and reveals internals, so it is off unless asked for.",
	},
	{
		Name: LeaderImbalanceCheckIntervalSeconds, Type: TypeLong, Default: "300", Ranges: atLeast(1, maxLong),
		Doc: "How often the controller checks for partitions not led by their preferred replica (auto.leader.rebalance.enable).",
	},
	{
		Name: LeaderImbalancePerBrokerPercentage, Type: TypeInt, Default: "10", Ranges: atLeast(0, 100),
		Doc: "The share (percent) of the partitions a broker is preferred for that may be led elsewhere before the rebalance check moves them back; 0 corrects any imbalance.",
	},
	{
		Name: Listeners, Type: TypeString, Default: "PLAINTEXT://localhost:9092",
		Doc: "Where the broker accepts clients, as PLAINTEXT://host:port or host:port; an empty host means all interfaces, port 0 a free port.",
	},
	{
		Name: LogCleanerBackoffMs, Type: TypeLong, Default: "15000", Ranges: atLeast(0, maxLong),
		Doc: "How long a cleaner thread sleeps when no log needs compacting.",
	},
	{
		Name: LogCleanerDedupeBufferSize, Type: TypeLong, Default: "134217728", Ranges: atLeast(1024, maxLong),
		Doc: "The memory, shared by all cleaner threads, for the map of key hashes to latest offsets (24 bytes a key); " +
			"when a log has more distinct dirty keys than fit, a clean compacts the prefix that fits and the next clean goes on.",
	},
	{
		Name: LogCleanerEnable, Type: TypeBoolean, Default: "true",
		Doc: "Whether the cleaner compacts topics with cleanup.policy=compact; off, they keep every record.",
	},
	{
		Name: LogCleanerIOMaxBytesPerSecond, Type: TypeDouble, Default: "1.7976931348623157E308", MinDouble: 0, MaxDouble: math.MaxFloat64,
		Doc: "The most bytes per second the cleaner threads read and write together; the default is unlimited.",
	},
	{
		Name: LogCleanerThreads, Type: TypeInt, Default: "1", Ranges: atLeast(0, maxInt),
		Doc: "How many threads compact logs; 0 compacts nothing.",
	},
	{
		Name: LogDir, Type: TypeString, Default: "./data",
		Doc: "The directory partitions are kept in, when log.dirs is not set.",
	},
	{
		Name: LogDirs, Type: TypeString, Default: "./data",
		Doc: "The directory partitions and meta.properties are kept in; Sluice uses exactly one. Wins over log.dir.",
	},
	{
		Name: LogFlushOffsetCheckpointIntervalMs, Type: TypeInt, Default: "60000", Ranges: atLeast(0, maxInt),
		Doc: "How often each log's recovery point is checkpointed, which bounds how much is re-scanned after a crash.",
	},
	{
		Name: LogFlushPolicy, Type: TypeString, Default: FlushAlways,
		Values: []string{FlushAlways, FlushInterval, FlushNever},
		Doc: "Sluice only: when appends are fsynced. always acknowledges acks=1/all only after a group-commit fsync; " +
			"interval fsyncs per log.flush.interval.ms/messages; never leaves it to the OS, which is Kafka's page-cache behaviour.",
	},
	{
		Name: LogFlushSharedSync, Type: TypeBoolean, Default: "true",
		Doc: "Sluice only: when several partitions need an fsync at the same time, cover them with one syncfs of the log directory's file system " +
			"instead of one fdatasync each (Linux, local file systems). false: every partition syncs its own files; choose it when log.dirs " +
			"shares a file system with other busy writers or with many topics on log.flush.policy=never, whose dirty data a syncfs writes back too.",
	},
	{
		Name: LogFlushJournal, Type: TypeBoolean, Default: "true",
		Doc: "Sluice only: under log.flush.policy=always, make small append rounds (up to 64 KiB) durable by appending a copy to a " +
			"write-ahead journal in each log directory (two preallocated files) and syncing that one file, instead of " +
			"syncing each partition's segment file; the segments are synced together by a syncfs when a journal file fills, and " +
			"a restart after a crash replays the journal. Acks about a third faster; every small round is written twice. " +
			"Needs syncfs (Linux, local file systems): elsewhere the logs sync their own segments, with a warning at start. " +
			"Turned off, a journal left in the log directory is replayed at the next start, then removed.",
	},
	{
		Name: LogFlushJournalFileBytes, Type: TypeLong, Default: "8388608",
		Doc: "Sluice only: the size of each of the two write-ahead journal files (log.flush.journal). A checkpoint (one syncfs " +
			"of the log directory) runs each time a file fills and makes durable the segment bytes its rounds wrote; on Linux " +
			"their write-back is started as they are acknowledged, so it finds little left to write (elsewhere it writes them " +
			"all then, and acknowledgements stall for as long). Larger files refuse fewer rounds while a checkpoint runs, and " +
			"cost more disk at the first start and more replay after a crash.",
		Ranges: atLeast(1<<20, maxLong),
	},
	{
		Name: LogFormat, Type: TypeString, Default: LogFormatText,
		Values: []string{LogFormatText, LogFormatJSON},
		Doc:    "Sluice only: the format of the broker's own log lines on stderr: text (key=value) or json (one object per line, for log shippers).",
	},
	{
		Name: LogRetentionCheckIntervalMs, Type: TypeLong, Default: "300000", Ranges: atLeast(1, maxLong),
		Doc: "How often the broker looks for segments that retention should delete.",
	},
	{
		Name: LogRetentionHours, Type: TypeInt, Default: "168", Ranges: atLeast(-1, maxInt),
		Doc: "Retention in hours; log.retention.minutes and log.retention.ms win over it. -1 keeps segments forever.",
	},
	{
		Name: LogRetentionMinutes, Type: TypeInt, Ranges: atLeast(-1, maxInt),
		Doc: "Retention in minutes; wins over log.retention.hours, log.retention.ms wins over it. -1 keeps segments forever.",
	},
	{
		Name: LogRollHours, Type: TypeInt, Default: "168", Ranges: atLeast(1, maxInt),
		Doc: "The age in hours at which the active segment rolls; log.roll.ms wins over it.",
	},
	{
		Name: MaxConnectionCreationRate, Type: TypeInt, Default: "2147483647", Ranges: atLeast(0, maxInt),
		Doc: "The most new connections a second the broker accepts; above it the accept loop waits (clients wait in the listen backlog), as in Kafka. " +
			"Per-address rates are connection_creation_rate quotas on ip entities (sluice quota alter --ip).",
	},
	{
		Name: MaxConnections, Type: TypeInt, Default: "10000", Ranges: atLeast(0, maxInt),
		Doc: "The most client connections at once. Kafka's default is unlimited; Sluice caps it because every connection " +
			"holds buffers and goroutines, and a leaking client should meet refused connections, not an out-of-memory broker.",
	},
	{
		Name: MaxConnectionsPerIP, Type: TypeInt, Default: "2147483647", Ranges: atLeast(0, maxInt),
		Doc: "The most connections at once from one client address; a connection over it is closed right after accept. " +
			"0 admits only the addresses in max.connections.per.ip.overrides.",
	},
	{
		Name: MaxConnectionsPerIPOverrides, Type: TypeString,
		Doc: "Per-address exceptions to max.connections.per.ip, as ip:count pairs separated by commas (10.0.0.1:200,::1:5). " +
			"Sluice takes IP addresses only, not host names.",
	},
	{
		Name: MaxIncrementalFetchSessionCacheSlots, Type: TypeInt, Default: "1000", Ranges: atLeast(0, maxInt),
		Doc: "The most incremental fetch sessions (KIP-227) the broker keeps; beyond it, the least useful session is evicted.",
	},
	{
		Name: MetadataLogDir, Type: TypeString,
		Doc: "Where the metadata quorum keeps its log and snapshots; empty means <log.dirs>/__cluster_metadata.",
	},
	{
		// Kafka accepts 0, but the metadata quorum's Raft library uses 0
		// for "no node", so it is refused here, before anything starts.
		Name: NodeID, Type: TypeInt, Default: "1", Ranges: atLeast(1, maxInt),
		Doc: "This node's id in the cluster, unique across brokers and controllers. Unlike Kafka, 0 is not allowed: the Raft quorum reserves it.",
	},
	{
		Name: NumPartitions, Type: TypeInt, Default: "1", Ranges: atLeast(1, maxInt),
		Doc: "The partition count of topics created without one (auto-created or with -1).",
	},
	{
		Name: OffsetsRetentionMinutes, Type: TypeInt, Default: "10080", Ranges: atLeast(1, maxInt),
		Doc: "How long an empty consumer group's committed offsets are kept.",
	},
	{
		Name: OffsetsTopicNumPartitions, Type: TypeInt, Default: "50", Ranges: atLeast(1, maxInt),
		Doc: "The partition count of __consumer_offsets; fixed once the topic exists.",
	},
	{
		Name: OffsetsTopicReplicationFactor, Type: TypeInt, Default: "3", Ranges: atLeast(1, maxShort),
		Doc: "The replication factor of __consumer_offsets, capped at the number of live (registered, unfenced) brokers when the topic is created, " +
			"so a cluster of one works out of the box.",
	},
	{
		Name: ProcessRoles, Type: TypeList, Default: "broker,controller",
		Values: []string{"broker", "controller"},
		Doc: "What this node runs: broker, controller or both (the default, a cluster of one). A broker-only node follows the controllers " +
			"(controller.quorum.voters) as a Raft learner; a controller-only node votes and decides but serves no Kafka clients.",
	},
	{
		Name: ProducerIDExpirationMs, Type: TypeInt, Default: "86400000", Ranges: atLeast(1, maxInt),
		Doc: "How long a producer id's state is kept after its last write, for idempotent retries.",
	},
	{
		Name: QueuedMaxRequestBytes, Type: TypeLong, Default: "536870912", Ranges: []Range{{-1, -1}, {1, maxLong}},
		Doc: "The most bytes of requests read but not yet answered, across all connections. Kafka's default is unlimited (-1); " +
			"Sluice bounds it so many large requests at once cannot exhaust memory.",
	},
	{
		Name: QuotaWindowNum, Type: TypeInt, Default: "11", Ranges: []Range{{1, 100}},
		Doc: "How many windows client quota rates are sampled over: a rate is measured across this many windows of quota.window.size.seconds. " +
			"Kafka sets no upper bound; Sluice caps it at 100 because every client's sensor holds one slot per window.",
	},
	{
		Name: QuotaWindowSizeSeconds, Type: TypeInt, Default: "1", Ranges: []Range{{1, 3600}},
		Doc: "The length of one client quota sample window (at most an hour in Sluice, so a throttle time fits its field).",
	},
	{
		Name: ReplicaFetchMaxBytes, Type: TypeInt, Default: "1048576", Ranges: atLeast(0, maxInt),
		Doc: "How many bytes a follower asks for per partition in one fetch from its leader (at least one whole batch is always returned).",
	},
	{
		Name: ReplicaFetchResponseMaxBytes, Type: TypeInt, Default: "10485760", Ranges: atLeast(0, maxInt),
		Doc: "How many bytes a follower asks for in one whole fetch from its leader.",
	},
	{
		Name: ReplicaFetchWaitMaxMs, Type: TypeInt, Default: "500", Ranges: atLeast(0, maxInt),
		Doc: "How long a leader holds a follower's fetch when there is nothing new; keep it below replica.lag.time.max.ms.",
	},
	{
		Name: ReplicaLagTimeMaxMs, Type: TypeLong, Default: "30000", Ranges: atLeast(1, maxLong),
		Doc: "A follower that has not caught up to the leader's log end offset for this long leaves the ISR; it rejoins once caught up.",
	},
	{
		Name: ReplicaSocketTimeoutMs, Type: TypeInt, Default: "30000", Ranges: atLeast(1, maxInt),
		Doc: "How long a follower waits for its leader to answer a fetch before it reconnects; at least replica.fetch.wait.max.ms.",
	},
	{
		Name: ShareAutoOffsetReset, Type: TypeString, Default: ShareAutoOffsetResetLatest,
		Values: []string{ShareAutoOffsetResetLatest, ShareAutoOffsetResetEarliest},
		Doc: "Sluice only: where a share group starts reading a partition it has no state for (latest: the high watermark; earliest: the log start). " +
			"Kafka sets this only per group; here it is the default for every share group whose group config share.auto.offset.reset is not set.",
	},
	{
		Name: ShareCoordinatorSnapshotUpdateRecords, Type: TypeInt, Default: "500", Ranges: atLeast(0, 500),
		Doc: "How many ShareUpdate records the share coordinator writes for a share partition before it writes a new ShareSnapshot to __share_group_state.",
	},
	{
		Name: ShareCoordinatorStateTopicMinISR, Type: TypeInt, Default: "2", Ranges: atLeast(1, maxInt),
		Doc: "min.insync.replicas of __share_group_state, capped at its replication factor when the topic is created so a cluster of one works.",
	},
	{
		Name: ShareCoordinatorStateTopicNumPartitions, Type: TypeInt, Default: "50", Ranges: atLeast(1, maxInt),
		Doc: "The partition count of __share_group_state, where the share coordinator keeps share partitions' state; fixed once the topic exists.",
	},
	{
		Name: ShareCoordinatorStateTopicReplicationFactor, Type: TypeInt, Default: "3", Ranges: atLeast(1, maxShort),
		Doc: "The replication factor of __share_group_state, capped at the number of live (registered, unfenced) brokers when the topic is created, " +
			"as offsets.topic.replication.factor is.",
	},
	{
		Name: SocketRequestMaxBytes, Type: TypeInt, Default: "104857600", Ranges: atLeast(1, maxInt),
		Doc: "The largest request frame the broker reads; a larger one closes the connection.",
	},
	{
		Name: SuperUsers, Type: TypeString,
		Doc: "Principals allowed everything whatever the ACLs say, separated by semicolons: User:admin;User:ops.",
	},
	{
		Name: TransactionAbortTimedOutCleanupIntervalMs, Type: TypeInt, Default: "10000", Ranges: atLeast(1, maxInt),
		Doc: "How often the transaction coordinator aborts transactions open longer than their transaction.timeout.ms.",
	},
	{
		Name: TransactionMaxTimeoutMs, Type: TypeInt, Default: "900000", Ranges: atLeast(1, maxInt),
		Doc: "The longest transaction.timeout.ms a producer may ask for; InitProducerId with a longer one gets INVALID_TRANSACTION_TIMEOUT.",
	},
	{
		Name: TransactionRemoveExpiredCleanupIntervalMs, Type: TypeInt, Default: "3600000", Ranges: atLeast(1, maxInt),
		Doc: "How often the transaction coordinator forgets transactional ids idle longer than transactional.id.expiration.ms.",
	},
	{
		Name: TransactionStateLogMinISR, Type: TypeInt, Default: "2", Ranges: atLeast(1, maxInt),
		Doc: "min.insync.replicas of __transaction_state, capped at its replication factor when the topic is created so a cluster of one works.",
	},
	{
		Name: TransactionStateLogNumPartitions, Type: TypeInt, Default: "50", Ranges: atLeast(1, maxInt),
		Doc: "The partition count of __transaction_state; fixed once the topic exists.",
	},
	{
		Name: TransactionStateLogReplicationFactor, Type: TypeInt, Default: "3", Ranges: atLeast(1, maxShort),
		Doc: "The replication factor of __transaction_state, capped at the number of live (registered, unfenced) brokers when the topic is created, " +
			"as offsets.topic.replication.factor is.",
	},
	{
		Name: TransactionalIDExpirationMs, Type: TypeInt, Default: "604800000", Ranges: atLeast(1, maxInt),
		Doc: "How long a transactional id with no transaction open is kept after its last use before the coordinator forgets it.",
	},
}

var brokerByName = indexDefs(BrokerConfigs, func(d *Def) string { return d.Name })

// topicDefaultDefs are the topic-default keys as broker Defs: named by
// their broker key, with the topic key they set in BrokerName's place
// left empty and named in Doc instead.
var topicDefaultDefs = func() []Def {
	defs := make([]Def, 0, len(TopicConfigs))
	for _, t := range TopicConfigs {
		d := t
		d.Name, d.BrokerName = t.BrokerName, ""
		d.Doc = "The default of topic config " + t.Name + ": " + lowerFirst(t.Doc)
		defs = append(defs, d)
	}
	return defs
}()

var topicDefaultByName = indexDefs(topicDefaultDefs, func(d *Def) string { return d.Name })

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// lookupStatic returns the definition of a static broker key: one of
// BrokerConfigs or a topic-default key.
func lookupStatic(key string) (*Def, bool) {
	if d, ok := brokerByName[key]; ok {
		return d, true
	}
	d, ok := topicDefaultByName[key]
	return d, ok
}

// BrokerConfigDoc returns every static broker key Sluice accepts, the
// topic-default keys included, sorted by name, for the generated docs.
func BrokerConfigDoc() []Def {
	defs := make([]Def, 0, len(BrokerConfigs)+len(topicDefaultDefs))
	defs = append(defs, BrokerConfigs...)
	defs = append(defs, topicDefaultDefs...)
	slices.SortFunc(defs, func(a, b Def) int { return strings.Compare(a.Name, b.Name) })
	return defs
}
