// Package vfs is the only door to the disk: every package that persists data
// takes an FS instead of calling os directly, so tests can swap in MemFS
// (which simulates a crash) or ErrorFS (which injects I/O failures).
//
// The interface is deliberately small and positional: segment files are
// written with WriteAt/WritevAt at a position the caller tracks and read with
// ReadAt, so readers and the single writer of a log never share a file
// offset.
//
// Durability follows POSIX as a careful storage engine must assume it:
// data written to a file is durable only after File.Sync, and a created,
// renamed or removed name is durable only after SyncDir of its parent
// directory. MemFS enforces exactly this on Crash. A FileSystemSyncer
// (syncfs(2)) makes the data of every file of a file system durable at
// once, and is the one exception to "only File.Sync makes a file's data
// durable".
package vfs

import (
	"io"
	"os"
)

// FS is a file system. Paths are slash- or OS-separated paths as produced by
// path/filepath; implementations do not interpret them beyond that.
type FS interface {
	// Create creates or truncates the named file and opens it read-write.
	Create(name string) (File, error)
	// Open opens the named file read-only.
	Open(name string) (File, error)
	// OpenReadWrite opens the named file read-write, creating it empty if it
	// does not exist; existing contents are kept.
	OpenReadWrite(name string) (File, error)
	// Remove removes a file or an empty directory. Open handles keep working
	// on the removed file's data (POSIX unlink semantics).
	Remove(name string) error
	// RemoveAll removes a path and everything below it; a missing path is
	// not an error.
	RemoveAll(name string) error
	// Rename atomically replaces newname with oldname.
	Rename(oldname, newname string) error
	// MkdirAll creates a directory and its missing parents.
	MkdirAll(dir string, perm os.FileMode) error
	// List returns the names (not paths) of a directory's entries, sorted.
	List(dir string) ([]string, error)
	// Stat describes the named file or directory.
	Stat(name string) (os.FileInfo, error)
	// SyncDir makes the directory's entries (creations, renames, removals
	// of its children) durable.
	SyncDir(dir string) error
	// OpenFileSystemSyncer opens a handle on the file system holding dir,
	// for syncing all of it at once. It fails with an error wrapping
	// errors.ErrUnsupported where such a sync would not report write-back
	// errors reliably; callers then sync file by file.
	OpenFileSystemSyncer(dir string) (FileSystemSyncer, error)
}

// FileSystemSyncer syncs a whole file system (syncfs(2) on Linux): one
// call instead of one fsync per file, so many files written at the same
// time pay for one journal commit and one disk cache flush between them.
type FileSystemSyncer interface {
	// SyncFS makes the data and size of every file of the file system,
	// written before the call, durable, like File.Sync on each of them.
	// Directory entries are not covered (SyncDir still makes them
	// durable). An error means some data written since the syncer was
	// opened, or since the previous SyncFS, may be lost, of any file of
	// the file system: the caller cannot tell which, so everything the
	// call was to cover must be treated as not durable.
	SyncFS() error
	// Close releases the handle.
	Close() error
}

// File is an open file.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	// WritevAt writes the buffers back to back starting at off, in as few
	// system calls as the implementation can (pwritev on Linux). It returns
	// the number of bytes written; fewer than the total means an error.
	WritevAt(bufs [][]byte, off int64) (int64, error)
	// Sync makes the file's data and size durable (fdatasync-like).
	Sync() error
	// Truncate changes the file's size; growing it fills with zeros.
	Truncate(size int64) error
	// Size returns the file's current size.
	Size() (int64, error)
	// Name returns the path the file was opened with.
	Name() string
}

// OSFile is implemented by files backed by a real operating-system file, so
// the network edge can hand the descriptor to sendfile(2) without copying.
type OSFile interface {
	OSFile() *os.File
}

// WritebackStarter is implemented by files that can start writing a byte
// range of dirty pages back to the disk without waiting for it
// (sync_file_range(2) with SYNC_FILE_RANGE_WRITE on Linux). It is a hint
// for the kernel's write-back, never a durability claim: the range is
// durable only after File.Sync or FileSystemSyncer.SyncFS, as before.
type WritebackStarter interface {
	// StartWriteback asks for n bytes from off to be written back soon.
	// An error only says the hint was not taken; a write-back failure of
	// those pages is reported, as always, by the next Sync or SyncFS.
	StartWriteback(off, n int64) error
}

// StartWriteback starts the write-back of n bytes of f from off where f
// can (WritebackStarter), and does nothing elsewhere: in-memory and
// error-injecting files, and systems without such a call.
func StartWriteback(f File, off, n int64) error {
	if w, ok := f.(WritebackStarter); ok && n > 0 {
		return w.StartWriteback(off, n)
	}
	return nil
}
