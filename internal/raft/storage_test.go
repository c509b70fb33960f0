package raft

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	etcdraft "go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/sluicelog/sluice/internal/vfs"
)

func openTestStorage(t testing.TB, fs vfs.FS, cacheBytes int64) *Storage {
	t.Helper()
	s, err := OpenStorage(StorageOptions{
		FS: fs, Dir: "/q", Logger: testLogger(), CacheBytes: cacheBytes, SegmentBytes: 1024,
		InitialConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
	})
	require(t, err)
	return s
}

func entry(index, term uint64, data string) *raftpb.Entry {
	e := &raftpb.Entry{Index: new(index), Term: new(term), Type: raftpb.EntryNormal.Enum()}
	if data != "" {
		e.Data = []byte(data)
	}
	return e
}

// entries makes entries [lo, hi) of one term, data "t<term>-<index>".
func entries(lo, hi, term uint64) []*raftpb.Entry {
	var ents []*raftpb.Entry
	for i := lo; i < hi; i++ {
		ents = append(ents, entry(i, term, fmt.Sprintf("t%d-%d", term, i)))
	}
	return ents
}

// describe renders entries as "index/term/data ...", for comparisons.
func describe(ents []*raftpb.Entry) string {
	var b strings.Builder
	for _, e := range ents {
		fmt.Fprintf(&b, "%d/%d/%s ", e.GetIndex(), e.GetTerm(), e.GetData())
	}
	return b.String()
}

func checkEntries(t testing.TB, s *Storage, lo, hi uint64, want []*raftpb.Entry) {
	t.Helper()
	got, err := s.Entries(lo, hi, 1<<30)
	require(t, err)
	if describe(got) != describe(want) {
		t.Fatalf("entries [%d, %d):\n got %s\nwant %s", lo, hi, describe(got), describe(want))
	}
	for _, e := range want {
		term, err := s.Term(e.GetIndex())
		require(t, err)
		if term != e.GetTerm() {
			t.Fatalf("term of %d: got %d want %d", e.GetIndex(), term, e.GetTerm())
		}
	}
}

func checkBounds(t testing.TB, s *Storage, first, last uint64) {
	t.Helper()
	f, _ := s.FirstIndex()
	l, _ := s.LastIndex()
	if f != first || l != last {
		t.Fatalf("bounds [%d, %d], want [%d, %d]", f, l, first, last)
	}
}

// TestRaftStorageAppendTruncateReopen appends, overwrites a conflicting
// suffix with entries of a new term, and reads everything back before and
// after a reopen, with a cache so small that reads go to the segments.
func TestRaftStorageAppendTruncateReopen(t *testing.T) {
	for _, cacheBytes := range []int64{1, 1 << 20} {
		t.Run(fmt.Sprintf("cache%d", cacheBytes), func(t *testing.T) {
			fs := vfs.NewMem()
			s := openTestStorage(t, fs, cacheBytes)
			checkBounds(t, s, 1, 0)
			require(t, s.Append(entries(1, 30, 1)))
			require(t, s.Append(append(entries(20, 25, 2), entries(25, 28, 3)...)))
			want := append(entries(1, 20, 1), append(entries(20, 25, 2), entries(25, 28, 3)...)...)
			checkEntries(t, s, 1, 28, want)
			checkBounds(t, s, 1, 27)
			if _, err := s.Term(28); !errors.Is(err, etcdraft.ErrUnavailable) {
				t.Fatalf("term past the end: %v", err)
			}
			if got, _ := s.Entries(3, 28, 1); len(got) != 1 {
				t.Fatalf("size-limited read returned %d entries, want 1", len(got))
			}
			require(t, s.SetHardState(&raftpb.HardState{Term: new(uint64(3)), Vote: new(uint64(2)), Commit: new(uint64(22))}))
			require(t, s.Close())

			s = openTestStorage(t, fs, cacheBytes)
			defer s.Close()
			checkEntries(t, s, 1, 28, want)
			hs, cs, _ := s.InitialState()
			if hs.GetTerm() != 3 || hs.GetVote() != 2 || hs.GetCommit() != 22 || fmt.Sprint(cs.GetVoters()) != "[1 2 3]" {
				t.Fatalf("initial state %v %v", hs, cs)
			}
		})
	}
}

// TestRaftStorageSnapshotCompaction takes snapshots, checks the log is
// compacted behind them, only two checkpoint files stay, and a reopen
// starts from the newest.
func TestRaftStorageSnapshotCompaction(t *testing.T) {
	fs := vfs.NewMem()
	s := openTestStorage(t, fs, 1<<20)
	require(t, s.Append(entries(1, 200, 1)))
	before := s.log.NumSegments()
	cs := &raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}
	for _, index := range []uint64{50, 100, 150} {
		require(t, s.CreateSnapshot(index, cs, []byte(fmt.Sprintf("state@%d", index))))
	}
	if err := s.CreateSnapshot(120, cs, nil); !errors.Is(err, etcdraft.ErrSnapOutOfDate) {
		t.Fatalf("old snapshot: %v", err)
	}
	checkBounds(t, s, 151, 199)
	if _, err := s.Entries(150, 160, 1<<20); !errors.Is(err, etcdraft.ErrCompacted) {
		t.Fatalf("compacted read: %v", err)
	}
	if after := s.log.NumSegments(); after >= before {
		t.Fatalf("segments %d -> %d: nothing compacted", before, after)
	}
	names, _ := fs.List("/q")
	if got := fmt.Sprint(names); got != "[00000000000000000100-00000000000000000001.checkpoint 00000000000000000150-00000000000000000001.checkpoint __cluster_metadata-0]" {
		t.Fatalf("files: %s", got)
	}
	// The raft log has no manager tick to remove retired segments later,
	// so compaction must remove them at once.
	logFiles, _ := fs.List("/q/__cluster_metadata-0")
	for _, name := range logFiles {
		if strings.HasSuffix(name, ".deleted") {
			t.Fatalf("compaction left %s behind", name)
		}
	}
	require(t, s.Close())

	s = openTestStorage(t, fs, 1<<20)
	defer s.Close()
	checkBounds(t, s, 151, 199)
	checkEntries(t, s, 151, 200, entries(151, 200, 1))
	snap, _ := s.Snapshot()
	_, ics, _ := s.InitialState()
	if string(snap.GetData()) != "state@150" || fmt.Sprint(ics.GetLearners()) != "[4]" {
		t.Fatalf("snapshot %q, conf state %v", snap.GetData(), ics)
	}
}

// TestRaftStorageApplySnapshot installs snapshots from a leader: one past
// the log end and one inside it; either way the log is replaced.
func TestRaftStorageApplySnapshot(t *testing.T) {
	fs := vfs.NewMem()
	s := openTestStorage(t, fs, 1<<20)
	require(t, s.Append(entries(1, 10, 1)))
	snap := &raftpb.Snapshot{Data: []byte("x"), Metadata: &raftpb.SnapshotMetadata{
		ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}, Index: new(uint64(20)), Term: new(uint64(4)),
	}}
	require(t, s.ApplySnapshot(snap))
	checkBounds(t, s, 21, 20)
	if term, _ := s.Term(20); term != 4 {
		t.Fatalf("term at snapshot: %d", term)
	}
	require(t, s.Append(entries(21, 25, 4)))
	snap2 := &raftpb.Snapshot{Data: []byte("y"), Metadata: &raftpb.SnapshotMetadata{
		ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}, Index: new(uint64(22)), Term: new(uint64(5)),
	}}
	require(t, s.ApplySnapshot(snap2))
	checkBounds(t, s, 23, 22)
	require(t, s.Append(entries(23, 26, 5)))
	require(t, s.Close())
	s = openTestStorage(t, fs, 1<<20)
	defer s.Close()
	checkBounds(t, s, 23, 25)
	checkEntries(t, s, 23, 26, entries(23, 26, 5))
}

// TestRaftStorageSnapshotLogMismatch is the crash between persisting a
// received snapshot and discarding the old log: the log's entry at the
// snapshot's index has another term, so the log goes on reopen.
func TestRaftStorageSnapshotLogMismatch(t *testing.T) {
	fs := vfs.NewMem()
	s := openTestStorage(t, fs, 1<<20)
	require(t, s.Append(entries(1, 10, 1)))
	require(t, s.Close())
	snap := &raftpb.Snapshot{Data: []byte("x"), Metadata: &raftpb.SnapshotMetadata{
		ConfState: &raftpb.ConfState{Voters: []uint64{1}}, Index: new(uint64(5)), Term: new(uint64(2)),
	}}
	b, err := encodeSnapshot(snap)
	require(t, err)
	require(t, vfs.WriteFileAtomic(fs, "/q/"+snapshotFileName(5, 2), b))
	s = openTestStorage(t, fs, 1<<20)
	checkBounds(t, s, 6, 5)
	require(t, s.Close())

	// The same with a matching term keeps the entries after the snapshot.
	fs = vfs.NewMem()
	s = openTestStorage(t, fs, 1<<20)
	require(t, s.Append(entries(1, 10, 2)))
	require(t, s.Close())
	require(t, vfs.WriteFileAtomic(fs, "/q/"+snapshotFileName(5, 2), b))
	s = openTestStorage(t, fs, 1<<20)
	defer s.Close()
	checkBounds(t, s, 6, 9)
	checkEntries(t, s, 6, 10, entries(6, 10, 2))
}

// TestRaftStorageCrash appends and snapshots on the crash-simulating FS,
// crashes at random points, and checks that what each call made durable
// survives: every appended entry, term and vote, and snapshot.
func TestRaftStorageCrash(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0))
			fs := vfs.NewMem()
			s := openTestStorage(t, fs, 1<<20)
			var last, term, snapIndex uint64 = 0, 1, 0
			for step := range 30 {
				switch r := rng.IntN(10); {
				case r < 6:
					n := uint64(1 + rng.IntN(5))
					from := uint64(max(int(last)+1-rng.IntN(3), int(snapIndex)+1))
					if from <= last {
						term++ // overwriting needs a new term
					}
					require(t, s.Append(entries(from, from+n, term)))
					last = from + n - 1
				case r < 8 && last > snapIndex:
					snapIndex = snapIndex + 1 + uint64(rng.IntN(int(last-snapIndex)))
					require(t, s.CreateSnapshot(snapIndex, &raftpb.ConfState{Voters: []uint64{1}}, fmt.Appendf(nil, "s%d", snapIndex)))
				default:
					require(t, s.SetHardState(&raftpb.HardState{Term: new(term), Vote: new(uint64(step%3 + 1))}))
				}
			}
			want, err := s.Entries(snapIndex+1, last+1, 1<<30)
			if last == snapIndex {
				want, err = nil, nil
			}
			require(t, err)
			hs, _, _ := s.InitialState()
			fs.Crash(rng)
			s = openTestStorage(t, fs, 1<<20)
			defer s.Close()
			checkBounds(t, s, snapIndex+1, last)
			if last > snapIndex {
				checkEntries(t, s, snapIndex+1, last+1, want)
			}
			got, _, _ := s.InitialState()
			if got.GetTerm() != hs.GetTerm() || got.GetVote() != hs.GetVote() {
				t.Fatalf("hard state after crash %v, want %v", got, hs)
			}
		})
	}
}

// TestRaftStorageCorruptState refuses a damaged hard state file rather
// than forget a vote.
func TestRaftStorageCorruptState(t *testing.T) {
	fs := vfs.NewMem()
	s := openTestStorage(t, fs, 1<<20)
	require(t, s.SetHardState(&raftpb.HardState{Term: new(uint64(7)), Vote: new(uint64(1))}))
	require(t, s.Close())
	b, err := readFileBounded(fs, "/q/"+hardStateFile, 100)
	require(t, err)
	b[6] ^= 1
	require(t, vfs.WriteFileAtomic(fs, "/q/"+hardStateFile, b))
	_, err = OpenStorage(StorageOptions{FS: fs, Dir: "/q", Logger: testLogger()})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open with a corrupt hard state: %v", err)
	}
}

// TestRaftStorageFailureSticky checks a failed fsync is never retried:
// every later write fails too.
func TestRaftStorageFailureSticky(t *testing.T) {
	efs := vfs.NewErrorFS(vfs.NewMem())
	s := openTestStorage(t, efs, 1<<20)
	require(t, s.Append(entries(1, 3, 1)))
	efs.Inject(vfs.Rule{Op: vfs.OpSync})
	if err := s.Append(entries(3, 4, 1)); err == nil {
		t.Fatal("append with a failing fsync succeeded")
	}
	efs.Clear()
	if err := s.Append(entries(3, 4, 1)); err == nil {
		t.Fatal("append after a failed fsync succeeded")
	}
	if err := s.SetHardState(&raftpb.HardState{Term: new(uint64(2))}); err == nil {
		t.Fatal("hard state after a failed fsync succeeded")
	}
}

// TestRaftSnapshotFileFormat round-trips the snapshot file and rejects a
// flipped bit anywhere in it.
func TestRaftSnapshotFileFormat(t *testing.T) {
	snap := &raftpb.Snapshot{Data: []byte("state"), Metadata: &raftpb.SnapshotMetadata{
		ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}}, Index: new(uint64(9)), Term: new(uint64(3)),
	}}
	b, err := encodeSnapshot(snap)
	require(t, err)
	got, err := decodeSnapshot(b)
	require(t, err)
	if string(got.GetData()) != "state" || got.GetMetadata().GetIndex() != 9 || got.GetMetadata().GetTerm() != 3 {
		t.Fatalf("decoded %v", got)
	}
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 0x10
		if _, err := decodeSnapshot(c); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
	if index, term, ok := parseSnapshotFileName(snapshotFileName(9, 3)); !ok || index != 9 || term != 3 {
		t.Fatal("snapshot file name does not round-trip")
	}
}

func FuzzQuorumSnapshotFile(f *testing.F) {
	snap := &raftpb.Snapshot{Data: []byte("d"), Metadata: &raftpb.SnapshotMetadata{
		ConfState: &raftpb.ConfState{Voters: []uint64{1}}, Index: new(uint64(1)), Term: new(uint64(1)),
	}}
	b, _ := encodeSnapshot(snap)
	f.Add(b)
	f.Add(encodeHardState(&raftpb.HardState{Term: new(uint64(1))}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if snap, err := decodeSnapshot(b); err == nil {
			if again, err := encodeSnapshot(snap); err != nil || len(again) > len(b)+64 {
				t.Fatalf("re-encode: %v", err)
			}
		}
		decodeHardState(b)
	})
}
