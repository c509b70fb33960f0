package record

import (
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/gzip"
)

// Compression is a codec with its level, as Kafka's compression.type and
// compression.<codec>.level topic configs spell them: gzip -1 (the codec's
// default) or 1-9, lz4 1-17, zstd -131072 to 22. Snappy and none have no
// level.
type Compression struct {
	Codec Codec
	Level int
}

// Kafka's default levels (compression.gzip.level, compression.lz4.level,
// compression.zstd.level).
const (
	DefaultGzipLevel = gzip.DefaultCompression
	DefaultLZ4Level  = 9
	DefaultZstdLevel = 3
)

// defaultLevel is the level AppendBatch compresses with: the codec's own
// default, and for lz4 the fast compressor producers use rather than
// Kafka's broker-side default (a high-compression level).
func defaultLevel(codec Codec) int {
	switch codec {
	case CodecGzip:
		return DefaultGzipLevel
	case CodecZstd:
		return DefaultZstdLevel
	}
	return 0
}

// Recompress appends to dst the whole batch re-encoded with c: the records
// are decompressed (bounded by maxBytes, as Records is), checked to be
// exactly the RecordCount records the header promises, and compressed with
// c.Codec at c.Level. Every header field but the codec bits, the length and
// the CRC is kept: offsets, offset deltas, timestamps, producer id, epoch
// and sequence, and the partition leader epoch. The record bytes themselves
// do not depend on the codec, so they are carried over untouched. A batch
// already in c.Codec, or with no records, is appended as it is.
//
// This is the leader's compression.type: followers store the leader's
// bytes and never call it.
func Recompress(dst, batch []byte, c Compression, maxBytes int) ([]byte, error) {
	h, err := ParseHeader(batch)
	if err != nil {
		return dst, err
	}
	if len(batch) != h.Size() {
		return dst, fmt.Errorf("batch at offset %d is %d bytes, given %d: %w", h.BaseOffset, h.Size(), len(batch), ErrCorrupt)
	}
	from := h.Codec()
	switch {
	case !from.Known():
		return dst, fmt.Errorf("batch at offset %d: %v: %w", h.BaseOffset, from, ErrUnknownCodec)
	case !c.Codec.Known():
		return dst, fmt.Errorf("recompress to %v: %w", c.Codec, ErrUnknownCodec)
	case from == c.Codec || h.RecordCount == 0:
		return append(dst, batch...), nil
	}
	state := getDecodeState()
	defer putDecodeState(state)
	records := batch[HeaderSize:]
	if from != CodecNone {
		if state.records, err = decompress(from, records, state.records[:0], maxBytes); err != nil {
			return dst, fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
		}
		records = state.records
	}
	// Kafka's validator walks the records before it rewrites them; a
	// batch whose count or framing is wrong would otherwise be stored
	// under a fresh CRC that vouches for it.
	if err := decodeRecords(&h, records, &state.record, func(*Record) error { return nil }); err != nil {
		return dst, err
	}
	start := len(dst)
	dst = append(dst, batch[:HeaderSize]...)
	if c.Codec == CodecNone {
		dst = append(dst, records...)
	} else if dst, err = compressLevel(c, dst, records); err != nil {
		return dst[:start], fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
	}
	out := dst[start:]
	if len(out)-logOverhead > maxBatchLength {
		return dst[:start], fmt.Errorf("batch at offset %d: recompressed to %d bytes: %w", h.BaseOffset, len(out), ErrInvalidRecord)
	}
	binary.BigEndian.PutUint32(out[offsetBatchLength:], uint32(len(out)-logOverhead))
	attributes := uint16(h.Attributes)&^attributeCodecMask | uint16(c.Codec)
	binary.BigEndian.PutUint16(out[offsetAttributes:], attributes)
	setCRC(out)
	return dst, nil
}
