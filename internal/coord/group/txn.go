package group

import "fmt"

// Transactional offset commits (Kafka's TxnOffsetCommit and
// GroupMetadata's pending transactional offsets, KIP-98 and KIP-447). A
// producer in a transaction commits its consumer's offsets through the
// group coordinator: the records go to __consumer_offsets in a
// transactional batch of that producer, and stay pending (durable but
// invisible to OffsetFetch) until the transaction coordinator writes the
// producer's COMMIT marker to the partition (CompleteTxn with commit: they
// become the group's offsets) or its ABORT marker (they are dropped).
// Replaying the partition does the same from the batches and markers in
// log order (LoadTxnOffset, CompleteTxn).
//
// As in Kafka, a committed transactional offset replaces the group's
// offset only if its record comes later in the log: a plain commit for
// the partition written between the transaction's offset commit and its
// marker stays (Offset.logOrder).

// maxPendingTxnOffsets bounds the pending transactional offsets of one
// shard: each is memory held until a marker arrives. Kafka has no bound.
const maxPendingTxnOffsets = 1 << 20

// TxnCommitRequest is a TxnOffsetCommit: a CommitRequest (its
// RetentionTimeMs unused) made inside the producer's transaction.
type TxnCommitRequest struct {
	CommitRequest
	TransactionalID string
	ProducerID      int64
	ProducerEpoch   int16
}

// TxnCommitOffsets handles a TxnOffsetCommit (Kafka's
// doTxnCommitOffsets): the member id and generation are checked when
// given, the records written, and the offsets kept pending once durable.
// The reply is a CommitResult, as for CommitOffsets.
func (s *Shard) TxnCommitOffsets(nowMs int64, w Waiter, req TxnCommitRequest, check func(topic string, partition int32) error) {
	if err := checkCommitStrings(&req.CommitRequest); err != nil {
		s.reply(w, CommitResult{}, err)
		return
	}
	if err := s.groups[req.GroupID].validateTxnCommit(&req); err != nil {
		s.reply(w, CommitResult{}, err)
		return
	}
	res := CommitResult{Topics: make([]CommitTopicResult, len(req.Topics))}
	type pendingOffset struct {
		tp TopicPartition
		o  Offset
	}
	var pending []pendingOffset
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
			case s.pendingTxnOffsets+len(pending) >= maxPendingTxnOffsets:
				r.Err = fmt.Errorf("%d transactional offsets await their markers: %w", s.pendingTxnOffsets, ErrTooManyGroups)
			default:
				tp := TopicPartition{Topic: t.Name, Partition: p.Partition}
				o := Offset{Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: p.Metadata, CommitTimestampMs: nowMs, ExpireTimestampMs: -1,
					logOrder: s.nextLogOrder()}
				s.records = append(s.records, Record{Key: offsetKey(req.GroupID, tp), Value: offsetValue(o),
					Transactional: true, ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch})
				pending = append(pending, pendingOffset{tp, o})
			}
		}
	}
	if len(pending) == 0 {
		s.reply(w, res, nil)
		return
	}
	s.onDurable = append(s.onDurable, func() {
		for _, p := range pending {
			s.addPendingTxnOffset(req.ProducerID, req.GroupID, p.tp, p.o)
		}
		s.reply(w, res, nil)
	})
}

// Refuse answers a step's caller with err at once, for a check the
// runtime makes before the state machine decides anything.
func (s *Shard) Refuse(w Waiter, err error) { s.reply(w, nil, err) }

// validateTxnCommit applies Kafka's checks: a named member must belong to
// the group, a given generation must be the group's. A group that does not
// exist accepts a commit without them (the offsets create it on COMMIT).
func (g *Group) validateTxnCommit(req *TxnCommitRequest) error {
	if g == nil {
		if req.MemberID != "" || req.GenerationID >= 0 {
			return ErrIllegalGeneration
		}
		return nil
	}
	if g.consumer != nil {
		return g.validateConsumerTxnCommit(req)
	}
	if req.MemberID != "" || req.GroupInstanceID != "" {
		if _, err := g.validateMember(req.MemberID, req.GroupInstanceID); err != nil {
			return err
		}
	}
	if req.GenerationID >= 0 && req.GenerationID != g.generation {
		return ErrIllegalGeneration
	}
	return nil
}

// validateConsumerTxnCommit checks a TxnOffsetCommit to a consumer group:
// a named member must be in it, and a given generation is its member
// epoch (ILLEGAL_GENERATION for a classic member, STALE_MEMBER_EPOCH for
// a consumer-protocol one, as Kafka's validateMemberEpoch).
func (g *Group) validateConsumerTxnCommit(req *TxnCommitRequest) error {
	if req.MemberID == "" && req.GroupInstanceID == "" {
		if req.GenerationID >= 0 {
			return ErrIllegalGeneration
		}
		return nil
	}
	m := g.consumer.members[req.MemberID]
	if m == nil || m.left {
		return fmt.Errorf("member %q of group %q: %w", req.MemberID, g.id, ErrUnknownMemberID)
	}
	if req.GenerationID < 0 || req.GenerationID == m.memberEpoch {
		return nil
	}
	if m.classic != nil {
		return fmt.Errorf("classic member %q commits at generation %d, its epoch is %d: %w", m.id, req.GenerationID, m.memberEpoch, ErrIllegalGeneration)
	}
	return fmt.Errorf("member %q commits at epoch %d, its epoch is %d: %w", m.id, req.GenerationID, m.memberEpoch, ErrStaleMemberEpoch)
}

func (s *Shard) addPendingTxnOffset(producerID int64, groupID string, tp TopicPartition, o Offset) {
	byGroup := s.pendingTxn[producerID]
	if byGroup == nil {
		byGroup = map[string]map[TopicPartition]Offset{}
		s.pendingTxn[producerID] = byGroup
	}
	offsets := byGroup[groupID]
	if offsets == nil {
		offsets = map[TopicPartition]Offset{}
		byGroup[groupID] = offsets
	}
	if _, ok := offsets[tp]; !ok {
		s.pendingTxnOffsets++
	}
	offsets[tp] = o
}

// CompleteTxn applies the producer's marker on this shard's partition:
// COMMIT makes its pending offsets the groups' committed offsets, ABORT
// drops them. The marker is the record, so nothing is written; it is
// called once the marker is durable, and by replay when it meets one
// (with Waiter 0). The reply, nil, comes at once.
func (s *Shard) CompleteTxn(w Waiter, producerID int64, commit bool) {
	s.reply(w, nil, nil)
	byGroup, ok := s.pendingTxn[producerID]
	if !ok {
		return
	}
	delete(s.pendingTxn, producerID)
	for groupID, offsets := range byGroup {
		s.pendingTxnOffsets -= len(offsets)
		if !commit {
			continue
		}
		for tp, o := range offsets {
			// Kafka's rule: a plain commit written after the
			// transaction's offset (in the log) stays.
			if g := s.groups[groupID]; g != nil {
				if cur, ok := g.offsets[tp]; ok && cur.logOrder > o.logOrder {
					continue
				}
			}
			s.applyOffset(groupID, tp, o)
		}
	}
}

// LoadTxnOffset replays a record of a transactional batch of producerID:
// an offset commit becomes pending, as when it was first written.
func (s *Shard) LoadTxnOffset(producerID int64, key, value []byte) error {
	k, err := parseKey(key)
	if err != nil {
		return err
	}
	if k.isGroup || value == nil {
		return fmt.Errorf("transactional batch of producer %d holds a group record or tombstone: %w", producerID, ErrInvalidRequest)
	}
	o, err := parseOffsetValue(value)
	if err != nil {
		return fmt.Errorf("transactional offset of %s %s-%d: %w", k.group, k.tp.Topic, k.tp.Partition, err)
	}
	o.logOrder = s.nextLogOrder()
	s.addPendingTxnOffset(producerID, k.group, k.tp, o)
	return nil
}

// hasPendingTxnOffset says whether a transaction holds an offset of the
// group's partition that is not yet committed or aborted.
func (s *Shard) hasPendingTxnOffset(groupID string, tp TopicPartition) bool {
	for _, byGroup := range s.pendingTxn {
		if _, ok := byGroup[groupID][tp]; ok {
			return true
		}
	}
	return false
}

// markUnstable answers ErrUnstableOffsetCommit (KIP-447's require_stable)
// for the listed partitions with a pending transactional offset.
func (s *Shard) markUnstable(groupID string, res *FetchResult) {
	for i := range res.Topics {
		t := &res.Topics[i]
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if s.hasPendingTxnOffset(groupID, TopicPartition{t.Name, p.Partition}) {
				p.Offset, p.LeaderEpoch, p.Metadata, p.Err = -1, -1, "", ErrUnstableOffsetCommit
			}
		}
	}
}
