// Package wire reads and writes Kafka's framing: request and response
// headers, the bounded pre-decoding check that keeps a crafted request from
// allocating more than its size, and the hand-framed Fetch response that
// sends segment bytes straight from the file.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrMalformed: the bytes are not a valid request of the version they claim
// (the connection is closed, as Kafka does for an unparseable request).
var ErrMalformed = errors.New("malformed request")

// apiVersionsKey's responses always use header v0, even when flexible: a
// client cannot know the broker's header versions before ApiVersions.
const apiVersionsKey = 18

// RequestHeader is a request header v1 or v2.
type RequestHeader struct {
	APIKey        int16
	APIVersion    int16
	CorrelationID int32
	ClientID      *string
}

// PeekHeader reads the key, version and correlation id, which every header
// version starts with, so an unsupported version can still be answered.
func PeekHeader(frame []byte) (RequestHeader, error) {
	// Key (2 bytes), version (2) and correlation id (4) have the same
	// layout in every header version; what follows depends on the version,
	// which is only known to be served after this peek.
	if len(frame) < 8 {
		return RequestHeader{}, fmt.Errorf("%w: %d-byte frame is shorter than a request header", ErrMalformed, len(frame))
	}
	return RequestHeader{
		APIKey:        int16(binary.BigEndian.Uint16(frame)),
		APIVersion:    int16(binary.BigEndian.Uint16(frame[2:])),
		CorrelationID: int32(binary.BigEndian.Uint32(frame[4:])),
	}, nil
}

// ParseRequestHeader reads the whole header (v2 when flexible: the client
// id then tagged fields, which are skipped) and returns the body after it.
func ParseRequestHeader(frame []byte, flexible bool) (RequestHeader, []byte, error) {
	h, err := PeekHeader(frame)
	if err != nil {
		return h, nil, err
	}
	rest := frame[8:]
	if len(rest) < 2 {
		return h, nil, fmt.Errorf("%w: header ends before the client id", ErrMalformed)
	}
	// The client id is a classic int16-length string even in the flexible
	// header v2: Kafka kept it so that any broker can read who is asking
	// before knowing the version. Only the tag section is new in v2.
	n := int16(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if n >= 0 {
		if int(n) > len(rest) {
			return h, nil, fmt.Errorf("%w: client id of %d bytes overruns the frame", ErrMalformed, n)
		}
		id := string(rest[:n])
		h.ClientID, rest = &id, rest[n:]
	}
	if flexible {
		if rest, err = skipTags(rest); err != nil {
			return h, nil, err
		}
	}
	return h, rest, nil
}

// skipTags skips a tagged-field section: a count, then tag, size, bytes.
func skipTags(b []byte) ([]byte, error) {
	// Every tagged field takes at least a byte, so a count above the bytes
	// left is forged; refusing it first bounds the loop by the frame.
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return nil, fmt.Errorf("%w: bad tagged field count", ErrMalformed)
	}
	b = b[n:]
	for range count {
		if _, n = binary.Uvarint(b); n <= 0 {
			return nil, fmt.Errorf("%w: bad tag", ErrMalformed)
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return nil, fmt.Errorf("%w: tagged field overruns the frame", ErrMalformed)
		}
		b = b[n+int(size):]
	}
	return b, nil
}

// IsFlexible says whether key at version uses flexible (compact, tagged)
// encoding, which also selects request header v2 and response header v1.
//
// It asks kmsg instead of keeping a table: the flexible versions are part
// of the message definitions kmsg is generated from, so the two cannot
// drift apart.
func IsFlexible(key, version int16) bool {
	req := kmsg.RequestForKey(key)
	if req == nil {
		return false
	}
	req.SetVersion(version)
	return req.IsFlexible()
}

// AppendResponse appends a complete response frame: size, correlation id,
// the header's tag section when the response header is v1, then the body.
func AppendResponse(dst []byte, key, version int16, correlationID int32, body kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	if key != apiVersionsKey && body.IsFlexible() {
		dst = append(dst, 0) // no tagged fields
	}
	dst = body.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// Response is a complete response frame ready to write. The network server
// writes it to the connection, then releases it.
type Response interface {
	WriteTo(w io.Writer) (int64, error)
	Release()
}

// Frame is a Response held in memory.
type Frame []byte

// WriteTo writes the frame.
func (f Frame) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(f)
	return int64(n), err
}

// Release does nothing: the frame is garbage once written.
func (Frame) Release() {}

// Size is the frame's length, which the network server uses to give a
// large response time to be read.
func (f Frame) Size() int64 { return int64(len(f)) }
