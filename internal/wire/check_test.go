package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// enc builds request bodies by hand, for requests kmsg would never encode.
type enc []byte

func (e enc) i8(v int8) enc   { return append(e, byte(v)) }
func (e enc) i16(v int16) enc { return binary.BigEndian.AppendUint16(e, uint16(v)) }
func (e enc) i32(v int32) enc { return binary.BigEndian.AppendUint32(e, uint32(v)) }
func (e enc) i64(v int64) enc { return binary.BigEndian.AppendUint64(e, uint64(v)) }
func (e enc) str(s string) enc {
	return append(e.i16(int16(len(s))), s...)
}
func (e enc) uvarint(v uint64) enc { return binary.AppendUvarint(e, v) }
func (e enc) compactStr(s string) enc {
	return append(e.uvarint(uint64(len(s))+1), s...)
}

// pad appends zero bytes up to n bytes in all.
func (e enc) pad(n int) enc {
	if len(e) < n {
		e = append(e, make([]byte, n-len(e))...)
	}
	return e
}

// allocatedBy is the heap fn allocates, in bytes.
func allocatedBy(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// checkAndDecode is the broker's path: the check, then kmsg only if the
// check passed.
func checkAndDecode(key, version int16, body []byte) error {
	if err := CheckRequest(key, version, body); err != nil {
		return err
	}
	return decode(key, version, body)
}

// corpus is a few kmsg encodings of every covered key and version.
type corpusEntry struct {
	key, version int16
	body         []byte
}

func corpus(seed uint64) []corpusEntry {
	rng := rand.New(rand.NewPCG(seed, 1))
	var out []corpusEntry
	for _, c := range coveredVersions {
		for v := c.min; v <= c.max; v++ {
			for _, mode := range []string{"null", "set", "default", "random"} {
				f := &filler{rng: rng, mode: mode, unknownTags: mode == "random"}
				out = append(out, corpusEntry{c.key, v, buildRequest(c.key, v, f)})
			}
		}
	}
	return out
}

const megabyte = 1 << 20

func TestCheckRequestTruncationsRejectedOrDecodable(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	accepted := 0
	for _, c := range corpus(seed) {
		for n := range len(c.body) {
			prefix := c.body[:n:n]
			err := CheckRequest(c.key, c.version, prefix)
			if err == nil {
				accepted++
				if derr := decode(c.key, c.version, prefix); derr != nil {
					t.Fatalf("seed %d: %s v%d: check accepts the %d-byte prefix of %x, kmsg fails: %v",
						seed, kmsg.NameForKey(c.key), c.version, n, c.body, derr)
				}
				continue
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s v%d: error %v does not wrap ErrMalformed", kmsg.NameForKey(c.key), c.version, err)
			}
		}
	}
	t.Logf("%d truncations accepted (each also decodes)", accepted)
}

func TestCheckRequestMutationsRejectedOrDecodable(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	mutations := 60
	if testing.Short() {
		mutations = 10
	}
	accepted := 0
	for _, c := range corpus(seed) {
		for range mutations {
			body := mutate(rng, c.body)
			if CheckRequest(c.key, c.version, body) != nil {
				continue
			}
			accepted++
			var err error
			alloc := allocatedBy(func() { err = decode(c.key, c.version, body) })
			if err != nil {
				t.Fatalf("seed %d: %s v%d: check accepts %x, kmsg fails: %v", seed, kmsg.NameForKey(c.key), c.version, body, err)
			}
			if limit := decodeLimit(len(body)); alloc > uint64(limit) {
				t.Fatalf("seed %d: %s v%d: decoding %x allocated %d bytes, over the %d bound",
					seed, kmsg.NameForKey(c.key), c.version, body, alloc, limit)
			}
		}
	}
	t.Logf("%d mutations accepted (each also decodes within the bound)", accepted)
}

// mutate returns a copy of body with one random change aimed at counts
// and lengths: a byte set to an extreme, a byte flipped, or bytes cut or
// inserted.
func mutate(rng *rand.Rand, body []byte) []byte {
	b := append([]byte(nil), body...)
	if len(b) == 0 {
		return []byte{byte(rng.IntN(256))}
	}
	i := rng.IntN(len(b))
	switch rng.IntN(6) {
	case 0:
		b[i] = 0xff
	case 1:
		b[i] = 0x7f
	case 2:
		b[i] = 0
	case 3:
		b[i] ^= byte(1 << rng.IntN(8))
	case 4:
		b = append(b[:i], b[i+1:]...)
	default:
		b = append(b[:i], append([]byte{byte(rng.IntN(256))}, b[i:]...)...)
	}
	return b
}

func TestCheckRequestRejectsInflatedCounts(t *testing.T) {
	for _, tc := range []struct {
		name         string
		key, version int16
		body         []byte
		field        string
	}{
		{"produce topics", 0, 3, enc{}.i16(-1).i16(1).i32(1000).i32(1 << 30).pad(64), "topic_data"},
		{"produce partitions", 0, 3, enc{}.i16(-1).i16(1).i32(1000).i32(1).str("t").i32(100).pad(64), "partition_data"},
		{"produce records length", 0, 3, enc{}.i16(-1).i16(1).i32(1000).i32(1).str("t").i32(1).i32(0).i32(1 << 20).pad(64), "records"},
		{"produce compact partitions", 0, 9, enc{}.uvarint(0).i16(1).i32(1000).uvarint(2).compactStr("t").uvarint(1 << 20).pad(64), "partition_data"},
		{"produce compact records", 0, 9, enc{}.uvarint(0).i16(1).i32(1000).uvarint(2).compactStr("t").uvarint(2).i32(0).uvarint(1 << 20).pad(64), "records"},
		{"produce non-nullable topic name null", 0, 3, enc{}.i16(-1).i16(1).i32(1000).i32(1).i16(-1).i32(0), "name"},
		{"produce non-nullable topics null", 0, 3, enc{}.i16(-1).i16(1).i32(1000).i32(-1), "topic_data"},
		{"metadata v0 topics null", 3, 0, enc{}.i32(-1), "topics"},
		{"metadata topics", 3, 1, enc{}.i32(1 << 20).pad(1000), "topics"},
		{"metadata name length", 3, 1, enc{}.i32(1).i16(500).pad(100), "name"},
		{"create topics replica ids", 19, 0, enc{}.i32(1).str("t").i32(1).i16(1).i32(1).i32(0).i32(1 << 24).pad(100), "broker_ids"},
		{"create topics configs", 19, 0, enc{}.i32(1).str("t").i32(1).i16(1).i32(0).i32(1 << 24).pad(100), "configs"},
		{"delete records partitions", 21, 0, enc{}.i32(1).str("t").i32(1 << 20).pad(1000), "partitions"},
		{"describe groups names", 15, 0, enc{}.i32(1 << 20).pad(1000), "groups"},
		{"fetch tag count", 1, 12, enc{}.i32(-1).i32(0).i32(0).i32(0).i8(0).i32(0).i32(0).uvarint(1).uvarint(1).compactStr("").uvarint(1 << 20), ""},
		{"fetch known tag overruns size", 1, 12, enc{}.i32(-1).i32(0).i32(0).i32(0).i8(0).i32(0).i32(0).uvarint(1).uvarint(1).compactStr("").uvarint(1).uvarint(0).uvarint(2).uvarint(5).pad(40), "cluster_id"},
		{"fetch known tag short of size", 1, 12, enc{}.i32(-1).i32(0).i32(0).i32(0).i8(0).i32(0).i32(0).uvarint(1).uvarint(1).compactStr("").uvarint(1).uvarint(0).uvarint(3).uvarint(2).i8('x').i8('y'), "cluster_id"},
		{"bad uvarint", 18, 3, enc{0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "client_software_name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckRequest(tc.key, tc.version, tc.body)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name %q", err, tc.field)
			}
		})
	}
}

// TestCheckRequestEstimateCoversKmsg measures what kmsg allocates to decode
// each corpus request and checks the estimate is not below it: the bound
// is only as good as the estimate.
func TestCheckRequestEstimateCoversKmsg(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector inflates allocations")
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	forEachCovered(t, func(t *testing.T, key, version int16) {
		for range 5 {
			f := &filler{rng: rng, mode: "random"}
			body := buildRequest(key, version, f)
			estimate, err := checkRequest(key, version, body)
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			req := kmsg.RequestForKey(key)
			req.SetVersion(version)
			alloc := allocatedBy(func() { err = req.ReadFrom(body) })
			if err != nil {
				t.Fatal(err)
			}
			// Size classes round each slice up by at most an eighth;
			// the request struct itself is allocated before decoding.
			if float64(alloc) > float64(estimate)*1.125+256 {
				t.Errorf("seed %d: %s v%d: kmsg allocated %d bytes, the estimate was %d (body %x)",
					seed, kmsg.NameForKey(key), version, alloc, estimate, body)
			}
		}
	})
}

func TestCheckRequestDoesNotAllocate(t *testing.T) {
	for _, c := range corpus(7) {
		allocs := testing.AllocsPerRun(5, func() {
			if err := CheckRequest(c.key, c.version, c.body); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s v%d: %v allocations", kmsg.NameForKey(c.key), c.version, allocs)
		}
	}
}

// The crafted requests of docs/broker.md (wire compatibility): ~8 MiB bodies whose counts promise
// far more memory than their bytes. Each is rejected, and the check plus
// (never reached) decode allocates far less than the frame.
func TestCheckRequestBoundsCraftedRequests(t *testing.T) {
	const size = 8 * megabyte
	for _, tc := range []struct {
		name         string
		key, version int16
		body         []byte
	}{
		// kmsg alone: 8M topics × 64 bytes = 512 MiB.
		{"produce huge topic count", 0, 3, enc{}.i16(-1).i16(1).i32(1000).i32(size - 12).pad(size)},
		{"produce huge partition count", 0, 3, enc{}.i16(-1).i16(1).i32(1000).i32(1).str("t").i32(size - 20).pad(size)},
		// Well-formed but dense: 6-byte topics (empty name, no partitions)
		// that each decode to a 64-byte struct.
		{"produce dense empty topics", 0, 3, denseBody(enc{}.i16(-1).i16(1).i32(1000), enc{}.str("").i32(0), nil, false, size)},
		{"produce v9 dense empty topics", 0, 9, denseBody(enc{}.uvarint(0).i16(1).i32(1000), enc{}.compactStr("").uvarint(1).uvarint(0), enc{}.uvarint(0), true, size)},
		{"metadata huge topic count", 3, 1, enc{}.i32(size).pad(size)},
		{"metadata dense empty names", 3, 1, denseBody(enc{}, enc{}.str(""), nil, false, size)},
		{"create topics huge count", 19, 0, enc{}.i32(size).pad(size)},
		{"create topics dense", 19, 0, denseBody(enc{}, enc{}.str("").i32(1).i16(1).i32(0).i32(0), enc{}.i32(0), false, size)},
		{"delete records huge partition count", 21, 0, enc{}.i32(1).str("t").i32(size).pad(size)},
		{"delete records dense topics", 21, 0, denseBody(enc{}, enc{}.str("").i32(0), enc{}.i32(0), false, size)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			alloc := allocatedBy(func() { err = checkAndDecode(tc.key, tc.version, tc.body) })
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
			t.Logf("%d-byte body: %v; allocated %d bytes", len(tc.body), err, alloc)
			if alloc >= 2*uint64(len(tc.body)) {
				t.Errorf("allocated %d bytes for a %d-byte body", alloc, len(tc.body))
			}
		})
	}
}

// denseBody is head, then an array of as many copies of elem as fit in
// about size bytes (a compact count when compact), then tail.
func denseBody(head, elem, tail enc, compact bool, size int) []byte {
	n := (size - len(head) - len(tail) - 5) / len(elem)
	body := head.i32(int32(n))
	if compact {
		body = head.uvarint(uint64(n) + 1)
	}
	for range n {
		body = append(body, elem...)
	}
	return append(body, tail...)
}

// A well-formed dense request just inside the bound decodes within it.
func TestCheckRequestDenseButValidStaysWithinBound(t *testing.T) {
	const size = 8 * megabyte
	for _, tc := range []struct {
		name         string
		key, version int16
		body         []byte
	}{
		// 12-byte partitions decoding to 24-byte structs.
		{"delete records many partitions", 21, 0, denseBody(enc{}.i32(1).str("t"), enc{}.i32(0).i64(0), enc{}.i32(0), false, size)},
		// Each topic: a zero uuid, a null name, no tags; then the two
		// booleans and the tag section.
		{"metadata v12 null names", 3, 12, denseBody(enc{}, append(make(enc, 16), 0, 0), enc{}.i8(0).i8(0).uvarint(0), true, size)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			alloc := allocatedBy(func() { err = checkAndDecode(tc.key, tc.version, tc.body) })
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d-byte body decoded with %d bytes allocated", len(tc.body), alloc)
			if alloc > uint64(decodeLimit(len(tc.body))) {
				t.Errorf("allocated %d bytes, over the %d bound", alloc, decodeLimit(len(tc.body)))
			}
		})
	}
}

// largeProduce is a Produce request of partitions × recordBytes of record
// data (opaque to kmsg, so random bytes stand in for batches).
func largeProduce(version int16, partitions, recordBytes int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(version)
	req.Acks = -1
	req.TimeoutMillis = 30000
	topic := kmsg.NewProduceRequestTopic()
	topic.Topic = "orders"
	for p := range partitions {
		part := kmsg.NewProduceRequestTopicPartition()
		part.Partition = int32(p)
		part.Records = make([]byte, recordBytes)
		for i := range part.Records {
			part.Records[i] = byte(rng.IntN(256))
		}
		topic.Partitions = append(topic.Partitions, part)
	}
	req.Topics = append(req.Topics, topic)
	return req.AppendTo(nil)
}

func TestCheckRequestLargeProduceDecodesNearFrameSize(t *testing.T) {
	for _, version := range []int16{3, 9, 12} {
		body := largeProduce(version, 2000, 4096)
		var err error
		alloc := allocatedBy(func() { err = checkAndDecode(0, version, body) })
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("Produce v%d: %d-byte body decoded with %d bytes allocated", version, len(body), alloc)
		if alloc > 2*uint64(len(body)) {
			t.Errorf("Produce v%d: allocated %d bytes for a %d-byte body", version, alloc, len(body))
		}
	}
}

func BenchmarkCheckRequestProduce1MiB(b *testing.B) {
	body := largeProduce(9, 16, 64<<10)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckRequest(0, 9, body); err != nil {
			b.Fatal(err)
		}
	}
}

// The densest legitimate shapes the bound's comment names still pass at
// the sizes it promises.
func TestCheckRequestAdmitsDenseLegitimateRequests(t *testing.T) {
	metadata := kmsg.NewPtrMetadataRequest()
	metadata.SetVersion(1)
	for i := range 3500 {
		topic := kmsg.NewMetadataRequestTopic()
		topic.Topic = kmsg.StringPtr(fmt.Sprintf("topic-%02d", i%100))
		metadata.Topics = append(metadata.Topics, topic)
	}
	if err := CheckRequest(3, 1, metadata.AppendTo(nil)); err != nil {
		t.Errorf("3,500 short topic names: %v", err)
	}

	fetch := kmsg.NewPtrFetchRequest()
	fetch.SetVersion(4)
	topic := kmsg.NewFetchRequestTopic()
	topic.Topic = "events"
	for p := range 7500 {
		partition := kmsg.NewFetchRequestTopicPartition()
		partition.Partition = int32(p)
		topic.Partitions = append(topic.Partitions, partition)
	}
	fetch.Topics = append(fetch.Topics, topic)
	if err := CheckRequest(1, 4, fetch.AppendTo(nil)); err != nil {
		t.Errorf("Fetch v4 of 7,500 partitions: %v", err)
	}
}

// TestCheckIgnoresTrailingBytes: Kafka's parser ignores bytes after the
// body, so a request padded by a client is served, not a reconnect loop.
func TestCheckIgnoresTrailingBytes(t *testing.T) {
	body := enc{}.str("g").i32(1).str("m").i8(0) // Heartbeat v0 + one stray byte
	if err := CheckRequest(12, 0, body); err != nil {
		t.Fatalf("trailing byte: %v", err)
	}
}
