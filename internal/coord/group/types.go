package group

// The request and result types of the group protocol. internal/coord
// re-exports each under the same name (type aliases), as its API.

// JoinRequest is one member's JoinGroup.
type JoinRequest struct {
	GroupID string
	// MemberID is "" on a member's first join.
	MemberID string
	// GroupInstanceID is group.instance.id (v5+), "" for a dynamic member.
	GroupInstanceID string
	ProtocolType    string // "consumer" for consumers
	// Protocols are the member's protocols in its order of preference;
	// names must be unique and non-empty.
	Protocols        []Protocol
	SessionTimeoutMs int32
	// RebalanceTimeoutMs (v1+); for v0 the handler passes SessionTimeoutMs,
	// as Kafka does.
	RebalanceTimeoutMs int32
	// RequireKnownMemberID is true from v4 (KIP-394): an unknown member's
	// first join is answered ErrMemberIDRequired with JoinResult.MemberID
	// set, and the member must join again with that id.
	RequireKnownMemberID bool
	// SupportsSkipAssignment is true from v9 (KIP-814): a static leader
	// rejoining a stable group gets the member list with SkipAssignment
	// set; older versions get an empty member list instead.
	SupportsSkipAssignment bool
	Reason                 string // v8+, for the log
	ClientID               string
	ClientHost             string // the client's address, as DescribeGroups shows it
}

// Protocol is one assignment protocol a member supports ("range",
// "cooperative-sticky", ...) with its opaque metadata (for consumers, the
// subscription).
type Protocol struct {
	Name     string
	Metadata []byte
}

// JoinResult is a JoinGroup response. With ErrMemberIDRequired only
// MemberID is set (the id to rejoin with).
type JoinResult struct {
	GenerationID int32
	ProtocolType string // v7+
	ProtocolName string
	LeaderID     string
	MemberID     string
	// SkipAssignment (v9+, KIP-814): the leader must not compute a new
	// assignment; Members is informational.
	SkipAssignment bool
	// Members is set for the leader only: every member with its metadata
	// for the chosen protocol.
	Members []JoinMember
}

// JoinMember is one member as the leader sees it.
type JoinMember struct {
	MemberID        string
	GroupInstanceID string // "" for dynamic members (null on the wire)
	Metadata        []byte
}

// SyncRequest is one member's SyncGroup.
type SyncRequest struct {
	GroupID         string
	GenerationID    int32
	MemberID        string
	GroupInstanceID string
	// ProtocolType and ProtocolName (v5+) are checked against the group's
	// when non-empty (ErrInconsistentGroupProtocol).
	ProtocolType string
	ProtocolName string
	// Assignments is the leader's assignment, empty for followers. Member
	// ids that are not in the group are ignored.
	Assignments []MemberAssignment
}

// MemberAssignment is the leader's opaque assignment for one member,
// passed through untouched.
type MemberAssignment struct {
	MemberID   string
	Assignment []byte
}

// SyncResult is a SyncGroup response.
type SyncResult struct {
	ProtocolType string // v5+
	ProtocolName string // v5+
	Assignment   []byte
}

// HeartbeatRequest is one member's Heartbeat.
type HeartbeatRequest struct {
	GroupID         string
	GenerationID    int32
	MemberID        string
	GroupInstanceID string
}

// LeaveRequest is a LeaveGroup: one member (v0–2, MemberID only) or a
// batch (v3+, KIP-345, by member id and/or group.instance.id).
type LeaveRequest struct {
	GroupID string
	Members []LeavingMember
}

// LeavingMember is one member leaving. With GroupInstanceID set, MemberID
// may be "" (an admin removing a static member) or must match.
type LeavingMember struct {
	MemberID        string
	GroupInstanceID string
	Reason          string // v5+, for the log
}

// LeaveResult has one entry per LeavingMember, in request order. Err is
// ErrUnknownMemberID or ErrFencedInstanceID, or nil.
type LeaveResult struct {
	Members []LeftMember
}

// LeftMember is the outcome for one LeavingMember.
type LeftMember struct {
	MemberID        string
	GroupInstanceID string
	Err             error
}

// CommitRequest is an OffsetCommit. GenerationID -1 with MemberID ""
// is a simple (non-group) commit, allowed only while the group has no
// members, as in Kafka.
type CommitRequest struct {
	GroupID         string
	GenerationID    int32 // -1: not a group member's commit
	MemberID        string
	GroupInstanceID string // v7+
	// RetentionTimeMs (v2–4): -1 for the broker's offsets.retention;
	// otherwise the commit expires this long after it was made.
	RetentionTimeMs int64
	Topics          []CommitTopic
}

// CommitTopic is one topic's offsets to commit.
type CommitTopic struct {
	Name       string
	Partitions []CommitPartition
}

// CommitPartition is one offset to commit.
type CommitPartition struct {
	Partition   int32
	Offset      int64
	LeaderEpoch int32  // v6+, -1 unknown
	Metadata    string // null on the wire is ""
}

// CommitResult has an entry per requested partition, in request order.
type CommitResult struct {
	Topics []CommitTopicResult
}

// CommitTopicResult is one topic's outcomes.
type CommitTopicResult struct {
	Name       string
	Partitions []CommitPartitionResult
}

// CommitPartitionResult is one partition's outcome: nil,
// the runtime's ErrUnknownTopicOrPartition or ErrOffsetMetadataTooLarge.
type CommitPartitionResult struct {
	Partition int32
	Err       error
}

// FetchRequest is one group of an OffsetFetch.
type FetchRequest struct {
	GroupID string
	// Topics nil means every partition the group has offsets for (v2+);
	// a listed partition without a commit gets offset -1.
	Topics []FetchTopic
	// RequireStable (v7+, KIP-447): partitions with pending transactional
	// commits answer ErrUnstableOffsetCommit.
	RequireStable bool
	// CheckMember (v9+, when a member id or an epoch is given): the
	// fetching member of a consumer-protocol group must exist and be at
	// MemberEpoch (ValidateOffsetFetch).
	CheckMember bool
	MemberID    string
	MemberEpoch int32
}

// FetchTopic names partitions to fetch offsets for.
type FetchTopic struct {
	Name       string
	Partitions []int32
}

// FetchResult is the group's committed offsets: in request order when
// topics were named, else sorted by topic and partition.
type FetchResult struct {
	Topics []FetchTopicResult
}

// FetchTopicResult is one topic's committed offsets.
type FetchTopicResult struct {
	Name       string
	Partitions []FetchPartitionResult
}

// FetchPartitionResult is one committed offset: Offset -1 (LeaderEpoch
// -1, Metadata "") when there is none.
type FetchPartitionResult struct {
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	Err         error
}

// GroupDescription is a DescribeGroups entry. An unknown group is
// described with State "Dead" and no error, as Kafka does; Err is a
// coordinator error (ErrNotCoordinator, ErrCoordinatorLoadInProgress,
// ErrCoordinatorNotAvailable) or ErrInvalidGroupID.
type GroupDescription struct {
	GroupID      string
	Err          error
	State        string
	ProtocolType string
	// Protocol is the chosen protocol; "" unless the group is Stable or
	// CompletingRebalance, and then Members carry Metadata/Assignment.
	Protocol string
	Members  []MemberDescription
}

// MemberDescription is one member of a described group.
type MemberDescription struct {
	MemberID        string
	GroupInstanceID string // v4+
	ClientID        string
	ClientHost      string
	Metadata        []byte // for the chosen protocol
	Assignment      []byte
}

// GroupListing is a ListGroups entry.
type GroupListing struct {
	GroupID      string
	ProtocolType string
	State        string
	Type         string // GroupTypeClassic or GroupTypeConsumer (ListGroups v5)
}

// DeleteGroupResult is a DeleteGroups outcome: nil, ErrGroupIDNotFound,
// ErrNonEmptyGroup, ErrInvalidGroupID or a coordinator error.
type DeleteGroupResult struct {
	GroupID string
	Err     error
}

// DeleteOffsetsRequest is an OffsetDelete.
type DeleteOffsetsRequest struct {
	GroupID string
	Topics  []FetchTopic
}

// DeleteOffsetsResult has an entry per requested partition, in request
// order. Err is nil (deleted, or there was nothing to delete) or
// ErrGroupSubscribedToTopic.
type DeleteOffsetsResult struct {
	Topics []DeleteOffsetsTopicResult
}

// DeleteOffsetsTopicResult is one topic's outcomes.
type DeleteOffsetsTopicResult struct {
	Name       string
	Partitions []DeleteOffsetsPartitionResult
}

// DeleteOffsetsPartitionResult is one partition's outcome.
type DeleteOffsetsPartitionResult struct {
	Partition int32
	Err       error
}
