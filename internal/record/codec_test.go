package record

import (
	"bytes"
	stdgzip "compress/gzip"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

const (
	bombSize     = 100 << 20
	bombMaxBytes = 1 << 20
	// bombAllocBudget is what decoding a bomb may allocate with a 1 MiB
	// bound: the doubling output buffer (about 2 MiB) plus codec state.
	bombAllocBudget = 4 << 20
)

// bombPayloads compresses 100 MiB of zeros with every codec and framing a
// hostile producer could pick, streaming so the test itself stays small.
func bombPayloads(t *testing.T) map[string]struct {
	codec   Codec
	payload []byte
} {
	zeros := make([]byte, 1<<20)
	stream := func(w interface {
		Write([]byte) (int, error)
		Close() error
	}) {
		for range bombSize / len(zeros) {
			_, err := w.Write(zeros)
			requireNoError(t, err)
		}
		requireNoError(t, w.Close())
	}
	var gz, lzSmall, lzBig, zsFCS, zsStream bytes.Buffer
	gw, _ := stdgzip.NewWriterLevel(&gz, stdgzip.BestCompression)
	stream(gw)
	for _, c := range []struct {
		buf  *bytes.Buffer
		size lz4.BlockSize
	}{{&lzSmall, lz4.Block64Kb}, {&lzBig, lz4.Block4Mb}} {
		lw := lz4.NewWriter(c.buf)
		requireNoError(t, lw.Apply(lz4.BlockSizeOption(c.size)))
		stream(lw)
	}
	zw, err := zstd.NewWriter(&zsStream)
	requireNoError(t, err)
	stream(zw)
	zw.ResetContentSize(&zsFCS, bombSize) // declares its size honestly
	stream(zw)

	var raw []byte
	xerial := append([]byte{}, xerialMagic...)
	xerial = append(xerial, 0, 0, 0, 1, 0, 0, 0, 1)
	block := snappy.Encode(nil, zeros[:64<<10])
	for range bombSize / (64 << 10) {
		xerial = binary.BigEndian.AppendUint32(xerial, uint32(len(block)))
		xerial = append(xerial, block...)
	}
	raw = snappy.Encode(nil, make([]byte, bombSize))
	return map[string]struct {
		codec   Codec
		payload []byte
	}{
		"gzip":             {CodecGzip, gz.Bytes()},
		"lz4-64k":          {CodecLZ4, lzSmall.Bytes()},
		"lz4-4m":           {CodecLZ4, lzBig.Bytes()},
		"zstd-fcs":         {CodecZstd, zsFCS.Bytes()},
		"zstd-no-fcs":      {CodecZstd, zsStream.Bytes()},
		"snappy-raw":       {CodecSnappy, raw},
		"snappy-xerial":    {CodecSnappy, xerial},
		"snappy-xerial-1c": {CodecSnappy, append(append(append([]byte{}, xerial[:16]...), binary.BigEndian.AppendUint32(nil, uint32(len(raw)))...), raw...)},
	}
}

func TestRecordDecompressionBombs(t *testing.T) {
	for name, bomb := range bombPayloads(t) {
		t.Run(name, func(t *testing.T) {
			batch := batchWithPayload(bomb.codec, 1, bomb.payload)
			_, err := ValidateBatch(batch)
			requireNoError(t, err)
			decode := func() error {
				return Records(batch, bombMaxBytes, func(*Record) error { return nil })
			}
			requireErrorIs(t, decode(), ErrDecompressedTooLarge) // warms pools and decoders

			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err = decode()
			runtime.ReadMemStats(&after)
			requireErrorIs(t, err, ErrDecompressedTooLarge)
			allocated := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d-byte payload inflating to %d MiB: allocated %d KiB with maxBytes %d KiB",
				len(bomb.payload), bombSize>>20, allocated>>10, bombMaxBytes>>10)
			require(t, allocated < bombAllocBudget, "allocated %d bytes, budget %d", allocated, bombAllocBudget)
		})
	}
}

// TestRecordDecompressionLimitIsExact: a batch inflating to exactly maxBytes
// decodes; one byte less of room fails.
func TestRecordDecompressionLimitIsExact(t *testing.T) {
	records := payloadRecords(200, 300)
	size := len(kmsgRecords(records))
	for _, codec := range allCodecs[1:] {
		batch := mustAppendBatch(t, testOptions(codec), records)
		requireSameRecords(t, decodeAll(t, batch, size), records, true)
		err := Records(batch, size-1, func(*Record) error { return nil })
		requireErrorIs(t, err, ErrDecompressedTooLarge)
		err = Records(batch, 0, func(*Record) error { return nil })
		requireErrorIs(t, err, ErrDecompressedTooLarge)
	}
	// The snappy framings and zstd without a declared size, by other encoders.
	raw := kmsgRecords(records)
	for name, payload := range map[string][]byte{
		"xerial": xerialFrame(raw, 32<<10), "zstd-no-fcs": zstdStream(t, raw), "gzip-std": stdGzip(t, raw),
	} {
		codec := map[string]Codec{"xerial": CodecSnappy, "zstd-no-fcs": CodecZstd, "gzip-std": CodecGzip}[name]
		batch := batchWithPayload(codec, 200, payload)
		requireSameRecords(t, decodeAll(t, batch, size), records, true)
		requireErrorIs(t, Records(batch, size-1, func(*Record) error { return nil }), ErrDecompressedTooLarge)
	}
}

func TestRecordXerialSnappy(t *testing.T) {
	records := sampleRecords(500)
	raw := kmsgRecords(records)
	for _, chunk := range []int{1, 100, 32 << 10, len(raw)} {
		batch := batchWithPayload(CodecSnappy, 500, xerialFrame(raw, chunk))
		requireSameRecords(t, decodeAll(t, batch, 1<<20), records, true)
	}
	// An empty xerial stream holds no records.
	requireErrorIs(t, Records(batchWithPayload(CodecSnappy, 1, xerialFrame(nil, 1)), 1<<20, func(*Record) error { return nil }), ErrInvalidRecord)

	good := xerialFrame(raw, 4096)
	for name, payload := range map[string][]byte{
		"cut in chunk length": good[:xerialHeaderSize+2],
		"cut in chunk":        good[:len(good)-1],
		"chunk length huge":   append(append([]byte{}, good[:xerialHeaderSize]...), 0xff, 0xff, 0xff, 0xff, 1, 2, 3),
		"chunk not snappy":    append(append([]byte{}, good[:xerialHeaderSize]...), 0, 0, 0, 3, 0xff, 0xff, 0xff),
		"raw not snappy":      {0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	} {
		err := Records(batchWithPayload(CodecSnappy, 500, payload), 1<<20, func(*Record) error { return nil })
		require(t, errors.Is(err, ErrCorrupt), "%s: error %v, want ErrCorrupt", name, err)
	}
}

func TestRecordGarbageCompressedPayloads(t *testing.T) {
	garbage := [][]byte{nil, {0}, bytes.Repeat([]byte{0xa5}, 100), []byte("\x1f\x8b\x08\x00garbage"), {0x04, 0x22, 0x4d, 0x18, 0x60, 0x70, 0x73}, {0x28, 0xb5, 0x2f, 0xfd, 0, 0x58}}
	for _, codec := range allCodecs[1:] {
		for _, payload := range garbage {
			err := Records(batchWithPayload(codec, 1, payload), 1<<20, func(*Record) error { return nil })
			require(t, errors.Is(err, ErrCorrupt) || errors.Is(err, ErrInvalidRecord), "%v %x: error %v", codec, payload, err)
		}
	}
}
