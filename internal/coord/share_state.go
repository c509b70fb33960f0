package coord

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/coord/sharestate"
	"github.com/sluicelog/sluice/internal/metadata"
)

// ShareStateTopic holds the share coordinator's state (KIP-932): each
// share partition's SPSO, state batches and epochs.
const ShareStateTopic = "__share_group_state"

// ShareStateTopicConfigs are the topic configs __share_group_state is
// created with, Kafka's: compacted (the newest snapshot and update of each
// share partition are what a load needs) and deleted (a share partition
// nobody writes is dropped after retention), min.insync.replicas 2 capped
// at the replication factor by the node.
var ShareStateTopicConfigs = map[string]string{
	"cleanup.policy": "compact,delete",
	"segment.bytes":  "104857600",
	"retention.ms":   "-1",
}

// The share coordinator's errors, mapped to Kafka codes at the edge.
var (
	ErrFencedLeaderEpoch  = sharestate.ErrFencedLeaderEpoch             // FENCED_LEADER_EPOCH
	ErrFencedStateEpoch   = sharestate.ErrFencedStateEpoch              // FENCED_STATE_EPOCH
	ErrInvalidShareState  = sharestate.ErrInvalidRequest                // INVALID_REQUEST
	ErrTooManyShareStates = sharestate.ErrTooManyStates                 // POLICY_VIOLATION
	ErrUnknownShareTopic  = errors.New("unknown topic id or partition") // UNKNOWN_TOPIC_OR_PARTITION
	// ErrUninitializedShareState: a read or write of a share partition
	// that was never initialized, or was deleted (INVALID_REQUEST, as
	// Kafka's share coordinator answers).
	ErrUninitializedShareState = sharestate.ErrUninitialized
)

// Kafka's defaults for ShareStateConfig, and Sluice's bounds.
const (
	defaultShareStateNumPartitions = 50
	defaultShareUpdatesPerSnapshot = 500
	defaultMaxShareStateBatches    = 1 << 16
	defaultMaxShareStates          = 1000000
	shareStateCommitTimeout        = 5 * time.Second
)

// ShareStateConfig is the share coordinator's broker configuration.
type ShareStateConfig struct {
	NumPartitions      int32 // share.coordinator.state.topic.num.partitions [50]
	UpdatesPerSnapshot int   // share.coordinator.snapshot.update.records.per.snapshot [500]
	// MaxStates bounds the share partitions one node holds across its
	// shards; MaxBatches one share partition's state batches.
	MaxStates  int
	MaxBatches int
}

// ShareStateOptions configure a ShareCoordinator; as Options, with
// CreateShareStateTopic creating __share_group_state
// (ShareStateTopicConfigs, Config.NumPartitions partitions).
type ShareStateOptions struct {
	NodeID                int32
	Partitions            Partitions
	Image                 func() *metadata.Image
	CreateShareStateTopic func(ctx context.Context) error
	Clock                 clock.Clock
	Logger                *slog.Logger
	Config                ShareStateConfig
}

// ShareCoordinator is the share coordinator of one node (Kafka's
// ShareCoordinatorService): the partitions of __share_group_state it
// leads, each a sharestate.Shard driven by one owner goroutine.
type ShareCoordinator struct {
	opts     ShareStateOptions
	cfg      ShareStateConfig
	shardCfg sharestate.Config
	logger   *slog.Logger
	set      *shardSet[*shareShard]

	// topicsMu guards what Refresh learnt of deleted topics (noteDeletedTopics).
	topicsMu sync.Mutex
	// knownTopics are the topic ids of the newest image seen (at
	// knownOffset); an id that leaves it was deleted (ids are never
	// reused).
	knownTopics map[metadata.UUID]bool
	knownOffset int64
	// deletedTopics are the topics deleted since this node started (at
	// most maxDeletedTopics), whose state every shard removes, one loaded
	// after the deletion included; deletedGen counts the deletions, and
	// recentDeleted holds the newest (at most maxRecentDeleted, oldest
	// first), so that a shard that removed those before is handed only
	// the new ones.
	deletedTopics map[[16]byte]bool
	deletedGen    uint64
	recentDeleted [][16]byte
}

// maxRecentDeleted bounds the deletions kept in order for live shards; a
// shard further behind (one just loaded) is handed every deleted topic.
const maxRecentDeleted = 1024

// maxDeletedTopics bounds the deleted topic ids a share coordinator
// remembers for its shards; beyond it an arbitrary one is forgotten,
// and a shard loaded later keeps that topic's state (unreadable: its
// topic id is unknown).
const maxDeletedTopics = 1 << 16

// The share coordinator's request and result types (sharestate's).
type (
	ShareStateKey     = sharestate.Key
	ShareStateBatch   = sharestate.Batch
	ShareReadResult   = sharestate.ReadResult
	ShareWriteRequest = sharestate.WriteRequest
	ShareStateSummary = sharestate.Summary
)

// StartShareState returns a running ShareCoordinator holding no shards
// until Refresh.
func StartShareState(opts ShareStateOptions) (*ShareCoordinator, error) {
	if opts.Partitions == nil || opts.Image == nil || opts.CreateShareStateTopic == nil {
		return nil, errors.New("coord: ShareStateOptions need Partitions, Image and CreateShareStateTopic")
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	cfg := opts.Config
	if cfg.NumPartitions <= 0 {
		cfg.NumPartitions = defaultShareStateNumPartitions
	}
	if cfg.UpdatesPerSnapshot <= 0 {
		cfg.UpdatesPerSnapshot = defaultShareUpdatesPerSnapshot
	}
	if cfg.MaxStates <= 0 {
		cfg.MaxStates = defaultMaxShareStates
	}
	if cfg.MaxBatches <= 0 {
		cfg.MaxBatches = defaultMaxShareStateBatches
	}
	c := &ShareCoordinator{opts: opts, cfg: cfg, logger: opts.Logger.With("component", "share-coord"),
		shardCfg: sharestate.Config{UpdatesPerSnapshot: cfg.UpdatesPerSnapshot, MaxBatches: cfg.MaxBatches,
			// Keys hash evenly over the shards: the node-wide bound, shared out.
			MaxStates: max(cfg.MaxStates/int(cfg.NumPartitions), 1)}}
	c.set = newShardSet[*shareShard](ShareStateTopic, opts.NodeID, opts.Image, opts.CreateShareStateTopic, opts.Clock, c.logger)
	c.set.newShard = c.startShardLocked
	c.deletedTopics = map[[16]byte]bool{}
	c.knownOffset = -1
	c.noteDeletedTopics()
	return c, nil
}

// Stop unloads every shard and waits for the owners. Idempotent.
func (c *ShareCoordinator) Stop() { c.set.stop() }

// Refresh loads the shards of the __share_group_state partitions this node
// leads and unloads the others, and has them remove the state of topics
// deleted since the last image; it does not block on loading.
func (c *ShareCoordinator) Refresh() {
	deleted := c.noteDeletedTopics()
	c.set.refresh()
	if deleted {
		for _, s := range c.set.all() {
			s.wakeUp()
		}
	}
}

// noteDeletedTopics compares the newest image's topics with those of the
// image seen before it, as Kafka's broker hands the share coordinator
// the topics a metadata delta deleted (onTopicsDeleted), and says whether
// any was. The first image is only noted: topics deleted while this node
// was down are not known to be deleted (an id missing from the image may
// also be one this node has not seen created yet).
func (c *ShareCoordinator) noteDeletedTopics() bool {
	img := c.opts.Image()
	if img == nil {
		return false
	}
	c.topicsMu.Lock()
	defer c.topicsMu.Unlock()
	if img.Offset() <= c.knownOffset {
		return false
	}
	first := c.knownTopics == nil
	if first {
		c.knownTopics = map[metadata.UUID]bool{}
	}
	c.knownOffset = img.Offset()
	deleted := false
	for id := range c.knownTopics {
		if _, ok := img.TopicByID(id); !ok {
			delete(c.knownTopics, id)
			c.rememberDeletedLocked(id)
			deleted = true
		}
	}
	if len(c.knownTopics) != img.NumTopics() {
		for _, t := range img.Topics() {
			c.knownTopics[t.ID] = true
		}
	}
	return deleted
}

func (c *ShareCoordinator) rememberDeletedLocked(id metadata.UUID) {
	for forget := range c.deletedTopics {
		if len(c.deletedTopics) < maxDeletedTopics {
			break
		}
		delete(c.deletedTopics, forget)
	}
	c.deletedTopics[[16]byte(id)] = true
	c.deletedGen++
	if len(c.recentDeleted) == maxRecentDeleted {
		c.recentDeleted = append(c.recentDeleted[:0], c.recentDeleted[maxRecentDeleted/2:]...)
	}
	c.recentDeleted = append(c.recentDeleted, [16]byte(id))
}

// topicDeleted says whether this node saw the topic deleted (among the
// maxDeletedTopics it remembers).
func (c *ShareCoordinator) topicDeleted(id [16]byte) bool {
	c.topicsMu.Lock()
	defer c.topicsMu.Unlock()
	return c.deletedTopics[id]
}

// deletedTopicsSince returns the topics deleted after the first gen
// deletions, and the count now, when there are any: only those if they
// are still in recentDeleted, else every deleted topic remembered.
func (c *ShareCoordinator) deletedTopicsSince(gen uint64) (map[[16]byte]bool, uint64, bool) {
	c.topicsMu.Lock()
	defer c.topicsMu.Unlock()
	if c.deletedGen == gen {
		return nil, gen, false
	}
	if behind := c.deletedGen - gen; behind <= uint64(len(c.recentDeleted)) {
		ids := make(map[[16]byte]bool, behind)
		for _, id := range c.recentDeleted[uint64(len(c.recentDeleted))-behind:] {
			ids[id] = true
		}
		return ids, c.deletedGen, true
	}
	return maps.Clone(c.deletedTopics), c.deletedGen, true
}

// WaitLoaded refreshes and waits until every shard has replayed.
func (c *ShareCoordinator) WaitLoaded(ctx context.Context) error { return c.set.waitLoaded(ctx) }

// ShareCoordinatorKey is Kafka's key of a share partition's state for
// FindCoordinator (key type 2): "group:topicId:partition", the topic id as
// Kafka prints a Uuid (URL-safe base64, no padding). Its hash places the
// state in __share_group_state as a group id places a group.
func ShareCoordinatorKey(k ShareStateKey) string {
	return k.GroupID + ":" + base64.RawURLEncoding.EncodeToString(k.TopicID[:]) + ":" + strconv.Itoa(int(k.Partition))
}

// FindCoordinator returns the node leading the partition of
// __share_group_state that holds key (a ShareCoordinatorKey); as the
// group coordinator's, it never blocks and creates the topic on first use.
func (c *ShareCoordinator) FindCoordinator(_ context.Context, key string) (int32, error) {
	if key == "" {
		return -1, ErrInvalidShareState
	}
	return c.set.findCoordinator(key)
}

// checkTopic refuses state for a topic id or partition the image lacks,
// as Kafka's share coordinator does.
func (c *ShareCoordinator) checkTopic(k ShareStateKey) error {
	img := c.opts.Image()
	if img == nil {
		return ErrUnknownShareTopic
	}
	t, ok := img.TopicByID(metadata.UUID(k.TopicID))
	if !ok || k.Partition < 0 || int(k.Partition) >= len(t.Partitions) {
		return fmt.Errorf("topic id %x partition %d: %w", k.TopicID, k.Partition, ErrUnknownShareTopic)
	}
	return nil
}

// ReadState returns a share partition's state for its leader in
// leaderEpoch (StartOffset -1: initialized without one). A newer leader
// epoch is made durable before the answer, fencing the previous leader's
// writes. Errors: ErrUninitializedShareState, ErrFencedLeaderEpoch,
// ErrUnknownShareTopic and the coordinator errors.
func (c *ShareCoordinator) ReadState(ctx context.Context, k ShareStateKey, leaderEpoch int32) (ShareReadResult, error) {
	if err := c.checkTopic(k); err != nil {
		return ShareReadResult{}, err
	}
	r, err := c.call(ctx, k, shareRequest{step: func(m *sharestate.Shard, _ int64, w sharestate.Waiter) { m.Read(w, k, leaderEpoch) }})
	res, _ := r.Value.(ShareReadResult)
	return res, err
}

// WriteState merges a share partition leader's state into the stored one
// and returns once it is durable (acks=all). Only InitializeState creates
// a share partition's state: a write of one without (never initialized,
// or deleted) is ErrUninitializedShareState, so a leader still holding a
// deleted group's state cannot write it back. Other errors:
// ErrFencedLeaderEpoch, ErrFencedStateEpoch, ErrInvalidShareState,
// ErrUnknownShareTopic and the coordinator errors.
func (c *ShareCoordinator) WriteState(ctx context.Context, k ShareStateKey, req ShareWriteRequest) error {
	if err := c.checkTopic(k); err != nil {
		return err
	}
	_, err := c.call(ctx, k, shareRequest{step: func(m *sharestate.Shard, nowMs int64, w sharestate.Waiter) { m.Write(nowMs, w, k, req) }})
	return err
}

// InitializeState starts a share partition's state at startOffset (-1:
// the leader picks it) in stateEpoch (above the stored one, else
// ErrFencedStateEpoch); it is the only way state comes to be. Beyond
// MaxStates it is ErrTooManyShareStates.
func (c *ShareCoordinator) InitializeState(ctx context.Context, k ShareStateKey, stateEpoch int32, startOffset int64) error {
	if err := c.checkTopic(k); err != nil {
		return err
	}
	_, err := c.call(ctx, k, shareRequest{step: func(m *sharestate.Shard, nowMs int64, w sharestate.Waiter) {
		m.Initialize(nowMs, w, k, stateEpoch, startOffset)
	}, creates: &k.TopicID})
	return err
}

// DeleteState deletes a share partition's state (tombstones, durable
// before the answer). Deleting state that is not there succeeds.
func (c *ShareCoordinator) DeleteState(ctx context.Context, k ShareStateKey) error {
	_, err := c.call(ctx, k, shareRequest{step: func(m *sharestate.Shard, _ int64, w sharestate.Waiter) { m.Delete(w, k) }})
	return err
}

// ReadStateSummary returns a share partition's epochs and start offset
// (StartOffset -1 when it has none, or no state at all, as Kafka answers
// a summary); it reads memory only.
func (c *ShareCoordinator) ReadStateSummary(ctx context.Context, k ShareStateKey) (ShareStateSummary, error) {
	if err := c.checkTopic(k); err != nil {
		return ShareStateSummary{}, err
	}
	r, err := c.call(ctx, k, shareRequest{read: func(m *sharestate.Shard) any {
		s, _ := m.ReadSummary(k)
		return s
	}})
	res, _ := r.Value.(ShareStateSummary)
	return res, err
}

// call hands a step to the key's shard and waits for its reply.
func (c *ShareCoordinator) call(ctx context.Context, k ShareStateKey, req shareRequest) (sharestate.Reply, error) {
	s, err := c.set.route(ShareCoordinatorKey(k))
	if err != nil {
		return sharestate.Reply{}, err
	}
	req.reply = make(chan sharestate.Reply, 1)
	if err := sendStep(ctx, s.base(), s.inbox, req); err != nil {
		return sharestate.Reply{}, err
	}
	return awaitReply(ctx, s.base(), req.reply, func(r sharestate.Reply) error { return r.Err })
}
