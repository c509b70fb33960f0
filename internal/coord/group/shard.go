// Package group is the classic consumer-group protocol as a pure state
// machine: the groups of one shard (one partition of __consumer_offsets),
// their members, generations and committed offsets. It does no I/O and
// reads no clock: every input carries nowMs, and the runtime
// (internal/coord) owns the goroutine, the timer, the disk and the waiting
// callers.
//
// A step (Join, Sync, Heartbeat, Leave, CommitOffsets, ..., Tick,
// ExpireOffsets) decides, changes the in-memory membership as Kafka's
// GroupCoordinator does, and queues records for __consumer_offsets plus
// replies for the callers (identified by a Waiter the runtime chose). The
// runtime takes the records (TakeRecords), appends them durably, and then
// calls Durable, which applies what depends on the records (committed
// offsets, a completed sync) and returns every reply queued since. If the
// append fails the runtime must drop the Shard: its memory then differs
// from the log, which Load rebuilds it from.
//
// Invariants: a group's member set, generation and state are only changed
// here; an offset becomes visible only after its record is durable; a
// reply that reports a durable outcome is released only by Durable.
package group

import (
	"slices"
	"strings"

	"github.com/sluicelog/sluice/internal/metadata"
)

// Waiter identifies a caller waiting for a reply; 0 means nobody waits.
type Waiter uint64

// Reply is the answer for one Waiter: Value is the result type of the
// call (JoinResult, SyncResult, LeaveResult, CommitResult, []DeleteGroupResult
// entries as DeleteGroupResult, DeleteOffsetsResult) or nil; Err the error.
type Reply struct {
	Waiter Waiter
	Value  any
	Err    error
}

// Config bounds and times the groups of a shard.
type Config struct {
	MinSessionTimeoutMs     int32
	MaxSessionTimeoutMs     int32
	InitialRebalanceDelayMs int32
	MaxSize                 int32 // members per group
	MaxMemberMetadataBytes  int32
	OffsetMetadataMaxBytes  int32
	OffsetsRetentionMs      int64
	MaxGroups               int // groups in this shard
	// MaxRecordBytes bounds a group metadata record (all members'
	// metadata and assignments), under the topic's max.message.bytes.
	MaxRecordBytes int

	// The consumer protocol (KIP-848): group.consumer.session.timeout.ms,
	// group.consumer.heartbeat.interval.ms, group.consumer.max.size and
	// group.consumer.assignors (the first is the default).
	ConsumerSessionTimeoutMs    int32
	ConsumerHeartbeatIntervalMs int32
	ConsumerMaxSize             int32
	ConsumerAssignors           []string
	// ConsumerMigrationPolicy is group.consumer.migration.policy: which
	// conversions between the protocols a group may make while it has
	// members (Migration*; "" is bidirectional, Kafka 4's default).
	ConsumerMigrationPolicy string
}

// maxProtocols bounds the protocols one member may offer; clients offer one
// to three.
const maxProtocols = 64

// Shard is the groups of one __consumer_offsets partition. Not safe for
// concurrent use: one owner goroutine drives it.
type Shard struct {
	cfg    Config
	groups map[string]*Group
	// active are the groups with members or pending members: the only ones
	// with deadlines, so idle groups cost a Tick nothing.
	active map[*Group]struct{}

	records   []Record
	replies   []Reply
	onDurable []func()

	// image is the newest metadata image a call brought (ConsumerHeartbeat,
	// Join, Sync): after a load the group knows its partitions by topic id
	// only, and a classic member's assignment names topics.
	image *metadata.Image

	// pendingTxn holds the offsets committed inside transactions
	// (TxnOffsetCommit), by producer id, group and partition: durable in
	// the log, invisible to OffsetFetch until the producer's COMMIT marker
	// (CompleteTxn), dropped on ABORT. pendingTxnOffsets counts them.
	pendingTxn        map[int64]map[string]map[TopicPartition]Offset
	pendingTxnOffsets int
	// logOrder counts offset records in log order: those replayed by Load
	// and LoadTxnOffset, then those decided here (emitted in this order,
	// appended in it, and a failed append drops the shard), so it orders
	// any two offsets of the shard as their records are ordered in the
	// partition, as Kafka compares their batch offsets.
	logOrder int64
}

// nextLogOrder numbers the next offset record.
func (s *Shard) nextLogOrder() int64 {
	s.logOrder++
	return s.logOrder
}

// NewShard returns an empty shard.
func NewShard(cfg Config) *Shard {
	return &Shard{cfg: cfg, groups: map[string]*Group{}, active: map[*Group]struct{}{},
		pendingTxn: map[int64]map[string]map[TopicPartition]Offset{}}
}

// NumGroups is how many groups the shard holds.
func (s *Shard) NumGroups() int { return len(s.groups) }

// TakeRecords returns the records decided since the last call, to append
// to the shard's partition in order.
func (s *Shard) TakeRecords() []Record {
	r := s.records
	s.records = nil
	return r
}

// Durable is called once the records from TakeRecords are durable (or when
// there were none): it applies what waited on them and returns the replies
// queued since the last call.
func (s *Shard) Durable() []Reply {
	for _, f := range s.onDurable {
		f()
	}
	s.onDurable = nil
	r := s.replies
	s.replies = nil
	return r
}

func (s *Shard) reply(w Waiter, v any, err error) {
	if w != 0 {
		s.replies = append(s.replies, Reply{Waiter: w, Value: v, Err: err})
	}
}

// replyWhenDurable queues a reply that reports a durable outcome.
func (s *Shard) replyWhenDurable(w Waiter, v any, err error) {
	s.onDurable = append(s.onDurable, func() { s.reply(w, v, err) })
}

// observeImage keeps the newest image a call brought.
func (s *Shard) observeImage(img *metadata.Image) {
	s.image = metadata.Newer(s.image, img)
}

func (s *Shard) emit(key, value []byte) {
	s.records = append(s.records, Record{Key: key, Value: value})
}

// getOrCreate returns the group, creating an Empty one within MaxGroups.
func (s *Shard) getOrCreate(id string, nowMs int64) (*Group, error) {
	if g := s.groups[id]; g != nil {
		return g, nil
	}
	if s.cfg.MaxGroups > 0 && len(s.groups) >= s.cfg.MaxGroups {
		return nil, ErrTooManyGroups
	}
	g := &Group{id: id, state: stateEmpty, stateTimestampMs: nowMs}
	s.groups[id] = g
	return g, nil
}

// dropIfUnused forgets a group that holds nothing (created for a request
// that then failed, or emptied), so failed joins cannot grow the shard.
func (s *Shard) dropIfUnused(g *Group) {
	if len(g.members) == 0 && len(g.pending) == 0 && len(g.offsets) == 0 && !g.hasRecord && g.state == stateEmpty && g.consumer == nil {
		delete(s.groups, g.id)
		delete(s.active, g)
	}
}

func (s *Shard) updateActive(g *Group) {
	if len(g.members) > 0 || len(g.pending) > 0 || g.state == statePreparingRebalance || (g.consumer != nil && len(g.consumer.members) > 0) {
		s.active[g] = struct{}{}
	} else {
		delete(s.active, g)
	}
}

// NextDeadline is the earliest time a Tick has something to do, or -1.
func (s *Shard) NextDeadline() int64 {
	next := int64(-1)
	for g := range s.active {
		if d := g.nextDeadline(); d >= 0 && (next < 0 || d < next) {
			next = d
		}
	}
	return next
}

// Tick expires what is due at nowMs: pending member ids, session timeouts,
// the end of a join phase (rebalance timeout or initial delay). img is the
// newest metadata image: a consumer-protocol member that expires may
// downgrade its group, and the classic assignments written then name
// topics that a group replayed from the log knows by id only.
func (s *Shard) Tick(nowMs int64, img *metadata.Image) {
	s.observeImage(img)
	var due []*Group
	for g := range s.active {
		if d := g.nextDeadline(); d >= 0 && d <= nowMs {
			due = append(due, g)
		}
	}
	// Sorted so that a run is reproducible (records come out in one order).
	slices.SortFunc(due, func(a, b *Group) int { return strings.Compare(a.id, b.id) })
	for _, g := range due {
		s.tickGroup(g, nowMs)
	}
}

// ListGroups lists the shard's groups, filtered by state when states is
// non-empty (case-insensitive, as Kafka).
func (s *Shard) ListGroups(states []string) []GroupListing {
	var out []GroupListing
	for _, g := range s.groups {
		name, groupType := g.state.String(), GroupTypeClassic
		if g.consumer != nil {
			name, groupType = g.consumer.state(), GroupTypeConsumer
		}
		if len(states) > 0 && !slices.ContainsFunc(states, func(f string) bool { return strings.EqualFold(f, name) }) {
			continue
		}
		out = append(out, GroupListing{GroupID: g.id, ProtocolType: g.protocolType, State: name, Type: groupType})
	}
	slices.SortFunc(out, func(a, b GroupListing) int { return strings.Compare(a.GroupID, b.GroupID) })
	return out
}

// DescribeGroup describes one group; an unknown one is Dead, as in Kafka.
func (s *Shard) DescribeGroup(id string) GroupDescription {
	g := s.groups[id]
	if g == nil {
		return GroupDescription{GroupID: id, State: StateDead}
	}
	if g.consumer != nil {
		return g.describeConsumerAsClassic()
	}
	d := GroupDescription{GroupID: id, State: g.state.String(), ProtocolType: g.protocolType}
	stable := g.state == stateStable
	if stable {
		d.Protocol = g.protocolName
	}
	for _, m := range g.members {
		md := MemberDescription{MemberID: m.id, GroupInstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost}
		if stable {
			md.Metadata = m.metadata(g.protocolName)
			md.Assignment = m.assignment
		}
		d.Members = append(d.Members, md)
	}
	return d
}
