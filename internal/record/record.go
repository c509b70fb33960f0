// Package record reads and writes Kafka record batches, magic v2: the unit a
// producer sends, the log stores and a consumer fetches, byte for byte.
//
// The broker's hot path never decodes records. It parses the 61-byte batch
// header (ParseHeader, NextBatch), checks the CRC-32C (ValidateBatch) and
// writes the base offset and partition leader epoch in place (SetBaseOffset,
// SetPartitionLeaderEpoch); both fields lie before the CRC range, so the
// producer's checksum stays valid and the batch goes to disk and back out to
// consumers unchanged. Only LogAppendTime topics touch bytes inside the CRC
// range (SetLogAppendTime), and only compaction, timestamp lookup and the
// coordinators read individual records (Records) or build batches
// (AppendBatch).
//
// Invariants: nothing here panics on bytes from the network or disk; every
// length and count read from a batch is checked against the bytes that
// remain before it sizes an allocation; decompression never produces more
// than the caller's maxBytes.
package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// The v2 record batch header. This layout is Kafka's wire and on-disk format:
// it must never change. All integers are big-endian.
//
//	offset  size  field
//	     0     8  BaseOffset            \ not covered by the CRC: the broker
//	     8     4  BatchLength           | writes BaseOffset and the epoch in
//	    12     4  PartitionLeaderEpoch  | place without recomputing it.
//	    16     1  Magic (= 2)           | BatchLength counts bytes after itself.
//	    17     4  CRC (CRC-32C)         /
//	    21     2  Attributes            \
//	    23     4  LastOffsetDelta       |
//	    27     8  FirstTimestamp        |
//	    35     8  MaxTimestamp          | CRC-32C (Castagnoli) covers
//	    43     8  ProducerID            | byte 21 to the end of the batch.
//	    51     2  ProducerEpoch         |
//	    53     4  BaseSequence          |
//	    57     4  RecordCount           |
//	    61     …  records (compressed   |
//	              as one stream when    |
//	              the codec is not none)/
//
// Attributes (int16): bits 0-2 codec, bit 3 timestamp type (1 = LogAppendTime),
// bit 4 transactional, bit 5 control, bit 6 delete horizon set (KIP-534: the
// cleaner reuses FirstTimestamp as the tombstone delete horizon).
const (
	offsetBaseOffset           = 0
	offsetBatchLength          = 8
	offsetPartitionLeaderEpoch = 12
	offsetMagic                = 16
	offsetCRC                  = 17
	offsetAttributes           = 21
	offsetLastOffsetDelta      = 23
	offsetFirstTimestamp       = 27
	offsetMaxTimestamp         = 35
	offsetProducerID           = 43
	offsetProducerEpoch        = 51
	offsetBaseSequence         = 53
	offsetRecordCount          = 57

	// HeaderSize is the number of bytes of the v2 batch header, base offset
	// through record count.
	HeaderSize = 61
	// MagicV2 is the only batch format Sluice stores; produce v3+ requires it.
	MagicV2 = 2

	// logOverhead is the part of the header BatchLength does not count:
	// BaseOffset and BatchLength themselves (Kafka's LOG_OVERHEAD).
	logOverhead = offsetPartitionLeaderEpoch
	// crcStart is where the checksummed bytes begin.
	crcStart = offsetAttributes
	// maxBatchLength keeps Size() within an int32, as Kafka's sizeInBytes is.
	maxBatchLength = math.MaxInt32 - logOverhead

	attributeCodecMask      = 0x07
	attributeLogAppendTime  = 0x08
	attributeTransactional  = 0x10
	attributeControl        = 0x20
	attributeDeleteHorizon  = 0x40
	attributeTimestampShift = 3
)

// Sentinel errors. Each says which Kafka error code the edge should answer
// with; errcode.go in internal/api is where that choice is made.
var (
	// ErrTruncated: the bytes end inside a batch. From a produce request:
	// CORRUPT_MESSAGE (2). Reading a segment's tail: a torn write, which
	// recovery truncates.
	ErrTruncated = errors.New("record batch truncated")
	// ErrCorrupt: the header is impossible (length below the header size,
	// negative counts) or a compressed payload does not decode. CORRUPT_MESSAGE (2),
	// Kafka's CorruptRecordException.
	ErrCorrupt = errors.New("record batch corrupt")
	// ErrCRCMismatch: the CRC-32C does not match the bytes. CORRUPT_MESSAGE (2),
	// which producers retry, as the damage may have happened in transit.
	ErrCRCMismatch = errors.New("record batch CRC mismatch")
	// ErrUnsupportedMagic: magic is not 2. INVALID_RECORD (87), what Kafka
	// answers for produce v3+ carrying magic 0 or 1. (Kafka reports magic > 2
	// as CORRUPT_MESSAGE; UNSUPPORTED_FOR_MESSAGE_FORMAT (43) is for features a
	// downgraded log format cannot hold, which cannot happen with v2 only.)
	ErrUnsupportedMagic = errors.New("unsupported record batch magic")
	// ErrUnknownCodec: attribute bits 0-2 name no codec (5-7).
	// UNSUPPORTED_COMPRESSION_TYPE (76).
	ErrUnknownCodec = errors.New("unknown compression codec")
	// ErrDecompressedTooLarge: the records inflate past the caller's bound
	// (decompression bomb defence; Kafka has no equivalent limit).
	// MESSAGE_TOO_LARGE (10): non-retriable, and the Java producer reacts by
	// splitting the batch, which is the useful response.
	ErrDecompressedTooLarge = errors.New("decompressed records too large")
	// ErrInvalidRecord: the records inside a batch are malformed (bad varint,
	// length past the end, wrong record count, trailing bytes), or a
	// client-written header breaks Kafka's produce rules. INVALID_RECORD (87),
	// Kafka's InvalidRecordException.
	ErrInvalidRecord = errors.New("invalid record")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Codec is the compression codec of a batch's records (attribute bits 0-2).
type Codec int8

// Codec ids as Kafka numbers them.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// Known reports whether Sluice can decode the codec.
func (c Codec) Known() bool { return c >= CodecNone && c <= CodecZstd }

// TimestampType says whose clock a batch's timestamps come from
// (attribute bit 3).
type TimestampType int8

const (
	// CreateTime: the producer's timestamps, FirstTimestamp + TimestampDelta.
	CreateTime TimestampType = 0
	// LogAppendTime: the broker's clock at append; every record's timestamp
	// is the batch's MaxTimestamp, whatever its delta says.
	LogAppendTime TimestampType = 1
)

func (t TimestampType) String() string {
	switch t {
	case CreateTime:
		return "CreateTime"
	case LogAppendTime:
		return "LogAppendTime"
	}
	return fmt.Sprintf("TimestampType(%d)", int8(t))
}

// Header is the decoded v2 batch header.
type Header struct {
	BaseOffset           int64
	BatchLength          int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	RecordCount          int32
}

// Size is the number of bytes of the whole batch, header included.
func (h *Header) Size() int { return logOverhead + int(h.BatchLength) }

// LastOffset is the offset of the batch's last record, or for a batch emptied
// by compaction the last offset it once held.
func (h *Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// NextOffset is the offset the next batch in the log starts at.
func (h *Header) NextOffset() int64 { return h.LastOffset() + 1 }

// Codec returns the batch's compression codec, which may be unknown
// (see Codec.Known).
func (h *Header) Codec() Codec { return Codec(h.Attributes & attributeCodecMask) }

// TimestampType returns whose clock stamped the batch.
func (h *Header) TimestampType() TimestampType {
	return TimestampType((h.Attributes & attributeLogAppendTime) >> attributeTimestampShift)
}

// IsTransactional reports whether the batch belongs to a transaction, so
// read_committed consumers must wait for its commit or abort marker.
func (h *Header) IsTransactional() bool { return h.Attributes&attributeTransactional != 0 }

// IsControl reports whether the batch holds control records (transaction
// markers) rather than user data.
func (h *Header) IsControl() bool { return h.Attributes&attributeControl != 0 }

// HasDeleteHorizon reports whether the cleaner has stored the tombstone
// delete horizon in FirstTimestamp (KIP-534).
func (h *Header) HasDeleteHorizon() bool { return h.Attributes&attributeDeleteHorizon != 0 }

// HasProducerID reports whether an idempotent or transactional producer
// wrote the batch (Kafka uses -1 for "no producer id").
func (h *Header) HasProducerID() bool { return h.ProducerID >= 0 }

// ParseHeader decodes the header at the start of b without reading the
// records or checking the CRC, so it is cheap enough for every batch of a
// segment scan. b may extend past the batch.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("header needs %d bytes, have %d: %w", HeaderSize, len(b), ErrTruncated)
	}
	h := Header{
		BaseOffset:           int64(binary.BigEndian.Uint64(b[offsetBaseOffset:])),
		BatchLength:          int32(binary.BigEndian.Uint32(b[offsetBatchLength:])),
		PartitionLeaderEpoch: int32(binary.BigEndian.Uint32(b[offsetPartitionLeaderEpoch:])),
		Magic:                int8(b[offsetMagic]),
		CRC:                  binary.BigEndian.Uint32(b[offsetCRC:]),
		Attributes:           int16(binary.BigEndian.Uint16(b[offsetAttributes:])),
		LastOffsetDelta:      int32(binary.BigEndian.Uint32(b[offsetLastOffsetDelta:])),
		FirstTimestamp:       int64(binary.BigEndian.Uint64(b[offsetFirstTimestamp:])),
		MaxTimestamp:         int64(binary.BigEndian.Uint64(b[offsetMaxTimestamp:])),
		ProducerID:           int64(binary.BigEndian.Uint64(b[offsetProducerID:])),
		ProducerEpoch:        int16(binary.BigEndian.Uint16(b[offsetProducerEpoch:])),
		BaseSequence:         int32(binary.BigEndian.Uint32(b[offsetBaseSequence:])),
		RecordCount:          int32(binary.BigEndian.Uint32(b[offsetRecordCount:])),
	}
	if err := h.check(); err != nil {
		return Header{}, err
	}
	return h, nil
}

// check holds the header rules that need no bytes beyond the header. Magic
// goes first: with any other magic the rest of the layout means something else.
func (h *Header) check() error {
	switch {
	case h.Magic != MagicV2:
		return fmt.Errorf("magic %d at offset %d: %w", h.Magic, h.BaseOffset, ErrUnsupportedMagic)
	case h.BatchLength < HeaderSize-logOverhead || h.BatchLength > maxBatchLength:
		return fmt.Errorf("batch length %d at offset %d: %w", h.BatchLength, h.BaseOffset, ErrCorrupt)
	case h.LastOffsetDelta < 0:
		return fmt.Errorf("last offset delta %d at offset %d: %w", h.LastOffsetDelta, h.BaseOffset, ErrCorrupt)
	case h.RecordCount < 0:
		return fmt.Errorf("record count %d at offset %d: %w", h.RecordCount, h.BaseOffset, ErrCorrupt)
	}
	return nil
}

// ValidateBatch checks that b is exactly one complete, intact batch: the
// header rules, the length, the CRC-32C over b[21:], a record count that fits
// the offset range (compaction may leave fewer records than offsets, never
// more) and a known codec. It does not allocate unless it fails.
func ValidateBatch(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return Header{}, err
	}
	if size := h.Size(); len(b) != size {
		if len(b) < size {
			return Header{}, fmt.Errorf("batch at offset %d is %d bytes, have %d: %w", h.BaseOffset, size, len(b), ErrTruncated)
		}
		return Header{}, fmt.Errorf("batch at offset %d is %d bytes, given %d: %w", h.BaseOffset, size, len(b), ErrCorrupt)
	}
	if sum := crc32.Checksum(b[crcStart:], castagnoli); sum != h.CRC {
		return Header{}, fmt.Errorf("batch at offset %d: stored %08x, computed %08x: %w", h.BaseOffset, h.CRC, sum, ErrCRCMismatch)
	}
	if int64(h.RecordCount) > int64(h.LastOffsetDelta)+1 {
		return Header{}, fmt.Errorf("batch at offset %d: %d records in %d offsets: %w",
			h.BaseOffset, h.RecordCount, int64(h.LastOffsetDelta)+1, ErrCorrupt)
	}
	if !h.Codec().Known() {
		return Header{}, fmt.Errorf("batch at offset %d: %v: %w", h.BaseOffset, h.Codec(), ErrUnknownCodec)
	}
	return h, nil
}

// NextBatch splits the first batch off b, a run of concatenated batches (a
// produce request's records, a segment read). It checks the header rules but
// not the CRC: a segment scan that trusts fsynced data skips that cost. When b
// ends inside a batch it returns ErrTruncated, which a log reading its tail
// treats as a torn write.
func NextBatch(b []byte) (batch, rest []byte, h Header, err error) {
	h, err = ParseHeader(b)
	if err != nil {
		return nil, b, Header{}, err
	}
	size := h.Size()
	if len(b) < size {
		return nil, b, Header{}, fmt.Errorf("batch at offset %d is %d bytes, have %d: %w", h.BaseOffset, size, len(b), ErrTruncated)
	}
	return b[:size:size], b[size:], h, nil
}

// SetBaseOffset assigns the batch's base offset in place. The field is outside
// the CRC range, so the producer's checksum stays valid. b must hold at least
// a header.
func SetBaseOffset(b []byte, baseOffset int64) {
	binary.BigEndian.PutUint64(b[offsetBaseOffset:], uint64(baseOffset))
}

// SetPartitionLeaderEpoch stamps the leader epoch that appended the batch, in
// place and outside the CRC range. Followers use it to find where their log
// diverges from a new leader's.
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offsetPartitionLeaderEpoch:], uint32(epoch))
}

// SetLogAppendTime marks the batch as LogAppendTime with ts as its
// MaxTimestamp and recomputes the CRC, as Kafka's LogValidator does for an
// in-place v2 append (DefaultRecordBatch.setMaxTimestamp). Like Kafka it
// leaves FirstTimestamp and the record deltas alone: readers of a
// LogAppendTime batch take every record's timestamp from MaxTimestamp, and
// FirstTimestamp keeps the producer's create time. The other attribute bits
// are kept. b must be one whole batch.
func SetLogAppendTime(b []byte, ts int64) {
	attributes := binary.BigEndian.Uint16(b[offsetAttributes:])
	if attributes&attributeLogAppendTime != 0 && int64(binary.BigEndian.Uint64(b[offsetMaxTimestamp:])) == ts {
		return // Kafka skips the CRC recompute when nothing changes
	}
	binary.BigEndian.PutUint16(b[offsetAttributes:], attributes|attributeLogAppendTime)
	binary.BigEndian.PutUint64(b[offsetMaxTimestamp:], uint64(ts))
	setCRC(b)
}

// setCRC recomputes the CRC-32C of a whole batch after a change inside the
// checksummed range.
func setCRC(b []byte) {
	binary.BigEndian.PutUint32(b[offsetCRC:], crc32.Checksum(b[crcStart:], castagnoli))
}

// CheckClientOrigin applies the header rules Kafka's LogValidator enforces on
// batches from producers (AppendOrigin.CLIENT), beyond what ValidateBatch
// checks for any batch: at least one record, one record per offset (only
// compaction may leave gaps), no control batches (only the broker writes
// transaction markers), and a sequence number whenever there is a producer id.
func (h *Header) CheckClientOrigin() error {
	switch {
	case h.RecordCount <= 0:
		return fmt.Errorf("client batch has %d records: %w", h.RecordCount, ErrInvalidRecord)
	case int64(h.RecordCount) != int64(h.LastOffsetDelta)+1:
		return fmt.Errorf("client batch has %d records in %d offsets: %w", h.RecordCount, int64(h.LastOffsetDelta)+1, ErrInvalidRecord)
	case h.IsControl():
		return fmt.Errorf("clients may not write control batches: %w", ErrInvalidRecord)
	case h.HasProducerID() && h.BaseSequence < 0:
		return fmt.Errorf("producer id %d with sequence %d: %w", h.ProducerID, h.BaseSequence, ErrInvalidRecord)
	}
	return nil
}
