// Package controller makes the metadata quorum's decisions: given the
// current metadata.Image and a command (create topics, a broker heartbeat,
// an ISR change), it returns the records to append and the response to send
// once they are committed. It is Kafka's QuorumController logic without the
// quorum: "decide, emit records, replay".
//
// Invariants:
//   - A decision never changes metadata. State changes only when the driver
//     commits the records and replays them into the Image (metadata.Delta),
//     on this node and every other. A rejected command, or a validate-only
//     one, emits no records.
//   - Decisions are serialized by the driver, and each sees the latest
//     Image including the records of earlier decisions that are proposed
//     but not yet committed, so two decisions never race for one name or
//     one partition epoch.
//   - The only state kept here is soft: when each broker last heartbeated.
//     A new active controller starts with none and gives every live broker
//     a fresh session, so a failover never fences the whole cluster.
//   - Pure: time arrives as nowMs and randomness (topic ids) through an
//     IDGenerator; the same inputs give the same records.
//
// Leaders are elected only from the ISR of live (registered, unfenced)
// brokers, in replica order, unless unclean.leader.election.enable allows a
// live replica outside it. Epochs only grow: replaying a PartitionChange
// bumps the partition epoch, and the leader epoch when the leader changes.
package controller

import "github.com/sluicelog/sluice/internal/metadata"

// IDGenerator supplies the randomness decisions need: fresh topic ids. The
// driver passes a crypto/rand source; tests pass a counter.
type IDGenerator interface {
	NewUUID() metadata.UUID
}

// Config holds the controller's static settings, with Kafka's key names.
type Config struct {
	// DefaultReplicationFactor (default.replication.factor) is used when
	// CreateTopics asks for -1.
	DefaultReplicationFactor int16
	// NumPartitions (num.partitions) is used when CreateTopics asks for -1.
	NumPartitions int32
	// BrokerSessionTimeoutMs (broker.session.timeout.ms) is how long a
	// broker stays unfenced without a heartbeat.
	BrokerSessionTimeoutMs int64
	// UncleanLeaderElectionEnable (unclean.leader.election.enable) is the
	// default when neither the topic nor the cluster-wide dynamic config
	// sets it.
	UncleanLeaderElectionEnable bool
	// ProducerIDBlockSize is how many producer ids a broker gets at once.
	ProducerIDBlockSize int32
	// AutoLeaderRebalanceEnable (auto.leader.rebalance.enable) has the
	// driver run RebalanceLeaders every LeaderImbalanceCheckIntervalMs
	// (leader.imbalance.check.interval.seconds, in ms).
	AutoLeaderRebalanceEnable      bool
	LeaderImbalanceCheckIntervalMs int64
	// LeaderImbalancePerBrokerPercentage (leader.imbalance.per.broker.percentage)
	// is the share of a broker's preferred partitions that may be led
	// elsewhere before RebalanceLeaders moves them back. Unlike the other
	// fields, 0 is kept: it means any imbalance is corrected.
	LeaderImbalancePerBrokerPercentage int32
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		DefaultReplicationFactor: 1,
		NumPartitions:            1,
		BrokerSessionTimeoutMs:   9000,
		ProducerIDBlockSize:      1000,

		AutoLeaderRebalanceEnable:          true,
		LeaderImbalanceCheckIntervalMs:     300_000,
		LeaderImbalancePerBrokerPercentage: 10,
	}
}

// maxPartitionsPerRequest bounds the partitions one CreateTopics or
// CreatePartitions may create, so one decision's batch of records stays a
// reasonable Raft entry (Kafka bounds a user operation to 10,000 records).
const maxPartitionsPerRequest = 10_000

// Controller decides; see the package comment. It is not safe for
// concurrent use: the driver serializes decisions.
type Controller struct {
	cfg Config
	ids IDGenerator
	// lastHeartbeatMs is the soft state: when each broker last heartbeated
	// (or registered, or was first seen by this controller).
	lastHeartbeatMs map[int32]int64
}

// New returns a Controller with cfg.WithDefaults().
func New(cfg Config, ids IDGenerator) *Controller {
	return &Controller{cfg: cfg.WithDefaults(), ids: ids, lastHeartbeatMs: map[int32]int64{}}
}

// WithDefaults returns cfg with its zero fields (negative, for
// LeaderImbalancePerBrokerPercentage) set to DefaultConfig's values. The
// booleans are kept as given.
func (cfg Config) WithDefaults() Config {
	def := DefaultConfig()
	if cfg.DefaultReplicationFactor <= 0 {
		cfg.DefaultReplicationFactor = def.DefaultReplicationFactor
	}
	if cfg.NumPartitions <= 0 {
		cfg.NumPartitions = def.NumPartitions
	}
	if cfg.BrokerSessionTimeoutMs <= 0 {
		cfg.BrokerSessionTimeoutMs = def.BrokerSessionTimeoutMs
	}
	if cfg.ProducerIDBlockSize <= 0 {
		cfg.ProducerIDBlockSize = def.ProducerIDBlockSize
	}
	if cfg.LeaderImbalanceCheckIntervalMs <= 0 {
		cfg.LeaderImbalanceCheckIntervalMs = def.LeaderImbalanceCheckIntervalMs
	}
	if cfg.LeaderImbalancePerBrokerPercentage < 0 {
		cfg.LeaderImbalancePerBrokerPercentage = def.LeaderImbalancePerBrokerPercentage
	}
	return cfg
}

// Config returns the controller's settings after defaults.
func (c *Controller) Config() Config { return c.cfg }
