package vfs

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
)

func TestErrorFSAfterAndCount(t *testing.T) {
	efs := NewErrorFS(NewMem())
	f, err := efs.Create("/a.log")
	must(t, err)
	efs.Inject(Rule{Op: OpSync, PathContains: ".log", After: 2, Count: 1})
	var results []bool
	for range 5 {
		results = append(results, f.Sync() == nil)
	}
	want := []bool{true, true, false, true, true}
	for i := range want {
		if results[i] != want[i] {
			t.Fatalf("sync outcomes %v, want %v", results, want)
		}
	}
	if efs.Count(OpSync) != 5 || efs.Count(OpCreate) != 1 || efs.Count(OpAny) != 6 {
		t.Fatalf("counts sync %d create %d any %d", efs.Count(OpSync), efs.Count(OpCreate), efs.Count(OpAny))
	}
	if efs.Injected() != 1 {
		t.Fatalf("Injected() = %d, want 1", efs.Injected())
	}
}

func TestErrorFSForeverAndClear(t *testing.T) {
	efs := NewErrorFS(NewMem())
	f, err := efs.Create("/a.log")
	must(t, err)
	efs.Inject(Rule{Op: OpWrite, Count: -1})
	for range 3 {
		_, err := f.WriteAt([]byte("x"), 0)
		if !errors.Is(err, ErrInjected) || !errors.Is(err, syscall.EIO) {
			t.Fatalf("WriteAt: %v, want ErrInjected wrapping EIO", err)
		}
	}
	efs.Clear()
	_, err = f.WriteAt([]byte("x"), 0)
	must(t, err)
}

func TestErrorFSPathFilters(t *testing.T) {
	efs := NewErrorFS(NewMem())
	must(t, efs.MkdirAll("/d", 0o755))
	isIndex := func(p string) bool { ok, _ := filepath.Match("*.index", filepath.Base(p)); return ok }
	efs.Inject(Rule{Op: OpCreate, PathContains: "/d/", Match: isIndex, Count: -1})
	if _, err := efs.Create("/d/0.log"); err != nil {
		t.Fatalf("Create of an unmatched path failed: %v", err)
	}
	if _, err := efs.Create("/d/0.index"); !errors.Is(err, ErrInjected) {
		t.Fatalf("Create of a matched path: %v", err)
	}
	if _, err := efs.Create("/0.index"); err != nil {
		t.Fatalf("Create outside /d/ failed: %v", err)
	}
	// Rename is matched against both names.
	efs.Inject(Rule{Op: OpRename, PathContains: "checkpoint", Err: ErrDiskFull})
	if err := efs.Rename("/d/0.log", "/d/checkpoint"); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Rename to a matched name: %v", err)
	}
}

func TestErrorFSDiskFullPartialWrite(t *testing.T) {
	mem := NewMem()
	efs := NewErrorFS(mem)
	f, err := efs.Create("/seg.log")
	must(t, err)
	efs.Inject(Rule{Op: OpWrite, Err: ErrDiskFull, PartialBytes: 3})
	n, err := f.WriteAt([]byte("abcdef"), 0)
	if n != 3 || !errors.Is(err, ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("WriteAt = %d, %v; want 3, ENOSPC", n, err)
	}
	expectBytes(t, readFile(t, mem, "/seg.log"), []byte("abc"))

	efs.Inject(Rule{Op: OpWrite, Err: ErrDiskFull, PartialBytes: 5})
	n64, err := f.WritevAt([][]byte{[]byte("12"), []byte("34"), []byte("56")}, 3)
	if n64 != 5 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("WritevAt = %d, %v; want 5, ENOSPC", n64, err)
	}
	expectBytes(t, readFile(t, mem, "/seg.log"), []byte("abc12345"))

	efs.Inject(Rule{Op: OpWrite, Err: ErrDiskFull, PartialBytes: -1})
	n64, err = f.WritevAt([][]byte{[]byte("zz")}, 0)
	if n64 != 0 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("WritevAt without partial = %d, %v", n64, err)
	}
	expectBytes(t, readFile(t, mem, "/seg.log"), []byte("abc12345"))
}

func TestErrorFSEveryOpCanFail(t *testing.T) {
	mem := NewMem()
	efs := NewErrorFS(mem)
	must(t, efs.MkdirAll("/d", 0o755))
	f, err := efs.Create("/d/f")
	must(t, err)
	defer f.Close()
	syncer, err := efs.OpenFileSystemSyncer("/d")
	must(t, err)
	defer syncer.Close()
	calls := map[Op]func() error{
		OpSyncFS:   syncer.SyncFS,
		OpCreate:   func() error { _, err := efs.Create("/d/g"); return err },
		OpOpen:     func() error { _, err := efs.OpenReadWrite("/d/f"); return err },
		OpWrite:    func() error { _, err := f.WriteAt([]byte("x"), 0); return err },
		OpSync:     f.Sync,
		OpSyncDir:  func() error { return efs.SyncDir("/d") },
		OpTruncate: func() error { return f.Truncate(0) },
		OpRemove:   func() error { return efs.RemoveAll("/d/none") },
		OpRename:   func() error { return efs.Rename("/d/f", "/d/f2") },
		OpRead:     func() error { _, err := f.ReadAt(make([]byte, 1), 0); return err },
		OpMkdir:    func() error { return efs.MkdirAll("/e", 0o755) },
		OpList:     func() error { _, err := efs.List("/d"); return err },
		OpStat:     func() error { _, err := f.Size(); return err },
	}
	for op, call := range calls {
		efs.Inject(Rule{Op: op})
		if err := call(); !errors.Is(err, ErrInjected) {
			t.Errorf("%v: got %v, want ErrInjected", op, err)
		}
		efs.Clear()
	}
}
