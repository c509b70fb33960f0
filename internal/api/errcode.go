package api

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/coord/sharegroup"
	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/partition"
	"github.com/sluicelog/sluice/internal/raft"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/share"
)

// errorCodes is the only place a Kafka error code is chosen for a domain
// error. Order matters where one error wraps another: the more specific
// entry comes first (ErrNotEnoughBrokers is also an
// ErrInvalidReplicationFactor; both give the same code here).
var errorCodes = []struct {
	err  error
	code *kerr.Error
}{
	// The group coordinator, first: its errors may wrap the partition or
	// log error behind them (an append that failed because leadership
	// moved is NOT_COORDINATOR to a group client, not NOT_LEADER).
	{coord.ErrCoordinatorNotAvailable, kerr.CoordinatorNotAvailable},
	{coord.ErrNotCoordinator, kerr.NotCoordinator},
	{coord.ErrCoordinatorLoadInProgress, kerr.CoordinatorLoadInProgress},
	{coord.ErrUnknownMemberID, kerr.UnknownMemberID},
	{coord.ErrIllegalGeneration, kerr.IllegalGeneration},
	{coord.ErrRebalanceInProgress, kerr.RebalanceInProgress},
	{coord.ErrMemberIDRequired, kerr.MemberIDRequired},
	{coord.ErrFencedInstanceID, kerr.FencedInstanceID},
	{coord.ErrGroupMaxSizeReached, kerr.GroupMaxSizeReached},
	{coord.ErrInconsistentGroupProtocol, kerr.InconsistentGroupProtocol},
	{coord.ErrInvalidSessionTimeout, kerr.InvalidSessionTimeout},
	{coord.ErrGroupIDNotFound, kerr.GroupIDNotFound},
	{coord.ErrNonEmptyGroup, kerr.NonEmptyGroup},
	{coord.ErrInvalidGroupID, kerr.InvalidGroupID},
	{coord.ErrOffsetMetadataTooLarge, kerr.OffsetMetadataTooLarge},
	{coord.ErrGroupSubscribedToTopic, kerr.GroupSubscribedToTopic},
	{coord.ErrUnstableOffsetCommit, kerr.UnstableOffsetCommit},
	{coord.ErrMemberMetadataTooLarge, kerr.InvalidRequest},
	{coord.ErrInvalidRequest, kerr.InvalidRequest},
	{coord.ErrTooManyGroups, kerr.PolicyViolation},
	{coord.ErrUnknownTopicOrPartition, kerr.UnknownTopicOrPartition},
	{coord.ErrFencedMemberEpoch, kerr.FencedMemberEpoch},
	{coord.ErrStaleMemberEpoch, kerr.StaleMemberEpoch},
	{coord.ErrUnreleasedInstanceID, kerr.UnreleasedInstanceID},
	{coord.ErrUnsupportedAssignor, kerr.UnsupportedAssignor},
	{coord.ErrInvalidRegularExpression, kerr.InvalidRegularExpression},

	// The transaction coordinator (the coordinator errors above are
	// shared with it).
	{coord.ErrInvalidTransactionTimeout, kerr.InvalidTransactionTimeout},
	{coord.ErrProducerFenced, kerr.ProducerFenced},
	{coord.ErrInvalidProducerIDMapping, kerr.InvalidProducerIDMapping},
	{coord.ErrConcurrentTransactions, kerr.ConcurrentTransactions},
	{coord.ErrInvalidTxnState, kerr.InvalidTxnState},
	{coord.ErrInvalidTxnRequest, kerr.InvalidRequest},
	{coord.ErrTransactionalIDNotFound, kerr.TransactionalIDNotFound},
	{coord.ErrTooManyTransactions, kerr.PolicyViolation},
	{coord.ErrTooManyTxnPartitions, kerr.PolicyViolation},
	// Never sent to a client: the marker writer's verdicts on a
	// partition leader's answer, mapped for completeness.
	{coord.ErrTxnMarkerRetriable, kerr.RequestTimedOut},
	{coord.ErrTxnMarkerFenced, kerr.TransactionCoordinatorFenced},
	// Share groups (KIP-932).
	{sharegroup.ErrUnknownMemberID, kerr.UnknownMemberID},
	{sharegroup.ErrFencedMemberEpoch, kerr.FencedMemberEpoch},
	{sharegroup.ErrGroupMaxSizeReached, kerr.GroupMaxSizeReached},
	{sharegroup.ErrInvalidRequest, kerr.InvalidRequest},
	{sharegroup.ErrInvalidRecordState, kerr.InvalidRecordState},
	{sharegroup.ErrInvalidAcknowledgeType, kerr.InvalidRequest},
	// Only met while loading __consumer_offsets, where the record is
	// skipped; a request never sees it.
	{sharegroup.ErrCorruptRecord, kerr.CorruptMessage},
	{coord.ErrFencedLeaderEpoch, kerr.FencedLeaderEpoch},
	{coord.ErrFencedStateEpoch, kerr.FencedStateEpoch},
	{coord.ErrInvalidShareState, kerr.InvalidRequest},
	{coord.ErrTooManyShareStates, kerr.PolicyViolation},
	{coord.ErrUnknownShareTopic, kerr.UnknownTopicOrPartition},
	{coord.ErrUninitializedShareState, kerr.InvalidRequest},
	{share.ErrShareSessionNotFound, kerr.ShareSessionNotFound},
	{share.ErrInvalidShareSessionEpoch, kerr.InvalidShareSessionEpoch},
	{share.ErrShareSessionLimitReached, kerr.ShareSessionLimitReached},
	{share.ErrInvalidRequest, kerr.InvalidRequest},
	// Before ErrStateUnavailable, which it wraps: the same retriable code.
	{share.ErrStateUninitialized, kerr.CoordinatorNotAvailable},
	{share.ErrStateUnavailable, kerr.CoordinatorNotAvailable},
	{share.ErrNonEmptyGroup, kerr.NonEmptyGroup},

	// The partition log.
	{log.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
	{log.ErrStorage, kerr.KafkaStorageError},
	{log.ErrClosed, kerr.NotLeaderForPartition},
	{log.ErrRecordBatchTooLarge, kerr.RecordListTooLarge},
	{log.ErrInvalidRecords, kerr.CorruptMessage},
	{log.ErrLogDirCorrupt, kerr.KafkaStorageError},
	// Handled inside the log (the round syncs its segment instead); were
	// it to escape, a retriable storage error is what it would be.
	{log.ErrJournalFull, kerr.KafkaStorageError},
	{log.ErrOffsetsOutOfOrder, kerr.UnknownServerError},
	{log.ErrAppendTruncated, kerr.NotLeaderForPartition},

	// Record batches.
	{record.ErrTruncated, kerr.CorruptMessage},
	{record.ErrCorrupt, kerr.CorruptMessage},
	{record.ErrCRCMismatch, kerr.CorruptMessage},
	{record.ErrUnsupportedMagic, kerr.InvalidRecord},
	{record.ErrUnknownCodec, kerr.UnsupportedCompressionType},
	{record.ErrDecompressedTooLarge, kerr.MessageTooLarge},
	{record.ErrInvalidRecord, kerr.InvalidRecord},
	{record.ErrNotMarker, kerr.InvalidRecord},

	// Hosted partitions.
	{partition.ErrUnknownTopicOrPartition, kerr.UnknownTopicOrPartition},
	{partition.ErrNotLeader, kerr.NotLeaderForPartition},
	{partition.ErrMessageTooLarge, kerr.MessageTooLarge},
	{partition.ErrInvalidTimestamp, kerr.InvalidTimestamp},
	{partition.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
	{partition.ErrInvalidProducerEpoch, kerr.InvalidProducerEpoch},
	{partition.ErrTransactionsUnsupported, kerr.InvalidRequest},
	{partition.ErrInvalidTxnState, kerr.InvalidTxnState},
	{partition.ErrTransactionCoordinatorFenced, kerr.TransactionCoordinatorFenced},
	// Consumed by the produce path, never sent; a row all the same.
	{partition.ErrTxnVerificationUnsupported, kerr.UnknownServerError},
	{partition.ErrFencedLeaderEpoch, kerr.FencedLeaderEpoch},
	{partition.ErrUnknownLeaderEpoch, kerr.UnknownLeaderEpoch},
	{partition.ErrNotEnoughReplicas, kerr.NotEnoughReplicas},
	{partition.ErrNotEnoughReplicasAfterAppend, kerr.NotEnoughReplicasAfterAppend},
	{partition.ErrNotFollower, kerr.NotLeaderForPartition},
	{partition.ErrNoKeyCompactedTopic, kerr.InvalidRecord},

	// Controller decisions.
	{controller.ErrInvalidRequest, kerr.InvalidRequest},
	{controller.ErrTopicExists, kerr.TopicAlreadyExists},
	{controller.ErrInvalidTopicName, kerr.InvalidTopicException},
	{controller.ErrInvalidPartitions, kerr.InvalidPartitions},
	{controller.ErrNotEnoughBrokers, kerr.InvalidReplicationFactor},
	{controller.ErrInvalidReplicationFactor, kerr.InvalidReplicationFactor},
	{controller.ErrInvalidReplicaAssignment, kerr.InvalidReplicaAssignment},
	{controller.ErrInvalidConfig, kerr.InvalidConfig},
	{controller.ErrTooManyPartitions, kerr.PolicyViolation},
	{controller.ErrUnknownTopic, kerr.UnknownTopicOrPartition},
	{controller.ErrUnknownTopicID, kerr.UnknownTopicID},
	{controller.ErrUnknownBroker, kerr.BrokerIDNotRegistered},
	{controller.ErrStaleBrokerEpoch, kerr.StaleBrokerEpoch},
	{controller.ErrDuplicateBrokerRegistration, kerr.DuplicateBrokerRegistration},
	{controller.ErrInvalidUpdateVersion, kerr.InvalidUpdateVersion},
	{controller.ErrFencedLeaderEpoch, kerr.FencedLeaderEpoch},
	{controller.ErrIneligibleReplica, kerr.IneligibleReplica},
	{controller.ErrElectionNotNeeded, kerr.ElectionNotNeeded},
	{controller.ErrPreferredLeaderNotAvailable, kerr.PreferredLeaderNotAvailable},
	{controller.ErrEligibleLeadersNotAvailable, kerr.EligibleLeadersNotAvailable},
	{controller.ErrProducerIDsExhausted, kerr.UnknownServerError},
	{controller.ErrResourceNotFound, kerr.ResourceNotFound},
	{controller.ErrDuplicateResource, kerr.DuplicateResource},
	{controller.ErrUnacceptableCredential, kerr.UnacceptableCredential},
	{controller.ErrUnsupportedSaslMechanism, kerr.UnsupportedSaslMechanism},

	// Authentication (SaslHandshake, SaslAuthenticate).
	{auth.ErrAuthenticationFailed, kerr.SaslAuthenticationFailed},
	{auth.ErrUnsupportedMechanism, kerr.UnsupportedSaslMechanism},
	{auth.ErrNoHandshake, kerr.IllegalSaslState},
	{auth.ErrPrincipalChanged, kerr.SaslAuthenticationFailed},
	{errIllegalSaslState, kerr.IllegalSaslState},

	// Authorization.
	{auth.ErrTopicAuthorizationFailed, kerr.TopicAuthorizationFailed},
	{auth.ErrGroupAuthorizationFailed, kerr.GroupAuthorizationFailed},
	{auth.ErrClusterAuthorizationFailed, kerr.ClusterAuthorizationFailed},
	{auth.ErrTransactionalIDAuthorizationFailed, kerr.TransactionalIDAuthorizationFailed},
	{auth.ErrSecurityDisabled, kerr.SecurityDisabled},
	{auth.ErrInvalidACL, kerr.InvalidRequest},

	// Config validation outside the controller (DescribeConfigs).
	{config.ErrUnknownConfig, kerr.InvalidConfig},
	{config.ErrInvalidConfigValue, kerr.InvalidConfig},

	// The metadata quorum: a controller that cannot be reached in time.
	// Never NOT_CONTROLLER: clients send controller requests to any broker
	// (KIP-590), and a timeout is what they retry.
	{raft.ErrStopped, kerr.RequestTimedOut},
	{raft.ErrNoLeader, kerr.RequestTimedOut},
	{raft.ErrNotLeader, kerr.RequestTimedOut},
	{raft.ErrOutcomeUnknown, kerr.RequestTimedOut},
	{raft.ErrProposalDropped, kerr.RequestTimedOut},
	{raft.ErrProposalLost, kerr.RequestTimedOut},
	{raft.ErrTooManyProposals, kerr.ThrottlingQuotaExceeded},
	{raft.ErrProposalTooLarge, kerr.PolicyViolation},
	{context.DeadlineExceeded, kerr.RequestTimedOut},
	{context.Canceled, kerr.RequestTimedOut},
}

// errorCode returns the Kafka error code for err: 0 for nil, the table's
// code for a mapped domain error, UNKNOWN_SERVER_ERROR otherwise.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return e.code.Code
		}
	}
	return kerr.UnknownServerError.Code
}

// errorMessage is the message sent with a code where the response has one:
// nil for success, else the error's text with its context.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}

// groupErrorCode is errorCode for an error that fails a whole group
// request (a JoinGroup, a commit's every partition). Group clients know the
// coordinator codes, not the storage ones, so a failure below the
// coordinator is translated as Kafka's coordinator runtime does: an
// unavailable or timed-out write means "find the coordinator again"
// (COORDINATOR_NOT_AVAILABLE), a lost leadership or failed log dir means
// another node should coordinate (NOT_COORDINATOR), and a record too large
// for the offsets topic is a server problem.
func groupErrorCode(err error) int16 {
	switch code := errorCode(err); code {
	case kerr.UnknownTopicOrPartition.Code, kerr.NotEnoughReplicas.Code, kerr.RequestTimedOut.Code:
		return kerr.CoordinatorNotAvailable.Code
	case kerr.NotLeaderForPartition.Code, kerr.KafkaStorageError.Code:
		return kerr.NotCoordinator.Code
	case kerr.MessageTooLarge.Code, kerr.RecordListTooLarge.Code, kerr.InvalidFetchSize.Code:
		return kerr.UnknownServerError.Code
	default:
		return code
	}
}
