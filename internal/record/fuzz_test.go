package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// fuzzMaxBytes keeps a fuzzed bomb cheap while leaving room for real batches.
const fuzzMaxBytes = 1 << 20

func addBatchSeeds(f *testing.F) {
	var all []byte
	for _, codec := range allCodecs {
		for _, records := range [][]Record{nil, sampleRecords(1), sampleRecords(7)} {
			opts := testOptions(codec)
			opts.LastOffsetDelta = int32(len(records))
			b, err := AppendBatch(nil, opts, records)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
			all = append(all, b...)
		}
	}
	f.Add(all)
	f.Add(batchWithPayload(CodecSnappy, 7, xerialFrame(kmsgRecords(sampleRecords(7)), 64)))
	f.Add(batchWithPayload(CodecNone, 1, rawRecord{0}.varint(0).varint(0).varint(-1).varint(-1).varint(1).varint(1).bytes('h').varint(-1).framed()))
	f.Add([]byte{})
}

// FuzzParseBatch feeds arbitrary bytes to every entry point that reads them.
// Nothing may panic; ValidateBatch may only accept a matching CRC; NextBatch
// must partition its input; what Records decodes must survive a re-encode.
func FuzzParseBatch(f *testing.F) {
	addBatchSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if h, err := ValidateBatch(data); err == nil {
			sum := crc32.Checksum(data[crcStart:], crc32.MakeTable(crc32.Castagnoli))
			if sum != binary.BigEndian.Uint32(data[offsetCRC:]) || h.CRC != sum || h.Size() != len(data) {
				t.Fatalf("ValidateBatch accepted crc %08x, computed %08x, size %d of %d", h.CRC, sum, h.Size(), len(data))
			}
		}
		rest := data
		for len(rest) > 0 {
			batch, next, h, err := NextBatch(rest)
			if err != nil {
				if len(next) != len(rest) || batch != nil {
					t.Fatalf("NextBatch error %v consumed input", err)
				}
				break
			}
			if len(batch) != h.Size() || len(batch)+len(next) != len(rest) {
				t.Fatalf("NextBatch split %d+%d of %d, header size %d", len(batch), len(next), len(rest), h.Size())
			}
			checkReencode(t, batch, &h)
			rest = next
		}
	})
}

// checkReencode decodes batch and, if that works, encodes the records again
// and decodes them once more: both decodings must agree.
func checkReencode(t *testing.T, batch []byte, h *Header) {
	var records []Record
	increasing := true
	err := Records(batch, fuzzMaxBytes, func(r *Record) error {
		if len(records) > 0 && r.OffsetDelta <= records[len(records)-1].OffsetDelta || r.OffsetDelta < 0 {
			increasing = false
		}
		records = append(records, copyRecord(r))
		return nil
	})
	if err != nil || !increasing || int64(len(records)) != int64(h.RecordCount) {
		return
	}
	opts := BatchOptions{BaseOffset: h.BaseOffset, Codec: CodecNone, FirstTimestamp: h.FirstTimestamp, ProducerID: h.ProducerID,
		PreserveOffsetDeltas: true, LastOffsetDelta: h.LastOffsetDelta}
	again, err := AppendBatch(nil, opts, records)
	if err != nil {
		t.Fatalf("re-encoding decoded records: %v", err)
	}
	if _, err := ValidateBatch(again); err != nil {
		t.Fatalf("re-encoded batch invalid: %v", err)
	}
	requireSameRecords(t, decodeAll(t, again, fuzzMaxBytes), records, false)
}

// FuzzAppendBatchRoundTrip encodes fuzzer-chosen records with every codec and
// checks they decode to the same records.
func FuzzAppendBatchRoundTrip(f *testing.F) {
	f.Add([]byte("key"), []byte("value"), "header", uint8(3), uint8(1), int64(-5), false)
	f.Add([]byte{}, []byte(nil), "", uint8(0), uint8(4), int64(1<<62), true)
	f.Fuzz(func(t *testing.T, key, value []byte, headerKey string, n, codecByte uint8, timestampDelta int64, nullKey bool) {
		records := make([]Record, int(n%16))
		for i := range records {
			records[i] = Record{TimestampDelta: timestampDelta + int64(i), Key: key, Value: value[:len(value)*i/max(len(records), 1)]}
			if nullKey && i%2 == 0 {
				records[i].Key = nil
			}
			if i%3 == 0 {
				records[i].Headers = []RecordHeader{{Key: headerKey, Value: key}}
			}
		}
		codec := Codec(codecByte % 5)
		opts := BatchOptions{Codec: codec, FirstTimestamp: timestampDelta, ProducerID: -1}
		batch, err := AppendBatch(nil, opts, records)
		if err != nil {
			t.Fatal(err)
		}
		h, err := ValidateBatch(batch)
		if err != nil {
			t.Fatal(err)
		}
		if int(h.RecordCount) != len(records) {
			t.Fatalf("count %d, want %d", h.RecordCount, len(records))
		}
		requireSameRecords(t, decodeAll(t, batch, len(batch)*2+(16<<20)), records, true)
	})
}

// referenceDecompress decodes with the codec libraries' own readers, capped
// at 8 MiB so a fuzzed bomb cannot exhaust the fuzzer.
func referenceDecompress(codec Codec, payload []byte) ([]byte, error) {
	const refCap = 8 << 20
	switch codec {
	case CodecGzip:
		// klauspost's reader, as the stdlib's ignores reserved header bits
		// that RFC 1952 says must fail: this checks our bounding, not gzip.
		zr, err := gzip.NewReader(bytes.NewReader(payload))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(io.LimitReader(zr, refCap))
	case CodecLZ4:
		return io.ReadAll(io.LimitReader(lz4.NewReader(bytes.NewReader(payload)), refCap))
	case CodecZstd:
		dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(refCap), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		defer dec.Close()
		return dec.DecodeAll(payload, nil)
	case CodecSnappy:
		return xerial.Decode(payload)
	}
	return nil, errors.New("no reference")
}

// FuzzRecordDecompress compares decompress with the reference decoders at
// limits around the true size. Whatever the reference decodes within the
// limit we must decode identically (lz4 and snappy excepted, where we are
// stricter, resp. skip checksums, so only one direction holds), and past the
// limit we must refuse.
func FuzzRecordDecompress(f *testing.F) {
	raw := kmsgRecords(sampleRecords(30))
	for _, codec := range allCodecs[1:] {
		payload, err := compress(codec, nil, raw)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(codec), payload, int8(0))
	}
	f.Add(uint8(CodecSnappy), xerialFrame(raw, 100), int8(-1))
	f.Add(uint8(CodecGzip), stdGzip(f, raw), int8(1))
	f.Add(uint8(CodecZstd), zstdStream(f, raw), int8(-1))
	var buf bytes.Buffer
	zw := lz4.NewWriter(&buf)
	_ = zw.Apply(lz4.ChecksumOption(false), lz4.BlockSizeOption(lz4.Block64Kb))
	_, _ = zw.Write(raw)
	_ = zw.Close()
	f.Add(uint8(CodecLZ4), buf.Bytes(), int8(0))
	f.Fuzz(func(t *testing.T, codecByte uint8, payload []byte, slack int8) {
		codec := Codec(codecByte%4 + 1)
		ref, refErr := referenceDecompress(codec, payload)
		if refErr != nil || len(ref) >= 8<<20 {
			ref, refErr = nil, errors.New("reference failed")
		}
		limit := max(len(ref)+int(slack), 0)
		if refErr != nil {
			limit = 1 << 20
		}
		got, err := decompress(codec, payload, nil, limit)
		if err == nil && len(got) > limit {
			t.Fatalf("%v: decoded %d bytes past the %d limit", codec, len(got), limit)
		}
		oursImpliesRef := codec != CodecLZ4
		refImpliesOurs := codec != CodecSnappy
		switch {
		case err == nil && oursImpliesRef && (refErr != nil || !bytes.Equal(got, ref)):
			t.Fatalf("%v: we decoded %d bytes, reference %d bytes, error %v", codec, len(got), len(ref), refErr)
		case refErr == nil && refImpliesOurs && len(ref) <= limit && (err != nil || !bytes.Equal(got, ref)):
			t.Fatalf("%v: reference decoded %d bytes within %d, we %d bytes, error %v", codec, len(ref), limit, len(got), err)
		case refErr == nil && len(ref) > limit && err == nil:
			t.Fatalf("%v: %d bytes accepted with limit %d", codec, len(ref), limit)
		}
	})
}
