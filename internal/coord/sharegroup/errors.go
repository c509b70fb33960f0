package sharegroup

import "errors"

// The share-group domain errors; internal/api/errcode.go maps each to the
// Kafka code named on it.
var (
	// ErrUnknownMemberID: the member is not (or no longer) in the share
	// group (UNKNOWN_MEMBER_ID).
	ErrUnknownMemberID = errors.New("unknown share group member id")
	// ErrFencedMemberEpoch: the member epoch is not the member's current one
	// (FENCED_MEMBER_EPOCH); the member rejoins with epoch 0.
	ErrFencedMemberEpoch = errors.New("fenced share group member epoch")
	// ErrGroupMaxSizeReached: the group has group.share.max.size members
	// (GROUP_MAX_SIZE_REACHED).
	ErrGroupMaxSizeReached = errors.New("share group max size reached")
	// ErrInvalidRequest: a heartbeat without a member id, or a first
	// heartbeat without subscriptions (INVALID_REQUEST).
	ErrInvalidRequest = errors.New("invalid share group request")
	// ErrInvalidRecordState: an acknowledgement of records that are not
	// acquired by this member, or a range outside the in-flight records
	// (INVALID_RECORD_STATE).
	ErrInvalidRecordState = errors.New("invalid record state")
	// ErrInvalidAcknowledgeType: an acknowledgement type that is none of
	// GAP, ACCEPT, RELEASE, REJECT and RENEW (INVALID_REQUEST).
	ErrInvalidAcknowledgeType = errors.New("invalid acknowledge type")
)
