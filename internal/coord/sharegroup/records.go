package sharegroup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
)

// A share group's membership in __consumer_offsets, in Kafka 4.1's
// records, so the group (its epoch, members, subscriptions and
// assignments) survives a restart and a coordinator move. These layouts
// are on disk: they must not change. Keys are not flexible (int16 length
// strings); values are version 0, flexible (compact strings and arrays,
// empty tagged fields):
//
//	10 ShareGroupMemberMetadata      key group, member
//	   value rack_id nullable string | client_id | client_host | subscribed_topic_names []string
//	11 ShareGroupMetadata            key group
//	   value epoch int32 | metadata_hash int64 (written 0: Sluice reassigns on partition counts)
//	12 ShareGroupTargetAssignmentMetadata key group
//	   value assignment_epoch int32
//	13 ShareGroupTargetAssignmentMember   key group, member
//	   value topic_partitions [] { topic_id uuid | partitions []int32 }
//	14 ShareGroupCurrentMemberAssignment  key group, member
//	   value member_epoch int32 | previous_member_epoch int32 | state int8 |
//	         assigned_partitions [] { topic_id uuid | partitions []int32 }
//
//	15 ShareGroupStatePartitionMetadata   key group
//	   value initializing_topics [] topic_partitions_info | initialized_topics [] topic_partitions_info |
//	         deleting_topics [] { topic_id uuid | topic_name string }
//	   topic_partitions_info: topic_id uuid | topic_name string | partitions []int32
//
// A null value is a tombstone. Type 15 is the group's share state: the
// partitions whose state may exist with the share coordinator. Kafka's
// group coordinator initialises them (InitializeShareGroupState) and moves
// them from initializing to initialized; in Sluice a share partition's
// leader starts its own state at first use, so every partition is
// written as initialized at once, in the heartbeat's batch that first
// assigns it, before that heartbeat is answered. Each value is the whole
// truth (the newest replaces the rest), so compaction loses nothing.
// Initializing topics of a log Kafka wrote are read as initialized: their
// state may exist too.
const (
	recordMemberMetadata      = 10
	recordGroupMetadata       = 11
	recordTargetMetadata      = 12
	recordTargetMember        = 13
	recordCurrentAssignment   = 14
	recordStatePartitionMeta  = 15
	groupRecordValueVersion   = 0
	memberStateStable         = 0
	maxLoadedTopicsPerRecord  = 1 << 16
	maxLoadedPartitionsPerTop = 1 << 20
)

// ErrCorruptRecord: a share group record of __consumer_offsets that does
// not parse.
var ErrCorruptRecord = errors.New("corrupt share group record")

// Record is one __consumer_offsets record: Value nil is a tombstone.
type Record struct {
	Key, Value []byte
}

// IsGroupRecord says whether a __consumer_offsets key is a share group's.
func IsGroupRecord(key []byte) bool {
	if len(key) < 2 {
		return false
	}
	t := int16(binary.BigEndian.Uint16(key))
	return t >= recordMemberMetadata && t <= recordStatePartitionMeta
}

// savedMember is a member as the records last written describe it.
type savedMember struct {
	rack, client, host string
	subs               []string
	assignment         map[string][]int32
	epoch              int32
}

func (m *Member) saved() *savedMember {
	a := make(map[string][]int32, len(m.Assignment))
	for t, ps := range m.Assignment {
		a[t] = slices.Clone(ps)
	}
	return &savedMember{rack: m.RackID, client: m.ClientID, host: m.ClientHost, subs: slices.Clone(m.SubscribedTopicNames), assignment: a, epoch: m.Epoch}
}

func sameAssignment(a, b map[string][]int32) bool {
	return maps.EqualFunc(a, b, func(x, y []int32) bool { return slices.Equal(x, y) })
}

// TakeRecords returns the records that bring __consumer_offsets from what
// was last written of the group to its state now (none when nothing
// changed), and counts them as written. topicID names a topic's id; a
// topic without one (deleted) is left out of the assignments.
func (g *Group) TakeRecords(topicID func(string) ([16]byte, bool)) []Record {
	if g.saved == nil {
		g.saved = map[string]*savedMember{}
	}
	var out []Record
	if g.Epoch != g.savedEpoch || !g.written {
		out = append(out, Record{Key: groupKey(recordGroupMetadata, g.ID, ""), Value: groupMetadataValue(g.Epoch)})
	}
	ids := slices.Sorted(maps.Keys(g.members))
	for _, id := range ids {
		m, s := g.members[id], g.saved[id]
		if s == nil || s.rack != m.RackID || s.client != m.ClientID || s.host != m.ClientHost || !slices.Equal(s.subs, m.SubscribedTopicNames) {
			out = append(out, Record{Key: groupKey(recordMemberMetadata, g.ID, id), Value: memberMetadataValue(m)})
		}
	}
	if g.Epoch != g.savedEpoch || !g.written {
		v := binary.BigEndian.AppendUint32(versionPrefix(), uint32(g.Epoch))
		out = append(out, Record{Key: groupKey(recordTargetMetadata, g.ID, ""), Value: append(v, 0)})
	}
	for _, id := range ids {
		m, s := g.members[id], g.saved[id]
		if s == nil || !sameAssignment(s.assignment, m.Assignment) {
			v := appendTopicPartitions(versionPrefix(), m.Assignment, topicID)
			out = append(out, Record{Key: groupKey(recordTargetMember, g.ID, id), Value: append(v, 0)})
		}
		if s == nil || s.epoch != m.Epoch {
			prev := int32(0)
			if s != nil {
				prev = s.epoch
			}
			v := binary.BigEndian.AppendUint32(versionPrefix(), uint32(m.Epoch))
			v = binary.BigEndian.AppendUint32(v, uint32(prev))
			v = append(v, memberStateStable)
			v = appendTopicPartitions(v, m.Assignment, topicID)
			out = append(out, Record{Key: groupKey(recordCurrentAssignment, g.ID, id), Value: append(v, 0)})
		}
	}
	for _, id := range slices.Sorted(maps.Keys(g.saved)) {
		if g.members[id] == nil {
			out = append(out, memberTombstones(g.ID, id)...)
		}
	}
	if r, ok := g.takeStateRecord(topicID); ok {
		out = append(out, r)
	}
	g.savedEpoch, g.written = g.Epoch, true
	// Only what changed is copied: a steady heartbeat copies nothing.
	for id, m := range g.members {
		if s := g.saved[id]; s == nil || !s.describes(m) {
			g.saved[id] = m.saved()
		}
	}
	for id := range g.saved {
		if g.members[id] == nil {
			delete(g.saved, id)
		}
	}
	return out
}

// describes says whether the saved member is m as it is now.
func (s *savedMember) describes(m *Member) bool {
	return s.rack == m.RackID && s.client == m.ClientID && s.host == m.ClientHost && s.epoch == m.Epoch &&
		slices.Equal(s.subs, m.SubscribedTopicNames) && sameAssignment(s.assignment, m.Assignment)
}

// DeleteRecords are the tombstones of a deleted group: its members' and
// its own records, its share state's record included (BeginDelete first,
// and the state deleted, so none is left behind).
func (g *Group) DeleteRecords() []Record {
	var out []Record
	for _, id := range slices.Sorted(maps.Keys(g.saved)) {
		out = append(out, memberTombstones(g.ID, id)...)
	}
	if g.stateWritten {
		out = append(out, Record{Key: groupKey(recordStatePartitionMeta, g.ID, "")})
	}
	if g.written {
		out = append(out, Record{Key: groupKey(recordTargetMetadata, g.ID, "")}, Record{Key: groupKey(recordGroupMetadata, g.ID, "")})
	}
	g.saved, g.written = nil, false
	g.initialized, g.deleting, g.stateWritten = nil, nil, false
	return out
}

func memberTombstones(group, member string) []Record {
	return []Record{{Key: groupKey(recordCurrentAssignment, group, member)}, {Key: groupKey(recordTargetMember, group, member)},
		{Key: groupKey(recordMemberMetadata, group, member)}}
}

func versionPrefix() []byte {
	return binary.BigEndian.AppendUint16(make([]byte, 0, 64), groupRecordValueVersion)
}

func groupKey(typ int16, group, member string) []byte {
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 6+len(group)+len(member)), uint16(typ))
	b = binary.BigEndian.AppendUint16(b, uint16(len(group)))
	b = append(b, group...)
	if typ == recordMemberMetadata || typ == recordTargetMember || typ == recordCurrentAssignment {
		b = binary.BigEndian.AppendUint16(b, uint16(len(member)))
		b = append(b, member...)
	}
	return b
}

func groupMetadataValue(epoch int32) []byte {
	v := binary.BigEndian.AppendUint32(versionPrefix(), uint32(epoch))
	v = binary.BigEndian.AppendUint64(v, 0)
	return append(v, 0)
}

func memberMetadataValue(m *Member) []byte {
	v := versionPrefix()
	if m.RackID == "" {
		v = append(v, 0) // null
	} else {
		v = appendCompactString(v, m.RackID)
	}
	v = appendCompactString(v, m.ClientID)
	v = appendCompactString(v, m.ClientHost)
	v = binary.AppendUvarint(v, uint64(len(m.SubscribedTopicNames)+1))
	for _, t := range m.SubscribedTopicNames {
		v = appendCompactString(v, t)
	}
	return append(v, 0)
}

func appendCompactString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)+1))
	return append(b, s...)
}

// appendTopicPartitions writes an assignment by topic id, topics sorted by
// name so the bytes are deterministic.
func appendTopicPartitions(b []byte, a map[string][]int32, topicID func(string) ([16]byte, bool)) []byte {
	type entry struct {
		id [16]byte
		ps []int32
	}
	var entries []entry
	for _, t := range slices.Sorted(maps.Keys(a)) {
		if id, ok := topicID(t); ok {
			entries = append(entries, entry{id, a[t]})
		}
	}
	b = binary.AppendUvarint(b, uint64(len(entries)+1))
	for _, e := range entries {
		b = append(b, e.id[:]...)
		b = binary.AppendUvarint(b, uint64(len(e.ps)+1))
		for _, p := range e.ps {
			b = binary.BigEndian.AppendUint32(b, uint32(p))
		}
		b = append(b, 0)
	}
	return b
}

// LoadRecord replays one __consumer_offsets record into groups; handled
// is false for a record that is not a share group's. Members are loaded
// as if they had just heartbeated (nowMs), so they get a whole session
// timeout to come back to the new coordinator, as in Kafka. topicName
// resolves the topic ids of assignments; a deleted topic drops out.
func LoadRecord(groups map[string]*Group, key, value []byte, topicName func([16]byte) (string, bool), nowMs int64) (handled bool, err error) {
	if !IsGroupRecord(key) {
		return false, nil
	}
	typ := int16(binary.BigEndian.Uint16(key))
	kr := flexReader{b: key[2:]}
	groupID := kr.fixedString()
	memberID := ""
	if typ == recordMemberMetadata || typ == recordTargetMember || typ == recordCurrentAssignment {
		memberID = kr.fixedString()
	}
	if kr.err != nil || len(kr.b) != 0 {
		return true, fmt.Errorf("share group record type %d key: %w", typ, ErrCorruptRecord)
	}
	g := groups[groupID]
	if value == nil {
		loadTombstone(groups, g, typ, memberID)
		return true, nil
	}
	if g == nil {
		g = NewGroup(groupID)
		groups[groupID] = g
	}
	g.written, g.stateChecked = true, false
	if g.saved == nil {
		g.saved = map[string]*savedMember{}
	}
	r := flexReader{b: value}
	if v := r.int16(); v != groupRecordValueVersion && r.err == nil {
		return true, fmt.Errorf("share group record type %d value version %d: %w", typ, v, ErrCorruptRecord)
	}
	switch typ {
	case recordGroupMetadata:
		g.Epoch = r.int32()
		g.savedEpoch = g.Epoch
		_ = r.int64() // the metadata hash: Sluice reassigns on partition counts
	case recordTargetMetadata:
		_ = r.int32() // the assignment epoch is the group epoch here
	case recordStatePartitionMeta:
		g.loadStateMeta(&r)
	default:
		m := g.loadMember(memberID, nowMs)
		loadMemberValue(&r, typ, m, topicName)
		g.saved[memberID] = m.saved()
	}
	r.skipTags()
	if r.err != nil {
		return true, fmt.Errorf("share group %s record type %d: %w", groupID, typ, r.err)
	}
	return true, nil
}

func (g *Group) loadMember(id string, nowMs int64) *Member {
	m := g.members[id]
	if m == nil {
		m = &Member{ID: id, Assignment: map[string][]int32{}}
		g.members[id] = m
	}
	m.lastHeartbeatMs = nowMs
	return m
}

func loadMemberValue(r *flexReader, typ int16, m *Member, topicName func([16]byte) (string, bool)) {
	switch typ {
	case recordMemberMetadata:
		m.RackID = r.compactString()
		m.ClientID = r.compactString()
		m.ClientHost = r.compactString()
		n := r.compactCount(maxLoadedTopicsPerRecord)
		m.SubscribedTopicNames = make([]string, 0, n)
		for range n {
			m.SubscribedTopicNames = append(m.SubscribedTopicNames, r.compactString())
		}
	case recordTargetMember:
		m.Assignment = r.topicPartitions(topicName)
	case recordCurrentAssignment:
		m.Epoch = r.int32()
		_ = r.int32() // previous epoch
		_ = r.int8()  // state: share members are always stable
		_ = r.topicPartitions(topicName)
	}
}

func loadTombstone(groups map[string]*Group, g *Group, typ int16, memberID string) {
	if g == nil {
		return
	}
	switch typ {
	case recordMemberMetadata:
		delete(g.members, memberID)
		delete(g.saved, memberID)
	case recordGroupMetadata:
		delete(groups, g.ID)
	case recordStatePartitionMeta:
		g.initialized, g.deleting, g.stateWritten = nil, nil, false
	}
}

// Restored finishes a loaded group: what its assignment was computed
// from is read back from the assignment itself, so the first heartbeat
// after a load starts a new epoch only if today's topics differ. Every
// partition of a subscribed topic is assigned, so the highest assigned
// one gives the count, and the records name topics by id, so a topic
// assigned has today's id (one deleted since was dropped at load, and
// one re-created under its name is assigned nothing yet).
func (g *Group) Restored(topics Topics) {
	g.subscribedTopics = map[string]TopicMetadata{}
	for _, m := range g.members {
		for _, t := range m.SubscribedTopicNames {
			if _, ok := g.subscribedTopics[t]; !ok {
				g.subscribedTopics[t] = TopicMetadata{}
			}
		}
		for t, ps := range m.Assignment {
			meta := g.subscribedTopics[t]
			if len(ps) > 0 {
				meta.ID = topics(t).ID
				meta.Partitions = max(meta.Partitions, slices.Max(ps)+1)
			}
			g.subscribedTopics[t] = meta
		}
	}
}

// flexReader reads the fields of the records above, remembering the first
// error; every count is checked against the bytes left before anything is
// allocated.
type flexReader struct {
	b   []byte
	err error
}

func (r *flexReader) take(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err, r.b = ErrCorruptRecord, nil
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *flexReader) int8() int8 {
	if b := r.take(1); b != nil {
		return int8(b[0])
	}
	return 0
}

func (r *flexReader) int16() int16 {
	if b := r.take(2); b != nil {
		return int16(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (r *flexReader) int64() int64 {
	if b := r.take(8); b != nil {
		return int64(binary.BigEndian.Uint64(b))
	}
	return 0
}

func (r *flexReader) int32() int32 {
	if b := r.take(4); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}

func (r *flexReader) fixedString() string { return string(r.take(int(r.int16()))) }

func (r *flexReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err, r.b = ErrCorruptRecord, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

// compactString reads a compact (nullable) string; null reads as "".
func (r *flexReader) compactString() string {
	n := r.uvarint()
	if n == 0 {
		return ""
	}
	if n-1 > uint64(len(r.b)) {
		r.err, r.b = ErrCorruptRecord, nil
		return ""
	}
	return string(r.take(int(n - 1)))
}

// compactCount reads a compact array's length, each element at least one
// byte, at most limit.
func (r *flexReader) compactCount(limit int) int {
	n := r.uvarint()
	if n == 0 {
		return 0
	}
	if n-1 > uint64(len(r.b)) || n-1 > uint64(limit) {
		r.err, r.b = ErrCorruptRecord, nil
		return 0
	}
	return int(n - 1)
}

func (r *flexReader) topicPartitions(topicName func([16]byte) (string, bool)) map[string][]int32 {
	out := map[string][]int32{}
	for range r.compactCount(maxLoadedTopicsPerRecord) {
		var id [16]byte
		copy(id[:], r.take(16))
		n := r.compactCount(min(maxLoadedPartitionsPerTop, len(r.b)/4))
		ps := make([]int32, 0, n)
		for range n {
			ps = append(ps, r.int32())
		}
		r.skipTags()
		if name, ok := topicName(id); ok && r.err == nil {
			sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
			out[name] = ps
		}
	}
	return out
}

func (r *flexReader) skipTags() {
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		r.uvarint()
		r.take(int(min(r.uvarint(), uint64(len(r.b)+1))))
	}
}
