package group

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/sluicelog/sluice/internal/metadata"
)

// The consumer group protocol of KIP-848, as Kafka 4.1's
// GroupMetadataManager runs it: the coordinator assigns partitions, each
// member reconciles towards its target assignment one heartbeat at a time,
// and a rebalance never stops the whole group.
//
// Epochs: the group epoch grows whenever membership, a subscription or the
// subscribed topics' partition counts change; the target assignment is
// recomputed at once and takes the group epoch as its assignment epoch. A
// member reaches the assignment epoch only after it revoked every partition
// its target no longer holds (UNREVOKED_PARTITIONS until it acknowledges by
// heartbeating without them). A partition is handed to its new owner only
// once no other member holds it, assigned or pending revocation
// (UNRELEASED_PARTITIONS until then), so no partition ever has two owners.
//
// The in-memory change is made at once and the records describing it are
// queued; the reply waits for them to be durable (the Shard's rule).

// memberState is a member's reconciliation state, with Kafka's values (on
// disk in ConsumerGroupCurrentMemberAssignment).
type memberState int8

const (
	memberStable               memberState = 0
	memberUnrevokedPartitions  memberState = 1
	memberUnreleasedPartitions memberState = 2
)

// Member epochs with a meaning on the wire.
const (
	epochJoin        = 0
	epochLeave       = -1
	epochStaticLeave = -2
)

// partitionKey names one partition by topic id.
type partitionKey struct {
	topic     metadata.UUID
	partition int32
}

type partitionSet map[partitionKey]struct{}

// consumerGroup is the consumer-protocol part of a Group (Group.consumer);
// the Group keeps the id, the offsets and, for the offset rules, a classic
// state of Stable while there are members and Empty when there are none.
type consumerGroup struct {
	epoch           int32
	assignmentEpoch int32
	members         map[string]*consumerMember
	byInstance      map[string]*consumerMember
	// owner is which member holds each partition, assigned or pending
	// revocation: the rule that a partition has one owner at a time.
	owner map[partitionKey]string
	// metadataHash fingerprints the subscribed topics (ids and partition
	// counts) the target assignment was computed from.
	metadataHash uint64
	// assignor is the assignor of the last target assignment.
	assignor string
	// topicNames are the names of the topic ids assigned, for commits.
	topicNames map[metadata.UUID]string

	// The subscribed topics and their hash, as of subscribedImage: every
	// heartbeat needs the hash, and computing it costs O(members). A
	// subscription change clears subscribedImage; a new image is another
	// pointer.
	subscribedImage  *metadata.Image
	subscribedCached []*metadata.TopicImage
	hashCached       uint64
}

// consumerMember is one member of a consumer-protocol group.
type consumerMember struct {
	id, instanceID, rackID, clientID, clientHost string
	subscribedTopicNames                         []string
	subscribedTopicRegex                         string
	regex                                        *regexp.Regexp
	serverAssignor                               string
	rebalanceTimeoutMs                           int32

	memberEpoch, previousMemberEpoch int32
	state                            memberState
	assigned, pendingRevocation      partitionSet
	target                           partitionSet

	sessionDeadlineMs int64
	// revocationDeadlineMs bounds UNREVOKED_PARTITIONS: a member that
	// does not revoke within its rebalance timeout is removed (-1: none).
	revocationDeadlineMs int64
	// left is a static member that left with epoch -2: its assignment
	// stays reserved until it returns or its session expires.
	left bool
	// classic is set for a member that uses the classic protocol
	// (JoinGroup and SyncGroup) inside this group; see consumer_classic.go.
	classic *classicMemberMetadata
	// A classic member told to rejoin must send JoinGroup, and one that
	// joined must send SyncGroup, within its rebalance timeout, or it is
	// removed (Kafka's join and sync timeouts); 0: none pending.
	classicJoinDeadlineMs, classicSyncDeadlineMs int64
}

func newConsumerGroup() *consumerGroup {
	return &consumerGroup{members: map[string]*consumerMember{}, byInstance: map[string]*consumerMember{},
		owner: map[partitionKey]string{}, topicNames: map[metadata.UUID]string{}}
}

// sortedMembers is the members by id, so decisions are reproducible.
func (c *consumerGroup) sortedMembers() []*consumerMember {
	out := make([]*consumerMember, 0, len(c.members))
	for _, m := range c.members {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *consumerMember) int { return strings.Compare(a.id, b.id) })
	return out
}

// ConsumerHeartbeat handles a ConsumerGroupHeartbeat (Kafka's
// GroupMetadataManager.consumerGroupHeartbeat). Subscriptions are resolved
// against the newest of img and the images earlier steps brought:
// requests reach the shard in any order, and assigning from an older image
// would take partitions added since from their members (or bring a
// deleted topic back), to give them back at the next heartbeat. The
// reply, a ConsumerHeartbeatResult, comes once the records it caused are
// durable.
func (s *Shard) ConsumerHeartbeat(nowMs int64, w Waiter, req ConsumerHeartbeatRequest, img *metadata.Image) {
	s.observeImage(img)
	res, err := s.consumerHeartbeat(nowMs, &req, s.image)
	if err != nil {
		s.reply(w, ConsumerHeartbeatResult{MemberID: req.MemberID}, err)
		return
	}
	s.replyWhenDurable(w, res, nil)
}

// checkConsumerHeartbeat applies Kafka's request validation.
func (s *Shard) checkConsumerHeartbeat(req *ConsumerHeartbeatRequest) error {
	if err := checkGroupID(req.GroupID); err != nil {
		return err
	}
	if req.MemberID == "" || len(req.MemberID) > maxRecordString {
		return fmt.Errorf("member id of %d bytes: %w", len(req.MemberID), ErrInvalidRequest)
	}
	if err := checkRecordStrings(req.InstanceID, req.ClientID, req.ClientHost); err != nil {
		return err
	}
	if req.MemberEpoch < epochStaticLeave {
		return fmt.Errorf("member epoch %d: %w", req.MemberEpoch, ErrInvalidRequest)
	}
	if req.MemberEpoch == epochJoin {
		if req.RebalanceTimeoutMs <= 0 {
			return fmt.Errorf("rebalance timeout %d on join: %w", req.RebalanceTimeoutMs, ErrInvalidRequest)
		}
		if req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil {
			return fmt.Errorf("join without a subscription: %w", ErrInvalidRequest)
		}
		if len(req.OwnedTopics) > 0 {
			return fmt.Errorf("join with owned partitions: %w", ErrInvalidRequest)
		}
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != "" && !slices.Contains(s.cfg.ConsumerAssignors, *req.ServerAssignor) {
		return fmt.Errorf("assignor %q: %w", *req.ServerAssignor, ErrUnsupportedAssignor)
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != "" {
		if _, err := compileSubscriptionRegex(*req.SubscribedTopicRegex); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidRegularExpression, err)
		}
	}
	size := 0
	for _, t := range req.SubscribedTopicNames {
		if err := checkRecordStrings(t); err != nil {
			return err
		}
		size += len(t) + 2
	}
	if req.SubscribedTopicRegex != nil {
		if err := checkRecordStrings(*req.SubscribedTopicRegex); err != nil {
			return err
		}
	}
	// The subscription goes into one member record, which must fit well
	// within a __consumer_offsets batch: an append that fails would unload
	// the whole shard.
	if limit := s.cfg.MaxRecordBytes / 2; s.cfg.MaxRecordBytes > 0 && size > limit {
		return fmt.Errorf("a subscription of %d bytes, at most %d: %w", size, limit, ErrMemberMetadataTooLarge)
	}
	return nil
}

// long: one pass over Kafka's heartbeat steps (validate, find or create
// the group and member, update, assign, reconcile), kept in their order.
func (s *Shard) consumerHeartbeat(nowMs int64, req *ConsumerHeartbeatRequest, img *metadata.Image) (ConsumerHeartbeatResult, error) {
	if err := s.checkConsumerHeartbeat(req); err != nil {
		return ConsumerHeartbeatResult{}, err
	}
	g, err := s.consumerGroupFor(nowMs, req, img)
	if err != nil {
		return ConsumerHeartbeatResult{}, err
	}
	c := g.consumer
	if req.MemberEpoch == epochLeave || req.MemberEpoch == epochStaticLeave {
		return s.consumerLeave(g, nowMs, req)
	}
	m, isNew, err := s.consumerMemberFor(g, nowMs, req)
	if err != nil {
		return ConsumerHeartbeatResult{}, err
	}
	m.sessionDeadlineMs = nowMs + int64(s.cfg.ConsumerSessionTimeoutMs)
	bump := isNew
	if m.update(req) {
		bump = true
	}
	// A classic member heartbeating with the consumer protocol becomes a
	// consumer-protocol member, keeping its place (Kafka clears its
	// classic metadata the same way).
	wasClassic := m.classic != nil
	m.classic, m.classicJoinDeadlineMs, m.classicSyncDeadlineMs = nil, 0, 0
	if isNew || bump || wasClassic {
		s.emit(consumerMemberKey(g.id, m.id), consumerMemberValue(m))
		c.invalidateSubscriptions()
	}
	if hash := c.subscriptionHash(img); bump || hash != c.metadataHash {
		c.metadataHash = hash
		c.epoch++
		s.emit(consumerGroupKey(g.id), consumerGroupValue(c))
	}
	if c.epoch > c.assignmentEpoch {
		s.computeTargetAssignment(g, img)
	}
	before := m.assigned
	beforeEpoch := m.memberEpoch
	s.reconcile(g, m, req.OwnedTopics, nowMs)
	res := ConsumerHeartbeatResult{MemberID: m.id, MemberEpoch: m.memberEpoch, HeartbeatIntervalMs: s.cfg.ConsumerHeartbeatIntervalMs}
	// The assignment goes back whenever the member cannot be sure of it:
	// on a join, when it changed, and when the member reported owning
	// something else.
	if req.MemberEpoch == epochJoin || req.MemberEpoch != m.memberEpoch || beforeEpoch != m.memberEpoch || !sameSet(before, m.assigned) ||
		(req.OwnedTopics != nil && !sameSet(setOf(req.OwnedTopics), m.assigned)) {
		res.HasAssignment = true
		res.Assignment = topicPartitionsOf(m.assigned)
	}
	s.updateActive(g)
	return res, nil
}

// consumerGroupFor finds or creates the consumer group of a heartbeat. An
// empty classic group (offsets only) becomes a consumer group whatever the
// policy; one with members is upgraded when a member joins, if the
// migration policy allows (consumer_classic.go).
func (s *Shard) consumerGroupFor(nowMs int64, req *ConsumerHeartbeatRequest, img *metadata.Image) (*Group, error) {
	g := s.groups[req.GroupID]
	if g == nil && req.MemberEpoch != epochJoin {
		return nil, fmt.Errorf("group %q: %w", req.GroupID, ErrGroupIDNotFound)
	}
	if g != nil && g.consumer != nil {
		return g, nil
	}
	if g != nil && req.MemberEpoch != epochJoin {
		return nil, fmt.Errorf("group %q is not a consumer group: %w", req.GroupID, ErrGroupIDNotFound)
	}
	if g != nil && len(g.members) > 0 {
		if err := s.convertToConsumerGroup(g, nowMs, img); err != nil {
			return nil, err
		}
		return g, nil
	}
	g, err := s.getOrCreate(req.GroupID, nowMs)
	if err != nil {
		return nil, err
	}
	if g.hasRecord {
		// The classic group's metadata record goes, as when Kafka
		// replaces an empty classic group; its offsets stay.
		s.emit(groupKey(g.id), nil)
		g.hasRecord = false
	}
	g.consumer = newConsumerGroup()
	g.protocolType = GroupTypeConsumer
	g.protocolName, g.generation, g.leaderID = "", 0, ""
	g.pending, g.state, g.initialDelay = nil, stateEmpty, false
	return g, nil
}

// consumerMemberFor finds the heartbeating member, or admits a joining
// one; it applies the epoch fencing rules.
func (s *Shard) consumerMemberFor(g *Group, nowMs int64, req *ConsumerHeartbeatRequest) (m *consumerMember, isNew bool, err error) {
	c := g.consumer
	m = c.members[req.MemberID]
	if req.MemberEpoch != epochJoin {
		if m == nil || m.left {
			return nil, false, fmt.Errorf("member %q of group %q: %w", req.MemberID, g.id, ErrUnknownMemberID)
		}
		if req.InstanceID != "" && m.instanceID != req.InstanceID {
			return nil, false, fmt.Errorf("member %q: %w", req.MemberID, ErrFencedInstanceID)
		}
		if req.MemberEpoch != m.memberEpoch {
			// A member whose last response was lost may retry at its
			// previous epoch, as long as it claims nothing it lost.
			if req.MemberEpoch == m.previousMemberEpoch && (req.OwnedTopics == nil || subsetOf(setOf(req.OwnedTopics), m.assigned)) {
				return m, false, nil
			}
			return nil, false, fmt.Errorf("member %q at epoch %d, expected %d: %w", req.MemberID, req.MemberEpoch, m.memberEpoch, ErrFencedMemberEpoch)
		}
		return m, false, nil
	}
	if m != nil && !m.left {
		// A rejoin at epoch 0 with the same id: its last response was lost
		// or it was fenced. It keeps its place; the response re-delivers
		// the whole assignment.
		return m, false, nil
	}
	if m != nil && m.left && req.InstanceID == "" {
		// A static member back under its own member id.
		req.InstanceID = m.instanceID
	}
	if req.InstanceID != "" {
		if old := c.byInstance[req.InstanceID]; old != nil {
			// A classic static member never leaves with -2: a restart
			// with the consumer protocol replaces it, as in Kafka.
			if !old.left && old.classic == nil {
				return nil, false, fmt.Errorf("instance %q of group %q: %w", req.InstanceID, g.id, ErrUnreleasedInstanceID)
			}
			// Not new to the group: it takes the place it left, so no
			// rebalance (isNew false), but its records are written anew.
			m := s.replaceStaticMember(g, old, req.MemberID)
			m.classic, m.classicJoinDeadlineMs, m.classicSyncDeadlineMs = nil, 0, 0
			s.emit(consumerMemberKey(g.id, m.id), consumerMemberValue(m))
			return m, false, nil
		}
	}
	if s.cfg.ConsumerMaxSize > 0 && len(c.members) >= int(s.cfg.ConsumerMaxSize) {
		return nil, false, fmt.Errorf("group %q has %d members: %w", g.id, len(c.members), ErrGroupMaxSizeReached)
	}
	m = &consumerMember{id: req.MemberID, instanceID: req.InstanceID, assigned: partitionSet{}, pendingRevocation: partitionSet{},
		target: partitionSet{}, revocationDeadlineMs: -1, rebalanceTimeoutMs: req.RebalanceTimeoutMs}
	c.addMember(m)
	if g.state == stateEmpty {
		g.state, g.stateTimestampMs = stateStable, nowMs
	}
	return m, true, nil
}

// replaceStaticMember gives a returning static member (a new member id
// with the instance id of one that left with epoch -2) the old member's
// epoch and assignment, so a restart moves no partition.
func (s *Shard) replaceStaticMember(g *Group, old *consumerMember, newID string) *consumerMember {
	c := g.consumer
	s.emitMemberTombstones(g.id, old.id)
	delete(c.members, old.id)
	m := *old
	m.id, m.left = newID, false
	if old.left {
		m.memberEpoch = old.previousMemberEpoch // set aside by the -2 leave
	}
	for p := range m.assigned {
		c.owner[p] = newID
	}
	for p := range m.pendingRevocation {
		c.owner[p] = newID
	}
	c.addMember(&m)
	s.emit(consumerTargetMemberKey(g.id, m.id), consumerTargetMemberValue(m.target))
	s.emit(consumerCurrentKey(g.id, m.id), consumerCurrentValue(&m))
	return &m
}

func (c *consumerGroup) addMember(m *consumerMember) {
	c.members[m.id] = m
	if m.instanceID != "" {
		c.byInstance[m.instanceID] = m
	}
}

// update applies a heartbeat's changed fields; true when the subscription
// or the assignor changed (the group epoch must grow).
func (m *consumerMember) update(req *ConsumerHeartbeatRequest) bool {
	changed := false
	if req.ClientID != "" {
		m.clientID = req.ClientID
	}
	if req.ClientHost != "" {
		m.clientHost = req.ClientHost
	}
	if req.RackID != nil {
		m.rackID = *req.RackID
	}
	if req.RebalanceTimeoutMs > 0 {
		m.rebalanceTimeoutMs = req.RebalanceTimeoutMs
	}
	if req.SubscribedTopicNames != nil {
		names := slices.Clone(req.SubscribedTopicNames)
		slices.Sort(names)
		names = slices.Compact(names)
		if !slices.Equal(names, m.subscribedTopicNames) {
			m.subscribedTopicNames, changed = names, true
		}
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != m.subscribedTopicRegex {
		m.subscribedTopicRegex, changed = *req.SubscribedTopicRegex, true
		m.regex = nil
		if m.subscribedTopicRegex != "" {
			m.regex, _ = compileSubscriptionRegex(m.subscribedTopicRegex) // checked by checkConsumerHeartbeat
		}
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != m.serverAssignor {
		m.serverAssignor, changed = *req.ServerAssignor, true
	}
	return changed
}

// subscribes reports whether the member subscribes to topic: by name, or
// by a regex that matches the whole name (RE2J's matches(), which Kafka
// uses; m.regex is compiled anchored). Like Kafka, a regex may match
// internal topics.
func (m *consumerMember) subscribes(topic string) bool {
	if _, ok := slices.BinarySearch(m.subscribedTopicNames, topic); ok {
		return true
	}
	return m.regex != nil && m.regex.MatchString(topic)
}

// compileSubscriptionRegex compiles a KIP-848 regex (RE2J syntax; Go's
// RE2 accepts the same language but for a few escapes) anchored at both
// ends.
func compileSubscriptionRegex(re string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + re + `)$`)
}

// subscribedTopics are the image's topics some member subscribes to,
// sorted by name.
func (c *consumerGroup) subscribedTopics(img *metadata.Image) []*metadata.TopicImage {
	if img == nil {
		return nil
	}
	if img == c.subscribedImage {
		return c.subscribedCached
	}
	c.subscribedCached, c.hashCached = c.resolveSubscriptions(img), 0
	c.subscribedImage = img
	for _, t := range c.subscribedCached {
		c.topicNames[t.ID] = t.Name
	}
	return c.subscribedCached
}

// invalidateSubscriptions forgets the cached subscribed topics, after a
// member, or a member's subscription, came or went.
func (c *consumerGroup) invalidateSubscriptions() { c.subscribedImage = nil }

func (c *consumerGroup) resolveSubscriptions(img *metadata.Image) []*metadata.TopicImage {
	var out []*metadata.TopicImage
	hasRegex := false
	names := map[string]bool{}
	for _, m := range c.members {
		hasRegex = hasRegex || m.regex != nil
		for _, n := range m.subscribedTopicNames {
			names[n] = true
		}
	}
	if hasRegex {
		members := c.sortedMembers()
		for _, t := range img.Topics() {
			if names[t.Name] || slices.ContainsFunc(members, func(m *consumerMember) bool { return m.subscribes(t.Name) }) {
				out = append(out, t)
			}
		}
		return out
	}
	for n := range names {
		if t, ok := img.Topic(n); ok {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b *metadata.TopicImage) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// subscriptionHash fingerprints the subscribed topics (FNV-1a over names,
// ids and partition counts): when it changes, the group epoch grows and
// the assignment is recomputed (Kafka 4.1's metadata hash, KIP-1101).
func (c *consumerGroup) subscriptionHash(img *metadata.Image) uint64 {
	if img != nil && img == c.subscribedImage && c.hashCached != 0 {
		return c.hashCached
	}
	topics := c.subscribedTopics(img)
	h := uint64(14695981039346656037)
	mix := func(b byte) { h = (h ^ uint64(b)) * 1099511628211 }
	for _, t := range topics {
		for i := range len(t.Name) {
			mix(t.Name[i])
		}
		for _, b := range t.ID {
			mix(b)
		}
		n := len(t.Partitions)
		mix(byte(n >> 24))
		mix(byte(n >> 16))
		mix(byte(n >> 8))
		mix(byte(n))
	}
	if img != nil {
		c.hashCached = h
	}
	return h
}

// computeTargetAssignment runs the group's assignor and records the new
// target of every member whose target changed.
func (s *Shard) computeTargetAssignment(g *Group, img *metadata.Image) {
	c := g.consumer
	members := c.sortedMembers()
	c.assignor = s.chooseAssignor(members)
	topics := c.subscribedTopics(img)
	targets := assign(c.assignor, members, topics)
	for i, m := range members {
		if !sameSet(m.target, targets[i]) {
			m.target = targets[i]
			s.emit(consumerTargetMemberKey(g.id, m.id), consumerTargetMemberValue(m.target))
		}
	}
	c.assignmentEpoch = c.epoch
	s.emit(consumerTargetMetadataKey(g.id), consumerTargetMetadataValue(c.assignmentEpoch))
}

// chooseAssignor is the assignor most members ask for (ties to the
// configured order), else the first configured, as Kafka does.
func (s *Shard) chooseAssignor(members []*consumerMember) string {
	votes := map[string]int{}
	for _, m := range members {
		if m.serverAssignor != "" {
			votes[m.serverAssignor]++
		}
	}
	best, bestVotes := "", 0
	for _, a := range s.cfg.ConsumerAssignors {
		if votes[a] > bestVotes {
			best, bestVotes = a, votes[a]
		}
	}
	if best == "" && len(s.cfg.ConsumerAssignors) > 0 {
		best = s.cfg.ConsumerAssignors[0]
	}
	return best
}

// reconcile moves a member towards its target (Kafka's
// CurrentAssignmentBuilder). owned is what the member reports owning (nil:
// unchanged).
func (s *Shard) reconcile(g *Group, m *consumerMember, owned []ConsumerTopicPartitions, nowMs int64) {
	c := g.consumer
	beforeEpoch, beforeState, beforeAssigned := m.memberEpoch, m.state, m.assigned
	changed := false
	if m.state == memberUnrevokedPartitions {
		if owned == nil || intersects(setOf(owned), m.pendingRevocation) {
			return // still revoking; the revocation deadline runs
		}
		for p := range m.pendingRevocation {
			if c.owner[p] == m.id {
				delete(c.owner, p)
			}
		}
		m.pendingRevocation = partitionSet{}
		m.revocationDeadlineMs = -1
		changed = true
	}
	if m.memberEpoch != c.assignmentEpoch || m.state != memberStable {
		kept, revoke := partitionSet{}, partitionSet{}
		for p := range m.assigned {
			if _, ok := m.target[p]; ok {
				kept[p] = struct{}{}
			} else {
				revoke[p] = struct{}{}
			}
		}
		if len(revoke) > 0 {
			m.assigned, m.pendingRevocation = kept, revoke
			m.state = memberUnrevokedPartitions
			m.revocationDeadlineMs = nowMs + int64(m.rebalanceTimeoutMs)
		} else {
			unreleased := false
			for p := range m.target {
				if _, ok := kept[p]; ok {
					continue
				}
				if o, held := c.owner[p]; held && o != m.id {
					unreleased = true
					continue
				}
				kept[p] = struct{}{}
				c.owner[p] = m.id
			}
			if m.memberEpoch != c.assignmentEpoch {
				m.previousMemberEpoch, m.memberEpoch = m.memberEpoch, c.assignmentEpoch
			}
			m.assigned = kept
			m.state = memberStable
			if unreleased {
				m.state = memberUnreleasedPartitions
			}
		}
		changed = changed || m.memberEpoch != beforeEpoch || m.state != beforeState || !sameSet(m.assigned, beforeAssigned)
	}
	if changed {
		s.emit(consumerCurrentKey(g.id, m.id), consumerCurrentValue(m))
	}
}

// consumerLeave handles epochs -1 and -2.
func (s *Shard) consumerLeave(g *Group, nowMs int64, req *ConsumerHeartbeatRequest) (ConsumerHeartbeatResult, error) {
	c := g.consumer
	m := c.members[req.MemberID]
	if m == nil && req.InstanceID != "" {
		m = c.byInstance[req.InstanceID]
	}
	if m == nil {
		return ConsumerHeartbeatResult{}, fmt.Errorf("member %q of group %q: %w", req.MemberID, g.id, ErrUnknownMemberID)
	}
	if req.InstanceID != "" && m.instanceID != req.InstanceID {
		return ConsumerHeartbeatResult{}, fmt.Errorf("member %q: %w", req.MemberID, ErrFencedInstanceID)
	}
	res := ConsumerHeartbeatResult{MemberID: req.MemberID, MemberEpoch: req.MemberEpoch, HeartbeatIntervalMs: s.cfg.ConsumerHeartbeatIntervalMs}
	if req.MemberEpoch == epochStaticLeave && m.instanceID == "" {
		return ConsumerHeartbeatResult{}, fmt.Errorf("member epoch -2 for dynamic member %q: %w", req.MemberID, ErrInvalidRequest)
	}
	if req.MemberEpoch == epochStaticLeave {
		// Kafka also wants the instance id in a -2 leave (INVALID_REQUEST
		// without it); franz-go 1.22 sends the member id only, and the
		// member id names the static member as well, so it is enough.
		// Its partitions stay reserved for its return within the
		// session timeout: no rebalance.
		m.left = true
		m.sessionDeadlineMs = nowMs + int64(s.cfg.ConsumerSessionTimeoutMs)
		// Kafka records epoch -2; the epoch to come back at is kept
		// as the previous one.
		m.previousMemberEpoch, m.memberEpoch = m.memberEpoch, epochStaticLeave
		s.emit(consumerCurrentKey(g.id, m.id), consumerCurrentValue(m))
		s.updateActive(g)
		return res, nil
	}
	s.removeConsumerMember(g, m, nowMs)
	return res, nil
}

// removeConsumerMember fences a member out: its partitions are freed and
// the group epoch grows so the others are reassigned. When it was the
// last consumer-protocol member, the group may go back to the classic
// protocol (maybeDowngrade).
func (s *Shard) removeConsumerMember(g *Group, m *consumerMember, nowMs int64) {
	if m.classic == nil && s.canDowngrade(g, m) {
		s.convertToClassicGroup(g, m, nowMs, true)
		return
	}
	s.dropConsumerMember(g, m)
	s.bumpAfterRemoval(g, nowMs)
}

// dropConsumerMember takes m out of the group: its partitions are freed
// and its records deleted.
func (s *Shard) dropConsumerMember(g *Group, m *consumerMember) {
	c := g.consumer
	for p, o := range c.owner {
		if o == m.id {
			delete(c.owner, p)
		}
	}
	delete(c.members, m.id)
	if m.instanceID != "" && c.byInstance[m.instanceID] == m {
		delete(c.byInstance, m.instanceID)
	}
	s.emitMemberTombstones(g.id, m.id)
	c.invalidateSubscriptions()
}

// bumpAfterRemoval grows the group epoch once members were dropped, so
// the others are reassigned.
func (s *Shard) bumpAfterRemoval(g *Group, nowMs int64) {
	c := g.consumer
	c.epoch++
	s.emit(consumerGroupKey(g.id), consumerGroupValue(c))
	if len(c.members) == 0 {
		g.state, g.stateTimestampMs = stateEmpty, nowMs
		c.assignmentEpoch = c.epoch
		s.emit(consumerTargetMetadataKey(g.id), consumerTargetMetadataValue(c.assignmentEpoch))
	}
	s.updateActive(g)
}

// emitMemberTombstones deletes a member's records, in Kafka's order.
func (s *Shard) emitMemberTombstones(groupID, memberID string) {
	s.emit(consumerCurrentKey(groupID, memberID), nil)
	s.emit(consumerTargetMemberKey(groupID, memberID), nil)
	s.emit(consumerMemberKey(groupID, memberID), nil)
}

// nextDeadline is the group's earliest session or revocation
// deadline, or -1.
func (c *consumerGroup) nextDeadline() int64 {
	next := int64(-1)
	for _, m := range c.members {
		for _, d := range []int64{m.sessionDeadlineMs, m.revocationDeadlineMs} {
			if d >= 0 && (next < 0 || d < next) {
				next = d
			}
		}
		for _, d := range []int64{m.classicJoinDeadlineMs, m.classicSyncDeadlineMs} {
			if d > 0 && (next < 0 || d < next) {
				next = d
			}
		}
	}
	return next
}

// tickConsumerGroup removes members whose session expired or who did not
// revoke, or (classic members) rejoin or sync, within their rebalance
// timeout.
func (s *Shard) tickConsumerGroup(g *Group, nowMs int64) {
	for _, m := range g.consumer.sortedMembers() {
		if g.consumer == nil {
			break // downgraded: the classic group's own deadlines apply
		}
		if m.sessionDeadlineMs <= nowMs || (m.revocationDeadlineMs >= 0 && m.revocationDeadlineMs <= nowMs) || m.classicTimedOut(nowMs) {
			s.removeConsumerMember(g, m, nowMs)
		}
	}
	s.updateActive(g)
}

// state is the group's state as ConsumerGroupDescribe and
// ListGroups name it.
func (c *consumerGroup) state() string {
	if len(c.members) == 0 {
		return ConsumerStateEmpty
	}
	if c.epoch > c.assignmentEpoch {
		return ConsumerStateAssigning
	}
	for _, m := range c.members {
		if !m.left && (m.memberEpoch != c.assignmentEpoch || m.state != memberStable) {
			return ConsumerStateReconciling
		}
	}
	return ConsumerStateStable
}

// subscribedTopicNames are the topics the members subscribe to, for
// OffsetDelete and offset expiry: by name, and by regex as resolved
// against img, or without one as last resolved, plus every topic assigned
// (a topic matched by a regex stays subscribed while it is held).
func (c *consumerGroup) subscribedTopicNames(img *metadata.Image) map[string]bool {
	out := map[string]bool{}
	for _, m := range c.members {
		for _, n := range m.subscribedTopicNames {
			out[n] = true
		}
	}
	topics := c.subscribedCached
	if img != nil {
		topics = c.subscribedTopics(img)
	}
	for _, t := range topics {
		out[t.Name] = true
	}
	for p := range c.owner {
		if name, ok := c.topicNames[p.topic]; ok {
			out[name] = true
		}
	}
	return out
}

// DescribeConsumerGroup describes a consumer-protocol group
// (ConsumerGroupDescribe); img names the topics. Unknown groups and
// classic ones are ErrGroupIDNotFound, as in Kafka.
func (s *Shard) DescribeConsumerGroup(id string, img *metadata.Image) ConsumerGroupDescription {
	g := s.groups[id]
	if g == nil || g.consumer == nil {
		return ConsumerGroupDescription{GroupID: id, Err: fmt.Errorf("group %q is not a consumer group: %w", id, ErrGroupIDNotFound)}
	}
	c := g.consumer
	d := ConsumerGroupDescription{GroupID: id, State: c.state(), GroupEpoch: c.epoch, AssignmentEpoch: c.assignmentEpoch, Assignor: c.assignor}
	if d.Assignor == "" && len(s.cfg.ConsumerAssignors) > 0 {
		d.Assignor = s.cfg.ConsumerAssignors[0]
	}
	for _, m := range c.sortedMembers() {
		d.Members = append(d.Members, ConsumerMemberDescription{
			MemberID: m.id, InstanceID: m.instanceID, RackID: m.rackID, MemberEpoch: m.memberEpoch,
			ClientID: m.clientID, ClientHost: m.clientHost, SubscribedTopicNames: m.subscribedTopicNames,
			SubscribedTopicRegex: m.subscribedTopicRegex,
			Assignment:           topicPartitionsOf(m.assigned), TargetAssignment: topicPartitionsOf(m.target),
			Classic: m.classic != nil,
		})
	}
	return d
}

// validateConsumerCommit applies Kafka's ConsumerGroup.validateOffsetCommit
// with one relaxation: a member may still commit at its previous epoch
// the partitions it holds now (its commit raced the heartbeat that
// bumped its epoch; KIP-1251 relaxes Kafka the same way).
func (g *Group) validateConsumerCommit(req *CommitRequest) error {
	c := g.consumer
	if req.GenerationID < 0 && len(c.members) == 0 {
		return nil
	}
	m := c.members[req.MemberID]
	if m == nil || m.left {
		return fmt.Errorf("member %q of group %q: %w", req.MemberID, g.id, ErrUnknownMemberID)
	}
	if req.GenerationID == m.memberEpoch {
		return nil
	}
	if m.classic != nil {
		// A classic member commits at its generation, which is its
		// member epoch (Kafka's validateMemberEpoch).
		return fmt.Errorf("classic member %q commits at generation %d, its epoch is %d: %w", req.MemberID, req.GenerationID, m.memberEpoch, ErrIllegalGeneration)
	}
	if req.GenerationID == m.previousMemberEpoch && req.GenerationID >= 0 {
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				if !c.holds(m, t.Name, p.Partition) {
					return ErrStaleMemberEpoch
				}
			}
		}
		return nil
	}
	return fmt.Errorf("member %q commits at epoch %d, its epoch is %d: %w", req.MemberID, req.GenerationID, m.memberEpoch, ErrStaleMemberEpoch)
}

// ValidateOffsetFetch applies Kafka's ConsumerGroup.validateOffsetFetch to
// an OffsetFetch v9 naming a member: in a consumer-protocol group it must
// be a member (ErrUnknownMemberID) at its current epoch
// (ErrStaleMemberEpoch). Classic groups do not check, as in Kafka.
func (s *Shard) ValidateOffsetFetch(req FetchRequest) error {
	g := s.groups[req.GroupID]
	if !req.CheckMember || g == nil || g.consumer == nil {
		return nil
	}
	m := g.consumer.members[req.MemberID]
	if m == nil || m.left {
		return fmt.Errorf("member %q of group %q: %w", req.MemberID, g.id, ErrUnknownMemberID)
	}
	if req.MemberEpoch != m.memberEpoch && m.classic != nil {
		return fmt.Errorf("classic member %q fetches offsets at generation %d, its epoch is %d: %w", req.MemberID, req.MemberEpoch, m.memberEpoch, ErrIllegalGeneration)
	}
	if req.MemberEpoch != m.memberEpoch {
		return fmt.Errorf("member %q fetches offsets at epoch %d, its epoch is %d: %w", req.MemberID, req.MemberEpoch, m.memberEpoch, ErrStaleMemberEpoch)
	}
	return nil
}

// holds is whether the member owns the partition, assigned or pending
// revocation. Commits name topics, assignments ids: the group remembers
// the names of the ids it assigned.
func (c *consumerGroup) holds(m *consumerMember, topic string, partition int32) bool {
	for _, set := range []partitionSet{m.assigned, m.pendingRevocation} {
		for p := range set {
			if p.partition == partition && c.topicNames[p.topic] == topic {
				return true
			}
		}
	}
	return false
}

// set helpers.

func setOf(tps []ConsumerTopicPartitions) partitionSet {
	s := partitionSet{}
	for _, t := range tps {
		for _, p := range t.Partitions {
			s[partitionKey{t.TopicID, p}] = struct{}{}
		}
	}
	return s
}

func sameSet(a, b partitionSet) bool {
	if len(a) != len(b) {
		return false
	}
	return subsetOf(a, b)
}

func subsetOf(a, b partitionSet) bool {
	for p := range a {
		if _, ok := b[p]; !ok {
			return false
		}
	}
	return true
}

func intersects(a, b partitionSet) bool {
	for p := range a {
		if _, ok := b[p]; ok {
			return true
		}
	}
	return false
}

// topicPartitionsOf is a set as wire/record topics, sorted by topic id and
// partition.
func topicPartitionsOf(s partitionSet) []ConsumerTopicPartitions {
	keys := make([]partitionKey, 0, len(s))
	for p := range s {
		keys = append(keys, p)
	}
	slices.SortFunc(keys, func(a, b partitionKey) int {
		return cmp.Or(slices.Compare(a.topic[:], b.topic[:]), cmp.Compare(a.partition, b.partition))
	})
	out := []ConsumerTopicPartitions{}
	for _, k := range keys {
		if n := len(out); n == 0 || out[n-1].TopicID != k.topic {
			out = append(out, ConsumerTopicPartitions{TopicID: k.topic})
		}
		out[len(out)-1].Partitions = append(out[len(out)-1].Partitions, k.partition)
	}
	return out
}
