package share

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/coord/sharegroup"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/partition"
	"github.com/sluicelog/sluice/internal/record"
)

// A share group's membership lives in its __consumer_offsets partition,
// as Kafka's does (sharegroup/records.go has the records), beside the
// consumer groups the group coordinator keeps there. The coordinator of a
// share group is the leader of that partition: a heartbeat elsewhere gets
// NOT_COORDINATOR. The share groups of a partition are loaded by replaying
// it the first time one of them is used after this node became its
// leader (a new leader epoch), and every change a heartbeat makes is
// appended with acks=all before the heartbeat is answered.

// membershipWriteTimeout bounds how long a membership change waits for
// the ISR of its __consumer_offsets partition (Kafka's
// offsets.commit.timeout.ms).
const membershipWriteTimeout = 5 * time.Second

// groupPartitionLocked returns the __consumer_offsets partition of
// groupID, led here, with its share groups loaded (c.mu held).
func (c *Coordinator) groupPartitionLocked(groupID string) (*partition.Partition, error) {
	img := c.opts.Image()
	if img == nil {
		return nil, coord.ErrCoordinatorNotAvailable
	}
	t, ok := img.Topic(coord.OffsetsTopic)
	if !ok {
		return nil, fmt.Errorf("share group %q: %s does not exist yet: %w", groupID, coord.OffsetsTopic, coord.ErrCoordinatorNotAvailable)
	}
	p := coord.PartitionFor(groupID, int32(len(t.Partitions)))
	part, err := c.opts.Partitions.Partition(coord.OffsetsTopic, p)
	switch {
	case errors.Is(err, partition.ErrNotLeader) || errors.Is(err, partition.ErrUnknownTopicOrPartition):
		return nil, fmt.Errorf("share group %q: %w", groupID, coord.ErrNotCoordinator)
	case err != nil:
		return nil, err
	}
	if err := c.loadGroupsLocked(img, p, part); err != nil {
		return nil, err
	}
	return part, nil
}

// loadGroupsLocked replays a __consumer_offsets partition's share groups
// unless they are loaded for its current leader epoch.
func (c *Coordinator) loadGroupsLocked(img *metadata.Image, p int32, part *partition.Partition) error {
	epoch := part.LeaderEpoch()
	if e, ok := c.loadedEpochs[p]; ok && e == epoch {
		return nil
	}
	n := int32(0)
	if t, ok := img.Topic(coord.OffsetsTopic); ok {
		n = int32(len(t.Partitions))
	}
	for id := range c.groups {
		if coord.PartitionFor(id, n) == p {
			c.dropGroupLocked(id)
		}
	}
	topicName := topicNameOf(img)
	loaded := map[string]*sharegroup.Group{}
	now := c.nowMs()
	skipped := 0
	err := coord.ReplayRecords(part, coord.OffsetsTopic, p, nil, func(key, value []byte) error {
		if _, err := sharegroup.LoadRecord(loaded, key, value, topicName, now); err != nil {
			skipped++ // damage, or a newer Kafka's record: keep the rest
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("loading share groups of %s-%d: %w: %w", coord.OffsetsTopic, p, coord.ErrCoordinatorLoadInProgress, err)
	}
	if skipped > 0 {
		c.opts.Logger.Warn("skipped unreadable share group records", "partition", p, "records", skipped)
	}
	topics := topicsOf(img)
	for id, g := range loaded {
		g.Restored(topics)
		c.groups[id] = g
	}
	c.loadedEpochs[p] = epoch
	c.publishGroupIDsLocked()
	return nil
}

// dropGroupLocked forgets a group whose partition is reloaded, and what
// was known of its share partitions' state (the reloaded group checks it
// anew); its sessions and share partitions stay (they are the partition
// leaders').
func (c *Coordinator) dropGroupLocked(id string) {
	delete(c.groups, id)
	delete(c.assigned, id)
}

// writeGroupLocked appends what changed in a group since its last write.
// A failed append leaves memory ahead of the log: the partition is
// loaded again at its next use.
func (c *Coordinator) writeGroupLocked(part *partition.Partition, records []sharegroup.Record) error {
	if len(records) == 0 {
		return nil
	}
	batch := make([]record.Record, len(records))
	for i, r := range records {
		batch[i] = record.Record{Key: r.Key, Value: r.Value}
	}
	buf, err := record.AppendBatch(nil, record.BatchOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		TimestampType: record.CreateTime, FirstTimestamp: c.nowMs()}, batch)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), membershipWriteTimeout)
	defer cancel()
	if _, err := part.AppendAll(ctx, buf); err != nil {
		delete(c.loadedEpochs, part.TopicPartition().Partition)
		c.publishGroupIDsLocked()
		return fmt.Errorf("share group records to %s: %w: %w", coord.OffsetsTopic, coord.ErrCoordinatorNotAvailable, err)
	}
	return nil
}

// topicIDOf is the id of a topic in img.
func topicIDOf(img *metadata.Image) func(string) ([16]byte, bool) {
	return func(name string) ([16]byte, bool) {
		t, ok := img.Topic(name)
		if !ok {
			return [16]byte{}, false
		}
		return t.ID, true
	}
}

// topicNameOf names a topic id in img.
func topicNameOf(img *metadata.Image) func([16]byte) (string, bool) {
	return func(id [16]byte) (string, bool) {
		t, ok := img.TopicByID(metadata.UUID(id))
		if !ok {
			return "", false
		}
		return t.Name, true
	}
}

// topicsOf describes the topics of img by name, as a group's assignment
// sees them.
func topicsOf(img *metadata.Image) sharegroup.Topics {
	return func(name string) sharegroup.TopicMetadata {
		t, ok := img.Topic(name)
		if !ok {
			return sharegroup.TopicMetadata{}
		}
		return sharegroup.TopicMetadata{ID: t.ID, Partitions: int32(len(t.Partitions))}
	}
}

// partitionCounter counts a topic's partitions in img (0: none).
func partitionCounter(img *metadata.Image) func(string) int32 {
	return func(name string) int32 {
		t, ok := img.Topic(name)
		if !ok {
			return 0
		}
		return int32(len(t.Partitions))
	}
}

// loadAllLocked loads the share groups of every __consumer_offsets
// partition led here, for ListGroups.
func (c *Coordinator) loadAllLocked() {
	img := c.opts.Image()
	if img == nil {
		return
	}
	t, ok := img.Topic(coord.OffsetsTopic)
	if !ok {
		return
	}
	n := int32(len(t.Partitions))
	for p := range n {
		part, err := c.opts.Partitions.Partition(coord.OffsetsTopic, p)
		if err != nil {
			// Led elsewhere now: its groups here are stale.
			delete(c.loadedEpochs, p)
			for id := range c.groups {
				if coord.PartitionFor(id, n) == p {
					c.dropGroupLocked(id)
				}
			}
			c.publishGroupIDsLocked()
			continue
		}
		if err := c.loadGroupsLocked(img, p, part); err != nil {
			c.opts.Logger.Warn("share groups not loaded", "partition", p, "err", err)
		}
	}
}

// initializedTopicsLocked is the share partitions groupID was ever
// assigned, topic name -> partitions, from its
// ShareGroupStatePartitionMetadata record: those whose state may exist
// with the share coordinator. nil when the group is not here; the caller
// loaded the group's partition (groupPartitionLocked) with c.mu held.
func (c *Coordinator) initializedTopicsLocked(groupID string) map[string][]int32 {
	g := c.groups[groupID]
	if g == nil {
		return nil
	}
	return g.InitializedTopics(topicNameOf(c.opts.Image()))
}

// groupIDs is what IsShareGroup reads without c.mu: the ids of the share
// groups here and the leader epoch each __consumer_offsets partition's
// groups were loaded in. JoinGroup, ConsumerGroupHeartbeat and commits
// of consumer groups ask IsShareGroup, and c.mu can be held for seconds:
// across a heartbeat's replication (membershipWriteTimeout) and while a
// heartbeat waits for a share partition whose lock is held across a state
// read or write (persistTimeout). Immutable once published.
type groupIDs struct {
	loadedEpochs map[int32]int32
	groups       map[string]struct{}
}

// publishGroupIDsLocked publishes c.groups and c.loadedEpochs to
// IsShareGroup (c.mu held); every change of either calls it. It copies
// them, which costs little: groups are made, loaded and deleted seldom.
func (c *Coordinator) publishGroupIDsLocked() {
	ids := &groupIDs{loadedEpochs: maps.Clone(c.loadedEpochs), groups: make(map[string]struct{}, len(c.groups))}
	for id := range c.groups {
		ids.groups[id] = struct{}{}
	}
	c.groupIDs.Store(ids)
}

// knownShareGroup answers IsShareGroup from the published ids, as the
// locked path would; known is false when the group's partition must be
// loaded first, which needs c.mu.
func (c *Coordinator) knownShareGroup(groupID string) (is, known bool) {
	img := c.opts.Image()
	if img == nil {
		return false, true
	}
	t, ok := img.Topic(coord.OffsetsTopic)
	if !ok {
		return false, true
	}
	p := coord.PartitionFor(groupID, int32(len(t.Partitions)))
	part, err := c.opts.Partitions.Partition(coord.OffsetsTopic, p)
	if err != nil {
		return false, true // not the coordinator: not a share group here
	}
	ids := c.groupIDs.Load()
	if ids == nil {
		return false, false
	}
	if epoch, ok := ids.loadedEpochs[p]; !ok || epoch != part.LeaderEpoch() {
		return false, false
	}
	_, is = ids.groups[groupID]
	return is, true
}
