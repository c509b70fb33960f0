package sharegroup

// The share group offset admin APIs' changes to the group's
// ShareGroupStatePartitionMetadata record (statemeta.go), as Kafka's group
// coordinator makes them: AlterShareGroupOffsets records the partitions
// it starts as initialized, so a partition whose offset was set but that
// was never assigned is still described and deleted with the group; and
// DeleteShareGroupOffsets moves the topics it deletes to deleting before
// it deletes their state, so a deletion cut short is finished by the next
// DeleteShareGroupOffsets or DeleteGroups, wherever the group is
// coordinated then.

// RecordInitialized records as initialized the given partitions of a
// topic (by id, with its name), which AlterShareGroupOffsets is about to
// start; a topic being deleted leaves the deleting topics, as a new
// assignment of it does. It returns the whole new record to write, or
// false when the record already says so.
func (g *Group) RecordInitialized(id [16]byte, name string, partitions []int32) (Record, bool) {
	if len(partitions) == 0 || !g.addInitialized(id, name, partitions) {
		return Record{}, false
	}
	return g.stateRecord(), true
}

// RecordDeletingTopics moves the given topics (by id, with their names)
// from initialized to deleting, before DeleteShareGroupOffsets deletes
// their state, and returns the whole new record to write, or false when
// every one of them is already deleting. Unlike Kafka's, the topics stay
// deleting once their offsets are deleted: Sluice starts their state anew
// without a start offset rather than deleting it (a fenced leader's write
// would bring deleted state back), and that state is deleted with the
// group, which deletes every deleting topic (BeginDelete).
func (g *Group) RecordDeletingTopics(topics map[[16]byte]string) (Record, bool) {
	changed := false
	for id, name := range topics {
		if _, ok := g.deleting[id]; ok {
			continue
		}
		if g.deleting == nil {
			g.deleting = map[[16]byte]string{}
		}
		g.deleting[id] = name
		delete(g.initialized, id)
		changed = true
	}
	if !changed {
		return Record{}, false
	}
	// The assignment may name a deleted topic's partitions again at the
	// next heartbeat (takeStateRecord), which takes it out of deleting.
	g.stateChecked = false
	return g.stateRecord(), true
}

// IsDeleting says whether a topic's deletion is recorded.
func (g *Group) IsDeleting(id [16]byte) bool {
	_, ok := g.deleting[id]
	return ok
}
