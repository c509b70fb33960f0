package node

import (
	"path/filepath"
	"testing"

	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/vfs"
)

// TestBrokerIncarnationNamesThePreviousRun checks that each start on a log
// directory draws a new incarnation and learns the one before it, which
// is what lets the controller replace a crashed run's registration at
// once; a damaged file only costs that fast path.
func TestBrokerIncarnationNamesThePreviousRun(t *testing.T) {
	fsys := vfs.NewMem()
	dir := "/data"
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	first, prev, err := newIncarnation(fsys, dir)
	if err != nil || first == (metadata.UUID{}) || prev != (metadata.UUID{}) {
		t.Fatalf("first start: %x, previous %x, %v", first, prev, err)
	}
	second, prev, err := newIncarnation(fsys, dir)
	if err != nil || prev != first || second == first || second == (metadata.UUID{}) {
		t.Fatalf("second start: %x, previous %x (first %x), %v", second, prev, first, err)
	}
	if err := vfs.WriteFileAtomic(fsys, filepath.Join(dir, incarnationFile), []byte("not hex\n")); err != nil {
		t.Fatal(err)
	}
	if _, prev, err = newIncarnation(fsys, dir); err != nil || prev != (metadata.UUID{}) {
		t.Fatalf("after a damaged file: previous %x, %v", prev, err)
	}
}
