// Package share runs share groups (KIP-932) on a broker: the groups'
// membership (sharegroup.Group), the share partitions this node leads
// (sharegroup.Partition) with their acquisition locks, the share sessions
// of ShareFetch, and each share partition's durable state through a
// Persister: the share coordinator on __share_group_state, reached with
// ReadShareGroupState and WriteShareGroupState as Kafka's share partition
// leaders do (Kafka's Persister).
//
// Durability: a share partition's state is made only by its group's
// coordinator, when a heartbeat first assigns the partition
// (initializeAssigned), never by a leader, so a leader still serving a
// deleted group cannot bring its state back. A share partition reads its
// state from the persister the first time it is used, and again when its
// leader epoch changed (the read records the new epoch, fencing the
// previous leader's writes), when a write of it was fenced or refused for
// want of state, and after its group's last share session here
// ended or its offsets were altered or deleted (offsets.go); it writes its
// whole state after each acknowledgement round, before the
// acknowledgement is answered. The state is replicated with
// __share_group_state, so a new partition leader resumes where the old one
// was. The group's membership, and the share partitions it was ever
// assigned, are in its __consumer_offsets partition (membership.go), on
// the broker leading it, its coordinator.
//
// Locking: Coordinator.mu guards the groups, the sessions and the map of
// share partitions; each share partition has its own mutex, held across
// its state read, its log read, its acquisitions and acknowledgements and
// its state write, so fetches and state writes of different partitions run
// in parallel and a partition's writes are sent in order. Order:
// Coordinator.mu before a partition's mu, never the reverse; the persister
// is never called with Coordinator.mu held, and a member's leave does not
// wait for a partition's mu with it held (memberGoneLocked).
package share

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/coord/sharegroup"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/partition"
)

// The driver's domain errors; internal/api/errcode.go maps each.
var (
	// ErrShareSessionNotFound: a ShareFetch or ShareAcknowledge with a
	// non-zero session epoch and no session (SHARE_SESSION_NOT_FOUND).
	ErrShareSessionNotFound = errors.New("share session not found")
	// ErrInvalidShareSessionEpoch: the session epoch is not the next one
	// (INVALID_SHARE_SESSION_EPOCH).
	ErrInvalidShareSessionEpoch = errors.New("invalid share session epoch")
	// ErrShareSessionLimitReached: max share sessions on this node
	// (SHARE_SESSION_LIMIT_REACHED).
	ErrShareSessionLimitReached = errors.New("share session limit reached")
	// ErrInvalidRequest: a malformed share request, e.g. acknowledgement
	// types that do not match their range (INVALID_REQUEST).
	ErrInvalidRequest = errors.New("invalid share request")
	// ErrNonEmptyGroup: DeleteGroups of a share group with members
	// (NON_EMPTY_GROUP).
	ErrNonEmptyGroup = errors.New("share group is not empty")
	// ErrStateUnavailable: the share partition's state could not be read
	// or written through the share coordinator (COORDINATOR_NOT_AVAILABLE;
	// retriable). A fenced leader epoch is partition.ErrNotLeader instead.
	ErrStateUnavailable = errors.New("share partition state unavailable")
	// ErrStateUninitialized: the share coordinator has no state for the
	// share partition: its group coordinator has not initialized it yet
	// (or could not), or the group was deleted. A leader that met it on a
	// write drops its copy. Retriable, as ErrStateUnavailable, which it
	// wraps: the next heartbeat of a member assigned the partition
	// initializes it.
	ErrStateUninitialized = fmt.Errorf("share partition state not initialized: %w", ErrStateUnavailable)
)

// Persister keeps share partitions' state, Kafka's Persister: the node's
// sends ReadShareGroupState and WriteShareGroupState to the share
// coordinator of each share partition.
//
// Only InitializeState creates a share partition's state, as in Kafka 4.1:
// ReadState and WriteState of a share partition without state (never
// initialized, or deleted) are ErrStateUninitialized, so a leader that
// still holds a deleted group's copy cannot write it back.
type Persister interface {
	// ReadState returns the state of a share partition for its leader in
	// leaderEpoch; found is false when it was initialized without a start
	// offset (st then carries its state epoch).
	ReadState(ctx context.Context, groupID, topic string, partition, leaderEpoch int32) (st sharegroup.PartitionState, found bool, err error)
	// WriteState stores it, durably, before it returns.
	WriteState(ctx context.Context, groupID, topic string, partition, leaderEpoch int32, st sharegroup.PartitionState) error
	// DeleteState deletes it (a deleted share group).
	DeleteState(ctx context.Context, groupID, topic string, partition int32) error
	// ReadStateSummary returns its epochs and start offset without
	// recording a leader epoch (DescribeShareGroupOffsets); found is false
	// when there is none.
	ReadStateSummary(ctx context.Context, groupID, topic string, partition int32) (sum StateSummary, found bool, err error)
	// InitializeState starts it anew at startOffset (-1: the leader picks
	// it) in stateEpoch, which must be above the stored one, else
	// partition.ErrNotLeader (FENCED_STATE_EPOCH): a heartbeat that
	// assigns the partition, and AlterShareGroupOffsets.
	InitializeState(ctx context.Context, groupID, topic string, partition, stateEpoch int32, startOffset int64) error
}

// StateSummary is what ReadShareGroupStateSummary tells of a share
// partition's stored state.
type StateSummary struct {
	StateEpoch  int32
	LeaderEpoch int32
	StartOffset int64
}

// persistTimeout bounds one state read or write, retries included.
const persistTimeout = 15 * time.Second

// Config is the share-group configuration.
type Config struct {
	Group     sharegroup.GroupConfig
	Partition sharegroup.PartitionConfig
	// AutoOffsetResetEarliest starts a new share partition at the log start
	// offset instead of the high watermark (share.auto.offset.reset).
	AutoOffsetResetEarliest bool
	// MaxSessions bounds the share sessions of this node
	// (group.share.max.share.sessions).
	MaxSessions int
}

// Partitions is what the coordinator needs of the partition manager.
type Partitions interface {
	Partition(topic string, partition int32) (*partition.Partition, error)
}

// Options build a Coordinator.
type Options struct {
	Config    Config
	Persister Persister
	// Image is the newest metadata image: where __consumer_offsets is
	// led (share groups live there) and the topics' ids.
	Image      func() *metadata.Image
	Clock      clock.Clock
	Partitions Partitions
	Logger     *slog.Logger
}

// TopicPartition names a partition of a share session.
type TopicPartition struct {
	Topic     string
	Partition int32
}

type partitionKey struct {
	group string
	TopicPartition
}

type sessionKey struct{ group, member string }

// session is one member's share session (KIP-932's share fetch session):
// the partitions it fetches from and the epoch its next request must
// carry. It ends with the client connection that opened it (stopWatch
// cancels that watch when it ends first).
type session struct {
	nextEpoch  int32
	partitions map[TopicPartition]bool
	stopWatch  func() bool
}

// Coordinator is the share-group state of this node.
type Coordinator struct {
	opts Options
	// ctx bounds the work a closed connection leaves behind (releasing
	// its member's records); Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	mu         sync.Mutex
	groups     map[string]*sharegroup.Group
	partitions map[partitionKey]*sharePartition
	sessions   map[sessionKey]*session
	// groupTopics are the topics each group's members subscribed to here;
	// DeleteGroup deletes their share partitions' state besides those the
	// group's record says it was assigned (a topic subscribed while it had
	// no partitions, say).
	groupTopics map[string]map[string]bool
	// loadedEpochs is the leader epoch each __consumer_offsets partition's
	// share groups were loaded in (membership.go).
	loadedEpochs map[int32]int32
	// released are, by group, the share partitions a gone member's
	// release is queued in (sharePartition.gone), whose state
	// writeGroupReleased writes once c.mu is let go.
	released map[string][]*sharePartition
	// assigned is, by group, what this node as the group's coordinator
	// knows of its assigned share partitions' state (initializeAssigned).
	assigned map[string]*assignedState
	// groupIDs is the ids of groups and loadedEpochs as IsShareGroup
	// reads them without c.mu (membership.go).
	groupIDs atomic.Pointer[groupIDs]
	// image is the newest metadata image this coordinator has seen
	// (newestImageLocked): whatever counts a topic's partitions under c.mu
	// counts them in it, never in an older one.
	image *metadata.Image
}

// New builds a Coordinator with no groups; share partitions read their
// state from the persister on first use.
func New(opts Options) *Coordinator {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Coordinator{opts: opts, ctx: ctx, cancel: cancel, groups: map[string]*sharegroup.Group{}, groupTopics: map[string]map[string]bool{}, loadedEpochs: map[int32]int32{},
		partitions: map[partitionKey]*sharePartition{}, sessions: map[sessionKey]*session{}, released: map[string][]*sharePartition{},
		assigned: map[string]*assignedState{}}
}

func (c *Coordinator) nowMs() int64 { return clock.UnixMs(c.opts.Clock) }

// Close stops the state writes that closed connections started; the node
// calls it once the client listener is closed, before the partitions
// close.
func (c *Coordinator) Close() { c.cancel() }

// LockDurationMs is the acquisition lock duration of a group's share
// partitions, which ShareFetch and ShareAcknowledge report.
func (c *Coordinator) LockDurationMs(groupID string) int64 {
	_, lockMs := c.groupSettings(groupID)
	return lockMs
}

// groupSettings are the group's share.auto.offset.reset (earliest or not)
// and share.record.lock.duration.ms: its group configs in the metadata
// image, else the broker's (config.GroupOverride: a value the key does
// not accept is skipped, as DescribeConfigs skips it).
func (c *Coordinator) groupSettings(groupID string) (earliest bool, lockMs int64) {
	earliest, lockMs = c.opts.Config.AutoOffsetResetEarliest, c.opts.Config.Partition.LockDurationMs
	if c.opts.Image == nil {
		return earliest, lockMs
	}
	img := c.opts.Image()
	if img == nil {
		return earliest, lockMs
	}
	overrides := img.Configs(metadata.ConfigResourceGroup, groupID)
	if v, ok := config.GroupOverride(overrides, config.ShareAutoOffsetReset); ok {
		earliest = v == config.ShareAutoOffsetResetEarliest
	}
	if v, ok := config.GroupOverride(overrides, config.ShareRecordLockDurationMs); ok {
		lockMs, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	}
	return earliest, lockMs
}

// newestImageLocked returns the newest metadata image this coordinator has
// seen (c.mu held): img (the one a request read, nil for none), the live
// one (opts.Image) and those earlier calls brought. Requests read their
// image before they take c.mu and take it in any order, so one may bring
// an image older than one acted on already; counting a topic's partitions
// in it would miss those a CreatePartitions added since: a heartbeat would
// take them from their members, and a deletion (DeleteGroups,
// DeleteShareGroupOffsets) would leave their state behind for a later
// group of the same id to start from.
func (c *Coordinator) newestImageLocked(img *metadata.Image) *metadata.Image {
	c.image = metadata.Newer(metadata.Newer(c.image, img), c.liveImage())
	if c.image == nil {
		return metadata.EmptyImage()
	}
	return c.image
}

func (c *Coordinator) liveImage() *metadata.Image {
	if c.opts.Image == nil {
		return nil
	}
	return c.opts.Image()
}

// Heartbeat serves ShareGroupHeartbeat on the group's coordinator (else
// coord.ErrNotCoordinator). Subscribed topics' partitions are counted in
// the newest image seen (newestImageLocked, img being the one the request
// read): assigning from an older image would take partitions added since
// from their members, to give them back at the next heartbeat. What the
// heartbeat changed is in __consumer_offsets before it is answered.
//
// The member's assigned share partitions are initialized with the share
// coordinator (initializeAssigned) before it is answered, once they are
// recorded in the group's ShareGroupStatePartitionMetadata.
func (c *Coordinator) Heartbeat(groupID string, hb sharegroup.Heartbeat, img *metadata.Image) (sharegroup.HeartbeatResult, error) {
	defer c.writeGroupReleased(groupID)
	var uninitialized []assignedPartition
	var assigned *assignedState
	defer func() { c.initializeAssigned(groupID, assigned, uninitialized) }() // after c.mu is let go
	c.mu.Lock()
	defer c.mu.Unlock()
	topics := topicsOf(c.newestImageLocked(img))
	part, err := c.groupPartitionLocked(groupID)
	if err != nil {
		return sharegroup.HeartbeatResult{}, err
	}
	res, err := c.heartbeatLocked(groupID, hb, topics)
	if g := c.groups[groupID]; g != nil {
		if werr := c.writeGroupLocked(part, g.TakeRecords(topicIDOf(c.opts.Image()))); werr != nil {
			return sharegroup.HeartbeatResult{}, werr
		}
		if err == nil && !res.Left {
			assigned, uninitialized = c.uninitializedAssignmentLocked(groupID, g, hb.MemberID)
		} else if a := c.assigned[groupID]; res.Left && a != nil {
			delete(a.doneAt, hb.MemberID)
		}
	}
	return res, err
}

// assignedState is the share partitions of a group that its coordinator
// (this node) made sure have state with the share coordinator. It holds
// for the group as loaded: a group loaded again (this node led its
// __consumer_offsets partition again), or a new group of a deleted one's
// id, is another *sharegroup.Group, and its partitions are checked anew.
type assignedState struct {
	group *sharegroup.Group
	// initialized holds the topic id each share partition was initialized
	// for: a topic deleted and created again under its name is another
	// topic, whose share partitions have no state yet.
	initialized map[TopicPartition][16]byte
	// doneAt is, by member, the group epoch at which every partition of
	// its assignment was initialized: an assignment changes only with the
	// group epoch, so a steady heartbeat looks at none of them.
	doneAt map[string]int32
}

// assignedPartition is a share partition to initialize, with the id its
// topic had when it was assigned.
type assignedPartition struct {
	TopicPartition
	topicID [16]byte
}

// uninitializedAssignmentLocked is the share partitions assigned to
// memberID that this node has not yet made sure have state (c.mu held),
// their topics' ids read in the newest image seen.
func (c *Coordinator) uninitializedAssignmentLocked(groupID string, g *sharegroup.Group, memberID string) (*assignedState, []assignedPartition) {
	m := g.Member(memberID)
	if m == nil {
		return nil, nil
	}
	a := c.assigned[groupID]
	if a == nil || a.group != g {
		a = &assignedState{group: g, initialized: map[TopicPartition][16]byte{}, doneAt: map[string]int32{}}
		c.assigned[groupID] = a
	}
	if epoch, ok := a.doneAt[memberID]; ok && epoch == g.Epoch {
		return a, nil
	}
	topicID := topicIDOf(c.newestImageLocked(nil))
	var out []assignedPartition
	skipped := false
	for topic, ps := range m.Assignment {
		id, ok := topicID(topic)
		if !ok {
			skipped = true // deleted since: the next assignment drops it
			continue
		}
		for _, p := range ps {
			if tp := (TopicPartition{topic, p}); a.initialized[tp] != id {
				out = append(out, assignedPartition{tp, id})
			}
		}
	}
	if len(out) == 0 && !skipped {
		a.doneAt[memberID] = g.Epoch
	}
	return a, out
}

// initializeTimeout bounds the initialization of a heartbeat's newly
// assigned share partitions, which the heartbeat waits for: one that is
// not done by then is tried again at the member's next heartbeat.
const initializeTimeout = 5 * time.Second

// initializeAssigned makes sure the share coordinator has state for each
// of a member's newly assigned share partitions, as Kafka's group
// coordinator initializes them (InitializeShareGroupState) when a
// heartbeat first assigns them, in state epoch 0 with no start offset
// (the leader picks it: share.auto.offset.reset). Only this creates state:
// a leader finding none answers ErrStateUninitialized and never makes it,
// so a leader that still serves a deleted group cannot bring it back.
// State already there (read by a leader, or altered) is kept: the share
// coordinator refuses to initialize it again in state epoch 0
// (FENCED_STATE_EPOCH), which here means done. A failure is logged and
// tried again at the member's next heartbeat; meanwhile the leader
// answers the partition's fetches with a retriable error.
func (c *Coordinator) initializeAssigned(groupID string, a *assignedState, tps []assignedPartition) {
	if len(tps) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, initializeTimeout)
	defer cancel()
	done := make([]bool, len(tps))
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxConcurrentAcknowledgements)
	for i, tp := range tps {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			err := c.opts.Persister.InitializeState(ctx, groupID, tp.Topic, tp.Partition, 0, -1)
			done[i] = err == nil || errors.Is(err, partition.ErrNotLeader)
			if !done[i] {
				c.opts.Logger.Warn("share partition state not initialized", "group", groupID, "topic", tp.Topic, "partition", tp.Partition, "err", err)
			}
		})
	}
	wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.assigned[groupID] != a {
		return // deleted or loaded again meanwhile: checked anew
	}
	for i, tp := range tps {
		if done[i] {
			a.initialized[tp.TopicPartition] = tp.topicID
		}
	}
}

func (c *Coordinator) heartbeatLocked(groupID string, hb sharegroup.Heartbeat, topics sharegroup.Topics) (sharegroup.HeartbeatResult, error) {
	now := c.nowMs()
	g := c.groups[groupID]
	if g == nil {
		if hb.MemberEpoch != 0 {
			return sharegroup.HeartbeatResult{}, fmt.Errorf("share group %q does not exist: %w", groupID, sharegroup.ErrUnknownMemberID)
		}
		g = sharegroup.NewGroup(groupID)
		c.groups[groupID] = g
		c.publishGroupIDsLocked()
	}
	for _, gone := range g.Expire(c.opts.Config.Group, topics, now) {
		c.memberGoneLocked(groupID, gone)
	}
	res, err := g.Heartbeat(c.opts.Config.Group, hb, topics, now)
	if err == nil && res.Left {
		c.memberGoneLocked(groupID, hb.MemberID)
	}
	if err == nil && len(hb.SubscribedTopicNames) > 0 {
		topics := c.groupTopics[groupID]
		if topics == nil {
			topics = map[string]bool{}
			c.groupTopics[groupID] = topics
		}
		for _, t := range hb.SubscribedTopicNames {
			topics[t] = true
		}
	}
	return res, err
}

// memberGoneLocked releases what a member that left (or timed out) held,
// so others get its records now rather than at lock expiry. A share
// partition's lock is held across its state reads and writes (up to
// persistTimeout), and c.mu, which every share request of the node
// takes, must not wait for it: the release is queued in each of the
// group's share partitions, and whoever takes a partition's lock next
// does it first (releaseGoneLocked). writeGroupReleased, which the
// caller runs once it let go of c.mu and before it answers, takes each
// lock and writes the state a release changed: a release that archives a
// record at the delivery limit is then not lost in a failover (the stored
// state has an acquired record as available, which would deliver it once
// more).
func (c *Coordinator) memberGoneLocked(groupID, memberID string) {
	if s := c.sessions[sessionKey{groupID, memberID}]; s != nil && s.stopWatch != nil {
		s.stopWatch()
	}
	delete(c.sessions, sessionKey{groupID, memberID})
	for key, sp := range c.partitions {
		if key.group == groupID {
			sp.goneMu.Lock()
			sp.gone = append(sp.gone, memberID)
			sp.goneMu.Unlock()
			c.released[groupID] = append(c.released[groupID], sp)
		}
	}
}

// releaseGoneLocked releases what the members that left since sp.mu was
// last taken hold (sp.mu held). A partition not read yet has nothing
// acquired: its stored state has the records as available.
func (sp *sharePartition) releaseGoneLocked() {
	sp.goneMu.Lock()
	gone := sp.gone
	sp.gone = nil
	sp.goneMu.Unlock()
	for _, memberID := range gone {
		if sp.p != nil && sp.p.ReleaseMember(memberID) > 0 {
			sp.releasedUnwritten = true
		}
	}
}

// writeGroupReleased writes the state of groupID's share partitions whose
// records a gone member's release changed (c.mu not held), waiting for
// their locks; another group's releases are left to that group's calls.
// A failed write is logged: the stored state then delivers the records
// once more.
func (c *Coordinator) writeGroupReleased(groupID string) {
	c.mu.Lock()
	released := c.released[groupID]
	delete(c.released, groupID)
	c.mu.Unlock()
	c.writeReleasedOf(released)
}

// writeReleased is writeGroupReleased for every group.
func (c *Coordinator) writeReleased() {
	c.mu.Lock()
	var released []*sharePartition
	for _, sps := range c.released {
		released = append(released, sps...)
	}
	clear(c.released)
	c.mu.Unlock()
	c.writeReleasedOf(released)
}

func (c *Coordinator) writeReleasedOf(released []*sharePartition) {
	if len(released) == 0 {
		return
	}
	written := map[*sharePartition]bool{}
	for _, sp := range released {
		if written[sp] {
			continue
		}
		written[sp] = true
		sp.mu.Lock()
		sp.releaseGoneLocked()
		if sp.releasedUnwritten && sp.p != nil && !sp.deleted {
			sp.releasedUnwritten = false
			_ = c.persistLocked(c.ctx, sp)
		}
		sp.mu.Unlock()
	}
}

// GroupDescription is a share group as ShareGroupDescribe shows it.
type GroupDescription struct {
	GroupID string
	State   string
	Epoch   int32
	Members []sharegroup.Member
}

// Describe returns a copy of a group, and false when there is none. Members
// whose session timed out are removed first, so a group whose members all
// died is not shown Stable until someone heartbeats.
func (c *Coordinator) Describe(groupID string, img *metadata.Image) (GroupDescription, bool) {
	defer c.writeGroupReleased(groupID)
	c.mu.Lock()
	defer c.mu.Unlock()
	topics := topicsOf(c.newestImageLocked(img))
	if _, err := c.groupPartitionLocked(groupID); err != nil {
		return GroupDescription{}, false
	}
	g := c.groups[groupID]
	if g == nil {
		return GroupDescription{}, false
	}
	for _, gone := range g.Expire(c.opts.Config.Group, topics, c.nowMs()) {
		c.memberGoneLocked(groupID, gone)
	}
	d := GroupDescription{GroupID: groupID, State: g.State(), Epoch: g.Epoch}
	for _, m := range g.Members() {
		d.Members = append(d.Members, *m)
	}
	return d, true
}

// Groups lists the share groups and their states, sorted by id.
func (c *Coordinator) Groups() []GroupDescription {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loadAllLocked()
	out := make([]GroupDescription, 0, len(c.groups))
	for id, g := range c.groups {
		out = append(out, GroupDescription{GroupID: id, State: g.State(), Epoch: g.Epoch})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GroupID < out[j].GroupID })
	return out
}

// IsShareGroup says whether groupID is a share group here. Once the
// group's partition is loaded it does not wait for c.mu (membership.go).
func (c *Coordinator) IsShareGroup(groupID string) bool {
	if is, known := c.knownShareGroup(groupID); known {
		return is
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.groupPartitionLocked(groupID); err != nil {
		return false
	}
	return c.groups[groupID] != nil
}

// sharePartition is one share partition on its leader, with the mutex
// that orders its changes and its state writes. p is nil until its state
// is read.
type sharePartition struct {
	// gone are the members whose release memberGoneLocked queued, for
	// whoever takes mu next (releaseGoneLocked); goneMu guards it alone
	// and is held for nothing else. releasedUnwritten (under mu) is set by
	// a release that changed p, until writeReleasedOf writes it.
	goneMu            sync.Mutex
	gone              []string
	releasedUnwritten bool

	key         partitionKey
	mu          sync.Mutex
	p           *sharegroup.Partition
	leaderEpoch int32 // the partition's leader epoch p was read in
	// hosted is the partition p was read for: a topic deleted and created
	// again under its name is hosted anew, and its share partition is
	// another, whose state is read afresh.
	hosted  *partition.Partition
	deleted bool // its group was deleted, or its state altered (offsets.go): write no state for it
}

// lockSharePartition returns the share partition with its mu held,
// reading its state through the persister the first time and whenever the
// partition's leader epoch moved since (leadership went elsewhere and
// came back: another leader may have written). A share partition
// initialized without a start offset starts at the log start or the high
// watermark (share.auto.offset.reset), and that start is written at once,
// so a failover before the first acknowledgement does not move it. One
// without state is ErrStateUninitialized: only its group coordinator
// creates state (initializeAssigned), never a leader, which might be
// serving a group deleted meanwhile.
func (c *Coordinator) lockSharePartition(ctx context.Context, key partitionKey, part *partition.Partition) (*sharePartition, error) {
	for {
		c.mu.Lock()
		sp := c.partitions[key]
		if sp == nil {
			sp = &sharePartition{key: key}
			c.partitions[key] = sp
		}
		c.mu.Unlock()
		sp.mu.Lock()
		if sp.deleted {
			sp.mu.Unlock()
			continue // its group was deleted meanwhile: look again
		}
		epoch := part.LeaderEpoch()
		if sp.p == nil || sp.leaderEpoch != epoch || sp.hosted != part {
			if err := c.loadLocked(ctx, sp, part, epoch); err != nil {
				sp.mu.Unlock()
				return nil, err
			}
		}
		// The group's lock duration may have changed since the load.
		_, lockMs := c.groupSettings(key.group)
		sp.p.SetLockDurationMs(lockMs)
		sp.releaseGoneLocked() // before anything of a member that left
		return sp, nil
	}
}

func (c *Coordinator) loadLocked(ctx context.Context, sp *sharePartition, part *partition.Partition, epoch int32) error {
	key := sp.key
	ctx, cancel := context.WithTimeout(ctx, persistTimeout)
	defer cancel()
	st, found, err := c.opts.Persister.ReadState(ctx, key.group, key.Topic, key.Partition, epoch)
	if err != nil {
		sp.p = nil
		return fmt.Errorf("share partition %s-%d of group %q: reading state: %w", key.Topic, key.Partition, key.group, err)
	}
	earliest, lockMs := c.groupSettings(key.group)
	cfg := c.opts.Config.Partition
	cfg.LockDurationMs = lockMs
	sp.leaderEpoch, sp.hosted = epoch, part
	if found {
		sp.p = sharegroup.LoadPartition(cfg, st)
		return nil
	}
	start := part.Offsets().HighWatermark
	if earliest {
		start = part.Offsets().LogStartOffset
	}
	// Started from the state epoch read (that of a deleted share group
	// offset, or 0): a leader still holding the old state writes in an
	// older epoch and is fenced.
	sp.p = sharegroup.LoadPartition(cfg, sharegroup.PartitionState{StateEpoch: st.StateEpoch, StartOffset: start})
	if err := c.persistLocked(ctx, sp); err != nil {
		sp.p = nil
		return err
	}
	return nil
}

// persistLocked writes a share partition's state (sp.mu held); a failure
// is logged and returned: the acknowledgement that caused it is not
// confirmed.
func (c *Coordinator) persistLocked(ctx context.Context, sp *sharePartition) error {
	if sp.deleted {
		return nil
	}
	key := sp.key
	if part, err := c.opts.Partitions.Partition(key.Topic, key.Partition); err != nil || part != sp.hosted {
		// Not the partition hosted here under that name any more: its
		// topic was deleted (and maybe created again), or leadership
		// moved. The persister names the topic, so the write would land
		// on whatever has the name now; the copy is stale, dropped as a
		// fenced one is (a release loses nothing durable: the records
		// are available again once read afresh).
		sp.p = nil
		return fmt.Errorf("share partition %s-%d of group %q: its copy is of a partition no longer hosted here: %w", key.Topic, key.Partition, key.group, partition.ErrNotLeader)
	}
	ctx, cancel := context.WithTimeout(ctx, persistTimeout)
	defer cancel()
	err := c.opts.Persister.WriteState(ctx, key.group, key.Topic, key.Partition, sp.leaderEpoch, sp.p.State())
	if err != nil {
		c.opts.Logger.Warn("share partition state not written", "group", key.group, "topic", key.Topic, "partition", key.Partition, "err", err)
		if errors.Is(err, partition.ErrNotLeader) || errors.Is(err, ErrStateUninitialized) {
			// A fenced leader epoch or state epoch: another leader wrote, or
			// AlterShareGroupOffsets started the state anew. No state at
			// all: the group was deleted (its state with it) while this
			// copy was held. Either way what is cached here is stale, so it
			// is dropped, not written again, and read again at next use
			// (Kafka removes a fenced share partition from its cache).
			sp.p = nil
		}
		return fmt.Errorf("share partition %s-%d of group %q: writing state: %w", key.Topic, key.Partition, key.group, err)
	}
	return nil
}

// partitionsOf returns the share partitions of a group (all groups for "").
func (c *Coordinator) partitionsOf(groupID string) []*sharePartition {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*sharePartition
	for key, sp := range c.partitions {
		if groupID == "" || key.group == groupID {
			out = append(out, sp)
		}
	}
	return out
}

// waitFor sleeps until d passes, ctx ends or wake is signalled.
func waitFor(ctx context.Context, clk clock.Clock, d time.Duration, wake <-chan struct{}) {
	if d <= 0 {
		return
	}
	t := clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C():
	case <-wake:
	}
}

// DeleteGroup deletes an empty share group with the state of its share
// partitions, as Kafka's DeleteGroups does, in three steps: it records
// (ShareGroupStatePartitionMetadata) every topic the group was ever
// assigned, and those its members subscribed to here, as deleting; it
// deletes their partitions' state, wherever their share coordinator is;
// and only then it writes the group's tombstones. A deletion that fails
// half-way leaves the group, empty, with its deleting topics recorded, so
// the next DeleteGroups deletes them all, even on another coordinator.
// found is false when there is no such share group here.
func (c *Coordinator) DeleteGroup(ctx context.Context, groupID string, img *metadata.Image) (found bool, err error) {
	defer c.writeGroupReleased(groupID) // none is written: its partitions are deleted
	deleting, dropped, found, err := c.beginDelete(groupID, img)
	if !found || err != nil {
		return found, err
	}
	// A state write in progress ends before the state is deleted, and
	// none starts after: waited for here, not under c.mu.
	for _, sp := range dropped {
		sp.mu.Lock()
		sp.deleted = true
		sp.mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(ctx, persistTimeout)
	defer cancel()
	var errs []error
	for _, topic := range slices.Sorted(maps.Keys(deleting)) {
		for p := range deleting[topic] {
			if err := c.opts.Persister.DeleteState(ctx, groupID, topic, p); err != nil {
				errs = append(errs, fmt.Errorf("share group %q: state of %s-%d: %w", groupID, topic, p, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return true, err
	}
	return true, c.finishDelete(groupID)
}

// beginDelete checks the group is empty, records its topics as deleting
// and drops its share partitions and sessions; it returns each deleting
// topic that exists with its partition count (every partition: a topic
// only gains partitions, so this covers the ones recorded), and the share
// partitions dropped, for the caller to fence.
func (c *Coordinator) beginDelete(groupID string, requestImage *metadata.Image) (deleting map[string]int32, dropped []*sharePartition, found bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	img := c.newestImageLocked(requestImage)
	topics := topicsOf(img)
	part, err := c.groupPartitionLocked(groupID)
	if err != nil {
		return nil, nil, false, nil
	}
	g := c.groups[groupID]
	if g == nil {
		return nil, nil, false, nil
	}
	for _, gone := range g.Expire(c.opts.Config.Group, topics, c.nowMs()) {
		c.memberGoneLocked(groupID, gone)
	}
	if n := len(g.Members()); n > 0 {
		return nil, nil, true, fmt.Errorf("share group %q has %d members: %w", groupID, n, ErrNonEmptyGroup)
	}
	topicID := topicIDOf(img)
	subscribed := map[[16]byte]string{}
	for topic := range c.groupTopics[groupID] {
		if id, ok := topicID(topic); ok {
			subscribed[id] = topic
		}
	}
	if r, ok := g.BeginDelete(subscribed); ok {
		if err := c.writeGroupLocked(part, []sharegroup.Record{r}); err != nil {
			return nil, nil, true, err
		}
	}
	// Its state is about to be deleted: a member assigned a partition
	// before the deletion is done (it fails half-way, say) has it
	// initialized again.
	delete(c.assigned, groupID)
	deleting = map[string]int32{}
	for id, recorded := range g.DeletingTopics() {
		t, ok := img.TopicByID(metadata.UUID(id))
		if !ok {
			// Deleted: its share coordinator deleted the state with it.
			c.opts.Logger.Debug("share state went with its deleted topic", "group", groupID, "topic", recorded)
			continue
		}
		deleting[t.Name] = int32(len(t.Partitions))
	}
	return deleting, c.forgetPartitionsLocked(groupID), true, nil
}

// forgetPartitionsLocked drops a deleted group's share partitions and
// sessions, and returns the partitions: the caller marks them deleted
// (their leaders write no more state) once it let go of c.mu, for a
// partition's lock may be held across a state write.
func (c *Coordinator) forgetPartitionsLocked(groupID string) []*sharePartition {
	var dropped []*sharePartition
	for key, sp := range c.partitions {
		if key.group == groupID {
			dropped = append(dropped, sp)
			delete(c.partitions, key)
		}
	}
	for key, s := range c.sessions {
		if key.group == groupID {
			if s.stopWatch != nil {
				s.stopWatch()
			}
			delete(c.sessions, key)
		}
	}
	return dropped
}

// finishDelete writes the tombstones of a group whose state is deleted,
// unless a member joined meanwhile (NON_EMPTY_GROUP; its heartbeat took
// the topics it was assigned out of the deleting ones).
func (c *Coordinator) finishDelete(groupID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	topics := topicsOf(c.newestImageLocked(nil))
	part, err := c.groupPartitionLocked(groupID)
	if err != nil {
		return err
	}
	g := c.groups[groupID]
	if g == nil {
		return nil // deleted by another DeleteGroups meanwhile
	}
	for _, gone := range g.Expire(c.opts.Config.Group, topics, c.nowMs()) {
		c.memberGoneLocked(groupID, gone)
	}
	if n := len(g.Members()); n > 0 {
		return fmt.Errorf("share group %q has %d members: %w", groupID, n, ErrNonEmptyGroup)
	}
	if err := c.writeGroupLocked(part, g.DeleteRecords()); err != nil {
		return err
	}
	delete(c.groups, groupID)
	delete(c.groupTopics, groupID)
	delete(c.assigned, groupID)
	c.publishGroupIDsLocked()
	return nil
}
