package metadata

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func register(id int32, epoch int64) *RegisterBroker {
	return &RegisterBroker{BrokerID: id, Incarnation: uuid(byte(id)), BrokerEpoch: epoch, Fenced: true,
		Listeners: []Listener{{Name: "PLAINTEXT", Host: "localhost", Port: 9092, SecurityProtocol: "PLAINTEXT"}}}
}

// clusterImage has brokers 0-2 (epochs 10, 11, 12, unfenced) and topic
// "orders" (uuid 1) with two partitions on all three brokers.
func clusterImage(t testing.TB) *Image {
	return apply(t, EmptyImage(),
		register(0, 10), register(1, 11), register(2, 12),
		&UnfenceBroker{BrokerID: 0, BrokerEpoch: 10},
		&UnfenceBroker{BrokerID: 1, BrokerEpoch: 11},
		&UnfenceBroker{BrokerID: 2, BrokerEpoch: 12},
		&Topic{Name: "orders", ID: uuid(1)},
		&Partition{TopicID: uuid(1), Partition: 0, Replicas: []int32{0, 1, 2}, ISR: []int32{0, 1, 2}, Leader: 0},
		&Partition{TopicID: uuid(1), Partition: 1, Replicas: []int32{1, 2, 0}, ISR: []int32{1, 2, 0}, Leader: 1},
		&Config{ResourceType: ConfigResourceTopic, ResourceName: "orders", Name: "cleanup.policy", Value: "compact"},
	)
}

func TestDeltaRegisterBroker(t *testing.T) {
	img := apply(t, EmptyImage(), register(1, 5))
	b, ok := img.Broker(1)
	require(t, ok && b.Epoch == 5 && b.Fenced && b.Incarnation == uuid(1), "broker 1: %+v", b)

	again := &RegisterBroker{BrokerID: 1, Incarnation: uuid(9), BrokerEpoch: 8, Rack: "r2"}
	img2 := apply(t, img, again)
	b2, _ := img2.Broker(1)
	requireEqual(t, *b2, BrokerImage{ID: 1, Incarnation: uuid(9), Epoch: 8, Rack: "r2"})
	require(t, b.Epoch == 5, "the base image changed: %+v", b)

	_, err := replayErr(t, img, &RegisterBroker{BrokerID: 1, BrokerEpoch: 5})
	requireErrorIs(t, err, ErrStaleBrokerEpoch)
	_, err = replayErr(t, img, &RegisterBroker{BrokerID: 1, BrokerEpoch: 4})
	requireErrorIs(t, err, ErrStaleBrokerEpoch)
	_, err = replayErr(t, img, &RegisterBroker{BrokerID: -1, BrokerEpoch: 4})
	requireErrorIs(t, err, ErrInvalidRecord)
}

func TestDeltaRegisterBrokerCopiesListeners(t *testing.T) {
	r := register(1, 5)
	img := apply(t, EmptyImage(), r)
	r.Listeners[0].Host = "changed"
	b, _ := img.Broker(1)
	require(t, b.Listeners[0].Host == "localhost", "image shares the record's listeners: %+v", b.Listeners)
}

func TestDeltaFenceUnfenceUnregister(t *testing.T) {
	img := apply(t, EmptyImage(), register(1, 5), register(2, 6))
	img = apply(t, img, &UnfenceBroker{BrokerID: 1, BrokerEpoch: 5})
	b, _ := img.Broker(1)
	require(t, !b.Fenced, "unfence: %+v", b)
	img = apply(t, img, &FenceBroker{BrokerID: 1, BrokerEpoch: 5}, &FenceBroker{BrokerID: 1, BrokerEpoch: 5})
	b, _ = img.Broker(1)
	require(t, b.Fenced, "fence: %+v", b)
	img = apply(t, img, &UnregisterBroker{BrokerID: 1, BrokerEpoch: 5})
	_, ok := img.Broker(1)
	require(t, !ok && len(img.Brokers()) == 1, "unregister left %v", img.Brokers())

	for _, r := range []Record{
		&FenceBroker{BrokerID: 2, BrokerEpoch: 5},
		&UnfenceBroker{BrokerID: 2, BrokerEpoch: 7},
		&UnregisterBroker{BrokerID: 2, BrokerEpoch: 0},
	} {
		_, err := replayErr(t, img, r)
		requireErrorIs(t, err, ErrStaleBrokerEpoch)
	}
	for _, r := range []Record{
		&FenceBroker{BrokerID: 1, BrokerEpoch: 5},
		&UnfenceBroker{BrokerID: 1, BrokerEpoch: 5},
		&UnregisterBroker{BrokerID: 1, BrokerEpoch: 5},
	} {
		_, err := replayErr(t, img, r)
		requireErrorIs(t, err, ErrUnknownBroker)
	}
}

func TestDeltaBrokerChangesWithinOneDelta(t *testing.T) {
	img := apply(t, EmptyImage(),
		register(1, 5), &UnfenceBroker{BrokerID: 1, BrokerEpoch: 5},
		&UnregisterBroker{BrokerID: 1, BrokerEpoch: 5}, register(1, 9),
		&UnfenceBroker{BrokerID: 1, BrokerEpoch: 9})
	b, ok := img.Broker(1)
	require(t, ok && b.Epoch == 9 && !b.Fenced, "broker 1: %+v", b)
	_, err := replayErr(t, EmptyImage(), register(1, 5), &UnregisterBroker{BrokerID: 1, BrokerEpoch: 5},
		&FenceBroker{BrokerID: 1, BrokerEpoch: 5})
	requireErrorIs(t, err, ErrUnknownBroker)
}

func TestDeltaTopic(t *testing.T) {
	img := clusterImage(t)
	cases := []struct {
		record *Topic
		want   error
	}{
		{&Topic{Name: "orders", ID: uuid(2)}, ErrTopicExists},
		{&Topic{Name: "payments", ID: uuid(1)}, ErrTopicExists},
		{&Topic{Name: "", ID: uuid(2)}, ErrInvalidRecord},
		{&Topic{Name: "payments"}, ErrInvalidRecord},
	}
	for _, c := range cases {
		_, err := replayErr(t, img, c.record)
		requireErrorIs(t, err, c.want)
	}
	_, err := replayErr(t, img, &Topic{Name: "a", ID: uuid(7)}, &Topic{Name: "a", ID: uuid(8)})
	requireErrorIs(t, err, ErrTopicExists)
	_, err = replayErr(t, img, &Topic{Name: "a", ID: uuid(7)}, &Topic{Name: "b", ID: uuid(7)})
	requireErrorIs(t, err, ErrTopicExists)

	img = apply(t, img, &Topic{Name: "a", ID: uuid(7)})
	a, ok := img.Topic("a")
	require(t, ok && a.ID == uuid(7) && len(a.Partitions) == 0, "topic a: %+v", a)
	byID, _ := img.TopicByID(uuid(7))
	require(t, byID == a, "TopicByID and Topic disagree")
}

func TestDeltaPartition(t *testing.T) {
	img := clusterImage(t)
	ok := func(p int32) *Partition {
		return &Partition{TopicID: uuid(1), Partition: p, Replicas: []int32{0, 1}, ISR: []int32{1}, Leader: 1}
	}
	cases := []struct {
		name   string
		record *Partition
		want   error
	}{
		{"unknown topic", &Partition{TopicID: uuid(9), Replicas: []int32{0}}, ErrUnknownTopic},
		{"existing id", ok(1), ErrPartitionNotDense},
		{"gap", ok(3), ErrPartitionNotDense},
		{"negative", ok(-1), ErrPartitionNotDense},
		{"no replicas", &Partition{TopicID: uuid(1), Partition: 2}, ErrInvalidPartition},
		{"twice", &Partition{TopicID: uuid(1), Partition: 2, Replicas: []int32{1, 1}, Leader: NoLeader}, ErrInvalidPartition},
		{"negative id", &Partition{TopicID: uuid(1), Partition: 2, Replicas: []int32{-1}, Leader: NoLeader}, ErrInvalidPartition},
		{"isr outside", &Partition{TopicID: uuid(1), Partition: 2, Replicas: []int32{1}, ISR: []int32{2}, Leader: 1}, ErrInvalidPartition},
		{"isr twice", &Partition{TopicID: uuid(1), Partition: 2, Replicas: []int32{1, 2}, ISR: []int32{2, 2}, Leader: 1}, ErrInvalidPartition},
		{"leader outside", &Partition{TopicID: uuid(1), Partition: 2, Replicas: []int32{1}, Leader: 4}, ErrInvalidPartition},
		{"bad leader", &Partition{TopicID: uuid(1), Partition: 2, Replicas: []int32{1}, Leader: NoLeaderChange}, ErrInvalidPartition},
		{"negative epoch", &Partition{TopicID: uuid(1), Partition: 2, Replicas: []int32{1}, Leader: 1, LeaderEpoch: -1}, ErrInvalidPartition},
	}
	for _, c := range cases {
		_, err := replayErr(t, img, c.record)
		if err == nil || !errorsIs(err, c.want) {
			t.Fatalf("%s: error %v, want %v", c.name, err, c.want)
		}
	}
	img = apply(t, img, ok(2), ok(3))
	topic, _ := img.Topic("orders")
	require(t, len(topic.Partitions) == 4 && img.NumPartitions() == 4, "partitions: %d, %d", len(topic.Partitions), img.NumPartitions())
	requireEqual(t, *topic.Partitions[3], PartitionImage{Replicas: []int32{0, 1}, ISR: []int32{1}, Leader: 1})
}

func TestDeltaPartitionCopiesReplicaLists(t *testing.T) {
	r := &Partition{TopicID: uuid(1), Partition: 2, Replicas: []int32{0, 1}, ISR: []int32{0, 1}, Leader: 0}
	img := apply(t, clusterImage(t), r)
	r.Replicas[0], r.ISR[0] = 7, 7
	p, _ := img.Partition("orders", 2)
	requireEqual(t, p.Replicas, []int32{0, 1})
	requireEqual(t, p.ISR, []int32{0, 1})
	require(t, cap(p.Replicas) == len(p.Replicas), "replicas have spare capacity into the ISR")
}

func TestDeltaPartitionChange(t *testing.T) {
	img := clusterImage(t)
	before, _ := img.Partition("orders", 0)
	change := func(r *PartitionChange) *PartitionImage {
		t.Helper()
		img = apply(t, img, r)
		p, _ := img.Partition("orders", r.Partition)
		return p
	}
	p := change(&PartitionChange{TopicID: uuid(1), Partition: 0, Leader: NoLeaderChange, ISR: []int32{0, 1}})
	requireEqual(t, *p, PartitionImage{Replicas: []int32{0, 1, 2}, ISR: []int32{0, 1}, Leader: 0, LeaderEpoch: 0, PartitionEpoch: 1})
	p = change(&PartitionChange{TopicID: uuid(1), Partition: 0, Leader: 1})
	requireEqual(t, *p, PartitionImage{Replicas: []int32{0, 1, 2}, ISR: []int32{0, 1}, Leader: 1, LeaderEpoch: 1, PartitionEpoch: 2})
	p = change(&PartitionChange{TopicID: uuid(1), Partition: 0, Leader: 1})
	require(t, p.Leader == 1 && p.LeaderEpoch == 2 && p.PartitionEpoch == 3, "same leader again bumps the epochs: %+v", p)
	p = change(&PartitionChange{TopicID: uuid(1), Partition: 0, Leader: NoLeader, ISR: []int32{}})
	requireEqual(t, *p, PartitionImage{Replicas: []int32{0, 1, 2}, ISR: []int32{}, Leader: NoLeader, LeaderEpoch: 3, PartitionEpoch: 4})
	p = change(&PartitionChange{TopicID: uuid(1), Partition: 0, Leader: 2, ISR: []int32{2}, Replicas: []int32{2}})
	requireEqual(t, *p, PartitionImage{Replicas: []int32{2}, ISR: []int32{2}, Leader: 2, LeaderEpoch: 4, PartitionEpoch: 5})
	p = change(&PartitionChange{TopicID: uuid(1), Partition: 0, Leader: NoLeaderChange})
	require(t, p.PartitionEpoch == 6 && p.LeaderEpoch == 4, "an empty change still bumps the partition epoch: %+v", p)
	requireEqual(t, *before, PartitionImage{Replicas: []int32{0, 1, 2}, ISR: []int32{0, 1, 2}, Leader: 0})
}

func TestDeltaPartitionChangeErrors(t *testing.T) {
	img := clusterImage(t)
	cases := []struct {
		name   string
		record *PartitionChange
		want   error
	}{
		{"unknown topic", &PartitionChange{TopicID: uuid(9), Leader: NoLeaderChange}, ErrUnknownTopic},
		{"unknown partition", &PartitionChange{TopicID: uuid(1), Partition: 2, Leader: NoLeaderChange}, ErrUnknownPartition},
		{"negative partition", &PartitionChange{TopicID: uuid(1), Partition: -1, Leader: NoLeaderChange}, ErrUnknownPartition},
		{"leader outside", &PartitionChange{TopicID: uuid(1), Leader: 5}, ErrInvalidPartition},
		{"bad leader", &PartitionChange{TopicID: uuid(1), Leader: -3}, ErrInvalidPartition},
		{"isr outside", &PartitionChange{TopicID: uuid(1), Leader: NoLeaderChange, ISR: []int32{4}}, ErrInvalidPartition},
		{"replicas drop leader", &PartitionChange{TopicID: uuid(1), Leader: NoLeaderChange, Replicas: []int32{1, 2}}, ErrInvalidPartition},
		{"empty replicas", &PartitionChange{TopicID: uuid(1), Leader: NoLeader, ISR: []int32{}, Replicas: []int32{}}, ErrInvalidPartition},
	}
	for _, c := range cases {
		_, err := replayErr(t, img, c.record)
		if !errorsIs(err, c.want) {
			t.Fatalf("%s: error %v, want %v", c.name, err, c.want)
		}
	}
}

func TestDeltaPartitionChangeEpochOverflow(t *testing.T) {
	img := apply(t, clusterImage(t), &Partition{TopicID: uuid(1), Partition: 2, Replicas: []int32{0}, Leader: 0,
		LeaderEpoch: math.MaxInt32, PartitionEpoch: math.MaxInt32 - 1})
	_, err := replayErr(t, img, &PartitionChange{TopicID: uuid(1), Partition: 2, Leader: 0})
	requireErrorIs(t, err, ErrInvalidPartition)
	img = apply(t, img, &PartitionChange{TopicID: uuid(1), Partition: 2, Leader: NoLeaderChange})
	_, err = replayErr(t, img, &PartitionChange{TopicID: uuid(1), Partition: 2, Leader: NoLeaderChange})
	requireErrorIs(t, err, ErrInvalidPartition)
}

func TestDeltaRemoveTopic(t *testing.T) {
	base := clusterImage(t)
	img := apply(t, base, &RemoveTopic{TopicID: uuid(1)})
	_, ok := img.Topic("orders")
	_, okID := img.TopicByID(uuid(1))
	require(t, !ok && !okID && img.NumTopics() == 0 && img.NumPartitions() == 0, "topic still there")
	require(t, img.Configs(ConfigResourceTopic, "orders") == nil, "configs outlive the topic: %v", img.Configs(ConfigResourceTopic, "orders"))
	_, ok = base.Topic("orders")
	require(t, ok && base.Configs(ConfigResourceTopic, "orders") != nil, "the base image changed")

	_, err := replayErr(t, base, &RemoveTopic{TopicID: uuid(9)})
	requireErrorIs(t, err, ErrUnknownTopic)
	_, err = replayErr(t, base, &RemoveTopic{TopicID: uuid(1)}, &RemoveTopic{TopicID: uuid(1)})
	requireErrorIs(t, err, ErrUnknownTopic)
	for _, r := range []Record{
		&Partition{TopicID: uuid(1), Partition: 2, Replicas: []int32{0}, Leader: 0},
		&PartitionChange{TopicID: uuid(1), Leader: NoLeaderChange},
		&Config{ResourceType: ConfigResourceTopic, ResourceName: "orders", Name: "x", Value: "y"},
	} {
		_, err = replayErr(t, base, &RemoveTopic{TopicID: uuid(1)}, r)
		requireErrorIs(t, err, ErrUnknownTopic)
	}
}

// TestDeltaRemoveAndRecreateTopic deletes a topic and creates its name
// again in the same delta, with a new id and with the old one: the new
// topic starts with no partitions and no configs.
func TestDeltaRemoveAndRecreateTopic(t *testing.T) {
	base := clusterImage(t)
	for _, id := range []UUID{uuid(2), uuid(1)} {
		img := apply(t, base,
			&PartitionChange{TopicID: uuid(1), Partition: 0, Leader: 1},
			&RemoveTopic{TopicID: uuid(1)},
			&Topic{Name: "orders", ID: id},
			&Partition{TopicID: id, Partition: 0, Replicas: []int32{2}, ISR: []int32{2}, Leader: 2},
			&Config{ResourceType: ConfigResourceTopic, ResourceName: "orders", Name: "retention.ms", Value: "1"},
		)
		topic, ok := img.Topic("orders")
		require(t, ok && topic.ID == id && len(topic.Partitions) == 1, "re-created topic: %+v", topic)
		requireEqual(t, *topic.Partitions[0], PartitionImage{Replicas: []int32{2}, ISR: []int32{2}, Leader: 2})
		requireEqual(t, img.Configs(ConfigResourceTopic, "orders"), map[string]string{"retention.ms": "1"})
		require(t, img.NumTopics() == 1 && img.NumPartitions() == 1, "counts %d %d", img.NumTopics(), img.NumPartitions())
		if id != uuid(1) {
			_, ok = img.TopicByID(uuid(1))
			require(t, !ok, "old id still resolves")
		}
		requireSameImage(t, apply(t, EmptyImage(), img.Records()...), apply(t, EmptyImage(), img.Records()...))
	}
}

// TestDeltaRenameViaReusedID removes topic "orders" and creates "other"
// under the same id: the name "orders" must no longer resolve.
func TestDeltaRenameViaReusedID(t *testing.T) {
	d := NewDelta(clusterImage(t))
	requireNoError(t, d.Replay(&RemoveTopic{TopicID: uuid(1)}))
	requireNoError(t, d.Replay(&Topic{Name: "other", ID: uuid(1)}))
	requireErrorIs(t, d.Replay(&Config{ResourceType: ConfigResourceTopic, ResourceName: "orders", Name: "a", Value: "b"}), ErrUnknownTopic)
	requireNoError(t, d.Replay(&Topic{Name: "orders", ID: uuid(3)}))
	img := d.Apply(100)
	names := []string{}
	for _, topic := range img.Topics() {
		names = append(names, topic.Name)
	}
	requireEqual(t, names, []string{"orders", "other"})
}

func TestDeltaConfig(t *testing.T) {
	base := clusterImage(t)
	img := apply(t, base,
		&Config{ResourceType: ConfigResourceTopic, ResourceName: "orders", Name: "retention.ms", Value: "5"},
		&Config{ResourceType: ConfigResourceBroker, ResourceName: "", Name: "num.partitions", Value: "3"},
		&Config{ResourceType: ConfigResourceBroker, ResourceName: "7", Name: "x", Value: "y"},
		&Config{ResourceType: ConfigResourceBroker, ResourceName: "7", Name: "x", Delete: true},
		&Config{ResourceType: ConfigResourceTopic, ResourceName: "orders", Name: "absent", Delete: true},
	)
	requireEqual(t, img.Configs(ConfigResourceTopic, "orders"), map[string]string{"cleanup.policy": "compact", "retention.ms": "5"})
	requireEqual(t, img.Configs(ConfigResourceBroker, ""), map[string]string{"num.partitions": "3"})
	require(t, img.Configs(ConfigResourceBroker, "7") == nil, "a resource with no keys left must be gone")
	requireEqual(t, base.Configs(ConfigResourceTopic, "orders"), map[string]string{"cleanup.policy": "compact"})

	cases := []struct {
		record *Config
		want   error
	}{
		{&Config{ResourceType: ConfigResourceTopic, ResourceName: "nope", Name: "a", Value: "b"}, ErrUnknownTopic},
		{&Config{ResourceType: 3, ResourceName: "orders", Name: "a", Value: "b"}, ErrInvalidRecord},
		{&Config{ResourceType: ConfigResourceTopic, ResourceName: "orders", Name: "", Value: "b"}, ErrInvalidRecord},
	}
	for _, c := range cases {
		_, err := replayErr(t, img, c.record)
		requireErrorIs(t, err, c.want)
	}
}

func TestDeltaProducerIDs(t *testing.T) {
	img := apply(t, EmptyImage(), &ProducerIDs{BrokerID: 1, BrokerEpoch: 3, NextProducerID: 1000})
	require(t, img.NextProducerID() == 1000, "next producer id %d", img.NextProducerID())
	img = apply(t, img, &ProducerIDs{BrokerID: 2, NextProducerID: 2000}, &ProducerIDs{BrokerID: 1, NextProducerID: 3000})
	require(t, img.NextProducerID() == 3000, "next producer id %d", img.NextProducerID())
	for _, next := range []int64{3000, 2999, 0, -1} {
		_, err := replayErr(t, img, &ProducerIDs{BrokerID: 1, NextProducerID: next})
		requireErrorIs(t, err, ErrProducerIDRegressed)
	}
}

func TestDeltaFeatureLevel(t *testing.T) {
	img := apply(t, EmptyImage(), &FeatureLevel{Name: "metadata.version", Level: 3}, &FeatureLevel{Name: "kraft.version", Level: 1})
	require(t, img.FeatureLevel("metadata.version") == 3 && img.FeatureLevel("absent") == 0, "levels %v", img.Features())
	img = apply(t, img, &FeatureLevel{Name: "kraft.version", Level: 0})
	requireEqual(t, img.Features(), map[string]int16{"metadata.version": 3})
	for _, r := range []*FeatureLevel{{Name: "", Level: 1}, {Name: "x", Level: -1}} {
		_, err := replayErr(t, img, r)
		requireErrorIs(t, err, ErrInvalidRecord)
	}
}

type unknownRecord struct{}

func (unknownRecord) Type() RecordType { return 99 }

func TestDeltaNilAndUnknownRecords(t *testing.T) {
	d := NewDelta(EmptyImage())
	requireErrorIs(t, d.Replay(nil), ErrInvalidRecord)
	for _, s := range sampleRecords() {
		nilPointer := reflectZeroPointer(s.record)
		requireErrorIs(t, d.Replay(nilPointer), ErrInvalidRecord)
	}
	requireErrorIs(t, d.Replay(unknownRecord{}), ErrUnknownRecordType)
}

// TestDeltaFailedReplayChangesNothing replays, for every error case, the
// failing record into a delta and checks the delta still applies to what
// the records before it make.
func TestDeltaFailedReplayChangesNothing(t *testing.T) {
	base := clusterImage(t)
	failing := []Record{
		&RegisterBroker{BrokerID: 1, BrokerEpoch: 1},
		&FenceBroker{BrokerID: 1, BrokerEpoch: 1},
		&UnregisterBroker{BrokerID: 9},
		&Topic{Name: "orders", ID: uuid(8)},
		&Partition{TopicID: uuid(1), Partition: 2, Replicas: []int32{0}, Leader: 7},
		&PartitionChange{TopicID: uuid(1), Partition: 1, Leader: 8},
		&PartitionChange{TopicID: uuid(1), Partition: 1, Leader: NoLeaderChange, Replicas: []int32{0, 0}},
		&RemoveTopic{TopicID: uuid(8)},
		&Config{ResourceType: ConfigResourceTopic, ResourceName: "x", Name: "a"},
		&ProducerIDs{NextProducerID: -5},
		&FeatureLevel{Name: "f", Level: -2},
	}
	prefix := []Record{&PartitionChange{TopicID: uuid(1), Partition: 0, Leader: 2}, &FenceBroker{BrokerID: 0, BrokerEpoch: 10}}
	want := apply(t, base, prefix...)
	for _, r := range failing {
		d, err := replayErr(t, base, append(slices.Clone(prefix), r)...)
		require(t, err != nil, "%T %+v replayed", r, r)
		got := d.Apply(want.Offset())
		requireSameImage(t, got, want)
	}
}

func TestDeltaApplyThenReplayMore(t *testing.T) {
	base := clusterImage(t)
	d := NewDelta(base)
	requireNoError(t, d.Replay(&PartitionChange{TopicID: uuid(1), Partition: 0, Leader: 1}))
	first := d.Apply(20)
	firstSnapshot := encodeRecords(first)
	requireNoError(t, d.Replay(&PartitionChange{TopicID: uuid(1), Partition: 0, Leader: 2}))
	requireNoError(t, d.Replay(&Config{ResourceType: ConfigResourceTopic, ResourceName: "orders", Name: "a", Value: "b"}))
	second := d.Apply(21)

	require(t, string(encodeRecords(first)) == string(firstSnapshot), "replaying after Apply changed the applied image")
	p, _ := second.Partition("orders", 0)
	require(t, p.Leader == 2 && p.LeaderEpoch == 2 && p.PartitionEpoch == 2, "second image: %+v", p)
	oneDelta := apply(t, base,
		&PartitionChange{TopicID: uuid(1), Partition: 0, Leader: 1},
		&PartitionChange{TopicID: uuid(1), Partition: 0, Leader: 2},
		&Config{ResourceType: ConfigResourceTopic, ResourceName: "orders", Name: "a", Value: "b"})
	requireEqual(t, second.Records(), oneDelta.Records())
	require(t, second.Offset() == 21, "offset %d", second.Offset())
}

// TestDeltaEpochsAlwaysIncrease replays random partition changes and checks
// after each that no leader or partition epoch went back, and that the
// leader epoch moved exactly when a leader was set.
func TestDeltaEpochsAlwaysIncrease(t *testing.T) {
	seed := uint64(0x5eed)
	rng := rand.New(rand.NewPCG(seed, seed))
	img := clusterImage(t)
	for step := 0; step < 2000; step++ {
		partition := int32(rng.IntN(2))
		before, _ := img.Partition("orders", partition)
		r := randomChange(rng, partition)
		d := NewDelta(img)
		if err := d.Replay(r); err != nil {
			t.Fatalf("seed %d step %d: %+v: %v", seed, step, r, err)
		}
		img = d.Apply(img.Offset() + 1)
		after, _ := img.Partition("orders", partition)
		require(t, after.PartitionEpoch == before.PartitionEpoch+1, "seed %d step %d: partition epoch %d -> %d", seed, step, before.PartitionEpoch, after.PartitionEpoch)
		wantLeaderEpoch := before.LeaderEpoch
		if r.Leader != NoLeaderChange {
			wantLeaderEpoch++
		}
		require(t, after.LeaderEpoch == wantLeaderEpoch, "seed %d step %d: leader epoch %d -> %d", seed, step, before.LeaderEpoch, after.LeaderEpoch)
	}
}

// randomChange returns a valid change to partition p of "orders", whose
// replicas are always brokers 0-2.
func randomChange(rng *rand.Rand, p int32) *PartitionChange {
	isr := []int32{}
	for id := int32(0); id < 3; id++ {
		if rng.IntN(2) == 0 {
			isr = append(isr, id)
		}
	}
	r := &PartitionChange{TopicID: uuid(1), Partition: p, Leader: NoLeaderChange, ISR: isr}
	switch {
	case rng.IntN(3) == 0:
		r.Leader = NoLeader
	case rng.IntN(2) == 0:
		r.Leader = int32(rng.IntN(3))
	}
	if rng.IntN(4) == 0 {
		r.ISR = nil
	}
	return r
}
