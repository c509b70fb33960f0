package group

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/sluicelog/sluice/internal/metadata"
)

// Where the two protocols meet: Kafka 4's online migration (KIP-848, its
// GroupMetadataManager's classicGroup*ToConsumerGroup and conversions).
//
//   - A classic member (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) may be
//     a member of a consumer-protocol group that has members. It is a
//     consumerMember with classic metadata (its session timeout and
//     protocols): the server-side assignor assigns it like any member,
//     JoinGroup reconciles it (its owned partitions come from its
//     subscription) and answers at once with the member epoch as the
//     generation, SyncGroup hands it its assigned partitions as a
//     ConsumerProtocolAssignment, and Heartbeat tells it to rejoin
//     (REBALANCE_IN_PROGRESS) while it lags the group epoch or has
//     partitions to revoke or to pick up. No call blocks: the classic
//     join and sync phases are the member's own.
//   - Upgrade: the first ConsumerGroupHeartbeat that joins a classic group
//     with members converts it into a consumer group; its members keep
//     their generation as their epoch and their last assignment as their
//     target, and stay classic members.
//   - Downgrade: when the last consumer-protocol member leaves (or is
//     fenced) and only classic members remain, the group converts back
//     into a classic group, at the group epoch as its generation with the
//     target assignment as each member's, and rebalances.
//
// Both conversions write Kafka's records (the tombstones of the old form,
// then every record of the new one), so a converted group replays as it
// is. group.consumer.migration.policy (Config.ConsumerMigrationPolicy)
// enables each direction; an empty group (offsets only) changes protocol
// whatever the policy, as in Kafka.

// Migration policies (group.consumer.migration.policy), by Kafka's names.
const (
	MigrationBidirectional = "bidirectional"
	MigrationUpgrade       = "upgrade"
	MigrationDowngrade     = "downgrade"
	MigrationDisabled      = "disabled"
)

// classicMemberMetadata is what a classic member of a consumer group has
// beyond a consumer-protocol member (ConsumerGroupMemberMetadata's
// ClassicMemberMetadata).
type classicMemberMetadata struct {
	sessionTimeoutMs int32
	protocols        []Protocol
}

func (s *Shard) upgradeEnabled() bool {
	p := s.cfg.ConsumerMigrationPolicy
	return p == "" || p == MigrationBidirectional || p == MigrationUpgrade
}

func (s *Shard) downgradeEnabled() bool {
	p := s.cfg.ConsumerMigrationPolicy
	return p == "" || p == MigrationBidirectional || p == MigrationDowngrade
}

// protocolName is the protocol a classic member was told it runs: its
// first, as Kafka answers.
func (m *consumerMember) protocolName() string {
	if m.classic == nil || len(m.classic.protocols) == 0 {
		return ""
	}
	return m.classic.protocols[0].Name
}

// supportsClassicProtocols: a classic joiner must offer a protocol every
// classic member supports, itself included with the protocols it joined
// with last (Kafka's ConsumerGroup.supportsClassicProtocols counts every
// classic member, as a classic group's check counts the rejoining member).
func (c *consumerGroup) supportsClassicProtocols(protocolType string, ps []Protocol) bool {
	if protocolType != GroupTypeConsumer || len(ps) == 0 {
		return false
	}
	for _, p := range ps {
		all := true
		for _, m := range c.members {
			if m.classic != nil && !hasProtocol(m.classic.protocols, p.Name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// classicJoinToConsumerGroup is a JoinGroup to a consumer group with
// members (Kafka's classicGroupJoinToConsumerGroup). The reply comes once
// the records it caused are durable.
//
// long: Kafka's steps in their order (validate, find or create the member,
// update it, bump the epoch, assign, reconcile, maybe downgrade).
func (s *Shard) classicJoinToConsumerGroup(g *Group, nowMs int64, w Waiter, req *JoinRequest, newMemberID string, img *metadata.Image) {
	defer s.updateActive(g)
	c := g.consumer
	fail := func(err error) { s.reply(w, JoinResult{MemberID: req.MemberID}, err) }
	// Kafka checks the size first (throwIfConsumerGroupIsFull): a joiner
	// that is not yet a member of a full group is refused whatever it
	// offers. A static member replacing its own instance is not counted
	// as new here (Kafka refuses it too, which would stop a full group's
	// rolling restart).
	isMember := c.members[req.MemberID] != nil || (req.GroupInstanceID != "" && c.byInstance[req.GroupInstanceID] != nil)
	if !isMember && s.cfg.ConsumerMaxSize > 0 && len(c.members) >= int(s.cfg.ConsumerMaxSize) {
		fail(fmt.Errorf("group %q has %d members: %w", g.id, len(c.members), ErrGroupMaxSizeReached))
		return
	}
	if !c.supportsClassicProtocols(req.ProtocolType, req.Protocols) {
		fail(fmt.Errorf("member %q's protocols are not supported by consumer group %q: %w", req.MemberID, g.id, ErrInconsistentGroupProtocol))
		return
	}
	// Its protocols go into its member record, which must fit well within
	// a __consumer_offsets batch, as a consumer-protocol subscription must.
	if limit := s.cfg.MaxRecordBytes / 2; s.cfg.MaxRecordBytes > 0 && protocolsBytes(req.Protocols) > limit {
		fail(fmt.Errorf("member %q: protocols of %d bytes, at most %d: %w", req.MemberID, protocolsBytes(req.Protocols), limit, ErrMemberMetadataTooLarge))
		return
	}
	// Every protocol carries the same subscription; Kafka reads the first.
	sub, err := parseConsumerSubscription(req.Protocols[0].Metadata)
	if err != nil {
		fail(fmt.Errorf("member %q: %v: %w", req.MemberID, err, ErrInconsistentGroupProtocol))
		return
	}
	if req.MemberID == "" && req.GroupInstanceID == "" && req.RequireKnownMemberID {
		// Kafka keeps no pending member ids for a consumer group: the
		// rejoin with this id creates the member.
		s.reply(w, JoinResult{MemberID: newMemberID, GenerationID: -1}, ErrMemberIDRequired)
		return
	}
	m, isNew, replaced, err := s.classicConsumerMemberFor(g, req, newMemberID)
	if err != nil {
		fail(err)
		return
	}
	// A static member that replaced a consumer-protocol member still has
	// its classic metadata (none) until the update below.
	replacedConsumer := replaced && m.classic == nil
	recordChanged, subscriptionChanged := m.updateFromClassicJoin(req, sub)
	if isNew || replaced || recordChanged {
		s.emit(consumerMemberKey(g.id, m.id), consumerMemberValue(m))
		c.invalidateSubscriptions()
	}
	// A classic member owns what its subscription says (nothing below
	// subscription v1, whose members revoke everything before rejoining).
	owned := topicPartitionsOf(c.idSet(sub.owned, img))
	if replacedConsumer && s.canDowngrade(g, nil) {
		s.downgradeOnStaticReplacement(g, m, owned, subscriptionChanged, nowMs, w)
		return
	}
	if hash := c.subscriptionHash(img); isNew || subscriptionChanged || hash != c.metadataHash {
		c.metadataHash = hash
		c.epoch++
		s.emit(consumerGroupKey(g.id), consumerGroupValue(c))
	}
	if c.epoch > c.assignmentEpoch {
		s.computeTargetAssignment(g, img)
	}
	s.reconcile(g, m, owned, nowMs)
	m.sessionDeadlineMs = nowMs + int64(m.classic.sessionTimeoutMs)
	m.classicJoinDeadlineMs = 0
	m.classicSyncDeadlineMs = nowMs + int64(m.rebalanceTimeoutMs)
	s.replyWhenDurable(w, JoinResult{GenerationID: m.memberEpoch, ProtocolType: GroupTypeConsumer, ProtocolName: m.protocolName(), MemberID: m.id}, nil)
}

// downgradeOnStaticReplacement: a classic static member m replaced the
// group's last consumer-protocol member, so the group goes back to the
// classic protocol (Kafka 4.1's classicGroupJoinToConsumerGroup with a
// valid validateOnlineDowngradeWithReplacedMember). As in Kafka, the
// group epoch is not bumped and no target is computed: with the same
// subscription m reconciles against the target it inherited and the
// classic group stays Stable with those assignments (a restart moves no
// partition); with another subscription the classic group rebalances.
// The JoinGroup answer carries m's member epoch as its generation.
func (s *Shard) downgradeOnStaticReplacement(g *Group, m *consumerMember, owned []ConsumerTopicPartitions, subscriptionChanged bool, nowMs int64, w Waiter) {
	if !subscriptionChanged {
		s.reconcile(g, m, owned, nowMs)
	}
	res := JoinResult{GenerationID: m.memberEpoch, ProtocolType: GroupTypeConsumer, ProtocolName: m.protocolName(), MemberID: m.id}
	s.convertToClassicGroup(g, nil, nowMs, subscriptionChanged)
	s.updateActive(g)
	s.replyWhenDurable(w, res, nil)
}

// classicConsumerMemberFor finds or admits the classic member of a
// JoinGroup: a static member with a new member id replaces the one with
// its instance id (replaced), taking its epoch and assignment.
func (s *Shard) classicConsumerMemberFor(g *Group, req *JoinRequest, newMemberID string) (m *consumerMember, isNew, replaced bool, err error) {
	c := g.consumer
	id := req.MemberID
	if id == "" {
		id = newMemberID
	}
	if req.GroupInstanceID != "" {
		old := c.byInstance[req.GroupInstanceID]
		switch {
		case old != nil && req.MemberID == "":
			return s.replaceStaticMember(g, old, id), false, true, nil
		case old != nil && old.id != req.MemberID:
			return nil, false, false, fmt.Errorf("instance %q of group %q: %w", req.GroupInstanceID, g.id, ErrFencedInstanceID)
		case old == nil && req.MemberID != "":
			return nil, false, false, fmt.Errorf("static member %q of group %q: %w", req.MemberID, g.id, ErrUnknownMemberID)
		case old != nil:
			return old, false, false, nil
		}
	} else if m := c.members[id]; m != nil {
		if m.left || m.classic == nil {
			return nil, false, false, fmt.Errorf("member %q of group %q does not use the classic protocol: %w", id, g.id, ErrUnknownMemberID)
		}
		return m, false, false, nil
	}
	// A new member: the caller checked group.consumer.max.size.
	m = &consumerMember{id: id, assigned: partitionSet{}, pendingRevocation: partitionSet{}, target: partitionSet{}, revocationDeadlineMs: -1}
	c.addMember(m)
	return m, true, false, nil
}

// updateFromClassicJoin applies a JoinGroup to its member: whether its
// record changed, and whether its subscription did (the group epoch must
// grow).
func (m *consumerMember) updateFromClassicJoin(req *JoinRequest, sub consumerSubscription) (recordChanged, subscriptionChanged bool) {
	before := consumerMemberValue(m)
	if req.GroupInstanceID != "" {
		m.instanceID = req.GroupInstanceID
	}
	if sub.rackID != "" {
		m.rackID = sub.rackID
	}
	m.clientID, m.clientHost = req.ClientID, req.ClientHost
	m.rebalanceTimeoutMs = req.RebalanceTimeoutMs
	if names := sortedTopics(sub.topics); !slices.Equal(names, m.subscribedTopicNames) {
		m.subscribedTopicNames, subscriptionChanged = names, true
	}
	if m.subscribedTopicRegex != "" {
		m.subscribedTopicRegex, m.regex, subscriptionChanged = "", nil, true
	}
	m.classic = &classicMemberMetadata{sessionTimeoutMs: req.SessionTimeoutMs, protocols: slices.Clone(req.Protocols)}
	return subscriptionChanged || !bytes.Equal(before, consumerMemberValue(m)), subscriptionChanged
}

// classicMember finds the classic member a SyncGroup, Heartbeat or
// LeaveGroup names (Kafka's validateConsumerGroupMember and
// throwIfMemberDoesNotUseClassicProtocol).
func (c *consumerGroup) classicMember(groupID, memberID, instanceID string) (*consumerMember, error) {
	var m *consumerMember
	if instanceID != "" {
		m = c.byInstance[instanceID]
		if m == nil {
			return nil, fmt.Errorf("instance %q of group %q: %w", instanceID, groupID, ErrUnknownMemberID)
		}
		if memberID != "" && m.id != memberID {
			return nil, fmt.Errorf("instance %q of group %q: %w", instanceID, groupID, ErrFencedInstanceID)
		}
	} else if m = c.members[memberID]; m == nil {
		return nil, fmt.Errorf("member %q of group %q: %w", memberID, groupID, ErrUnknownMemberID)
	}
	if m.classic == nil || m.left {
		return nil, fmt.Errorf("member %q of group %q does not use the classic protocol: %w", m.id, groupID, ErrUnknownMemberID)
	}
	return m, nil
}

// classicSyncToConsumerGroup is a SyncGroup of a classic member of a
// consumer group: its assigned partitions, at once.
func (s *Shard) classicSyncToConsumerGroup(g *Group, nowMs int64, w Waiter, req SyncRequest) {
	c := g.consumer
	m, err := c.classicMember(g.id, req.MemberID, req.GroupInstanceID)
	switch {
	case err != nil:
	case req.GenerationID != m.memberEpoch:
		err = fmt.Errorf("member %q syncs generation %d, its epoch is %d: %w", m.id, req.GenerationID, m.memberEpoch, ErrIllegalGeneration)
	case req.ProtocolType != "" && req.ProtocolType != GroupTypeConsumer,
		req.ProtocolName != "" && req.ProtocolName != m.protocolName():
		err = fmt.Errorf("member %q syncs protocol %s/%s: %w", m.id, req.ProtocolType, req.ProtocolName, ErrInconsistentGroupProtocol)
	case c.epoch > m.memberEpoch && m.state != memberUnrevokedPartitions:
		// A new rebalance began: rejoin to catch up. A member revoking
		// partitions has rejoined already; it gets what it keeps.
		err = fmt.Errorf("group %q is at epoch %d, member %q at %d: %w", g.id, c.epoch, m.id, m.memberEpoch, ErrRebalanceInProgress)
	}
	if errors.Is(err, ErrRebalanceInProgress) {
		m.expectRejoin(nowMs)
	}
	if err != nil {
		s.reply(w, SyncResult{}, err)
		return
	}
	m.sessionDeadlineMs = nowMs + int64(m.classic.sessionTimeoutMs)
	m.classicSyncDeadlineMs = 0
	s.reply(w, SyncResult{ProtocolType: GroupTypeConsumer, ProtocolName: m.protocolName(), Assignment: c.classicMemberAssignment(m, m.assigned, s.image)}, nil)
}

// classicMemberAssignment is set as a ConsumerProtocolAssignment in the
// version of the member's subscription.
func (c *consumerGroup) classicMemberAssignment(m *consumerMember, set partitionSet, img *metadata.Image) []byte {
	var version int16
	if m.classic != nil && len(m.classic.protocols) > 0 {
		version = protocolVersion(m.classic.protocols[0].Metadata)
	}
	return encodeConsumerAssignment(version, c.namedSet(set, img))
}

// classicHeartbeatToConsumerGroup is a Heartbeat of a classic member of a
// consumer group: REBALANCE_IN_PROGRESS tells it to rejoin when the group
// epoch moved past it, when it has partitions to revoke, or when the
// partitions it waits for were released.
func (s *Shard) classicHeartbeatToConsumerGroup(g *Group, nowMs int64, w Waiter, req HeartbeatRequest) {
	c := g.consumer
	m, err := c.classicMember(g.id, req.MemberID, req.GroupInstanceID)
	if err == nil && req.GenerationID != m.memberEpoch {
		err = fmt.Errorf("member %q heartbeats generation %d, its epoch is %d: %w", m.id, req.GenerationID, m.memberEpoch, ErrIllegalGeneration)
	}
	if err != nil {
		s.reply(w, nil, err)
		return
	}
	m.sessionDeadlineMs = nowMs + int64(m.classic.sessionTimeoutMs)
	if m.memberEpoch < c.epoch || m.state == memberUnrevokedPartitions ||
		(m.state == memberUnreleasedPartitions && !c.waitingOnUnreleased(m)) {
		err = ErrRebalanceInProgress
		m.expectRejoin(nowMs)
	}
	s.reply(w, nil, err)
}

// expectRejoin starts the join timeout of a classic member told to
// rejoin, unless one runs.
func (m *consumerMember) expectRejoin(nowMs int64) {
	if m.classicJoinDeadlineMs == 0 {
		m.classicJoinDeadlineMs = nowMs + int64(m.rebalanceTimeoutMs)
	}
}

// classicTimedOut: a classic member did not rejoin or sync in time.
func (m *consumerMember) classicTimedOut(nowMs int64) bool {
	return (m.classicJoinDeadlineMs > 0 && m.classicJoinDeadlineMs <= nowMs) ||
		(m.classicSyncDeadlineMs > 0 && m.classicSyncDeadlineMs <= nowMs)
}

// waitingOnUnreleased: some partition of m's target is still held by
// another member.
func (c *consumerGroup) waitingOnUnreleased(m *consumerMember) bool {
	for p := range m.target {
		if _, ok := m.assigned[p]; ok {
			continue
		}
		if o, held := c.owner[p]; held && o != m.id {
			return true
		}
	}
	return false
}

// classicLeaveConsumerGroup removes the classic members a LeaveGroup
// names (by instance id alone for an admin's removal) from a consumer
// group, and bumps the group epoch once for them all, as Kafka's
// classicGroupLeaveToConsumerGroup does: one batch is one rebalance. The
// errors are by member, in order.
func (s *Shard) classicLeaveConsumerGroup(g *Group, nowMs int64, leaving []LeavingMember) []error {
	errs := make([]error, len(leaving))
	removed := 0
	for i, lm := range leaving {
		m, err := g.consumer.classicMember(g.id, lm.MemberID, lm.GroupInstanceID)
		if err != nil {
			errs[i] = err
			continue
		}
		s.dropConsumerMember(g, m)
		removed++
	}
	if removed > 0 {
		s.bumpAfterRemoval(g, nowMs)
	}
	return errs
}

// downgradeEmptyConsumerGroup lets a classic JoinGroup have an empty
// consumer group (offsets only): its records go, its offsets stay.
func (s *Shard) downgradeEmptyConsumerGroup(g *Group) {
	s.emitConsumerGroupTombstones(g)
	g.consumer = nil
	g.protocolType = ""
	g.state = stateEmpty
}

// convertToConsumerGroup upgrades a classic group with members for a
// joining consumer-protocol member (Kafka's validateOnlineUpgrade and
// convertToConsumerGroup). Refusals are ErrGroupIDNotFound, with Kafka's
// reasons.
//
// long: validation, then the conversion and its records in Kafka's order.
func (s *Shard) convertToConsumerGroup(g *Group, nowMs int64, img *metadata.Image) error {
	refuse := func(why string) error {
		return fmt.Errorf("cannot upgrade classic group %q to consumer group because %s: %w", g.id, why, ErrGroupIDNotFound)
	}
	switch {
	case !s.upgradeEnabled():
		return refuse("online upgrade is disabled")
	case g.protocolType != GroupTypeConsumer:
		return refuse("the group does not use the consumer embedded protocol")
	case s.cfg.ConsumerMaxSize > 0 && len(g.members) > int(s.cfg.ConsumerMaxSize):
		return refuse("the group size exceeds the consumer group maximum size")
	}
	c := newConsumerGroup()
	c.epoch, c.assignmentEpoch = g.generation, g.generation
	for _, gm := range g.members {
		metadata := gm.metadata(g.protocolName)
		if g.protocolName == "" && len(gm.protocols) > 0 {
			metadata = gm.protocols[0].Metadata // the first rebalance chose none yet
		}
		if limit := s.cfg.MaxRecordBytes / 2; s.cfg.MaxRecordBytes > 0 && protocolsBytes(gm.protocols) > limit {
			return refuse(fmt.Sprintf("member %q's protocols of %d bytes would not fit its record", gm.id, protocolsBytes(gm.protocols)))
		}
		sub, err := parseConsumerSubscription(metadata)
		if err != nil {
			return refuse(fmt.Sprintf("the embedded consumer protocol is malformed (%v)", err)) // Kafka's reason
		}
		assigned, userData, err := parseConsumerAssignment(gm.assignment)
		if err != nil {
			return refuse(fmt.Sprintf("the embedded consumer protocol is malformed (%v)", err)) // Kafka's reason
		}
		if len(userData) > 0 {
			// A client-side assignor that keeps state in its assignments
			// (Kafka Streams', a custom one) would lose it to the
			// server-side assignor: Kafka refuses (KAFKA-18134), and so do
			// we, with its reason. Null or empty user data, which the
			// built-in assignors send, converts.
			return refuse("an unsupported custom assignor is in use. Please refer to the documentation or switch to a default assignor before re-attempting the upgrade")
		}
		// Every member is Stable at the generation, its last assignment
		// its target; a group that was rebalancing is told to rejoin.
		m := &consumerMember{id: gm.id, instanceID: gm.instanceID, rackID: sub.rackID, clientID: gm.clientID, clientHost: gm.clientHost,
			subscribedTopicNames: sortedTopics(sub.topics), rebalanceTimeoutMs: gm.rebalanceTimeoutMs,
			memberEpoch: g.generation, previousMemberEpoch: g.generation, state: memberStable,
			assigned: partitionSet{}, pendingRevocation: partitionSet{}, revocationDeadlineMs: -1,
			sessionDeadlineMs: nowMs + int64(gm.sessionTimeoutMs),
			classic:           &classicMemberMetadata{sessionTimeoutMs: gm.sessionTimeoutMs, protocols: gm.protocols}}
		for p := range c.idSet(assigned, img) {
			if _, held := c.owner[p]; !held { // a leader's assignment could name one twice
				m.assigned[p] = struct{}{}
				c.owner[p] = m.id
			}
		}
		m.target = clonePartitionSet(m.assigned)
		c.addMember(m)
	}
	// The subscribed topics as the group sees them now, so that only a
	// change from here bumps the epoch (Kafka computes it at conversion).
	c.metadataHash = c.subscriptionHash(img)
	for _, gm := range g.members {
		s.reply(gm.joinWaiter, JoinResult{MemberID: gm.id}, ErrRebalanceInProgress)
		s.reply(gm.syncWaiter, SyncResult{}, ErrRebalanceInProgress)
	}
	s.emit(groupKey(g.id), nil)
	s.emitConsumerGroupRecords(g.id, c)
	g.consumer = c
	g.protocolType = GroupTypeConsumer
	g.protocolName, g.generation, g.leaderID = "", 0, ""
	g.members, g.byID, g.byInstance, g.pending = nil, nil, nil, nil
	g.hasRecord, g.initialDelay = false, false
	g.state, g.stateTimestampMs = stateStable, nowMs
	return nil
}

// emitConsumerGroupRecords writes every record of a consumer group, in
// Kafka's order (ConsumerGroup.createConsumerGroupRecords).
func (s *Shard) emitConsumerGroupRecords(groupID string, c *consumerGroup) {
	members := c.sortedMembers()
	for _, m := range members {
		s.emit(consumerMemberKey(groupID, m.id), consumerMemberValue(m))
	}
	s.emit(consumerGroupKey(groupID), consumerGroupValue(c))
	for _, m := range members {
		s.emit(consumerTargetMemberKey(groupID, m.id), consumerTargetMemberValue(m.target))
	}
	s.emit(consumerTargetMetadataKey(groupID), consumerTargetMetadataValue(c.assignmentEpoch))
	for _, m := range members {
		s.emit(consumerCurrentKey(groupID, m.id), consumerCurrentValue(m))
	}
}

// canDowngrade: the group's members other than leaving (nil: none) are
// all classic, at least one and at most the classic group.max.size, and
// the policy allows a downgrade (Kafka's validateOnlineDowngrade*).
func (s *Shard) canDowngrade(g *Group, leaving *consumerMember) bool {
	c := g.consumer
	if c == nil {
		return false
	}
	remaining := len(c.members)
	if leaving != nil {
		remaining--
	}
	if remaining <= 0 || !s.downgradeEnabled() || (s.cfg.MaxSize > 0 && remaining > int(s.cfg.MaxSize)) {
		return false
	}
	// The classic group's record holds every member's protocols and
	// assignment: it must fit (Sluice's bound; Kafka has none).
	size := 0
	for _, m := range c.members {
		if m == leaving {
			continue
		}
		if m.classic == nil {
			return false
		}
		size += protocolsBytes(m.classic.protocols) + 64 + 8*len(m.target)
	}
	return s.cfg.MaxRecordBytes <= 0 || size <= s.cfg.MaxRecordBytes
}

// convertToClassicGroup is Kafka's convertToClassicGroup: the consumer
// group's tombstones (the leaving member's too), then a classic group of
// the other members at the group epoch as its generation, each with its
// target as its assignment, written and then, when rebalance, rebalanced
// (always for a leaving member). The epoch is not bumped for the leaving
// member first: the classic members' next heartbeat, at their epoch, is
// then the current generation and learns of the rebalance
// (REBALANCE_IN_PROGRESS) instead of being fenced.
func (s *Shard) convertToClassicGroup(g *Group, leaving *consumerMember, nowMs int64, rebalance bool) {
	c := g.consumer
	members := c.sortedMembers()
	// Kafka's ConsumerGroup.createGroupTombstoneRecords order: every
	// current assignment, every target, the target epoch, every member,
	// the group. Each member's current and target go before its member
	// record, as Kafka's replay requires.
	for _, m := range members {
		s.emit(consumerCurrentKey(g.id, m.id), nil)
	}
	for _, m := range members {
		s.emit(consumerTargetMemberKey(g.id, m.id), nil)
	}
	s.emit(consumerTargetMetadataKey(g.id), nil)
	for _, m := range members {
		s.emit(consumerMemberKey(g.id, m.id), nil)
	}
	s.emit(consumerGroupKey(g.id), nil)
	members = slices.DeleteFunc(members, func(m *consumerMember) bool { return m == leaving })
	g.consumer = nil
	g.protocolType = GroupTypeConsumer
	g.generation = c.epoch
	g.state, g.stateTimestampMs = stateStable, nowMs
	g.leaderID = ""
	for _, cm := range members {
		g.add(&member{id: cm.id, instanceID: cm.instanceID, clientID: cm.clientID, clientHost: cm.clientHost,
			sessionTimeoutMs: cm.classic.sessionTimeoutMs, rebalanceTimeoutMs: cm.rebalanceTimeoutMs,
			protocols: cm.classic.protocols, heartbeatDeadlineMs: nowMs + int64(cm.classic.sessionTimeoutMs)})
	}
	g.protocolName = g.selectProtocol()
	for i, cm := range members {
		m := g.members[i]
		m.assignment = encodeConsumerAssignment(protocolVersion(m.metadata(g.protocolName)), c.namedSet(cm.target, s.image))
	}
	s.emitGroup(g)
	if rebalance {
		s.prepareRebalance(g, nowMs)
	}
}

func clonePartitionSet(set partitionSet) partitionSet {
	out := make(partitionSet, len(set))
	for p := range set {
		out[p] = struct{}{}
	}
	return out
}

// describeConsumerAsClassic is a consumer group as DescribeGroups shows
// it: protocol type "consumer", the assignor as the protocol, the KIP-848
// state, and each member's subscription and current assignment encoded as
// a classic consumer's (ConsumerProtocolSubscription and
// ConsumerProtocolAssignment v0), so tools that compute lag per member
// from DescribeGroups (kadm's Lag) work unchanged. Kafka 4.1 answers
// DescribeGroups for a group that is not classic as Dead (v6:
// GROUP_ID_NOT_FOUND); ConsumerGroupDescribe has the epochs.
func (g *Group) describeConsumerAsClassic() GroupDescription {
	c := g.consumer
	d := GroupDescription{GroupID: g.id, State: c.state(), ProtocolType: GroupTypeConsumer, Protocol: c.assignor}
	for _, m := range c.sortedMembers() {
		d.Members = append(d.Members, MemberDescription{MemberID: m.id, GroupInstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost,
			Metadata: classicSubscription(m.subscribedTopicNames), Assignment: c.classicAssignment(m.assigned)})
	}
	return d
}

// classicSubscription is a ConsumerProtocolSubscription v0: version,
// topics, null user data.
func classicSubscription(topics []string) []byte {
	b := binary.BigEndian.AppendUint16(nil, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(topics)))
	for _, t := range topics {
		b = appendString(b, t)
	}
	return binary.BigEndian.AppendUint32(b, 0xffffffff)
}

// classicAssignment is a ConsumerProtocolAssignment v0 of a set.
func (c *consumerGroup) classicAssignment(set partitionSet) []byte {
	return encodeConsumerAssignment(0, c.namedSet(set, nil))
}
