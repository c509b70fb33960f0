package partition

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/replica"
	"github.com/sluicelog/sluice/internal/vfs"
)

// TestReplicationWholeBatches: a fetch response cut inside a batch gives
// the follower the batches before the cut, never the partial one.
func TestReplicationWholeBatches(t *testing.T) {
	f := newFixture(t)
	one, two := f.batch(plain(3)), f.batch(plain(2))
	both := append(append([]byte{}, one...), two...)
	for _, tc := range []struct {
		name string
		in   []byte
		want []byte
	}{
		{"whole", both, both},
		{"cut inside the second batch", both[:len(one)+len(two)-1], one},
		{"cut inside the second header", both[:len(one)+10], one},
		{"cut inside the first batch", one[:len(one)-1], nil},
		{"empty", nil, nil},
	} {
		if got := wholeBatches(tc.in); !bytes.Equal(got, tc.want) {
			t.Errorf("%s: kept %d bytes, want %d", tc.name, len(got), len(tc.want))
		}
	}
	corrupt := append([]byte{}, one...)
	corrupt[16] = 99 // the magic byte: not a cut, a bad batch
	if got := wholeBatches(corrupt); len(got) != len(corrupt) {
		t.Errorf("a corrupt first batch is passed on for the append to refuse; kept %d of %d bytes", len(got), len(corrupt))
	}
}

// followed is the one partition the fixture hosts, which it follows.
func (f *fixture) followed() *Partition {
	f.t.Helper()
	noErr(f.t, f.mgr.Refresh())
	hosted := f.mgr.Hosted()
	require(f.t, len(hosted) == 1, "hosting %d partitions", len(hosted))
	return hosted[0]
}

// leaderBatch is a batch as a leader sends it: its base offset and leader
// epoch written in place (both outside the CRC range).
func (f *fixture) leaderBatch(baseOffset int64, leaderEpoch int32, records int) []byte {
	return f.leaderBatchOf(plain(records), baseOffset, leaderEpoch)
}

// leaderBatchOf is leaderBatch for any batch spec.
func (f *fixture) leaderBatchOf(spec batchSpec, baseOffset int64, leaderEpoch int32) []byte {
	b := f.batch(spec)
	binary.BigEndian.PutUint64(b[0:8], uint64(baseOffset))
	binary.BigEndian.PutUint32(b[12:16], uint32(leaderEpoch))
	return b
}

// TestReplicationFollowerEpochCheckpointedBeforeItsRecords: a follower
// writes the leader epoch checkpoint with a fetched epoch before the
// epoch's records, as Kafka's append assigns batch epochs before the
// segment append. Appended first, a failed checkpoint left records of an
// epoch the file did not know, and nothing wrote it again (later batches
// of the epoch change nothing in the cache); once a producer state
// snapshot passed the epoch's start, a restart rebuilt the cache from the
// snapshot on and lost the epoch. Both a clean restart and a crash must
// find every epoch of the log's batches at its first batch.
func TestReplicationFollowerEpochCheckpointedBeforeItsRecords(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprint("crash=", crash), func(t *testing.T) {
			f := newFixture(t)
			mem := f.fs.(*vfs.MemFS)
			efs := vfs.NewErrorFS(mem)
			f.open(efs)
			f.createTopic("t", 1, nil, []int32{2, testNode}) // led by broker 2, followed here
			p := f.followed()
			epoch := p.LeaderEpoch()
			noErr(t, p.AppendAsFollower(f.leaderBatch(0, 0, 2), epoch, 0, 0))

			efs.Inject(vfs.Rule{Op: vfs.OpWrite, PathContains: "leader-epoch-checkpoint", Count: -1})
			err := p.AppendAsFollower(f.leaderBatch(2, 3, 1), epoch, 0, 0)
			require(t, err != nil, "the append of an epoch the checkpoint could not take succeeded")
			require(t, p.log.LogEndOffset() == 2, "records of epoch 3 appended without its checkpoint: log end %d", p.log.LogEndOffset())
			efs.Clear()

			// The fetcher fetches again from the log end.
			noErr(t, p.AppendAsFollower(f.leaderBatch(2, 3, 1), epoch, 0, 0))
			noErr(t, p.AppendAsFollower(f.leaderBatch(3, 3, 2), epoch, 5, 0))
			noErr(t, f.mgr.Checkpoint()) // a producer state snapshot at 5
			want := []replica.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 3, StartOffset: 2}}
			data, err := vfs.ReadFile(mem, "/data/t-0/leader-epoch-checkpoint", 1<<20)
			noErr(t, err)
			require(t, string(data) == "0\n2\n0 0\n3 2\n", "checkpoint %q", data)

			if crash {
				f.open(mem.CrashClone(rand.New(rand.NewPCG(7, 7))))
			} else {
				noErr(t, f.mgr.Close())
				noErr(t, f.logs.Close())
				f.open(mem)
			}
			p = f.followed()
			require(t, p.log.LogEndOffset() == 5, "log end %d", p.log.LogEndOffset())
			require(t, reflect.DeepEqual(p.LeaderEpochEntries(), want), "entries after reopening %v, want %v", p.LeaderEpochEntries(), want)
		})
	}
}

// TestReplicationFollowerRefusedBatchLeavesEpochs: batches the follower's
// log refuses leave the leader epoch cache (and what a restart loads) as
// it was: one below the log end, a second batch going back inside the
// log, one whose CRC fails.
func TestReplicationFollowerRefusedBatchLeavesEpochs(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, nil, []int32{2, testNode})
	p := f.followed()
	epoch := p.LeaderEpoch()
	noErr(t, p.AppendAsFollower(f.leaderBatch(0, 0, 2), epoch, 0, 0))
	noErr(t, p.AppendAsFollower(f.leaderBatch(2, 3, 3), epoch, 0, 0))
	want := []replica.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 3, StartOffset: 2}}

	below := f.leaderBatch(4, 6, 1) // the log ends at 5
	require(t, p.AppendAsFollower(below, epoch, 0, 0) != nil, "a batch below the log end was appended")
	require(t, reflect.DeepEqual(p.LeaderEpochEntries(), want), "entries after a batch below the log end %v", p.LeaderEpochEntries())

	// In order from the log end at first, then going back inside it.
	back := append(f.leaderBatch(5, 6, 1), f.leaderBatch(3, 7, 1)...)
	require(t, p.AppendAsFollower(back, epoch, 0, 0) != nil, "batches going back were appended")
	require(t, reflect.DeepEqual(p.LeaderEpochEntries(), want), "entries after batches going back %v", p.LeaderEpochEntries())

	corrupt := f.leaderBatch(5, 6, 1)
	corrupt[len(corrupt)-1] ^= 1
	require(t, p.AppendAsFollower(corrupt, epoch, 0, 0) != nil, "a corrupt batch was appended")
	require(t, reflect.DeepEqual(p.LeaderEpochEntries(), want), "entries after a corrupt batch %v", p.LeaderEpochEntries())

	f.restart()
	p = f.followed()
	require(t, reflect.DeepEqual(p.LeaderEpochEntries(), want), "entries after a restart %v", p.LeaderEpochEntries())
	noErr(t, p.AppendAsFollower(f.leaderBatch(5, 6, 1), epoch, 0, 0))
	want = append(want, replica.EpochEntry{Epoch: 6, StartOffset: 5})
	require(t, reflect.DeepEqual(p.LeaderEpochEntries(), want), "entries after the good batch %v", p.LeaderEpochEntries())
}

// TestReplicationEpochCacheFollowsLogStart: whatever moves the log start
// offset up trims the leader epoch cache from the start and writes the
// checkpoint, as Kafka's LeaderEpochFileCache.truncateFromStart: here a
// follower following its leader's log start, and retention. Left
// untrimmed, an OffsetForLeaderEpoch for an epoch before the log start
// answered an end offset below it (a follower or a consumer then truncates
// to an offset the log no longer has), and the cache kept one entry per
// epoch the log ever had.
func TestReplicationEpochCacheFollowsLogStart(t *testing.T) {
	for _, tc := range []struct {
		name string
		move func(f *fixture, p *Partition)
		// start is the log start offset the move leaves.
		start int64
	}{
		{"the leader's log start", func(f *fixture, p *Partition) {
			noErr(f.t, p.AppendAsFollower(nil, p.LeaderEpoch(), 80, 75))
		}, 75},
		{"retention", func(f *fixture, p *Partition) {
			// Every sealed segment is past retention.ms; the active one
			// (from 90) stays.
			noErr(f.t, f.logs.Maintain(f.nowMs()+int64(10*time.Minute/time.Millisecond)))
		}, 90},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.createTopic("t", 1, map[string]string{"segment.bytes": "1024", "retention.ms": "1"}, []int32{2, testNode})
			p := f.followed()
			epoch := p.LeaderEpoch()
			// Batches of about 700 bytes: one a segment.
			for i, e := range []int32{0, 3, 3, 5} {
				noErr(t, p.AppendAsFollower(f.leaderBatch(int64(30*i), e, 30), epoch, 0, 0))
			}
			before := []replica.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 3, StartOffset: 30}, {Epoch: 5, StartOffset: 90}}
			require(t, reflect.DeepEqual(p.LeaderEpochEntries(), before), "entries %v", p.LeaderEpochEntries())

			tc.move(f, p)
			require(t, p.log.LogStartOffset() == tc.start, "log start %d, want %d", p.log.LogStartOffset(), tc.start)
			want := []replica.EpochEntry{{Epoch: 3, StartOffset: tc.start}, {Epoch: 5, StartOffset: 90}}
			if tc.start == 90 {
				want = want[1:]
			}
			require(t, reflect.DeepEqual(p.LeaderEpochEntries(), want), "entries after the log start moved to %d: %v, want %v",
				tc.start, p.LeaderEpochEntries(), want)
			for _, asked := range []int32{0, 3} {
				if _, end := p.EndOffsetForLeaderEpoch(asked); end < tc.start {
					t.Errorf("OffsetForLeaderEpoch(%d) answered end offset %d, below the log start %d", asked, end, tc.start)
				}
			}
			data, err := vfs.ReadFile(f.fs, "/data/t-0/leader-epoch-checkpoint", 1<<20)
			noErr(t, err)
			require(t, string(data) == string(replica.EncodeCheckpoint(want)), "checkpoint %q, want %q", data, replica.EncodeCheckpoint(want))
		})
	}
}

// listHookFS runs a hook, once, when a directory is next listed.
type listHookFS struct {
	vfs.FS
	mu   sync.Mutex
	dir  string
	hook func()
}

func (h *listHookFS) onList(dir string, hook func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dir, h.hook = dir, hook
}

func (h *listHookFS) List(dir string) ([]string, error) {
	h.mu.Lock()
	hook := h.hook
	if dir != h.dir {
		hook = nil
	}
	if hook != nil {
		h.hook = nil
	}
	h.mu.Unlock()
	if hook != nil {
		hook()
	}
	return h.FS.List(dir)
}

// TestReplicationEpochCacheFollowsRetentionWhileOpening: retention moves
// a log's start while its partition is being opened, after the leader
// epoch cache was loaded (and trimmed to the log start then) and before
// the partition is hosted, where the log manager's callback finds it. The
// partition must still not answer OffsetForLeaderEpoch below its log
// start: the callback found no partition to trim, and nothing trimmed the
// cache until retention next moved the start.
func TestReplicationEpochCacheFollowsRetentionWhileOpening(t *testing.T) {
	f := newFixture(t)
	f.createTopic("t", 1, map[string]string{"segment.bytes": "1024", "retention.ms": "1"}, []int32{2, testNode})
	p := f.followed()
	epoch := p.LeaderEpoch()
	for i, e := range []int32{0, 3, 3, 5} {
		noErr(t, p.AppendAsFollower(f.leaderBatch(int64(30*i), e, 30), epoch, 0, 0))
	}
	noErr(t, f.mgr.Close())
	noErr(t, f.logs.Close())
	hooked := &listHookFS{FS: f.fs}
	f.open(hooked)
	// The producer state's load lists the directory (its snapshots).
	hooked.onList("/data/t-0", func() {
		noErr(t, f.logs.Maintain(f.nowMs()+int64(10*time.Minute/time.Millisecond)))
	})
	p = f.followed()
	require(t, p.log.LogStartOffset() == 90, "log start %d, want 90 (retention ran)", p.log.LogStartOffset())
	want := []replica.EpochEntry{{Epoch: 5, StartOffset: 90}}
	require(t, reflect.DeepEqual(p.LeaderEpochEntries(), want), "entries %v, want %v", p.LeaderEpochEntries(), want)
	for _, asked := range []int32{0, 3} {
		if _, end := p.EndOffsetForLeaderEpoch(asked); end < 90 {
			t.Errorf("OffsetForLeaderEpoch(%d) answered end offset %d, below the log start 90", asked, end)
		}
	}
}
