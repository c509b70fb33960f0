package record

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pierrec/lz4/v4"
)

// The LZ4 frame format (lz4_Frame_format.md), which Kafka's v2 batches use.
// Must never change. Integers are little-endian.
//
//	frame    = magic 0x184D2204, descriptor, block*, end mark (uint32 0), [content checksum]
//	descriptor = FLG, BD, [content size uint64], [dictionary id uint32], header checksum byte
//	FLG      = version (bits 7-6, = 01), block independence (5), block checksum (4),
//	           content size (3), content checksum (2), reserved (1), dictionary id (0)
//	BD       = block max size (bits 6-4: 4 = 64 KiB, 5 = 256 KiB, 6 = 1 MiB, 7 = 4 MiB)
//	block    = uint32 size (bit 31 set: stored uncompressed), data, [block checksum uint32]
//	skippable frame = magic 0x184D2A5?, uint32 size, data
//
// The frame is parsed here rather than by lz4.Reader because the reader
// allocates a buffer of the frame's declared block size (4 MiB from a
// franz-go producer) whatever the caller's bound; here each block's decoded
// size is measured from its sequences first, checked against the bound, and
// the block is decoded straight into the output. The xxHash checksums are
// skipped, not verified: the batch's CRC-32C already covers these bytes.
const (
	lz4FrameMagic         = 0x184D2204
	lz4SkippableMagicMask = 0xFFFFFFF0
	lz4SkippableMagic     = 0x184D2A50
	lz4Version            = 1
	lz4FlagIndependent    = 0x20
	lz4FlagBlockChecksum  = 0x10
	lz4FlagContentSize    = 0x08
	lz4FlagContentSum     = 0x04
	lz4FlagReserved       = 0x02
	lz4FlagDictionaryID   = 0x01
	lz4BlockUncompressed  = 0x80000000
	lz4ChecksumSize       = 4
	lz4MinMatch           = 4
	lz4WindowSize         = 64 << 10 // how far back a linked block may refer
)

var errLZ4Short = errors.New("lz4 frame cut short")

// lz4Frame describes the frame being decoded.
type lz4Frame struct {
	flags        byte
	blockMaxSize int
	contentSize  int64 // -1 when the frame does not declare it
}

// unlz4 decodes the concatenated LZ4 frames of src, appending to dst[:0].
func unlz4(src, dst []byte, limit int) ([]byte, error) {
	out := dst[:0]
	for len(src) > 0 {
		var err error
		out, src, err = unlz4Frame(src, out, limit)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// unlz4Frame decodes the frame at the start of src and returns the bytes after it.
func unlz4Frame(src, out []byte, limit int) ([]byte, []byte, error) {
	if len(src) < 8 {
		return out, nil, errLZ4Short
	}
	magic := binary.LittleEndian.Uint32(src)
	if magic&lz4SkippableMagicMask == lz4SkippableMagic {
		size := binary.LittleEndian.Uint32(src[4:])
		if uint64(size) > uint64(len(src)-8) {
			return out, nil, errLZ4Short
		}
		return out, src[8+size:], nil
	}
	if magic != lz4FrameMagic {
		return out, nil, fmt.Errorf("lz4 frame magic %#x", magic)
	}
	frame, rest, err := parseLZ4Descriptor(src[4:])
	if err != nil {
		return out, nil, err
	}
	if frame.contentSize > int64(limit-len(out)) {
		return out, nil, ErrDecompressedTooLarge
	}
	frameStart := len(out)
	out, rest, err = unlz4Blocks(&frame, rest, out, frameStart, limit)
	if err != nil {
		return out, nil, err
	}
	if frame.contentSize >= 0 && int64(len(out)-frameStart) != frame.contentSize {
		return out, nil, fmt.Errorf("lz4 frame decoded to %d bytes, declared %d", len(out)-frameStart, frame.contentSize)
	}
	return out, rest, nil
}

// parseLZ4Descriptor reads FLG, BD and the optional fields after them.
func parseLZ4Descriptor(b []byte) (lz4Frame, []byte, error) {
	if len(b) < 3 {
		return lz4Frame{}, nil, errLZ4Short
	}
	flags, bd := b[0], b[1]
	if flags>>6 != lz4Version || flags&lz4FlagReserved != 0 || bd&0x8f != 0 {
		return lz4Frame{}, nil, fmt.Errorf("lz4 frame descriptor %#x %#x", flags, bd)
	}
	if flags&lz4FlagDictionaryID != 0 {
		return lz4Frame{}, nil, errors.New("lz4 frame needs a dictionary")
	}
	sizeIndex := int(bd>>4) & 7
	if sizeIndex < 4 {
		return lz4Frame{}, nil, fmt.Errorf("lz4 block size index %d", sizeIndex)
	}
	frame := lz4Frame{flags: flags, blockMaxSize: 1 << (8 + 2*sizeIndex), contentSize: -1}
	b = b[2:]
	if flags&lz4FlagContentSize != 0 {
		if len(b) < 8 {
			return lz4Frame{}, nil, errLZ4Short
		}
		frame.contentSize = int64(binary.LittleEndian.Uint64(b))
		if frame.contentSize < 0 {
			return lz4Frame{}, nil, ErrDecompressedTooLarge
		}
		b = b[8:]
	}
	if len(b) < 1 {
		return lz4Frame{}, nil, errLZ4Short
	}
	return frame, b[1:], nil // b[0] is the header checksum
}

// unlz4Blocks decodes blocks up to the end mark (and the content checksum
// after it), appending to out.
func unlz4Blocks(frame *lz4Frame, b, out []byte, frameStart, limit int) ([]byte, []byte, error) {
	for {
		if len(b) < 4 {
			return out, nil, errLZ4Short
		}
		word := binary.LittleEndian.Uint32(b)
		b = b[4:]
		if word == 0 {
			break // end mark
		}
		size := int(word &^ lz4BlockUncompressed)
		if size > frame.blockMaxSize || size > len(b) {
			return out, nil, fmt.Errorf("lz4 block of %d bytes, max %d, %d left", size, frame.blockMaxSize, len(b))
		}
		var err error
		if out, err = unlz4Block(frame, b[:size], word&lz4BlockUncompressed != 0, out, frameStart, limit); err != nil {
			return out, nil, err
		}
		b = b[size:]
		if frame.flags&lz4FlagBlockChecksum != 0 {
			if len(b) < lz4ChecksumSize {
				return out, nil, errLZ4Short
			}
			b = b[lz4ChecksumSize:]
		}
	}
	if frame.flags&lz4FlagContentSum != 0 {
		if len(b) < lz4ChecksumSize {
			return out, nil, errLZ4Short
		}
		b = b[lz4ChecksumSize:]
	}
	return out, b, nil
}

// unlz4Block appends one block's data to out after checking its decoded size
// against the limit.
func unlz4Block(frame *lz4Frame, block []byte, stored bool, out []byte, frameStart, limit int) ([]byte, error) {
	size := len(block)
	if !stored {
		var err error
		if size, err = lz4BlockDecodedSize(block, frame.blockMaxSize); err != nil {
			return out, err
		}
	}
	if size > limit-len(out) {
		return out, ErrDecompressedTooLarge
	}
	out = growOutput(out, size, limit)
	at := len(out)
	out = out[:at+size]
	if stored {
		copy(out[at:], block)
		return out, nil
	}
	var n int
	var err error
	if frame.flags&lz4FlagIndependent != 0 {
		n, err = lz4.UncompressBlock(block, out[at:])
	} else {
		// A linked block may copy from the frame's previous 64 KiB of output.
		n, err = lz4.UncompressBlockWithDict(block, out[at:], out[max(frameStart, at-lz4WindowSize):at])
	}
	if err != nil || n != size {
		return out[:at], fmt.Errorf("lz4 block decoded to %d bytes of %d: %v", n, size, err)
	}
	return out, nil
}

// lz4BlockDecodedSize adds up the literal and match lengths of an LZ4 block's
// sequences without decoding it, stopping once past maxSize, so no buffer is
// sized before the block is known to fit. The format ends every block with a
// sequence of literals only.
func lz4BlockDecodedSize(block []byte, maxSize int) (int, error) {
	size, i := 0, 0
	for i < len(block) {
		token := block[i]
		i++
		literals, n, err := lz4Length(block[i:], int(token>>4))
		if err != nil {
			return 0, err
		}
		i += n
		if literals > len(block)-i {
			return 0, fmt.Errorf("lz4 literals of %d bytes with %d left", literals, len(block)-i)
		}
		i += literals
		size += literals
		if size > maxSize {
			return 0, fmt.Errorf("lz4 block decodes past its %d-byte maximum", maxSize)
		}
		if i == len(block) {
			return size, nil
		}
		if len(block)-i < 2 {
			return 0, errLZ4Short
		}
		i += 2 // match offset
		match, n, err := lz4Length(block[i:], int(token&0x0f))
		if err != nil {
			return 0, err
		}
		i += n
		size += match + lz4MinMatch
		if size > maxSize {
			return 0, fmt.Errorf("lz4 block decodes past its %d-byte maximum", maxSize)
		}
	}
	return 0, errors.New("lz4 block does not end with literals")
}

// lz4Length completes a 4-bit length from the token: 15 means more bytes
// follow, each added, until one is not 255.
func lz4Length(b []byte, length int) (int, int, error) {
	if length < 15 {
		return length, 0, nil
	}
	for i, c := range b {
		length += int(c)
		if c != 255 {
			return length, i + 1, nil
		}
	}
	return 0, 0, errLZ4Short
}

// growOutput makes room for n more bytes, doubling but never past limit.
func growOutput(out []byte, n, limit int) []byte {
	need := len(out) + n
	if need <= cap(out) {
		return out
	}
	grown := make([]byte, len(out), min(max(2*cap(out), need, minDecompressBuffer), max(limit, need)))
	copy(grown, out)
	return grown
}
