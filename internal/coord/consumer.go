package coord

import (
	"context"

	"github.com/sluicelog/sluice/internal/coord/group"
)

// The consumer group protocol (KIP-848) on the coordinator: the same
// shards and records as classic groups, driven by ConsumerGroupHeartbeat.

// The consumer protocol's errors, internal/coord/group's re-exported.
var (
	ErrFencedMemberEpoch        = group.ErrFencedMemberEpoch        // FENCED_MEMBER_EPOCH
	ErrStaleMemberEpoch         = group.ErrStaleMemberEpoch         // STALE_MEMBER_EPOCH
	ErrUnreleasedInstanceID     = group.ErrUnreleasedInstanceID     // UNRELEASED_INSTANCE_ID
	ErrUnsupportedAssignor      = group.ErrUnsupportedAssignor      // UNSUPPORTED_ASSIGNOR
	ErrInvalidRegularExpression = group.ErrInvalidRegularExpression // INVALID_REGULAR_EXPRESSION
)

// The consumer protocol's request and result types (aliases).
type (
	ConsumerHeartbeatRequest  = group.ConsumerHeartbeatRequest
	ConsumerHeartbeatResult   = group.ConsumerHeartbeatResult
	ConsumerTopicPartitions   = group.ConsumerTopicPartitions
	ConsumerGroupDescription  = group.ConsumerGroupDescription
	ConsumerMemberDescription = group.ConsumerMemberDescription
)

// Group types and the server-side assignors, by Kafka's names.
const (
	GroupTypeClassic  = group.GroupTypeClassic  // "classic"
	GroupTypeConsumer = group.GroupTypeConsumer // "consumer"
	AssignorUniform   = group.AssignorUniform   // "uniform"
	AssignorRange     = group.AssignorRange     // "range"
)

// group.consumer.migration.policy's values, as Kafka names them.
const (
	MigrationBidirectional = group.MigrationBidirectional
	MigrationUpgrade       = group.MigrationUpgrade
	MigrationDowngrade     = group.MigrationDowngrade
	MigrationDisabled      = group.MigrationDisabled
)

// Kafka's defaults for the consumer protocol's Config fields.
const (
	defaultConsumerSessionTimeoutMs    = 45000
	defaultConsumerHeartbeatIntervalMs = 5000
)

// DefaultConsumerAssignors is group.consumer.assignors' default, as in
// Kafka: uniform first (the default), then range.
var DefaultConsumerAssignors = []string{AssignorUniform, AssignorRange}

// ConsumerGroupHeartbeat runs one KIP-848 heartbeat (join with epoch 0,
// leave with -1 or -2, else a heartbeat at the member's epoch) and
// returns once the records it caused are durable. Subscriptions are
// resolved against the newest metadata image. Errors:
// ErrInvalidGroupID, ErrInvalidRequest, ErrUnknownMemberID,
// ErrFencedMemberEpoch, ErrFencedInstanceID, ErrUnreleasedInstanceID,
// ErrGroupMaxSizeReached, ErrUnsupportedAssignor,
// ErrInvalidRegularExpression, ErrGroupIDNotFound (an unknown group with
// epoch above 0, or a classic group with members that
// group.consumer.migration.policy does not let it upgrade), ErrTooManyGroups
// and the coordinator errors.
func (c *Coordinator) ConsumerGroupHeartbeat(ctx context.Context, req ConsumerHeartbeatRequest) (ConsumerHeartbeatResult, error) {
	if req.GroupID == "" {
		return ConsumerHeartbeatResult{MemberID: req.MemberID}, ErrInvalidGroupID
	}
	img := c.opts.Image()
	r, err := c.call(ctx, req.GroupID, request{step: func(m *group.Shard, nowMs int64, w group.Waiter) {
		m.ConsumerHeartbeat(nowMs, w, req, img)
	}})
	res, _ := r.Value.(ConsumerHeartbeatResult)
	if res.MemberID == "" {
		res.MemberID = req.MemberID
	}
	return res, err
}

// ConsumerGroupDescribe describes consumer-protocol groups, one entry per
// id in request order; a classic or unknown group is ErrGroupIDNotFound.
func (c *Coordinator) ConsumerGroupDescribe(ctx context.Context, groupIDs []string) []ConsumerGroupDescription {
	img := c.opts.Image()
	out := make([]ConsumerGroupDescription, len(groupIDs))
	for i, r := range c.fanOut(ctx, groupIDs, func(id string) request {
		return request{read: func(m *group.Shard) any { return m.DescribeConsumerGroup(id, img) }}
	}) {
		out[i] = ConsumerGroupDescription{GroupID: groupIDs[i], Err: r.err}
		if v, ok := r.value.(ConsumerGroupDescription); ok && r.err == nil {
			out[i] = v
		}
	}
	return out
}

// setConsumerDefaults fills the consumer protocol's zero Config fields.
func (cfg *Config) setConsumerDefaults() {
	if cfg.ConsumerSessionTimeoutMs == 0 {
		cfg.ConsumerSessionTimeoutMs = defaultConsumerSessionTimeoutMs
	}
	if cfg.ConsumerHeartbeatIntervalMs == 0 {
		cfg.ConsumerHeartbeatIntervalMs = defaultConsumerHeartbeatIntervalMs
	}
	if cfg.ConsumerMaxSize == 0 {
		cfg.ConsumerMaxSize = DefaultGroupMaxSize
	}
	if len(cfg.ConsumerAssignors) == 0 {
		cfg.ConsumerAssignors = DefaultConsumerAssignors
	}
	if cfg.ConsumerMigrationPolicy == "" {
		cfg.ConsumerMigrationPolicy = MigrationBidirectional
	}
}
