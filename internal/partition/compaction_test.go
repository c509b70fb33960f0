package partition

import (
	"fmt"
	"testing"

	"github.com/sluicelog/sluice/internal/record"
)

// TestReplicationFollowerCopiesACompactedLeader: a follower that was cut off
// while its leader compacted catches up by fetching across the gaps
// (offsets kept, batches byte for byte), ends with the leader's log, and
// can compact its own copy below its own high watermark without changing
// what a consumer reads.
func TestReplicationFollowerCopiesACompactedLeader(t *testing.T) {
	c := newCluster(t)
	b1, b2 := c.addBroker(1, brokerOpts{}), c.addBroker(2, brokerOpts{})
	c.setLink(2, 1, linkDown)
	c.createTopic("t", 1, map[string]string{"cleanup.policy": "compact", "segment.bytes": "1024"}, []int32{1, 2})
	c.change(1, 1) // the follower out of the ISR: the leader's HW follows its log
	leader := b1.leader()
	for i := range 80 {
		_, err := leader.Append(keyedBatch(t, c.mk.nowMs(), fmt.Sprintf("k%d", i%6), fmt.Sprintf("v%d-%040d", i, i)))
		noErr(t, err)
	}
	stats, err := leader.log.CleanNow(1 << 20)
	noErr(t, err)
	require(t, stats.RecordsRemoved > 0, "the leader removed nothing: %+v", stats)
	want := latestValues(t, leader)

	c.setLink(2, 1, linkUp)
	follower := b2.hosted()
	c.requireConverged(leader, follower)
	_, err = follower.log.CleanNow(1 << 20)
	noErr(t, err)
	require(t, follower.log.FirstDirtyOffset() <= follower.Offsets().HighWatermark,
		"the follower cleaned to %d, above its HW %d", follower.log.FirstDirtyOffset(), follower.Offsets().HighWatermark)
	got := latestValues(t, follower)
	require(t, fmt.Sprint(got) == fmt.Sprint(want), "follower reads %v, leader %v", got, want)
}

func keyedBatch(t *testing.T, nowMs int64, key, value string) []byte {
	t.Helper()
	b, err := record.AppendBatch(nil, record.BatchOptions{ProducerID: -1, FirstTimestamp: nowMs},
		[]record.Record{{Key: []byte(key), Value: []byte(value)}})
	noErr(t, err)
	return b
}

// latestValues replays a partition's log into key -> latest value.
func latestValues(t *testing.T, p *Partition) map[string]string {
	t.Helper()
	out := map[string]string{}
	data := logBytes(t, p, p.Offsets().LogStartOffset)
	for rest := data; len(rest) > 0; {
		batch, next, _, err := record.NextBatch(rest)
		noErr(t, err)
		noErr(t, record.Records(batch, 1<<20, func(r *record.Record) error {
			out[string(r.Key)] = string(r.Value)
			return nil
		}))
		rest = next
	}
	return out
}
