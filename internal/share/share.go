// Package share runs share groups (KIP-932) on a broker: the groups'
// membership (sharegroup.Group), the share partitions this node leads
// (sharegroup.Partition) with their acquisition locks, the share sessions
// of ShareFetch, and each share partition's durable state.
//
// Durability, and what is not there yet: a share partition's state (SPSO,
// in-flight states and delivery counts) is written with fsync to a state
// file on the partition leader's log dir (statefile.go) before an
// acknowledgement is answered. It survives a restart of that node, but it is
// not replicated: Kafka keeps it in __share_group_state through the share
// coordinator (APIs 83–86), which Sluice does not have yet, so after a
// leader failover the new leader starts the share partition afresh. The
// group's membership is kept in memory only: after a restart members get
// UNKNOWN_MEMBER_ID and rejoin, as Kafka's members do after a coordinator
// failover. The group of a share group is kept on every broker a member
// heartbeats to; FindCoordinator sends them all to one broker, the group's
// coordinator.
//
// Locking: Coordinator.mu guards the groups, the sessions and the map of
// share partitions; each share partition has its own mutex, held across its
// log read, its acquisitions and acknowledgements and its state write, so
// fetches and fsyncs of different partitions run in parallel and a
// partition's state files are written in order. Order: Coordinator.mu
// before a partition's mu, never the reverse; stateDirs.mu is a leaf.
package share

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/coord/sharegroup"
	"github.com/sluicelog/sluice/internal/partition"
	"github.com/sluicelog/sluice/internal/vfs"
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
)

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
	Config     Config
	FS         vfs.FS
	Dir        string // log.dirs: state files go under Dir/StateDirName
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
// carry.
type session struct {
	nextEpoch  int32
	partitions map[TopicPartition]bool
}

// Coordinator is the share-group state of this node.
type Coordinator struct {
	opts Options

	mu         sync.Mutex
	dirs       *stateDirs
	groups     map[string]*sharegroup.Group
	partitions map[partitionKey]*sharePartition
	sessions   map[sessionKey]*session
}

// New builds a Coordinator with no groups; share partitions load their
// state files on first use.
func New(opts Options) *Coordinator {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	return &Coordinator{opts: opts, dirs: &stateDirs{fs: opts.FS, root: opts.Dir, ready: map[string]bool{}}, groups: map[string]*sharegroup.Group{},
		partitions: map[partitionKey]*sharePartition{}, sessions: map[sessionKey]*session{}}
}

func (c *Coordinator) nowMs() int64 { return clock.UnixMs(c.opts.Clock) }

// LockDurationMs is the acquisition lock duration ShareFetch reports.
func (c *Coordinator) LockDurationMs() int64 { return c.opts.Config.Partition.LockDurationMs }

// Heartbeat serves ShareGroupHeartbeat. partitionCounts gives the partition
// count of each existing topic (0 for none).
func (c *Coordinator) Heartbeat(groupID string, hb sharegroup.Heartbeat, partitionCounts func(string) int32) (sharegroup.HeartbeatResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.nowMs()
	g := c.groups[groupID]
	if g == nil {
		if hb.MemberEpoch != 0 {
			return sharegroup.HeartbeatResult{}, fmt.Errorf("share group %q does not exist: %w", groupID, sharegroup.ErrUnknownMemberID)
		}
		g = sharegroup.NewGroup(groupID)
		c.groups[groupID] = g
	}
	for _, gone := range g.Expire(c.opts.Config.Group, partitionCounts, now) {
		c.memberGoneLocked(groupID, gone)
	}
	res, err := g.Heartbeat(c.opts.Config.Group, hb, partitionCounts, now)
	if err == nil && res.Left {
		c.memberGoneLocked(groupID, hb.MemberID)
	}
	return res, err
}

// memberGoneLocked releases what a member that left (or timed out) held,
// so others get its records now rather than at lock expiry.
func (c *Coordinator) memberGoneLocked(groupID, memberID string) {
	delete(c.sessions, sessionKey{groupID, memberID})
	for key, sp := range c.partitions {
		if key.group == groupID {
			sp.mu.Lock()
			if sp.p.ReleaseMember(memberID) > 0 {
				_ = c.persistLocked(sp) // logged; the records come back at lock expiry anyway
			}
			sp.mu.Unlock()
		}
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
func (c *Coordinator) Describe(groupID string, partitionCounts func(string) int32) (GroupDescription, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[groupID]
	if g == nil {
		return GroupDescription{}, false
	}
	for _, gone := range g.Expire(c.opts.Config.Group, partitionCounts, c.nowMs()) {
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
	out := make([]GroupDescription, 0, len(c.groups))
	for id, g := range c.groups {
		out = append(out, GroupDescription{GroupID: id, State: g.State(), Epoch: g.Epoch})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GroupID < out[j].GroupID })
	return out
}

// IsShareGroup says whether groupID is a share group here.
func (c *Coordinator) IsShareGroup(groupID string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.groups[groupID] != nil
}

// sharePartition is one share partition on its leader, with the mutex
// that orders its changes and its state writes.
type sharePartition struct {
	key     partitionKey
	mu      sync.Mutex
	p       *sharegroup.Partition
	deleted bool // its group was deleted: write no state for it
}

// sharePartition returns the share partition, loading its state file (or
// starting it at the log start or the high watermark) the first time.
func (c *Coordinator) sharePartition(key partitionKey, part *partition.Partition) (*sharePartition, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sp := c.partitions[key]; sp != nil {
		return sp, nil
	}
	cfg := c.opts.Config.Partition
	st, found, err := readState(c.opts.FS, statePath(c.opts.Dir, key.group, key.Topic, key.Partition), cfg.MaxRecordLocks)
	if err != nil {
		return nil, err
	}
	sp := &sharePartition{key: key}
	switch {
	case found:
		sp.p = sharegroup.LoadPartition(cfg, st)
	case c.opts.Config.AutoOffsetResetEarliest:
		sp.p = sharegroup.NewPartition(cfg, part.Offsets().LogStartOffset)
	default:
		sp.p = sharegroup.NewPartition(cfg, part.Offsets().HighWatermark)
	}
	c.partitions[key] = sp
	return sp, nil
}

// persistLocked writes a share partition's state (sp.mu held); a failure
// is logged and returned: the acknowledgement that caused it is not
// confirmed.
func (c *Coordinator) persistLocked(sp *sharePartition) error {
	if sp.deleted {
		return nil
	}
	key := sp.key
	err := c.dirs.write(statePath(c.opts.Dir, key.group, key.Topic, key.Partition), sp.p.State())
	if err != nil {
		c.opts.Logger.Error("share partition state not written", "group", key.group, "topic", key.Topic, "partition", key.Partition, "err", err)
	}
	return err
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

// DeleteGroup deletes an empty share group with its share partitions'
// state on this node; found is false when there is no such share group
// here. State files on other partition leaders are left (they are found
// again if a group of the same id comes back).
func (c *Coordinator) DeleteGroup(groupID string, partitionCounts func(string) int32) (found bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[groupID]
	if g == nil {
		return false, nil
	}
	for _, gone := range g.Expire(c.opts.Config.Group, partitionCounts, c.nowMs()) {
		c.memberGoneLocked(groupID, gone)
	}
	if n := len(g.Members()); n > 0 {
		return true, fmt.Errorf("share group %q has %d members: %w", groupID, n, ErrNonEmptyGroup)
	}
	delete(c.groups, groupID)
	for key, sp := range c.partitions {
		if key.group == groupID {
			sp.mu.Lock()
			sp.deleted = true
			sp.mu.Unlock()
			delete(c.partitions, key)
		}
	}
	for key := range c.sessions {
		if key.group == groupID {
			delete(c.sessions, key)
		}
	}
	return true, c.dirs.removeGroup(groupID)
}
