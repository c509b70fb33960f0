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

// TestPartitionIdempotentProducerAfterCompactionAndRestart: an idempotent
// producer's batches are compacted away except its last (kept empty), the
// broker restarts without producer snapshots, and the producer state
// rebuilt from the compacted log still knows its last sequence: a retry of
// the last batch is a duplicate, the next sequence is accepted, a gap is
// refused.
func TestPartitionIdempotentProducerAfterCompactionAndRestart(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, map[string]string{"cleanup.policy": "compact", "segment.bytes": "1024"}, []int32{1})
	p := f.partition("t", 0)
	idemKeyed := func(seq int32, key string) []byte {
		b, err := record.AppendBatch(nil, record.BatchOptions{ProducerID: 7, ProducerEpoch: 0, BaseSequence: seq, FirstTimestamp: f.nowMs()},
			[]record.Record{{Key: []byte(key), Value: []byte(fmt.Sprintf("value-%d", seq))}})
		noErr(t, err)
		return b
	}
	for seq := range int32(5) {
		_, err := p.Append(idemKeyed(seq, "k"))
		noErr(t, err)
	}
	for i := range 30 { // supersede "k" and seal everything
		_, err := p.Append(keyedBatch(t, f.nowMs(), "k", fmt.Sprintf("plain-%d-%060d", i, i)))
		noErr(t, err)
	}
	stats, err := p.log.CleanNow(1 << 20)
	noErr(t, err)
	require(t, stats.RecordsRemoved >= 5, "the producer's records were not compacted: %+v", stats)

	noErr(t, f.mgr.Close())
	noErr(t, f.logs.Close())
	names, err := f.fs.List("/data/t-0")
	noErr(t, err)
	for _, n := range names {
		if _, ok := parseSnapshotName(n); ok {
			noErr(t, f.fs.Remove("/data/t-0/"+n))
		}
	}
	f.open(f.fs)
	p = f.partition("t", 0)
	res, err := p.Append(idemKeyed(4, "k"))
	noErr(t, err)
	require(t, res.Duplicate && res.BaseOffset == 4, "a retry of the last batch after compaction and restart: %+v", res)
	_, err = p.Append(idemKeyed(6, "k"))
	requireErrorIs(t, err, ErrOutOfOrderSequence)
	res, err = p.Append(idemKeyed(5, "k"))
	noErr(t, err)
	require(t, !res.Duplicate, "the next sequence was taken for a duplicate: %+v", res)
}
