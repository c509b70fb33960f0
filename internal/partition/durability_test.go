package partition

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/replica"
	"github.com/sluicelog/sluice/internal/vfs"
)

// TestPartitionConcurrentProducers races producers (each also racing a
// retry of every batch against itself) and plain appenders: every
// producer's batches must land once each, in sequence order.
func TestPartitionConcurrentProducers(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{1})
	p := f.partition("t", 0)
	const producers, batches = 8, 40
	type span struct{ base, last int64 }
	got := make([][]span, producers)
	var wg sync.WaitGroup
	errs := make(chan error, producers*2+1)
	for pid := range producers {
		got[pid] = make([]span, batches)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range batches {
				spec := idem(int64(pid), 0, int32(i*2), 2)
				// The batch and a retry of it, in flight together.
				results := make([]AppendResult, 2)
				var inner sync.WaitGroup
				for k := range 2 {
					inner.Add(1)
					go func() {
						defer inner.Done()
						res, err := p.Append(f.batch(spec))
						if err != nil {
							errs <- err
						}
						results[k] = res
					}()
				}
				inner.Wait()
				a, b := results[0], results[1]
				if a.BaseOffset != b.BaseOffset || a.LastOffset != b.LastOffset || a.Duplicate == b.Duplicate {
					errs <- fmt.Errorf("producer %d batch %d: results %+v and %+v", pid, i, a, b)
					return
				}
				got[pid][i] = span{a.BaseOffset, a.LastOffset}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range batches {
			if _, err := p.Append(f.batch(plain(3))); err != nil {
				errs <- err
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for pid, spans := range got {
		for i := 1; i < len(spans); i++ {
			require(t, spans[i].base > spans[i-1].last, "producer %d: batch %d at %v after %v", pid, i, spans[i], spans[i-1])
		}
	}
	// The log holds every batch exactly once.
	seen := map[[2]int64]bool{}
	hs := readAll(t, p, 0)
	for _, h := range hs {
		if !h.HasProducerID() {
			continue
		}
		key := [2]int64{h.ProducerID, int64(h.BaseSequence)}
		require(t, !seen[key], "batch %v twice", key)
		seen[key] = true
		require(t, got[h.ProducerID][h.BaseSequence/2].base == h.BaseOffset, "producer %d seq %d at %d, acknowledged at %d",
			h.ProducerID, h.BaseSequence, h.BaseOffset, got[h.ProducerID][h.BaseSequence/2].base)
	}
	require(t, len(seen) == producers*batches, "%d idempotent batches in the log", len(seen))
	want := int64(producers*batches*2 + batches*3)
	require(t, p.Offsets() == Offsets{0, want, want, want}, "offsets %+v, want HW=LEO=LSO=%d", p.Offsets(), want)
}

// appendProducerHistory appends n batches of 2 records for producers 1-3
// and returns each producer's acknowledged results.
func appendProducerHistory(t *testing.T, f *fixture, p *Partition, from, n int) map[int64][]AppendResult {
	t.Helper()
	acked := map[int64][]AppendResult{}
	for i := from; i < from+n; i++ {
		for pid := int64(1); pid <= 3; pid++ {
			res, err := p.Append(f.batch(idem(pid, 2, int32(i*2), 2)))
			noErr(t, err)
			acked[pid] = append(acked[pid], res)
		}
		_, err := p.Append(f.batch(plain(1)))
		noErr(t, err)
	}
	return acked
}

// requireDedupes checks that after a restart every producer's last
// batches are still recognised and its sequence continues where it was.
func requireDedupes(t *testing.T, f *fixture, acked map[int64][]AppendResult, next int) {
	t.Helper()
	p := f.partition("t", 0)
	for pid, results := range acked {
		for back := 1; back <= min(5, len(results)); back++ {
			i := next - back
			res, err := p.Append(f.batch(idem(pid, 2, int32(i*2), 2)))
			noErr(t, err)
			want := results[len(results)-back]
			require(t, res.Duplicate && res.BaseOffset == want.BaseOffset && res.LastOffset == want.LastOffset,
				"producer %d seq %d retry: %+v, acknowledged %+v", pid, i*2, res, want)
		}
		_, err := p.Append(f.batch(idem(pid, 2, int32(next*2+2), 2)))
		requireErrorIs(t, err, ErrOutOfOrderSequence)
		_, err = p.Append(f.batch(idem(pid, 1, int32(next*2), 2)))
		requireErrorIs(t, err, ErrInvalidProducerEpoch)
	}
	states := p.Producers()
	require(t, len(states) == 3, "producers after restart: %+v", states)
}

func TestPartitionProducerStateSurvivesRestart(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{1})
	p := f.partition("t", 0)
	acked := appendProducerHistory(t, f, p, 0, 4)
	noErr(t, f.mgr.Checkpoint())
	more := appendProducerHistory(t, f, p, 4, 4)
	for pid := range acked {
		acked[pid] = append(acked[pid], more[pid]...)
	}
	noErr(t, f.mgr.Checkpoint())
	more = appendProducerHistory(t, f, p, 8, 1)
	for pid := range acked {
		acked[pid] = append(acked[pid], more[pid]...)
	}
	f.restart() // Close writes the third snapshot; two are kept
	names, err := f.fs.List("/data/t-0")
	noErr(t, err)
	var snapshots []string
	for _, n := range names {
		if _, ok := parseSnapshotName(n); ok {
			snapshots = append(snapshots, n)
		}
	}
	require(t, len(snapshots) == 2 && snapshots[1] == snapshotName(f.partition("t", 0).Offsets().LogEndOffset),
		"snapshots %v", snapshots)
	requireDedupes(t, f, acked, 9)

	// A damaged newest snapshot falls back to the older one plus the log.
	f.restart()
	noErr(t, f.mgr.Close())
	noErr(t, f.logs.Close())
	leo := int64(9 * 7)
	path := "/data/t-0/" + snapshotName(leo)
	data, err := vfs.ReadFile(f.fs, path, 1<<20)
	noErr(t, err)
	data[len(data)-1] ^= 1
	noErr(t, vfs.WriteFileAtomic(f.fs, path, data))
	f.open(f.fs)
	requireDedupes(t, f, acked, 9)
}

func TestPartitionProducerStateCrashRecovery(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			f := newFixture(t)
			mem := f.fs.(*vfs.MemFS)
			f.createTopic("t", 1, nil, []int32{1})
			p := f.partition("t", 0)
			acked := appendProducerHistory(t, f, p, 0, 3)
			if seed%2 == 0 { // with a snapshot before the crash, and without
				noErr(t, f.mgr.Checkpoint())
			}
			more := appendProducerHistory(t, f, p, 3, 3)
			for pid := range acked {
				acked[pid] = append(acked[pid], more[pid]...)
			}
			rng := rand.New(rand.NewPCG(seed, 99))
			f.open(mem.CrashClone(rng))
			t.Logf("crash seed %d", seed)
			p = f.partition("t", 0)
			require(t, p.Offsets().LogEndOffset == 6*7, "acknowledged records lost: LEO %d", p.Offsets().LogEndOffset)
			requireDedupes(t, f, acked, 6)
		})
	}
}

func TestPartitionLeaderEpochCache(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{1, 2})
	// Broker 2 never fetches here: with it out of the ISR the high
	// watermark follows broker 1's log alone.
	f.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: metadata.NoLeaderChange, ISR: []int32{1}})
	p := f.partition("t", 0)
	for range 3 {
		_, err := p.Append(f.batch(plain(1)))
		noErr(t, err)
	}
	// Leadership goes to 2 and comes back: epoch 2 starts at offset 3.
	f.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: 2})
	f.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: 1})
	p = f.partition("t", 0)
	require(t, p.LeaderEpoch() == 2, "epoch %d", p.LeaderEpoch())
	_, err := p.Append(f.batch(plain(2)))
	noErr(t, err)
	hs := readAll(t, p, 0)
	require(t, hs[0].PartitionLeaderEpoch == 0 && hs[3].PartitionLeaderEpoch == 2, "batch epochs %d %d", hs[0].PartitionLeaderEpoch, hs[3].PartitionLeaderEpoch)

	want := []replica.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 2, StartOffset: 3}}
	require(t, reflect.DeepEqual(p.LeaderEpochEntries(), want), "entries %v", p.LeaderEpochEntries())
	for _, tc := range [][3]int64{{0, 0, 3}, {1, 0, 3}, {2, 2, 5}, {3, -1, -1}, {-1, -1, -1}} {
		e, off := p.EndOffsetForLeaderEpoch(int32(tc[0]))
		require(t, int64(e) == tc[1] && off == tc[2], "EndOffsetForLeaderEpoch(%d) = %d, %d; want %d, %d", tc[0], e, off, tc[1], tc[2])
	}
	requireErrorIs(t, p.CheckLeaderEpoch(1), ErrFencedLeaderEpoch)
	requireErrorIs(t, p.CheckLeaderEpoch(3), ErrUnknownLeaderEpoch)
	noErr(t, p.CheckLeaderEpoch(2))
	noErr(t, p.CheckLeaderEpoch(-1))
	_, err = p.Read(0, ReadOptions{MaxBytes: 1000, CurrentLeaderEpoch: 1})
	requireErrorIs(t, err, ErrFencedLeaderEpoch)

	data, err := vfs.ReadFile(f.fs, "/data/t-0/leader-epoch-checkpoint", 1<<20)
	noErr(t, err)
	require(t, string(data) == "0\n2\n0 0\n2 3\n", "checkpoint file %q", data)

	// Entries past the log end (a lost tail) are dropped on load; the
	// current epoch is assigned again at the log end.
	noErr(t, f.mgr.Close())
	noErr(t, f.logs.Close())
	noErr(t, vfs.WriteFileAtomic(f.fs, "/data/t-0/leader-epoch-checkpoint", []byte("0\n3\n0 0\n2 3\n9 100\n")))
	f.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: 1}) // epoch 3
	f.open(f.fs)
	p = f.partition("t", 0)
	want = append(want, replica.EpochEntry{Epoch: 3, StartOffset: 5})
	require(t, reflect.DeepEqual(p.LeaderEpochEntries(), want), "entries after reload %v", p.LeaderEpochEntries())

	// A lost checkpoint is rebuilt from the batches' epochs.
	noErr(t, f.mgr.Close())
	noErr(t, f.logs.Close())
	noErr(t, f.fs.Remove("/data/t-0/leader-epoch-checkpoint"))
	for _, name := range listNames(t, f.fs, "/data/t-0") {
		if _, ok := parseSnapshotName(name); ok {
			noErr(t, f.fs.Remove("/data/t-0/"+name))
		}
	}
	f.open(f.fs)
	p = f.partition("t", 0)
	require(t, reflect.DeepEqual(p.LeaderEpochEntries(), want), "rebuilt entries %v", p.LeaderEpochEntries())
}

func listNames(t testing.TB, fsys vfs.FS, dir string) []string {
	t.Helper()
	names, err := fsys.List(dir)
	noErr(t, err)
	return names
}

func TestPartitionSnapshotFormat(t *testing.T) {
	producers := []snapshotProducer{
		{id: 1, epoch: 3, lastUpdateMs: 77, batches: []producerBatch{{0, 1, 10, 11, 500}, {2, 2, 14, 14, 501}}},
		{id: 9, epoch: 0, lastUpdateMs: 78, batches: []producerBatch{{5, 9, 20, 24, 502}}},
	}
	data := encodeSnapshot(42, producers)
	off, got, err := decodeSnapshot(data)
	noErr(t, err)
	require(t, off == 42 && reflect.DeepEqual(got, producers), "round trip: %d %+v", off, got)
	for i := range data {
		bad := slices.Clone(data)
		bad[i] ^= 0x10
		if _, _, err := decodeSnapshot(bad); err == nil {
			t.Fatalf("flipping byte %d went unnoticed", i)
		}
	}
	for n := range len(data) {
		if _, _, err := decodeSnapshot(data[:n]); err == nil {
			t.Fatalf("truncation to %d bytes went unnoticed", n)
		}
	}
}

// TestPartitionLeaderEpochWrittenBeforeItsRecords: becoming leader does not
// write the epoch checkpoint (a restart would drop an entry with no records
// after it), the epoch's first append does, before its records, so the
// file never lacks the epoch of a record in the log.
func TestPartitionLeaderEpochWrittenBeforeItsRecords(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{1})
	p := f.partition("t", 0)
	_, err := p.Append(f.batch(plain(2)))
	noErr(t, err)
	checkpoint := func() string {
		data, err := vfs.ReadFile(f.fs, "/data/t-0/leader-epoch-checkpoint", 1<<20)
		noErr(t, err)
		return string(data)
	}
	require(t, checkpoint() == "0\n1\n0 0\n", "checkpoint after the first append %q", checkpoint())

	f.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: metadata.NoLeader})
	f.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: 1}) // epoch 2
	p = f.partition("t", 0)
	require(t, p.LeaderEpoch() == 2, "epoch %d", p.LeaderEpoch())
	want := []replica.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 2, StartOffset: 2}}
	require(t, reflect.DeepEqual(p.LeaderEpochEntries(), want), "entries %v", p.LeaderEpochEntries())
	require(t, checkpoint() == "0\n1\n0 0\n", "becoming leader wrote the checkpoint: %q", checkpoint())

	// Restarting now loses nothing: the entry had no records.
	f.restart()
	p = f.partition("t", 0)
	require(t, reflect.DeepEqual(p.LeaderEpochEntries(), want), "entries after restart %v", p.LeaderEpochEntries())

	// The epoch's first append writes it.
	_, err = p.Append(f.batch(plain(1)))
	noErr(t, err)
	require(t, checkpoint() == "0\n2\n0 0\n2 2\n", "checkpoint after the epoch's first append %q", checkpoint())
}

// TestPartitionStaleLeaderEpochEntryNotRevived: a checkpoint may hold an
// entry whose records a crash lost (a leader in epoch 3 wrote "3 2" at its
// first append, then lost the unsynced records). Loading drops it from the
// cache; the file must lose it too before the log grows past its start
// offset again, or a later open finds records there and keeps an epoch
// they never had: the follower's appends below, all of epoch 0, change
// nothing in the cache and so never rewrote the file.
func TestPartitionStaleLeaderEpochEntryNotRevived(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{1, 2})
	p := f.partition("t", 0)
	_, err := p.Append(f.batch(plain(2)))
	noErr(t, err)
	noErr(t, f.mgr.Close())
	noErr(t, f.logs.Close())
	noErr(t, vfs.WriteFileAtomic(f.fs, "/data/t-0/leader-epoch-checkpoint", []byte("0\n2\n0 0\n3 2\n")))
	f.open(f.fs)
	p = f.partition("t", 0)
	want := []replica.EpochEntry{{Epoch: 0, StartOffset: 0}}
	require(t, reflect.DeepEqual(p.LeaderEpochEntries(), want), "entries after load %v", p.LeaderEpochEntries())

	f.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: 2}) // epoch 1, followed here
	noErr(t, f.mgr.Refresh())
	b := f.batch(plain(3))
	binary.BigEndian.PutUint64(b[0:8], 2) // base offset 2, leader epoch 0
	noErr(t, p.AppendAsFollower(b, p.LeaderEpoch(), 5, 0))
	require(t, p.log.LogEndOffset() == 5, "log end offset %d", p.log.LogEndOffset())

	f.restart()
	noErr(t, f.mgr.Refresh())
	hosted := f.mgr.Hosted()
	require(t, len(hosted) == 1, "hosted %d partitions", len(hosted))
	p = hosted[0]
	require(t, p.log.LogEndOffset() == 5, "log end offset after restart %d", p.log.LogEndOffset())
	require(t, reflect.DeepEqual(p.LeaderEpochEntries(), want), "entries after restart %v", p.LeaderEpochEntries())
}

// TestPartitionOffsetForLeaderEpochBeforeFirstAppend: a new leader answers
// OffsetForLeaderEpoch from the epoch it has not written yet, before and
// after a restart that dropped the unwritten entry.
func TestPartitionOffsetForLeaderEpochBeforeFirstAppend(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{1})
	p := f.partition("t", 0)
	_, err := p.Append(f.batch(plain(2)))
	noErr(t, err)
	f.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: metadata.NoLeader})
	f.apply(&metadata.PartitionChange{TopicID: uuid(1), Partition: 0, Leader: 1}) // epoch 2
	for _, restart := range []bool{false, true} {
		if restart {
			f.restart()
		}
		p = f.partition("t", 0)
		require(t, p.LeaderEpoch() == 2, "restart %v: epoch %d", restart, p.LeaderEpoch())
		for _, c := range []struct {
			ask, epoch int32
			end        int64
		}{{0, 0, 2}, {1, 0, 2}, {2, 2, 2}, {3, -1, -1}} {
			epoch, end := p.EndOffsetForLeaderEpoch(c.ask)
			require(t, epoch == c.epoch && end == c.end, "restart %v: epoch %d answered (%d, %d), want (%d, %d)",
				restart, c.ask, epoch, end, c.epoch, c.end)
		}
	}
}
