package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
)

func seeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x5eed)) }

// syncedFile creates name with data, syncs it and its directory: the state a
// crash must never lose.
func syncedFile(t *testing.T, m *MemFS, name string, data []byte) File {
	t.Helper()
	f, err := m.Create(name)
	must(t, err)
	_, err = f.WriteAt(data, 0)
	must(t, err)
	must(t, f.Sync())
	must(t, m.SyncDir(path.Dir(name)))
	return f
}

func TestMemFSCrashKeepsSyncedBytes(t *testing.T) {
	sawNone, sawAll := false, false
	for seed := range uint64(200) {
		m := NewMem()
		f := syncedFile(t, m, "/seg.log", []byte("synced|"))
		_, err := f.WriteAt([]byte("unsynced-1|"), 7)
		must(t, err)
		_, err = f.WritevAt([][]byte{[]byte("unsynced-"), []byte("2")}, 18)
		must(t, err)
		m.Crash(seeded(seed))
		got := readFile(t, m, "/seg.log")
		all := "synced|unsynced-1|unsynced-2"
		if !strings.HasPrefix(all, string(got)) || !bytes.HasPrefix(got, []byte("synced|")) {
			t.Fatalf("seed %d: got %q, want synced bytes plus a prefix of %q", seed, got, all)
		}
		sawNone = sawNone || string(got) == "synced|"
		sawAll = sawAll || string(got) == all
	}
	if !sawNone || !sawAll {
		t.Fatalf("200 seeds never produced both extremes (none %v, all %v)", sawNone, sawAll)
	}
}

// TestMemFSCrashPrefixProperty drives random writes, truncates and syncs,
// and checks every crash result is the synced state plus a prefix of the
// unsynced operations, the last possibly torn.
func TestMemFSCrashPrefixProperty(t *testing.T) {
	for seed := range uint64(300) {
		rng := seeded(seed)
		m := NewMem()
		f := syncedFile(t, m, "/f", nil)
		var synced []byte
		var pending []memOp
		for range 1 + rng.IntN(20) {
			op := randomOp(rng)
			applyToFile(t, f, op)
			pending = append(pending, op)
			if rng.IntN(6) == 0 {
				must(t, f.Sync())
				for _, p := range pending {
					synced = applyOp(synced, p)
				}
				pending = nil
			}
		}
		m.Crash(rng)
		got := readFile(t, m, "/f")
		if !isPrefixOutcome(slices.Clone(synced), pending, got) {
			t.Fatalf("seed %d: %q is not synced %q plus a prefix of %d ops", seed, got, synced, len(pending))
		}
	}
}

func randomOp(rng *rand.Rand) memOp {
	if rng.IntN(5) == 0 {
		return memOp{truncate: true, off: int64(rng.IntN(40))}
	}
	data := make([]byte, 1+rng.IntN(12))
	for i := range data {
		data[i] = byte('a' + rng.IntN(26))
	}
	return memOp{off: int64(rng.IntN(40)), data: data}
}

func applyToFile(t *testing.T, f File, op memOp) {
	t.Helper()
	if op.truncate {
		must(t, f.Truncate(op.off))
		return
	}
	_, err := f.WriteAt(op.data, op.off)
	must(t, err)
}

// isPrefixOutcome tries every prefix length and every tear of its last write.
func isPrefixOutcome(base []byte, ops []memOp, got []byte) bool {
	state := base
	for k := 0; ; k++ {
		if bytes.Equal(state, got) {
			return true
		}
		if k == len(ops) {
			return false
		}
		if !ops[k].truncate {
			for tear := 1; tear < len(ops[k].data); tear++ {
				torn := memOp{off: ops[k].off, data: ops[k].data[:tear]}
				if bytes.Equal(applyOp(slices.Clone(state), torn), got) {
					return true
				}
			}
		}
		state = applyOp(slices.Clone(state), ops[k])
	}
}

func TestMemFSCrashDropsNamesNotDirSynced(t *testing.T) {
	m := NewMem()
	must(t, m.MkdirAll("/data/t-0", 0o755))
	f, err := m.Create("/data/t-0/0.log")
	must(t, err)
	_, err = f.WriteAt([]byte("x"), 0)
	must(t, err)
	must(t, f.Sync()) // the data is durable, the name is not
	m.Crash(seeded(1))
	_, err = m.Stat("/data/t-0/0.log")
	expectNotExist(t, "Stat of a name never dir-synced", err)
	names, err := m.List("/data/t-0")
	must(t, err)
	if len(names) != 0 {
		t.Fatalf("List = %q, want empty", names)
	}
}

func TestMemFSCrashRestoresUnsyncedRemove(t *testing.T) {
	m := NewMem()
	must(t, m.MkdirAll("/d", 0o755))
	must(t, syncedFile(t, m, "/d/old.log", []byte("keep")).Close())
	must(t, m.Remove("/d/old.log"))
	m.Crash(seeded(2))
	expectBytes(t, readFile(t, m, "/d/old.log"), []byte("keep"))

	must(t, m.Remove("/d/old.log"))
	must(t, m.SyncDir("/d"))
	m.Crash(seeded(3))
	_, err := m.Stat("/d/old.log")
	expectNotExist(t, "Stat after a dir-synced remove", err)
}

func TestMemFSCrashRenameFollowsDirSync(t *testing.T) {
	for _, dirSynced := range []bool{false, true} {
		m := NewMem()
		must(t, syncedFile(t, m, "/cp.tmp", []byte("v2")).Close())
		must(t, m.Rename("/cp.tmp", "/cp"))
		if dirSynced {
			must(t, m.SyncDir("/"))
		}
		m.Crash(seeded(4))
		names, err := m.List("/")
		must(t, err)
		want := map[bool]string{false: "[cp.tmp]", true: "[cp]"}[dirSynced]
		if fmt.Sprint(names) != want {
			t.Fatalf("dir synced %v: List = %v, want %s", dirSynced, names, want)
		}
	}
}

func TestMemFSCrashCreateTruncateIsUnsynced(t *testing.T) {
	seen := map[string]bool{}
	for seed := range uint64(50) {
		m := NewMem()
		must(t, syncedFile(t, m, "/f", []byte("hello")).Close())
		f, err := m.Create("/f") // O_TRUNC on the same inode
		must(t, err)
		must(t, f.Close())
		m.Crash(seeded(seed))
		seen[string(readFile(t, m, "/f"))] = true
	}
	if len(seen) != 2 || !seen["hello"] || !seen[""] {
		t.Fatalf("outcomes %v, want exactly \"hello\" and \"\"", seen)
	}
}

func TestMemFSCrashInvalidatesHandles(t *testing.T) {
	m := NewMem()
	f := syncedFile(t, m, "/f", []byte("abc"))
	m.Crash(seeded(5))
	_, err := f.ReadAt(make([]byte, 1), 0)
	if !errors.Is(err, ErrStaleHandle) || !errors.Is(err, os.ErrClosed) {
		t.Fatalf("ReadAt after crash: %v", err)
	}
	_, err = f.WriteAt([]byte("x"), 0)
	if !errors.Is(err, ErrStaleHandle) {
		t.Fatalf("WriteAt after crash: %v", err)
	}
	if err := f.Sync(); !errors.Is(err, ErrStaleHandle) {
		t.Fatalf("Sync after crash: %v", err)
	}
	must(t, f.Close())
	// The FS itself is usable: reopen, write, crash again.
	g, err := m.OpenReadWrite("/f")
	must(t, err)
	_, err = g.WriteAt([]byte("d"), 3)
	must(t, err)
	must(t, g.Sync())
	m.Crash(seeded(6))
	expectBytes(t, readFile(t, m, "/f"), []byte("abcd"))
}

func TestMemFSCrashUnlinkedOpenFile(t *testing.T) {
	m := NewMem()
	f := syncedFile(t, m, "/f", []byte("abc"))
	must(t, m.Remove("/f"))
	must(t, m.SyncDir("/"))
	_, err := f.WriteAt([]byte("more"), 3)
	must(t, err)
	must(t, f.Sync()) // syncing an unlinked file does not bring its name back
	m.Crash(seeded(7))
	_, err = m.Stat("/f")
	expectNotExist(t, "Stat of an unlinked, dir-synced file", err)
}

func TestMemFSCrashDeterministic(t *testing.T) {
	build := func() *MemFS {
		m := NewMem()
		must(t, m.MkdirAll("/a/b", 0o755))
		for i := range 5 {
			f := syncedFile(t, m, fmt.Sprintf("/a/b/%d", i), []byte("base"))
			for j := range 4 {
				_, err := f.WriteAt([]byte(fmt.Sprintf("w%d-%d.", i, j)), int64(4+6*j))
				must(t, err)
			}
		}
		return m
	}
	for seed := range uint64(20) {
		original := build()
		before := dumpTree(t, original)
		clone := original.CrashClone(seeded(seed))
		if after := dumpTree(t, original); after != before {
			t.Fatalf("CrashClone changed the original:\n%s\nvs\n%s", before, after)
		}
		again := build()
		again.Crash(seeded(seed))
		third := build().CrashClone(seeded(seed))
		if a, b, c := dumpTree(t, clone), dumpTree(t, again), dumpTree(t, third); a != b || b != c {
			t.Fatalf("seed %d: same seed, different results:\n%s\n%s\n%s", seed, a, b, c)
		}
	}
}

// dumpTree renders every path and file content, sorted.
func dumpTree(t *testing.T, m *MemFS) string {
	t.Helper()
	var lines []string
	var walk func(dir string)
	walk = func(dir string) {
		names, err := m.List(dir)
		must(t, err)
		for _, n := range names {
			p := path.Join(dir, n)
			info, err := m.Stat(p)
			must(t, err)
			if info.IsDir() {
				lines = append(lines, p+"/")
				walk(p)
				continue
			}
			lines = append(lines, fmt.Sprintf("%s %q", p, readFile(t, m, p)))
		}
	}
	walk("/")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestMemFSStrictMkdir(t *testing.T) {
	m := NewMem()
	m.SetStrictMkdir(true)
	must(t, m.MkdirAll("/data/t-0", 0o755))
	must(t, m.SyncDir("/data"))
	m.Crash(seeded(8))
	_, err := m.Stat("/data")
	expectNotExist(t, "Stat of a strict, never-synced directory", err)

	must(t, m.MkdirAll("/data/t-0", 0o755))
	must(t, m.SyncDir("/"))
	must(t, m.SyncDir("/data"))
	m.Crash(seeded(9))
	_, err = m.Stat("/data/t-0")
	must(t, err)
}

func TestMemFSDefaultMkdirIsDurable(t *testing.T) {
	m := NewMem()
	must(t, m.MkdirAll("/data/t-0", 0o755))
	m.Crash(seeded(10))
	_, err := m.Stat("/data/t-0")
	must(t, err)
}

func TestMemFSRenameIntoOwnSubtreeFails(t *testing.T) {
	m := NewMem()
	must(t, m.MkdirAll("/a/b", 0o755))
	if err := m.Rename("/a", "/a/b/c"); err == nil {
		t.Fatal("renaming a directory into itself succeeded")
	}
}

// TestMemFSConcurrentReadWrite is for the race detector: readers and a
// writer share a file the way fetches and appends share a segment.
func TestMemFSConcurrentReadWrite(t *testing.T) {
	m := NewMem()
	w, err := m.Create("/seg")
	must(t, err)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := m.Open("/seg")
			if err != nil {
				t.Error(err)
				return
			}
			defer r.Close()
			buf := make([]byte, 64)
			for range 500 {
				r.ReadAt(buf, 0)
				r.Size()
			}
		}()
	}
	for i := range 500 {
		_, err := w.WritevAt([][]byte{[]byte("rec"), []byte("ord")}, int64(i*6))
		must(t, err)
		if i%50 == 0 {
			must(t, w.Sync())
		}
	}
	wg.Wait()
	must(t, w.Close())
}

// TestMemFSCrashKeepsSyncFSBytes: a SyncFS makes what every file held at
// that moment durable, files of other directories and removed-but-not-yet-
// durable names included, and nothing written after it; directory entries
// still need SyncDir.
func TestMemFSCrashKeepsSyncFSBytes(t *testing.T) {
	for seed := range uint64(100) {
		m := NewMem()
		must(t, m.MkdirAll("/a", 0o755))
		must(t, m.MkdirAll("/b", 0o755))
		fa := syncedFile(t, m, "/a/seg.log", []byte("a0|"))
		fb := syncedFile(t, m, "/b/seg.log", []byte("b0|"))
		gone := syncedFile(t, m, "/b/gone.log", []byte("g0|"))
		_, err := fa.WriteAt([]byte("a1|"), 3)
		must(t, err)
		_, err = fb.WritevAt([][]byte{[]byte("b1"), []byte("|")}, 3)
		must(t, err)
		_, err = gone.WriteAt([]byte("g1|"), 3)
		must(t, err)
		must(t, m.Remove("/b/gone.log"))
		fresh, err := m.Create("/b/fresh.log") // its name never made durable
		must(t, err)
		_, err = fresh.WriteAt([]byte("f0|"), 0)
		must(t, err)
		s, err := m.OpenFileSystemSyncer("/a")
		must(t, err)
		must(t, s.SyncFS())
		_, err = fa.WriteAt([]byte("a2|"), 6)
		must(t, err)
		m.Crash(seeded(seed))
		if got := string(readFile(t, m, "/a/seg.log")); !strings.HasPrefix(got, "a0|a1|") || !strings.HasPrefix("a0|a1|a2|", got) {
			t.Fatalf("seed %d: /a/seg.log = %q, want a0|a1| and a prefix of a2|", seed, got)
		}
		if got := string(readFile(t, m, "/b/seg.log")); got != "b0|b1|" {
			t.Fatalf("seed %d: /b/seg.log = %q, want b0|b1|", seed, got)
		}
		if got := string(readFile(t, m, "/b/gone.log")); got != "g0|g1|" {
			t.Fatalf("seed %d: removed file brought back by the crash = %q, want g0|g1|", seed, got)
		}
		if _, err := m.Stat("/b/fresh.log"); err == nil {
			t.Fatalf("seed %d: a name SyncFS covered without SyncDir survived", seed)
		}
		if err := s.SyncFS(); !errors.Is(err, ErrStaleHandle) {
			t.Fatalf("seed %d: SyncFS after a crash: %v, want ErrStaleHandle", seed, err)
		}
	}
}
