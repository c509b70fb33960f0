package metadata

import (
	"cmp"
	"slices"
	"strings"
)

// Image is the cluster metadata as of one offset of the metadata log.
//
// An Image is immutable once Apply returns it, so any number of goroutines
// may read it without locks, and a handler can keep using the image it
// started with while newer ones are published. Successive images share
// every topic, partition, broker and config map that did not change.
//
// Topics are kept in a slice sorted by name: Topics needs no sort per
// request, and Topic is a binary search. A map from id to name serves
// TopicByID; it changes only when topics are created or removed, so the
// common change (a partition's leader or ISR) costs Apply one copy of the
// slice of topic pointers and no map copy. The topics themselves are
// shared.
type Image struct {
	offset         int64
	brokers        map[int32]*BrokerImage
	brokerList     []*BrokerImage  // sorted by id
	topics         []*TopicImage   // sorted by name
	topicNames     map[UUID]string // topic id -> name
	numPartitions  int
	configs        map[configResource]map[string]string
	nextProducerID int64
	features       map[string]int16
	acls           map[UUID]AccessControlEntry
	aclList        []AccessControlEntry // sorted by id
	scram          map[scramKey]*ScramCredential
	quotas         map[QuotaEntity]map[string]float64
}

// configResource names the owner of a set of configs.
type configResource struct {
	Type ConfigResourceType
	Name string
}

// emptyImage is shared: an Image is never modified, so every caller of
// EmptyImage can have the same one.
var emptyImage = &Image{offset: -1}

// EmptyImage returns the image before the first record: no brokers, no
// topics, offset -1.
func EmptyImage() *Image { return emptyImage }

// Offset returns the offset of the last metadata record applied, -1 when
// none.
func (img *Image) Offset() int64 { return img.offset }

// Newer returns whichever of cur and img is the newer by offset, img on a
// tie, the other when one is nil. Whatever keeps the newest image it saw
// goes through it: callers read images before taking their lock and take
// it in any order, so an image may arrive after a newer one was acted on.
func Newer(cur, img *Image) *Image {
	if img == nil || (cur != nil && img.offset < cur.offset) {
		return cur
	}
	return img
}

// Broker returns the registration of broker id.
func (img *Image) Broker(id int32) (*BrokerImage, bool) {
	b, ok := img.brokers[id]
	return b, ok
}

// Brokers returns every registered broker, fenced or not, sorted by id.
func (img *Image) Brokers() []*BrokerImage { return img.brokerList }

// Topic returns the topic called name.
func (img *Image) Topic(name string) (*TopicImage, bool) {
	i, ok := slices.BinarySearchFunc(img.topics, name, func(t *TopicImage, name string) int {
		return strings.Compare(t.Name, name)
	})
	if !ok {
		return nil, false
	}
	return img.topics[i], true
}

// TopicByID returns the topic with id.
func (img *Image) TopicByID(id UUID) (*TopicImage, bool) {
	name, ok := img.topicNames[id]
	if !ok {
		return nil, false
	}
	return img.Topic(name)
}

// Topics returns every topic, sorted by name.
func (img *Image) Topics() []*TopicImage { return img.topics }

// NumTopics returns the number of topics.
func (img *Image) NumTopics() int { return len(img.topics) }

// NumPartitions returns the number of partitions over all topics.
func (img *Image) NumPartitions() int { return img.numPartitions }

// Partition returns partition p of the topic called topic.
func (img *Image) Partition(topic string, p int32) (*PartitionImage, bool) {
	t, ok := img.Topic(topic)
	if !ok {
		return nil, false
	}
	return t.Partition(p)
}

// Partition returns partition p of the topic.
func (t *TopicImage) Partition(p int32) (*PartitionImage, bool) {
	if p < 0 || int(p) >= len(t.Partitions) {
		return nil, false
	}
	return t.Partitions[p], true
}

// Configs returns the configs set on a resource (only the keys set
// explicitly, not defaults), nil when none. The broker resource named ""
// holds the cluster-wide broker defaults.
func (img *Image) Configs(t ConfigResourceType, name string) map[string]string {
	return img.configs[configResource{t, name}]
}

// NextProducerID returns the first producer id not yet handed out.
func (img *Image) NextProducerID() int64 { return img.nextProducerID }

// FeatureLevel returns a feature's finalized level, 0 when not set.
func (img *Image) FeatureLevel(name string) int16 { return img.features[name] }

// Features returns every finalized feature level. Callers must not modify
// the map.
func (img *Image) Features() map[string]int16 { return img.features }

// Records returns records that, replayed into an empty image, rebuild this
// one (everything but the offset, which a snapshot stores next to them).
// The order is deterministic, so two equal images give equal records:
// features, brokers by id, topics by name each followed by its partitions,
// configs by resource then key, ACLs by id, client quotas by entity then
// key, the producer-id counter.
func (img *Image) Records() []Record {
	records := make([]Record, 0, 1+len(img.features)+len(img.brokerList)+len(img.topics)+img.numPartitions+len(img.configs))
	for _, name := range sortedKeys(img.features) {
		records = append(records, &FeatureLevel{Name: name, Level: img.features[name]})
	}
	for _, b := range img.brokerList {
		records = append(records, &RegisterBroker{
			BrokerID: b.ID, Incarnation: b.Incarnation, BrokerEpoch: b.Epoch,
			Listeners: slices.Clone(b.Listeners), Rack: b.Rack, Fenced: b.Fenced,
		})
	}
	for _, t := range img.topics {
		records = append(records, &Topic{Name: t.Name, ID: t.ID})
		for i, p := range t.Partitions {
			records = append(records, &Partition{
				TopicID: t.ID, Partition: int32(i),
				Replicas: slices.Clone(p.Replicas), ISR: slices.Clone(p.ISR),
				Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch,
			})
		}
	}
	records = img.appendConfigRecords(records)
	for _, e := range img.aclList {
		records = append(records, &e)
	}
	records = img.appendScramRecords(records)
	records = img.appendClientQuotaRecords(records)
	if img.nextProducerID != 0 {
		// No broker asked for this block: it only restores the counter.
		records = append(records, &ProducerIDs{BrokerID: -1, BrokerEpoch: -1, NextProducerID: img.nextProducerID})
	}
	return records
}

func (img *Image) appendConfigRecords(records []Record) []Record {
	resources := make([]configResource, 0, len(img.configs))
	for r := range img.configs {
		resources = append(resources, r)
	}
	slices.SortFunc(resources, func(a, b configResource) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), strings.Compare(a.Name, b.Name))
	})
	for _, r := range resources {
		configs := img.configs[r]
		for _, name := range sortedKeys(configs) {
			records = append(records, &Config{ResourceType: r.Type, ResourceName: r.Name, Name: name, Value: configs[name]})
		}
	}
	return records
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
