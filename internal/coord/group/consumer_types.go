package group

import (
	"errors"

	"github.com/sluicelog/sluice/internal/metadata"
)

// The request and result types of the consumer group protocol (KIP-848).
// internal/coord re-exports each under the same name.

// ConsumerHeartbeatRequest is one ConsumerGroupHeartbeat. The optional
// fields (pointers and nil slices) mean "unchanged since my last
// heartbeat", as on the wire; a member's first heartbeat (epoch 0) must set
// them all.
type ConsumerHeartbeatRequest struct {
	GroupID  string
	MemberID string
	// MemberEpoch: 0 joins, -1 leaves, -2 leaves a static member's
	// assignment reserved for its return, above 0 is a heartbeat at that
	// epoch.
	MemberEpoch          int32
	InstanceID           string // group.instance.id, "" for a dynamic member
	RackID               *string
	RebalanceTimeoutMs   int32 // -1: unchanged
	SubscribedTopicNames []string
	SubscribedTopicRegex *string
	ServerAssignor       *string
	// OwnedTopics are the partitions the member owns now; nil when
	// unchanged since its last full heartbeat.
	OwnedTopics []ConsumerTopicPartitions
	ClientID    string
	ClientHost  string
}

// ConsumerTopicPartitions are partitions of one topic, by topic id.
type ConsumerTopicPartitions struct {
	TopicID    metadata.UUID
	Partitions []int32
}

// ConsumerHeartbeatResult is a ConsumerGroupHeartbeat response. Assignment
// is set (HasAssignment) when the member must learn its assignment anew;
// otherwise it keeps the one it has.
type ConsumerHeartbeatResult struct {
	MemberID            string
	MemberEpoch         int32
	HeartbeatIntervalMs int32
	HasAssignment       bool
	Assignment          []ConsumerTopicPartitions
}

// ConsumerGroupDescription is a ConsumerGroupDescribe entry. Err is
// ErrGroupIDNotFound for an unknown group or one of another type, or a
// coordinator error.
type ConsumerGroupDescription struct {
	GroupID         string
	Err             error
	State           string
	GroupEpoch      int32
	AssignmentEpoch int32
	Assignor        string
	Members         []ConsumerMemberDescription
}

// ConsumerMemberDescription is one member of a described consumer group.
type ConsumerMemberDescription struct {
	MemberID             string
	InstanceID           string
	RackID               string
	MemberEpoch          int32
	ClientID             string
	ClientHost           string
	SubscribedTopicNames []string
	SubscribedTopicRegex string
	Assignment           []ConsumerTopicPartitions
	TargetAssignment     []ConsumerTopicPartitions
	// Classic: the member uses the classic protocol (JoinGroup) inside
	// the consumer group (ConsumerGroupDescribe v1's member type 0).
	Classic bool
}

// Consumer group states, as Kafka names them (ConsumerGroup.ConsumerGroupState).
const (
	ConsumerStateEmpty       = "Empty"
	ConsumerStateAssigning   = "Assigning"
	ConsumerStateReconciling = "Reconciling"
	ConsumerStateStable      = "Stable"
)

// Group types, as ListGroups v5 and DescribeGroups name them.
const (
	GroupTypeClassic  = "classic"
	GroupTypeConsumer = "consumer"
)

// The consumer protocol's domain errors (internal/api/errcode.go maps
// them; the code is named on each).
var (
	// ErrFencedMemberEpoch: the member's epoch is not the one the
	// coordinator expects; it must rejoin with epoch 0, keeping its id
	// (FENCED_MEMBER_EPOCH).
	ErrFencedMemberEpoch = errors.New("fenced member epoch")
	// ErrStaleMemberEpoch: an offset commit or fetch carries an older
	// member epoch than the member's (STALE_MEMBER_EPOCH).
	ErrStaleMemberEpoch = errors.New("stale member epoch")
	// ErrUnreleasedInstanceID: another live member holds this
	// group.instance.id (UNRELEASED_INSTANCE_ID).
	ErrUnreleasedInstanceID = errors.New("unreleased instance id")
	// ErrUnsupportedAssignor: the requested server assignor is not in
	// group.consumer.assignors (UNSUPPORTED_ASSIGNOR).
	ErrUnsupportedAssignor = errors.New("unsupported assignor")
	// ErrInvalidRegularExpression: the subscribed regex does not compile
	// (INVALID_REGULAR_EXPRESSION).
	ErrInvalidRegularExpression = errors.New("invalid regular expression")
)
