package coord

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/coord/group"
)

// Kafka's defaults for Config.
const (
	defaultOffsetsTopicNumPartitions       = 50
	defaultGroupMinSessionTimeoutMs        = 6000
	defaultGroupMaxSessionTimeoutMs        = 1800000
	defaultGroupInitialRebalanceDelayMs    = 3000
	defaultOffsetsRetentionMs              = 7 * 24 * 60 * 60 * 1000
	defaultOffsetsRetentionCheckIntervalMs = 600000
	defaultOffsetMetadataMaxBytes          = 4096

	// maxGroupRecordBytes keeps a group metadata record under the default
	// max.message.bytes (1048588) of __consumer_offsets.
	maxGroupRecordBytes = 1000000
	// createTopicTimeout bounds one CreateOffsetsTopic call.
	createTopicTimeout = 30 * time.Second
)

// Coordinator is the group coordinator of one node: its shards are the
// partitions of __consumer_offsets this node leads (shardSet).
type Coordinator struct {
	opts     Options
	cfg      Config
	groupCfg group.Config
	clock    clock.Clock
	logger   *slog.Logger
	set      *shardSet[*shard]
}

func (cfg *Config) setDefaults() {
	setDefault := func(v *int32, def int32) {
		if *v == 0 {
			*v = def
		}
	}
	setDefault(&cfg.OffsetsTopicNumPartitions, defaultOffsetsTopicNumPartitions)
	setDefault(&cfg.GroupMinSessionTimeoutMs, defaultGroupMinSessionTimeoutMs)
	setDefault(&cfg.GroupMaxSessionTimeoutMs, defaultGroupMaxSessionTimeoutMs)
	setDefault(&cfg.GroupInitialRebalanceDelayMs, defaultGroupInitialRebalanceDelayMs)
	setDefault(&cfg.GroupMaxSize, DefaultGroupMaxSize)
	setDefault(&cfg.OffsetMetadataMaxBytes, defaultOffsetMetadataMaxBytes)
	setDefault(&cfg.MaxMemberMetadataBytes, DefaultMaxMemberMetadataBytes)
	if cfg.OffsetsTopicReplicationFactor == 0 {
		cfg.OffsetsTopicReplicationFactor = 1
	}
	if cfg.GroupInitialRebalanceDelayMs < 0 {
		cfg.GroupInitialRebalanceDelayMs = 0
	}
	if cfg.OffsetsRetentionMs == 0 {
		cfg.OffsetsRetentionMs = defaultOffsetsRetentionMs
	}
	if cfg.OffsetsRetentionCheckIntervalMs == 0 {
		cfg.OffsetsRetentionCheckIntervalMs = defaultOffsetsRetentionCheckIntervalMs
	}
	if cfg.MaxGroups == 0 {
		cfg.MaxGroups = DefaultMaxGroups
	}
	cfg.setConsumerDefaults()
}

func start(opts Options) (*Coordinator, error) {
	if opts.Partitions == nil || opts.Image == nil || opts.CreateOffsetsTopic == nil {
		return nil, errors.New("coord: Options need Partitions, Image and CreateOffsetsTopic")
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	cfg := opts.Config
	cfg.setDefaults()
	if cfg.GroupMinSessionTimeoutMs > cfg.GroupMaxSessionTimeoutMs {
		return nil, fmt.Errorf("coord: group.min.session.timeout.ms %d above group.max.session.timeout.ms %d",
			cfg.GroupMinSessionTimeoutMs, cfg.GroupMaxSessionTimeoutMs)
	}
	c := &Coordinator{
		opts: opts, cfg: cfg, clock: opts.Clock, logger: opts.Logger.With("component", "coord"),
		groupCfg: group.Config{
			MinSessionTimeoutMs:     cfg.GroupMinSessionTimeoutMs,
			MaxSessionTimeoutMs:     cfg.GroupMaxSessionTimeoutMs,
			InitialRebalanceDelayMs: cfg.GroupInitialRebalanceDelayMs,
			MaxSize:                 cfg.GroupMaxSize,
			MaxMemberMetadataBytes:  cfg.MaxMemberMetadataBytes,
			OffsetMetadataMaxBytes:  cfg.OffsetMetadataMaxBytes,
			OffsetsRetentionMs:      cfg.OffsetsRetentionMs,
			// Groups hash evenly over the shards: the node-wide bound,
			// shared out.
			MaxGroups:      max(cfg.MaxGroups/int(cfg.OffsetsTopicNumPartitions), 1),
			MaxRecordBytes: maxGroupRecordBytes,

			ConsumerSessionTimeoutMs:    cfg.ConsumerSessionTimeoutMs,
			ConsumerHeartbeatIntervalMs: cfg.ConsumerHeartbeatIntervalMs,
			ConsumerMaxSize:             cfg.ConsumerMaxSize,
			ConsumerAssignors:           cfg.ConsumerAssignors,
			ConsumerMigrationPolicy:     cfg.ConsumerMigrationPolicy,
		},
	}
	c.set = newShardSet[*shard](OffsetsTopic, opts.NodeID, opts.Image, opts.CreateOffsetsTopic, opts.Clock, c.logger)
	c.set.newShard = c.startShardLocked
	return c, nil
}

func (c *Coordinator) stop() { c.set.stop() }

func (c *Coordinator) refresh() { c.set.refresh() }

func (c *Coordinator) waitLoaded(ctx context.Context) error {
	if err := c.set.waitLoaded(ctx); err != nil {
		return err
	}
	shards, groups := c.loadedSummary()
	c.logger.Info("loaded group coordinator shards", "shards", shards, "groups", groups)
	return nil
}

// loadedSummary counts the loaded shards and the groups they loaded.
func (c *Coordinator) loadedSummary() (shards int, groups int64) {
	for _, s := range c.set.all() {
		if s.loaded.Load() {
			shards++
			groups += s.loadedGroups.Load()
		}
	}
	return shards, groups
}

// route finds the loaded shard of groupID, or the coordinator error.
func (c *Coordinator) route(groupID string) (*shard, error) { return c.set.route(groupID) }

func (c *Coordinator) findCoordinator(_ context.Context, groupID string) (int32, error) {
	if groupID == "" {
		return -1, ErrInvalidGroupID
	}
	return c.set.findCoordinator(groupID)
}

// submit hands a step to groupID's shard; the reply arrives on the
// returned channel.
func (c *Coordinator) submit(ctx context.Context, groupID string, req request) (*shard, chan group.Reply, error) {
	s, err := c.route(groupID)
	if err != nil {
		return nil, nil, err
	}
	req.reply = make(chan group.Reply, 1)
	if err := sendStep(ctx, s.base(), s.inbox, req); err != nil {
		return nil, nil, err
	}
	return s, req.reply, nil
}

// wait waits for the reply of a submitted step.
func wait(ctx context.Context, s *shard, ch chan group.Reply) (group.Reply, error) {
	return awaitReply(ctx, s.base(), ch, func(r group.Reply) error { return r.Err })
}

// call submits a step and waits for its reply.
func (c *Coordinator) call(ctx context.Context, groupID string, req request) (group.Reply, error) {
	s, ch, err := c.submit(ctx, groupID, req)
	if err != nil {
		return group.Reply{}, err
	}
	return wait(ctx, s, ch)
}

// newMemberID is Kafka's shape: the client id (or group.instance.id for a
// static member), "-", a random UUID.
func newMemberID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	h := hex.EncodeToString(b[:])
	return prefix + "-" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (c *Coordinator) join(ctx context.Context, req JoinRequest) (JoinResult, error) {
	if req.GroupID == "" {
		return JoinResult{MemberID: req.MemberID}, ErrInvalidGroupID
	}
	prefix := req.ClientID
	if req.GroupInstanceID != "" {
		prefix = req.GroupInstanceID
	}
	id := newMemberID(prefix)
	img := c.opts.Image() // a classic member of a consumer group is assigned against it
	r, err := c.call(ctx, req.GroupID, request{step: func(m *group.Shard, nowMs int64, w group.Waiter) {
		m.Join(nowMs, w, req, id, img)
	}})
	res, _ := r.Value.(JoinResult)
	if res.MemberID == "" {
		res.MemberID = req.MemberID
	}
	return res, err
}

func (c *Coordinator) sync(ctx context.Context, req SyncRequest) (SyncResult, error) {
	img := c.opts.Image() // names the topics of a classic member's assignment in a consumer group
	r, err := c.call(ctx, req.GroupID, request{step: func(m *group.Shard, nowMs int64, w group.Waiter) {
		m.Sync(nowMs, w, req, img)
	}})
	res, _ := r.Value.(SyncResult)
	return res, err
}

func (c *Coordinator) heartbeat(ctx context.Context, req HeartbeatRequest) error {
	if req.GroupID == "" {
		return ErrInvalidGroupID
	}
	_, err := c.call(ctx, req.GroupID, request{step: func(m *group.Shard, nowMs int64, w group.Waiter) {
		m.Heartbeat(nowMs, w, req)
	}})
	return err
}

func (c *Coordinator) leave(ctx context.Context, req LeaveRequest) (LeaveResult, error) {
	if req.GroupID == "" {
		return LeaveResult{}, ErrInvalidGroupID
	}
	r, err := c.call(ctx, req.GroupID, request{step: func(m *group.Shard, nowMs int64, w group.Waiter) {
		m.Leave(nowMs, w, req)
	}})
	res, _ := r.Value.(LeaveResult)
	return res, err
}

func (c *Coordinator) commitOffsets(ctx context.Context, req CommitRequest) (CommitResult, error) {
	img := c.opts.Image()
	check := func(topic string, p int32) error {
		if img == nil {
			return ErrUnknownTopicOrPartition
		}
		if _, ok := img.Partition(topic, p); !ok {
			return ErrUnknownTopicOrPartition
		}
		return nil
	}
	r, err := c.call(ctx, req.GroupID, request{step: func(m *group.Shard, nowMs int64, w group.Waiter) {
		m.CommitOffsets(nowMs, w, req, check)
	}})
	res, _ := r.Value.(CommitResult)
	return res, err
}

func (c *Coordinator) fetchOffsets(ctx context.Context, req FetchRequest) (FetchResult, error) {
	r, err := c.call(ctx, req.GroupID, request{read: func(m *group.Shard) any {
		if err := m.ValidateOffsetFetch(req); err != nil {
			return err
		}
		return m.FetchOffsets(req)
	}})
	if e, ok := r.Value.(error); ok && err == nil {
		err = e
	}
	res, _ := r.Value.(FetchResult)
	return res, err
}

func (c *Coordinator) describeGroups(ctx context.Context, ids []string) []GroupDescription {
	out := make([]GroupDescription, len(ids))
	for i, r := range c.fanOut(ctx, ids, func(id string) request {
		return request{read: func(m *group.Shard) any { return m.DescribeGroup(id) }}
	}) {
		out[i] = GroupDescription{GroupID: ids[i], State: StateDead, Err: r.err}
		if v, ok := r.value.(GroupDescription); ok && r.err == nil {
			out[i] = v
		}
	}
	return out
}

// fanOutReply is one group's reply to fanOut.
type fanOutReply struct {
	value any
	err   error
}

// fanOut submits one request per group id, each to its group's shard, so
// shards work in parallel, then waits for every reply, in order.
func (c *Coordinator) fanOut(ctx context.Context, ids []string, req func(id string) request) []fanOutReply {
	type pending struct {
		s  *shard
		ch chan group.Reply
	}
	waits := make([]pending, len(ids))
	out := make([]fanOutReply, len(ids))
	for i, id := range ids {
		s, ch, err := c.submit(ctx, id, req(id))
		if err != nil {
			out[i].err = err
			continue
		}
		waits[i] = pending{s, ch}
	}
	for i, p := range waits {
		if p.s == nil {
			continue
		}
		r, err := wait(ctx, p.s, p.ch)
		out[i] = fanOutReply{value: r.Value, err: err}
	}
	return out
}

func (c *Coordinator) listGroups(ctx context.Context, states []string) ([]GroupListing, error) {
	shards := c.set.all()
	var out []GroupListing
	var loadErr error
	for _, s := range shards {
		if !s.loaded.Load() {
			loadErr = ErrCoordinatorLoadInProgress
			continue
		}
		ch := make(chan group.Reply, 1)
		select {
		case s.inbox <- request{read: func(m *group.Shard) any { return m.ListGroups(states) }, reply: ch}:
		case <-s.done:
			continue
		case <-ctx.Done():
			return out, ctx.Err()
		}
		r, err := wait(ctx, s, ch)
		if err != nil {
			if ctx.Err() != nil {
				return out, err
			}
			continue
		}
		l, _ := r.Value.([]GroupListing)
		out = append(out, l...)
	}
	return out, loadErr
}

func (c *Coordinator) deleteGroups(ctx context.Context, ids []string) []DeleteGroupResult {
	out := make([]DeleteGroupResult, len(ids))
	for i, r := range c.fanOut(ctx, ids, func(id string) request {
		return request{step: func(m *group.Shard, _ int64, w group.Waiter) { m.DeleteGroup(w, id) }}
	}) {
		out[i] = DeleteGroupResult{GroupID: ids[i], Err: r.err}
		if v, ok := r.value.(DeleteGroupResult); ok && r.err == nil {
			out[i] = v
		}
	}
	return out
}

func (c *Coordinator) deleteOffsets(ctx context.Context, req DeleteOffsetsRequest) (DeleteOffsetsResult, error) {
	if req.GroupID == "" {
		return DeleteOffsetsResult{}, ErrInvalidGroupID
	}
	r, err := c.call(ctx, req.GroupID, request{step: func(m *group.Shard, _ int64, w group.Waiter) { m.DeleteOffsets(w, req) }})
	res, _ := r.Value.(DeleteOffsetsResult)
	return res, err
}

// committedOffsets asks every loaded shard for its groups' offsets, one
// shard at a time; a shard that stops or does not answer before ctx ends
// is skipped, so a scrape is never stuck behind a loading shard.
func (c *Coordinator) committedOffsets(ctx context.Context) []GroupOffset {
	shards := c.set.all()
	var out []GroupOffset
	for _, s := range shards {
		if !s.loaded.Load() {
			continue
		}
		ch := make(chan group.Reply, 1)
		read := func(m *group.Shard) any {
			var offsets []GroupOffset
			m.EachOffset(func(id string, tp group.TopicPartition, offset int64) {
				offsets = append(offsets, GroupOffset{GroupID: id, Topic: tp.Topic, Partition: tp.Partition, Offset: offset})
			})
			return offsets
		}
		select {
		case s.inbox <- request{read: read, reply: ch}:
		case <-s.done:
			continue
		case <-ctx.Done():
			return out
		}
		r, err := wait(ctx, s, ch)
		if err != nil {
			if ctx.Err() != nil {
				return out
			}
			continue
		}
		offsets, _ := r.Value.([]GroupOffset)
		out = append(out, offsets...)
	}
	return out
}
