package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Bounded decoding (docs/broker.md, wire compatibility).
//
// kmsg trusts the counts it reads: an array count is only checked against
// the bytes that remain, not against the size of the element it allocates,
// so `make([]Elem, n)` for a 100-byte Elem turns each wire byte into 100
// bytes of heap (a crafted 8 MiB Produce allocated 512 MiB). CheckRequest
// walks the body against the request's schema first, in one pass and
// without allocating, and rejects any count or length that the bytes
// present cannot back: each struct element must find at least its minimum
// encoded size in the remaining bytes, each string and bytes its length.
// After a successful walk every count is real, so kmsg allocates in
// proportion to the frame.
//
// The walk also adds up what kmsg will allocate (element counts times the
// kmsg element struct's size, string bytes, boxed nullable strings, unknown
// tagged fields), and rejects a request whose total exceeds
// maxDecodeFactor × body + decodeSlackBytes (4× + 64 KiB). That bounds
// dense but well-formed requests too (a million empty topic names decode to
// 48 bytes each from 2 on the wire). Real requests sit far below it: record
// batches are aliased by kmsg, so a Produce costs about 1% of its frame,
// and most elements carry names and offsets. The densest legitimate shapes
// are a Fetch v4 partition (16 wire bytes, a 72-byte struct) and a
// Metadata v1-v9 topic with a name under about 10 characters (a 32-byte
// struct plus a boxed name); the slack admits about 8,000 and 4,000 of
// those in one request before the bound rejects it.
//
// Like Kafka, the check accepts nothing it does not understand: a
// non-nullable field sent as null, bytes left over after the body, or a
// known tagged field whose value does not fill its declared size is
// malformed. Unknown tagged fields are skipped (and charged), as Kafka does.

// maxDecodeFactor and decodeSlackBytes bound what kmsg may allocate to
// decode a body: maxDecodeFactor × len(body) + decodeSlackBytes.
const (
	maxDecodeFactor  = 4
	decodeSlackBytes = 64 << 10
)

// unknownTagCost is charged per unknown tagged field: kmsg keeps each in a
// map entry (key, slice header, and the map's own overhead and growth).
const unknownTagCost = 128

// decodeLimit is the most kmsg may allocate to decode a body of n bytes.
func decodeLimit(n int) int64 {
	return maxDecodeFactor*int64(n) + decodeSlackBytes
}

// CheckRequest checks that body is a well-formed request of key at version
// whose every count and length is backed by the bytes present, and that
// decoding it with kmsg allocates at most decodeLimit(len(body)). Errors
// wrap ErrMalformed and name the field.
func CheckRequest(key, version int16, body []byte) error {
	_, err := checkRequest(key, version, body)
	return err
}

// checkRequest is CheckRequest, also returning the estimate of what kmsg
// allocates to decode body.
func checkRequest(key, version int16, body []byte) (int64, error) {
	m := schemaFor(key, version)
	if m == nil {
		return 0, fmt.Errorf("%w: no schema for API key %d version %d", ErrMalformed, key, version)
	}
	w := walker{
		rest:     body,
		version:  version,
		flexible: version >= m.flexibleFrom,
		limit:    decodeLimit(len(body)),
	}
	if err := w.fields(m.fields); err != nil {
		return w.estimate, fmt.Errorf("%w: %s v%d: %v", ErrMalformed, m.name, version, err)
	}
	// Bytes after the body are ignored, as Kafka's parser ignores them: a
	// client that pads its requests must not meet a reconnect loop, and
	// the walk has already bounded what decoding allocates.
	return w.estimate, nil
}

// walker is the state of one check: the bytes not yet walked and the
// running estimate of kmsg's allocations.
type walker struct {
	rest     []byte
	version  int16
	flexible bool
	estimate int64
	limit    int64
}

// errShort is the cause when a fixed-size field runs past the body.
var errShort = errors.New("ends before the field")

// fields walks one struct: its fields present at this version, then (when
// flexible) its tag section.
func (w *walker) fields(fs []field) error {
	for i := range fs {
		f := &fs[i]
		if f.tag >= 0 || !f.inVersion(w.version) {
			continue
		}
		if err := w.field(f); err != nil {
			return err
		}
	}
	if w.flexible {
		return w.tags(fs)
	}
	return nil
}

// field walks one field.
func (w *walker) field(f *field) error {
	switch f.kind {
	case kindArray:
		return w.array(f)
	case kindStruct:
		if err := w.fields(f.fields); err != nil {
			return fmt.Errorf("%s.%w", f.name, err)
		}
		return nil
	case kindString, kindBytes, kindRecords:
		n, null, err := w.length(f.kind != kindString)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		if null {
			if !f.nullableIn(w.version) {
				return fmt.Errorf("%s: null in a non-nullable field", f.name)
			}
			return nil
		}
		w.rest = w.rest[n:]
		if f.kind == kindString {
			return w.charge(f, stringCost(n, f.nullableSince != noVersion))
		}
		return nil
	}
	if err := w.primitive(f.kind); err != nil {
		return fmt.Errorf("%s: %w", f.name, err)
	}
	return nil
}

// primitive skips one fixed-size or varint value.
func (w *walker) primitive(k kind) error {
	switch k {
	case kindUvarint, kindVarint:
		_, n := uvarint32(w.rest)
		if n <= 0 {
			return errors.New("bad varint")
		}
		w.rest = w.rest[n:]
		return nil
	}
	n := fixedSize(k)
	if n == 0 || len(w.rest) < n {
		return errShort
	}
	w.rest = w.rest[n:]
	return nil
}

// array walks an array: its count, then each element.
func (w *walker) array(f *field) error {
	count, null, err := w.count()
	if err != nil {
		return fmt.Errorf("%s: %w", f.name, err)
	}
	if null {
		if !f.nullableIn(w.version) {
			return fmt.Errorf("%s: null in a non-nullable array", f.name)
		}
		return nil
	}
	minBytes := int64(1) // kmsg's own floor: every element takes a byte
	if f.elem == 0 {
		minBytes = max(minBytes, int64(f.minElemBytes[w.version]))
	} else if n := fixedSize(f.elem); n > 0 {
		minBytes = int64(n)
	} else if f.elem == kindString && !w.flexible {
		minBytes = 2
	} else if f.elem == kindBytes && !w.flexible {
		minBytes = 4
	}
	if int64(count)*minBytes > int64(len(w.rest)) {
		return fmt.Errorf("%s: %d elements cannot fit in the %d bytes left", f.name, count, len(w.rest))
	}
	if err := w.charge(f, int64(count)*f.elemSize); err != nil {
		return err
	}
	if f.elem != 0 {
		return w.primitiveArray(f, count)
	}
	for i := range count {
		if err := w.fields(f.fields); err != nil {
			return fmt.Errorf("%s[%d].%w", f.name, i, err)
		}
	}
	return nil
}

// primitiveArray walks count elements of a primitive array.
func (w *walker) primitiveArray(f *field, count int) error {
	if n := fixedSize(f.elem); n > 0 {
		w.rest = w.rest[count*n:] // the count check above covered these bytes
		return nil
	}
	for i := range count {
		switch f.elem {
		case kindString, kindBytes, kindRecords:
			n, null, err := w.length(f.elem != kindString)
			if err != nil {
				return fmt.Errorf("%s[%d]: %w", f.name, i, err)
			}
			if null {
				return fmt.Errorf("%s[%d]: null element", f.name, i)
			}
			w.rest = w.rest[n:]
			if f.elem == kindString {
				if err := w.charge(f, stringCost(n, false)); err != nil {
					return err
				}
			}
		default:
			if err := w.primitive(f.elem); err != nil {
				return fmt.Errorf("%s[%d]: %w", f.name, i, err)
			}
		}
	}
	return nil
}

// tags walks a tag section. A known tag's value must fill its declared
// size exactly; kmsg decodes known tags at every version, so they are
// matched regardless of the version the field was added in.
func (w *walker) tags(fs []field) error {
	count, n := uvarint32(w.rest)
	if n <= 0 {
		return errors.New("bad tagged field count")
	}
	w.rest = w.rest[n:]
	// Each tagged field takes at least two bytes (tag and size).
	if int64(count)*2 > int64(len(w.rest)) {
		return fmt.Errorf("%d tagged fields cannot fit in the %d bytes left", count, len(w.rest))
	}
	for range count {
		tag, n := uvarint32(w.rest)
		if n <= 0 {
			return errors.New("bad tag")
		}
		w.rest = w.rest[n:]
		size, n := uvarint32(w.rest)
		if n <= 0 || uint64(size) > uint64(len(w.rest)-n) {
			return fmt.Errorf("tagged field %d overruns the body", tag)
		}
		w.rest = w.rest[n:]
		value := w.rest[:size]
		after := w.rest[size:]
		if f := taggedField(fs, tag); f != nil {
			w.rest = value
			if err := w.field(f); err != nil {
				return fmt.Errorf("tag %d: %w", tag, err)
			}
			if len(w.rest) != 0 {
				return fmt.Errorf("tag %d: %s: %d bytes after the value", tag, f.name, len(w.rest))
			}
		} else {
			w.estimate += unknownTagCost
			if w.estimate > w.limit {
				return fmt.Errorf("tag %d: decoding would allocate over %d bytes", tag, w.limit)
			}
		}
		w.rest = after
	}
	return nil
}

func taggedField(fs []field, tag uint32) *field {
	for i := range fs {
		if fs[i].tag >= 0 && uint32(fs[i].tag) == tag {
			return &fs[i]
		}
	}
	return nil
}

// count reads an array count: int32 (negative: null), or when flexible a
// uvarint of count+1 (0: null).
func (w *walker) count() (count int, null bool, err error) {
	if w.flexible {
		v, n := uvarint32(w.rest)
		if n <= 0 {
			return 0, false, errors.New("bad compact array length")
		}
		w.rest = w.rest[n:]
		if v == 0 {
			return 0, true, nil
		}
		return int(v - 1), false, nil
	}
	if len(w.rest) < 4 {
		return 0, false, errors.New("ends before the array length")
	}
	v := int32(binary.BigEndian.Uint32(w.rest))
	w.rest = w.rest[4:]
	if v < 0 {
		return 0, true, nil
	}
	return int(v), false, nil
}

// length reads a string's or bytes' length (int16 or int32 when not
// flexible, negative: null; a uvarint of length+1 when flexible, 0: null)
// and checks that many bytes remain.
func (w *walker) length(isBytes bool) (n int, null bool, err error) {
	switch {
	case w.flexible:
		v, size := uvarint32(w.rest)
		if size <= 0 {
			return 0, false, errors.New("bad compact length")
		}
		w.rest = w.rest[size:]
		if v == 0 {
			return 0, true, nil
		}
		if uint64(v-1) > uint64(len(w.rest)) {
			return 0, false, fmt.Errorf("length %d overruns the %d bytes left", v-1, len(w.rest))
		}
		return int(v - 1), false, nil
	case isBytes:
		if len(w.rest) < 4 {
			return 0, false, errors.New("ends before the length")
		}
		n = int(int32(binary.BigEndian.Uint32(w.rest)))
		w.rest = w.rest[4:]
	default:
		if len(w.rest) < 2 {
			return 0, false, errors.New("ends before the length")
		}
		n = int(int16(binary.BigEndian.Uint16(w.rest)))
		w.rest = w.rest[2:]
	}
	if n < 0 {
		return 0, true, nil
	}
	if n > len(w.rest) {
		return 0, false, fmt.Errorf("length %d overruns the %d bytes left", n, len(w.rest))
	}
	return n, false, nil
}

// charge adds cost to the estimate of kmsg's allocations.
func (w *walker) charge(f *field, cost int64) error {
	w.estimate += cost
	if w.estimate > w.limit {
		return fmt.Errorf("%s: decoding would allocate over %d bytes, more than %d× the body plus %d",
			f.name, w.limit, maxDecodeFactor, decodeSlackBytes)
	}
	return nil
}

// stringCost is what kmsg allocates for a decoded string of n bytes: the
// bytes rounded to the allocator's 8-byte granule, plus a boxed header
// when the Go field is a *string.
func stringCost(n int, boxed bool) int64 {
	cost := int64(n+7) &^ 7
	if boxed {
		cost += goStringHeader
	}
	return cost
}

// fixedSize is the encoded size of a fixed-size kind, or 0.
func fixedSize(k kind) int {
	switch k {
	case kindInt8, kindBool:
		return 1
	case kindInt16:
		return 2
	case kindInt32:
		return 4
	case kindInt64, kindFloat64:
		return 8
	case kindUUID:
		return 16
	}
	return 0
}

// uvarint32 reads an unsigned varint of at most 32 bits the way Kafka and
// kmsg do: at most five bytes, the fifth holding only the top four bits.
// n <= 0 means the bytes end early or the value overflows.
func uvarint32(b []byte) (v uint32, n int) {
	for i := 0; i < 5 && i < len(b); i++ {
		c := b[i]
		if i == 4 && c > 0x0f {
			return 0, -1
		}
		v |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}
