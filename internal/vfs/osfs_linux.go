//go:build linux

package vfs

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// iovMax is Linux's IOV_MAX: pwritev refuses more buffers than this in one
// call, so longer lists are written in chunks.
const iovMax = 1024

// writevAt writes bufs with pwritev, chunked to iovMax buffers.
func (f *osFile) writevAt(bufs [][]byte, off int64) (int64, error) {
	if f.raw == nil {
		return f.writeAtLoop(bufs, off)
	}
	written, err := writevChunked(bufs, off, f.pwritev, f.file.WriteAt)
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

// pwritev makes one pwritev call on the descriptor, retrying EINTR.
func (f *osFile) pwritev(chunk [][]byte, off int64) (int64, error) {
	var n int
	var opErr error
	err := f.raw.Write(func(fd uintptr) bool {
		for {
			n, opErr = unix.Pwritev(int(fd), chunk, off)
			if !errors.Is(opErr, unix.EINTR) {
				return true
			}
		}
	})
	if err != nil {
		return 0, err // the file was closed
	}
	return int64(max(n, 0)), opErr
}

// datasync uses fdatasync: the log needs data and size durable, not the
// mtime, and skipping the inode timestamps saves a journal write.
func (f *osFile) datasync() error {
	if f.raw == nil {
		return f.file.Sync()
	}
	var opErr error
	err := f.raw.Control(func(fd uintptr) {
		for {
			opErr = unix.Fdatasync(int(fd))
			if !errors.Is(opErr, unix.EINTR) {
				return
			}
		}
	})
	if err == nil {
		err = opErr
	}
	if err != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
	}
	return nil
}

func totalLen(bufs [][]byte) int64 {
	var n int64
	for _, b := range bufs {
		n += int64(len(b))
	}
	return n
}
