package vfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"testing"
)

// The conformance suite runs the same basic-behaviour checks against every
// FS, so MemFS cannot drift from what the OS does on the paths the log uses.

type fsMaker func(t *testing.T) (FS, string)

func fsMakers() map[string]fsMaker {
	return map[string]fsMaker{
		"os":  func(t *testing.T) (FS, string) { return OS(), t.TempDir() },
		"mem": func(t *testing.T) (FS, string) { return NewMem(), "/data" },
		"error-over-mem": func(t *testing.T) (FS, string) {
			return NewErrorFS(NewMem()), "/data"
		},
	}
}

func TestOSFSConformance(t *testing.T)    { runConformance(t, "os") }
func TestMemFSConformance(t *testing.T)   { runConformance(t, "mem") }
func TestErrorFSConformance(t *testing.T) { runConformance(t, "error-over-mem") }

func runConformance(t *testing.T, kind string) {
	tests := map[string]func(t *testing.T, fsys FS, dir string){
		"WriteReadStat":      conformWriteReadStat,
		"Missing":            conformMissing,
		"CreateTruncates":    conformCreateTruncates,
		"ListSorted":         conformListSorted,
		"RenameReplaces":     conformRenameReplaces,
		"RemoveDirs":         conformRemoveDirs,
		"Truncate":           conformTruncate,
		"UnlinkWhileOpen":    conformUnlinkWhileOpen,
		"WritevAt":           conformWritevAt,
		"ReadOnlyAndClosed":  conformReadOnlyAndClosed,
		"MkdirAllOverFile":   conformMkdirAllOverFile,
		"SyncAndSyncDirWork": conformSync,
		"FileSystemSyncer":   conformFileSystemSyncer,
	}
	for name, test := range tests {
		t.Run(name, func(t *testing.T) {
			fsys, dir := fsMakers()[kind](t)
			must(t, fsys.MkdirAll(dir, 0o755))
			test(t, fsys, dir)
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, fsys FS, name string, data []byte) {
	t.Helper()
	f, err := fsys.Create(name)
	must(t, err)
	_, err = f.WriteAt(data, 0)
	must(t, err)
	must(t, f.Close())
}

func readFile(t *testing.T, fsys FS, name string) []byte {
	t.Helper()
	f, err := fsys.Open(name)
	must(t, err)
	defer f.Close()
	size, err := f.Size()
	must(t, err)
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return buf
}

func expectBytes(t *testing.T, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func conformWriteReadStat(t *testing.T, fsys FS, dir string) {
	name := filepath.Join(dir, "a.log")
	f, err := fsys.Create(name)
	must(t, err)
	defer f.Close()
	if f.Name() != name {
		t.Fatalf("Name() = %q, want %q", f.Name(), name)
	}
	_, err = f.WriteAt([]byte("hello world"), 0)
	must(t, err)
	_, err = f.WriteAt([]byte("WORLD"), 6)
	must(t, err)
	buf := make([]byte, 5)
	n, err := f.ReadAt(buf, 6)
	must(t, err)
	expectBytes(t, buf[:n], []byte("WORLD"))
	n, err = f.ReadAt(make([]byte, 10), 6)
	if n != 5 || !errors.Is(err, io.EOF) {
		t.Fatalf("short read = %d, %v; want 5, io.EOF", n, err)
	}
	info, err := fsys.Stat(name)
	must(t, err)
	if info.Name() != "a.log" || info.Size() != 11 || info.IsDir() {
		t.Fatalf("stat = %q size %d dir %v", info.Name(), info.Size(), info.IsDir())
	}
	info, err = fsys.Stat(dir)
	must(t, err)
	if !info.IsDir() {
		t.Fatal("directory not reported as one")
	}
}

func conformMissing(t *testing.T, fsys FS, dir string) {
	missing := filepath.Join(dir, "nope")
	_, err := fsys.Open(missing)
	expectNotExist(t, "Open", err)
	_, err = fsys.Stat(missing)
	expectNotExist(t, "Stat", err)
	_, err = fsys.List(missing)
	expectNotExist(t, "List", err)
	expectNotExist(t, "Remove", fsys.Remove(missing))
	expectNotExist(t, "Rename", fsys.Rename(missing, filepath.Join(dir, "x")))
	expectNotExist(t, "SyncDir", fsys.SyncDir(missing))
	_, err = fsys.Create(filepath.Join(missing, "child"))
	expectNotExist(t, "Create in missing dir", err)
	must(t, fsys.RemoveAll(missing))
}

func expectNotExist(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s: got %v, want fs.ErrNotExist", what, err)
	}
}

func conformCreateTruncates(t *testing.T, fsys FS, dir string) {
	name := filepath.Join(dir, "f")
	writeFile(t, fsys, name, []byte("0123456789"))
	f, err := fsys.OpenReadWrite(name)
	must(t, err)
	_, err = f.WriteAt([]byte("ab"), 2)
	must(t, err)
	must(t, f.Close())
	expectBytes(t, readFile(t, fsys, name), []byte("01ab456789"))
	f, err = fsys.Create(name)
	must(t, err)
	must(t, f.Close())
	expectBytes(t, readFile(t, fsys, name), []byte{})
	// OpenReadWrite creates a missing file.
	f, err = fsys.OpenReadWrite(filepath.Join(dir, "new"))
	must(t, err)
	must(t, f.Close())
}

func conformListSorted(t *testing.T, fsys FS, dir string) {
	for _, n := range []string{"c", "a", "b"} {
		writeFile(t, fsys, filepath.Join(dir, n), nil)
	}
	must(t, fsys.MkdirAll(filepath.Join(dir, "d", "e"), 0o755))
	names, err := fsys.List(dir)
	must(t, err)
	if got := filepath.Join(names...); got != filepath.Join("a", "b", "c", "d") {
		t.Fatalf("List = %q", names)
	}
	if _, err := fsys.List(filepath.Join(dir, "a")); err == nil {
		t.Fatal("List of a file succeeded")
	}
}

func conformRenameReplaces(t *testing.T, fsys FS, dir string) {
	tmp, final := filepath.Join(dir, "cp.tmp"), filepath.Join(dir, "cp")
	writeFile(t, fsys, final, []byte("old"))
	writeFile(t, fsys, tmp, []byte("new"))
	must(t, fsys.Rename(tmp, final))
	expectBytes(t, readFile(t, fsys, final), []byte("new"))
	_, err := fsys.Stat(tmp)
	expectNotExist(t, "Stat of renamed-away name", err)
	// Directories move with their contents.
	must(t, fsys.MkdirAll(filepath.Join(dir, "p1"), 0o755))
	writeFile(t, fsys, filepath.Join(dir, "p1", "x"), []byte("x"))
	must(t, fsys.Rename(filepath.Join(dir, "p1"), filepath.Join(dir, "p2")))
	expectBytes(t, readFile(t, fsys, filepath.Join(dir, "p2", "x")), []byte("x"))
}

func conformRemoveDirs(t *testing.T, fsys FS, dir string) {
	sub := filepath.Join(dir, "topic-0")
	must(t, fsys.MkdirAll(sub, 0o755))
	writeFile(t, fsys, filepath.Join(sub, "0.log"), []byte("x"))
	if err := fsys.Remove(sub); err == nil {
		t.Fatal("Remove of a non-empty directory succeeded")
	}
	must(t, fsys.RemoveAll(sub))
	_, err := fsys.Stat(sub)
	expectNotExist(t, "Stat after RemoveAll", err)
	must(t, fsys.MkdirAll(sub, 0o755))
	must(t, fsys.Remove(sub))
}

func conformTruncate(t *testing.T, fsys FS, dir string) {
	name := filepath.Join(dir, "t")
	f, err := fsys.Create(name)
	must(t, err)
	defer f.Close()
	_, err = f.WriteAt([]byte("abcdef"), 0)
	must(t, err)
	must(t, f.Truncate(2))
	must(t, f.Truncate(5)) // growth must read zeros, not the old "cde"
	size, err := f.Size()
	must(t, err)
	if size != 5 {
		t.Fatalf("size %d, want 5", size)
	}
	expectBytes(t, readFile(t, fsys, name), []byte("ab\x00\x00\x00"))
	_, err = f.WriteAt([]byte("z"), 8) // a write past the end leaves a zero gap
	must(t, err)
	expectBytes(t, readFile(t, fsys, name), []byte("ab\x00\x00\x00\x00\x00\x00z"))
}

func conformUnlinkWhileOpen(t *testing.T, fsys FS, dir string) {
	name := filepath.Join(dir, "old.log")
	writeFile(t, fsys, name, []byte("segment"))
	f, err := fsys.OpenReadWrite(name)
	must(t, err)
	defer f.Close()
	must(t, fsys.Remove(name))
	_, err = fsys.Stat(name)
	expectNotExist(t, "Stat after Remove", err)
	_, err = f.WriteAt([]byte("!"), 7)
	must(t, err)
	buf := make([]byte, 8)
	_, err = f.ReadAt(buf, 0)
	must(t, err)
	expectBytes(t, buf, []byte("segment!"))
	// A new file under the same name is a different file.
	writeFile(t, fsys, name, []byte("fresh"))
	_, err = f.ReadAt(buf, 0)
	must(t, err)
	expectBytes(t, buf, []byte("segment!"))
}

func conformWritevAt(t *testing.T, fsys FS, dir string) {
	f, err := fsys.Create(filepath.Join(dir, "v"))
	must(t, err)
	defer f.Close()
	bufs := [][]byte{[]byte("head"), nil, []byte("-"), {}, []byte("tail")}
	n, err := f.WritevAt(bufs, 3)
	must(t, err)
	if n != 9 {
		t.Fatalf("WritevAt wrote %d, want 9", n)
	}
	expectBytes(t, readFile(t, fsys, f.Name()), []byte("\x00\x00\x00head-tail"))
	n, err = f.WritevAt(nil, 0)
	if n != 0 || err != nil {
		t.Fatalf("empty WritevAt = %d, %v", n, err)
	}
}

func conformReadOnlyAndClosed(t *testing.T, fsys FS, dir string) {
	name := filepath.Join(dir, "ro")
	writeFile(t, fsys, name, []byte("data"))
	f, err := fsys.Open(name)
	must(t, err)
	if _, err := f.WriteAt([]byte("x"), 0); err == nil {
		t.Fatal("WriteAt on a read-only handle succeeded")
	}
	if err := f.Truncate(0); err == nil {
		t.Fatal("Truncate on a read-only handle succeeded")
	}
	must(t, f.Close())
	if _, err := f.ReadAt(make([]byte, 1), 0); err == nil {
		t.Fatal("ReadAt on a closed handle succeeded")
	}
	if err := f.Close(); err == nil {
		t.Fatal("second Close succeeded")
	}
}

func conformMkdirAllOverFile(t *testing.T, fsys FS, dir string) {
	name := filepath.Join(dir, "file")
	writeFile(t, fsys, name, nil)
	if err := fsys.MkdirAll(filepath.Join(name, "sub"), 0o755); err == nil {
		t.Fatal("MkdirAll through a file succeeded")
	}
	must(t, fsys.MkdirAll(dir, 0o755)) // existing directory: no error
}

func conformSync(t *testing.T, fsys FS, dir string) {
	f, err := fsys.Create(filepath.Join(dir, "s"))
	must(t, err)
	_, err = f.WriteAt([]byte("x"), 0)
	must(t, err)
	must(t, f.Sync())
	must(t, f.Close())
	must(t, fsys.SyncDir(dir))
}

// conformFileSystemSyncer: a syncer opens on a directory (not on a missing
// one), syncs with files written and open, and refuses work once closed.
// On the OS it may be refused as unsupported (non-Linux, old kernel, an
// untrusted file system), which callers handle by syncing file by file.
func conformFileSystemSyncer(t *testing.T, fsys FS, dir string) {
	if _, err := fsys.OpenFileSystemSyncer(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("OpenFileSystemSyncer of a missing directory succeeded")
	}
	s, err := fsys.OpenFileSystemSyncer(dir)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("syncfs refused here: %v", err)
	}
	must(t, err)
	f, err := fsys.Create(filepath.Join(dir, "s"))
	must(t, err)
	_, err = f.WritevAt([][]byte{[]byte("x"), []byte("y")}, 0)
	must(t, err)
	must(t, s.SyncFS())
	must(t, f.Close())
	must(t, s.SyncFS())
	must(t, s.Close())
	if err := s.SyncFS(); err == nil {
		t.Fatal("SyncFS on a closed syncer succeeded")
	}
}
