//go:build linux

package wire

import (
	"errors"
	"io"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// sendfileSupported: Linux sends file bytes to a socket with sendfile(2).
const sendfileSupported = true

// maxSendfileChunk bounds one sendfile(2) call; Linux moves at most
// 0x7ffff000 bytes per call anyway.
const maxSendfileChunk = 1 << 30

// sendFile sends size bytes of file from position to conn with
// sendfile(2). The offset is passed explicitly, so the file's own offset is
// untouched and concurrent readers of the same segment do not interfere.
// Waiting for the socket to drain goes through the runtime poller (and the
// connection's write deadline) via RawConn.Write.
func sendFile(conn *net.TCPConn, file *os.File, position, size int64) (int64, error) {
	dst, err := conn.SyscallConn()
	if err != nil {
		return 0, err
	}
	src, err := file.SyscallConn()
	if err != nil {
		return 0, err
	}
	var written int64
	var sendErr error
	// Control keeps the file descriptor open for the duration.
	ctrlErr := src.Control(func(srcFd uintptr) {
		offset := position
		writeErr := dst.Write(func(dstFd uintptr) bool {
			for written < size {
				n, err := unix.Sendfile(int(dstFd), int(srcFd), &offset, int(min(size-written, maxSendfileChunk)))
				if n > 0 {
					written += int64(n)
				}
				switch {
				case errors.Is(err, unix.EAGAIN):
					return false // the poller waits until the socket is writable
				case errors.Is(err, unix.EINTR):
					// A signal interrupted the call; the offset says where
					// to go on, so it is simply retried.
				case err != nil:
					sendErr = os.NewSyscallError("sendfile", err)
					return true
				case n == 0:
					// Zero bytes with no error is end of file: the slice
					// promised bytes the file no longer has (truncated under
					// the reader). Looping would spin forever.
					sendErr = io.ErrUnexpectedEOF // the segment shrank under the reader
					return true
				}
			}
			return true
		})
		if sendErr == nil {
			sendErr = writeErr
		}
	})
	if sendErr == nil {
		sendErr = ctrlErr
	}
	return written, sendErr
}

// setCork sets TCP_CORK: while corked the kernel sends only full segments,
// so the small head pieces between sendfile calls do not each become a
// packet (Go sets TCP_NODELAY on every connection).
func setCork(conn *net.TCPConn, on bool) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	value := 0
	if on {
		value = 1
	}
	var sockErr error
	if err := raw.Control(func(fd uintptr) {
		sockErr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, value)
	}); err != nil {
		return err
	}
	return os.NewSyscallError("setsockopt TCP_CORK", sockErr)
}
