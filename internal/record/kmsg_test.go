package record

import (
	"bytes"
	stdgzip "compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kmsgRecords encodes records the way franz-go's kmsg does, with the length
// prefix a producer computes.
func kmsgRecords(records []Record) []byte {
	var out []byte
	for i, r := range records {
		k := kmsg.Record{
			Attributes: r.Attributes, TimestampDelta64: r.TimestampDelta, OffsetDelta: int32(i),
			Key: r.Key, Value: r.Value,
		}
		for _, h := range r.Headers {
			k.Headers = append(k.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		k.Length = int32(len(k.AppendTo(nil)) - 1) // a zero Length is one varint byte
		out = k.AppendTo(out)
	}
	return out
}

// kmsgBatch wraps a records payload in a kmsg.RecordBatch and sets its CRC as
// a producer does.
func kmsgBatch(opts BatchOptions, count, lastOffsetDelta int32, maxTimestamp int64, payload []byte) []byte {
	attributes := int16(opts.Codec)
	if opts.TimestampType == LogAppendTime {
		attributes |= attributeLogAppendTime
	}
	if opts.Transactional {
		attributes |= attributeTransactional
	}
	if opts.Control {
		attributes |= attributeControl
	}
	kb := kmsg.RecordBatch{
		FirstOffset: opts.BaseOffset, Length: int32(HeaderSize - logOverhead + len(payload)),
		PartitionLeaderEpoch: opts.PartitionLeaderEpoch, Magic: 2, Attributes: attributes,
		LastOffsetDelta: lastOffsetDelta, FirstTimestamp: opts.FirstTimestamp, MaxTimestamp: maxTimestamp,
		ProducerID: opts.ProducerID, ProducerEpoch: opts.ProducerEpoch, FirstSequence: opts.BaseSequence,
		NumRecords: count, Records: payload,
	}
	b := kb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func TestBatchMatchesKmsgByteForByte(t *testing.T) {
	records := sampleRecords(40)
	for _, opts := range []BatchOptions{
		testOptions(CodecNone),
		{BaseOffset: 0, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, PartitionLeaderEpoch: -1, FirstTimestamp: -1},
		{BaseOffset: 1 << 50, ProducerID: 1 << 40, ProducerEpoch: 32767, BaseSequence: 1<<31 - 1, Transactional: true, TimestampType: LogAppendTime},
	} {
		ours := mustAppendBatch(t, opts, records)
		theirs := kmsgBatch(opts, 40, 39, opts.FirstTimestamp+1<<40, kmsgRecords(records))
		require(t, bytes.Equal(ours, theirs), "batch differs from kmsg's (opts %+v):\nours   %x\ntheirs %x", opts, ours[:HeaderSize], theirs[:HeaderSize])

		var kb kmsg.RecordBatch
		requireNoError(t, kb.ReadFrom(ours))
		h, err := ValidateBatch(theirs)
		requireNoError(t, err)
		require(t, h.BaseOffset == kb.FirstOffset && h.BatchLength == kb.Length && h.PartitionLeaderEpoch == kb.PartitionLeaderEpoch &&
			h.Magic == kb.Magic && h.CRC == uint32(kb.CRC) && h.Attributes == kb.Attributes && h.LastOffsetDelta == kb.LastOffsetDelta &&
			h.FirstTimestamp == kb.FirstTimestamp && h.MaxTimestamp == kb.MaxTimestamp && h.ProducerID == kb.ProducerID &&
			h.ProducerEpoch == kb.ProducerEpoch && h.BaseSequence == kb.FirstSequence && h.RecordCount == kb.NumRecords,
			"header %+v, kmsg %+v", h, kb)
	}
}

// TestBatchDecodesKmsgCompressed feeds batches framed by kmsg and compressed
// by other encoders than ours (stdlib gzip, lz4's default 4 MiB blocks, zstd
// streaming frames without a content size, xerial snappy).
func TestBatchDecodesKmsgCompressed(t *testing.T) {
	records := sampleRecords(300)
	raw := kmsgRecords(records)
	payloads := map[Codec][]byte{
		CodecGzip:   stdGzip(t, raw),
		CodecSnappy: xerialFrame(raw, 1000),
		CodecLZ4:    lz4FrameOf(t, raw, lz4.Block4Mb),
		CodecZstd:   zstdStream(t, raw),
	}
	for codec, payload := range payloads {
		opts := testOptions(codec)
		batch := kmsgBatch(opts, 300, 299, opts.FirstTimestamp+1<<40, payload)
		h, err := ValidateBatch(batch)
		requireNoError(t, err)
		require(t, h.Codec() == codec && h.RecordCount == 300, "%v: %+v", codec, h)
		requireSameRecords(t, decodeAll(t, batch, 1<<20), records, true)
	}
}

func stdGzip(t testing.TB, raw []byte) []byte {
	var buf bytes.Buffer
	zw, err := stdgzip.NewWriterLevel(&buf, stdgzip.BestCompression)
	requireNoError(t, err)
	_, err = zw.Write(raw)
	requireNoError(t, err)
	requireNoError(t, zw.Close())
	return buf.Bytes()
}

func lz4FrameOf(t testing.TB, raw []byte, blockSize lz4.BlockSize) []byte {
	var buf bytes.Buffer
	zw := lz4.NewWriter(&buf)
	requireNoError(t, zw.Apply(lz4.BlockSizeOption(blockSize)))
	_, err := zw.Write(raw)
	requireNoError(t, err)
	requireNoError(t, zw.Close())
	return buf.Bytes()
}

func zstdStream(t testing.TB, raw []byte) []byte {
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	requireNoError(t, err)
	_, err = zw.Write(raw)
	requireNoError(t, err)
	requireNoError(t, zw.Close())
	return buf.Bytes()
}

// xerialFrame builds the snappy-java stream format by hand from its spec:
// magic "\x82SNAPPY\x00", int32 version 1, int32 compatible version 1, then
// chunks of int32 big-endian length + raw snappy block.
func xerialFrame(raw []byte, chunkSize int) []byte {
	out := append([]byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}, 0, 0, 0, 1, 0, 0, 0, 1)
	for len(raw) > 0 {
		n := min(chunkSize, len(raw))
		block := snappy.Encode(nil, raw[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
		raw = raw[n:]
	}
	return out
}
