package vfs

import (
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"
)

// Injected errors. Both wrap the errno a real disk would return, so code
// under test can tell them apart with errors.Is(err, syscall.ENOSPC) exactly
// as it would in production.
var (
	ErrInjected = fmt.Errorf("vfs: injected I/O error: %w", syscall.EIO)
	ErrDiskFull = fmt.Errorf("vfs: injected disk full: %w", syscall.ENOSPC)
)

// Op names a kind of file-system operation, for ErrorFS rules and counts.
type Op int

const (
	OpAny      Op = iota // matches every operation in a Rule
	OpCreate             // FS.Create
	OpOpen               // FS.Open, FS.OpenReadWrite
	OpWrite              // File.WriteAt, File.WritevAt
	OpSync               // File.Sync
	OpSyncDir            // FS.SyncDir
	OpTruncate           // File.Truncate
	OpRemove             // FS.Remove, FS.RemoveAll
	OpRename             // FS.Rename (matched against both names)
	OpRead               // File.ReadAt
	OpMkdir              // FS.MkdirAll
	OpList               // FS.List
	OpStat               // FS.Stat, File.Size
	OpSyncFS             // FileSystemSyncer.SyncFS (the path is the directory it was opened on)
	numOps
)

var opNames = [numOps]string{
	"any", "create", "open", "write", "sync", "syncdir", "truncate",
	"remove", "rename", "read", "mkdir", "list", "stat", "syncfs",
}

func (o Op) String() string {
	if o < 0 || o >= numOps {
		return fmt.Sprintf("Op(%d)", int(o))
	}
	return opNames[o]
}

// Rule says which operations fail and how. The zero Rule fails the next
// operation of any kind once, with ErrInjected.
type Rule struct {
	Op Op // OpAny matches every operation
	// PathContains, if set, must be a substring of the path (for a File,
	// the name it was opened with).
	PathContains string
	// Match, if set, must also accept the path (e.g. a filepath.Match glob).
	Match func(path string) bool
	// After lets this many matching operations succeed before failing.
	After int
	// Count is how many matching operations fail after that: -1 means
	// every one from then on; 0 is taken as 1.
	Count int
	// Err is the error to return, normally ErrInjected or ErrDiskFull;
	// nil means ErrInjected.
	Err error
	// PartialBytes makes a failing write first write this many bytes (at
	// most the whole buffer), as a disk that fills up mid-write does.
	// Zero or negative writes nothing.
	PartialBytes int
}

// ErrorFS wraps an FS and fails the operations its rules select. It is
// for tests: storage code is run against it to prove a failed write, sync
// or full disk is reported, never acknowledged.
//
// Rules are checked in the order injected. Every rule counts each operation
// it matches; the first rule whose turn has come fails the operation.
type ErrorFS struct {
	inner FS

	mu       sync.Mutex
	rules    []*ruleState
	counts   [numOps]int
	injected int
}

type ruleState struct {
	Rule
	seen  int // matching operations so far
	fired int // of which this rule failed
}

var _ FS = (*ErrorFS)(nil)

// NewErrorFS wraps inner; with no rules it changes nothing.
func NewErrorFS(inner FS) *ErrorFS {
	return &ErrorFS{inner: inner}
}

// Inject adds a rule.
func (e *ErrorFS) Inject(r Rule) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rules = append(e.rules, &ruleState{Rule: r})
}

// Clear removes every rule; counts are kept.
func (e *ErrorFS) Clear() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rules = nil
}

// Count returns how many operations of kind op were attempted, failed or
// not; Count(OpAny) is the total. A test can run a workload once, read the
// count, then fail each of those operations in turn.
func (e *ErrorFS) Count(op Op) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if op == OpAny {
		total := 0
		for _, c := range e.counts {
			total += c
		}
		return total
	}
	return e.counts[op]
}

// Injected returns how many operations the rules have failed, so a test can
// assert that its fault was actually hit.
func (e *ErrorFS) Injected() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.injected
}

func (r *ruleState) matches(op Op, paths []string) bool {
	if r.Op != OpAny && r.Op != op {
		return false
	}
	for _, p := range paths {
		if strings.Contains(p, r.PathContains) && (r.Match == nil || r.Match(p)) {
			return true
		}
	}
	return false
}

// due reports whether the rule fails the operation it just counted.
func (r *ruleState) due() bool {
	limit := r.Count
	if limit == 0 {
		limit = 1
	}
	return r.seen > r.After && (limit < 0 || r.fired < limit)
}

// check counts the operation and returns the error to inject, if any, with
// the number of bytes a failing write should still write first.
func (e *ErrorFS) check(op Op, paths ...string) (partialBytes int, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.counts[op]++
	var hit *ruleState
	for _, r := range e.rules {
		if !r.matches(op, paths) {
			continue
		}
		r.seen++
		if hit == nil && r.due() {
			r.fired++
			hit = r
		}
	}
	if hit == nil {
		return 0, nil
	}
	e.injected++
	if hit.Err == nil {
		return hit.PartialBytes, ErrInjected
	}
	return hit.PartialBytes, hit.Err
}

func pathErr(op Op, path string, err error) error {
	return &fs.PathError{Op: op.String(), Path: path, Err: err}
}

func (e *ErrorFS) Create(name string) (File, error) {
	if _, err := e.check(OpCreate, name); err != nil {
		return nil, pathErr(OpCreate, name, err)
	}
	return e.wrap(e.inner.Create(name))
}

func (e *ErrorFS) Open(name string) (File, error) {
	if _, err := e.check(OpOpen, name); err != nil {
		return nil, pathErr(OpOpen, name, err)
	}
	return e.wrap(e.inner.Open(name))
}

func (e *ErrorFS) OpenReadWrite(name string) (File, error) {
	if _, err := e.check(OpOpen, name); err != nil {
		return nil, pathErr(OpOpen, name, err)
	}
	return e.wrap(e.inner.OpenReadWrite(name))
}

func (e *ErrorFS) wrap(f File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return &errorFile{fs: e, inner: f}, nil
}

func (e *ErrorFS) Remove(name string) error {
	if _, err := e.check(OpRemove, name); err != nil {
		return pathErr(OpRemove, name, err)
	}
	return e.inner.Remove(name)
}

func (e *ErrorFS) RemoveAll(name string) error {
	if _, err := e.check(OpRemove, name); err != nil {
		return pathErr(OpRemove, name, err)
	}
	return e.inner.RemoveAll(name)
}

func (e *ErrorFS) Rename(oldname, newname string) error {
	if _, err := e.check(OpRename, oldname, newname); err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	return e.inner.Rename(oldname, newname)
}

func (e *ErrorFS) MkdirAll(dir string, perm os.FileMode) error {
	if _, err := e.check(OpMkdir, dir); err != nil {
		return pathErr(OpMkdir, dir, err)
	}
	return e.inner.MkdirAll(dir, perm)
}

func (e *ErrorFS) List(dir string) ([]string, error) {
	if _, err := e.check(OpList, dir); err != nil {
		return nil, pathErr(OpList, dir, err)
	}
	return e.inner.List(dir)
}

func (e *ErrorFS) Stat(name string) (os.FileInfo, error) {
	if _, err := e.check(OpStat, name); err != nil {
		return nil, pathErr(OpStat, name, err)
	}
	return e.inner.Stat(name)
}

func (e *ErrorFS) SyncDir(dir string) error {
	if _, err := e.check(OpSyncDir, dir); err != nil {
		return pathErr(OpSyncDir, dir, err)
	}
	return e.inner.SyncDir(dir)
}

// OpenFileSystemSyncer counts as an OpOpen of dir; each SyncFS of the
// handle is an OpSyncFS of dir, so a rule can fail it.
func (e *ErrorFS) OpenFileSystemSyncer(dir string) (FileSystemSyncer, error) {
	if _, err := e.check(OpOpen, dir); err != nil {
		return nil, pathErr(OpOpen, dir, err)
	}
	inner, err := e.inner.OpenFileSystemSyncer(dir)
	if err != nil {
		return nil, err
	}
	return &errorSyncer{fs: e, inner: inner, dir: dir}, nil
}

type errorSyncer struct {
	fs    *ErrorFS
	inner FileSystemSyncer
	dir   string
}

func (s *errorSyncer) SyncFS() error {
	if _, err := s.fs.check(OpSyncFS, s.dir); err != nil {
		return pathErr(OpSyncFS, s.dir, err)
	}
	return s.inner.SyncFS()
}

func (s *errorSyncer) Close() error { return s.inner.Close() }

// errorFile wraps a File from the inner FS. It deliberately does not expose
// OSFile: a sendfile through the raw descriptor would bypass injection.
type errorFile struct {
	fs    *ErrorFS
	inner File
}

func (f *errorFile) Name() string { return f.inner.Name() }
func (f *errorFile) Close() error { return f.inner.Close() }

func (f *errorFile) ReadAt(p []byte, off int64) (int, error) {
	if _, err := f.fs.check(OpRead, f.Name()); err != nil {
		return 0, pathErr(OpRead, f.Name(), err)
	}
	return f.inner.ReadAt(p, off)
}

// WriteAt on a failing rule writes the rule's PartialBytes first, then
// reports the injected error with the count of bytes that did land.
func (f *errorFile) WriteAt(p []byte, off int64) (int, error) {
	partial, err := f.fs.check(OpWrite, f.Name())
	if err == nil {
		return f.inner.WriteAt(p, off)
	}
	n := 0
	if k := min(max(partial, 0), len(p)); k > 0 {
		var werr error
		if n, werr = f.inner.WriteAt(p[:k], off); werr != nil {
			return n, werr
		}
	}
	return n, pathErr(OpWrite, f.Name(), err)
}

func (f *errorFile) WritevAt(bufs [][]byte, off int64) (int64, error) {
	partial, err := f.fs.check(OpWrite, f.Name())
	if err == nil {
		return f.inner.WritevAt(bufs, off)
	}
	var n int64
	if prefix := prefixBuffers(bufs, max(partial, 0)); len(prefix) > 0 {
		var werr error
		if n, werr = f.inner.WritevAt(prefix, off); werr != nil {
			return n, werr
		}
	}
	return n, pathErr(OpWrite, f.Name(), err)
}

// prefixBuffers returns the first k bytes of bufs as buffers, without
// copying the bytes.
func prefixBuffers(bufs [][]byte, k int) [][]byte {
	var out [][]byte
	for _, b := range bufs {
		if k <= 0 {
			break
		}
		b = b[:min(len(b), k)]
		k -= len(b)
		out = append(out, b)
	}
	return out
}

func (f *errorFile) Sync() error {
	if _, err := f.fs.check(OpSync, f.Name()); err != nil {
		return pathErr(OpSync, f.Name(), err)
	}
	return f.inner.Sync()
}

func (f *errorFile) Truncate(size int64) error {
	if _, err := f.fs.check(OpTruncate, f.Name()); err != nil {
		return pathErr(OpTruncate, f.Name(), err)
	}
	return f.inner.Truncate(size)
}

func (f *errorFile) Size() (int64, error) {
	if _, err := f.fs.check(OpStat, f.Name()); err != nil {
		return 0, pathErr(OpStat, f.Name(), err)
	}
	return f.inner.Size()
}
