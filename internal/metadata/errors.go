package metadata

import "errors"

// Replay errors. A committed record that fails to replay means a bug in
// the controller that wrote it or a corrupt log: every member replays the
// same records, so they all fail the same way instead of diverging. The
// errors are wrapped with the record's details; compare with errors.Is.
var (
	ErrUnknownBroker       = errors.New("metadata: unknown broker")
	ErrStaleBrokerEpoch    = errors.New("metadata: broker epoch does not match")
	ErrUnknownTopic        = errors.New("metadata: unknown topic")
	ErrTopicExists         = errors.New("metadata: topic already exists")
	ErrUnknownPartition    = errors.New("metadata: unknown partition")
	ErrPartitionNotDense   = errors.New("metadata: partition is not the next partition id")
	ErrInvalidPartition    = errors.New("metadata: invalid partition state")
	ErrProducerIDRegressed = errors.New("metadata: next producer id does not grow")
	ErrInvalidRecord       = errors.New("metadata: invalid record")
	ErrUnknownACL          = errors.New("metadata: unknown acl")
	// ErrInvalidQuotaEntity: a client quota entity that breaks Kafka's
	// rules (unknown type, a type twice, an ip with a user).
	ErrInvalidQuotaEntity = errors.New("metadata: invalid client quota entity")
)

// Decoding errors.
var (
	ErrCorrupt            = errors.New("metadata: corrupt encoding")
	ErrUnknownRecordType  = errors.New("metadata: unknown record type")
	ErrUnsupportedVersion = errors.New("metadata: unsupported record version")
	ErrTooLarge           = errors.New("metadata: decoding would allocate too much")
)
