package metadata

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
)

// This file holds the primitives of the record encoding drawn in
// encoding.go: tagged fields, written by fieldWriter and read by
// fieldReader.

// fieldWriter appends tagged fields to a record. Each method writes one
// field, and only when its value is not the zero value: an absent field
// decodes to the zero value, so writing it would only cost bytes.
type fieldWriter struct {
	b []byte
}

// header appends a field's tag and payload length.
func (w *fieldWriter) header(tag uint64, length int) {
	w.b = binary.AppendUvarint(w.b, tag)
	w.b = binary.AppendUvarint(w.b, uint64(length))
}

// int writes a signed integer as a zig-zag varint.
func (w *fieldWriter) int(tag uint64, v int64) {
	if v == 0 {
		return
	}
	w.header(tag, varintLen(v))
	w.b = binary.AppendVarint(w.b, v)
}

func (w *fieldWriter) uint(tag uint64, v uint64) {
	if v == 0 {
		return
	}
	w.header(tag, uvarintLen(v))
	w.b = binary.AppendUvarint(w.b, v)
}

func (w *fieldWriter) bool(tag uint64, v bool) {
	if v {
		w.uint(tag, 1)
	}
}

func (w *fieldWriter) string(tag uint64, s string) {
	if s == "" {
		return
	}
	w.header(tag, len(s))
	w.b = append(w.b, s...)
}

func (w *fieldWriter) uuid(tag uint64, id UUID) {
	if id == (UUID{}) {
		return
	}
	w.header(tag, len(id))
	w.b = append(w.b, id[:]...)
}

// int32s writes a count and the values as zig-zag varints. A nil slice is
// not written; an empty one is, because PartitionChange tells "unchanged"
// (nil) from "empty" apart.
func (w *fieldWriter) int32s(tag uint64, v []int32) {
	if v == nil {
		return
	}
	length := uvarintLen(uint64(len(v)))
	for _, x := range v {
		length += varintLen(int64(x))
	}
	w.header(tag, length)
	w.b = binary.AppendUvarint(w.b, uint64(len(v)))
	for _, x := range v {
		w.b = binary.AppendVarint(w.b, int64(x))
	}
}

// bytes writes a payload built by the caller (a nested structure).
func (w *fieldWriter) bytes(tag uint64, payload []byte) {
	w.header(tag, len(payload))
	w.b = append(w.b, payload...)
}

func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

func varintLen(v int64) int { return uvarintLen(uint64(v<<1) ^ uint64(v>>63)) }

// fieldReader reads the tagged fields of one record in order. Errors are
// sticky: after the first, next returns false and every value reads as
// zero, so a record decoder is a plain loop checked once at the end.
//
// It also keeps the allocation budget: decoding may allocate at most
// decodeAllocFactor times the record's size plus decodeAllocSlack, so no
// crafted length or count can make it allocate more than the input
// justifies.
type fieldReader struct {
	rest    []byte // fields not read yet
	tag     uint64 // the current field's tag
	payload []byte // the current field's payload
	started bool
	budget  int
	err     error
}

func newFieldReader(fields []byte, recordLen int) *fieldReader {
	return &fieldReader{rest: fields, budget: decodeAllocFactor*recordLen + decodeAllocSlack}
}

// next moves to the next field. Tags must strictly increase, which makes
// a field given twice an error rather than a silent overwrite.
func (r *fieldReader) next() bool {
	if r.err != nil || len(r.rest) == 0 {
		return false
	}
	tag, n := binary.Uvarint(r.rest)
	if n <= 0 || (r.started && tag <= r.tag) {
		r.fail("field tag after %d", r.tag)
		return false
	}
	length, m := binary.Uvarint(r.rest[n:])
	if m <= 0 || length > uint64(len(r.rest)-n-m) {
		r.fail("length of field %d", tag)
		return false
	}
	start := n + m
	r.tag, r.started = tag, true
	r.payload = r.rest[start : start+int(length) : start+int(length)]
	r.rest = r.rest[start+int(length):]
	return true
}

func (r *fieldReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrCorrupt)
	}
}

// spend takes n bytes from the allocation budget before an allocation of
// n bytes, and fails the record if the budget does not cover them.
func (r *fieldReader) spend(n int) bool {
	if r.err != nil {
		return false
	}
	if n < 0 || n > r.budget {
		r.err = fmt.Errorf("field %d would allocate %d bytes, %d left: %w", r.tag, n, r.budget, ErrTooLarge)
		return false
	}
	r.budget -= n
	return true
}

// int reads the current field as a zig-zag varint within [lo, hi].
func (r *fieldReader) int(lo, hi int64) int64 {
	v, n := binary.Varint(r.payload)
	if n <= 0 || n != len(r.payload) || v < lo || v > hi {
		r.fail("integer field %d", r.tag)
		return 0
	}
	return v
}

func (r *fieldReader) int64() int64 { return r.int(math.MinInt64, math.MaxInt64) }
func (r *fieldReader) int32() int32 { return int32(r.int(math.MinInt32, math.MaxInt32)) }
func (r *fieldReader) int16() int16 { return int16(r.int(math.MinInt16, math.MaxInt16)) }
func (r *fieldReader) int8() int8   { return int8(r.int(math.MinInt8, math.MaxInt8)) }

// uint reads the current field as an unsigned varint of at most max.
func (r *fieldReader) uint(max uint64) uint64 {
	v, n := binary.Uvarint(r.payload)
	if n <= 0 || n != len(r.payload) || v > max {
		r.fail("unsigned field %d", r.tag)
		return 0
	}
	return v
}

func (r *fieldReader) bool() bool { return r.uint(1) == 1 }

func (r *fieldReader) string() string {
	if !r.spend(len(r.payload)) {
		return ""
	}
	return string(r.payload)
}

func (r *fieldReader) uuid() UUID {
	var id UUID
	if len(r.payload) != len(id) {
		r.fail("uuid field %d of %d bytes", r.tag, len(r.payload))
		return id
	}
	copy(id[:], r.payload)
	return id
}

// int32s reads a count and that many zig-zag varints. The count is
// checked against the payload (a varint takes at least a byte) and the
// budget before the slice is made.
func (r *fieldReader) int32s() []int32 {
	count, n := binary.Uvarint(r.payload)
	if n <= 0 || count > uint64(len(r.payload)-n) {
		r.fail("count of field %d", r.tag)
		return nil
	}
	if !r.spend(int(count) * 4) {
		return nil
	}
	v := make([]int32, count)
	p := r.payload[n:]
	for i := range v {
		x, m := binary.Varint(p)
		if m <= 0 || x < math.MinInt32 || x > math.MaxInt32 {
			r.fail("element %d of field %d", i, r.tag)
			return nil
		}
		v[i], p = int32(x), p[m:]
	}
	if len(p) != 0 {
		r.fail("%d bytes after the elements of field %d", len(p), r.tag)
		return nil
	}
	return v
}

// listenerBytes is what the budget charges for a decoded Listener: its
// size on a 64-bit machine (three string headers and a port), rounded up.
const listenerBytes = 64

// listeners reads a count and that many length-prefixed listeners, each a
// nested set of tagged fields.
func (r *fieldReader) listeners() []Listener {
	count, n := binary.Uvarint(r.payload)
	if n <= 0 || count > uint64(len(r.payload)-n) {
		r.fail("count of field %d", r.tag)
		return nil
	}
	if count == 0 || !r.spend(int(count)*listenerBytes) {
		return nil
	}
	v := make([]Listener, count)
	p := r.payload[n:]
	for i := range v {
		length, m := binary.Uvarint(p)
		if m <= 0 || length > uint64(len(p)-m) {
			r.fail("length of listener %d", i)
			return nil
		}
		v[i] = r.listener(p[m : m+int(length)])
		p = p[m+int(length):]
	}
	if len(p) != 0 {
		r.fail("%d bytes after the listeners", len(p))
		return nil
	}
	return v
}

// listener decodes one listener with a nested reader that shares this
// reader's budget and error.
func (r *fieldReader) listener(fields []byte) Listener {
	var l Listener
	nested := &fieldReader{rest: fields, budget: r.budget, err: r.err}
	for nested.next() {
		switch nested.tag {
		case 0:
			l.Name = nested.string()
		case 1:
			l.Host = nested.string()
		case 2:
			l.Port = uint16(nested.uint(math.MaxUint16))
		case 3:
			l.SecurityProtocol = nested.string()
		}
	}
	r.budget, r.err = nested.budget, nested.err
	return l
}

func appendListener(dst []byte, l Listener) []byte {
	w := fieldWriter{b: dst}
	w.string(0, l.Name)
	w.string(1, l.Host)
	w.uint(2, uint64(l.Port))
	w.string(3, l.SecurityProtocol)
	return w.b
}
