// Package coord is the consumer-group coordinator runtime: it shards groups
// by the partitions of __consumer_offsets, runs one owner goroutine per
// shard this node leads (never one per group or member), drives the pure
// state machine of internal/coord/group with the time and one timer per
// shard, persists group metadata and offset commits as records in
// __consumer_offsets, and rebuilds a shard's state by replaying that
// partition when it is loaded. The transaction coordinator
// (TxnCoordinator, txn_*.go) is built the same way on __transaction_state,
// and so is the share coordinator (ShareCoordinator, share_state*.go) on
// __share_group_state; shardset.go is the runtime the three share.
//
// Invariants: a response that depends on a record (a commit, a sync that
// ends a rebalance) is released only after the record's append returned,
// i.e. it is durable; a shard answers ErrCoordinatorLoadInProgress until
// its replay finished; a group's state is touched only by its shard's owner
// goroutine.
//
// This file is the API the Kafka handlers (internal/api) are written
// against. Every call is safe for concurrent use. Errors are the sentinels
// below (compare with errors.Is; they may be wrapped), each documented with
// the Kafka code the edge maps it to; ctx errors are returned as they are.
package coord

import (
	"context"
	"errors"
	"log/slog"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/coord/group"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/partition"
)

// OffsetsTopic is the internal topic holding group metadata and committed
// offsets.
const OffsetsTopic = "__consumer_offsets"

// Errors, by the Kafka code internal/api/errcode.go maps each to. The group
// protocol errors are internal/coord/group's, re-exported (same values).
var (
	// ErrCoordinatorNotAvailable: __consumer_offsets does not exist yet
	// (its creation was started), its partition has no leader, this node
	// leads it but has not loaded it yet, or the coordinator is stopped
	// (COORDINATOR_NOT_AVAILABLE; retriable: find the coordinator again).
	ErrCoordinatorNotAvailable = errors.New("coordinator not available")
	// ErrNotCoordinator: another node leads the group's partition of
	// __consumer_offsets (NOT_COORDINATOR).
	ErrNotCoordinator = errors.New("not the coordinator for this group")
	// ErrCoordinatorLoadInProgress: the group's shard is being replayed
	// (COORDINATOR_LOAD_IN_PROGRESS; retriable).
	ErrCoordinatorLoadInProgress = errors.New("coordinator load in progress")
	// ErrUnknownTopicOrPartition: a commit names a topic or partition that
	// does not exist (UNKNOWN_TOPIC_OR_PARTITION); it is partition's error.
	ErrUnknownTopicOrPartition = partition.ErrUnknownTopicOrPartition

	ErrUnknownMemberID           = group.ErrUnknownMemberID           // UNKNOWN_MEMBER_ID
	ErrIllegalGeneration         = group.ErrIllegalGeneration         // ILLEGAL_GENERATION
	ErrRebalanceInProgress       = group.ErrRebalanceInProgress       // REBALANCE_IN_PROGRESS
	ErrMemberIDRequired          = group.ErrMemberIDRequired          // MEMBER_ID_REQUIRED
	ErrFencedInstanceID          = group.ErrFencedInstanceID          // FENCED_INSTANCE_ID
	ErrGroupMaxSizeReached       = group.ErrGroupMaxSizeReached       // GROUP_MAX_SIZE_REACHED
	ErrInconsistentGroupProtocol = group.ErrInconsistentGroupProtocol // INCONSISTENT_GROUP_PROTOCOL
	ErrInvalidSessionTimeout     = group.ErrInvalidSessionTimeout     // INVALID_SESSION_TIMEOUT
	ErrGroupIDNotFound           = group.ErrGroupIDNotFound           // GROUP_ID_NOT_FOUND
	ErrNonEmptyGroup             = group.ErrNonEmptyGroup             // NON_EMPTY_GROUP
	ErrInvalidGroupID            = group.ErrInvalidGroupID            // INVALID_GROUP_ID
	ErrOffsetMetadataTooLarge    = group.ErrOffsetMetadataTooLarge    // OFFSET_METADATA_TOO_LARGE
	ErrGroupSubscribedToTopic    = group.ErrGroupSubscribedToTopic    // GROUP_SUBSCRIBED_TO_TOPIC
	ErrUnstableOffsetCommit      = group.ErrUnstableOffsetCommit      // UNSTABLE_OFFSET_COMMIT
	ErrMemberMetadataTooLarge    = group.ErrMemberMetadataTooLarge    // INVALID_REQUEST
	ErrInvalidRequest            = group.ErrInvalidRequest            // INVALID_REQUEST
	ErrTooManyGroups             = group.ErrTooManyGroups             // POLICY_VIOLATION
)

// Group states as Kafka names them in DescribeGroups and ListGroups.
const (
	StateEmpty               = group.StateEmpty               // "Empty"
	StatePreparingRebalance  = group.StatePreparingRebalance  // "PreparingRebalance"
	StateCompletingRebalance = group.StateCompletingRebalance // "CompletingRebalance"
	StateStable              = group.StateStable              // "Stable"
	StateDead                = group.StateDead                // "Dead"
)

// Partitions is what the coordinator needs of the partition manager
// (*partition.Manager satisfies it).
type Partitions interface {
	// Partition returns the hosted partition, or an error wrapping
	// partition.ErrUnknownTopicOrPartition / ErrNotLeader.
	Partition(topic string, partition int32) (*partition.Partition, error)
}

// Options configure a Coordinator. NodeID, Partitions, Image and
// CreateOffsetsTopic are required; zero Config fields take Kafka's
// defaults (see Config).
type Options struct {
	NodeID     int32
	Partitions Partitions
	// Image returns the newest metadata image: who leads each partition of
	// __consumer_offsets, and which topics exist (commits to unknown
	// topics are refused).
	Image func() *metadata.Image
	// CreateOffsetsTopic creates __consumer_offsets through the controller
	// with Config.OffsetsTopicNumPartitions partitions, replication factor
	// Config.OffsetsTopicReplicationFactor and configs cleanup.policy=compact,
	// segment.bytes=104857600 (OffsetsTopicConfigs); an "already exists"
	// outcome should be returned as nil. The coordinator calls it lazily,
	// at most one call at a time, the first time a group is looked up
	// while the topic is missing.
	CreateOffsetsTopic func(ctx context.Context) error
	Clock              clock.Clock  // nil: clock.Real()
	Logger             *slog.Logger // nil: slog.Default()
	Config             Config
}

// OffsetsTopicConfigs are the topic configs __consumer_offsets is created
// with.
var OffsetsTopicConfigs = map[string]string{
	"cleanup.policy": "compact",
	"segment.bytes":  "104857600",
}

// Config is the broker configuration of the coordinator, by Kafka key. A
// zero field takes the default in brackets.
type Config struct {
	OffsetsTopicNumPartitions       int32 // offsets.topic.num.partitions [50]
	OffsetsTopicReplicationFactor   int16 // offsets.topic.replication.factor [1]
	GroupMinSessionTimeoutMs        int32 // group.min.session.timeout.ms [6000]
	GroupMaxSessionTimeoutMs        int32 // group.max.session.timeout.ms [1800000]
	GroupInitialRebalanceDelayMs    int32 // group.initial.rebalance.delay.ms [3000]; -1 means 0
	GroupMaxSize                    int32 // group.max.size [DefaultGroupMaxSize]
	OffsetsRetentionMs              int64 // offsets.retention.minutes × 60000 [7 days]
	OffsetsRetentionCheckIntervalMs int64 // offsets.retention.check.interval.ms [600000]
	OffsetMetadataMaxBytes          int32 // offset.metadata.max.bytes [4096]
	// MaxMemberMetadataBytes bounds one member's protocol metadata (all
	// protocols together) and its assignment [DefaultMaxMemberMetadataBytes].
	MaxMemberMetadataBytes int32
	// MaxGroups bounds the groups (with members or offsets) one node holds
	// across its shards [DefaultMaxGroups].
	MaxGroups int

	// The consumer protocol (KIP-848).
	ConsumerSessionTimeoutMs    int32    // group.consumer.session.timeout.ms [45000]
	ConsumerHeartbeatIntervalMs int32    // group.consumer.heartbeat.interval.ms [5000]
	ConsumerMaxSize             int32    // group.consumer.max.size [DefaultGroupMaxSize]
	ConsumerAssignors           []string // group.consumer.assignors [uniform, range]
	ConsumerMigrationPolicy     string   // group.consumer.migration.policy [bidirectional]
}

// Sluice's own bounds (Kafka has none).
const (
	// DefaultGroupMaxSize: Kafka's default is Integer.MAX_VALUE; every
	// member costs memory, so Sluice bounds it.
	DefaultGroupMaxSize           = 10000
	DefaultMaxMemberMetadataBytes = 1 << 20
	DefaultMaxGroups              = 1000000
)

// The request and result types are internal/coord/group's (aliases), so
// the runtime passes them to the state machine unconverted; their fields
// are documented there.
type (
	JoinRequest                  = group.JoinRequest
	Protocol                     = group.Protocol
	JoinResult                   = group.JoinResult
	JoinMember                   = group.JoinMember
	SyncRequest                  = group.SyncRequest
	MemberAssignment             = group.MemberAssignment
	SyncResult                   = group.SyncResult
	HeartbeatRequest             = group.HeartbeatRequest
	LeaveRequest                 = group.LeaveRequest
	LeavingMember                = group.LeavingMember
	LeaveResult                  = group.LeaveResult
	LeftMember                   = group.LeftMember
	CommitRequest                = group.CommitRequest
	CommitTopic                  = group.CommitTopic
	CommitPartition              = group.CommitPartition
	CommitResult                 = group.CommitResult
	CommitTopicResult            = group.CommitTopicResult
	CommitPartitionResult        = group.CommitPartitionResult
	FetchRequest                 = group.FetchRequest
	FetchTopic                   = group.FetchTopic
	FetchResult                  = group.FetchResult
	FetchTopicResult             = group.FetchTopicResult
	FetchPartitionResult         = group.FetchPartitionResult
	GroupDescription             = group.GroupDescription
	MemberDescription            = group.MemberDescription
	GroupListing                 = group.GroupListing
	DeleteGroupResult            = group.DeleteGroupResult
	DeleteOffsetsRequest         = group.DeleteOffsetsRequest
	DeleteOffsetsResult          = group.DeleteOffsetsResult
	DeleteOffsetsTopicResult     = group.DeleteOffsetsTopicResult
	DeleteOffsetsPartitionResult = group.DeleteOffsetsPartitionResult
)

// Start returns a running Coordinator holding no shards until Refresh.
func Start(opts Options) (*Coordinator, error) { return start(opts) }

// Stop unloads every shard and waits for the owner goroutines; blocked
// calls return ErrCoordinatorNotAvailable. Idempotent.
func (c *Coordinator) Stop() { c.stop() }

// Refresh loads a shard for every __consumer_offsets partition this node
// leads in the current image and unloads the others (their groups'
// pending calls get ErrNotCoordinator). It does not block on loading:
// loads replay in the background. The node calls it after every metadata
// change it applied (after partition.Manager.Refresh).
func (c *Coordinator) Refresh() { c.refresh() }

// WaitLoaded refreshes, then waits until every shard this node leads has
// replayed its partition, so a starting broker answers group requests from
// its committed state instead of COORDINATOR_LOAD_IN_PROGRESS. A shard
// whose load fails is dropped and no longer waited for.
func (c *Coordinator) WaitLoaded(ctx context.Context) error { return c.waitLoaded(ctx) }

// PartitionFor is the __consumer_offsets partition of a group:
// abs(Java String.hashCode(groupID)) % offsets.topic.num.partitions, as
// Kafka computes it, so a group has the same coordinator as on Kafka.
func (c *Coordinator) PartitionFor(groupID string) int32 {
	return PartitionFor(groupID, c.cfg.OffsetsTopicNumPartitions)
}

// FindCoordinator returns the node id leading the group's partition of
// __consumer_offsets (the handler looks up its address in the image). It
// never blocks on I/O: if the topic is missing it starts CreateOffsetsTopic
// in the background and returns ErrCoordinatorNotAvailable, as it does
// while the partition has no leader, or this node leads it but has not
// finished loading it (clients retry). ErrInvalidGroupID for "".
func (c *Coordinator) FindCoordinator(ctx context.Context, groupID string) (int32, error) {
	return c.findCoordinator(ctx, groupID)
}

// Join adds or updates a member and blocks until the join phase of the
// rebalance completes (every known member rejoined, or the rebalance
// timeout passed — plus group.initial.rebalance.delay.ms for a group that
// was empty), or ctx is done (the member stays pending, as in Kafka when a
// connection drops). A static member rejoining a stable group with
// unchanged protocols returns at once with its old assignment kept.
// Errors: ErrInvalidGroupID, ErrInconsistentGroupProtocol,
// ErrInvalidSessionTimeout, ErrMemberIDRequired (JoinResult.MemberID set),
// ErrUnknownMemberID (also when a member was removed because it did not
// rejoin in time, or left), ErrFencedInstanceID, ErrGroupMaxSizeReached,
// ErrMemberMetadataTooLarge, ErrInvalidRequest, ErrTooManyGroups,
// ErrRebalanceInProgress (a newer JoinGroup of the same member replaced
// this blocked one), and the coordinator errors (ErrNotCoordinator when
// the shard is unloaded while waiting).
func (c *Coordinator) Join(ctx context.Context, req JoinRequest) (JoinResult, error) {
	return c.join(ctx, req)
}

// Sync blocks until the leader's assignment is known (for followers) and
// the group's new metadata record is durable, then returns the member's
// assignment. Errors: ErrUnknownMemberID, ErrIllegalGeneration,
// ErrRebalanceInProgress (a new rebalance began; rejoin),
// ErrFencedInstanceID, ErrInconsistentGroupProtocol,
// ErrMemberMetadataTooLarge (the leader's assignment is too large), the
// coordinator errors (ErrNotCoordinator if the record could not be
// appended because leadership moved) and ErrInvalidGroupID.
func (c *Coordinator) Sync(ctx context.Context, req SyncRequest) (SyncResult, error) {
	return c.sync(ctx, req)
}

// Heartbeat keeps a member's session alive; it never blocks on I/O.
// Errors: ErrUnknownMemberID, ErrIllegalGeneration,
// ErrRebalanceInProgress (rejoin), ErrFencedInstanceID, ErrInvalidGroupID
// and the coordinator errors. In CompletingRebalance a heartbeat of the
// current generation succeeds.
func (c *Coordinator) Heartbeat(ctx context.Context, req HeartbeatRequest) error {
	return c.heartbeat(ctx, req)
}

// Leave removes members (which starts a rebalance, or empties the group)
// and returns per-member outcomes (for v0–2 the handler answers with the
// single member's Err). An unknown group gives every member
// ErrUnknownMemberID, as in Kafka. The error is group-level:
// ErrInvalidGroupID or a coordinator error.
func (c *Coordinator) Leave(ctx context.Context, req LeaveRequest) (LeaveResult, error) {
	return c.leave(ctx, req)
}

// CommitOffsets validates the commit against the group (member id,
// generation) and blocks until the offsets' records are durable in
// __consumer_offsets. A group-level error applies to every partition
// (OffsetCommit has no top-level code): ErrUnknownMemberID,
// ErrIllegalGeneration, ErrRebalanceInProgress (the group is
// CompletingRebalance), ErrFencedInstanceID, ErrInvalidGroupID,
// ErrTooManyGroups and the coordinator errors; the result then is empty.
// Per partition: ErrUnknownTopicOrPartition, ErrOffsetMetadataTooLarge.
// A simple commit (generation -1, no member) to a group that does not
// exist creates it (Empty), as Kafka does; a member commit to one gets
// ErrIllegalGeneration, a simple commit to a group with members
// ErrUnknownMemberID.
func (c *Coordinator) CommitOffsets(ctx context.Context, req CommitRequest) (CommitResult, error) {
	return c.commitOffsets(ctx, req)
}

// FetchOffsets returns the group's committed offsets; it reads memory
// only. An unknown group has no offsets (every partition -1, no error).
// Errors (group-level): the coordinator errors and ErrInvalidGroupID
// only if groupID is invalid for fetches (never: "" is allowed, as in
// Kafka).
func (c *Coordinator) FetchOffsets(ctx context.Context, req FetchRequest) (FetchResult, error) {
	return c.fetchOffsets(ctx, req)
}

// DescribeGroups describes groups, one entry per id in request order.
func (c *Coordinator) DescribeGroups(ctx context.Context, groupIDs []string) []GroupDescription {
	return c.describeGroups(ctx, groupIDs)
}

// ListGroups lists the groups of every shard this node has loaded,
// filtered by state (Kafka names, case-insensitive) and protocol type
// (v5, "consumer"/"classic" filtering is the handler's) when the filters
// are non-empty. While a shard loads it returns the groups of the others
// and ErrCoordinatorLoadInProgress.
func (c *Coordinator) ListGroups(ctx context.Context, statesFilter []string) ([]GroupListing, error) {
	return c.listGroups(ctx, statesFilter)
}

// DeleteGroups deletes Empty (or Dead) groups and their offsets, blocking
// until the tombstones are durable; one entry per id in request order.
func (c *Coordinator) DeleteGroups(ctx context.Context, groupIDs []string) []DeleteGroupResult {
	return c.deleteGroups(ctx, groupIDs)
}

// GroupOffset is one committed offset of a group.
type GroupOffset struct {
	GroupID   string
	Topic     string
	Partition int32
	Offset    int64
}

// CommittedOffsets returns the committed offsets of every group this node
// coordinates, in no order, for metrics (consumer lag). Shards still
// loading are left out, and so are the shards left when ctx ends.
func (c *Coordinator) CommittedOffsets(ctx context.Context) []GroupOffset {
	return c.committedOffsets(ctx)
}

// DeleteOffsets deletes committed offsets of a group (OffsetDelete),
// blocking until the tombstones are durable. Group-level errors:
// ErrGroupIDNotFound, ErrNonEmptyGroup (the group has members and is not a
// consumer-protocol group), ErrInvalidGroupID and the coordinator errors.
// Per partition: ErrGroupSubscribedToTopic when a member of the group
// subscribes to the topic.
func (c *Coordinator) DeleteOffsets(ctx context.Context, req DeleteOffsetsRequest) (DeleteOffsetsResult, error) {
	return c.deleteOffsets(ctx, req)
}
