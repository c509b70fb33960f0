package controller

import (
	"errors"
	"fmt"
)

// Domain errors of controller decisions. Each is returned wrapped with
// context (the topic, the broker, what was expected), so the edge reads the
// Kafka code with errors.Is and sends Error() as the error message. The
// comment names the code the edge maps it to.
var (
	// ErrInvalidRequest: the request contradicts itself (a name given
	// twice, counts and an assignment both set, an ISR without its leader).
	// Kafka: INVALID_REQUEST (42).
	ErrInvalidRequest = errors.New("invalid request")

	// ErrTopicExists: CreateTopics named an existing topic.
	// Kafka: TOPIC_ALREADY_EXISTS (36).
	ErrTopicExists = errors.New("topic already exists")

	// ErrInvalidTopicName: the name breaks Kafka's rules or collides with an
	// existing name differing only in '.' versus '_'.
	// Kafka: INVALID_TOPIC_EXCEPTION (17).
	ErrInvalidTopicName = errors.New("invalid topic name")

	// ErrInvalidPartitions: a partition count below 1, or CreatePartitions
	// not increasing it. Kafka: INVALID_PARTITIONS (37).
	ErrInvalidPartitions = errors.New("invalid partition count")

	// ErrInvalidReplicationFactor: a replication factor below 1 or above
	// the number of brokers. Kafka: INVALID_REPLICATION_FACTOR (38).
	ErrInvalidReplicationFactor = errors.New("invalid replication factor")

	// ErrNotEnoughBrokers: too few unfenced brokers to place the replicas.
	// It is also an ErrInvalidReplicationFactor, as Kafka reports it.
	// Kafka: INVALID_REPLICATION_FACTOR (38).
	ErrNotEnoughBrokers = fmt.Errorf("%w: not enough unfenced brokers", ErrInvalidReplicationFactor)

	// ErrInvalidReplicaAssignment: an explicit assignment with sparse
	// partition ids, duplicate or unknown brokers, uneven replication
	// factors, or no live replica. Kafka: INVALID_REPLICA_ASSIGNMENT (39).
	ErrInvalidReplicaAssignment = errors.New("invalid replica assignment")

	// ErrInvalidConfig: an unknown config key or a bad value.
	// Kafka: INVALID_CONFIG (40).
	ErrInvalidConfig = errors.New("invalid config")

	// ErrTooManyPartitions: one request would create more partitions than
	// a single metadata batch may hold. Kafka: POLICY_VIOLATION (44).
	ErrTooManyPartitions = errors.New("too many partitions in one request")

	// ErrUnknownTopic: no topic (or partition) of that name.
	// Kafka: UNKNOWN_TOPIC_OR_PARTITION (3).
	ErrUnknownTopic = errors.New("unknown topic or partition")

	// ErrUnknownTopicID: no topic with that id. Kafka: UNKNOWN_TOPIC_ID (100).
	ErrUnknownTopicID = errors.New("unknown topic id")

	// ErrUnknownBroker: the broker id is not registered.
	// Kafka: BROKER_ID_NOT_REGISTERED (102).
	ErrUnknownBroker = errors.New("broker not registered")

	// ErrStaleBrokerEpoch: the broker epoch is not the registered one: the
	// request comes from an earlier incarnation. Kafka: STALE_BROKER_EPOCH (77).
	ErrStaleBrokerEpoch = errors.New("stale broker epoch")

	// ErrDuplicateBrokerRegistration: another incarnation holds the broker
	// id with a live session. Kafka: DUPLICATE_BROKER_REGISTRATION (101).
	ErrDuplicateBrokerRegistration = errors.New("broker id registered by another live incarnation")

	// ErrInvalidUpdateVersion: AlterPartition saw an older partition epoch
	// than the controller's. Kafka: INVALID_UPDATE_VERSION (95).
	ErrInvalidUpdateVersion = errors.New("stale partition epoch")

	// ErrFencedLeaderEpoch: AlterPartition from a broker that is not the
	// leader at that leader epoch. Kafka: FENCED_LEADER_EPOCH (74).
	ErrFencedLeaderEpoch = errors.New("fenced leader epoch")

	// ErrIneligibleReplica: a proposed ISR member is fenced or not
	// registered. Kafka: INELIGIBLE_REPLICA (107).
	ErrIneligibleReplica = errors.New("ineligible replica in the ISR")

	// ErrElectionNotNeeded: the partition already has the leader the
	// election would choose. Kafka: ELECTION_NOT_NEEDED (84).
	ErrElectionNotNeeded = errors.New("election not needed")

	// ErrPreferredLeaderNotAvailable: the preferred replica is fenced or
	// out of the ISR. Kafka: PREFERRED_LEADER_NOT_AVAILABLE (80).
	ErrPreferredLeaderNotAvailable = errors.New("preferred leader not available")

	// ErrEligibleLeadersNotAvailable: no live replica can lead.
	// Kafka: ELIGIBLE_LEADERS_NOT_AVAILABLE (83).
	ErrEligibleLeadersNotAvailable = errors.New("no eligible leader available")

	// ErrProducerIDsExhausted: the next block would pass the largest
	// producer id. Kafka: UNKNOWN_SERVER_ERROR (-1), as Kafka reports it.
	ErrProducerIDsExhausted = errors.New("producer ids exhausted")

	// ErrResourceNotFound: a SCRAM credential to delete does not exist.
	// Kafka: RESOURCE_NOT_FOUND (91).
	ErrResourceNotFound = errors.New("resource not found")

	// ErrDuplicateResource: one request alters a user's credential for a
	// mechanism twice. Kafka: DUPLICATE_RESOURCE (92).
	ErrDuplicateResource = errors.New("duplicate resource")

	// ErrUnacceptableCredential: a SCRAM credential with an empty user, salt
	// or salted password, or an iteration count outside 4096-16384.
	// Kafka: UNACCEPTABLE_CREDENTIAL (93).
	ErrUnacceptableCredential = errors.New("unacceptable credential")

	// ErrUnsupportedSaslMechanism: a SCRAM mechanism other than SHA-256 and
	// SHA-512. Kafka: UNSUPPORTED_SASL_MECHANISM (33).
	ErrUnsupportedSaslMechanism = errors.New("unsupported SASL mechanism")
)

// Errors lists every domain error, for the edge's table test that each one
// maps to a Kafka code.
var Errors = []error{
	ErrInvalidRequest, ErrTopicExists, ErrInvalidTopicName, ErrInvalidPartitions,
	ErrInvalidReplicationFactor, ErrNotEnoughBrokers, ErrInvalidReplicaAssignment,
	ErrInvalidConfig, ErrTooManyPartitions, ErrUnknownTopic, ErrUnknownTopicID,
	ErrUnknownBroker, ErrStaleBrokerEpoch, ErrDuplicateBrokerRegistration,
	ErrInvalidUpdateVersion, ErrFencedLeaderEpoch, ErrIneligibleReplica,
	ErrElectionNotNeeded, ErrPreferredLeaderNotAvailable,
	ErrEligibleLeadersNotAvailable, ErrProducerIDsExhausted,
	ErrResourceNotFound, ErrDuplicateResource, ErrUnacceptableCredential, ErrUnsupportedSaslMechanism,
}

// kindError gives an error from another package (a config validation
// error) the identity of a domain error without repeating the domain
// error's text in the message a client sees.
type kindError struct{ kind, err error }

func (e kindError) Error() string   { return e.err.Error() }
func (e kindError) Unwrap() []error { return []error{e.kind, e.err} }

// withKind returns err, also matching kind under errors.Is.
func withKind(kind, err error) error { return kindError{kind, err} }
