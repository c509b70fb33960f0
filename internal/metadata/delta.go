package metadata

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
)

// Delta collects the changes of replayed records on top of a base Image;
// Apply turns them into the next Image.
//
// The delta owns copies of only what the records touched: a topic is
// copied (with its slice of partition pointers) the first time a record
// changes it, a partition the first time a record changes it, so replaying
// a batch costs what the batch changes, not what the cluster holds. Reads
// during replay (does this topic exist? which epoch has this broker?) see
// the delta's changes over the base, so a batch may create a topic and
// then its partitions, or delete a topic and re-create its name.
//
// A Delta is not safe for concurrent use; the Images it returns are.
type Delta struct {
	base           *Image
	brokers        map[int32]*BrokerImage // registered or changed; nil value: unregistered
	topics         map[UUID]*TopicImage   // created or changed, owned by the delta; nil value: removed
	names          map[string]UUID        // topics created by this delta, by name
	configs        map[configResource]map[string]string
	nextProducerID int64
	features       map[string]int16              // a level of 0 removes the feature
	acls           map[UUID]*AccessControlEntry  // nil value: removed
	scram          map[scramKey]*ScramCredential // nil value: removed
	quotas         map[QuotaEntity]map[string]float64
}

// NewDelta starts a delta on base. Maps are made on first use, so a delta
// for a batch that touches only brokers costs nothing for topics.
func NewDelta(base *Image) *Delta {
	return &Delta{base: base, nextProducerID: base.nextProducerID}
}

// Replay applies one record to the delta. It returns an error, and changes
// nothing, when the record does not fit the current state: a committed
// record always fits, so an error means a controller bug or corruption.
func (d *Delta) Replay(r Record) error {
	if r == nil || isNilPointer(r) {
		return fmt.Errorf("replay %T: nil record: %w", r, ErrInvalidRecord)
	}
	switch r := r.(type) {
	case *RegisterBroker:
		return d.replayRegisterBroker(r)
	case *UnregisterBroker:
		return d.replayUnregisterBroker(r)
	case *FenceBroker:
		return d.replayFence(r.BrokerID, r.BrokerEpoch, true)
	case *UnfenceBroker:
		return d.replayFence(r.BrokerID, r.BrokerEpoch, false)
	case *Topic:
		return d.replayTopic(r)
	case *Partition:
		return d.replayPartition(r)
	case *PartitionChange:
		return d.replayPartitionChange(r)
	case *RemoveTopic:
		return d.replayRemoveTopic(r)
	case *Config:
		return d.replayConfig(r)
	case *ProducerIDs:
		return d.replayProducerIDs(r)
	case *FeatureLevel:
		return d.replayFeatureLevel(r)
	case *AccessControlEntry:
		return d.replayAccessControlEntry(r)
	case *RemoveAccessControlEntry:
		return d.replayRemoveAccessControlEntry(r)
	case *UserScramCredential:
		return d.replayUserScramCredential(r)
	case *RemoveUserScramCredential:
		return d.replayRemoveUserScramCredential(r)
	case *ClientQuota:
		return d.replayClientQuota(r)
	}
	return fmt.Errorf("replay %T: %w", r, ErrUnknownRecordType)
}

// isNilPointer reports whether r holds a typed nil pointer, which Replay
// must reject rather than dereference.
func isNilPointer(r Record) bool {
	v := reflect.ValueOf(r)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// broker returns the broker's registration as the delta sees it.
func (d *Delta) broker(id int32) (*BrokerImage, bool) {
	if b, ok := d.brokers[id]; ok {
		return b, b != nil
	}
	return d.base.Broker(id)
}

func (d *Delta) setBroker(id int32, b *BrokerImage) {
	if d.brokers == nil {
		d.brokers = make(map[int32]*BrokerImage)
	}
	d.brokers[id] = b
}

// replayRegisterBroker replaces any earlier registration of the broker.
// The epoch is the offset of the registration, so a re-registration with
// an epoch that does not grow is a stale record replayed out of order.
func (d *Delta) replayRegisterBroker(r *RegisterBroker) error {
	if r.BrokerID < 0 {
		return fmt.Errorf("register broker %d: negative id: %w", r.BrokerID, ErrInvalidRecord)
	}
	if old, ok := d.broker(r.BrokerID); ok && r.BrokerEpoch <= old.Epoch {
		return fmt.Errorf("register broker %d with epoch %d, registered with epoch %d: %w",
			r.BrokerID, r.BrokerEpoch, old.Epoch, ErrStaleBrokerEpoch)
	}
	d.setBroker(r.BrokerID, &BrokerImage{
		ID: r.BrokerID, Incarnation: r.Incarnation, Epoch: r.BrokerEpoch,
		Listeners: slices.Clip(slices.Clone(r.Listeners)), Rack: r.Rack, Fenced: r.Fenced,
	})
	return nil
}

// checkBrokerEpoch returns the broker's registration if epoch is the one it
// registered with: a fence or unregister meant for an older incarnation
// must not touch the new one.
func (d *Delta) checkBrokerEpoch(what string, id int32, epoch int64) (*BrokerImage, error) {
	b, ok := d.broker(id)
	if !ok {
		return nil, fmt.Errorf("%s broker %d: %w", what, id, ErrUnknownBroker)
	}
	if b.Epoch != epoch {
		return nil, fmt.Errorf("%s broker %d with epoch %d, registered with epoch %d: %w",
			what, id, epoch, b.Epoch, ErrStaleBrokerEpoch)
	}
	return b, nil
}

func (d *Delta) replayUnregisterBroker(r *UnregisterBroker) error {
	if _, err := d.checkBrokerEpoch("unregister", r.BrokerID, r.BrokerEpoch); err != nil {
		return err
	}
	d.setBroker(r.BrokerID, nil)
	return nil
}

func (d *Delta) replayFence(id int32, epoch int64, fenced bool) error {
	what := "unfence"
	if fenced {
		what = "fence"
	}
	b, err := d.checkBrokerEpoch(what, id, epoch)
	if err != nil {
		return err
	}
	if b.Fenced != fenced {
		changed := *b
		changed.Fenced = fenced
		d.setBroker(id, &changed)
	}
	return nil
}

// topicByID returns the topic as the delta sees it.
func (d *Delta) topicByID(id UUID) (*TopicImage, bool) {
	if t, ok := d.topics[id]; ok {
		return t, t != nil
	}
	return d.base.TopicByID(id)
}

// topicByName returns the topic as the delta sees it. A base topic of that
// name is gone if the delta removed its id, or re-used its id for a topic
// of another name.
func (d *Delta) topicByName(name string) (*TopicImage, bool) {
	if id, ok := d.names[name]; ok {
		return d.topics[id], true
	}
	t, ok := d.base.Topic(name)
	if !ok {
		return nil, false
	}
	if changed, ok := d.topics[t.ID]; ok {
		return changed, changed != nil && changed.Name == name
	}
	return t, true
}

// mutableTopic returns the delta's own copy of an existing topic, copying
// it from the base on first use. Its partitions are still shared.
func (d *Delta) mutableTopic(id UUID) *TopicImage {
	if t := d.topics[id]; t != nil {
		return t
	}
	base, _ := d.base.TopicByID(id)
	t := &TopicImage{Name: base.Name, ID: base.ID, Partitions: slices.Clone(base.Partitions)}
	d.setTopic(id, t)
	return t
}

func (d *Delta) setTopic(id UUID, t *TopicImage) {
	if d.topics == nil {
		d.topics = make(map[UUID]*TopicImage)
	}
	d.topics[id] = t
}

// mutablePartition returns the delta's own copy of partition p of t, a
// topic the delta owns. A partition is the delta's own unless it is the
// very PartitionImage the base holds.
func (d *Delta) mutablePartition(t *TopicImage, p int32) *PartitionImage {
	part := t.Partitions[p]
	if base, ok := d.base.TopicByID(t.ID); ok && int(p) < len(base.Partitions) && base.Partitions[p] == part {
		copied := *part
		part = &copied
		t.Partitions[p] = part
	}
	return part
}

func (d *Delta) replayTopic(r *Topic) error {
	if r.Name == "" || r.ID == (UUID{}) {
		return fmt.Errorf("topic %q id %v: empty name or zero id: %w", r.Name, r.ID, ErrInvalidRecord)
	}
	if _, ok := d.topicByName(r.Name); ok {
		return fmt.Errorf("topic %q: %w", r.Name, ErrTopicExists)
	}
	if t, ok := d.topicByID(r.ID); ok {
		return fmt.Errorf("topic %q: id %v is topic %q's: %w", r.Name, r.ID, t.Name, ErrTopicExists)
	}
	d.setTopic(r.ID, &TopicImage{Name: r.Name, ID: r.ID})
	if d.names == nil {
		d.names = make(map[string]UUID)
	}
	d.names[r.Name] = r.ID
	return nil
}

func (d *Delta) replayPartition(r *Partition) error {
	t, ok := d.topicByID(r.TopicID)
	if !ok {
		return fmt.Errorf("partition %d of topic id %v: %w", r.Partition, r.TopicID, ErrUnknownTopic)
	}
	if int(r.Partition) != len(t.Partitions) {
		return fmt.Errorf("partition %d of topic %q with %d partitions: %w",
			r.Partition, t.Name, len(t.Partitions), ErrPartitionNotDense)
	}
	if r.LeaderEpoch < 0 || r.PartitionEpoch < 0 {
		return fmt.Errorf("partition %s-%d: negative epoch: %w", t.Name, r.Partition, ErrInvalidPartition)
	}
	if err := checkPartitionState(r.Replicas, r.ISR, r.Leader); err != nil {
		return fmt.Errorf("partition %s-%d: %w", t.Name, r.Partition, err)
	}
	mt := d.mutableTopic(r.TopicID)
	replicas, isr := cloneReplicaSets(r.Replicas, r.ISR)
	mt.Partitions = append(mt.Partitions, &PartitionImage{
		Replicas: replicas, ISR: isr, Leader: r.Leader,
		LeaderEpoch: r.LeaderEpoch, PartitionEpoch: r.PartitionEpoch,
	})
	return nil
}

// cloneReplicaSets copies the two lists into one allocation (a partition
// is the bulk of an image, so allocations per partition count). Each slice
// is capped so an append to one cannot write into the other.
func cloneReplicaSets(replicas, isr []int32) ([]int32, []int32) {
	buf := make([]int32, len(replicas)+len(isr))
	copy(buf, replicas)
	copy(buf[len(replicas):], isr)
	return buf[:len(replicas):len(replicas)], buf[len(replicas):]
}

// checkPartitionState rejects a partition no controller could have
// decided: no replicas, a replica listed twice, an ISR member or leader
// that is not a replica.
func checkPartitionState(replicas, isr []int32, leader int32) error {
	if len(replicas) == 0 {
		return fmt.Errorf("no replicas: %w", ErrInvalidPartition)
	}
	sorted := slices.Clone(replicas)
	slices.Sort(sorted)
	if sorted[0] < 0 {
		return fmt.Errorf("replicas %v: negative broker id: %w", replicas, ErrInvalidPartition)
	}
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return fmt.Errorf("replicas %v: broker %d twice: %w", replicas, sorted[i], ErrInvalidPartition)
		}
	}
	for i, id := range isr {
		if _, ok := slices.BinarySearch(sorted, id); !ok || slices.Contains(isr[:i], id) {
			return fmt.Errorf("isr %v of replicas %v: %w", isr, replicas, ErrInvalidPartition)
		}
	}
	if leader != NoLeader {
		if _, ok := slices.BinarySearch(sorted, leader); !ok {
			return fmt.Errorf("leader %d not among replicas %v: %w", leader, replicas, ErrInvalidPartition)
		}
	}
	return nil
}

// replayPartitionChange bumps the partition epoch on every change and the
// leader epoch on every leader change (even to the same broker, which is
// how a controller forces followers to re-sync), so both only grow.
func (d *Delta) replayPartitionChange(r *PartitionChange) error {
	t, ok := d.topicByID(r.TopicID)
	if !ok {
		return fmt.Errorf("partition change %d of topic id %v: %w", r.Partition, r.TopicID, ErrUnknownTopic)
	}
	old, ok := t.Partition(r.Partition)
	if !ok {
		return fmt.Errorf("partition change %s-%d: %w", t.Name, r.Partition, ErrUnknownPartition)
	}
	replicas, isr, leader := old.Replicas, old.ISR, old.Leader
	if r.Replicas != nil {
		replicas = r.Replicas
	}
	if r.ISR != nil {
		isr = r.ISR
	}
	if r.Leader != NoLeaderChange {
		leader = r.Leader
	}
	if err := checkPartitionState(replicas, isr, leader); err != nil {
		return fmt.Errorf("partition change %s-%d: %w", t.Name, r.Partition, err)
	}
	if old.PartitionEpoch == math.MaxInt32 || (r.Leader != NoLeaderChange && old.LeaderEpoch == math.MaxInt32) {
		return fmt.Errorf("partition change %s-%d: epoch overflow: %w", t.Name, r.Partition, ErrInvalidPartition)
	}
	part := d.mutablePartition(d.mutableTopic(r.TopicID), r.Partition)
	if r.Replicas != nil {
		part.Replicas = slices.Clip(slices.Clone(r.Replicas))
	}
	if r.ISR != nil {
		part.ISR = slices.Clip(slices.Clone(r.ISR))
	}
	if r.Leader != NoLeaderChange {
		part.Leader = r.Leader
		part.LeaderEpoch++
	}
	part.PartitionEpoch++
	return nil
}

// replayRemoveTopic forgets the topic, its partitions and its configs; the
// name and id are free again at once.
func (d *Delta) replayRemoveTopic(r *RemoveTopic) error {
	t, ok := d.topicByID(r.TopicID)
	if !ok {
		return fmt.Errorf("remove topic id %v: %w", r.TopicID, ErrUnknownTopic)
	}
	if _, inBase := d.base.topicNames[r.TopicID]; inBase {
		d.setTopic(r.TopicID, nil)
	} else {
		delete(d.topics, r.TopicID)
	}
	delete(d.names, t.Name)
	d.setConfigs(configResource{ConfigResourceTopic, t.Name}, nil)
	return nil
}

func (d *Delta) setConfigs(res configResource, m map[string]string) {
	if d.configs == nil {
		d.configs = make(map[configResource]map[string]string)
	}
	d.configs[res] = m
}

// mutableConfigs returns the delta's own copy of a resource's configs.
func (d *Delta) mutableConfigs(res configResource) map[string]string {
	m, ok := d.configs[res]
	if !ok {
		m = maps.Clone(d.base.configs[res])
	}
	if m == nil {
		m = make(map[string]string)
	}
	d.setConfigs(res, m)
	return m
}

// replayConfig sets or deletes one key. A topic's configs follow its Topic
// record, so that removing the topic can remove them: a config for a topic
// that does not exist would outlive any topic of that name.
func (d *Delta) replayConfig(r *Config) error {
	switch {
	case r.ResourceType != ConfigResourceTopic && r.ResourceType != ConfigResourceBroker && r.ResourceType != ConfigResourceGroup:
		return fmt.Errorf("config %q of resource type %d: %w", r.Name, r.ResourceType, ErrInvalidRecord)
	case r.Name == "":
		return fmt.Errorf("config with empty key on %q: %w", r.ResourceName, ErrInvalidRecord)
	case r.ResourceType == ConfigResourceGroup && r.ResourceName == "":
		return fmt.Errorf("group config %q without a group: %w", r.Name, ErrInvalidRecord)
	case r.ResourceType == ConfigResourceTopic:
		if _, ok := d.topicByName(r.ResourceName); !ok {
			return fmt.Errorf("config %q of topic %q: %w", r.Name, r.ResourceName, ErrUnknownTopic)
		}
	}
	m := d.mutableConfigs(configResource{r.ResourceType, r.ResourceName})
	if r.Delete {
		delete(m, r.Name)
	} else {
		m[r.Name] = r.Value
	}
	return nil
}

// replayProducerIDs moves the producer-id counter. It trusts the broker id
// and epoch (the controller checked them when it handed out the block; the
// broker may be gone by now) but not a counter that goes back, which would
// hand out a producer id twice.
func (d *Delta) replayProducerIDs(r *ProducerIDs) error {
	if r.NextProducerID <= d.nextProducerID {
		return fmt.Errorf("producer ids up to %d for broker %d, already handed out up to %d: %w",
			r.NextProducerID, r.BrokerID, d.nextProducerID, ErrProducerIDRegressed)
	}
	d.nextProducerID = r.NextProducerID
	return nil
}

func (d *Delta) replayFeatureLevel(r *FeatureLevel) error {
	if r.Name == "" || r.Level < 0 {
		return fmt.Errorf("feature %q level %d: %w", r.Name, r.Level, ErrInvalidRecord)
	}
	if d.features == nil {
		d.features = make(map[string]int16)
	}
	d.features[r.Name] = r.Level
	return nil
}
