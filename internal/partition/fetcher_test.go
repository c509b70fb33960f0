package partition

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/replica"
	"github.com/sluicelog/sluice/internal/vfs"
)

// Follower-side replication: two brokers, each with its own Manager and
// MemFS, the follower's replica fetcher pulling through the loopback
// LeaderClient (cluster_test.go).

// pairOfBrokers starts brokers 1 and 2 with t-0 on both, led by 1.
func pairOfBrokers(t *testing.T, o brokerOpts) (*cluster, *broker, *broker) {
	c := newCluster(t)
	b1, b2 := c.addBroker(1, brokerOpts{}), c.addBroker(2, o)
	c.createTopic("t", 1, nil, []int32{1, 2})
	return c, b1, b2
}

func (c *cluster) requireConverged(leader, follower *Partition) {
	c.t.Helper()
	c.eventually(func() error { return sameLog(c.t, leader, follower) })
}

// waitAppendAll waits for an AppendAll running in a goroutine, moving the
// clock so fetcher backoffs expire meanwhile.
func (c *cluster) waitAppendAll(done <-chan appendResult) appendResult {
	c.t.Helper()
	var r appendResult
	c.eventually(func() error {
		select {
		case r = <-done:
			return nil
		default:
			return fmt.Errorf("AppendAll still waiting")
		}
	})
	return r
}

func (c *cluster) requireOffsets(p *Partition, want Offsets) {
	c.t.Helper()
	c.eventually(func() error {
		if got := p.Offsets(); got != want {
			return fmt.Errorf("offsets %+v, want %+v", got, want)
		}
		return nil
	})
}

func TestReplicationFollowerCopiesLeader(t *testing.T) {
	c, b1, b2 := pairOfBrokers(t, brokerOpts{})
	p1 := b1.leader()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var acked []AppendResult
	for i := range 4 {
		r := c.waitAppendAll(appendAllAsync(p1, ctx, c.batch(idem(7, 0, int32(i*2), 2))))
		noErr(t, r.err)
		acked = append(acked, r.res)
		_, err := p1.Append(c.batch(batchSpec{records: 3, valueSize: 100 * i, producerID: -1}))
		noErr(t, err)
	}
	// acks=all returned, so the follower had each idempotent batch.
	p2 := b2.hosted()
	require(t, p2.Offsets().LogEndOffset >= acked[3].LastOffset+1, "follower at %+v after acks=all of %+v", p2.Offsets(), acked[3])
	c.requireConverged(p1, p2)
	// The leader learns the follower's log end from its next fetch.
	c.eventually(func() error {
		if o := p1.Offsets(); o.HighWatermark != o.LogEndOffset {
			return fmt.Errorf("leader HW %+v", o)
		}
		return nil
	})
	for i, h := range batchHeaders(t, logBytes(t, p2, 0)) {
		require(t, h.PartitionLeaderEpoch == 0, "follower batch %d epoch %d", i, h.PartitionLeaderEpoch)
	}
	require(t, slices.Equal(p2.LeaderEpochEntries(), p1.LeaderEpochEntries()), "follower epochs %v, leader %v",
		p2.LeaderEpochEntries(), p1.LeaderEpochEntries())

	// Broker 2 takes over: its producer state, built from what it
	// fetched, answers retries with the original offsets.
	c.change(2)
	p2 = b2.leader()
	for i, want := range acked {
		res, err := p2.Append(c.batch(idem(7, 0, int32(i*2), 2)))
		noErr(t, err)
		require(t, res.Duplicate && res.BaseOffset == want.BaseOffset && res.LastOffset == want.LastOffset,
			"retry of batch %d on the new leader: %+v, acknowledged %+v", i, res, want)
	}
	_, err := p2.Append(c.batch(idem(7, 0, 9, 2)))
	requireErrorIs(t, err, ErrOutOfOrderSequence)

	// And broker 1 follows it now.
	r := c.waitAppendAll(appendAllAsync(p2, ctx, c.batch(idem(7, 0, 8, 2))))
	noErr(t, r.err)
	require(t, !r.res.Duplicate && r.res.BaseOffset == acked[3].LastOffset+4, "new batch at %+v", r.res)
	c.requireConverged(p2, b1.hosted())
	want := []replica.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 1, StartOffset: r.res.BaseOffset}}
	require(t, slices.Equal(b1.hosted().LeaderEpochEntries(), want), "old leader's epochs %v, want %v", b1.hosted().LeaderEpochEntries(), want)
}

// TestReplicationFollowerTruncatesDivergentSuffix: broker 1 wrote records
// at epoch 0 that broker 2, elected at epoch 1 with a shorter log, never
// had; broker 1 drops exactly those and takes broker 2's.
func TestReplicationFollowerTruncatesDivergentSuffix(t *testing.T) {
	c, b1, b2 := pairOfBrokers(t, brokerOpts{})
	p1 := b1.leader()
	for range 2 {
		_, err := p1.Append(c.batch(plain(5)))
		noErr(t, err)
	}
	c.requireConverged(p1, b2.hosted())
	c.cut(1, 2)
	_, err := p1.Append(c.batch(plain(5))) // 10..14, epoch 0, only on broker 1
	noErr(t, err)

	c.change(2)
	p2 := b2.leader()
	_, err = p2.Append(c.batch(plain(3))) // 10..12, epoch 1
	noErr(t, err)

	c.setLink(1, 2, linkEpochsOnly)
	f1 := b1.hosted()
	c.eventually(func() error {
		if leo := f1.Offsets().LogEndOffset; leo != 10 {
			return fmt.Errorf("broker 1 LEO %d, want 10", leo)
		}
		return nil
	})
	require(t, bytes.Equal(logBytes(t, f1, 0), logBytes(t, p2, 0)[:len(logBytes(t, f1, 0))]), "truncated log is not the leader's prefix")
	require(t, slices.Equal(f1.LeaderEpochEntries(), []replica.EpochEntry{{Epoch: 0, StartOffset: 0}}), "epochs %v", f1.LeaderEpochEntries())

	c.setLink(1, 2, linkUp)
	c.requireConverged(p2, f1)
	hs := batchHeaders(t, logBytes(t, f1, 0))
	last := hs[len(hs)-1]
	require(t, last.BaseOffset == 10 && last.PartitionLeaderEpoch == 1, "last batch %+v", last)
}

// TestReplicationFollowerTruncatesInTwoRounds is KIP-279's case: the
// follower has epochs 1@0 and 3@50, the leader 1@0 (ending at 40) and
// 2@40. Asked about epoch 3, the leader answers epoch 2, which the
// follower never had: it truncates to 50, asks about epoch 1 and truncates
// to 40, where the logs really part.
func TestReplicationFollowerTruncatesInTwoRounds(t *testing.T) {
	c, b1, b2 := pairOfBrokers(t, brokerOpts{})
	c.change(1) // epoch 1, broker 1
	pA := b1.leader()
	for range 4 {
		_, err := pA.Append(c.batch(plain(10)))
		noErr(t, err)
	}
	c.requireConverged(pA, b2.hosted())
	c.cut(1, 2)
	_, err := pA.Append(c.batch(plain(10))) // 40..49 at epoch 1, only on A
	noErr(t, err)

	c.change(2) // epoch 2, broker 2 with 40 records
	pB := b2.leader()
	for range 2 {
		_, err := pB.Append(c.batch(plain(10))) // 40..59 at epoch 2
		noErr(t, err)
	}
	c.change(1) // epoch 3, broker 1 with 50 records
	pA = b1.leader()
	_, err = pA.Append(c.batch(plain(10))) // 50..59 at epoch 3
	noErr(t, err)
	c.change(2) // epoch 4, broker 2

	fA := b1.hosted()
	require(t, slices.Equal(fA.LeaderEpochEntries(), []replica.EpochEntry{{Epoch: 1, StartOffset: 0}, {Epoch: 3, StartOffset: 50}}),
		"follower epochs %v", fA.LeaderEpochEntries())
	require(t, slices.Equal(pB.LeaderEpochEntries(), []replica.EpochEntry{{Epoch: 1, StartOffset: 0}, {Epoch: 2, StartOffset: 40}, {Epoch: 4, StartOffset: 60}}),
		"leader epochs %v", pB.LeaderEpochEntries())

	c.setLink(1, 2, linkEpochsOnly)
	c.eventually(func() error {
		if leo := fA.Offsets().LogEndOffset; leo != 40 {
			return fmt.Errorf("follower LEO %d, want 40", leo)
		}
		return nil
	})
	var asked []int32
	for _, q := range c.epochQueries(1) {
		require(t, q.CurrentLeaderEpoch == 4, "query %+v", q)
		asked = append(asked, q.LeaderEpoch)
	}
	require(t, slices.Equal(asked, []int32{3, 1}), "follower asked about epochs %v, want 3 then 1", asked)
	require(t, bytes.Equal(logBytes(t, fA, 0), logBytes(t, pB, 0)[:len(logBytes(t, fA, 0))]), "truncated log is not the leader's prefix")

	c.setLink(1, 2, linkUp)
	c.requireConverged(pB, fA)
	require(t, slices.Equal(fA.LeaderEpochEntries(), []replica.EpochEntry{{Epoch: 1, StartOffset: 0}, {Epoch: 2, StartOffset: 40}}),
		"follower epochs after catching up %v", fA.LeaderEpochEntries())
}

// TestReplicationFollowerBehindLogStartStartsOver: the leader deleted the
// records after the follower's log end; the follower starts over at the
// leader's log start, then follows it as it moves.
func TestReplicationFollowerBehindLogStartStartsOver(t *testing.T) {
	c, b1, b2 := pairOfBrokers(t, brokerOpts{})
	p1 := b1.leader()
	_, err := p1.Append(c.batch(idem(3, 0, 0, 10)))
	noErr(t, err)
	f2 := b2.hosted()
	c.requireConverged(p1, f2)

	c.setLink(2, 1, linkDown)
	c.change(metadata.NoLeaderChange, 1) // the HW moves on without broker 2
	for range 2 {
		_, err := p1.Append(c.batch(plain(10)))
		noErr(t, err)
	}
	low, err := p1.DeleteRecordsBefore(20)
	noErr(t, err)
	require(t, low == 20 && p1.Offsets() == Offsets{20, 30, 30, 30}, "leader %+v", p1.Offsets())

	c.setLink(2, 1, linkUp)
	c.requireOffsets(f2, Offsets{20, 30, 30, 30})
	require(t, bytes.Equal(logBytes(t, f2, 20), logBytes(t, p1, 20)), "follower log differs from the leader's")
	require(t, slices.Equal(f2.LeaderEpochEntries(), p1.LeaderEpochEntries()), "follower epochs %v, leader %v",
		f2.LeaderEpochEntries(), p1.LeaderEpochEntries())
	require(t, len(f2.Producers()) == 0, "follower remembers producers of deleted records: %+v", f2.Producers())

	// Within the follower's log, its log start follows the leader's.
	_, err = p1.DeleteRecordsBefore(25)
	noErr(t, err)
	c.requireOffsets(f2, Offsets{25, 30, 30, 30})
}

// TestReplicationFollowerCrashKeepsLeaderPrefix crashes a follower that
// does not fsync (log.flush.policy=never) at a random point of catching
// up: whatever part of its log the crash keeps is a prefix of the
// leader's, and it catches up from there.
func TestReplicationFollowerCrashKeepsLeaderPrefix(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Logf("crash seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, 279))
			c, b1, b2 := pairOfBrokers(t, brokerOpts{defaults: map[string]string{FlushPolicyKey: "never"}})
			p1 := b1.leader()
			seq := int32(0)
			for i := range 12 {
				spec := batchSpec{records: 1 + rng.IntN(4), valueSize: rng.IntN(400), producerID: -1, tag: fmt.Sprint(i)}
				if i%3 == 0 {
					spec, seq = idem(5, 0, seq, 1), seq+1
				}
				_, err := p1.Append(c.batch(spec))
				noErr(t, err)
			}
			f2 := b2.hosted()
			target := 1 + rng.Int64N(p1.Offsets().LogEndOffset)
			c.eventually(func() error {
				if leo := f2.Offsets().LogEndOffset; leo < target {
					return fmt.Errorf("follower LEO %d, waiting for %d", leo, target)
				}
				return nil
			})

			clone := b2.fs.(*vfs.MemFS).CrashClone(rng)
			c.setLink(2, 1, linkDown)
			b2.close()
			b2.open(clone)
			f2 = b2.hosted()
			leo := f2.Offsets().LogEndOffset
			data, leaderData := logBytes(t, f2, 0), logBytes(t, p1, 0)
			t.Logf("follower kept %d of %d records", leo, p1.Offsets().LogEndOffset)
			require(t, len(data) <= len(leaderData) && bytes.Equal(data, leaderData[:len(data)]),
				"after the crash the follower holds %d bytes (LEO %d) that are not a prefix of the leader's log", len(data), leo)
			require(t, f2.Offsets().HighWatermark <= leo, "follower offsets %+v", f2.Offsets())
			for _, e := range f2.LeaderEpochEntries() {
				require(t, e.StartOffset < leo, "epoch entry %+v past the log end %d", e, leo)
			}

			c.setLink(2, 1, linkUp)
			c.requireConverged(p1, f2)
			// Its producer state matches the log it holds now.
			c.change(2)
			res, err := b2.leader().Append(c.batch(idem(5, 0, seq-1, 1)))
			noErr(t, err)
			require(t, res.Duplicate, "retry after the crash appended again: %+v", res)
		})
	}
}
