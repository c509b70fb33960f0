// Package sharegroup is the PURE state of share groups (KIP-932): the
// group's members, epochs and assignment (Group), and each share
// partition's in-flight records with their acquisition locks and delivery
// counts (Partition). Time enters as nowMs; the driver (internal/share)
// owns the locks, the clock and the disk.
//
// Unlike a consumer group, a share group's partitions are not owned: several
// members may fetch from one partition, and the partition's leader hands
// each record to one of them at a time under an acquisition lock. So an
// assignment change needs no revocation step: a member moves to the group's
// new epoch and assignment at its next heartbeat.
package sharegroup

import (
	"fmt"
	"slices"
	"sort"
)

// GroupConfig is the share-group bounds, from the broker config.
type GroupConfig struct {
	SessionTimeoutMs    int64 // group.share.session.timeout.ms
	HeartbeatIntervalMs int64 // group.share.heartbeat.interval.ms
	MaxSize             int   // group.share.max.size
}

// Member is one share-group member.
type Member struct {
	ID                   string
	Epoch                int32
	ClientID, ClientHost string
	RackID               string
	SubscribedTopicNames []string
	// Epoch is the epoch the member was last told; the group may be ahead.
	// Assignment is the group's current (target) assignment for the member,
	// topic name -> partitions, sorted; the member learns it with the
	// group's epoch at its next heartbeat.
	Assignment      map[string][]int32
	lastHeartbeatMs int64
}

// Group is one share group.
type Group struct {
	ID      string
	Epoch   int32
	members map[string]*Member
	// subscribedTopics is the subscribed topics' ids and partition counts
	// the current assignment was computed from; a change reassigns.
	subscribedTopics map[string]TopicMetadata

	// What the records in __consumer_offsets say (records.go): written
	// is false until the group's first records, savedEpoch and saved the
	// epoch and members they describe.
	written    bool
	savedEpoch int32
	saved      map[string]*savedMember

	// The group's share state (statemeta.go), as its
	// ShareGroupStatePartitionMetadata record says: the partitions it was
	// ever assigned (initialized, by topic id) and the topics a deletion
	// is deleting; stateWritten once such a record was written;
	// stateChecked while the assignment is known to be in initialized
	// (a reassignment or a load clears it).
	initialized  map[[16]byte]stateTopic
	deleting     map[[16]byte]string
	stateWritten bool
	stateChecked bool
}

// NewGroup is an empty share group.
func NewGroup(id string) *Group {
	return &Group{ID: id, members: map[string]*Member{}}
}

// Heartbeat is a ShareGroupHeartbeat as the state machine sees it.
type Heartbeat struct {
	MemberID    string
	MemberEpoch int32 // 0 joins, -1 leaves
	RackID      string
	// SubscribedTopicNames is nil when unchanged since the last heartbeat.
	SubscribedTopicNames []string
	ClientID, ClientHost string
}

// HeartbeatResult is what the member is told.
type HeartbeatResult struct {
	MemberEpoch         int32
	HeartbeatIntervalMs int64
	// Assignment is set when the member must (re)learn it: on joining, on a
	// new epoch, or when it sent its subscription.
	Assignment map[string][]int32
	// Left is set when the member left (epoch -1).
	Left bool
}

// TopicMetadata is what a group's assignment is computed from of one
// subscribed topic. The id is part of it, as in Kafka's subscription
// metadata: a topic deleted and created again under its name, with as
// many partitions, is another topic, whose id the members must learn.
type TopicMetadata struct {
	ID         [16]byte
	Partitions int32
}

// Topics describes the topics of the metadata image by name; a topic that
// does not exist is the zero TopicMetadata.
type Topics func(name string) TopicMetadata

// Heartbeat applies one heartbeat. topics describes every existing topic
// (a subscribed topic that does not exist is assigned nothing until it
// does).
func (g *Group) Heartbeat(cfg GroupConfig, hb Heartbeat, topics Topics, nowMs int64) (HeartbeatResult, error) {
	if hb.MemberID == "" {
		return HeartbeatResult{}, fmt.Errorf("share group %q: heartbeat without a member id: %w", g.ID, ErrInvalidRequest)
	}
	m, ok := g.members[hb.MemberID]
	switch {
	case hb.MemberEpoch == -1:
		if ok {
			g.remove(hb.MemberID, topics)
		}
		return HeartbeatResult{MemberEpoch: -1, Left: true}, nil
	case hb.MemberEpoch == 0 && !ok:
		if len(g.members) >= cfg.MaxSize {
			return HeartbeatResult{}, fmt.Errorf("share group %q has %d members: %w", g.ID, len(g.members), ErrGroupMaxSizeReached)
		}
		if hb.SubscribedTopicNames == nil {
			return HeartbeatResult{}, fmt.Errorf("share group %q: member %s joins without subscribed topics: %w", g.ID, hb.MemberID, ErrInvalidRequest)
		}
		m = &Member{ID: hb.MemberID}
		g.members[hb.MemberID] = m
	case !ok:
		return HeartbeatResult{}, fmt.Errorf("share group %q member %s: %w", g.ID, hb.MemberID, ErrUnknownMemberID)
	case hb.MemberEpoch != 0 && hb.MemberEpoch != m.Epoch:
		return HeartbeatResult{}, fmt.Errorf("share group %q member %s epoch %d, current %d: %w", g.ID, hb.MemberID, hb.MemberEpoch, m.Epoch, ErrFencedMemberEpoch)
	}
	m.lastHeartbeatMs = nowMs
	m.ClientID, m.ClientHost, m.RackID = hb.ClientID, hb.ClientHost, hb.RackID
	changed := m.Epoch == 0 // joining
	if hb.SubscribedTopicNames != nil {
		subs := slices.Clone(hb.SubscribedTopicNames)
		slices.Sort(subs)
		subs = slices.Compact(subs)
		changed = changed || !slices.Equal(subs, m.SubscribedTopicNames)
		m.SubscribedTopicNames = subs
	}
	if changed || g.subscribedTopicsChanged(topics) {
		g.reassign(topics)
	}
	m.Epoch = g.Epoch
	res := HeartbeatResult{MemberEpoch: m.Epoch, HeartbeatIntervalMs: cfg.HeartbeatIntervalMs}
	if hb.MemberEpoch != m.Epoch || hb.SubscribedTopicNames != nil {
		res.Assignment = m.Assignment
	}
	return res, nil
}

// Expire removes the members whose session timed out and returns their
// ids, so the driver releases their acquisition locks.
func (g *Group) Expire(cfg GroupConfig, topics Topics, nowMs int64) []string {
	var gone []string
	for id, m := range g.members {
		if nowMs-m.lastHeartbeatMs > cfg.SessionTimeoutMs {
			gone = append(gone, id)
		}
	}
	sort.Strings(gone)
	for _, id := range gone {
		g.remove(id, topics)
	}
	return gone
}

// Members is the group's members by id.
func (g *Group) Members() []*Member {
	out := make([]*Member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Member is one member, or nil.
func (g *Group) Member(id string) *Member { return g.members[id] }

// State is the group state as ShareGroupDescribe and ListGroups name it.
func (g *Group) State() string {
	if len(g.members) == 0 {
		return "Empty"
	}
	return "Stable"
}

func (g *Group) remove(id string, topics Topics) {
	delete(g.members, id)
	g.reassign(topics)
}

func (g *Group) subscribedTopicsChanged(topics Topics) bool {
	for topic, t := range g.subscribedTopics {
		if topics(topic) != t {
			return true
		}
	}
	for _, m := range g.members {
		for _, topic := range m.SubscribedTopicNames {
			if _, ok := g.subscribedTopics[topic]; !ok && topics(topic).Partitions > 0 {
				return true
			}
		}
	}
	return false
}

// reassign starts a new group epoch with a new assignment. Each member
// moves to it at its next heartbeat, without waiting for the others: share
// partitions are shared, so nothing has to be revoked first.
func (g *Group) reassign(topics Topics) {
	g.Epoch++
	g.stateChecked = false
	g.subscribedTopics = map[string]TopicMetadata{}
	subscribers := map[string][]*Member{}
	for _, m := range g.Members() {
		m.Assignment = map[string][]int32{}
		for _, topic := range m.SubscribedTopicNames {
			subscribers[topic] = append(subscribers[topic], m)
		}
	}
	for topic, members := range subscribers {
		t := topics(topic)
		g.subscribedTopics[topic] = t
		assignTopic(topic, t.Partitions, members)
	}
}

// assignTopic is the simple assignor: with no more members than
// partitions, partitions are dealt round-robin, so each goes to one member;
// with more members, each member gets one partition and partitions are
// shared, so no member idles. Every partition has at least one member.
func assignTopic(topic string, partitions int32, members []*Member) {
	if partitions <= 0 {
		return
	}
	if len(members) <= int(partitions) {
		for p := int32(0); p < partitions; p++ {
			m := members[int(p)%len(members)]
			m.Assignment[topic] = append(m.Assignment[topic], p)
		}
		return
	}
	for i, m := range members {
		m.Assignment[topic] = append(m.Assignment[topic], int32(i)%partitions)
	}
}
