//go:build !linux

package wire

import (
	"errors"
	"net"
	"os"
)

// sendfileSupported: elsewhere Fetch responses take the copy path.
const sendfileSupported = false

var errNoSendfile = errors.New("sendfile is only used on Linux")

func sendFile(*net.TCPConn, *os.File, int64, int64) (int64, error) { return 0, errNoSendfile }

func setCork(*net.TCPConn, bool) error { return errNoSendfile }
