package metadata

import (
	"cmp"
	"maps"
	"slices"
	"strings"
)

// Apply returns the image of the base with every replayed record applied,
// as of offset (the offset of the last record replayed). Unchanged parts
// of the base are shared, not copied.
//
// The delta stays usable: it carries on from the image it returned, so
// replaying more records and applying again gives the same image as
// replaying everything before one Apply. Objects the delta owned now
// belong to the image, and the next change to them copies them again.
func (d *Delta) Apply(offset int64) *Image {
	base := d.base
	img := &Image{
		offset:         offset,
		brokers:        base.brokers,
		brokerList:     base.brokerList,
		topics:         base.topics,
		topicNames:     base.topicNames,
		numPartitions:  base.numPartitions,
		configs:        base.configs,
		nextProducerID: d.nextProducerID,
		features:       base.features,
		acls:           base.acls,
		aclList:        base.aclList,
		scram:          base.scram,
		quotas:         base.quotas,
	}
	if len(d.brokers) > 0 {
		img.brokers, img.brokerList = d.applyBrokers()
	}
	if len(d.topics) > 0 {
		d.applyTopics(img)
	}
	if len(d.configs) > 0 {
		img.configs = applyChanges(base.configs, d.configs, func(m map[string]string) bool { return len(m) == 0 })
	}
	if len(d.features) > 0 {
		img.features = applyChanges(base.features, d.features, func(level int16) bool { return level == 0 })
	}
	if len(d.acls) > 0 {
		d.applyACLs(img)
	}
	if len(d.scram) > 0 {
		img.scram = applyChanges(base.scram, d.scram, func(c *ScramCredential) bool { return c == nil })
	}
	if len(d.quotas) > 0 {
		img.quotas = applyChanges(base.quotas, d.quotas, func(m map[string]float64) bool { return len(m) == 0 })
	}
	*d = Delta{base: img, nextProducerID: img.nextProducerID}
	return img
}

func (d *Delta) applyBrokers() (map[int32]*BrokerImage, []*BrokerImage) {
	brokers := applyChanges(d.base.brokers, d.brokers, func(b *BrokerImage) bool { return b == nil })
	list := make([]*BrokerImage, 0, len(brokers))
	for _, b := range brokers {
		list = append(list, b)
	}
	slices.SortFunc(list, func(a, b *BrokerImage) int { return cmp.Compare(a.ID, b.ID) })
	return brokers, list
}

// applyChanges returns base with changes applied, as a new map; a change
// for which removed is true deletes the key. An empty result is nil, so
// an image holds no empty maps.
func applyChanges[K comparable, V any](base, changes map[K]V, removed func(V) bool) map[K]V {
	m := maps.Clone(base)
	if m == nil {
		m = make(map[K]V, len(changes))
	}
	for k, v := range changes {
		if removed(v) {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// applyTopics builds the topic list and id map of img. A topic that kept
// its name (most changes: a leader, an ISR, a new partition) takes its old
// place in a copy of the list and leaves the id map alone. Created and
// removed topics are merged in, linear in the number of topics.
func (d *Delta) applyTopics(img *Image) {
	base := d.base
	var added, replaced []*TopicImage
	var removed []string
	var idChanges []UUID
	for id, t := range d.topics {
		old, inBase := base.TopicByID(id)
		if inBase {
			img.numPartitions -= len(old.Partitions)
		}
		if t != nil {
			t.Partitions = slices.Clip(t.Partitions)
			img.numPartitions += len(t.Partitions)
		}
		if inBase && t != nil && t.Name == old.Name {
			replaced = append(replaced, t)
			continue
		}
		if inBase {
			removed = append(removed, old.Name)
		}
		if t != nil {
			added = append(added, t)
		}
		idChanges = append(idChanges, id)
	}
	if len(idChanges) > 0 {
		img.topicNames = d.applyTopicNames(idChanges)
	}
	if len(added)+len(removed) > 0 {
		slices.SortFunc(added, compareTopicNames)
		slices.Sort(removed)
		img.topics = mergeTopics(base.topics, removed, added)
	} else {
		img.topics = slices.Clone(base.topics)
	}
	for _, t := range replaced {
		i, _ := slices.BinarySearchFunc(img.topics, t, compareTopicNames)
		img.topics[i] = t
	}
}

// applyTopicNames returns the base's id -> name map with the topics of
// ids created, removed or renamed as the delta has them.
func (d *Delta) applyTopicNames(ids []UUID) map[UUID]string {
	names := maps.Clone(d.base.topicNames)
	if names == nil {
		names = make(map[UUID]string, len(ids))
	}
	for _, id := range ids {
		if t := d.topics[id]; t != nil {
			names[id] = t.Name
		} else {
			delete(names, id)
		}
	}
	if len(names) == 0 {
		return nil
	}
	return names
}

func compareTopicNames(a, b *TopicImage) int { return strings.Compare(a.Name, b.Name) }

// mergeTopics merges the base topics whose names are not in removed with
// added; all three are sorted by name. Names are unique in the result:
// replay refuses to create a name that exists unless its topic was
// removed first.
func mergeTopics(base []*TopicImage, removed []string, added []*TopicImage) []*TopicImage {
	merged := make([]*TopicImage, 0, len(base)-len(removed)+len(added))
	for _, t := range base {
		for len(removed) > 0 && removed[0] < t.Name {
			removed = removed[1:]
		}
		if len(removed) > 0 && removed[0] == t.Name {
			continue
		}
		for len(added) > 0 && added[0].Name < t.Name {
			merged = append(merged, added[0])
			added = added[1:]
		}
		merged = append(merged, t)
	}
	merged = append(merged, added...)
	if len(merged) == 0 {
		return nil
	}
	return merged
}
