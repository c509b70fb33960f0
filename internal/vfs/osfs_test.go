package vfs

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
)

// TestOSFSWritevManyBuffers crosses IOV_MAX so the chunking path runs.
func TestOSFSWritevManyBuffers(t *testing.T) {
	fsys := OS()
	f, err := fsys.Create(filepath.Join(t.TempDir(), "v"))
	must(t, err)
	defer f.Close()
	var bufs [][]byte
	var want bytes.Buffer
	for i := range 2500 {
		b := []byte(fmt.Sprintf("<%d>", i))
		if i%7 == 0 {
			b = nil // empty buffers must not confuse the short-write logic
		}
		bufs = append(bufs, b)
		want.Write(b)
	}
	n, err := f.WritevAt(bufs, 10)
	must(t, err)
	if n != int64(want.Len()) {
		t.Fatalf("wrote %d, want %d", n, want.Len())
	}
	got := readFile(t, fsys, f.Name())
	expectBytes(t, got[10:], want.Bytes())
	expectBytes(t, got[:10], make([]byte, 10))
}

func TestOSFSFilesExposeDescriptor(t *testing.T) {
	f, err := Default.Create(filepath.Join(t.TempDir(), "s"))
	must(t, err)
	defer f.Close()
	osf, ok := f.(OSFile)
	if !ok || osf.OSFile() == nil || osf.OSFile().Name() != f.Name() {
		t.Fatalf("OS file does not implement OSFile properly: %T", f)
	}
}

func TestOSFSSyncAfterClose(t *testing.T) {
	f, err := OS().Create(filepath.Join(t.TempDir(), "c"))
	must(t, err)
	must(t, f.Close())
	if err := f.Sync(); err == nil {
		t.Fatal("Sync on a closed file succeeded")
	}
	if _, err := f.WritevAt([][]byte{[]byte("x")}, 0); err == nil {
		t.Fatal("WritevAt on a closed file succeeded")
	}
}
