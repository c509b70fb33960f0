package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

var allCodecs = []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

func require(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		t.Fatalf(format, args...)
	}
}

func requireNoError(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func requireErrorIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}

// sampleRecords covers the encodings that differ: null and empty keys and
// values, headers with null values, negative and large deltas.
func sampleRecords(n int) []Record {
	records := make([]Record, n)
	for i := range records {
		r := &records[i]
		r.TimestampDelta = int64(i * 7)
		switch i % 4 {
		case 0:
			r.Key = []byte(fmt.Sprintf("key-%d", i))
			r.Value = bytes.Repeat([]byte("value "), i%50+1)
		case 1:
			r.Key = nil
			r.Value = []byte{}
			r.Headers = []RecordHeader{{Key: "h1", Value: []byte("v1")}, {Key: "", Value: nil}}
		case 2:
			r.Key = []byte{}
			r.Value = nil // tombstone
		case 3:
			r.Key = []byte("k")
			r.Value = []byte(fmt.Sprintf(`{"id":%d,"name":"record %d","tags":["a","b"]}`, i, i))
			r.Headers = []RecordHeader{{Key: "trace", Value: []byte{}}}
			r.TimestampDelta = 1 << 40
		}
	}
	return records
}

// payloadRecords makes n records of about size bytes each of compressible
// but not trivial content, for benchmarks.
func payloadRecords(n, size int) []Record {
	records := make([]Record, n)
	for i := range records {
		value := make([]byte, 0, size)
		for len(value) < size {
			value = fmt.Appendf(value, `{"user":%d,"event":"click","page":"/p/%d"},`, i*31%997, (i*17+len(value))%113)
		}
		records[i] = Record{Key: fmt.Appendf(nil, "user-%d", i%97), Value: value[:size], TimestampDelta: int64(i)}
	}
	return records
}

// copyRecord deep-copies r, since Records' callback must not keep it.
func copyRecord(r *Record) Record {
	c := Record{Attributes: r.Attributes, TimestampDelta: r.TimestampDelta, OffsetDelta: r.OffsetDelta,
		Key: cloneNullable(r.Key), Value: cloneNullable(r.Value)}
	for _, h := range r.Headers {
		c.Headers = append(c.Headers, RecordHeader{Key: h.Key, Value: cloneNullable(h.Value)})
	}
	return c
}

func cloneNullable(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func decodeAll(t testing.TB, batch []byte, maxBytes int) []Record {
	t.Helper()
	var out []Record
	err := Records(batch, maxBytes, func(r *Record) error {
		out = append(out, copyRecord(r))
		return nil
	})
	requireNoError(t, err)
	return out
}

func requireSameRecords(t testing.TB, got, want []Record, numbered bool) {
	t.Helper()
	require(t, len(got) == len(want), "got %d records, want %d", len(got), len(want))
	for i := range want {
		g, w := &got[i], &want[i]
		wantDelta := w.OffsetDelta
		if numbered {
			wantDelta = int32(i)
		}
		require(t, g.OffsetDelta == wantDelta, "record %d: offset delta %d, want %d", i, g.OffsetDelta, wantDelta)
		require(t, g.TimestampDelta == w.TimestampDelta, "record %d: timestamp delta %d, want %d", i, g.TimestampDelta, w.TimestampDelta)
		require(t, sameNullable(g.Key, w.Key), "record %d: key %q (nil %v), want %q (nil %v)", i, g.Key, g.Key == nil, w.Key, w.Key == nil)
		require(t, sameNullable(g.Value, w.Value), "record %d: value differs (nil %v, want nil %v)", i, g.Value == nil, w.Value == nil)
		require(t, len(g.Headers) == len(w.Headers), "record %d: %d headers, want %d", i, len(g.Headers), len(w.Headers))
		for j := range w.Headers {
			require(t, g.Headers[j].Key == w.Headers[j].Key && sameNullable(g.Headers[j].Value, w.Headers[j].Value),
				"record %d header %d: %+v, want %+v", i, j, g.Headers[j], w.Headers[j])
		}
	}
}

func sameNullable(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

// batchWithPayload wraps an arbitrary (possibly hostile) records payload in
// a batch with a valid header and CRC, as an attacker can.
func batchWithPayload(codec Codec, count int32, payload []byte) []byte {
	b, err := AppendBatch(nil, BatchOptions{Codec: CodecNone, ProducerID: -1, BaseSequence: -1}, nil)
	if err != nil {
		panic(err)
	}
	b = append(b, payload...)
	binary.BigEndian.PutUint32(b[offsetBatchLength:], uint32(len(b)-logOverhead))
	binary.BigEndian.PutUint16(b[offsetAttributes:], uint16(codec))
	binary.BigEndian.PutUint32(b[offsetLastOffsetDelta:], uint32(max(count-1, 0)))
	binary.BigEndian.PutUint32(b[offsetRecordCount:], uint32(count))
	setCRC(b)
	return b
}

func mustAppendBatch(t testing.TB, opts BatchOptions, records []Record) []byte {
	t.Helper()
	b, err := AppendBatch(nil, opts, records)
	requireNoError(t, err)
	return b
}
