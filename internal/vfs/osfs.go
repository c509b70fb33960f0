package vfs

import (
	"fmt"
	"os"
	"sort"
	"syscall"
)

// Default is the operating system's file system. Production code receives it
// from the composition root; nothing else in the tree calls package os for
// files.
var Default FS = osFS{}

// OS returns the operating system's file system (the same value as Default).
func OS() FS { return osFS{} }

// File and directory permissions used when the FS creates something. They
// are fixed because the broker, not the caller, owns the data directory's
// layout; MkdirAll's perm argument is honoured for the directories it makes.
const (
	filePerm = 0o644
	dirPerm  = 0o755
)

type osFS struct{}

func (osFS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, filePerm)
	if err != nil {
		return nil, err // *os.PathError already names the op and path
	}
	return newOSFile(f), nil
}

func (osFS) Open(name string) (File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return newOSFile(f), nil
}

func (osFS) OpenReadWrite(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return nil, err
	}
	return newOSFile(f), nil
}

func (osFS) Remove(name string) error { return os.Remove(name) }

func (osFS) RemoveAll(name string) error { return os.RemoveAll(name) }

func (osFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }

func (osFS) MkdirAll(dir string, perm os.FileMode) error {
	if perm == 0 {
		perm = dirPerm
	}
	return os.MkdirAll(dir, perm)
}

func (osFS) List(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

func (osFS) Stat(name string) (os.FileInfo, error) { return os.Stat(name) }

// SyncDir fsyncs the directory itself; on Linux that is what makes a
// creation, rename or unlink of one of its entries survive power loss.
func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return fmt.Errorf("vfs: sync dir: %w", err)
	}
	return d.Close()
}

// OpenFileSystemSyncer keeps a descriptor of dir open for syncfs(2):
// write-back errors reach a syncfs caller through the descriptor it
// passes, and only errors that happened after that descriptor was opened,
// so the same one must be used from before the writes it vouches for
// (see osfs_linux.go for where syncfs is refused).
func (osFS) OpenFileSystemSyncer(dir string) (FileSystemSyncer, error) {
	return openFileSystemSyncer(dir)
}

// osFile wraps *os.File rather than embedding it so that only the File
// methods are reachable; callers that need the descriptor ask for it
// explicitly through OSFile.
type osFile struct {
	file *os.File
	// raw lets the Linux pwritev/fdatasync paths use the descriptor while
	// package os keeps it from being closed underneath the system call.
	// Cached at open so the write path does not allocate per call.
	raw syscall.RawConn
	// sys holds what the platform's system call paths reuse from call to
	// call (see osfs_linux.go).
	sys sysCalls
}

func newOSFile(f *os.File) *osFile {
	raw, err := f.SyscallConn()
	if err != nil {
		raw = nil // the portable fallbacks do not need it
	}
	of := &osFile{file: f, raw: raw}
	of.initSysCalls()
	return of
}

func (f *osFile) ReadAt(p []byte, off int64) (int, error)  { return f.file.ReadAt(p, off) }
func (f *osFile) WriteAt(p []byte, off int64) (int, error) { return f.file.WriteAt(p, off) }
func (f *osFile) Close() error                             { return f.file.Close() }
func (f *osFile) Truncate(size int64) error                { return f.file.Truncate(size) }
func (f *osFile) Name() string                             { return f.file.Name() }
func (f *osFile) OSFile() *os.File                         { return f.file }

func (f *osFile) Size() (int64, error) {
	info, err := f.file.Stat()
	if err != nil {
		return 0, err
	}
	return info.Size(), nil
}

func (f *osFile) WritevAt(bufs [][]byte, off int64) (int64, error) {
	return f.writevAt(bufs, off)
}

func (f *osFile) Sync() error { return f.datasync() }

// StartWriteback hints the kernel to begin writing the range back
// (osfs_linux.go); a no-op where no such call is wired up.
func (f *osFile) StartWriteback(off, n int64) error { return f.startWriteback(off, n) }

// writeAtLoop is the portable WritevAt: one WriteAt per buffer. os.File's
// WriteAt already loops over short writes, so an error is the only way out
// with fewer bytes than asked.
func (f *osFile) writeAtLoop(bufs [][]byte, off int64) (int64, error) {
	var written int64
	for _, b := range bufs {
		n, err := f.file.WriteAt(b, off+written)
		written += int64(n)
		if err != nil {
			return written, err
		}
	}
	return written, nil
}
