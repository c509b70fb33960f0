package group

import "errors"

// The group protocol's domain errors. The runtime (internal/coord)
// re-exports each under the same name; internal/api/errcode.go maps them
// to Kafka codes (the code is named on each).
var (
	// ErrUnknownMemberID: the member id is not (or no longer) in the group
	// (UNKNOWN_MEMBER_ID).
	ErrUnknownMemberID = errors.New("unknown member id")
	// ErrIllegalGeneration: the request names another generation than the
	// group's (ILLEGAL_GENERATION).
	ErrIllegalGeneration = errors.New("illegal generation")
	// ErrRebalanceInProgress: the group is rebalancing; rejoin
	// (REBALANCE_IN_PROGRESS).
	ErrRebalanceInProgress = errors.New("rebalance in progress")
	// ErrMemberIDRequired: a first JoinGroup (v4+) got a member id assigned
	// and must rejoin with it (MEMBER_ID_REQUIRED, KIP-394).
	ErrMemberIDRequired = errors.New("member id required")
	// ErrFencedInstanceID: another member now holds this group.instance.id
	// (FENCED_INSTANCE_ID, KIP-345).
	ErrFencedInstanceID = errors.New("fenced group instance id")
	// ErrGroupMaxSizeReached: the group has group.max.size members
	// (GROUP_MAX_SIZE_REACHED).
	ErrGroupMaxSizeReached = errors.New("group max size reached")
	// ErrInconsistentGroupProtocol: the protocol type differs from the
	// group's, no protocols were offered, or none is supported by every
	// member (INCONSISTENT_GROUP_PROTOCOL).
	ErrInconsistentGroupProtocol = errors.New("inconsistent group protocol")
	// ErrInvalidSessionTimeout: the session timeout is outside
	// group.min/max.session.timeout.ms (INVALID_SESSION_TIMEOUT).
	ErrInvalidSessionTimeout = errors.New("invalid session timeout")
	// ErrGroupIDNotFound: no such group (GROUP_ID_NOT_FOUND).
	ErrGroupIDNotFound = errors.New("group id not found")
	// ErrNonEmptyGroup: the group still has members (NON_EMPTY_GROUP).
	ErrNonEmptyGroup = errors.New("group is not empty")
	// ErrInvalidGroupID: an empty group id where one is needed
	// (INVALID_GROUP_ID).
	ErrInvalidGroupID = errors.New("invalid group id")
	// ErrOffsetMetadataTooLarge: a commit's metadata string is longer than
	// offset.metadata.max.bytes (OFFSET_METADATA_TOO_LARGE).
	ErrOffsetMetadataTooLarge = errors.New("offset metadata too large")
	// ErrGroupSubscribedToTopic: OffsetDelete on a topic the group's
	// consumers subscribe to (GROUP_SUBSCRIBED_TO_TOPIC).
	ErrGroupSubscribedToTopic = errors.New("group is subscribed to the topic")
	// ErrUnstableOffsetCommit: a transactional commit for the partition is
	// pending (UNSTABLE_OFFSET_COMMIT), answered to OffsetFetch with
	// require_stable (KIP-447).
	ErrUnstableOffsetCommit = errors.New("unstable offset commit")
	// ErrMemberMetadataTooLarge: a member's protocol metadata or assignment
	// exceeds the coordinator's bound (INVALID_REQUEST).
	ErrMemberMetadataTooLarge = errors.New("member metadata too large")
	// ErrTooManyGroups: the coordinator holds its maximum number of groups
	// (POLICY_VIOLATION).
	ErrTooManyGroups = errors.New("too many consumer groups")
	// ErrInvalidRequest: a malformed group request, e.g. too many
	// protocols or an empty protocol name (INVALID_REQUEST).
	ErrInvalidRequest = errors.New("invalid group request")
)
