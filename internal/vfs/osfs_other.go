//go:build !linux

package vfs

import (
	"errors"
	"fmt"
	"runtime"
)

// sysCalls needs no state where the portable paths are used.
type sysCalls struct{}

func (f *osFile) initSysCalls() {}

// writevAt falls back to one WriteAt per buffer where pwritev is not wired
// up; the result is the same, only with more system calls.
func (f *osFile) writevAt(bufs [][]byte, off int64) (int64, error) {
	return f.writeAtLoop(bufs, off)
}

// datasync is a full fsync where fdatasync is not available (and on macOS,
// where even fsync is weaker than F_FULLFSYNC; Sluice's durability
// guarantees are stated for Linux).
func (f *osFile) datasync() error {
	return f.file.Sync()
}

// startWriteback does nothing: the hint is sync_file_range(2), Linux's.
func (f *osFile) startWriteback(off, n int64) error { return nil }

// openFileSystemSyncer refuses: syncfs(2) is Linux's, and elsewhere a
// whole-file-system sync (sync(2)) reports no errors at all, so callers
// sync file by file.
func openFileSystemSyncer(dir string) (FileSystemSyncer, error) {
	return nil, fmt.Errorf("vfs: syncfs of %s on %s: %w", dir, runtime.GOOS, errors.ErrUnsupported)
}
