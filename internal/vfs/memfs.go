package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrStaleHandle is returned by every operation (except Close) on a MemFS
// file handle opened before a Crash: the process that held it is gone, and a
// test that keeps using it is testing something no real broker can do. It
// wraps os.ErrClosed so generic "file closed" handling also matches.
var ErrStaleHandle = fmt.Errorf("vfs: file handle from before a crash: %w", os.ErrClosed)

// MemFS is an in-memory FS with strict POSIX durability, for crash tests.
//
// Every file keeps two versions of its bytes: what readers see now, and what
// was last made durable by File.Sync, plus the ordered list of writes and
// truncates since that Sync. Every directory keeps two versions of its
// entries: the current ones and those last made durable by SyncDir. Crash
// throws away everything that was not made durable, except for a random
// prefix of each file's unsynced operations (the last one possibly torn),
// which is what a kernel that flushed part of its page cache leaves behind.
//
// Simplifications, chosen to keep tests practical:
//   - The root directory "/" always exists. Relative paths are taken
//     relative to it.
//   - By default MkdirAll is durable at once (as if the caller had synced
//     each new directory's parent). SetStrictMkdir(true) turns that off, so
//     a directory also needs its parent SyncDir'd to survive a crash.
//   - A rename whose source directory was synced but whose target directory
//     was not (or the reverse) can leave the file under both names after a
//     crash, sharing one inode: a hard link, as on a real file system.
//
// All methods are safe for concurrent use; one lock guards the whole tree,
// so a ReadAt racing a WriteAt sees either all or none of the write.
type MemFS struct {
	mu   sync.RWMutex
	root *memNode
	// epoch counts crashes. A handle remembers the epoch it was opened in
	// and stops working when it no longer matches.
	epoch       uint64
	strictMkdir bool
}

// memNode is an inode: a file or a directory. Several names (or none, after
// Remove) can refer to one node; open handles hold it too.
type memNode struct {
	isDir bool

	// Files.
	data    []byte  // what readers see now
	synced  []byte  // what the last Sync made durable; never aliases data
	pending []memOp // writes and truncates since the last Sync, in order

	// Directories.
	children       map[string]*memNode // current entries
	syncedChildren map[string]*memNode // entries as of the last SyncDir
}

// memOp is one unsynced change to a file. A crash replays a prefix of them
// on top of the synced bytes.
type memOp struct {
	truncate bool
	off      int64  // write offset, or the new size for a truncate
	data     []byte // the written bytes (a private copy); nil for truncate
}

var _ FS = (*MemFS)(nil)

// NewMem returns an empty MemFS holding only the root directory.
func NewMem() *MemFS {
	return &MemFS{root: newDirNode()}
}

// SetStrictMkdir makes MkdirAll'd directories durable only once their
// parent is SyncDir'd, like every other name. Off by default.
func (m *MemFS) SetStrictMkdir(strict bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.strictMkdir = strict
}

func newDirNode() *memNode {
	return &memNode{
		isDir:          true,
		children:       map[string]*memNode{},
		syncedChildren: map[string]*memNode{},
	}
}

// splitPath turns a name into its components below the root; the root itself
// has none.
func splitPath(name string) []string {
	p := path.Clean("/" + filepath.ToSlash(name))
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

// walkLocked follows parts from the root and returns the node they name.
func (m *MemFS) walkLocked(op, name string, parts []string) (*memNode, error) {
	n := m.root
	for _, part := range parts {
		if !n.isDir {
			return nil, &fs.PathError{Op: op, Path: name, Err: syscall.ENOTDIR}
		}
		child, ok := n.children[part]
		if !ok {
			return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		n = child
	}
	return n, nil
}

// parentLocked returns the directory that holds name's last component, and
// that component. The root has no parent, so naming it is an error.
func (m *MemFS) parentLocked(op, name string) (*memNode, string, error) {
	parts := splitPath(name)
	if len(parts) == 0 {
		return nil, "", &fs.PathError{Op: op, Path: name, Err: syscall.EINVAL}
	}
	dir, err := m.walkLocked(op, name, parts[:len(parts)-1])
	if err != nil {
		return nil, "", err
	}
	if !dir.isDir {
		return nil, "", &fs.PathError{Op: op, Path: name, Err: syscall.ENOTDIR}
	}
	return dir, parts[len(parts)-1], nil
}

func (m *MemFS) Create(name string) (File, error) {
	return m.openFile("create", name, true, true)
}

func (m *MemFS) OpenReadWrite(name string) (File, error) {
	return m.openFile("open", name, true, false)
}

// Open opens a file read-only. Unlike os.Open it refuses directories: the
// File interface is for file data, and List covers directories.
func (m *MemFS) Open(name string) (File, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, err := m.walkLocked("open", name, splitPath(name))
	if err != nil {
		return nil, err
	}
	if n.isDir {
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EISDIR}
	}
	return m.newHandleLocked(n, name, true), nil
}

// openFile opens name read-write, creating it if missing and truncating it
// if asked. Truncating an existing file keeps its inode (O_TRUNC), so the
// truncation is an unsynced operation like any other.
func (m *MemFS) openFile(op, name string, create, truncate bool) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.parentLocked(op, name)
	if err != nil {
		return nil, err
	}
	n, ok := dir.children[base]
	switch {
	case ok && n.isDir:
		return nil, &fs.PathError{Op: op, Path: name, Err: syscall.EISDIR}
	case ok && truncate:
		n.truncateLocked(0)
	case !ok && create:
		n = &memNode{}
		dir.children[base] = n
	case !ok:
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return m.newHandleLocked(n, name, false), nil
}

func (m *MemFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.parentLocked("remove", name)
	if err != nil {
		return err
	}
	n, ok := dir.children[base]
	if !ok {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	if n.isDir && len(n.children) > 0 {
		return &fs.PathError{Op: "remove", Path: name, Err: syscall.ENOTEMPTY}
	}
	// Only the name goes; open handles keep the node (unlink semantics),
	// and the parent's synced entries keep it until the parent is synced.
	delete(dir.children, base)
	return nil
}

// RemoveAll drops the name and with it the whole subtree. The subtree's
// nodes stay reachable from synced entries until those are synced, so a
// crash before the SyncDir brings them back.
func (m *MemFS) RemoveAll(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.parentLocked("removeall", name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	delete(dir.children, base)
	return nil
}

func (m *MemFS) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	linkErr := func(err error) error {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	oldDir, oldBase, err := m.parentLocked("rename", oldname)
	if err != nil {
		return linkErr(errors.Unwrap(err))
	}
	newDir, newBase, err := m.parentLocked("rename", newname)
	if err != nil {
		return linkErr(errors.Unwrap(err))
	}
	n, ok := oldDir.children[oldBase]
	if !ok {
		return linkErr(fs.ErrNotExist)
	}
	if oldDir == newDir && oldBase == newBase {
		return nil
	}
	if err := m.checkRenameTargetLocked(n, newDir, newBase, newname); err != nil {
		return linkErr(err)
	}
	delete(oldDir.children, oldBase)
	newDir.children[newBase] = n
	return nil
}

// checkRenameTargetLocked applies rename(2)'s rules for what may be
// replaced: a file by a file, an empty directory by a directory, and never a
// directory into its own subtree.
func (m *MemFS) checkRenameTargetLocked(n, newDir *memNode, newBase, newname string) error {
	if target, ok := newDir.children[newBase]; ok {
		switch {
		case target.isDir && !n.isDir:
			return syscall.EISDIR
		case !target.isDir && n.isDir:
			return syscall.ENOTDIR
		case target.isDir && len(target.children) > 0:
			return syscall.ENOTEMPTY
		}
	}
	if !n.isDir {
		return nil
	}
	cur := m.root
	for _, part := range splitPath(newname) {
		if cur == n {
			return syscall.EINVAL
		}
		cur = cur.children[part]
		if cur == nil {
			break
		}
	}
	return nil
}

// MkdirAll creates missing directories. The permission bits are ignored:
// MemFS does not model access control.
func (m *MemFS) MkdirAll(dir string, _ os.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.root
	for _, part := range splitPath(dir) {
		child, ok := cur.children[part]
		if !ok {
			child = newDirNode()
			cur.children[part] = child
			if !m.strictMkdir {
				cur.syncedChildren[part] = child
			}
		} else if !child.isDir {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		cur = child
	}
	return nil
}

func (m *MemFS) List(dir string) ([]string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, err := m.walkLocked("open", dir, splitPath(dir))
	if err != nil {
		return nil, err
	}
	if !n.isDir {
		return nil, &fs.PathError{Op: "readdirent", Path: dir, Err: syscall.ENOTDIR}
	}
	return slices.Sorted(maps.Keys(n.children)), nil
}

func (m *MemFS) Stat(name string) (os.FileInfo, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	parts := splitPath(name)
	n, err := m.walkLocked("stat", name, parts)
	if err != nil {
		return nil, err
	}
	base := "/"
	if len(parts) > 0 {
		base = parts[len(parts)-1]
	}
	return memFileInfo{name: base, size: int64(len(n.data)), isDir: n.isDir}, nil
}

// SyncDir makes the directory's current entries its durable ones. It does
// not sync the children's data, nor subdirectories' entries.
func (m *MemFS) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.walkLocked("sync", dir, splitPath(dir))
	if err != nil {
		return err
	}
	if !n.isDir {
		return &fs.PathError{Op: "sync", Path: dir, Err: syscall.ENOTDIR}
	}
	n.syncedChildren = maps.Clone(n.children)
	return nil
}

// writeLocked applies a write now and records it for a later Sync or Crash.
func (n *memNode) writeLocked(off int64, p []byte) {
	if len(p) == 0 {
		return
	}
	op := memOp{off: off, data: slices.Clone(p)}
	n.pending = append(n.pending, op)
	n.data = applyOp(n.data, op)
}

func (n *memNode) truncateLocked(size int64) {
	op := memOp{truncate: true, off: size}
	n.pending = append(n.pending, op)
	n.data = applyOp(n.data, op)
}

// syncLocked folds the pending operations into the synced bytes. Replaying
// them (rather than copying data) keeps the cost of a Sync proportional to
// what was written since the last one.
func (n *memNode) syncLocked() {
	for _, op := range n.pending {
		n.synced = applyOp(n.synced, op)
	}
	n.pending = nil
}

// applyOp applies one operation to b and returns the result, which may share
// b's array.
func applyOp(b []byte, op memOp) []byte {
	if op.truncate {
		return resize(b, op.off)
	}
	if len(op.data) == 0 {
		return b // a write torn to nothing happened not at all
	}
	if end := op.off + int64(len(op.data)); end > int64(len(b)) {
		b = resize(b, end)
	}
	copy(b[op.off:], op.data)
	return b
}

// resize sets len(b) to size. Bytes a shrink cut off may still sit in the
// array, so growth zeroes what it exposes: a file extended by truncate or by
// a write past its end reads zeros in the gap.
func resize(b []byte, size int64) []byte {
	old := int64(len(b))
	if size <= old {
		return b[:size]
	}
	b = slices.Grow(b, int(size-old))[:size]
	clear(b[old:])
	return b
}

// memFileInfo is what Stat returns. MemFS keeps no times, so ModTime is the
// zero time.
type memFileInfo struct {
	name  string
	size  int64
	isDir bool
}

func (i memFileInfo) Name() string       { return i.name }
func (i memFileInfo) Size() int64        { return i.size }
func (i memFileInfo) IsDir() bool        { return i.isDir }
func (i memFileInfo) ModTime() time.Time { return time.Time{} }
func (i memFileInfo) Sys() any           { return nil }

func (i memFileInfo) Mode() fs.FileMode {
	if i.isDir {
		return fs.ModeDir | dirPerm
	}
	return filePerm
}

// memFile is an open handle on a memNode.
type memFile struct {
	fs       *MemFS
	node     *memNode
	name     string
	epoch    uint64
	readOnly bool
	closed   bool // guarded by fs.mu
}

func (m *MemFS) newHandleLocked(n *memNode, name string, readOnly bool) *memFile {
	return &memFile{fs: m, node: n, name: name, epoch: m.epoch, readOnly: readOnly}
}

// checkLocked reports why the handle cannot be used, if it cannot.
func (f *memFile) checkLocked(op string, write bool) error {
	switch {
	case f.closed:
		return &fs.PathError{Op: op, Path: f.name, Err: os.ErrClosed}
	case f.epoch != f.fs.epoch:
		return &fs.PathError{Op: op, Path: f.name, Err: ErrStaleHandle}
	case write && f.readOnly:
		return &fs.PathError{Op: op, Path: f.name, Err: syscall.EBADF}
	}
	return nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.RLock()
	defer f.fs.mu.RUnlock()
	if err := f.checkLocked("read", false); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: syscall.EINVAL}
	}
	data := f.node.data
	if off >= int64(len(data)) {
		return 0, io.EOF
	}
	n := copy(p, data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("write", true); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: syscall.EINVAL}
	}
	f.node.writeLocked(off, p)
	return len(p), nil
}

// WritevAt records the buffers as one write, so a crash can tear it across
// buffer boundaries, as it can tear one pwritev.
func (f *memFile) WritevAt(bufs [][]byte, off int64) (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("pwritev", true); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "pwritev", Path: f.name, Err: syscall.EINVAL}
	}
	joined := slices.Concat(bufs...)
	f.node.writeLocked(off, joined)
	return int64(len(joined)), nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("sync", false); err != nil {
		return err
	}
	f.node.syncLocked()
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("truncate", true); err != nil {
		return err
	}
	if size < 0 {
		return &fs.PathError{Op: "truncate", Path: f.name, Err: syscall.EINVAL}
	}
	f.node.truncateLocked(size)
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.fs.mu.RLock()
	defer f.fs.mu.RUnlock()
	if err := f.checkLocked("stat", false); err != nil {
		return 0, err
	}
	return int64(len(f.node.data)), nil
}

func (f *memFile) Name() string { return f.name }

// Close succeeds on a handle from before a crash: closing is how a test
// drops the old process's handles, and it must not fail there.
func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.name, Err: os.ErrClosed}
	}
	f.closed = true
	return nil
}

// OpenFileSystemSyncer opens a syncer of the whole MemFS: it models one
// file system, so SyncFS makes every file's data durable, whatever
// directory the syncer was opened on. Like a file handle, the syncer stops
// working after a Crash.
func (m *MemFS) OpenFileSystemSyncer(dir string) (FileSystemSyncer, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, err := m.walkLocked("open", dir, splitPath(dir))
	if err != nil {
		return nil, err
	}
	if !n.isDir {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: syscall.ENOTDIR}
	}
	return &memSyncer{fs: m, dir: dir, epoch: m.epoch}, nil
}

type memSyncer struct {
	fs     *MemFS
	dir    string
	epoch  uint64
	closed bool // guarded by fs.mu
}

// SyncFS syncs every file of the tree, reached through current and synced
// directory entries alike: a file whose removal is not yet durable comes
// back in a crash, and syncfs(2) wrote its data too. Directory entries stay
// as they are: syncfs is not a SyncDir (on ext4 a journal commit happens to
// cover them, but nothing promises it), so a test cannot come to rely on it.
func (s *memSyncer) SyncFS() error {
	s.fs.mu.Lock()
	defer s.fs.mu.Unlock()
	switch {
	case s.closed:
		return &fs.PathError{Op: "syncfs", Path: s.dir, Err: os.ErrClosed}
	case s.epoch != s.fs.epoch:
		return &fs.PathError{Op: "syncfs", Path: s.dir, Err: ErrStaleHandle}
	}
	seen := map[*memNode]bool{}
	var walk func(n *memNode)
	walk = func(n *memNode) {
		if seen[n] {
			return
		}
		seen[n] = true
		if !n.isDir {
			n.syncLocked()
			return
		}
		for _, child := range n.children {
			walk(child)
		}
		for _, child := range n.syncedChildren {
			walk(child)
		}
	}
	walk(s.fs.root)
	return nil
}

func (s *memSyncer) Close() error {
	s.fs.mu.Lock()
	defer s.fs.mu.Unlock()
	if s.closed {
		return &fs.PathError{Op: "close", Path: s.dir, Err: os.ErrClosed}
	}
	s.closed = true
	return nil
}
