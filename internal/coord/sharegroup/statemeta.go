package sharegroup

import (
	"encoding/binary"
	"maps"
	"slices"
	"strings"
)

// The group's ShareGroupStatePartitionMetadata (record type 15, layout in
// records.go): the share partitions whose state may exist with the share
// coordinator, so that deleting the group deletes all of it, whoever
// coordinated the group when the state was made.

// stateTopic is one topic of the record: its name when recorded (ids are
// what identify it) and its partitions, sorted and distinct.
type stateTopic struct {
	name       string
	partitions []int32
}

// takeStateRecord records as initialized the partitions the group's
// assignment covers and the record does not yet: it returns the whole new
// value to write, or false when nothing is new. A topic assigned again
// while its deletion is recorded leaves the deleting topics. It looks at
// the assignment after each reassignment and after a load, so a group
// loaded from a log without the record (an earlier Sluice's) gets it at
// its first heartbeat, and a steady heartbeat costs nothing.
func (g *Group) takeStateRecord(topicID func(string) ([16]byte, bool)) (Record, bool) {
	if g.stateChecked {
		return Record{}, false
	}
	g.stateChecked = true
	changed := false
	for _, m := range g.members {
		for topic, ps := range m.Assignment {
			tid, ok := topicID(topic)
			if ok && len(ps) > 0 && g.addInitialized(tid, topic, ps) {
				changed = true
			}
		}
	}
	if !changed {
		return Record{}, false
	}
	return g.stateRecord(), true
}

func (g *Group) addInitialized(id [16]byte, name string, ps []int32) bool {
	if g.initialized == nil {
		g.initialized = map[[16]byte]stateTopic{}
	}
	cur, ok := g.initialized[id]
	if _, deleting := g.deleting[id]; ok && !deleting && containsAll(cur.partitions, ps) {
		return false
	}
	g.initialized[id] = stateTopic{name: name, partitions: sortedUnion(cur.partitions, ps)}
	delete(g.deleting, id)
	return true
}

// containsAll says whether every partition of ps is in sorted.
func containsAll(sorted, ps []int32) bool {
	for _, p := range ps {
		if _, found := slices.BinarySearch(sorted, p); !found {
			return false
		}
	}
	return true
}

func sortedUnion(a, b []int32) []int32 {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// BeginDelete moves every initialized topic, and the topics in also (say,
// subscribed but never assigned, by id and name), to the deleting topics
// and returns the record that says so, as Kafka's DeleteGroups writes it
// before it deletes the state: a deletion that fails half-way, or whose
// coordinator moves, is done in full by the next DeleteGroups. ok is
// false when the group has no share state to delete.
func (g *Group) BeginDelete(also map[[16]byte]string) (r Record, ok bool) {
	if len(g.initialized) == 0 && len(also) == 0 && len(g.deleting) == 0 {
		return Record{}, false
	}
	if g.deleting == nil {
		g.deleting = map[[16]byte]string{}
	}
	for id, t := range g.initialized {
		g.deleting[id] = t.name
	}
	for id, name := range also {
		g.deleting[id] = name
	}
	g.initialized, g.stateChecked = nil, false
	return g.stateRecord(), true
}

// DeletingTopics are the topics whose share state a deletion of the group
// deletes (every partition of each), by id, with the names recorded.
func (g *Group) DeletingTopics() map[[16]byte]string { return maps.Clone(g.deleting) }

// InitializedTopics are the group's initialized share partitions by topic
// name, as topicName names their ids today; a topic that is gone (or was
// deleted and made again under its name) is left out.
func (g *Group) InitializedTopics(topicName func([16]byte) (string, bool)) map[string][]int32 {
	out := make(map[string][]int32, len(g.initialized))
	for id, t := range g.initialized {
		if name, ok := topicName(id); ok {
			out[name] = slices.Clone(t.partitions)
		}
	}
	return out
}

// stateRecord is the group's type 15 record with its whole state. Kafka's
// initializing topics are written empty: in Sluice nothing waits to be
// initialised.
func (g *Group) stateRecord() Record {
	g.stateWritten = true
	v := binary.AppendUvarint(versionPrefix(), 1) // initializing_topics: none
	ids := slices.SortedFunc(maps.Keys(g.initialized), func(a, b [16]byte) int {
		return strings.Compare(string(a[:]), string(b[:]))
	})
	v = binary.AppendUvarint(v, uint64(len(ids)+1))
	for _, id := range ids {
		t := g.initialized[id]
		v = append(v, id[:]...)
		v = appendCompactString(v, t.name)
		v = binary.AppendUvarint(v, uint64(len(t.partitions)+1))
		for _, p := range t.partitions {
			v = binary.BigEndian.AppendUint32(v, uint32(p))
		}
		v = append(v, 0)
	}
	ids = slices.SortedFunc(maps.Keys(g.deleting), func(a, b [16]byte) int {
		return strings.Compare(string(a[:]), string(b[:]))
	})
	v = binary.AppendUvarint(v, uint64(len(ids)+1))
	for _, id := range ids {
		v = append(v, id[:]...)
		v = appendCompactString(v, g.deleting[id])
		v = append(v, 0)
	}
	return Record{Key: groupKey(recordStatePartitionMeta, g.ID, ""), Value: append(v, 0)}
}

// loadStateMeta replays a type 15 value: it replaces what the group had.
func (g *Group) loadStateMeta(r *flexReader) {
	g.initialized, g.deleting, g.stateWritten = map[[16]byte]stateTopic{}, map[[16]byte]string{}, true
	g.stateChecked = false
	for range 2 { // initializing, then initialized: both may have state
		for range r.compactCount(maxLoadedTopicsPerRecord) {
			var id [16]byte
			copy(id[:], r.take(16))
			name := r.compactString()
			n := r.compactCount(min(maxLoadedPartitionsPerTop, len(r.b)/4))
			ps := make([]int32, 0, n)
			for range n {
				ps = append(ps, r.int32())
			}
			r.skipTags()
			if r.err == nil {
				g.initialized[id] = stateTopic{name: name, partitions: sortedUnion(g.initialized[id].partitions, ps)}
			}
		}
	}
	for range r.compactCount(maxLoadedTopicsPerRecord) {
		var id [16]byte
		copy(id[:], r.take(16))
		name := r.compactString()
		r.skipTags()
		if r.err == nil {
			g.deleting[id] = name
		}
	}
}
