package record

import (
	"bytes"
	"fmt"
	"testing"
)

// TestRecompressEveryCodecPair re-encodes a batch from every codec to every
// other and checks that only the codec bits, the length and the CRC change.
func TestRecompressEveryCodecPair(t *testing.T) {
	records := sampleRecords(64)
	for _, from := range allCodecs {
		for _, to := range allCodecs {
			t.Run(fmt.Sprintf("%v-to-%v", from, to), func(t *testing.T) {
				src := mustAppendBatch(t, testOptions(from), records)
				prefix := []byte("earlier batch")
				out, err := Recompress(append([]byte{}, prefix...), src, Compression{Codec: to, Level: defaultLevel(to)}, 1<<20)
				requireNoError(t, err)
				require(t, bytes.HasPrefix(out, prefix), "dst's earlier bytes were overwritten")
				out = out[len(prefix):]
				h, err := ValidateBatch(out)
				requireNoError(t, err)
				want, err := ParseHeader(src)
				requireNoError(t, err)
				require(t, h.Codec() == to, "codec %v, want %v", h.Codec(), to)
				if from == to {
					require(t, bytes.Equal(out, src), "a batch already in %v must be kept byte for byte", to)
				}
				// Everything but the fields the codec decides stays as sent.
				h.BatchLength, h.CRC, h.Attributes = want.BatchLength, want.CRC, want.Attributes&^attributeCodecMask|int16(from)
				require(t, h == want, "header %+v, want %+v", h, want)
				requireSameRecords(t, decodeAll(t, out, 1<<20), records, true)
			})
		}
	}
}

// TestRecompressLevels covers the ends of every level range Kafka accepts:
// each must produce a batch that decodes to the same records.
func TestRecompressLevels(t *testing.T) {
	records := payloadRecords(200, 100)
	src := mustAppendBatch(t, testOptions(CodecNone), records)
	for _, c := range []Compression{
		{CodecGzip, -1}, {CodecGzip, 1}, {CodecGzip, 9},
		{CodecLZ4, 1}, {CodecLZ4, 9}, {CodecLZ4, 17},
		{CodecZstd, -131072}, {CodecZstd, 1}, {CodecZstd, 3}, {CodecZstd, 7}, {CodecZstd, 22},
	} {
		t.Run(fmt.Sprintf("%v-%d", c.Codec, c.Level), func(t *testing.T) {
			out, err := Recompress(nil, src, c, 1<<20)
			requireNoError(t, err)
			require(t, len(out) < len(src), "%v level %d: %d bytes, not smaller than %d", c.Codec, c.Level, len(out), len(src))
			requireSameRecords(t, decodeAll(t, out, 1<<20), records, true)
		})
	}
	_, err := Recompress(nil, src, Compression{CodecGzip, 11}, 1<<20)
	require(t, err != nil, "gzip level 11 must be refused")
}

// TestRecompressKeepsLogAppendTime: the timestamp type bit survives, so a
// stamped batch is still read with the broker's time.
func TestRecompressKeepsLogAppendTime(t *testing.T) {
	opts := testOptions(CodecSnappy)
	opts.TimestampType = LogAppendTime
	src := mustAppendBatch(t, opts, sampleRecords(5))
	out, err := Recompress(nil, src, Compression{Codec: CodecZstd, Level: 3}, 1<<20)
	requireNoError(t, err)
	h, err := ValidateBatch(out)
	requireNoError(t, err)
	require(t, h.TimestampType() == LogAppendTime && h.Codec() == CodecZstd, "attributes %#x", h.Attributes)
}

// TestRecompressRefusesBadRecords: a batch whose records do not match its
// header must not be rewritten under a fresh CRC.
func TestRecompressRefusesBadRecords(t *testing.T) {
	good := mustAppendBatch(t, testOptions(CodecNone), sampleRecords(3))
	payload := good[HeaderSize:]
	for name, batch := range map[string][]byte{
		"count too high":   batchWithPayload(CodecNone, 4, payload),
		"count too low":    batchWithPayload(CodecNone, 2, payload),
		"corrupt gzip":     batchWithPayload(CodecGzip, 3, []byte("not gzip at all")),
		"bomb over bound":  mustAppendBatch(t, testOptions(CodecZstd), payloadRecords(2000, 1000)),
		"unknown codec id": batchWithPayload(Codec(6), 3, payload),
	} {
		t.Run(name, func(t *testing.T) {
			out, err := Recompress([]byte("x"), batch, Compression{Codec: CodecLZ4, Level: 9}, 64<<10)
			require(t, err != nil, "recompressed a bad batch")
			require(t, string(out) == "x", "a failed recompress must leave dst as it was, got %d bytes", len(out))
		})
	}
}
