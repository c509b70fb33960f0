package record

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// BatchOptions are the header fields of a batch AppendBatch builds; the rest
// (lengths, deltas, timestamps, count, CRC) follow from the records.
type BatchOptions struct {
	BaseOffset int64
	Codec      Codec
	// FirstTimestamp is the timestamp records' TimestampDelta counts from.
	// For a LogAppendTime batch set it to the append time and leave the
	// deltas 0, as Kafka's MemoryRecordsBuilder does.
	FirstTimestamp int64
	// ProducerID is -1 for a batch without an idempotent producer; the zero
	// value is a real producer id, so callers must set it.
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	Transactional        bool
	Control              bool
	TimestampType        TimestampType
	PartitionLeaderEpoch int32

	// PreserveOffsetDeltas writes each record's OffsetDelta as given, which
	// must strictly increase from 0 or more; by default records are numbered
	// 0..n-1. The cleaner uses it so compacted records keep their offsets.
	PreserveOffsetDeltas bool
	// LastOffsetDelta widens the batch's offset range past its last record.
	// The cleaner keeps a batch's original range when it removes the tail, so
	// the producer's last sequence number survives (see DefaultRecordBatch).
	LastOffsetDelta int32
	// DeleteHorizon marks FirstTimestamp as the tombstone delete horizon
	// (KIP-534, attribute bit 6): the cleaner stamps it on a batch holding
	// tombstones, and removes them once the horizon has passed. Record
	// timestamp deltas then count from the horizon.
	DeleteHorizon bool
}

// AppendBatch encodes records as one complete v2 batch appended to dst:
// compressed with opts.Codec, MaxTimestamp the largest record timestamp
// (FirstTimestamp for an empty batch), CRC set.
func AppendBatch(dst []byte, opts BatchOptions, records []Record) ([]byte, error) {
	if !opts.Codec.Known() {
		return dst, fmt.Errorf("append batch: %v: %w", opts.Codec, ErrUnknownCodec)
	}
	if opts.TimestampType != CreateTime && opts.TimestampType != LogAppendTime {
		return dst, fmt.Errorf("append batch: %v: %w", opts.TimestampType, ErrInvalidRecord)
	}
	lastOffsetDelta, maxTimestampDelta, err := checkRecords(&opts, records)
	if err != nil {
		return dst, fmt.Errorf("append batch: %w", err)
	}
	start := len(dst)
	dst = append(dst, make([]byte, HeaderSize)...)
	if opts.Codec == CodecNone {
		dst = appendRecords(dst, &opts, records)
	} else {
		dst, err = appendCompressedRecords(dst, &opts, records)
		if err != nil {
			return dst[:start], fmt.Errorf("append batch: %w", err)
		}
	}
	batch := dst[start:]
	if len(batch) > math.MaxInt32 {
		return dst[:start], fmt.Errorf("append batch: %d bytes: %w", len(batch), ErrInvalidRecord)
	}
	putHeader(batch, &opts, int32(len(records)), lastOffsetDelta, opts.FirstTimestamp+maxTimestampDelta)
	setCRC(batch)
	return dst, nil
}

// checkRecords finds the batch's last offset delta and largest timestamp
// delta, refusing what Kafka could not read back.
func checkRecords(opts *BatchOptions, records []Record) (lastOffsetDelta int32, maxTimestampDelta int64, err error) {
	if len(records) > math.MaxInt32 {
		return 0, 0, fmt.Errorf("%d records: %w", len(records), ErrInvalidRecord)
	}
	if opts.LastOffsetDelta < 0 {
		return 0, 0, fmt.Errorf("last offset delta %d: %w", opts.LastOffsetDelta, ErrInvalidRecord)
	}
	lastOffsetDelta = max(opts.LastOffsetDelta, int32(len(records))-1)
	previous := int32(-1)
	for i := range records {
		r := &records[i]
		if i == 0 || r.TimestampDelta > maxTimestampDelta {
			maxTimestampDelta = r.TimestampDelta
		}
		if !opts.PreserveOffsetDeltas {
			continue
		}
		if r.OffsetDelta <= previous {
			return 0, 0, fmt.Errorf("record %d: offset delta %d after %d: %w", i, r.OffsetDelta, previous, ErrInvalidRecord)
		}
		previous = r.OffsetDelta
	}
	return max(lastOffsetDelta, previous), maxTimestampDelta, nil
}

func putHeader(batch []byte, opts *BatchOptions, count, lastOffsetDelta int32, maxTimestamp int64) {
	attributes := uint16(opts.Codec) | (uint16(opts.TimestampType)<<attributeTimestampShift)&attributeLogAppendTime
	if opts.Transactional {
		attributes |= attributeTransactional
	}
	if opts.Control {
		attributes |= attributeControl
	}
	if opts.DeleteHorizon {
		attributes |= attributeDeleteHorizon
	}
	binary.BigEndian.PutUint64(batch[offsetBaseOffset:], uint64(opts.BaseOffset))
	binary.BigEndian.PutUint32(batch[offsetBatchLength:], uint32(len(batch)-logOverhead))
	binary.BigEndian.PutUint32(batch[offsetPartitionLeaderEpoch:], uint32(opts.PartitionLeaderEpoch))
	batch[offsetMagic] = MagicV2
	binary.BigEndian.PutUint16(batch[offsetAttributes:], attributes)
	binary.BigEndian.PutUint32(batch[offsetLastOffsetDelta:], uint32(lastOffsetDelta))
	binary.BigEndian.PutUint64(batch[offsetFirstTimestamp:], uint64(opts.FirstTimestamp))
	binary.BigEndian.PutUint64(batch[offsetMaxTimestamp:], uint64(maxTimestamp))
	binary.BigEndian.PutUint64(batch[offsetProducerID:], uint64(opts.ProducerID))
	binary.BigEndian.PutUint16(batch[offsetProducerEpoch:], uint16(opts.ProducerEpoch))
	binary.BigEndian.PutUint32(batch[offsetBaseSequence:], uint32(opts.BaseSequence))
	binary.BigEndian.PutUint32(batch[offsetRecordCount:], uint32(count))
}

func appendRecords(dst []byte, opts *BatchOptions, records []Record) []byte {
	for i := range records {
		offsetDelta := int32(i)
		if opts.PreserveOffsetDeltas {
			offsetDelta = records[i].OffsetDelta
		}
		dst = appendRecord(dst, &records[i], offsetDelta)
	}
	return dst
}

// appendRecord writes one record; its length prefix is computed first so the
// record is written in one pass.
func appendRecord(dst []byte, r *Record, offsetDelta int32) []byte {
	dst = binary.AppendVarint(dst, int64(recordBodySize(r, offsetDelta)))
	dst = append(dst, byte(r.Attributes))
	dst = binary.AppendVarint(dst, r.TimestampDelta)
	dst = binary.AppendVarint(dst, int64(offsetDelta))
	dst = appendNullableBytes(dst, r.Key)
	dst = appendNullableBytes(dst, r.Value)
	dst = binary.AppendVarint(dst, int64(len(r.Headers)))
	for i := range r.Headers {
		dst = binary.AppendVarint(dst, int64(len(r.Headers[i].Key)))
		dst = append(dst, r.Headers[i].Key...)
		dst = appendNullableBytes(dst, r.Headers[i].Value)
	}
	return dst
}

func recordBodySize(r *Record, offsetDelta int32) int {
	size := 1 + varintSize(r.TimestampDelta) + varintSize(int64(offsetDelta)) +
		nullableBytesSize(r.Key) + nullableBytesSize(r.Value) + varintSize(int64(len(r.Headers)))
	for i := range r.Headers {
		size += varintSize(int64(len(r.Headers[i].Key))) + len(r.Headers[i].Key) + nullableBytesSize(r.Headers[i].Value)
	}
	return size
}

// appendNullableBytes writes a length-prefixed field, length -1 for nil.
func appendNullableBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

func nullableBytesSize(b []byte) int {
	if b == nil {
		return varintSize(-1)
	}
	return varintSize(int64(len(b))) + len(b)
}

// varintSize is the length of v as a zigzag varint.
func varintSize(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

type encodeBuffer struct{ b []byte }

var encodeBuffers = sync.Pool{New: func() any { return new(encodeBuffer) }}

// appendCompressedRecords encodes the records into a pooled scratch buffer
// and appends their compression to dst.
func appendCompressedRecords(dst []byte, opts *BatchOptions, records []Record) ([]byte, error) {
	scratch := encodeBuffers.Get().(*encodeBuffer)
	defer func() {
		if cap(scratch.b) > maxPooledBuffer {
			scratch.b = nil
		}
		encodeBuffers.Put(scratch)
	}()
	scratch.b = appendRecords(scratch.b[:0], opts, records)
	return compress(opts.Codec, dst, scratch.b)
}

// appendWriter lets stream compressors append to a slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// compress appends the compression of src to dst at the codec's default
// level. Snappy is written as one raw block, as librdkafka and franz-go do;
// every Kafka consumer reads it.
func compress(codec Codec, dst, src []byte) ([]byte, error) {
	return compressLevel(Compression{Codec: codec, Level: defaultLevel(codec)}, dst, src)
}

// compressLevel appends the compression of src to dst with c's codec and
// level.
func compressLevel(c Compression, dst, src []byte) ([]byte, error) {
	switch c.Codec {
	case CodecGzip:
		return gzipCompress(dst, src, c.Level)
	case CodecSnappy:
		return snappyCompress(dst, src)
	case CodecLZ4:
		return lz4Compress(dst, src, c.Level)
	case CodecZstd:
		enc, err := zstdEncoderAt(c.Level)
		if err != nil {
			return dst, fmt.Errorf("zstd: %w", err)
		}
		return enc.EncodeAll(src, dst), nil
	}
	return dst, fmt.Errorf("%v: %w", c.Codec, ErrUnknownCodec)
}

// snappyCompress encodes straight into dst's spare capacity.
func snappyCompress(dst, src []byte) ([]byte, error) {
	n := snappy.MaxEncodedLen(len(src))
	if n < 0 {
		return dst, fmt.Errorf("snappy: %d bytes is over the block limit: %w", len(src), ErrInvalidRecord)
	}
	dst = slices.Grow(dst, n)
	out := snappy.Encode(dst[len(dst):len(dst)+n], src)
	return dst[:len(dst)+len(out)], nil
}

// gzipWriters pools writers per level: a gzip.Writer's level is fixed when
// it is made. Index 0 is gzip's default (-1), 1-9 the levels.
var gzipWriters [10]sync.Pool

func gzipCompress(dst, src []byte, level int) ([]byte, error) {
	if level != gzip.DefaultCompression && (level < gzip.BestSpeed || level > gzip.BestCompression) {
		return dst, fmt.Errorf("gzip: level %d: %w", level, ErrUnknownCodec)
	}
	pool := &gzipWriters[max(level, 0)]
	w := appendWriter{b: dst}
	zw, _ := pool.Get().(*gzip.Writer)
	if zw == nil {
		var err error
		if zw, err = gzip.NewWriterLevel(&w, level); err != nil {
			return dst, fmt.Errorf("gzip: %w", err)
		}
	} else {
		zw.Reset(&w)
	}
	defer pool.Put(zw)
	if _, err := zw.Write(src); err != nil {
		return dst, fmt.Errorf("gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return dst, fmt.Errorf("gzip: %w", err)
	}
	zw.Reset(nil)
	return w.b, nil
}

// lz4Writers pools writers per lz4Levels entry.
var lz4Writers [len(lz4Levels)]sync.Pool

// lz4Levels maps Kafka's compression.lz4.level to the library's levels.
// Index 0 is the fast compressor that producers use and AppendBatch
// writes; 1-9 are the high-compression levels of the same number. The
// library stops at 9, so Kafka's 10-17 compress as 9 does.
var lz4Levels = [...]lz4.CompressionLevel{lz4.Fast, lz4.Level1, lz4.Level2, lz4.Level3,
	lz4.Level4, lz4.Level5, lz4.Level6, lz4.Level7, lz4.Level8, lz4.Level9}

func lz4Compress(dst, src []byte, level int) ([]byte, error) {
	i := min(max(level, 0), len(lz4Levels)-1)
	pool := &lz4Writers[i]
	w := appendWriter{b: dst}
	zw, _ := pool.Get().(*lz4.Writer)
	if zw == nil {
		zw = lz4.NewWriter(&w)
		if err := zw.Apply(lz4.BlockSizeOption(lz4BlockSize), lz4.CompressionLevelOption(lz4Levels[i])); err != nil {
			return dst, fmt.Errorf("lz4: %w", err)
		}
	} else {
		zw.Reset(&w)
	}
	defer pool.Put(zw)
	if _, err := zw.Write(src); err != nil {
		return dst, fmt.Errorf("lz4: %w", err)
	}
	if err := zw.Close(); err != nil {
		return dst, fmt.Errorf("lz4: %w", err)
	}
	zw.Reset(nil)
	return w.b, nil
}

// zstdEncoders are shared, one per library level (zstd's 22 levels map
// onto its four): EncodeAll is safe for concurrent use. The 64 KiB window,
// as franz-go uses, keeps consumers' decode memory small; batches gain
// little from a larger one. Zero frames make an empty batch's payload a
// valid zstd frame rather than no bytes at all.
var zstdEncoders [zstd.SpeedBestCompression + 1]func() (*zstd.Encoder, error)

func init() {
	for level := range zstdEncoders {
		zstdEncoders[level] = sync.OnceValues(func() (*zstd.Encoder, error) {
			return zstd.NewWriter(nil, zstd.WithWindowSize(64<<10), zstd.WithZeroFrames(true),
				zstd.WithEncoderLevel(zstd.EncoderLevel(level)))
		})
	}
}

// zstdEncoderAt returns the encoder for a zstd level as Kafka spells it
// (compression.zstd.level: negative levels and 1-2 are the fastest, 3 the
// default).
func zstdEncoderAt(level int) (*zstd.Encoder, error) {
	return zstdEncoders[zstd.EncoderLevelFromZstd(level)]()
}
