package wire

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzCheckRequest: whatever the key, version and body, a body the check
// accepts must decode with kmsg, without panicking, within the allocation
// bound; a body it rejects must be rejected with ErrMalformed.
//
//	go test -run '^$' -fuzz FuzzCheckRequest -fuzztime 60s ./internal/wire/
func FuzzCheckRequest(f *testing.F) {
	for _, c := range corpus(11) {
		f.Add(c.key, c.version, c.body)
	}
	f.Add(int16(0), int16(3), []byte(enc{}.i16(-1).i16(1).i32(1000).i32(1<<30)))
	f.Fuzz(func(t *testing.T, key, version int16, body []byte) {
		err := CheckRequest(key, version, body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		req := kmsg.RequestForKey(key)
		if req == nil {
			t.Fatalf("accepted key %d, which kmsg does not know", key)
		}
		req.SetVersion(version)
		alloc := allocatedBy(func() { err = req.ReadFrom(body) })
		if err != nil {
			t.Fatalf("%s v%d: check accepts %x, kmsg fails: %v", kmsg.NameForKey(key), version, body, err)
		}
		if limit := decodeLimit(len(body)); alloc > uint64(limit) {
			t.Fatalf("%s v%d: decoding %d bytes allocated %d, over the %d bound", kmsg.NameForKey(key), version, len(body), alloc, limit)
		}
	})
}
