//go:build linux

package vfs

import (
	"errors"
	"io"
	"math/bits"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sysCalls lets the write and sync paths run without allocating: a closure
// handed to RawConn per call would escape to the heap, and unix.Pwritev
// builds a fresh iovec slice each time. So the callbacks are bound once at
// open, their arguments and results pass through these fields, and the
// iovec array is reused. mu serialises the calls that share the fields.
type sysCalls struct {
	mu        sync.Mutex
	iovecs    []unix.Iovec
	chunk     [][]byte
	off       int64
	n         int
	err       error
	pwritevFn func(fd uintptr) bool
	syncFn    func(fd uintptr)
	step      func(chunk [][]byte, off int64) (int64, error)
	writeAt   func(b []byte, off int64) (int, error)
}

func (f *osFile) initSysCalls() {
	f.sys.pwritevFn = f.rawPwritev
	f.sys.syncFn = f.rawFdatasync
	f.sys.step = f.pwritev
	f.sys.writeAt = f.file.WriteAt
}

// iovMax is Linux's IOV_MAX: pwritev refuses more buffers than this in one
// call, so longer lists are written in chunks.
const iovMax = 1024

// writevAt writes bufs with pwritev, chunked to iovMax buffers.
func (f *osFile) writevAt(bufs [][]byte, off int64) (int64, error) {
	if f.raw == nil {
		return f.writeAtLoop(bufs, off)
	}
	f.sys.mu.Lock()
	defer f.sys.mu.Unlock()
	written, err := writevChunked(bufs, off, f.sys.step, f.sys.writeAt)
	if err != nil {
		return written, &os.PathError{Op: "pwritev", Path: f.Name(), Err: err}
	}
	return written, nil
}

// writevChunked drives pwritev over any number of buffers. A short write
// (the kernel caps one call at about 2 GiB, and a full disk stops early)
// finishes the partly written buffer with writeAt and goes on with the next
// chunk, so the caller gets "all bytes or an error". The system calls are
// parameters so a test can force short writes.
func writevChunked(bufs [][]byte, off int64,
	pwritev func(chunk [][]byte, off int64) (int64, error),
	writeAt func(b []byte, off int64) (int, error),
) (int64, error) {
	var written int64
	for len(bufs) > 0 {
		chunk := bufs[:min(len(bufs), iovMax)]
		n, err := pwritev(chunk, off+written)
		written += n
		if err != nil {
			return written, err
		}
		if n == 0 && totalLen(chunk) > 0 {
			return written, io.ErrShortWrite // no progress and no error: never spin
		}
		// Drop the buffers the kernel fully consumed (empty ones included).
		for len(bufs) > 0 && int64(len(bufs[0])) <= n {
			n -= int64(len(bufs[0]))
			bufs = bufs[1:]
		}
		if n > 0 {
			// The kernel stopped inside bufs[0]; writeAt loops on short
			// writes, so it either finishes the buffer or fails.
			m, err := writeAt(bufs[0][n:], off+written)
			written += int64(m)
			if err != nil {
				return written, err
			}
			bufs = bufs[1:]
		}
	}
	return written, nil
}

// pwritev makes one pwritev call on the descriptor; f.sys.mu is held.
func (f *osFile) pwritev(chunk [][]byte, off int64) (int64, error) {
	f.sys.chunk, f.sys.off = chunk, off
	err := f.raw.Write(f.sys.pwritevFn)
	f.sys.chunk = nil
	if err != nil {
		return 0, err // the file was closed
	}
	return int64(f.sys.n), f.sys.err
}

// rawPwritev runs inside RawConn.Write with the descriptor kept open.
func (f *osFile) rawPwritev(fd uintptr) bool {
	s := &f.sys
	s.iovecs = s.iovecs[:0]
	for _, b := range s.chunk {
		if len(b) > 0 {
			iov := unix.Iovec{Base: &b[0]}
			iov.SetLen(len(b))
			s.iovecs = append(s.iovecs, iov)
		}
	}
	s.n, s.err = 0, nil
	if len(s.iovecs) == 0 {
		return true
	}
	// pwritev takes the offset as two words (low, high), like x/sys does it.
	lo, hi := uintptr(s.off), uintptr(uint64(s.off)>>(bits.UintSize-1)>>1)
	for {
		r, _, errno := unix.Syscall6(unix.SYS_PWRITEV, fd, uintptr(unsafe.Pointer(&s.iovecs[0])), uintptr(len(s.iovecs)), lo, hi, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			s.err = errno
		} else {
			s.n = int(r)
		}
		clear(s.iovecs) // drop references to the caller's buffers
		return true
	}
}

// datasync uses fdatasync: the log needs data and size durable, not the
// mtime, and skipping the inode timestamps saves a journal write.
func (f *osFile) datasync() error {
	if f.raw == nil {
		return f.file.Sync()
	}
	f.sys.mu.Lock()
	defer f.sys.mu.Unlock()
	err := f.raw.Control(f.sys.syncFn)
	if err == nil {
		err = f.sys.err
	}
	if err != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
	}
	return nil
}

func (f *osFile) rawFdatasync(fd uintptr) {
	for {
		err := unix.Fdatasync(int(fd))
		if !errors.Is(err, unix.EINTR) {
			f.sys.err = err
			return
		}
	}
}

func totalLen(bufs [][]byte) int64 {
	var n int64
	for _, b := range bufs {
		n += int64(len(b))
	}
	return n
}

// startWriteback calls sync_file_range(2) with SYNC_FILE_RANGE_WRITE
// alone: it queues the range's dirty pages for write-back and returns
// without waiting for them (the WAIT flags would wait, and would also
// advance the descriptor's write-back error cursor, so a later fdatasync
// could miss an error this call saw). Write-back it starts is the same as
// the kernel's own background write-back: a failure is recorded on the
// file, where the next fdatasync or syncfs reports it.
//
// Not under sys.mu: the call may block while the device's queue is full,
// and the writer's pwritev and the syncer's fdatasync must not wait
// behind a hint. The closure allocates; hints are batched, and never on
// an acknowledgement's path.
func (f *osFile) startWriteback(off, n int64) error {
	if f.raw == nil {
		return nil
	}
	var callErr error
	err := f.raw.Control(func(fd uintptr) {
		for {
			callErr = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
			if !errors.Is(callErr, unix.EINTR) {
				return
			}
		}
	})
	if err == nil {
		err = callErr
	}
	if err != nil {
		return &os.PathError{Op: "sync_file_range", Path: f.Name(), Err: err}
	}
	return nil
}
