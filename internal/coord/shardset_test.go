package coord

import (
	"testing"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/metadata"
)

// TestCoordStaleRefreshDoesNotUnloadALedShard: the group, transaction and
// share-state coordinators share shardSet. A refresh that read an image
// from before this node led the partition, and applies it after another
// refresh loaded the shard from a newer image, must not unload it:
// nothing reloads it until the next metadata change or a request for one
// of its keys, so a transaction shard's prepared transactions and
// timeouts would wait.
func TestCoordStaleRefreshDoesNotUnloadALedShard(t *testing.T) {
	type fakeShard struct{ shardBase }
	d := metadata.NewDelta(metadata.EmptyImage())
	id := metadata.UUID{0: 0xCC, 15: 1}
	noErr(t, d.Replay(&metadata.Topic{Name: "state", ID: id}))
	noErr(t, d.Replay(&metadata.Partition{TopicID: id, Partition: 0, Replicas: []int32{testNode}, ISR: []int32{testNode}, Leader: testNode}))
	newer := d.Apply(2)

	current := metadata.EmptyImage()
	var meanwhile func()
	image := func() *metadata.Image {
		img := current
		if m := meanwhile; m != nil {
			meanwhile = nil
			m()
		}
		return img
	}
	ss := newShardSet[*fakeShard]("state", testNode, image, nil, clock.Real(), quietLogger)
	ss.newShard = func(p, leaderEpoch int32) *fakeShard { return &fakeShard{shardBase: newShardBase(p, leaderEpoch)} }
	defer ss.stop()

	// The stale refresh reads the image without the topic; meanwhile the
	// topic is created, led here, and another refresh loads its shard.
	meanwhile = func() {
		current = newer
		ss.refresh()
		_, ok := ss.get(0)
		require(t, ok, "the newer image loaded no shard")
	}
	ss.refresh()
	require(t, meanwhile == nil, "the refresh did not read the image")
	_, ok := ss.get(0)
	require(t, ok, "the stale refresh unloaded the shard of a partition this node leads")
}
