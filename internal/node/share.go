package node

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/coord/sharegroup"
	"github.com/sluicelog/sluice/internal/kraft"
	"github.com/sluicelog/sluice/internal/partition"
	"github.com/sluicelog/sluice/internal/share"
)

// newShares builds the share-group coordinator (KIP-932) from the broker
// config: its share partitions keep their state with the share
// coordinator, through sharePersister.
func (n *Node) newShares() *share.Coordinator {
	cfg := n.opts.Config
	return share.New(share.Options{
		Config: share.Config{
			Group: sharegroup.GroupConfig{
				SessionTimeoutMs:    cfg.Int64(config.GroupShareSessionTimeoutMs),
				HeartbeatIntervalMs: cfg.Int64(config.GroupShareHeartbeatIntervalMs),
				MaxSize:             int(cfg.Int32(config.GroupShareMaxSize)),
			},
			Partition: sharegroup.PartitionConfig{
				LockDurationMs:     cfg.Int64(config.GroupShareRecordLockDurationMs),
				DeliveryCountLimit: int16(cfg.Int32(config.GroupShareDeliveryCountLimit)),
				MaxRecordLocks:     int(cfg.Int32(config.GroupSharePartitionMaxRecordLocks)),
			},
			AutoOffsetResetEarliest: cfg.String(config.ShareAutoOffsetReset) == config.ShareAutoOffsetResetEarliest,
			MaxSessions:             int(cfg.Int32(config.GroupShareMaxShareSessions)),
		},
		Persister: &sharePersister{n: n}, Image: n.cp.Image,
		Clock: n.opts.Clock, Partitions: n.parts, Logger: n.log,
	})
}

// startShareStateCoordinator starts the share coordinator on the
// partitions of __share_group_state this node leads. Its peers are the
// transaction coordinator's pool: both are broker-to-broker requests on
// the inter-broker listener.
func (n *Node) startShareStateCoordinator() error {
	cfg := n.opts.Config
	var err error
	n.shareStates, err = coord.StartShareState(coord.ShareStateOptions{
		NodeID: n.meta.NodeID, Partitions: n.parts, Image: n.cp.Image,
		CreateShareStateTopic: n.createShareStateTopic, Clock: n.opts.Clock, Logger: n.log,
		Config: coord.ShareStateConfig{
			NumPartitions:      cfg.Int32(config.ShareCoordinatorStateTopicNumPartitions),
			UpdatesPerSnapshot: int(cfg.Int32(config.ShareCoordinatorSnapshotUpdateRecords)),
		},
	})
	if err != nil {
		return fmt.Errorf("share coordinator: %w", err)
	}
	return nil
}

// createShareStateTopic creates __share_group_state through the
// controller on first use, as createTransactionTopic does
// __transaction_state: replication capped at the live brokers,
// min.insync.replicas at the replication factor.
func (n *Node) createShareStateTopic(ctx context.Context) error {
	cfg := n.opts.Config
	rf := offsetsReplicationFactor(int16(cfg.Int32(config.ShareCoordinatorStateTopicReplicationFactor)), n.cp.Image())
	minISR := min(cfg.Int32(config.ShareCoordinatorStateTopicMinISR), int32(rf))
	configs := []controller.ConfigEntry{{Name: "min.insync.replicas", Value: strconv.Itoa(int(minISR))}}
	for k, v := range coord.ShareStateTopicConfigs {
		configs = append(configs, controller.ConfigEntry{Name: k, Value: v})
	}
	sort.Slice(configs, func(i, j int) bool { return configs[i].Name < configs[j].Name })
	resp, err := n.cp.Submit(ctx, kraft.CreateTopics{Request: controller.CreateTopicsRequest{
		Topics: []controller.CreatableTopic{{
			Name: coord.ShareStateTopic, NumPartitions: cfg.Int32(config.ShareCoordinatorStateTopicNumPartitions),
			ReplicationFactor: rf, Configs: configs,
		}},
	}})
	if err != nil {
		return fmt.Errorf("create %s: %w", coord.ShareStateTopic, err)
	}
	result := resp.(controller.CreateTopicsResponse).Topics[0]
	if result.Err != nil && !errors.Is(result.Err, controller.ErrTopicExists) {
		return fmt.Errorf("create %s: %w", coord.ShareStateTopic, result.Err)
	}
	return nil
}

// Persister retries: a coordinator that moved or is loading answers with
// a retriable code, and the state is sent again to the coordinator the
// newest image names, until the caller's deadline.
const (
	persistRetryMinBackoff = 10 * time.Millisecond
	persistRetryMaxBackoff = 500 * time.Millisecond
)

// sharePersister is Kafka's PersisterStateManager for this node's share
// partitions: it finds the share coordinator of each share partition
// (FindCoordinator key type 2, answered from the image) and sends it
// ReadShareGroupState or WriteShareGroupState over the inter-broker
// listener, this node included, so there is one path to test.
type sharePersister struct {
	n *Node
}

func (p *sharePersister) key(groupID, topic string, index int32) (coord.ShareStateKey, error) {
	img := p.n.cp.Image()
	t, ok := img.Topic(topic)
	if !ok {
		return coord.ShareStateKey{}, fmt.Errorf("share state of %s-%d: %w", topic, index, partition.ErrUnknownTopicOrPartition)
	}
	return coord.ShareStateKey{GroupID: groupID, TopicID: t.ID, Partition: index}, nil
}

// call sends req to the coordinator of k until it answers with a code
// that is not retriable, and returns that code's error.
func (p *sharePersister) call(ctx context.Context, k coord.ShareStateKey, send func(ctx context.Context, broker int32) (int16, error)) error {
	backoff := persistRetryMinBackoff
	for {
		broker, err := p.n.shareStates.FindCoordinator(ctx, coord.ShareCoordinatorKey(k))
		var code int16
		if err == nil {
			code, err = send(ctx, broker)
		}
		if err == nil {
			err = persisterError(code)
			if err == nil {
				return nil
			}
		}
		if !retriableShareState(err) {
			return err
		}
		t := p.n.opts.Clock.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			if errors.Is(err, share.ErrStateUnavailable) {
				return fmt.Errorf("%w (%v)", err, ctx.Err())
			}
			return fmt.Errorf("%w: %w (%v)", share.ErrStateUnavailable, err, ctx.Err())
		case <-t.C():
		}
		backoff = min(backoff*2, persistRetryMaxBackoff)
	}
}

// retriableShareState: the coordinator moved, is loading, is not there
// yet, or the connection to it failed; anything else is the answer.
func retriableShareState(err error) bool {
	return errors.Is(err, errShareStateRetriable) || errors.Is(err, coord.ErrCoordinatorNotAvailable) ||
		errors.Is(err, coord.ErrCoordinatorLoadInProgress) || errors.Is(err, coord.ErrNotCoordinator)
}

var errShareStateRetriable = errors.New("share coordinator moved, loading or unreachable")

// persisterError sorts a share coordinator's answer: a fenced leader epoch
// means this node no longer leads the partition (NOT_LEADER_OR_FOLLOWER to
// the consumer, which looks for the new leader). INVALID_REQUEST is how
// Kafka's share coordinator, and ours, refuses a read or write of a share
// partition without state (never initialized, or deleted): the requests
// this node sends are otherwise well formed, so it is taken as that, and
// is not retried here (the leader drops its copy instead).
func persisterError(code int16) error {
	if code == 0 {
		return nil
	}
	err := kerr.ErrorForCode(code)
	switch err {
	case kerr.NotCoordinator, kerr.CoordinatorNotAvailable, kerr.CoordinatorLoadInProgress, kerr.RequestTimedOut,
		kerr.NotEnoughReplicas, kerr.NotEnoughReplicasAfterAppend:
		return fmt.Errorf("%w: %w: %v", share.ErrStateUnavailable, errShareStateRetriable, err)
	case kerr.FencedLeaderEpoch, kerr.FencedStateEpoch:
		return fmt.Errorf("%w: share coordinator: %v", partition.ErrNotLeader, err)
	case kerr.UnknownTopicOrPartition:
		return fmt.Errorf("%w: share coordinator: %v", partition.ErrUnknownTopicOrPartition, err)
	case kerr.InvalidRequest:
		return fmt.Errorf("%w: share coordinator: %v", share.ErrStateUninitialized, err)
	default:
		return fmt.Errorf("%w: share coordinator: %v", share.ErrStateUnavailable, err)
	}
}

// ReadState implements share.Persister.
func (p *sharePersister) ReadState(ctx context.Context, groupID, topic string, partition, leaderEpoch int32) (sharegroup.PartitionState, bool, error) {
	k, err := p.key(groupID, topic, partition)
	if err != nil {
		return sharegroup.PartitionState{}, false, err
	}
	var out kmsg.ReadShareGroupStateResponseTopicPartition
	err = p.call(ctx, k, func(ctx context.Context, broker int32) (int16, error) {
		req := kmsg.NewPtrReadShareGroupStateRequest()
		req.GroupID = groupID
		req.Topics = []kmsg.ReadShareGroupStateRequestTopic{{TopicID: k.TopicID,
			Partitions: []kmsg.ReadShareGroupStateRequestTopicPartition{{Partition: partition, LeaderEpoch: leaderEpoch}}}}
		resp, err := p.n.txnPeers.request(ctx, broker, req)
		if err != nil {
			return 0, fmt.Errorf("%w: broker %d: %w", errShareStateRetriable, broker, err)
		}
		r := resp.(*kmsg.ReadShareGroupStateResponse)
		if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
			return 0, fmt.Errorf("%w: broker %d answered %d topics", share.ErrStateUnavailable, broker, len(r.Topics))
		}
		out = r.Topics[0].Partitions[0]
		return out.ErrorCode, nil
	})
	if err != nil {
		return sharegroup.PartitionState{}, false, err
	}
	if out.StartOffset < 0 {
		// Initialized with no start offset (by the group coordinator, or
		// a deleted share group offset): its state epoch still fences
		// older writers.
		return sharegroup.PartitionState{StateEpoch: out.StateEpoch, StartOffset: -1}, false, nil
	}
	st := sharegroup.PartitionState{StateEpoch: out.StateEpoch, StartOffset: out.StartOffset, Batches: make([]sharegroup.StateBatch, len(out.StateBatches))}
	for i, b := range out.StateBatches {
		st.Batches[i] = sharegroup.StateBatch{FirstOffset: b.FirstOffset, LastOffset: b.LastOffset,
			State: sharegroup.RecordState(b.DeliveryState), DeliveryCount: b.DeliveryCount}
	}
	return st, true, nil
}

// WriteState implements share.Persister: the whole state, so the share
// coordinator's merge is a replacement from the start offset on.
func (p *sharePersister) WriteState(ctx context.Context, groupID, topic string, partition, leaderEpoch int32, st sharegroup.PartitionState) error {
	k, err := p.key(groupID, topic, partition)
	if err != nil {
		return err
	}
	wp := kmsg.NewWriteShareGroupStateRequestTopicPartition()
	wp.Partition, wp.StateEpoch, wp.LeaderEpoch, wp.StartOffset = partition, st.StateEpoch, leaderEpoch, st.StartOffset
	wp.StateBatches = make([]kmsg.WriteShareGroupStateRequestTopicPartitionStateBatch, len(st.Batches))
	for i, b := range st.Batches {
		wp.StateBatches[i] = kmsg.WriteShareGroupStateRequestTopicPartitionStateBatch{FirstOffset: b.FirstOffset, LastOffset: b.LastOffset,
			DeliveryState: int8(b.State), DeliveryCount: b.DeliveryCount}
	}
	return p.call(ctx, k, func(ctx context.Context, broker int32) (int16, error) {
		req := kmsg.NewPtrWriteShareGroupStateRequest()
		req.GroupID = groupID
		req.Topics = []kmsg.WriteShareGroupStateRequestTopic{{TopicID: k.TopicID, Partitions: []kmsg.WriteShareGroupStateRequestTopicPartition{wp}}}
		resp, err := p.n.txnPeers.request(ctx, broker, req)
		if err != nil {
			return 0, fmt.Errorf("%w: broker %d: %w", errShareStateRetriable, broker, err)
		}
		r := resp.(*kmsg.WriteShareGroupStateResponse)
		if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
			return 0, fmt.Errorf("%w: broker %d answered %d topics", share.ErrStateUnavailable, broker, len(r.Topics))
		}
		return r.Topics[0].Partitions[0].ErrorCode, nil
	})
}

// DeleteState implements share.Persister.
func (p *sharePersister) DeleteState(ctx context.Context, groupID, topic string, partition int32) error {
	k, err := p.key(groupID, topic, partition)
	if err != nil {
		return err
	}
	return p.call(ctx, k, func(ctx context.Context, broker int32) (int16, error) {
		req := kmsg.NewPtrDeleteShareGroupStateRequest()
		req.GroupID = groupID
		req.Topics = []kmsg.DeleteShareGroupStateRequestTopic{{TopicID: k.TopicID,
			Partitions: []kmsg.DeleteShareGroupStateRequestTopicPartition{{Partition: partition}}}}
		resp, err := p.n.txnPeers.request(ctx, broker, req)
		if err != nil {
			return 0, fmt.Errorf("%w: broker %d: %w", errShareStateRetriable, broker, err)
		}
		r := resp.(*kmsg.DeleteShareGroupStateResponse)
		if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
			return 0, fmt.Errorf("%w: broker %d answered %d topics", share.ErrStateUnavailable, broker, len(r.Topics))
		}
		return r.Topics[0].Partitions[0].ErrorCode, nil
	})
}

// ReadStateSummary implements share.Persister.
func (p *sharePersister) ReadStateSummary(ctx context.Context, groupID, topic string, partition int32) (share.StateSummary, bool, error) {
	k, err := p.key(groupID, topic, partition)
	if err != nil {
		return share.StateSummary{}, false, err
	}
	var out kmsg.ReadShareGroupStateSummaryResponseTopicPartition
	err = p.call(ctx, k, func(ctx context.Context, broker int32) (int16, error) {
		req := kmsg.NewPtrReadShareGroupStateSummaryRequest()
		req.GroupID = groupID
		req.Topics = []kmsg.ReadShareGroupStateSummaryRequestTopic{{TopicID: k.TopicID,
			Partitions: []kmsg.ReadShareGroupStateSummaryRequestTopicPartition{{Partition: partition}}}}
		resp, err := p.n.txnPeers.request(ctx, broker, req)
		if err != nil {
			return 0, fmt.Errorf("%w: broker %d: %w", errShareStateRetriable, broker, err)
		}
		r := resp.(*kmsg.ReadShareGroupStateSummaryResponse)
		if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
			return 0, fmt.Errorf("%w: broker %d answered %d topics", share.ErrStateUnavailable, broker, len(r.Topics))
		}
		out = r.Topics[0].Partitions[0]
		return out.ErrorCode, nil
	})
	if err != nil || out.StartOffset < 0 {
		return share.StateSummary{StateEpoch: out.StateEpoch, LeaderEpoch: -1, StartOffset: -1}, false, err
	}
	return share.StateSummary{StateEpoch: out.StateEpoch, LeaderEpoch: out.LeaderEpoch, StartOffset: out.StartOffset}, true, nil
}

// InitializeState implements share.Persister.
func (p *sharePersister) InitializeState(ctx context.Context, groupID, topic string, partition, stateEpoch int32, startOffset int64) error {
	k, err := p.key(groupID, topic, partition)
	if err != nil {
		return err
	}
	return p.call(ctx, k, func(ctx context.Context, broker int32) (int16, error) {
		req := kmsg.NewPtrInitializeShareGroupStateRequest()
		req.GroupID = groupID
		req.Topics = []kmsg.InitializeShareGroupStateRequestTopic{{TopicID: k.TopicID,
			Partitions: []kmsg.InitializeShareGroupStateRequestTopicPartition{{Partition: partition, StateEpoch: stateEpoch, StartOffset: startOffset}}}}
		resp, err := p.n.txnPeers.request(ctx, broker, req)
		if err != nil {
			return 0, fmt.Errorf("%w: broker %d: %w", errShareStateRetriable, broker, err)
		}
		r := resp.(*kmsg.InitializeShareGroupStateResponse)
		if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
			return 0, fmt.Errorf("%w: broker %d answered %d topics", share.ErrStateUnavailable, broker, len(r.Topics))
		}
		return r.Topics[0].Partitions[0].ErrorCode, nil
	})
}

var _ share.Persister = (*sharePersister)(nil)
