package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// requestFrame is a request header (v1, or v2 when tags is not nil) then
// body, without the size prefix (as the network server hands frames on).
func requestFrame(key, version int16, correlationID int32, clientID *string, tags []byte, body []byte) []byte {
	b := enc{}.i16(key).i16(version).i32(correlationID)
	if clientID == nil {
		b = b.i16(-1)
	} else {
		b = b.str(*clientID)
	}
	if tags != nil {
		b = append(b, tags...)
	}
	return append(b, body...)
}

func ptr(s string) *string { return &s }

func TestHeaderPeek(t *testing.T) {
	frame := requestFrame(3, 12, -7, ptr("c"), nil, nil)
	h, err := PeekHeader(frame)
	if err != nil {
		t.Fatal(err)
	}
	if h.APIKey != 3 || h.APIVersion != 12 || h.CorrelationID != -7 || h.ClientID != nil {
		t.Errorf("got %+v", h)
	}
	// Only the first eight bytes are needed, so an unsupported version
	// can be answered even if the rest is not understood.
	if _, err := PeekHeader(frame[:8]); err != nil {
		t.Errorf("8-byte frame: %v", err)
	}
	for n := range 8 {
		if _, err := PeekHeader(frame[:n]); !errors.Is(err, ErrMalformed) {
			t.Errorf("%d-byte frame: got %v, want ErrMalformed", n, err)
		}
	}
}

func TestHeaderParseV1(t *testing.T) {
	body := []byte{1, 2, 3}
	h, rest, err := ParseRequestHeader(requestFrame(0, 7, 42, ptr("producer-1"), nil, body), false)
	if err != nil {
		t.Fatal(err)
	}
	if h.APIKey != 0 || h.APIVersion != 7 || h.CorrelationID != 42 || h.ClientID == nil || *h.ClientID != "producer-1" {
		t.Errorf("got %+v", h)
	}
	if !bytes.Equal(rest, body) {
		t.Errorf("body %x, want %x", rest, body)
	}
	// v1 has no tag section: a zero byte after the client id is body.
	_, rest, err = ParseRequestHeader(requestFrame(0, 7, 42, ptr(""), nil, []byte{0}), false)
	if err != nil || !bytes.Equal(rest, []byte{0}) {
		t.Errorf("got body %x, %v; want 00", rest, err)
	}
}

func TestHeaderParseNullClientID(t *testing.T) {
	for _, flexible := range []bool{false, true} {
		var tags []byte
		if flexible {
			tags = []byte{0}
		}
		h, rest, err := ParseRequestHeader(requestFrame(18, 3, 1, nil, tags, []byte{9}), flexible)
		if err != nil {
			t.Fatal(err)
		}
		if h.ClientID != nil {
			t.Errorf("flexible=%v: client id %q, want null", flexible, *h.ClientID)
		}
		if !bytes.Equal(rest, []byte{9}) {
			t.Errorf("flexible=%v: body %x", flexible, rest)
		}
	}
	// An empty client id is not null.
	h, _, err := ParseRequestHeader(requestFrame(18, 0, 1, ptr(""), nil, nil), false)
	if err != nil || h.ClientID == nil || *h.ClientID != "" {
		t.Errorf("empty client id: got %+v, %v", h, err)
	}
}

func TestHeaderParseV2Tags(t *testing.T) {
	body := []byte{0xaa, 0xbb}
	for _, tc := range []struct {
		name string
		tags []byte
	}{
		{"none", []byte{0}},
		{"one", []byte{1, 0, 2, 'h', 'i'}},
		{"two", []byte{2, 0, 1, 'x', 5, 0}},
		{"large tag", append(binary.AppendUvarint([]byte{1}, 1<<20), 3, 1, 2, 3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, rest, err := ParseRequestHeader(requestFrame(1, 12, 5, ptr("consumer"), tc.tags, body), true)
			if err != nil {
				t.Fatal(err)
			}
			if *h.ClientID != "consumer" || !bytes.Equal(rest, body) {
				t.Errorf("got %+v body %x", h, rest)
			}
		})
	}
}

func TestHeaderParseTruncated(t *testing.T) {
	for _, tc := range []struct {
		name     string
		frame    []byte
		flexible bool
	}{
		{"v1", requestFrame(0, 7, 1, ptr("client"), nil, nil), false},
		{"v2 no tags", requestFrame(0, 9, 1, ptr("client"), []byte{0}, nil), true},
		{"v2 tags", requestFrame(0, 9, 1, ptr("client"), []byte{2, 0, 3, 'a', 'b', 'c', 1, 0}, nil), true},
		{"v2 null client id", requestFrame(0, 9, 1, nil, []byte{1, 7, 1, 'z'}, nil), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, rest, err := ParseRequestHeader(tc.frame, tc.flexible); err != nil || len(rest) != 0 {
				t.Fatalf("whole header: body %x, %v", rest, err)
			}
			for n := range len(tc.frame) {
				_, _, err := ParseRequestHeader(tc.frame[:n:n], tc.flexible)
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("%d of %d bytes: got %v, want ErrMalformed", n, len(tc.frame), err)
				}
			}
		})
	}
}

func TestHeaderParseRejectsBadLengths(t *testing.T) {
	base := enc{}.i16(0).i16(9).i32(1)
	for _, tc := range []struct {
		name     string
		frame    []byte
		flexible bool
	}{
		{"client id overruns", base.i16(10).i8('a'), false},
		{"tag count overruns", append(base.str("c"), 5, 0, 0), true},
		{"tag size overruns", append(base.str("c"), 1, 0, 10, 'x'), true},
		{"bad tag count varint", append(base.str("c"), 0x80), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := ParseRequestHeader(tc.frame, tc.flexible); !errors.Is(err, ErrMalformed) {
				t.Errorf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestHeaderIsFlexible(t *testing.T) {
	for _, tc := range []struct {
		key, version int16
		want         bool
	}{
		{0, 8, false}, {0, 9, true}, {1, 11, false}, {1, 12, true},
		{3, 8, false}, {3, 9, true}, {18, 2, false}, {18, 3, true},
		{60, 0, true}, {47, 0, false}, {-1, 0, false}, {30000, 5, false},
	} {
		if got := IsFlexible(tc.key, tc.version); got != tc.want {
			t.Errorf("IsFlexible(%d, %d) = %v, want %v", tc.key, tc.version, got, tc.want)
		}
	}
}

// responseFrame splits an AppendResponse frame into its parts.
func responseFrame(t *testing.T, frame []byte) (correlationID int32, rest []byte) {
	t.Helper()
	if len(frame) < 8 {
		t.Fatalf("%d-byte frame", len(frame))
	}
	if size := binary.BigEndian.Uint32(frame); int(size) != len(frame)-4 {
		t.Fatalf("size prefix %d, frame has %d bytes after it", size, len(frame)-4)
	}
	return int32(binary.BigEndian.Uint32(frame[4:])), frame[8:]
}

func TestHeaderAppendResponse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		key     int16
		version int16
		resp    kmsg.Response
		tagByte bool // response header v1
	}{
		{"metadata v8 header v0", 3, 8, kmsg.NewPtrMetadataResponse(), false},
		{"metadata v9 header v1", 3, 9, kmsg.NewPtrMetadataResponse(), true},
		{"produce v9 header v1", 0, 9, kmsg.NewPtrProduceResponse(), true},
		{"api versions v0 header v0", 18, 0, kmsg.NewPtrApiVersionsResponse(), false},
		// ApiVersions is flexible from v3, yet its response header stays
		// v0: the client cannot know the header version yet.
		{"api versions v3 header v0", 18, 3, kmsg.NewPtrApiVersionsResponse(), false},
		{"api versions v4 header v0", 18, 4, kmsg.NewPtrApiVersionsResponse(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.resp.SetVersion(tc.version)
			body := tc.resp.AppendTo(nil)
			prefix := []byte("earlier frame")
			frame := AppendResponse(append([]byte(nil), prefix...), tc.key, tc.version, -123, tc.resp)
			if !bytes.Equal(frame[:len(prefix)], prefix) {
				t.Fatalf("earlier bytes overwritten")
			}
			correlationID, rest := responseFrame(t, frame[len(prefix):])
			if correlationID != -123 {
				t.Errorf("correlation id %d", correlationID)
			}
			want := body
			if tc.tagByte {
				want = append([]byte{0}, body...)
			}
			if !bytes.Equal(rest, want) {
				t.Errorf("after the correlation id: %x, want %x", rest, want)
			}
			// The body must decode as the response of that version.
			decoded := kmsg.ResponseForKey(tc.key)
			decoded.SetVersion(tc.version)
			if tc.tagByte {
				rest = rest[1:]
			}
			if err := decoded.ReadFrom(rest); err != nil {
				t.Errorf("response body does not decode: %v", err)
			}
		})
	}
}

func TestHeaderFrameWriteTo(t *testing.T) {
	var buf bytes.Buffer
	f := Frame([]byte{0, 0, 0, 1, 7})
	n, err := f.WriteTo(&buf)
	if err != nil || n != 5 || !bytes.Equal(buf.Bytes(), f) {
		t.Errorf("wrote %d bytes %x, %v", n, buf.Bytes(), err)
	}
	f.Release()
}
