package share

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/coord/sharegroup"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/partition"
)

// The share group offset admin APIs (KIP-932: DescribeShareGroupOffsets,
// AlterShareGroupOffsets, DeleteShareGroupOffsets) on the group's
// coordinator. A share group has no committed offsets: its "offset" of a
// partition is the share-partition start offset (SPSO) that the share
// coordinator keeps, so these read, start anew or delete that state
// through the persister, as Kafka's group coordinator does.
//
// Altering or deleting the state under a partition leader that has it
// cached must not let the leader go on from its cache. As in Kafka: the
// group must be empty (no member fetches); a share partition this node
// caches is dropped once the change is made; a leader drops a group's
// copies when the group's last share session on it ends
// (dropIfNoSessions), so its next consumer reads the state again; and an
// alteration starts the state in a state epoch above any a leader can
// hold, so a leader elsewhere that still caches the old state (for a
// departed member whose session is still open) is fenced
// (FENCED_STATE_EPOCH) at its next write, and drops it then
// (persistLocked). A deletion fences the same way (deletePartition).

// PartitionOffset is one share partition's start offset, as
// DescribeShareGroupOffsets answers it: StartOffset and LeaderEpoch are -1
// when it has no state.
type PartitionOffset struct {
	TopicPartition
	StartOffset int64
	LeaderEpoch int32
}

// initializedTopics are the share partitions groupID may have state for,
// topic -> partitions: those its ShareGroupStatePartitionMetadata record
// names (initializedTopicsLocked, also returned as recorded), and every
// partition of the topics its members subscribed to on this coordinator,
// which a group loaded from an earlier build's log may not have recorded
// (as DeleteGroup takes them), counted in the newest image seen
// (newestImageLocked), which it returns. Only the group's coordinator
// knows them (else coord.ErrNotCoordinator).
func (c *Coordinator) initializedTopics(groupID string, img *metadata.Image) (topics map[string][]int32, recorded map[TopicPartition]bool, partitionCounts func(string) int32, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	partitionCounts = partitionCounter(c.newestImageLocked(img))
	if _, err := c.groupPartitionLocked(groupID); err != nil {
		return nil, nil, nil, err
	}
	topics, recorded = map[string][]int32{}, map[TopicPartition]bool{}
	for topic, partitions := range c.initializedTopicsLocked(groupID) {
		topics[topic] = slices.Clone(partitions)
		for _, p := range partitions {
			recorded[TopicPartition{topic, p}] = true
		}
	}
	for topic := range c.groupTopics[groupID] {
		if _, ok := topics[topic]; !ok {
			topics[topic] = allPartitions(partitionCounts(topic))
		}
	}
	return topics, recorded, partitionCounts, nil
}

// newestPartitionCounter counts topics' partitions in the newest image
// seen (newestImageLocked), img being the one the request read.
func (c *Coordinator) newestPartitionCounter(img *metadata.Image) func(string) int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return partitionCounter(c.newestImageLocked(img))
}

// DescribeOffsets reads the start offset of each share partition of
// groupID through the share coordinator. topics nil means every partition
// of every topic the group has state for, which only the group's
// coordinator knows (else coord.ErrNotCoordinator): a partition its
// record names is answered -1 while it has no start offset (assigned
// and not fetched yet, say), as Kafka answers an initialized partition
// whose state has none, and one only subscribed to here is left out
// then. Given topics are answered wherever the request lands, a missing
// topic or state as offset -1, as Kafka answers them.
func (c *Coordinator) DescribeOffsets(ctx context.Context, groupID string, topics map[string][]int32, img *metadata.Image) ([]PartitionOffset, error) {
	all := topics == nil
	var recorded map[TopicPartition]bool
	var partitionCounts func(string) int32
	if all {
		var err error
		if topics, recorded, partitionCounts, err = c.initializedTopics(groupID, img); err != nil {
			return nil, err
		}
	} else {
		partitionCounts = c.newestPartitionCounter(img)
	}
	ctx, cancel := context.WithTimeout(ctx, persistTimeout)
	defer cancel()
	var out []PartitionOffset
	for _, topic := range sortedKeys(topics) {
		for _, p := range slices.Sorted(slices.Values(topics[topic])) {
			o := PartitionOffset{TopicPartition: TopicPartition{topic, p}, StartOffset: -1, LeaderEpoch: -1}
			if p >= 0 && p < partitionCounts(topic) {
				// An error reads as no state, as in Kafka: the answer is
				// "no offset known", never a failed describe.
				sum, found, err := c.opts.Persister.ReadStateSummary(ctx, groupID, topic, p)
				if err == nil && found {
					o.StartOffset, o.LeaderEpoch = sum.StartOffset, sum.LeaderEpoch
				} else if err != nil {
					c.opts.Logger.Warn("share partition state summary not read", "group", groupID, "topic", topic, "partition", p, "err", err)
				}
			}
			if all && o.StartOffset < 0 && !recorded[o.TopicPartition] {
				continue
			}
			out = append(out, o)
		}
	}
	return out, nil
}

// emptyGroupLocked returns groupID's group and its __consumer_offsets
// partition (c.mu held), and fails unless this node coordinates it and it
// is a share group without members (members whose session timed out are
// removed first; the caller runs writeReleased once c.mu is let go).
func (c *Coordinator) emptyGroupLocked(groupID string, topics sharegroup.Topics) (*sharegroup.Group, *partition.Partition, error) {
	part, err := c.groupPartitionLocked(groupID)
	if err != nil {
		return nil, nil, err
	}
	g := c.groups[groupID]
	if g == nil {
		return nil, nil, fmt.Errorf("%w: %q is not a share group", coord.ErrGroupIDNotFound, groupID)
	}
	for _, gone := range g.Expire(c.opts.Config.Group, topics, c.nowMs()) {
		c.memberGoneLocked(groupID, gone)
	}
	if n := len(g.Members()); n > 0 {
		return nil, nil, fmt.Errorf("share group %q has %d members: %w", groupID, n, ErrNonEmptyGroup)
	}
	return g, part, nil
}

// alterStateEpochStep is how far an alteration moves the state epoch
// above the stored one. A leader that read state epoch E holds E+1 (it
// counts its load, sharegroup.LoadPartition) and may not have written it
// yet: starting the new state at E+2 fences its writes either way.
const alterStateEpochStep = 2

// AlterOffsets starts the state of the given share partitions of an empty
// share group anew at the given start offsets (AlterShareGroupOffsets).
// A request-level error (coordinator, coord.ErrGroupIDNotFound,
// ErrNonEmptyGroup) is err; each partition's outcome is in the map.
func (c *Coordinator) AlterOffsets(ctx context.Context, groupID string, offsets map[string]map[int32]int64, img *metadata.Image) (map[TopicPartition]error, error) {
	partitionCounts, err := c.recordAltered(groupID, offsets, img)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, persistTimeout)
	defer cancel()
	out := map[TopicPartition]error{}
	for topic, ps := range offsets {
		for p, startOffset := range ps {
			tp := TopicPartition{topic, p}
			out[tp] = c.alterPartition(ctx, groupID, tp, startOffset, partitionCounts)
		}
	}
	return out, nil
}

// recordAltered checks that groupID is an empty share group coordinated
// here and records the partitions about to be started as initialized in
// its ShareGroupStatePartitionMetadata, appended with acks=all before any
// state is started (as Kafka's alter records them before it initializes
// them): the record then names every share partition that may have
// state, so describing every topic shows an altered partition that was
// never assigned, and deleting the group deletes its state.
//
// A group that does not exist is created empty, as Kafka's alter creates
// it: a client sets a new share group's offsets before its first member
// joins. Its metadata records go out with the partition record, so the
// group survives a restart even if no partition was valid. Partitions are
// counted in the newest image seen (newestImageLocked), which the returned
// counter counts in too.
func (c *Coordinator) recordAltered(groupID string, offsets map[string]map[int32]int64, requestImage *metadata.Image) (func(string) int32, error) {
	defer c.writeReleased()
	c.mu.Lock()
	defer c.mu.Unlock()
	img := c.newestImageLocked(requestImage)
	partitionCounts := partitionCounter(img)
	if _, err := c.groupPartitionLocked(groupID); err != nil {
		return nil, err
	}
	topicID := topicIDOf(img)
	var created []sharegroup.Record
	if c.groups[groupID] == nil {
		g := sharegroup.NewGroup(groupID)
		c.groups[groupID] = g
		c.publishGroupIDsLocked()
		created = g.TakeRecords(topicID)
	}
	g, part, err := c.emptyGroupLocked(groupID, topicsOf(img))
	if err != nil {
		return nil, err
	}
	var record []sharegroup.Record
	for _, topic := range sortedKeys(offsets) {
		id, ok := topicID(topic)
		if !ok {
			continue
		}
		var ps []int32
		for p, startOffset := range offsets[topic] {
			if p >= 0 && p < partitionCounts(topic) && startOffset >= 0 {
				ps = append(ps, p)
			}
		}
		if r, changed := g.RecordInitialized(id, topic, ps); changed {
			record = []sharegroup.Record{r} // each is the whole record: the last says all
		}
	}
	return partitionCounts, c.writeGroupLocked(part, append(created, record...))
}

func (c *Coordinator) alterPartition(ctx context.Context, groupID string, tp TopicPartition, startOffset int64, partitionCounts func(string) int32) error {
	switch {
	case tp.Partition < 0 || tp.Partition >= partitionCounts(tp.Topic):
		return fmt.Errorf("share group %q: %s-%d: %w", groupID, tp.Topic, tp.Partition, partition.ErrUnknownTopicOrPartition)
	case startOffset < 0:
		return fmt.Errorf("share group %q: %s-%d: start offset %d: %w", groupID, tp.Topic, tp.Partition, startOffset, ErrInvalidRequest)
	}
	sum, _, err := c.opts.Persister.ReadStateSummary(ctx, groupID, tp.Topic, tp.Partition)
	if err != nil {
		return fmt.Errorf("share group %q: %s-%d: %w", groupID, tp.Topic, tp.Partition, err)
	}
	if err := c.opts.Persister.InitializeState(ctx, groupID, tp.Topic, tp.Partition, max(sum.StateEpoch, 0)+alterStateEpochStep, startOffset); err != nil {
		return fmt.Errorf("share group %q: %s-%d: %w", groupID, tp.Topic, tp.Partition, err)
	}
	c.dropCached(groupID, tp)
	return nil
}

// DeleteOffsets deletes the start offset of every share partition of the
// given topics of an empty share group (DeleteShareGroupOffsets): its
// next consumer starts at share.auto.offset.reset. A topic the group has no
// state for is UNKNOWN_TOPIC_OR_PARTITION, as in Kafka.
func (c *Coordinator) DeleteOffsets(ctx context.Context, groupID string, topics []string, img *metadata.Image) (map[string]error, error) {
	deleting, out, err := c.recordDeleting(groupID, topics, img)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, persistTimeout)
	defer cancel()
	for _, topic := range sortedKeys(deleting) {
		var errs []error
		for _, p := range deleting[topic] {
			if err := c.deletePartition(ctx, groupID, TopicPartition{topic, p}); err != nil {
				errs = append(errs, fmt.Errorf("share group %q: state of %s-%d: %w", groupID, topic, p, err))
			}
		}
		out[topic] = errors.Join(errs...)
	}
	return out, nil
}

// recordDeleting checks that groupID is an empty share group coordinated
// here, and moves the given topics it may have state for to the deleting
// topics of its ShareGroupStatePartitionMetadata, appended with acks=all
// before any state is deleted, as Kafka does: describing every topic no
// longer shows them, and a deletion cut short is finished by the next
// DeleteShareGroupOffsets or DeleteGroups. It returns the partitions
// whose state to delete by topic, and the error of each topic it refuses.
// A topic already deleting may have state in any partition (Kafka
// deletes them all), and so may one its members subscribed to here: all
// that the newest image seen (newestImageLocked) has.
func (c *Coordinator) recordDeleting(groupID string, topics []string, requestImage *metadata.Image) (deleting map[string][]int32, refused map[string]error, err error) {
	defer c.writeReleased()
	c.mu.Lock()
	defer c.mu.Unlock()
	img := c.newestImageLocked(requestImage)
	partitionCounts := partitionCounter(img)
	g, part, err := c.emptyGroupLocked(groupID, topicsOf(img))
	if err != nil {
		return nil, nil, err
	}
	topicID := topicIDOf(img)
	initialized := c.initializedTopicsLocked(groupID)
	deleting, refused = map[string][]int32{}, map[string]error{}
	ids := map[[16]byte]string{}
	for _, topic := range topics {
		id, ok := topicID(topic)
		n := partitionCounts(topic)
		switch {
		case !ok || n == 0:
			refused[topic] = fmt.Errorf("share group %q: topic %q: %w", groupID, topic, partition.ErrUnknownTopicOrPartition)
		case g.IsDeleting(id) || c.groupTopics[groupID][topic]:
			deleting[topic] = allPartitions(n)
		case initialized[topic] != nil:
			deleting[topic] = initialized[topic]
		default:
			refused[topic] = fmt.Errorf("share group %q has no offset information for topic %q: %w", groupID, topic, partition.ErrUnknownTopicOrPartition)
		}
		if deleting[topic] != nil {
			ids[id] = topic
		}
	}
	if r, changed := g.RecordDeletingTopics(ids); changed {
		if err := c.writeGroupLocked(part, []sharegroup.Record{r}); err != nil {
			return nil, nil, err
		}
	}
	for _, topic := range ids {
		// Recorded as deleting now, which DeleteGroups deletes.
		delete(c.groupTopics[groupID], topic)
	}
	return deleting, refused, nil
}

func allPartitions(n int32) []int32 {
	out := make([]int32, n)
	for p := range n {
		out[p] = p
	}
	return out
}

// deletePartition deletes a share partition's offset. Not with
// DeleteShareGroupState, as Kafka does: the state is started anew with no
// start offset instead (Kafka's group coordinator initializes a new share
// partition the same way), in a newer state epoch. So the partition stays
// initialized, which this coordinator remembers it is (initializeAssigned
// does not initialize it again), a stale leader's next write is fenced by
// state epoch and it reads the state again, and the next leader to read it
// starts at share.auto.offset.reset.
func (c *Coordinator) deletePartition(ctx context.Context, groupID string, tp TopicPartition) error {
	sum, found, err := c.opts.Persister.ReadStateSummary(ctx, groupID, tp.Topic, tp.Partition)
	if err != nil {
		return err
	}
	if found {
		if err := c.opts.Persister.InitializeState(ctx, groupID, tp.Topic, tp.Partition, max(sum.StateEpoch, 0)+alterStateEpochStep, -1); err != nil {
			return err
		}
	}
	c.dropCached(groupID, tp)
	return nil
}

// dropCached forgets this node's copy of a share partition whose state was
// altered or deleted, so its next use reads the new state. The copy leaves
// the map under c.mu and is marked deleted after, once whoever holds its
// lock (a state write, up to persistTimeout) is done: c.mu does not wait
// for that. A write through the copy meanwhile is fenced by the new state
// epoch.
func (c *Coordinator) dropCached(groupID string, tp TopicPartition) {
	key := partitionKey{groupID, tp}
	c.mu.Lock()
	sp := c.partitions[key]
	delete(c.partitions, key)
	c.mu.Unlock()
	if sp != nil {
		markDeleted(sp)
	}
}

// markDeleted marks a share partition taken out of the map as deleted,
// once whoever holds it is done: nothing writes through it after, and
// lockSharePartition, finding it deleted, looks the key up again.
func markDeleted(sp *sharePartition) {
	sp.mu.Lock()
	sp.deleted = true
	sp.mu.Unlock()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// dropIfNoSessions forgets this node's share partitions of a group once
// its last share session here has ended, as Kafka's leader does when a
// share group goes empty on it (ShareGroupListener.onGroupEmpty): the
// group's offsets may now be altered or deleted from its coordinator,
// elsewhere, without this node hearing of it, so its next consumer must
// read the state again. A departed member's release not yet written
// (memberGoneLocked queues it for writeGroupReleased, which skips a
// deleted copy) is made and written first: lost with the copy, it would
// leave a record archived at the delivery limit available in the stored
// state, to be delivered once more. A share partition's lock is held
// across a state write, so it is waited for without c.mu.
func (c *Coordinator) dropIfNoSessions(groupID string) {
	c.mu.Lock()
	idle := c.idlePartitionsLocked(groupID)
	c.mu.Unlock()
	if len(idle) == 0 {
		return
	}
	for _, sp := range idle {
		sp.mu.Lock()
		sp.releaseGoneLocked()
		if sp.releasedUnwritten && sp.p != nil && !sp.deleted {
			sp.releasedUnwritten = false
			_ = c.persistLocked(c.ctx, sp) // logged; as a leave's writer would
		}
		sp.mu.Unlock()
	}
	// A session opened meanwhile uses the copies, written and current: they
	// stay. Otherwise none is held by a member any more (a session that
	// ended released what its member held), so a leave queued since has
	// nothing to release in them.
	c.mu.Lock()
	var dropped []*sharePartition
	if c.idlePartitionsLocked(groupID) != nil {
		for _, sp := range idle {
			if c.partitions[sp.key] == sp {
				delete(c.partitions, sp.key)
				dropped = append(dropped, sp)
			}
		}
	}
	c.mu.Unlock()
	for _, sp := range dropped {
		markDeleted(sp)
	}
}

// idlePartitionsLocked is the group's share partitions here, or nil while
// it has a share session here (c.mu held).
func (c *Coordinator) idlePartitionsLocked(groupID string) []*sharePartition {
	for key := range c.sessions {
		if key.group == groupID {
			return nil
		}
	}
	var out []*sharePartition
	for key, sp := range c.partitions {
		if key.group == groupID {
			out = append(out, sp)
		}
	}
	return out
}
