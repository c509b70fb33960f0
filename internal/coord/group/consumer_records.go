package group

import (
	"encoding/binary"
	"fmt"

	"github.com/sluicelog/sluice/internal/metadata"
)

// The __consumer_offsets records of consumer-protocol groups, in Kafka
// 4.1's shapes (its ConsumerGroup*Key/Value schemas), so the topic reads as
// Kafka's would. On disk: they must not change. A key is its record type
// as an int16 "version", then non-flexible strings (int16 length). A value
// is an int16 version (0) and a flexible body: compact strings and arrays
// (uvarint length+1, 0 for null), uuids as 16 bytes, and a tagged-field
// section (uvarint count, then tag, size, bytes) closing every struct.
//
//	3 ConsumerGroupMetadata              key: group | value: epoch int32, tag 0 = metadata hash int64
//	4 ConsumerGroupPartitionMetadata     read and ignored (Kafka 4.1 no longer needs it)
//	5 ConsumerGroupMemberMetadata        key: group, member | value: instance_id?, rack_id?, client_id,
//	                                     client_host, subscribed_topic_names [], subscribed_topic_regex?,
//	                                     rebalance_timeout_ms int32, server_assignor?,
//	                                     tag 0 = classic_member_metadata? (a classic member's): int8 1
//	                                     (present), session_timeout_ms int32, supported_protocols []
//	                                     {name, metadata compact bytes}
//	6 ConsumerGroupTargetAssignmentMetadata key: group | value: assignment_epoch int32
//	7 ConsumerGroupTargetAssignmentMember key: group, member | value: topic_partitions [] {topic_id uuid, partitions []int32}
//	8 ConsumerGroupCurrentMemberAssignment key: group, member | value: member_epoch int32,
//	                                     previous_member_epoch int32, state int8, assigned_partitions [],
//	                                     partitions_pending_revocation [] (same struct as 7's)
//	16 ConsumerGroupRegularExpression    read and ignored: Sluice resolves regexes from the image
//
// Sluice's metadata hash is its own (FNV-1a, not Kafka's), which is fine:
// it is only compared with hashes Sluice computed.
const (
	recordConsumerGroupMetadata          = 3
	recordConsumerGroupPartitionMetadata = 4
	recordConsumerGroupMemberMetadata    = 5
	recordConsumerGroupTargetMetadata    = 6
	recordConsumerGroupTargetMember      = 7
	recordConsumerGroupCurrentAssignment = 8
	recordConsumerGroupRegex             = 16 // 15 is the share coordinator's ShareGroupStatePartitionMetadata

	// Types 10-15 are share groups' (internal/coord/sharegroup), in the
	// same partitions: internal/share replays them, this shard skips them.
	recordShareGroupFirst = 10
	recordShareGroupLast  = 15
)

// isShareGroupRecord says whether a key is a share group's record.
func isShareGroupRecord(key []byte) bool {
	if len(key) < 2 {
		return false
	}
	v := int16(binary.BigEndian.Uint16(key))
	return v >= recordShareGroupFirst && v <= recordShareGroupLast
}

func consumerKey(recordType int16, group string, member ...string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(recordType))
	b = appendString(b, group)
	for _, m := range member {
		b = appendString(b, m)
	}
	return b
}

func consumerGroupKey(group string) []byte {
	return consumerKey(recordConsumerGroupMetadata, group)
}
func consumerMemberKey(group, member string) []byte {
	return consumerKey(recordConsumerGroupMemberMetadata, group, member)
}
func consumerTargetMetadataKey(group string) []byte {
	return consumerKey(recordConsumerGroupTargetMetadata, group)
}
func consumerTargetMemberKey(group, member string) []byte {
	return consumerKey(recordConsumerGroupTargetMember, group, member)
}
func consumerCurrentKey(group, member string) []byte {
	return consumerKey(recordConsumerGroupCurrentAssignment, group, member)
}

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendCompactString(b []byte, s string) []byte {
	b = appendUvarint(b, uint64(len(s))+1)
	return append(b, s...)
}

// appendCompactNullable writes "" as null.
func appendCompactNullable(b []byte, s string) []byte {
	if s == "" {
		return appendUvarint(b, 0)
	}
	return appendCompactString(b, s)
}

func appendNoTags(b []byte) []byte { return append(b, 0) }

func appendTopicPartitions(b []byte, tps []ConsumerTopicPartitions) []byte {
	b = appendUvarint(b, uint64(len(tps))+1)
	for _, t := range tps {
		b = append(b, t.TopicID[:]...)
		b = appendUvarint(b, uint64(len(t.Partitions))+1)
		for _, p := range t.Partitions {
			b = binary.BigEndian.AppendUint32(b, uint32(p))
		}
		b = appendNoTags(b)
	}
	return b
}

func consumerGroupValue(c *consumerGroup) []byte {
	b := binary.BigEndian.AppendUint16(nil, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(c.epoch))
	b = appendUvarint(b, 1) // one tagged field
	b = appendUvarint(b, 0) // tag 0: metadata hash
	b = appendUvarint(b, 8)
	return binary.BigEndian.AppendUint64(b, c.metadataHash)
}

func consumerMemberValue(m *consumerMember) []byte {
	b := binary.BigEndian.AppendUint16(nil, 0)
	b = appendCompactNullable(b, m.instanceID)
	b = appendCompactNullable(b, m.rackID)
	b = appendCompactString(b, m.clientID)
	b = appendCompactString(b, m.clientHost)
	b = appendUvarint(b, uint64(len(m.subscribedTopicNames))+1)
	for _, n := range m.subscribedTopicNames {
		b = appendCompactString(b, n)
	}
	b = appendCompactNullable(b, m.subscribedTopicRegex)
	b = binary.BigEndian.AppendUint32(b, uint32(m.rebalanceTimeoutMs))
	b = appendCompactNullable(b, m.serverAssignor)
	if m.classic == nil {
		return appendNoTags(b)
	}
	body := classicMemberMetadataValue(m.classic)
	b = appendUvarint(b, 1) // one tagged field
	b = appendUvarint(b, 0) // tag 0: ClassicMemberMetadata
	b = appendUvarint(b, uint64(len(body)))
	return append(b, body...)
}

// classicMemberMetadataValue is the nullable ClassicMemberMetadata struct:
// a byte 1 (present; -1 would be null), then its fields and tags.
func classicMemberMetadataValue(c *classicMemberMetadata) []byte {
	b := []byte{1}
	b = binary.BigEndian.AppendUint32(b, uint32(c.sessionTimeoutMs))
	b = appendUvarint(b, uint64(len(c.protocols))+1)
	for _, p := range c.protocols {
		b = appendCompactString(b, p.Name)
		b = appendUvarint(b, uint64(len(p.Metadata))+1)
		b = append(b, p.Metadata...)
		b = appendNoTags(b)
	}
	return appendNoTags(b)
}

// parseClassicMemberMetadata reads the tagged ClassicMemberMetadata; nil
// when null.
func parseClassicMemberMetadata(b []byte) (*classicMemberMetadata, error) {
	r := flexReader{reader{b: b}}
	if r.int8() != 1 {
		return nil, r.err
	}
	c := &classicMemberMetadata{sessionTimeoutMs: r.int32()}
	n := r.compactLength()
	for i := 0; i < n && r.err == nil; i++ {
		p := Protocol{Name: r.compactString()}
		if size := r.compactLength(); size >= 0 && r.need(size) {
			p.Metadata = append([]byte(nil), r.b[:size]...)
			r.b = r.b[size:]
		}
		r.tags(nil)
		c.protocols = append(c.protocols, p)
	}
	r.tags(nil)
	if r.err == nil && len(c.protocols) == 0 {
		r.err = ErrCorruptRecord // a classic member always has a protocol
	}
	return c, r.err
}

func consumerTargetMetadataValue(epoch int32) []byte {
	b := binary.BigEndian.AppendUint16(nil, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(epoch))
	return appendNoTags(b)
}

func consumerTargetMemberValue(target partitionSet) []byte {
	b := binary.BigEndian.AppendUint16(nil, 0)
	b = appendTopicPartitions(b, topicPartitionsOf(target))
	return appendNoTags(b)
}

func consumerCurrentValue(m *consumerMember) []byte {
	b := binary.BigEndian.AppendUint16(nil, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(m.memberEpoch))
	b = binary.BigEndian.AppendUint32(b, uint32(m.previousMemberEpoch))
	b = append(b, byte(m.state))
	b = appendTopicPartitions(b, topicPartitionsOf(m.assigned))
	b = appendTopicPartitions(b, topicPartitionsOf(m.pendingRevocation))
	return appendNoTags(b)
}

// flexReader reads a flexible-version body on top of reader.
type flexReader struct{ reader }

func (r *flexReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = ErrCorruptRecord
		return 0
	}
	r.b = r.b[n:]
	return v
}

// compactLength is a compact length: -1 for null.
func (r *flexReader) compactLength() int {
	v := r.uvarint()
	if v > uint64(len(r.b))+1 {
		r.err = ErrCorruptRecord
		return -1
	}
	return int(v) - 1
}

func (r *flexReader) compactString() string {
	n := r.compactLength()
	if n < 0 || !r.need(n) {
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *flexReader) int8() int8 {
	if !r.need(1) {
		return 0
	}
	v := int8(r.b[0])
	r.b = r.b[1:]
	return v
}

// tags reads a tagged-field section, handing each field to f (may be nil).
func (r *flexReader) tags(f func(tag uint64, b []byte)) {
	n := r.uvarint()
	for range n {
		tag, size := r.uvarint(), r.uvarint()
		if r.err != nil || size > uint64(len(r.b)) {
			r.err = ErrCorruptRecord
			return
		}
		if f != nil {
			f(tag, r.b[:size])
		}
		r.b = r.b[size:]
	}
}

func (r *flexReader) topicPartitions() partitionSet {
	s := partitionSet{}
	n := r.compactLength()
	for i := 0; i < n && r.err == nil; i++ {
		var id metadata.UUID
		if !r.need(16) {
			break
		}
		copy(id[:], r.b)
		r.b = r.b[16:]
		np := r.compactLength()
		if np > 0 && !r.need(np*4) {
			break
		}
		for range max(np, 0) {
			s[partitionKey{id, r.int32()}] = struct{}{}
		}
		r.tags(nil)
	}
	return s
}

// consumerRecordType returns a key's record type when it is one of the
// consumer-protocol records.
func consumerRecordType(key []byte) (int16, bool) {
	if len(key) < 2 {
		return 0, false
	}
	v := int16(binary.BigEndian.Uint16(key))
	switch v {
	case recordConsumerGroupMetadata, recordConsumerGroupPartitionMetadata, recordConsumerGroupMemberMetadata,
		recordConsumerGroupTargetMetadata, recordConsumerGroupTargetMember, recordConsumerGroupCurrentAssignment,
		recordConsumerGroupRegex:
		return v, true
	}
	return 0, false
}

// loadConsumerRecord replays one consumer-protocol record.
func (s *Shard) loadConsumerRecord(nowMs int64, recordType int16, key, value []byte) error {
	if recordType == recordConsumerGroupPartitionMetadata || recordType == recordConsumerGroupRegex {
		return nil
	}
	kr := reader{b: key[2:]}
	groupID := kr.string()
	memberID := ""
	if recordType != recordConsumerGroupMetadata && recordType != recordConsumerGroupTargetMetadata {
		memberID = kr.string()
	}
	if kr.err != nil {
		return fmt.Errorf("consumer group record type %d key: %w", recordType, kr.err)
	}
	g := s.groups[groupID]
	if value == nil {
		s.loadConsumerTombstone(g, recordType, memberID)
		return nil
	}
	if g == nil {
		g = &Group{id: groupID, state: stateEmpty, stateTimestampMs: nowMs}
		s.groups[groupID] = g
	}
	if g.consumer == nil {
		g.consumer = newConsumerGroup()
		g.protocolType = GroupTypeConsumer
	}
	r := flexReader{reader{b: value}}
	if v := r.int16(); v != 0 {
		return fmt.Errorf("consumer group record type %d value version %d: %w", recordType, v, ErrCorruptRecord)
	}
	c := g.consumer
	switch recordType {
	case recordConsumerGroupMetadata:
		c.epoch = r.int32()
		r.tags(func(tag uint64, b []byte) {
			if tag == 0 && len(b) == 8 {
				c.metadataHash = binary.BigEndian.Uint64(b)
			}
		})
	case recordConsumerGroupTargetMetadata:
		c.assignmentEpoch = r.int32()
	default:
		m := s.loadedMember(g, nowMs, memberID)
		loadMemberRecord(&r, recordType, m, c)
		if m.classic != nil {
			m.sessionDeadlineMs = nowMs + int64(m.classic.sessionTimeoutMs)
		}
		c.invalidateSubscriptions()
	}
	if r.err != nil {
		return fmt.Errorf("consumer group %s record type %d: %w", groupID, recordType, r.err)
	}
	s.updateActive(g)
	return nil
}

// loadedMember finds or creates a member being replayed; its session
// starts anew at load.
func (s *Shard) loadedMember(g *Group, nowMs int64, id string) *consumerMember {
	c := g.consumer
	m := c.members[id]
	if m == nil {
		m = &consumerMember{id: id, assigned: partitionSet{}, pendingRevocation: partitionSet{}, target: partitionSet{}, revocationDeadlineMs: -1}
		c.members[id] = m
	}
	m.sessionDeadlineMs = nowMs + int64(s.cfg.ConsumerSessionTimeoutMs)
	g.state = stateStable
	return m
}

func loadMemberRecord(r *flexReader, recordType int16, m *consumerMember, c *consumerGroup) {
	switch recordType {
	case recordConsumerGroupMemberMetadata:
		m.instanceID, m.rackID = r.compactString(), r.compactString()
		m.clientID, m.clientHost = r.compactString(), r.compactString()
		n := r.compactLength()
		if n > len(r.b) {
			r.err = ErrCorruptRecord
			return
		}
		m.subscribedTopicNames = nil
		for range max(n, 0) {
			m.subscribedTopicNames = append(m.subscribedTopicNames, r.compactString())
		}
		m.subscribedTopicRegex = r.compactString()
		m.regex = nil
		if m.subscribedTopicRegex != "" {
			m.regex, _ = compileSubscriptionRegex(m.subscribedTopicRegex)
		}
		m.rebalanceTimeoutMs = r.int32()
		m.serverAssignor = r.compactString()
		m.classic = nil
		r.tags(func(tag uint64, b []byte) {
			if tag == 0 && r.err == nil {
				m.classic, r.err = parseClassicMemberMetadata(b)
			}
		})
		if m.instanceID != "" {
			c.byInstance[m.instanceID] = m
		}
	case recordConsumerGroupTargetMember:
		m.target = r.topicPartitions()
	case recordConsumerGroupCurrentAssignment:
		m.memberEpoch, m.previousMemberEpoch = r.int32(), r.int32()
		m.state = memberState(r.int8())
		for p, o := range c.owner {
			if o == m.id {
				delete(c.owner, p)
			}
		}
		m.assigned, m.pendingRevocation = r.topicPartitions(), r.topicPartitions()
		for _, set := range []partitionSet{m.assigned, m.pendingRevocation} {
			for p := range set {
				c.owner[p] = m.id
			}
		}
		m.left = m.memberEpoch == epochStaticLeave
	}
}

// loadConsumerTombstone replays a deletion.
func (s *Shard) loadConsumerTombstone(g *Group, recordType int16, memberID string) {
	if g == nil || g.consumer == nil {
		return
	}
	c := g.consumer
	switch recordType {
	case recordConsumerGroupMemberMetadata:
		if m := c.members[memberID]; m != nil {
			for p, o := range c.owner {
				if o == m.id {
					delete(c.owner, p)
				}
			}
			delete(c.members, memberID)
			if m.instanceID != "" && c.byInstance[m.instanceID] == m {
				delete(c.byInstance, m.instanceID)
			}
			c.invalidateSubscriptions()
		}
		if len(c.members) == 0 {
			g.state = stateEmpty
		}
	case recordConsumerGroupMetadata:
		// The group was deleted (or became a classic group).
		g.consumer = nil
		g.protocolType = ""
		g.state = stateEmpty
		s.dropIfUnused(g)
	}
	s.updateActive(g)
}

// emitConsumerGroupTombstones deletes an empty consumer group's records.
func (s *Shard) emitConsumerGroupTombstones(g *Group) {
	s.emit(consumerTargetMetadataKey(g.id), nil)
	s.emit(consumerGroupKey(g.id), nil)
}
