package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// rawRecord builds a record's bytes field by field, so tests can forge any
// length or count.
type rawRecord []byte

func (r rawRecord) varint(v int64) rawRecord  { return binary.AppendVarint(r, v) }
func (r rawRecord) bytes(b ...byte) rawRecord { return append(r, b...) }

// framed prefixes the body with its true length.
func (r rawRecord) framed() []byte { return append(binary.AppendVarint(nil, int64(len(r))), r...) }

func TestRecordMalformed(t *testing.T) {
	base := func() rawRecord { return rawRecord{0}.varint(0).varint(0) } // attributes, timestamp, offset
	valid := base().varint(1).bytes('k').varint(1).bytes('v').varint(0).framed()
	cases := []struct {
		name    string
		count   int32
		payload []byte
	}{
		{"no records", 1, nil},
		{"fewer records than count", 2, valid},
		{"more records than count", 1, append(append([]byte{}, valid...), valid...)},
		{"length past the end", 1, append(binary.AppendVarint(nil, 100), valid[1:]...)},
		{"length negative", 1, append(binary.AppendVarint(nil, -3), valid[1:]...)},
		{"length too short", 1, base().framed()},
		{"length varint cut", 1, []byte{0x80}},
		{"varint over 5 bytes", 1, base().bytes(0x80, 0x80, 0x80, 0x80, 0x80, 0x01).varint(-1).varint(0).framed()},
		{"varint over 32 bits", 1, base().bytes(0xff, 0xff, 0xff, 0xff, 0x7f).varint(-1).varint(0).framed()},
		{"varlong over 64 bits", 1, rawRecord{0}.bytes(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01).varint(0).varint(-1).varint(-1).varint(0).framed()},
		{"key length -2", 1, base().varint(-2).varint(-1).varint(0).framed()},
		{"key past the record", 1, base().varint(50).bytes('k').varint(-1).varint(0).framed()},
		{"value past the record", 1, base().varint(-1).varint(1 << 30).varint(0).framed()},
		{"header count negative", 1, base().varint(-1).varint(-1).varint(-1).framed()},
		{"header count huge", 1, base().varint(-1).varint(-1).varint(1<<30).bytes(0, 0, 0, 0).framed()},
		{"header key null", 1, base().varint(-1).varint(-1).varint(1).varint(-1).varint(-1).framed()},
		{"header value past the record", 1, base().varint(-1).varint(-1).varint(1).varint(1).bytes('h').varint(9).framed()},
		{"bytes after headers", 1, base().varint(-1).varint(-1).varint(0).bytes(7).framed()},
		{"record stops early", 1, base().varint(-1).varint(-1).framed()},
	}
	for _, c := range cases {
		for _, codec := range []Codec{CodecNone, CodecZstd} {
			payload := c.payload
			if codec != CodecNone {
				var err error
				payload, err = compress(codec, nil, payload)
				requireNoError(t, err)
			}
			err := Records(batchWithPayload(codec, c.count, payload), 1<<20, func(*Record) error { return nil })
			require(t, errors.Is(err, ErrInvalidRecord), "%s (%v): error %v, want ErrInvalidRecord", c.name, codec, err)
		}
	}
	var got []Record
	requireNoError(t, Records(batchWithPayload(CodecNone, 1, valid), 1, func(r *Record) error {
		got = append(got, copyRecord(r))
		return nil
	}))
	requireSameRecords(t, got, []Record{{Key: []byte("k"), Value: []byte("v")}}, true)
}

func TestRecordCallbackErrorStops(t *testing.T) {
	stop := errors.New("stop")
	for _, codec := range allCodecs {
		batch := mustAppendBatch(t, testOptions(codec), sampleRecords(10))
		calls := 0
		err := Records(batch, 1<<20, func(*Record) error {
			calls++
			if calls == 3 {
				return stop
			}
			return nil
		})
		require(t, err == stop && calls == 3, "%v: error %v after %d calls", codec, err, calls)
	}
}

func TestRecordRejectsBadBatch(t *testing.T) {
	batch := mustAppendBatch(t, testOptions(CodecNone), sampleRecords(3))
	requireErrorIs(t, Records(batch[:len(batch)-1], 1<<20, func(*Record) error { return nil }), ErrCorrupt)
	requireErrorIs(t, Records(batch[:10], 1<<20, func(*Record) error { return nil }), ErrTruncated)
}

func TestRecordOffsetAndTimestamp(t *testing.T) {
	opts := testOptions(CodecNone)
	batch := mustAppendBatch(t, opts, []Record{{TimestampDelta: 5}, {TimestampDelta: -2}})
	h, err := ValidateBatch(batch)
	requireNoError(t, err)
	require(t, h.MaxTimestamp == opts.FirstTimestamp+5, "max timestamp %d", h.MaxTimestamp)
	var offsets, timestamps []int64
	requireNoError(t, Records(batch, 0, func(r *Record) error {
		offsets = append(offsets, h.Offset(r))
		timestamps = append(timestamps, h.Timestamp(r))
		return nil
	}))
	require(t, offsets[0] == 1000 && offsets[1] == 1001, "offsets %v", offsets)
	require(t, timestamps[0] == opts.FirstTimestamp+5 && timestamps[1] == opts.FirstTimestamp-2, "timestamps %v", timestamps)
}

func TestRecordVarints(t *testing.T) {
	for _, v := range []int64{0, 1, -1, 63, -64, 64, 1<<31 - 1, -1 << 31} {
		b := binary.AppendVarint(nil, v)
		got, n, err := readVarint(b)
		requireNoError(t, err)
		require(t, int64(got) == v && n == len(b) && varintSize(v) == len(b), "varint %d: got %d, %d bytes", v, got, n)
	}
	for _, v := range []int64{1 << 31, -1<<31 - 1} {
		_, _, err := readVarint(binary.AppendVarint(nil, v))
		requireErrorIs(t, err, ErrInvalidRecord)
	}
	for _, v := range []int64{0, -1, 1 << 62, -1 << 63, 1<<63 - 1} {
		b := binary.AppendVarint(nil, v)
		got, n, err := readVarlong(b)
		requireNoError(t, err)
		require(t, got == v && n == len(b) && varintSize(v) == len(b), "varlong %d: got %d", v, got)
	}
}

// TestRecordConcurrentDecode shares pooled buffers, readers and the zstd
// decoder between goroutines; run it under -race.
func TestRecordConcurrentDecode(t *testing.T) {
	records := sampleRecords(100)
	batches := make([][]byte, len(allCodecs))
	for i, codec := range allCodecs {
		batches[i] = mustAppendBatch(t, testOptions(codec), records)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				batch := batches[(g+i)%len(batches)]
				n := 0
				err := Records(batch, 1<<20, func(r *Record) error {
					want := &records[n]
					if !sameNullable(r.Key, want.Key) || !sameNullable(r.Value, want.Value) || len(r.Headers) != len(want.Headers) {
						return fmt.Errorf("record %d differs", n)
					}
					n++
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
