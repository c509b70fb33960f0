package record

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The v2 record, as Kafka's DefaultRecord lays it out. Must never change.
//
//	Length          varint  bytes after this field
//	Attributes      int8    unused, written as 0
//	TimestampDelta  varlong from the batch's FirstTimestamp
//	OffsetDelta     varint  from the batch's BaseOffset
//	KeyLength       varint  -1 = null key
//	Key             bytes
//	ValueLength     varint  -1 = null value (a tombstone)
//	Value           bytes
//	HeaderCount     varint
//	Headers         HeaderKeyLength varint, HeaderKey, HeaderValueLength varint (-1 = null), HeaderValue
//
// varint and varlong are zigzag-encoded, as in protobuf.
const (
	maxVarintLength  = 5  // an int32 zigzag varint
	maxVarlongLength = 10 // an int64 zigzag varint
	// minRecordBody is the smallest record after its Length field:
	// attributes, timestamp delta, offset delta, key length, value length, header count.
	minRecordBody = 6
	// minHeaderSize is the smallest record header: two one-byte length varints.
	minHeaderSize = 2
)

// RecordHeader is one key/value pair of a record's headers.
type RecordHeader struct {
	Key   string
	Value []byte // nil = null
}

// Record is one decoded record. Key and Value are nil for null, which for a
// Value means a tombstone to compaction.
type Record struct {
	Attributes     int8
	TimestampDelta int64
	OffsetDelta    int32
	Key, Value     []byte
	Headers        []RecordHeader
}

// Offset returns the record's absolute offset in the batch described by h.
func (h *Header) Offset(r *Record) int64 { return h.BaseOffset + int64(r.OffsetDelta) }

// Timestamp returns the record's timestamp in the batch described by h: the
// broker's append time for LogAppendTime batches, else the producer's.
func (h *Header) Timestamp(r *Record) int64 {
	if h.TimestampType() == LogAppendTime {
		return h.MaxTimestamp
	}
	return h.FirstTimestamp + r.TimestampDelta
}

// Records decodes the records of one whole batch (as returned by NextBatch or
// checked by ValidateBatch), decompressing with the batch's codec, and calls fn
// for each in order; an error from fn stops the walk and is returned as is.
//
// maxBytes bounds the decompressed size of the records: a batch inflating past
// it fails with ErrDecompressedTooLarge, having allocated at most about twice
// maxBytes (output buffers grow by doubling, never past the bound) and
// usually nothing, as buffers are pooled. Uncompressed batches are read in
// place and need no bound.
//
// fn must not keep r or the slices it points into after it returns: Key, Value
// and header values alias the batch or a pooled decompression buffer, and r is
// reused for the next record. Copy what must outlive the call.
func Records(batch []byte, maxBytes int, fn func(r *Record) error) error {
	h, err := ParseHeader(batch)
	if err != nil {
		return err
	}
	if len(batch) != h.Size() {
		return fmt.Errorf("batch at offset %d is %d bytes, given %d: %w", h.BaseOffset, h.Size(), len(batch), ErrCorrupt)
	}
	codec := h.Codec()
	if !codec.Known() {
		return fmt.Errorf("batch at offset %d: %v: %w", h.BaseOffset, codec, ErrUnknownCodec)
	}
	if h.RecordCount == 0 {
		// As Kafka: an empty batch (compaction's leftover that keeps producer
		// state) has nothing to decode, whatever its payload.
		return nil
	}
	state := getDecodeState()
	defer putDecodeState(state)
	payload := batch[HeaderSize:]
	if codec == CodecNone {
		return decodeRecords(&h, payload, &state.record, fn)
	}
	records, err := decompress(codec, payload, state.records[:0], maxBytes)
	if err != nil {
		return fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
	}
	state.records = records
	return decodeRecords(&h, records, &state.record, fn)
}

// decodeRecords walks exactly h.RecordCount records that must fill data
// exactly, as Kafka's record iterator insists.
func decodeRecords(h *Header, data []byte, r *Record, fn func(r *Record) error) error {
	for i := int32(0); i < h.RecordCount; i++ {
		n, err := parseRecord(data, r)
		if err != nil {
			return fmt.Errorf("batch at offset %d, record %d of %d: %w", h.BaseOffset, i, h.RecordCount, err)
		}
		data = data[n:]
		if err := fn(r); err != nil {
			return err
		}
	}
	if len(data) != 0 {
		return fmt.Errorf("batch at offset %d: %d bytes after its %d records: %w", h.BaseOffset, len(data), h.RecordCount, ErrInvalidRecord)
	}
	return nil
}

// parseRecord decodes the record at the start of b into r, reusing r's header
// slice, and returns the bytes it took.
func parseRecord(b []byte, r *Record) (int, error) {
	length, n, err := readVarint(b)
	if err != nil {
		return 0, fmt.Errorf("record length: %w", err)
	}
	if length < minRecordBody || int64(length) > int64(len(b)-n) {
		return 0, fmt.Errorf("record length %d with %d bytes left: %w", length, len(b)-n, ErrInvalidRecord)
	}
	body := b[n : n+int(length)]
	if err := parseRecordBody(body, r); err != nil {
		return 0, err
	}
	return n + int(length), nil
}

// parseRecordBody decodes the fields after the length prefix; every byte of
// body must belong to a field.
func parseRecordBody(body []byte, r *Record) error {
	d := decoder{b: body}
	r.Attributes = int8(d.byte())
	r.TimestampDelta = d.varlong("timestamp delta")
	r.OffsetDelta = d.varint("offset delta")
	r.Key = d.nullableBytes("key")
	r.Value = d.nullableBytes("value")
	r.Headers = d.headers(r.Headers[:0])
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%d bytes after the record's headers: %w", len(d.b), ErrInvalidRecord)
	}
	return nil
}

// decoder reads record fields from b, remembering the first error so the
// field-by-field code above stays flat; after an error every read is a no-op.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(field string, err error) {
	if d.err == nil {
		d.err = fmt.Errorf("%s: %w", field, err)
		d.b = nil
	}
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail("attributes", ErrInvalidRecord)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) varint(field string) int32 {
	v, n, err := readVarint(d.b)
	if err != nil {
		d.fail(field, err)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varlong(field string) int64 {
	v, n, err := readVarlong(d.b)
	if err != nil {
		d.fail(field, err)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// nullableBytes reads a varint length (-1 = null) and that many bytes,
// aliasing the input.
func (d *decoder) nullableBytes(field string) []byte {
	length := d.varint(field)
	if d.err != nil {
		return nil
	}
	switch {
	case length == -1:
		return nil
	case length < -1 || int64(length) > int64(len(d.b)):
		d.fail(field, fmt.Errorf("length %d with %d bytes left: %w", length, len(d.b), ErrInvalidRecord))
		return nil
	}
	v := d.b[:length:length]
	d.b = d.b[length:]
	return v
}

// headers reads the header count and headers into dst. The count is checked
// against the bytes left before dst grows, so a forged count cannot make us
// allocate more than the record's own size.
func (d *decoder) headers(dst []RecordHeader) []RecordHeader {
	count := d.varint("header count")
	if d.err != nil {
		return dst
	}
	if count < 0 || int64(count) > int64(len(d.b)/minHeaderSize) {
		d.fail("header count", fmt.Errorf("%d headers with %d bytes left: %w", count, len(d.b), ErrInvalidRecord))
		return dst
	}
	for i := int32(0); i < count && d.err == nil; i++ {
		key := d.nullableBytes("header key")
		if key == nil && d.err == nil {
			d.fail("header key", fmt.Errorf("null header key: %w", ErrInvalidRecord))
		}
		value := d.nullableBytes("header value")
		dst = append(dst, RecordHeader{Key: string(key), Value: value})
	}
	return dst
}

// readVarint reads a zigzag varint that must fit an int32, as Kafka's
// ByteUtils.readVarint requires (at most 5 bytes).
func readVarint(b []byte) (int32, int, error) {
	u, n := binary.Uvarint(b)
	if n == 0 {
		return 0, 0, fmt.Errorf("varint past the end: %w", ErrInvalidRecord)
	}
	if n < 0 || n > maxVarintLength || u > math.MaxUint32 {
		return 0, 0, fmt.Errorf("varint overflows 32 bits: %w", ErrInvalidRecord)
	}
	return int32(uint32(u>>1) ^ -uint32(u&1)), n, nil
}

// readVarlong reads a zigzag varint of at most 10 bytes.
func readVarlong(b []byte) (int64, int, error) {
	u, n := binary.Uvarint(b)
	if n == 0 {
		return 0, 0, fmt.Errorf("varlong past the end: %w", ErrInvalidRecord)
	}
	if n < 0 || n > maxVarlongLength {
		return 0, 0, fmt.Errorf("varlong overflows 64 bits: %w", ErrInvalidRecord)
	}
	return int64(u>>1) ^ -int64(u&1), n, nil
}
