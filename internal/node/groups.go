package node

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/kraft"
	"github.com/sluicelog/sluice/internal/metadata"
)

// offsetsTopic is where the group coordinator keeps group metadata and
// committed offsets.
const offsetsTopic = "__consumer_offsets"

// startGroupCoordinator starts the consumer-group coordinator on the
// partitions of __consumer_offsets this node leads.
func (n *Node) startGroupCoordinator() error {
	cfg := n.opts.Config
	// coord reads a zero field as "unset, take Kafka's default"; an
	// explicit 0 delay is -1 there.
	initialDelayMs := cfg.Int32("group.initial.rebalance.delay.ms")
	if _, set := cfg.Sources()["group.initial.rebalance.delay.ms"]; !set && cfg.String("controller.quorum.voters") == "" {
		// A laptop's cluster of one: a one-off `consume -g` should not
		// wait 3 s for members that will never come (Kafka's own
		// development config sets 0); clusters keep Kafka's default.
		initialDelayMs = 0
	}
	if initialDelayMs == 0 {
		initialDelayMs = -1
	}
	var err error
	n.groups, err = coord.Start(coord.Options{
		NodeID: n.meta.NodeID, Partitions: n.parts, Image: n.cp.Image,
		CreateOffsetsTopic: n.createOffsetsTopic, Clock: n.opts.Clock, Logger: n.log,
		Config: coord.Config{
			OffsetsTopicNumPartitions:     cfg.Int32("offsets.topic.num.partitions"),
			OffsetsTopicReplicationFactor: int16(cfg.Int32("offsets.topic.replication.factor")),
			GroupMinSessionTimeoutMs:      cfg.Int32("group.min.session.timeout.ms"),
			GroupMaxSessionTimeoutMs:      cfg.Int32("group.max.session.timeout.ms"),
			GroupInitialRebalanceDelayMs:  initialDelayMs,
			GroupMaxSize:                  cfg.Int32("group.max.size"),
			OffsetsRetentionMs:            cfg.Int64("offsets.retention.minutes") * 60_000,
			ConsumerSessionTimeoutMs:      cfg.Int32("group.consumer.session.timeout.ms"),
			ConsumerHeartbeatIntervalMs:   cfg.Int32("group.consumer.heartbeat.interval.ms"),
			ConsumerMaxSize:               cfg.Int32("group.consumer.max.size"),
			ConsumerAssignors:             cfg.List("group.consumer.assignors"),
			ConsumerMigrationPolicy:       cfg.String("group.consumer.migration.policy"),
		},
	})
	if err != nil {
		return fmt.Errorf("group coordinator: %w", err)
	}
	return nil
}

// createOffsetsTopic creates __consumer_offsets through the controller, as
// Kafka's brokers do on the first FindCoordinator.
func (n *Node) createOffsetsTopic(ctx context.Context) error {
	cfg := n.opts.Config
	configs := make([]controller.ConfigEntry, 0, len(coord.OffsetsTopicConfigs))
	for k, v := range coord.OffsetsTopicConfigs {
		configs = append(configs, controller.ConfigEntry{Name: k, Value: v})
	}
	// Sorted so that every broker asks for the same request: the configs
	// become metadata records, and map order would make them differ from
	// one broker (and run) to the next for no reason.
	sort.Slice(configs, func(i, j int) bool { return configs[i].Name < configs[j].Name })
	replicationFactor := offsetsReplicationFactor(int16(cfg.Int32("offsets.topic.replication.factor")), n.cp.Image())
	resp, err := n.cp.Submit(ctx, kraft.CreateTopics{Request: controller.CreateTopicsRequest{
		Topics: []controller.CreatableTopic{{
			Name: offsetsTopic, NumPartitions: cfg.Int32("offsets.topic.num.partitions"),
			ReplicationFactor: replicationFactor, Configs: configs,
		}},
	}})
	if err != nil {
		return fmt.Errorf("create %s: %w", offsetsTopic, err)
	}
	result := resp.(controller.CreateTopicsResponse).Topics[0]
	// Several brokers may race to create it on their first FindCoordinator;
	// the loser's TOPIC_ALREADY_EXISTS means what it wanted is there.
	if result.Err != nil && !errors.Is(result.Err, controller.ErrTopicExists) {
		return fmt.Errorf("create %s: %w", offsetsTopic, result.Err)
	}
	return nil
}

// offsetsReplicationFactor caps offsets.topic.replication.factor at the
// live brokers, registered and unfenced: with Kafka's default of 3 a
// cluster of one (or two) could otherwise never create the topic, and no
// consumer group would work. Kafka refuses instead; we prefer a laptop
// that works. The topic keeps the factor it was created with, so a
// cluster that grows later should reassign it. At least 1: the first
// image may lag; the controller checks the factor against its own.
func offsetsReplicationFactor(configured int16, img *metadata.Image) int16 {
	live := 0
	for _, b := range img.Brokers() {
		if !b.Fenced {
			live++
		}
	}
	return int16(max(1, min(int(configured), live)))
}
