package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Decompression is where a 10 KiB batch can turn into gigabytes, so every
// codec is bounded by the caller's limit, never by a size the data claims:
// gzip is read through a bounded reader that stops one byte past the limit;
// snappy's declared lengths and each lz4 block's measured length are checked
// against the limit before any buffer is made; zstd decodes into a buffer
// whose capacity is the bound (WithDecodeAllCapLimit), grown only up to the
// limit.
const (
	// minDecompressBuffer is the first guess for a stream whose size is unknown.
	minDecompressBuffer = 4 << 10
	// maxPooledBuffer keeps one huge batch from pinning its buffer in the
	// pool for ever; typical batches (max.message.bytes defaults to 1 MiB)
	// fit well below it.
	maxPooledBuffer = 4 << 20
	// lz4BlockSize is the block size Kafka's Java producer writes; a bigger
	// block costs consumers a bigger buffer for no better ratio on batches.
	lz4BlockSize = lz4.Block64Kb
)

// xerialMagic opens the chunked snappy framing of the xerial snappy-java
// library, which the Java producer writes. The 8 magic bytes are followed by a
// big-endian int32 version and an int32 minimum compatible version, then by
// chunks, each a big-endian int32 length and one raw snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const (
	xerialHeaderSize      = 16
	xerialChunkLengthSize = 4
)

// decodeState is what one Records call needs, pooled so that decoding a
// batch allocates nothing in the steady state: the decompressed records and
// the Record handed to the callback (which escapes, as fn is unknown).
type decodeState struct {
	records []byte
	record  Record
}

var decodeStates = sync.Pool{New: func() any { return new(decodeState) }}

func getDecodeState() *decodeState { return decodeStates.Get().(*decodeState) }

func putDecodeState(s *decodeState) {
	if cap(s.records) > maxPooledBuffer {
		s.records = nil
	}
	// Drop the references into this batch that the reused header array
	// still holds, so a pooled state does not pin the caller's buffers.
	clear(s.record.Headers[:cap(s.record.Headers)])
	s.record = Record{Headers: s.record.Headers[:0]}
	decodeStates.Put(s)
}

// decompress inflates src, a batch's compressed records, appending to
// dst[:0] and reusing its capacity. Output past maxBytes is
// ErrDecompressedTooLarge; a payload the codec rejects is ErrCorrupt.
func decompress(codec Codec, src, dst []byte, maxBytes int) ([]byte, error) {
	maxBytes = max(maxBytes, 0)
	var out []byte
	var err error
	switch codec {
	case CodecGzip:
		out, err = gunzip(src, dst, maxBytes)
	case CodecSnappy:
		out, err = unsnappy(src, dst, maxBytes)
	case CodecLZ4:
		out, err = unlz4(src, dst, maxBytes)
	case CodecZstd:
		out, err = unzstd(src, dst, maxBytes)
	default:
		return dst, fmt.Errorf("%v: %w", codec, ErrUnknownCodec)
	}
	if err != nil {
		if errors.Is(err, ErrDecompressedTooLarge) {
			return dst, fmt.Errorf("%v: over %d bytes: %w", codec, maxBytes, ErrDecompressedTooLarge)
		}
		return dst, fmt.Errorf("%v: %w: %w", codec, ErrCorrupt, err)
	}
	return out, nil
}

// readBounded reads r to EOF into buf[:0], growing it by doubling but never
// past limit+1 bytes: reading one byte more than allowed is how a bomb is
// told apart from a stream of exactly limit bytes.
func readBounded(r io.Reader, buf []byte, limit int, sizeHint int) ([]byte, error) {
	ceiling := limit + 1
	if cap(buf) > ceiling {
		buf = buf[:0:ceiling]
	}
	buf = buf[:0]
	if cap(buf) == 0 {
		buf = make([]byte, 0, min(max(sizeHint, minDecompressBuffer), ceiling))
	}
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				return buf, ErrDecompressedTooLarge
			}
			grown := make([]byte, len(buf), min(2*cap(buf), ceiling))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return buf, ErrDecompressedTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// compressedSizeHint guesses the inflated size of a stream from its
// compressed size; records of text or JSON typically shrink 3-5 times.
func compressedSizeHint(src []byte) int { return 4 * len(src) }

type gzipReader struct {
	src bytes.Reader
	zr  gzip.Reader
}

var gzipReaders sync.Pool

func gunzip(src, dst []byte, limit int) ([]byte, error) {
	g, _ := gzipReaders.Get().(*gzipReader)
	if g == nil {
		g = new(gzipReader)
	}
	defer func() {
		g.src.Reset(nil) // the pool must not pin the caller's batch
		gzipReaders.Put(g)
	}()
	g.src.Reset(src)
	if err := g.zr.Reset(&g.src); err != nil {
		return dst, err
	}
	return readBounded(&g.zr, dst, limit, compressedSizeHint(src))
}

// unsnappy decodes a raw snappy block (librdkafka, franz-go, sarama) or the
// xerial framing (the Java producer).
func unsnappy(src, dst []byte, limit int) ([]byte, error) {
	if len(src) >= xerialHeaderSize && bytes.Equal(src[:len(xerialMagic)], xerialMagic) {
		return unxerial(src[xerialHeaderSize:], dst, limit)
	}
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return dst, err
	}
	if n > limit {
		return dst, ErrDecompressedTooLarge
	}
	return snappyBlock(src, dst[:0], n)
}

// snappyBlock appends the decoding of one raw block of n bytes to dst, which
// the caller has checked n against. Strict decoding refuses s2's extensions,
// which real Kafka consumers could not read back.
func snappyBlock(block, dst []byte, n int) ([]byte, error) {
	if cap(dst)-len(dst) < n {
		grown := make([]byte, len(dst), len(dst)+n)
		copy(grown, dst)
		dst = grown
	}
	end := len(dst) + n
	out, err := snappy.DecodeStrict(dst[len(dst):end:end], block)
	if err != nil {
		return dst, err
	}
	if len(out) != n {
		// DecodeStrict read a different length header than DecodedLen did.
		return dst, fmt.Errorf("snappy block decoded to %d bytes, declared %d", len(out), n)
	}
	return dst[:end], nil
}

// unxerial decodes xerial chunks in two passes: the first sums the declared
// lengths against the limit, so the second allocates once and only what the
// limit allows.
func unxerial(chunks, dst []byte, limit int) ([]byte, error) {
	total := 0
	err := eachXerialChunk(chunks, func(block []byte) error {
		n, err := snappy.DecodedLen(block)
		if err != nil {
			return err
		}
		if n > limit-total {
			return ErrDecompressedTooLarge
		}
		total += n
		return nil
	})
	if err != nil {
		return dst, err
	}
	if cap(dst) < total {
		dst = make([]byte, 0, total)
	}
	out := dst[:0]
	err = eachXerialChunk(chunks, func(block []byte) error {
		n, _ := snappy.DecodedLen(block)
		out, err = snappyBlock(block, out, n)
		return err
	})
	return out, err
}

// eachXerialChunk calls fn with each raw snappy block of a xerial body.
func eachXerialChunk(chunks []byte, fn func(block []byte) error) error {
	for len(chunks) > 0 {
		if len(chunks) < xerialChunkLengthSize {
			return fmt.Errorf("xerial chunk length cut short at %d bytes", len(chunks))
		}
		n := binary.BigEndian.Uint32(chunks)
		chunks = chunks[xerialChunkLengthSize:]
		if uint64(n) > uint64(len(chunks)) {
			return fmt.Errorf("xerial chunk of %d bytes with %d left", n, len(chunks))
		}
		if err := fn(chunks[:n]); err != nil {
			return err
		}
		chunks = chunks[n:]
	}
	return nil
}

// zstdDecoder is shared: DecodeAll is safe for concurrent use. The cap limit
// makes DecodeAll stop at cap(dst) instead of growing dst, which is how a
// per-call bound is put on a decoder whose options are fixed. Large windows
// cost nothing here: DecodeAll uses its output as the history.
var zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecodeAllCapLimit(true))
})

const (
	// zstdBlockSlack is room for one more block past the bound. A zstd block
	// never decodes to more than 128 KiB (Block_Maximum_Size), so with this
	// much spare capacity a stream that runs past the bound shows it by
	// producing more than the bound, and a block that fails with this much
	// room failed for a reason other than room.
	zstdBlockSlack = 128<<10 + 64
	// zstdGrowth multiplies the room on each retry.
	zstdGrowth = 4
)

// unzstd decodes into a buffer of bounded capacity, retrying with more room
// (up to the limit) when the first guess was too small. The library reports a
// full buffer with different errors depending on where it fills, so whether
// a failure was lack of room is judged from the room that was left.
func unzstd(src, dst []byte, limit int) ([]byte, error) {
	dec, err := zstdDecoder()
	if err != nil {
		return dst, err
	}
	room, err := zstdSizeHint(src, limit)
	if err != nil {
		return dst, err
	}
	for {
		// A pooled buffer bigger than the guess is used whole, up to the limit.
		capacity := min(max(room+zstdBlockSlack, cap(dst)), limit+zstdBlockSlack)
		if cap(dst) < capacity {
			dst = make([]byte, 0, capacity)
		}
		room = capacity - zstdBlockSlack
		out, err := dec.DecodeAll(src, dst[:0:capacity])
		if len(out) > limit {
			return dst, ErrDecompressedTooLarge
		}
		if err == nil {
			return out, nil
		}
		outOfRoom := errors.Is(err, zstd.ErrDecoderSizeExceeded) || capacity-len(out) < zstdBlockSlack
		switch {
		case !outOfRoom:
			return dst, err
		case room >= limit:
			return dst, ErrDecompressedTooLarge
		}
		room = min(zstdGrowth*room, limit)
	}
}

// zstdSizeHint sizes the first attempt from the first frame's declared
// content size when there is one. A declared size over the limit is refused
// before decoding; a smaller one is only a hint, as DecodeAll stops at the
// buffer's capacity whatever the frame claims.
func zstdSizeHint(src []byte, limit int) (int, error) {
	var frame zstd.Header
	if err := frame.Decode(src); err == nil && frame.HasFCS {
		if frame.FrameContentSize > uint64(limit) {
			return 0, ErrDecompressedTooLarge
		}
		return max(int(frame.FrameContentSize), 1), nil
	}
	return min(max(compressedSizeHint(src), zstdBlockSlack), max(limit, 1)), nil
}
