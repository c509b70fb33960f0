// Package metadata holds the cluster metadata as Sluice's controller quorum
// replicates it: a log of versioned records (brokers, topics, partitions,
// configs, producer-id blocks, features) and the immutable Image they build.
//
// It is pure: no I/O, no clock, no goroutines. State changes only by
// replaying a record into a Delta and applying the Delta, the same code on
// the active controller, the standby controllers, every broker and at
// start-up, so they cannot disagree about what a record means.
package metadata

import "github.com/sluicelog/sluice/internal/auth"

// UUID is a 16-byte identifier (topic ids, broker incarnations), written as
// Kafka writes them: URL-safe base64 without padding.
type UUID [16]byte

// RecordType identifies a record's kind in the encoding. Values are on disk
// and must never be reused.
type RecordType uint16

const (
	TypeRegisterBroker   RecordType = 1
	TypeUnregisterBroker RecordType = 2
	TypeFenceBroker      RecordType = 3
	TypeUnfenceBroker    RecordType = 4
	TypeTopic            RecordType = 5
	TypePartition        RecordType = 6
	TypePartitionChange  RecordType = 7
	TypeRemoveTopic      RecordType = 8
	TypeConfig           RecordType = 9
	TypeProducerIDs      RecordType = 10
	TypeFeatureLevel     RecordType = 11

	// ACLs, numbered as the CreateAcls and DeleteAcls API keys, away from
	// the values other branches take for their records at the same time.
	TypeAccessControlEntry       RecordType = 30
	TypeRemoveAccessControlEntry RecordType = 31

	// TypeClientQuota is Kafka's own number for ClientQuotaRecord.
	TypeClientQuota RecordType = 14
)

// Record is one metadata record.
type Record interface {
	Type() RecordType
}

// Leader values with a special meaning.
const (
	// NoLeader: the partition has no leader (no ISR member is alive).
	NoLeader int32 = -1
	// NoLeaderChange in a PartitionChange leaves the leader as it is.
	NoLeaderChange int32 = -2
)

// Listener is an endpoint a broker accepts clients on.
type Listener struct {
	Name             string // e.g. PLAINTEXT
	Host             string
	Port             uint16
	SecurityProtocol string // PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL
}

// RegisterBroker records a broker joining (or re-joining) the cluster. A
// re-registration with a new incarnation replaces the old one; the broker
// epoch is the metadata offset of the registration and grows each time.
type RegisterBroker struct {
	BrokerID    int32
	Incarnation UUID
	BrokerEpoch int64
	Listeners   []Listener
	Rack        string // "" when none
	Fenced      bool   // brokers register fenced and are unfenced once caught up
}

// UnregisterBroker removes a broker from the cluster.
type UnregisterBroker struct {
	BrokerID    int32
	BrokerEpoch int64
}

// FenceBroker marks a broker fenced: its session lease expired or it shut
// down, so it may lead no partition.
type FenceBroker struct {
	BrokerID    int32
	BrokerEpoch int64
}

// UnfenceBroker marks a broker alive again.
type UnfenceBroker struct {
	BrokerID    int32
	BrokerEpoch int64
}

// Topic creates a topic. Its partitions follow as Partition records in the
// same batch.
type Topic struct {
	Name string
	ID   UUID
}

// Partition creates a partition with its full state.
type Partition struct {
	TopicID        UUID
	Partition      int32
	Replicas       []int32 // the first is the preferred leader
	ISR            []int32
	Leader         int32 // NoLeader when none
	LeaderEpoch    int32
	PartitionEpoch int32
}

// PartitionChange changes a partition. Replaying it bumps the partition
// epoch, and the leader epoch too when the leader changes, so epochs only
// ever grow and every replica computes the same ones.
type PartitionChange struct {
	TopicID   UUID
	Partition int32
	Leader    int32   // NoLeaderChange keeps the leader; NoLeader removes it
	ISR       []int32 // nil: unchanged
	Replicas  []int32 // nil: unchanged
}

// RemoveTopic deletes a topic and its partitions and configs.
type RemoveTopic struct {
	TopicID UUID
}

// ConfigResourceType is the kind of resource a config belongs to, with
// Kafka's numbering (DescribeConfigs resource types).
type ConfigResourceType int8

const (
	ConfigResourceTopic  ConfigResourceType = 2
	ConfigResourceBroker ConfigResourceType = 4
	// ConfigResourceGroup is a consumer or share group's overrides (Kafka's
	// GROUP resource). A group's configs may be set before the group
	// exists, as in Kafka: clients configure a share group before its
	// first member joins.
	ConfigResourceGroup ConfigResourceType = 32
)

// Config sets (or, with Delete, removes) one config key of a resource. A
// broker config with an empty ResourceName is the cluster-wide default.
type Config struct {
	ResourceType ConfigResourceType
	ResourceName string
	Name         string
	Value        string
	Delete       bool
}

// ProducerIDs records that a block of producer ids up to NextProducerID
// (exclusive) was handed to a broker.
type ProducerIDs struct {
	BrokerID       int32
	BrokerEpoch    int64
	NextProducerID int64
}

// FeatureLevel sets a cluster feature's finalized level (metadata.version).
type FeatureLevel struct {
	Name  string
	Level int16
}

func (*RegisterBroker) Type() RecordType   { return TypeRegisterBroker }
func (*UnregisterBroker) Type() RecordType { return TypeUnregisterBroker }
func (*FenceBroker) Type() RecordType      { return TypeFenceBroker }
func (*UnfenceBroker) Type() RecordType    { return TypeUnfenceBroker }
func (*Topic) Type() RecordType            { return TypeTopic }
func (*Partition) Type() RecordType        { return TypePartition }
func (*PartitionChange) Type() RecordType  { return TypePartitionChange }
func (*RemoveTopic) Type() RecordType      { return TypeRemoveTopic }
func (*Config) Type() RecordType           { return TypeConfig }
func (*ProducerIDs) Type() RecordType      { return TypeProducerIDs }
func (*FeatureLevel) Type() RecordType     { return TypeFeatureLevel }
func (*AccessControlEntry) Type() RecordType {
	return TypeAccessControlEntry
}
func (*RemoveAccessControlEntry) Type() RecordType { return TypeRemoveAccessControlEntry }

// AccessControlEntry stores one ACL under an id (Kafka's
// AccessControlEntryRecord). The controller derives the id from the
// binding, so creating an ACL that exists is a no-op, as in Kafka.
type AccessControlEntry struct {
	ID UUID
	auth.Binding
}

// RemoveAccessControlEntry deletes the ACL with the id.
type RemoveAccessControlEntry struct {
	ID UUID
}
