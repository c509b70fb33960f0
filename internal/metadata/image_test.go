package metadata

import (
	"testing"
)

func TestImageEmpty(t *testing.T) {
	img := EmptyImage()
	require(t, img.Offset() == -1 && img.NumTopics() == 0 && img.NumPartitions() == 0, "empty image: %+v", img)
	require(t, len(img.Brokers()) == 0 && len(img.Topics()) == 0 && len(img.Records()) == 0, "empty image has content")
	_, ok := img.Topic("x")
	require(t, !ok, "topic in empty image")
	_, ok = img.Broker(0)
	require(t, !ok, "broker in empty image")
	_, ok = img.Partition("x", 0)
	require(t, !ok, "partition in empty image")
	require(t, img.Configs(ConfigResourceBroker, "") == nil && img.NextProducerID() == 0 && img.FeatureLevel("x") == 0, "empty image has values")
	applied := NewDelta(img).Apply(-1)
	requireSameImage(t, applied, img)
}

func TestImageAccessorsSorted(t *testing.T) {
	img := apply(t, EmptyImage(), register(5, 1), register(1, 2), register(3, 3),
		&Topic{Name: "zeta", ID: uuid(1)}, &Topic{Name: "alpha", ID: uuid(2)}, &Topic{Name: "mid", ID: uuid(3)},
		&Partition{TopicID: uuid(3), Replicas: []int32{1}, Leader: 1},
		&Partition{TopicID: uuid(3), Partition: 1, Replicas: []int32{1}, Leader: NoLeader})
	var ids []int32
	for _, b := range img.Brokers() {
		ids = append(ids, b.ID)
	}
	requireEqual(t, ids, []int32{1, 3, 5})
	var names []string
	for _, topic := range img.Topics() {
		names = append(names, topic.Name)
	}
	requireEqual(t, names, []string{"alpha", "mid", "zeta"})
	require(t, img.NumTopics() == 3 && img.NumPartitions() == 2, "counts %d %d", img.NumTopics(), img.NumPartitions())
	p, ok := img.Partition("mid", 1)
	require(t, ok && p.Leader == NoLeader, "mid-1: %+v", p)
	_, ok = img.Partition("mid", 2)
	require(t, !ok, "mid-2 exists")
	require(t, img.Offset() == 7, "offset %d", img.Offset())

	img = apply(t, img, &Topic{Name: "beta", ID: uuid(4)}, &RemoveTopic{TopicID: uuid(1)}, &Topic{Name: "omega", ID: uuid(5)})
	names = names[:0]
	for _, topic := range img.Topics() {
		names = append(names, topic.Name)
	}
	requireEqual(t, names, []string{"alpha", "beta", "mid", "omega"})
}

// TestImageStructuralSharing checks that Apply copies only what changed:
// untouched topics, partitions, brokers and config maps are the very same
// objects in the new image.
func TestImageStructuralSharing(t *testing.T) {
	base := apply(t, clusterImage(t),
		&Topic{Name: "other", ID: uuid(2)},
		&Partition{TopicID: uuid(2), Replicas: []int32{0}, Leader: 0},
		&Config{ResourceType: ConfigResourceBroker, ResourceName: "", Name: "a", Value: "b"})
	img := apply(t, base, &PartitionChange{TopicID: uuid(1), Partition: 1, Leader: 2})

	orders0, _ := base.Topic("orders")
	orders1, _ := img.Topic("orders")
	other0, _ := base.Topic("other")
	other1, _ := img.Topic("other")
	require(t, other0 == other1, "an unchanged topic was copied")
	require(t, orders0 != orders1, "a changed topic was modified in place")
	require(t, orders0.Partitions[0] == orders1.Partitions[0], "an unchanged partition was copied")
	require(t, orders0.Partitions[1] != orders1.Partitions[1], "a changed partition was modified in place")
	require(t, orders0.Partitions[1].Leader == 1 && orders1.Partitions[1].Leader == 2, "leaders %d %d", orders0.Partitions[1].Leader, orders1.Partitions[1].Leader)
	b0, _ := base.Broker(0)
	b1, _ := img.Broker(0)
	require(t, b0 == b1, "an unchanged broker was copied")
	require(t, &base.Brokers()[0] == &img.Brokers()[0], "the broker list was rebuilt without a broker change")
	c0 := base.Configs(ConfigResourceTopic, "orders")
	c1 := img.Configs(ConfigResourceTopic, "orders")
	c0["probe"] = "x" // only a test may do this: it shows both images hold the same map
	_, shared := c1["probe"]
	delete(c0, "probe")
	require(t, shared, "an unchanged config map was copied")

	img2 := apply(t, img, &FenceBroker{BrokerID: 1, BrokerEpoch: 11})
	t1, _ := img2.Topic("orders")
	require(t, t1 == orders1 && &img2.Topics()[0] == &img.Topics()[0], "a broker change copied the topics")
	b1again, _ := img2.Broker(0)
	require(t, b1again == b1, "fencing broker 1 copied broker 0")
}

// TestImageRecordsRebuild replays an image's records into an empty image
// and expects the same image.
func TestImageRecordsRebuild(t *testing.T) {
	img := apply(t, clusterImage(t),
		&PartitionChange{TopicID: uuid(1), Partition: 1, Leader: 2, ISR: []int32{2}},
		&FenceBroker{BrokerID: 0, BrokerEpoch: 10},
		&ProducerIDs{BrokerID: 1, BrokerEpoch: 11, NextProducerID: 5000},
		&FeatureLevel{Name: "metadata.version", Level: 7},
		&Config{ResourceType: ConfigResourceBroker, ResourceName: "1", Name: "x", Value: "y"},
		&Config{ResourceType: ConfigResourceBroker, ResourceName: "", Name: "x", Value: "z"},
	)
	rebuilt := NewDelta(EmptyImage())
	for _, r := range img.Records() {
		requireNoError(t, rebuilt.Replay(r))
	}
	requireSameImage(t, rebuilt.Apply(img.Offset()), img)
	p, _ := img.Partition("orders", 1)
	require(t, p.LeaderEpoch == 1 && p.PartitionEpoch == 1, "epochs survive the rebuild: %+v", p)
}

// TestNewer: the newer image by offset wins whichever side it is on, the
// one brought wins a tie, and nil never replaces an image.
func TestNewer(t *testing.T) {
	old, same, newer := &Image{offset: 5}, &Image{offset: 5}, &Image{offset: 9}
	for _, c := range []struct {
		name     string
		cur, img *Image
		want     *Image
	}{
		{"nothing yet", nil, old, old},
		{"none brought", old, nil, old},
		{"both nil", nil, nil, nil},
		{"newer brought", old, newer, newer},
		{"older brought", newer, old, newer},
		{"tie takes the one brought", old, same, same},
	} {
		if got := Newer(c.cur, c.img); got != c.want {
			t.Errorf("%s: Newer = %p, want %p", c.name, got, c.want)
		}
	}
}
