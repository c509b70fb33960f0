package group

import (
	"fmt"

	"github.com/sluicelog/sluice/internal/metadata"
)

// Join handles a JoinGroup (Kafka's GroupCoordinator.handleJoinGroup).
// newMemberID is the id a new member gets (the runtime makes it unique:
// client id or instance id, "-", a random suffix). The reply comes when
// the join phase completes, or at once for errors and for a static member
// rejoining a stable group. A JoinGroup to a consumer-protocol group with
// members joins it as a classic member, assigned by the server against
// the newest of img and the images earlier steps brought, as
// ConsumerHeartbeat is (consumer_classic.go); it is answered once its
// records are durable.
func (s *Shard) Join(nowMs int64, w Waiter, req JoinRequest, newMemberID string, img *metadata.Image) {
	s.observeImage(img)
	if err := s.checkJoin(&req); err != nil {
		s.reply(w, JoinResult{MemberID: req.MemberID}, err)
		return
	}
	g := s.groups[req.GroupID]
	if g == nil && req.MemberID != "" {
		s.reply(w, JoinResult{MemberID: req.MemberID}, ErrUnknownMemberID)
		return
	}
	g, err := s.getOrCreate(req.GroupID, nowMs)
	if err != nil {
		s.reply(w, JoinResult{MemberID: req.MemberID}, err)
		return
	}
	if g.consumer != nil && len(g.consumer.members) > 0 {
		s.classicJoinToConsumerGroup(g, nowMs, w, &req, newMemberID, s.image)
		return
	}
	if g.consumer != nil {
		s.downgradeEmptyConsumerGroup(g)
	}
	defer s.updateActive(g)
	defer s.dropIfUnused(g)
	if !g.supportsProtocols(req.ProtocolType, req.Protocols) {
		s.reply(w, JoinResult{MemberID: req.MemberID}, ErrInconsistentGroupProtocol)
		return
	}
	if err := s.checkGroupMetadataBytes(g, &req); err != nil {
		s.reply(w, JoinResult{MemberID: req.MemberID}, err)
		return
	}
	switch {
	case req.MemberID == "" && req.GroupInstanceID != "":
		s.joinNewStatic(g, nowMs, w, &req, newMemberID)
	case req.MemberID == "":
		if !s.acceptsNewMember(g) {
			s.reply(w, JoinResult{}, ErrGroupMaxSizeReached)
			return
		}
		if req.RequireKnownMemberID {
			if g.pending == nil {
				g.pending = map[string]int64{}
			}
			g.pending[newMemberID] = nowMs + int64(req.SessionTimeoutMs)
			s.reply(w, JoinResult{MemberID: newMemberID, GenerationID: -1}, ErrMemberIDRequired)
			return
		}
		s.addMemberAndRebalance(g, nowMs, w, &req, newMemberID)
	default:
		s.joinKnown(g, nowMs, w, &req)
	}
}

// checkGroupMetadataBytes bounds a group's member metadata and assignments
// together by one group metadata record: a group past it could never be
// stored (every leader SyncGroup would fail), and per-member limits alone
// would let one group hold 1 MiB × group.max.size. Every protocol's
// metadata counts, as memory holds them all, though the record keeps one.
// The sum costs O(members) per join, which a join already costs.
func (s *Shard) checkGroupMetadataBytes(g *Group, req *JoinRequest) error {
	if s.cfg.MaxRecordBytes <= 0 {
		return nil
	}
	total := protocolsBytes(req.Protocols)
	for _, m := range g.members {
		if m.id == req.MemberID || (req.GroupInstanceID != "" && m.instanceID == req.GroupInstanceID) {
			continue // being replaced by this join
		}
		total += protocolsBytes(m.protocols) + len(m.assignment)
	}
	if total > s.cfg.MaxRecordBytes {
		return fmt.Errorf("group %s: members' metadata would total %d bytes, at most %d: %w",
			g.id, total, s.cfg.MaxRecordBytes, ErrMemberMetadataTooLarge)
	}
	return nil
}

func protocolsBytes(ps []Protocol) int {
	n := 0
	for _, p := range ps {
		n += len(p.Name) + len(p.Metadata)
	}
	return n
}

// checkJoin validates what needs no group.
func (s *Shard) checkJoin(req *JoinRequest) error {
	if err := checkGroupID(req.GroupID); err != nil {
		return err
	}
	if err := checkRecordStrings(req.MemberID, req.GroupInstanceID, req.ProtocolType, req.ClientID, req.ClientHost); err != nil {
		return err
	}
	if req.SessionTimeoutMs < s.cfg.MinSessionTimeoutMs || req.SessionTimeoutMs > s.cfg.MaxSessionTimeoutMs {
		return fmt.Errorf("session timeout %d ms outside [%d, %d]: %w", req.SessionTimeoutMs,
			s.cfg.MinSessionTimeoutMs, s.cfg.MaxSessionTimeoutMs, ErrInvalidSessionTimeout)
	}
	if req.RebalanceTimeoutMs <= 0 {
		req.RebalanceTimeoutMs = req.SessionTimeoutMs
	}
	if req.ProtocolType == "" || len(req.Protocols) == 0 {
		return fmt.Errorf("protocol type %q with %d protocols: %w", req.ProtocolType, len(req.Protocols), ErrInconsistentGroupProtocol)
	}
	if len(req.Protocols) > maxProtocols {
		return fmt.Errorf("%d protocols, at most %d: %w", len(req.Protocols), maxProtocols, ErrInvalidRequest)
	}
	size := 0
	for i, p := range req.Protocols {
		if p.Name == "" || hasProtocol(req.Protocols[:i], p.Name) {
			return fmt.Errorf("protocol name %q empty or repeated: %w", p.Name, ErrInvalidRequest)
		}
		if err := checkRecordStrings(p.Name); err != nil {
			return err
		}
		size += len(p.Name) + len(p.Metadata)
	}
	if s.cfg.MaxMemberMetadataBytes > 0 && size > int(s.cfg.MaxMemberMetadataBytes) {
		return fmt.Errorf("member metadata of %d bytes, at most %d: %w", size, s.cfg.MaxMemberMetadataBytes, ErrMemberMetadataTooLarge)
	}
	return nil
}

// acceptsNewMember applies group.max.size to a member not yet counted.
func (s *Shard) acceptsNewMember(g *Group) bool {
	return s.cfg.MaxSize <= 0 || len(g.members)+len(g.pending) < int(s.cfg.MaxSize)
}

// joinNewStatic is a static member joining without a member id: a new
// member, or a restarted one replacing its old member id.
func (s *Shard) joinNewStatic(g *Group, nowMs int64, w Waiter, req *JoinRequest, newMemberID string) {
	old := g.byInstance[req.GroupInstanceID]
	if old == nil {
		if !s.acceptsNewMember(g) {
			s.reply(w, JoinResult{}, ErrGroupMaxSizeReached)
			return
		}
		s.addMemberAndRebalance(g, nowMs, w, req, newMemberID)
		return
	}
	// Below JoinGroup v9 a restarted static leader is told the leader it
	// replaced, not itself: without the member list it must not think it
	// has to assign (Kafka's currentLeader).
	currentLeader := g.leaderID
	// The old incarnation's blocked calls are answered: it is fenced.
	s.reply(old.joinWaiter, JoinResult{MemberID: old.id}, ErrFencedInstanceID)
	s.reply(old.syncWaiter, SyncResult{}, ErrFencedInstanceID)
	old.joinWaiter, old.syncWaiter = 0, 0
	wasLeader := g.leaderID == old.id
	delete(g.byID, old.id)
	old.id = newMemberID
	g.byID[old.id] = old
	if wasLeader {
		g.leaderID = old.id
	}
	s.updateMember(old, nowMs, req)
	if g.state != stateStable {
		s.rejoinAndRebalance(g, nowMs, w, old)
		return
	}
	if g.selectProtocol() != g.protocolName {
		s.rejoinAndRebalance(g, nowMs, w, old)
		return
	}
	// KIP-345: same protocols, stable group: the member takes its old
	// assignment back without a rebalance, once the new member id is
	// durable in the group's record.
	old.heartbeatDeadlineMs = nowMs + int64(old.sessionTimeoutMs)
	s.emitGroup(g)
	res := JoinResult{GenerationID: g.generation, ProtocolType: g.protocolType, ProtocolName: g.protocolName,
		LeaderID: currentLeader, MemberID: old.id}
	if g.leaderID == old.id && req.SupportsSkipAssignment {
		res.LeaderID = g.leaderID
		res.SkipAssignment = true
		res.Members = g.joinMembers()
	}
	s.replyWhenDurable(w, res, nil)
}

// joinKnown is a member rejoining with its member id.
func (s *Shard) joinKnown(g *Group, nowMs int64, w Waiter, req *JoinRequest) {
	if _, ok := g.pending[req.MemberID]; ok && req.GroupInstanceID == "" {
		s.addMemberAndRebalance(g, nowMs, w, req, req.MemberID)
		return
	}
	m, err := g.validateMember(req.MemberID, req.GroupInstanceID)
	if err != nil {
		s.reply(w, JoinResult{MemberID: req.MemberID}, err)
		return
	}
	switch g.state {
	case statePreparingRebalance:
		s.updateMember(m, nowMs, req)
		s.rejoinAndRebalance(g, nowMs, w, m)
	case stateCompletingRebalance:
		if m.sameProtocols(req.Protocols) {
			// It lost the JoinGroup response: send the current one again.
			m.supportsSkipAssignment = req.SupportsSkipAssignment
			s.reply(w, g.joinResult(m), nil)
			return
		}
		s.updateMember(m, nowMs, req)
		s.rejoinAndRebalance(g, nowMs, w, m)
	case stateStable:
		if g.leaderID != m.id && m.sameProtocols(req.Protocols) {
			// A follower with nothing new: no rebalance.
			m.heartbeatDeadlineMs = nowMs + int64(m.sessionTimeoutMs)
			s.reply(w, g.joinResult(m), nil)
			return
		}
		// The leader rejoining asks for a rebalance (it saw new metadata).
		s.updateMember(m, nowMs, req)
		s.rejoinAndRebalance(g, nowMs, w, m)
	default:
		s.reply(w, JoinResult{MemberID: req.MemberID}, ErrUnknownMemberID)
	}
}

// validateMember finds memberID, fencing a stale static incarnation.
func (g *Group) validateMember(memberID, instanceID string) (*member, error) {
	if instanceID != "" {
		if m := g.byInstance[instanceID]; m != nil && m.id != memberID {
			return nil, ErrFencedInstanceID
		}
	}
	m := g.byID[memberID]
	if m == nil {
		return nil, ErrUnknownMemberID
	}
	return m, nil
}

func (s *Shard) updateMember(m *member, nowMs int64, req *JoinRequest) {
	m.protocols = req.Protocols
	m.sessionTimeoutMs, m.rebalanceTimeoutMs = req.SessionTimeoutMs, req.RebalanceTimeoutMs
	m.clientID, m.clientHost = req.ClientID, req.ClientHost
	m.supportsSkipAssignment = req.SupportsSkipAssignment
}

func (s *Shard) addMemberAndRebalance(g *Group, nowMs int64, w Waiter, req *JoinRequest, id string) {
	m := &member{id: id, instanceID: req.GroupInstanceID}
	s.updateMember(m, nowMs, req)
	if len(g.members) == 0 {
		g.protocolType = req.ProtocolType
	}
	if g.state == statePreparingRebalance && g.initialDelay {
		g.newMemberAdded = true
	}
	g.add(m)
	s.rejoinAndRebalance(g, nowMs, w, m)
}

// rejoinAndRebalance marks m as joined for the coming generation and
// starts or continues the rebalance.
func (s *Shard) rejoinAndRebalance(g *Group, nowMs int64, w Waiter, m *member) {
	if m.awaitingJoin {
		// A newer JoinGroup from the same member replaces the blocked one.
		s.reply(m.joinWaiter, JoinResult{MemberID: m.id}, ErrRebalanceInProgress)
	}
	m.joinWaiter, m.awaitingJoin = w, true
	if g.state != statePreparingRebalance {
		s.prepareRebalance(g, nowMs)
	}
	s.tryCompleteJoin(g, nowMs)
}

// prepareRebalance starts a join phase. A group that was Empty waits
// group.initial.rebalance.delay.ms first, so a starting fleet of consumers
// lands in one generation.
func (s *Shard) prepareRebalance(g *Group, nowMs int64) {
	if g.state == stateCompletingRebalance {
		for _, m := range g.members {
			m.assignment = nil
			s.reply(m.syncWaiter, SyncResult{}, ErrRebalanceInProgress)
			m.syncWaiter = 0
		}
	}
	if g.state == stateEmpty && s.cfg.InitialRebalanceDelayMs > 0 {
		delay := int64(s.cfg.InitialRebalanceDelayMs)
		g.initialDelay, g.newMemberAdded = true, false
		g.initialRemainingMs = max(g.rebalanceTimeoutMs()-delay, 0)
		g.rebalanceDeadlineMs = nowMs + delay
	} else {
		g.initialDelay = false
		g.rebalanceDeadlineMs = nowMs + g.rebalanceTimeoutMs()
	}
	g.state, g.stateTimestampMs = statePreparingRebalance, nowMs
	s.updateActive(g)
}

// tryCompleteJoin ends the join phase early once everyone joined (never
// during the initial delay, which always runs its course).
func (s *Shard) tryCompleteJoin(g *Group, nowMs int64) {
	if g.state == statePreparingRebalance && !g.initialDelay && g.allJoined() {
		s.completeJoin(g, nowMs)
	}
}

// completeJoin ends the join phase: members that did not rejoin are
// removed, the generation advances, and every joined member gets its
// JoinGroup response (the leader with everyone's metadata).
//
// Static members that did not rejoin stay, left to their session timeout
// (KIP-345: a slow restart must not cost a member its place), as Kafka
// does. The leader must be a member that rejoined; when none did, the
// phase waits another rebalance timeout for session timeouts to remove
// the silent ones.
func (s *Shard) completeJoin(g *Group, nowMs int64) {
	for _, m := range append([]*member(nil), g.members...) {
		if !m.awaitingJoin && m.instanceID == "" {
			s.removeMember(g, m)
		}
	}
	if len(g.members) > 0 && !g.electJoinedLeader() {
		g.rebalanceDeadlineMs = nowMs + g.rebalanceTimeoutMs()
		s.updateActive(g)
		return
	}
	g.initialDelay = false
	g.generation++
	g.stateTimestampMs = nowMs
	if len(g.members) == 0 {
		g.state, g.protocolName, g.leaderID = stateEmpty, "", ""
		s.emitGroup(g)
		s.updateActive(g)
		return
	}
	g.state = stateCompletingRebalance
	g.protocolName = g.selectProtocol()
	for _, m := range g.members {
		if !m.awaitingJoin {
			continue // a static member yet to rejoin
		}
		w := m.joinWaiter
		m.joinWaiter, m.awaitingJoin = 0, false
		m.heartbeatDeadlineMs = nowMs + int64(m.sessionTimeoutMs)
		s.reply(w, g.joinResult(m), nil)
	}
	s.updateActive(g)
}

// joinResult is the current generation's JoinGroup response for m.
func (g *Group) joinResult(m *member) JoinResult {
	res := JoinResult{GenerationID: g.generation, ProtocolType: g.protocolType, ProtocolName: g.protocolName,
		LeaderID: g.leaderID, MemberID: m.id}
	if g.leaderID == m.id {
		res.Members = g.joinMembers()
	}
	return res
}

func (g *Group) joinMembers() []JoinMember {
	out := make([]JoinMember, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, JoinMember{MemberID: m.id, GroupInstanceID: m.instanceID, Metadata: m.metadata(g.protocolName)})
	}
	return out
}

// removeMember takes m out, answering its blocked calls.
func (s *Shard) removeMember(g *Group, m *member) {
	s.reply(m.joinWaiter, JoinResult{MemberID: m.id}, ErrUnknownMemberID)
	s.reply(m.syncWaiter, SyncResult{}, ErrUnknownMemberID)
	m.joinWaiter, m.syncWaiter = 0, 0
	g.remove(m)
}

// removeMemberAndUpdate removes m and moves the group on (Kafka's
// removeMemberAndUpdateGroup).
func (s *Shard) removeMemberAndUpdate(g *Group, m *member, nowMs int64) {
	s.removeMember(g, m)
	switch g.state {
	case statePreparingRebalance:
		s.tryCompleteJoin(g, nowMs)
	case stateStable, stateCompletingRebalance:
		s.prepareRebalance(g, nowMs)
		s.tryCompleteJoin(g, nowMs)
	}
	s.updateActive(g)
}

// tickGroup expires what is due in g.
func (s *Shard) tickGroup(g *Group, nowMs int64) {
	if g.consumer != nil {
		s.tickConsumerGroup(g, nowMs)
		return
	}
	for id, d := range g.pending {
		if d <= nowMs {
			delete(g.pending, id)
		}
	}
	if len(g.pending) == 0 {
		g.pending = nil
	}
	for _, m := range append([]*member(nil), g.members...) {
		if !m.awaitingJoin && m.heartbeatDeadlineMs <= nowMs {
			s.removeMemberAndUpdate(g, m, nowMs)
		}
	}
	if g.state == statePreparingRebalance && g.rebalanceDeadlineMs <= nowMs {
		if g.initialDelay && g.newMemberAdded && g.initialRemainingMs > 0 {
			// Members keep arriving: wait another delay, within the
			// rebalance timeout.
			delay := min(max(int64(s.cfg.InitialRebalanceDelayMs), 1), g.initialRemainingMs)
			g.initialRemainingMs -= delay
			g.newMemberAdded = false
			g.rebalanceDeadlineMs = nowMs + delay
		} else {
			s.completeJoin(g, nowMs)
		}
	}
	s.tryCompleteJoin(g, nowMs)
	s.updateActive(g)
	s.dropIfUnused(g)
}

// Sync handles a SyncGroup (Kafka's handleSyncGroup). img names the
// topics of a classic member's assignment in a consumer group.
func (s *Shard) Sync(nowMs int64, w Waiter, req SyncRequest, img *metadata.Image) {
	s.observeImage(img)
	if req.GroupID == "" {
		s.reply(w, SyncResult{}, ErrInvalidGroupID)
		return
	}
	g := s.groups[req.GroupID]
	if g == nil || (g.consumer != nil && len(g.consumer.members) == 0) {
		s.reply(w, SyncResult{}, ErrUnknownMemberID)
		return
	}
	if g.consumer != nil {
		s.classicSyncToConsumerGroup(g, nowMs, w, req)
		return
	}
	m, err := g.validateMember(req.MemberID, req.GroupInstanceID)
	switch {
	case err != nil:
	case req.GenerationID != g.generation:
		err = ErrIllegalGeneration
	case req.ProtocolType != "" && req.ProtocolType != g.protocolType,
		req.ProtocolName != "" && req.ProtocolName != g.protocolName:
		err = ErrInconsistentGroupProtocol
	}
	if err != nil {
		s.reply(w, SyncResult{}, err)
		return
	}
	switch g.state {
	case statePreparingRebalance:
		s.reply(w, SyncResult{}, ErrRebalanceInProgress)
	case stateStable:
		m.heartbeatDeadlineMs = nowMs + int64(m.sessionTimeoutMs)
		s.reply(w, SyncResult{ProtocolType: g.protocolType, ProtocolName: g.protocolName, Assignment: m.assignment}, nil)
	case stateCompletingRebalance:
		m.heartbeatDeadlineMs = nowMs + int64(m.sessionTimeoutMs)
		if g.leaderID == m.id {
			if err := s.checkAssignments(req.Assignments); err != nil {
				s.reply(w, SyncResult{}, err)
				return
			}
			if err := s.storeAssignments(g, req.Assignments); err != nil {
				s.reply(w, SyncResult{}, err)
				return
			}
			s.reply(m.syncWaiter, SyncResult{}, ErrRebalanceInProgress)
			m.syncWaiter = w
			return
		}
		s.reply(m.syncWaiter, SyncResult{}, ErrRebalanceInProgress)
		m.syncWaiter = w
	default:
		s.reply(w, SyncResult{}, ErrUnknownMemberID)
	}
}

func (s *Shard) checkAssignments(as []MemberAssignment) error {
	for _, a := range as {
		if s.cfg.MaxMemberMetadataBytes > 0 && len(a.Assignment) > int(s.cfg.MaxMemberMetadataBytes) {
			return fmt.Errorf("assignment of %d bytes for %s, at most %d: %w", len(a.Assignment), a.MemberID,
				s.cfg.MaxMemberMetadataBytes, ErrMemberMetadataTooLarge)
		}
	}
	return nil
}

// storeAssignments writes the generation with the leader's assignment;
// once durable the group is Stable and every waiting member gets its part.
func (s *Shard) storeAssignments(g *Group, as []MemberAssignment) error {
	byMember := make(map[string][]byte, len(as))
	for _, a := range as {
		if g.byID[a.MemberID] != nil {
			byMember[a.MemberID] = a.Assignment
		}
	}
	rec := g.record()
	for i := range rec.members {
		rec.members[i].assignment = byMember[rec.members[i].memberID]
	}
	value := groupValue(rec)
	if s.cfg.MaxRecordBytes > 0 && len(value) > s.cfg.MaxRecordBytes {
		return fmt.Errorf("group %s: metadata record of %d bytes, at most %d: %w", g.id, len(value), s.cfg.MaxRecordBytes, ErrMemberMetadataTooLarge)
	}
	g.hasRecord = true
	s.emit(groupKey(g.id), value)
	generation := g.generation
	s.onDurable = append(s.onDurable, func() {
		// A rebalance begun meanwhile makes this generation moot.
		if s.groups[g.id] != g || g.state != stateCompletingRebalance || g.generation != generation {
			return
		}
		g.state = stateStable
		for _, m := range g.members {
			m.assignment = byMember[m.id]
			s.reply(m.syncWaiter, SyncResult{ProtocolType: g.protocolType, ProtocolName: g.protocolName, Assignment: m.assignment}, nil)
			m.syncWaiter = 0
		}
	})
	return nil
}

// emitGroup writes the group's current metadata record.
func (s *Shard) emitGroup(g *Group) {
	g.hasRecord = true
	s.emit(groupKey(g.id), groupValue(g.record()))
}

// Heartbeat handles a Heartbeat (Kafka's handleHeartbeat).
func (s *Shard) Heartbeat(nowMs int64, w Waiter, req HeartbeatRequest) {
	if req.GroupID == "" {
		s.reply(w, nil, ErrInvalidGroupID)
		return
	}
	g := s.groups[req.GroupID]
	if g == nil {
		s.reply(w, nil, ErrUnknownMemberID)
		return
	}
	if g.consumer != nil {
		s.classicHeartbeatToConsumerGroup(g, nowMs, w, req)
		return
	}
	m, err := g.validateMember(req.MemberID, req.GroupInstanceID)
	if err == nil && req.GenerationID != g.generation {
		err = ErrIllegalGeneration
	}
	if err != nil {
		s.reply(w, nil, err)
		return
	}
	switch g.state {
	case stateEmpty:
		err = ErrUnknownMemberID
	case statePreparingRebalance:
		m.heartbeatDeadlineMs = nowMs + int64(m.sessionTimeoutMs)
		err = ErrRebalanceInProgress
	default:
		m.heartbeatDeadlineMs = nowMs + int64(m.sessionTimeoutMs)
	}
	s.reply(w, nil, err)
}

// Leave handles a LeaveGroup (Kafka's handleLeaveGroup, batched as in
// KIP-345). The reply is a LeaveResult.
func (s *Shard) Leave(nowMs int64, w Waiter, req LeaveRequest) {
	if req.GroupID == "" {
		s.reply(w, LeaveResult{}, ErrInvalidGroupID)
		return
	}
	g := s.groups[req.GroupID]
	res := LeaveResult{Members: make([]LeftMember, len(req.Members))}
	if g != nil && g.consumer != nil {
		for i, err := range s.classicLeaveConsumerGroup(g, nowMs, req.Members) {
			res.Members[i] = LeftMember{MemberID: req.Members[i].MemberID, GroupInstanceID: req.Members[i].GroupInstanceID, Err: err}
		}
	} else {
		for i, lm := range req.Members {
			res.Members[i] = LeftMember{MemberID: lm.MemberID, GroupInstanceID: lm.GroupInstanceID, Err: s.leaveOne(g, nowMs, lm)}
		}
	}
	if g != nil {
		s.updateActive(g)
		s.dropIfUnused(g)
	}
	s.reply(w, res, nil)
}

func (s *Shard) leaveOne(g *Group, nowMs int64, lm LeavingMember) error {
	if g == nil {
		return ErrUnknownMemberID
	}
	if lm.MemberID == "" && lm.GroupInstanceID != "" {
		m := g.byInstance[lm.GroupInstanceID]
		if m == nil {
			return ErrUnknownMemberID
		}
		s.removeMemberAndUpdate(g, m, nowMs)
		return nil
	}
	if _, ok := g.pending[lm.MemberID]; ok && lm.GroupInstanceID == "" {
		delete(g.pending, lm.MemberID)
		s.tryCompleteJoin(g, nowMs)
		return nil
	}
	m, err := g.validateMember(lm.MemberID, lm.GroupInstanceID)
	if err != nil {
		return err
	}
	s.removeMemberAndUpdate(g, m, nowMs)
	return nil
}
