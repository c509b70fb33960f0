// Package api serves the Kafka APIs: one file per API key
// (00_produce.go, 01_fetch.go, ...), each declaring the versions it
// handles; registry.go lists them in key order and generates the
// ApiVersions response from that list, so what we advertise can never drift
// from what we handle; errcode.go is the only place a Kafka error code is
// chosen for a domain error.
//
// Requests arrive as frames from the network server. A request is checked
// against the bytes it has (wire.CheckRequest) before kmsg decodes it, so a
// crafted count cannot make the broker allocate.
package api

import (
	"context"
	"log/slog"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/kraft"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/metrics"
	"github.com/sluicelog/sluice/internal/partition"
	"github.com/sluicelog/sluice/internal/quota"
	"github.com/sluicelog/sluice/internal/share"
)

// ControlPlane is what handlers need of the metadata quorum.
type ControlPlane interface {
	// Image is the newest metadata image this node has applied.
	Image() *metadata.Image
	// Submit runs a controller command (forwarded to the active controller
	// when this node is not it) and returns once this node's image holds
	// the outcome.
	Submit(ctx context.Context, cmd kraft.Command) (any, error)
	// Leader is the active controller's node id, -1 when unknown.
	Leader() int32
	// QuorumStatus is this node's view of the metadata quorum
	// (DescribeQuorum); only the leader knows the members' progress.
	QuorumStatus(ctx context.Context) (kraft.QuorumStatus, error)
}

// ProducerIDs hands out producer ids from controller-allocated blocks.
type ProducerIDs interface {
	NextProducerID(ctx context.Context) (int64, error)
}

// Config is the broker configuration the handlers read.
type Config struct {
	AutoCreateTopicsEnable   bool  // auto.create.topics.enable
	NumPartitions            int32 // num.partitions, for auto-created topics
	DefaultReplicationFactor int16 // default.replication.factor
	// MaxIncrementalFetchSessionCacheSlots bounds KIP-227 fetch sessions
	// (max.incremental.fetch.session.cache.slots).
	MaxIncrementalFetchSessionCacheSlots int
	// FetchMaxBytes caps one fetch response (fetch.max.bytes).
	FetchMaxBytes int32
	// Static is every broker config this node was started with, by Kafka
	// key, for DescribeConfigs on the broker resource; StaticSources says
	// where each came from. DescribeConfigs reports a value nobody set as
	// DEFAULT_CONFIG (5) and any other as STATIC_BROKER_CONFIG (4), as
	// Kafka cannot tell file from flag either.
	Static        map[string]string
	StaticSources map[string]config.Source

	// Authorizer turns on ACL authorization of every request
	// (authorizer.class.name, super.users,
	// allow.everyone.if.no.acl.found); nil allows everything. It is
	// static: the authorizer built from it is cached until ACLs change.
	Authorizer *auth.AuthorizerConfig
}

// Broker is everything the handlers share: this node's identity, its
// configuration and the components they call.
type Broker struct {
	NodeID    int32
	ClusterID string
	// Host and Port are what clients are told to connect to (the listener's
	// advertised address).
	Host string
	Port int32
	Rack string

	Config      Config
	Control     ControlPlane
	Partitions  *partition.Manager
	ProducerIDs ProducerIDs
	Clock       clock.Clock
	Logger      *slog.Logger
	// Groups is the consumer-group coordinator; nil answers every group
	// request COORDINATOR_NOT_AVAILABLE.
	Groups Groups
	// Txns is the transaction coordinator; nil answers every transaction
	// request COORDINATOR_NOT_AVAILABLE.
	Txns Txns
	// Shares runs share groups (KIP-932); nil answers every share request
	// COORDINATOR_NOT_AVAILABLE.
	Shares *share.Coordinator
	// ShareStates is the share coordinator on __share_group_state (APIs
	// 83–87, FindCoordinator key type 2); nil answers them
	// COORDINATOR_NOT_AVAILABLE.
	ShareStates ShareStates

	// TopicDefaults returns the cluster-wide topic config defaults by broker
	// key: the static config with dynamic broker configs over it.
	TopicDefaults func() map[string]string

	// Metrics counts requests, their errors, and records and bytes per
	// topic; nil counts nothing.
	Metrics *metrics.Registry

	// Quotas keeps the client quota sensors (producer and consumer byte
	// rates, request time); nil enforces no client quota.
	Quotas *quota.Manager
	// TxnVerifier confirms with the transaction coordinator that a
	// transactional produce belongs to an ongoing transaction before it
	// opens one on a partition (KIP-890); nil skips the check.
	TxnVerifier TxnVerifier
	// TxnMarkerListener hears of every marker appended here; nil: nobody.
	TxnMarkerListener TxnMarkerListener

	fetchSessions *fetchSessionCache
	fetchWaits    fetchWaitPool
	authzState
}

// TxnVerifier asks a transaction coordinator whether the producer (id and
// epoch) of transactionalID has added the partition to its ongoing
// transaction: AddPartitionsToTxn v4+ with verify_only (KIP-890 part 1).
// It returns nil when it has, partition.ErrInvalidTxnState when it has
// not, partition.ErrInvalidProducerEpoch for a fenced epoch, and
// partition.ErrTxnVerificationUnsupported when the coordinator cannot
// verify (then the produce goes ahead, as Kafka's does when the
// verification feature is off).
type TxnVerifier interface {
	VerifyTxnPartition(ctx context.Context, transactionalID string, producerID int64, producerEpoch int16, topic string, partition int32) error
}

// TxnMarkerListener is told of each transaction marker the
// WriteTxnMarkers handler appended (once the ISR has it) or ignored as a
// retry of one appended before.
type TxnMarkerListener interface {
	TxnMarkerWritten(topic string, partition int32, producerID int64, commit bool, offset int64)
}
