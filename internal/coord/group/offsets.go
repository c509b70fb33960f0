package group

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
)

// CommitOffsets handles an OffsetCommit (the validation of Kafka's
// GroupMetadata.validateOffsetCommit). check says why a partition may not
// be committed to (the runtime: it does not exist), nil if it may; a nil
// check accepts all. The reply, a CommitResult, is released once the
// offsets are durable; a group-level error comes at once.
func (s *Shard) CommitOffsets(nowMs int64, w Waiter, req CommitRequest, check func(topic string, partition int32) error) {
	if err := checkCommitStrings(&req); err != nil {
		s.reply(w, CommitResult{}, err)
		return
	}
	g := s.groups[req.GroupID]
	if g == nil && req.GenerationID >= 0 {
		// Only a simple commit may bring a group into being.
		s.reply(w, CommitResult{}, ErrIllegalGeneration)
		return
	}
	if err := g.validateCommit(&req); err != nil {
		s.reply(w, CommitResult{}, err)
		return
	}
	g, err := s.getOrCreate(req.GroupID, nowMs)
	if err != nil {
		s.reply(w, CommitResult{}, err)
		return
	}
	if m := g.byID[req.MemberID]; m != nil {
		m.heartbeatDeadlineMs = nowMs + int64(m.sessionTimeoutMs)
	}
	expireMs := int64(-1)
	if req.RetentionTimeMs >= 0 {
		expireMs = nowMs + req.RetentionTimeMs
	}
	res := CommitResult{Topics: make([]CommitTopicResult, len(req.Topics))}
	type pendingOffset struct {
		tp TopicPartition
		o  Offset
	}
	var committed []pendingOffset
	for i, t := range req.Topics {
		res.Topics[i] = CommitTopicResult{Name: t.Name, Partitions: make([]CommitPartitionResult, len(t.Partitions))}
		for j, p := range t.Partitions {
			r := &res.Topics[i].Partitions[j]
			r.Partition = p.Partition
			if check != nil {
				r.Err = check(t.Name, p.Partition)
			}
			switch {
			case r.Err != nil:
			case s.cfg.OffsetMetadataMaxBytes > 0 && len(p.Metadata) > int(s.cfg.OffsetMetadataMaxBytes):
				r.Err = ErrOffsetMetadataTooLarge
			default:
				tp := TopicPartition{Topic: t.Name, Partition: p.Partition}
				o := Offset{Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: p.Metadata, CommitTimestampMs: nowMs, ExpireTimestampMs: expireMs,
					logOrder: s.nextLogOrder()}
				s.emit(offsetKey(g.id, tp), offsetValue(o))
				committed = append(committed, pendingOffset{tp, o})
			}
		}
	}
	if len(committed) == 0 {
		s.dropIfUnused(g)
		s.reply(w, res, nil)
		return
	}
	s.onDurable = append(s.onDurable, func() {
		// A DeleteGroups decided after this commit, in the same flush,
		// wrote its tombstones after this commit's records: on replay the
		// offsets are gone, so they must not come back in memory either.
		if s.groups[g.id] == g {
			for _, c := range committed {
				s.applyOffset(g.id, c.tp, c.o)
			}
		}
		s.reply(w, res, nil)
	})
}

// checkCommitStrings rejects a commit whose group id, member ids or topic
// names no record can hold.
func checkCommitStrings(req *CommitRequest) error {
	if err := checkGroupID(req.GroupID); err != nil {
		return err
	}
	if err := checkRecordStrings(req.MemberID, req.GroupInstanceID); err != nil {
		return err
	}
	for _, t := range req.Topics {
		if err := checkRecordStrings(t.Name); err != nil {
			return err
		}
	}
	return nil
}

// validateCommit applies Kafka's rules; g may be nil (a simple commit to
// a new group).
func (g *Group) validateCommit(req *CommitRequest) error {
	if g == nil {
		return nil
	}
	if g.consumer != nil {
		return g.validateConsumerCommit(req)
	}
	if req.GenerationID < 0 && g.state == stateEmpty {
		// Kafka accepts any commit without a generation into an empty
		// group, member id or not (a consumer using assign() with a
		// group.id it once joined with).
		return nil
	}
	if req.GenerationID >= 0 || req.MemberID != "" || req.GroupInstanceID != "" {
		if _, err := g.validateMember(req.MemberID, req.GroupInstanceID); err != nil {
			return err
		}
		if req.GenerationID != g.generation {
			return ErrIllegalGeneration
		}
	} else if g.state != stateEmpty {
		// A simple commit while the group has members: not one of them.
		return ErrUnknownMemberID
	}
	if g.state == stateCompletingRebalance {
		return ErrRebalanceInProgress
	}
	return nil
}

func (s *Shard) applyOffset(groupID string, tp TopicPartition, o Offset) {
	g := s.groups[groupID]
	if g == nil {
		g = &Group{id: groupID, state: stateEmpty, stateTimestampMs: -1}
		s.groups[groupID] = g
	}
	if g.offsets == nil {
		g.offsets = map[TopicPartition]Offset{}
	}
	g.offsets[tp] = o
}

func (s *Shard) removeOffset(groupID string, tp TopicPartition) {
	if g := s.groups[groupID]; g != nil {
		delete(g.offsets, tp)
		if len(g.offsets) == 0 {
			g.offsets = nil
		}
	}
}

// FetchOffsets returns committed offsets (OffsetFetch); it needs no
// record. A partition without a commit, or an unknown group, gets -1.
func (s *Shard) FetchOffsets(req FetchRequest) FetchResult {
	g := s.groups[req.GroupID]
	var offsets map[TopicPartition]Offset
	if g != nil {
		offsets = g.offsets
	}
	if req.Topics == nil {
		res := allOffsets(offsets)
		if req.RequireStable {
			s.markUnstable(req.GroupID, &res)
		}
		return res
	}
	res := FetchResult{Topics: make([]FetchTopicResult, len(req.Topics))}
	for i, t := range req.Topics {
		res.Topics[i] = FetchTopicResult{Name: t.Name, Partitions: make([]FetchPartitionResult, len(t.Partitions))}
		for j, p := range t.Partitions {
			r := FetchPartitionResult{Partition: p, Offset: -1, LeaderEpoch: -1}
			if o, ok := offsets[TopicPartition{t.Name, p}]; ok {
				r.Offset, r.LeaderEpoch, r.Metadata = o.Offset, o.LeaderEpoch, o.Metadata
			}
			if req.RequireStable && s.hasPendingTxnOffset(req.GroupID, TopicPartition{t.Name, p}) {
				r.Offset, r.LeaderEpoch, r.Metadata, r.Err = -1, -1, "", ErrUnstableOffsetCommit
			}
			res.Topics[i].Partitions[j] = r
		}
	}
	return res
}

func allOffsets(offsets map[TopicPartition]Offset) FetchResult {
	tps := slices.SortedFunc(maps.Keys(offsets), func(a, b TopicPartition) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	var res FetchResult
	for _, tp := range tps {
		if n := len(res.Topics); n == 0 || res.Topics[n-1].Name != tp.Topic {
			res.Topics = append(res.Topics, FetchTopicResult{Name: tp.Topic})
		}
		o := offsets[tp]
		t := &res.Topics[len(res.Topics)-1]
		t.Partitions = append(t.Partitions, FetchPartitionResult{Partition: tp.Partition, Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata})
	}
	return res
}

// DeleteGroup deletes an Empty group with its offsets (DeleteGroups); the
// reply, a DeleteGroupResult, comes once the tombstones are durable.
func (s *Shard) DeleteGroup(w Waiter, id string) {
	g := s.groups[id]
	switch {
	case g == nil:
		s.reply(w, DeleteGroupResult{GroupID: id, Err: ErrGroupIDNotFound}, nil)
		return
	case g.state != stateEmpty:
		s.reply(w, DeleteGroupResult{GroupID: id, Err: ErrNonEmptyGroup}, nil)
		return
	}
	s.removeGroup(g)
	s.replyWhenDurable(w, DeleteGroupResult{GroupID: id}, nil)
}

// removeGroup forgets an Empty group at once (later requests see it gone)
// and writes the tombstones of its offsets and metadata.
func (s *Shard) removeGroup(g *Group) {
	for _, tp := range sortedTopicPartitions(g.offsets) {
		s.emit(offsetKey(g.id, tp), nil)
	}
	if g.consumer != nil {
		s.emitConsumerGroupTombstones(g)
	} else {
		s.emit(groupKey(g.id), nil)
	}
	delete(s.groups, g.id)
	delete(s.active, g)
}

func sortedTopicPartitions(offsets map[TopicPartition]Offset) []TopicPartition {
	return slices.SortedFunc(maps.Keys(offsets), func(a, b TopicPartition) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
}

// DeleteOffsets handles an OffsetDelete (Kafka's handleDeleteOffsets); the
// reply, a DeleteOffsetsResult, comes once the tombstones are durable.
func (s *Shard) DeleteOffsets(w Waiter, req DeleteOffsetsRequest) {
	g := s.groups[req.GroupID]
	if g == nil {
		s.reply(w, DeleteOffsetsResult{}, ErrGroupIDNotFound)
		return
	}
	var subscribed map[string]bool
	if g.state != stateEmpty {
		topics, ok := g.subscribedTopics()
		if !ok {
			s.reply(w, DeleteOffsetsResult{}, ErrNonEmptyGroup)
			return
		}
		subscribed = topics
	}
	res := DeleteOffsetsResult{Topics: make([]DeleteOffsetsTopicResult, len(req.Topics))}
	var deleted []TopicPartition
	for i, t := range req.Topics {
		res.Topics[i] = DeleteOffsetsTopicResult{Name: t.Name, Partitions: make([]DeleteOffsetsPartitionResult, len(t.Partitions))}
		for j, p := range t.Partitions {
			r := &res.Topics[i].Partitions[j]
			r.Partition = p
			tp := TopicPartition{t.Name, p}
			switch {
			case subscribed[t.Name]:
				r.Err = ErrGroupSubscribedToTopic
			default:
				if _, ok := g.offsets[tp]; ok && !slices.Contains(deleted, tp) {
					s.emit(offsetKey(g.id, tp), nil)
					deleted = append(deleted, tp)
				}
			}
		}
	}
	s.onDurable = append(s.onDurable, func() {
		for _, tp := range deleted {
			s.removeOffset(g.id, tp)
		}
		s.reply(w, res, nil)
	})
}

// ExpireOffsets removes offsets past retention (Kafka's
// removeExpiredOffsets): for an Empty group, offsets.retention after it
// became empty (after the commit for a group that never had members);
// for a Stable consumer group, offsets of topics it no longer subscribes
// to, counted from the commit. A commit's own expire timestamp (v1–4
// retention_time_ms) wins. A group left Empty with no offsets is deleted.
func (s *Shard) ExpireOffsets(nowMs int64) {
	ids := slices.Sorted(maps.Keys(s.groups))
	for _, id := range ids {
		g := s.groups[id]
		expired := g.expiredOffsets(nowMs, s.cfg.OffsetsRetentionMs)
		for _, tp := range expired {
			s.emit(offsetKey(g.id, tp), nil)
		}
		remaining := len(g.offsets) - len(expired)
		if g.state == stateEmpty && len(g.members) == 0 && len(g.pending) == 0 && remaining == 0 {
			// Gone: expired, or a group that holds nothing at all.
			if g.hasRecord {
				s.emit(groupKey(g.id), nil)
			}
			if g.consumer != nil {
				s.emitConsumerGroupTombstones(g)
			}
			delete(s.groups, g.id)
			delete(s.active, g)
			continue
		}
		if len(expired) > 0 {
			s.onDurable = append(s.onDurable, func() {
				for _, tp := range expired {
					s.removeOffset(g.id, tp)
				}
			})
		}
	}
}

func (g *Group) expiredOffsets(nowMs, retentionMs int64) []TopicPartition {
	var base func(o Offset) int64
	var subscribed map[string]bool
	switch {
	case g.state == stateEmpty && g.protocolType != "" && g.stateTimestampMs >= 0:
		base = func(Offset) int64 { return g.stateTimestampMs }
	case g.state == stateEmpty:
		base = func(o Offset) int64 { return o.CommitTimestampMs }
	case g.state == stateStable:
		topics, ok := g.subscribedTopics()
		if !ok {
			return nil
		}
		subscribed = topics
		base = func(o Offset) int64 { return o.CommitTimestampMs }
	default:
		return nil
	}
	var out []TopicPartition
	for _, tp := range sortedTopicPartitions(g.offsets) {
		if subscribed[tp.Topic] {
			continue
		}
		o := g.offsets[tp]
		if o.ExpireTimestampMs >= 0 && g.state == stateEmpty {
			if o.ExpireTimestampMs <= nowMs {
				out = append(out, tp)
			}
			continue
		}
		if base(o)+retentionMs <= nowMs {
			out = append(out, tp)
		}
	}
	return out
}

// Load replays one record of the shard's partition, in log order, to
// rebuild the shard at start-up (Kafka's GroupMetadataManager.loadGroups):
// later records replace earlier ones, tombstones delete. Members of a
// loaded group get a full session from nowMs to heartbeat again. Share
// groups' records are skipped: they are internal/share's.
func (s *Shard) Load(nowMs int64, key, value []byte) error {
	if isShareGroupRecord(key) {
		return nil
	}
	if t, ok := consumerRecordType(key); ok {
		return s.loadConsumerRecord(nowMs, t, key, value)
	}
	k, err := parseKey(key)
	if err != nil {
		return err
	}
	if !k.isGroup {
		if value == nil {
			s.removeOffset(k.group, k.tp)
			if g := s.groups[k.group]; g != nil {
				s.dropIfUnused(g)
			}
			return nil
		}
		o, err := parseOffsetValue(value)
		if err != nil {
			return fmt.Errorf("offset of %s %s-%d: %w", k.group, k.tp.Topic, k.tp.Partition, err)
		}
		o.logOrder = s.nextLogOrder()
		s.applyOffset(k.group, k.tp, o)
		return nil
	}
	if value == nil {
		if g := s.groups[k.group]; g != nil && g.consumer == nil {
			// The classic group is gone, deleted (its offsets' tombstones
			// came first) or converted to a consumer group (its offsets
			// stay): only what the record held goes.
			offsets := g.offsets
			*g = Group{id: g.id, state: stateEmpty, stateTimestampMs: g.stateTimestampMs, offsets: offsets}
			delete(s.active, g)
			s.dropIfUnused(g)
		}
		return nil
	}
	r, err := parseGroupValue(value)
	if err != nil {
		return fmt.Errorf("group %s: %w", k.group, err)
	}
	s.loadGroup(nowMs, k.group, r)
	return nil
}

func (s *Shard) loadGroup(nowMs int64, id string, r *groupRecord) {
	old := s.groups[id]
	g := &Group{id: id, protocolType: r.protocolType, generation: r.generation, protocolName: r.protocol,
		stateTimestampMs: r.stateTimestampMs, hasRecord: true, state: stateEmpty}
	if old != nil {
		g.offsets = old.offsets
		delete(s.active, old)
	}
	for _, rm := range r.members {
		m := &member{id: rm.memberID, instanceID: rm.instanceID, clientID: rm.clientID, clientHost: rm.clientHost,
			rebalanceTimeoutMs: rm.rebalanceTimeoutMs, sessionTimeoutMs: rm.sessionTimeoutMs,
			protocols: []Protocol{{Name: r.protocol, Metadata: rm.subscription}}, assignment: rm.assignment,
			heartbeatDeadlineMs: nowMs + int64(rm.sessionTimeoutMs)}
		g.add(m)
	}
	if len(g.members) > 0 {
		g.state = stateStable
		g.leaderID = r.leader
		if g.byID[r.leader] == nil {
			g.leaderID = g.members[0].id
		}
	}
	s.groups[id] = g
	s.updateActive(g)
}

// EachOffset visits every committed offset of the shard's groups, in no
// order, for metrics (consumer lag).
func (s *Shard) EachOffset(visit func(groupID string, tp TopicPartition, offset int64)) {
	for id, g := range s.groups {
		for tp, o := range g.offsets {
			visit(id, tp, o.Offset)
		}
	}
}
