package record

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
)

func testOptions(codec Codec) BatchOptions {
	return BatchOptions{
		BaseOffset: 1000, Codec: codec, FirstTimestamp: 1_700_000_000_000,
		ProducerID: 42, ProducerEpoch: 3, BaseSequence: 17, PartitionLeaderEpoch: 9,
	}
}

func TestBatchRoundTripEveryCodec(t *testing.T) {
	records := sampleRecords(64)
	for _, codec := range allCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			batch := mustAppendBatch(t, testOptions(codec), records)
			h, err := ValidateBatch(batch)
			requireNoError(t, err)
			require(t, h.Codec() == codec, "codec %v, want %v", h.Codec(), codec)
			require(t, h.BaseOffset == 1000 && h.LastOffsetDelta == 63 && h.RecordCount == 64, "offsets %+v", h)
			require(t, h.LastOffset() == 1063 && h.NextOffset() == 1064, "last %d next %d", h.LastOffset(), h.NextOffset())
			require(t, h.Size() == len(batch), "size %d, len %d", h.Size(), len(batch))
			require(t, h.MaxTimestamp == h.FirstTimestamp+1<<40, "max timestamp %d", h.MaxTimestamp)
			require(t, h.ProducerID == 42 && h.ProducerEpoch == 3 && h.BaseSequence == 17 && h.PartitionLeaderEpoch == 9, "producer fields %+v", h)
			require(t, h.TimestampType() == CreateTime && !h.IsTransactional() && !h.IsControl(), "attributes %#x", h.Attributes)
			requireSameRecords(t, decodeAll(t, batch, 1<<20), records, true)
		})
	}
}

func TestBatchAttributes(t *testing.T) {
	opts := testOptions(CodecLZ4)
	opts.Transactional, opts.Control, opts.TimestampType = true, true, LogAppendTime
	h, err := ValidateBatch(mustAppendBatch(t, opts, sampleRecords(1)))
	requireNoError(t, err)
	require(t, h.Attributes == 0x3b, "attributes %#x, want 0x3b", h.Attributes)
	require(t, h.IsTransactional() && h.IsControl() && h.TimestampType() == LogAppendTime && h.Codec() == CodecLZ4, "%+v", h)
	require(t, CodecZstd.String() == "zstd" && Codec(6).String() == "codec(6)" && LogAppendTime.String() == "LogAppendTime", "String")
}

func TestBatchEmptyAndPreservedDeltas(t *testing.T) {
	opts := testOptions(CodecNone)
	opts.LastOffsetDelta = 9
	empty := mustAppendBatch(t, opts, nil)
	h, err := ValidateBatch(empty)
	requireNoError(t, err)
	require(t, h.RecordCount == 0 && h.LastOffsetDelta == 9 && h.MaxTimestamp == h.FirstTimestamp, "%+v", h)
	require(t, len(decodeAll(t, empty, 1)) == 0, "empty batch has records")

	for _, codec := range allCodecs {
		opts := testOptions(codec)
		opts.PreserveOffsetDeltas, opts.LastOffsetDelta = true, 20
		kept := []Record{{OffsetDelta: 2, Value: []byte("a")}, {OffsetDelta: 5, Key: []byte("b")}, {OffsetDelta: 11}}
		batch := mustAppendBatch(t, opts, kept)
		h, err := ValidateBatch(batch)
		requireNoError(t, err)
		require(t, h.RecordCount == 3 && h.LastOffsetDelta == 20, "%v: %+v", codec, h)
		requireSameRecords(t, decodeAll(t, batch, 1<<20), kept, false)
	}

	opts.PreserveOffsetDeltas = true
	_, err = AppendBatch(nil, opts, []Record{{OffsetDelta: 3}, {OffsetDelta: 3}})
	requireErrorIs(t, err, ErrInvalidRecord)
	_, err = AppendBatch(nil, BatchOptions{Codec: 5}, nil)
	requireErrorIs(t, err, ErrUnknownCodec)
	_, err = AppendBatch(nil, BatchOptions{TimestampType: 2}, nil)
	requireErrorIs(t, err, ErrInvalidRecord)
}

func TestBatchCRCMismatch(t *testing.T) {
	batch := mustAppendBatch(t, testOptions(CodecNone), sampleRecords(4))
	for i := crcStart; i < len(batch); i++ {
		batch[i] ^= 0x01
		_, err := ValidateBatch(batch)
		batch[i] ^= 0x01
		requireErrorIs(t, err, ErrCRCMismatch)
	}
	// The CRC field itself.
	batch[offsetCRC+2] ^= 0x80
	_, err := ValidateBatch(batch)
	requireErrorIs(t, err, ErrCRCMismatch)
	batch[offsetCRC+2] ^= 0x80
	_, err = ValidateBatch(batch)
	requireNoError(t, err)
}

func TestBatchInPlaceFieldsKeepCRC(t *testing.T) {
	for _, codec := range allCodecs {
		batch := mustAppendBatch(t, testOptions(codec), sampleRecords(8))
		crc := binary.BigEndian.Uint32(batch[offsetCRC:])
		SetBaseOffset(batch, 1<<40+7)
		SetPartitionLeaderEpoch(batch, 12345)
		h, err := ValidateBatch(batch)
		requireNoError(t, err)
		require(t, h.BaseOffset == 1<<40+7 && h.PartitionLeaderEpoch == 12345 && h.CRC == crc, "%v: %+v", codec, h)
		require(t, h.LastOffset() == 1<<40+7+7, "last offset %d", h.LastOffset())
	}
}

func TestBatchSetLogAppendTime(t *testing.T) {
	for _, codec := range allCodecs {
		opts := testOptions(codec)
		opts.Transactional = true
		records := sampleRecords(5)
		batch := mustAppendBatch(t, opts, records)
		before, err := ValidateBatch(batch)
		requireNoError(t, err)

		const appendTime = 1_800_000_000_123
		SetLogAppendTime(batch, appendTime)
		h, err := ValidateBatch(batch)
		requireNoError(t, err)
		require(t, h.TimestampType() == LogAppendTime && h.MaxTimestamp == appendTime, "%v: %+v", codec, h)
		// As Kafka's in-place path: FirstTimestamp and the other attribute
		// bits stay, the CRC changes.
		require(t, h.FirstTimestamp == before.FirstTimestamp && h.IsTransactional() && h.Codec() == codec, "%v: %+v", codec, h)
		require(t, h.CRC != before.CRC, "CRC unchanged")
		err = Records(batch, 1<<20, func(r *Record) error {
			require(t, h.Timestamp(r) == appendTime, "record timestamp %d", h.Timestamp(r))
			return nil
		})
		requireNoError(t, err)

		SetLogAppendTime(batch, appendTime) // idempotent
		again, err := ValidateBatch(batch)
		requireNoError(t, err)
		require(t, again == h, "second SetLogAppendTime changed the header")
	}
}

func TestBatchParseHeaderErrors(t *testing.T) {
	valid := mustAppendBatch(t, testOptions(CodecNone), sampleRecords(2))
	cases := []struct {
		name   string
		mutate func(b []byte) []byte
		want   error
	}{
		{"short", func(b []byte) []byte { return b[:HeaderSize-1] }, ErrTruncated},
		{"magic 1", func(b []byte) []byte { b[offsetMagic] = 1; return b }, ErrUnsupportedMagic},
		{"magic 3", func(b []byte) []byte { b[offsetMagic] = 3; return b }, ErrUnsupportedMagic},
		{"length below header", func(b []byte) []byte { putInt32(b, offsetBatchLength, HeaderSize-logOverhead-1); return b }, ErrCorrupt},
		{"negative length", func(b []byte) []byte { putInt32(b, offsetBatchLength, -5); return b }, ErrCorrupt},
		{"length over int32", func(b []byte) []byte { putInt32(b, offsetBatchLength, maxBatchLength+1); return b }, ErrCorrupt},
		{"negative last offset delta", func(b []byte) []byte { putInt32(b, offsetLastOffsetDelta, -1); return b }, ErrCorrupt},
		{"negative count", func(b []byte) []byte { putInt32(b, offsetRecordCount, -1); return b }, ErrCorrupt},
	}
	for _, c := range cases {
		b := c.mutate(append([]byte{}, valid...))
		_, err := ParseHeader(b)
		requireErrorIs(t, err, c.want)
		_, err = ValidateBatch(b)
		require(t, err != nil, "%s: ValidateBatch accepted", c.name)
		_, _, _, err = NextBatch(b)
		requireErrorIs(t, err, c.want)
	}
}

func TestBatchValidateErrors(t *testing.T) {
	valid := mustAppendBatch(t, testOptions(CodecNone), sampleRecords(2))
	withCRC := func(b []byte) []byte { setCRC(b); return b }
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"trailing byte", append(append([]byte{}, valid...), 0), ErrCorrupt},
		{"missing byte", append([]byte{}, valid[:len(valid)-1]...), ErrTruncated},
		{"more records than offsets", withCRC(func() []byte {
			b := append([]byte{}, valid...)
			putInt32(b, offsetRecordCount, 3)
			return b
		}()), ErrCorrupt},
		{"codec 7", withCRC(func() []byte {
			b := append([]byte{}, valid...)
			b[offsetAttributes+1] |= 7
			return b
		}()), ErrUnknownCodec},
	}
	for _, c := range cases {
		_, err := ValidateBatch(c.b)
		requireErrorIs(t, err, c.want)
	}
	b := withCRC(append([]byte{}, valid...))
	b[offsetAttributes+1] |= 6
	requireErrorIs(t, Records(withCRC(b), 1<<20, func(*Record) error { return nil }), ErrUnknownCodec)
}

func putInt32(b []byte, at int, v int32) { binary.BigEndian.PutUint32(b[at:], uint32(v)) }

func TestBatchNextBatchSplits(t *testing.T) {
	var all []byte
	var sizes []int
	for i, codec := range allCodecs {
		opts := testOptions(codec)
		opts.BaseOffset = int64(i * 100)
		before := len(all)
		var err error
		all, err = AppendBatch(all, opts, sampleRecords(i+1))
		requireNoError(t, err)
		sizes = append(sizes, len(all)-before)
	}
	rest := all
	for i, codec := range allCodecs {
		batch, next, h, err := NextBatch(rest)
		requireNoError(t, err)
		require(t, len(batch) == sizes[i] && h.Codec() == codec && h.BaseOffset == int64(i*100), "batch %d: %d bytes, %+v", i, len(batch), h)
		_, err = ValidateBatch(batch)
		requireNoError(t, err)
		require(t, cap(batch) == len(batch), "batch %d: capacity reaches into the next batch", i)
		rest = next
	}
	require(t, len(rest) == 0, "%d bytes left", len(rest))

	// Every cut inside the last batch is a torn write.
	last := len(all) - sizes[len(sizes)-1]
	for cut := last; cut < len(all); cut++ {
		tail := all[last:cut]
		_, rest, _, err := NextBatch(tail)
		requireErrorIs(t, err, ErrTruncated)
		require(t, len(rest) == len(tail), "rest must be the input on error")
	}
	_, _, _, err := NextBatch(nil)
	requireErrorIs(t, err, ErrTruncated)
}

func TestBatchCheckClientOrigin(t *testing.T) {
	valid := Header{RecordCount: 3, LastOffsetDelta: 2, ProducerID: 5, BaseSequence: 0}
	requireNoError(t, valid.CheckClientOrigin())
	noProducer := Header{RecordCount: 1, ProducerID: -1, BaseSequence: -1}
	requireNoError(t, noProducer.CheckClientOrigin())
	for _, h := range []Header{
		{RecordCount: 0, LastOffsetDelta: 0, ProducerID: -1},
		{RecordCount: 2, LastOffsetDelta: 2, ProducerID: -1},
		{RecordCount: 1, ProducerID: -1, Attributes: attributeControl},
		{RecordCount: 1, ProducerID: 7, BaseSequence: -1},
	} {
		requireErrorIs(t, h.CheckClientOrigin(), ErrInvalidRecord)
	}
}

func TestBatchValidateDoesNotAllocate(t *testing.T) {
	batch := mustAppendBatch(t, testOptions(CodecNone), payloadRecords(100, 100))
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ValidateBatch(batch); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := NextBatch(batch); err != nil {
			t.Fatal(err)
		}
	})
	require(t, allocs == 0, "ValidateBatch+NextBatch allocate %v times", allocs)
	require(t, crc32.Checksum(batch[crcStart:], castagnoli) == binary.BigEndian.Uint32(batch[offsetCRC:]), "crc")
}
