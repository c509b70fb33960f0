package metadata

// This file fixes the Image API that the controller, the quorum and the
// broker program against. The implementation lives in image.go and delta.go.

// BrokerImage is a registered broker.
type BrokerImage struct {
	ID          int32
	Incarnation UUID
	Epoch       int64
	Listeners   []Listener
	Rack        string
	Fenced      bool
}

// PartitionImage is a partition's replication state.
type PartitionImage struct {
	Replicas       []int32
	ISR            []int32
	Leader         int32
	LeaderEpoch    int32
	PartitionEpoch int32
}

// TopicImage is a topic and its partitions, indexed by partition id
// (partitions are numbered densely from 0).
type TopicImage struct {
	Name       string
	ID         UUID
	Partitions []*PartitionImage
}

// Images and everything reachable from them are immutable: callers must not
// modify the slices and maps they return. A Delta makes the next Image,
// sharing every unchanged topic, partition and broker with its base.
//
//	func EmptyImage() *Image
//	func (img *Image) Offset() int64                   // last applied metadata offset; -1 when empty
//	func Newer(cur, img *Image) *Image                 // the newer by offset, img on a tie; nil-safe
//	func (img *Image) Broker(id int32) (*BrokerImage, bool)
//	func (img *Image) Brokers() []*BrokerImage         // sorted by id
//	func (img *Image) Topic(name string) (*TopicImage, bool)
//	func (img *Image) TopicByID(id UUID) (*TopicImage, bool)
//	func (img *Image) Topics() []*TopicImage           // sorted by name
//	func (img *Image) Partition(topic string, p int32) (*PartitionImage, bool)
//	func (t *TopicImage) Partition(p int32) (*PartitionImage, bool)
//	func (img *Image) NumTopics() int
//	func (img *Image) NumPartitions() int
//	func (img *Image) Configs(t ConfigResourceType, name string) map[string]string
//	func (img *Image) NextProducerID() int64
//	func (img *Image) FeatureLevel(name string) int16
//	func (img *Image) Features() map[string]int16
//	func (img *Image) Records() []Record               // rebuilds the image from empty (snapshots)
//
//	func NewDelta(base *Image) *Delta
//	func (d *Delta) Replay(r Record) error              // the only way state changes
//	func (d *Delta) Apply(offset int64) *Image          // the delta carries on from the result
//
//	func AppendRecord(dst []byte, r Record) []byte      // versioned binary encoding
//	func DecodeRecord(b []byte) (Record, error)
//	func AppendSnapshot(dst []byte, img *Image) []byte
//	func DecodeSnapshot(b []byte) (*Image, error)
