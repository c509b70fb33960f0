package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/pierrec/lz4/v4"
)

// lz4FrameHeader writes a frame magic and descriptor by hand; the header
// checksum byte is left 0, as unlz4 does not verify it.
func lz4FrameHeader(flags, bd byte, contentSize int64) []byte {
	b := binary.LittleEndian.AppendUint32(nil, lz4FrameMagic)
	b = append(b, flags, bd)
	if contentSize >= 0 {
		b = binary.LittleEndian.AppendUint64(b, uint64(contentSize))
	}
	return append(b, 0)
}

func lz4AppendBlock(b, block []byte, stored bool) []byte {
	word := uint32(len(block))
	if stored {
		word |= lz4BlockUncompressed
	}
	b = binary.LittleEndian.AppendUint32(b, word)
	return append(b, block...)
}

func TestRecordLZ4MatchesReferenceReader(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 300<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	text := kmsgRecords(payloadRecords(3000, 100))
	for _, data := range [][]byte{nil, []byte("x"), random, text, append(append([]byte{}, text...), random...)} {
		for _, size := range []lz4.BlockSize{lz4.Block64Kb, lz4.Block256Kb, lz4.Block1Mb, lz4.Block4Mb} {
			for _, checksums := range []bool{false, true} {
				var buf bytes.Buffer
				zw := lz4.NewWriter(&buf)
				requireNoError(t, zw.Apply(lz4.BlockSizeOption(size), lz4.ChecksumOption(checksums), lz4.SizeOption(uint64(len(data)))))
				_, err := zw.Write(data)
				requireNoError(t, err)
				requireNoError(t, zw.Close())
				frame := buf.Bytes()
				got, err := unlz4(frame, nil, len(data))
				requireNoError(t, err)
				require(t, bytes.Equal(got, data), "block size %v: decoded %d bytes, want %d", size, len(got), len(data))
				if len(data) > 0 {
					_, err = unlz4(frame, nil, len(data)-1)
					requireErrorIs(t, err, ErrDecompressedTooLarge)
				}
				// Two frames back to back, with a skippable frame between.
				skippable := binary.LittleEndian.AppendUint32(nil, lz4SkippableMagic|3)
				skippable = append(binary.LittleEndian.AppendUint32(skippable, 2), 'h', 'i')
				two := append(append(append([]byte{}, frame...), skippable...), frame...)
				got, err = unlz4(two, nil, 2*len(data))
				requireNoError(t, err)
				require(t, bytes.Equal(got, append(append([]byte{}, data...), data...)), "concatenated frames differ")
			}
		}
	}
}

// TestRecordLZ4LinkedBlocks covers frames whose blocks refer back into the
// previous block, which pierrec's writer never produces but the format (and
// the reference lz4 library's default) allows.
func TestRecordLZ4LinkedBlocks(t *testing.T) {
	first := bytes.Repeat([]byte("0123456789abcdef"), 4)
	// One sequence: no literals, a 19-byte match 64 bytes back (the start of
	// the first block); then the closing literals.
	second := []byte{0x0f, 64, 0, 0, 0x50, 'X', 'X', 'X', 'X', 'X'}
	want := append(append(append([]byte{}, first...), first[:19]...), "XXXXX"...)

	linked := lz4FrameHeader(0x40|lz4FlagContentSize, 0x40, int64(len(want)))
	linked = lz4AppendBlock(linked, first, true)
	linked = lz4AppendBlock(linked, second, false)
	linked = binary.LittleEndian.AppendUint32(linked, 0)
	got, err := unlz4(linked, nil, 1<<20)
	requireNoError(t, err)
	require(t, bytes.Equal(got, want), "linked frame decoded to %q", got)
	ref, err := io.ReadAll(lz4.NewReader(bytes.NewReader(linked)))
	if err == nil {
		require(t, bytes.Equal(ref, want), "reference reader disagrees: %q", ref)
	}

	independent := append([]byte{}, linked...)
	independent[4] |= lz4FlagIndependent
	_, err = unlz4(independent, nil, 1<<20)
	require(t, err != nil && !errors.Is(err, ErrDecompressedTooLarge), "independent block reached into the previous one: %v", err)
}

func TestRecordLZ4MalformedFrames(t *testing.T) {
	block := []byte{0x50, 'h', 'e', 'l', 'l', 'o'}
	good := lz4AppendBlock(lz4FrameHeader(0x60, 0x40, -1), block, false)
	good = binary.LittleEndian.AppendUint32(good, 0)
	out, err := unlz4(good, nil, 100)
	requireNoError(t, err)
	require(t, string(out) == "hello", "decoded %q", out)

	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte{}, good...)) }
	for name, frame := range map[string][]byte{
		"bad magic":        mutate(func(b []byte) []byte { b[0] = 0; return b }),
		"version 2":        mutate(func(b []byte) []byte { b[4] = 0xa0; return b }),
		"reserved flag":    mutate(func(b []byte) []byte { b[4] |= lz4FlagReserved; return b }),
		"dictionary":       mutate(func(b []byte) []byte { b[4] |= lz4FlagDictionaryID; return b }),
		"block size 3":     mutate(func(b []byte) []byte { b[5] = 0x30; return b }),
		"no end mark":      good[:len(good)-4],
		"cut in block":     good[:len(good)-6],
		"content checksum": mutate(func(b []byte) []byte { b[4] |= lz4FlagContentSum; return b }),
		"block checksum":   mutate(func(b []byte) []byte { b[4] |= lz4FlagBlockChecksum; return b }),
		"size mismatch":    append(lz4FrameHeader(0x68, 0x40, 6), good[7:]...),
		"ends in match":    binary.LittleEndian.AppendUint32(lz4AppendBlock(lz4FrameHeader(0x60, 0x40, -1), []byte{0x10, 'a', 1, 0}, false), 0),
		"literals overrun": binary.LittleEndian.AppendUint32(lz4AppendBlock(lz4FrameHeader(0x60, 0x40, -1), []byte{0x90, 'a'}, false), 0),
		"offset zero":      binary.LittleEndian.AppendUint32(lz4AppendBlock(lz4FrameHeader(0x60, 0x40, -1), []byte{0x14, 'a', 0, 0, 0x50, 1, 2, 3, 4, 5}, false), 0),
		"block over max":   binary.LittleEndian.AppendUint32(lz4AppendBlock(lz4FrameHeader(0x60, 0x40, -1), append([]byte{0x0f, 1, 0}, append(bytes.Repeat([]byte{255}, 300), 0, 0x50, 1, 2, 3, 4, 5)...), false), 0),
		"skippable cut":    binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, lz4SkippableMagic), 100),
	} {
		_, err := unlz4(frame, nil, 1<<20)
		require(t, err != nil, "%s: accepted", name)
	}
}

// FuzzRecordLZ4Frame checks unlz4 against pierrec's reader: whatever the
// reference decodes within the limit, unlz4 must decode identically.
func FuzzRecordLZ4Frame(f *testing.F) {
	for _, data := range [][]byte{[]byte("hello hello hello hello hello"), kmsgRecords(sampleRecords(20))} {
		var buf bytes.Buffer
		zw := lz4.NewWriter(&buf)
		_ = zw.Apply(lz4.BlockSizeOption(lz4.Block64Kb))
		_, _ = zw.Write(data)
		_ = zw.Close()
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		const limit = 1 << 20
		got, err := unlz4(frame, nil, limit)
		if err == nil && len(got) > limit {
			t.Fatalf("decoded %d bytes past the %d limit", len(got), limit)
		}
		ref, refErr := io.ReadAll(io.LimitReader(lz4.NewReader(bytes.NewReader(frame)), limit+1))
		if refErr != nil || len(ref) > limit || len(ref) == 0 {
			return
		}
		if err != nil || !bytes.Equal(got, ref) {
			t.Fatalf("reference decoded %d bytes, unlz4 %d bytes, error %v", len(ref), len(got), err)
		}
	})
}
