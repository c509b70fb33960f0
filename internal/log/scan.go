package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// errTornBatch: the file ends inside a batch, the signature of a write that a
// crash interrupted.
var errTornBatch = errors.New("file ends inside a batch")

// indexState is the running state from which a segment's index entries are
// derived. The writer, recovery and index rebuilds all feed batches through
// add, so an index rebuilt from the .log is the one appends would have built.
type indexState struct {
	baseOffset           int64
	size                 int64
	nextOffset           int64
	maxTimestamp         int64
	offsetOfMaxTimestamp int64
	bytesSinceIndex      int64
	lastTimeIndexTs      int64 // newest time index entry; math.MinInt64 when none
	offsetEntries        int   // entries in the offset index, to detect a full index
	timeEntries          int
}

func (s *segment) indexState() indexState {
	st := indexState{
		baseOffset:           s.baseOffset,
		size:                 s.size,
		nextOffset:           s.nextOffset,
		maxTimestamp:         s.maxTimestamp,
		offsetOfMaxTimestamp: s.offsetOfMaxTimestamp,
		bytesSinceIndex:      s.bytesSinceIndex,
		lastTimeIndexTs:      math.MinInt64,
		offsetEntries:        s.offsets.len(),
		timeEntries:          s.times.len(),
	}
	if ts, _, ok := s.times.last(); ok {
		st.lastTimeIndexTs = ts
	}
	return st
}

// setIndexState stores a state computed by the writer or a scan.
func (s *segment) setIndexState(st indexState) {
	s.size, s.nextOffset = st.size, st.nextOffset
	s.maxTimestamp, s.offsetOfMaxTimestamp = st.maxTimestamp, st.offsetOfMaxTimestamp
	s.bytesSinceIndex = st.bytesSinceIndex
}

// add accounts for one batch written at position, appending any index
// entries it earns to offsets and times. Like Kafka, a batch gets an offset
// index entry when more than index.interval.bytes were written since the
// previous entry, so the first batch of a segment never has one.
func (st *indexState) add(position int64, h *record.Header, size, intervalBytes int64, offsets, times []byte) ([]byte, []byte) {
	if h.MaxTimestamp > st.maxTimestamp {
		st.maxTimestamp, st.offsetOfMaxTimestamp = h.MaxTimestamp, h.LastOffset()
	}
	if st.bytesSinceIndex > intervalBytes {
		ix := offsetIndex{buf: offsets}
		ix.append(int32(h.BaseOffset-st.baseOffset), int32(position))
		offsets = ix.buf
		st.offsetEntries++
		times = st.appendTimeEntry(times)
		st.bytesSinceIndex = 0
	}
	st.bytesSinceIndex += size
	st.size = position + size
	st.nextOffset = h.NextOffset()
	return offsets, times
}

// appendTimeEntry records the largest timestamp so far if it grew since the
// last time index entry. Sealing calls it once more so the last entry of a
// sealed segment always holds the segment's largest timestamp.
func (st *indexState) appendTimeEntry(times []byte) []byte {
	if st.maxTimestamp <= st.lastTimeIndexTs || st.offsetOfMaxTimestamp < st.baseOffset {
		return times
	}
	times = binary.BigEndian.AppendUint64(times, uint64(st.maxTimestamp))
	times = binary.BigEndian.AppendUint32(times, uint32(st.offsetOfMaxTimestamp-st.baseOffset))
	st.lastTimeIndexTs = st.maxTimestamp
	st.timeEntries++
	return times
}

// batchScanner reads whole batches front to back from a segment file through
// one reused buffer, so recovery reads large sequential chunks.
type batchScanner struct {
	file    vfs.File
	pos     int64 // file position of the next batch
	end     int64 // file size
	buf     []byte
	bufPos  int64 // file position of buf[0]
	bufLen  int
	readErr error
}

const scanBufferBytes = 1 << 20

func newBatchScanner(f vfs.File, from, end int64) *batchScanner {
	return &batchScanner{file: f, pos: from, end: end, bufPos: from}
}

// next returns the batch at the scanner's position, with its header parsed
// but its CRC unchecked. io.EOF means a clean end at a batch boundary.
func (sc *batchScanner) next() (batch []byte, h record.Header, pos int64, err error) {
	remaining := sc.end - sc.pos
	if remaining == 0 {
		return nil, h, sc.pos, io.EOF
	}
	if remaining < record.HeaderSize {
		return nil, h, sc.pos, errTornBatch
	}
	head, err := sc.window(record.HeaderSize)
	if err != nil {
		return nil, h, sc.pos, err
	}
	if h, err = record.ParseHeader(head); err != nil {
		return nil, h, sc.pos, err
	}
	size := int64(h.Size())
	if size > remaining {
		return nil, h, sc.pos, errTornBatch
	}
	if batch, err = sc.window(int(size)); err != nil {
		return nil, h, sc.pos, err
	}
	pos = sc.pos
	sc.pos += size
	return batch, h, pos, nil
}

// window returns n bytes at the scanner's position, refilling the buffer.
func (sc *batchScanner) window(n int) ([]byte, error) {
	off := int(sc.pos - sc.bufPos)
	if sc.pos >= sc.bufPos && off+n <= sc.bufLen {
		return sc.buf[off : off+n], nil
	}
	want := max(n, scanBufferBytes)
	if int64(want) > sc.end-sc.pos {
		want = int(sc.end - sc.pos)
	}
	if cap(sc.buf) < want {
		sc.buf = make([]byte, want)
	}
	sc.buf = sc.buf[:want]
	read, err := sc.file.ReadAt(sc.buf, sc.pos)
	if read < n {
		if err == nil || err == io.EOF {
			err = errTornBatch
		}
		return nil, fmt.Errorf("read at %d: %w", sc.pos, err)
	}
	sc.bufPos, sc.bufLen = sc.pos, read
	return sc.buf[:n], nil
}

// scanResult is what scanning a segment found.
type scanResult struct {
	state   indexState
	offsets []byte
	times   []byte
	// stop is why the scan ended before the end of the file (nil: it reached
	// the end cleanly); state.size is then where the valid data ends.
	stop error
}

// scanSegment walks the batches of s from position `from` with the index
// state st (the state at that position), rebuilding index entries. Batches
// whose offsets reach validateFrom are validated in full (length, CRC,
// increasing offsets); earlier ones, already synced, only need their headers.
// I/O errors are returned; invalid data only ends the scan (res.stop).
func scanSegment(f vfs.File, st indexState, from, fileSize, validateFrom, indexIntervalBytes int64, offsets, times []byte) (scanResult, error) {
	sc := newBatchScanner(f, from, fileSize)
	res := scanResult{state: st, offsets: offsets, times: times}
	for {
		batch, h, pos, err := sc.next()
		if err == io.EOF {
			return res, nil
		}
		if err == nil {
			err = checkScannedBatch(batch, &h, res.state, validateFrom)
		}
		if err != nil {
			if isDataError(err) {
				res.stop = fmt.Errorf("segment %020d at position %d: %w", st.baseOffset, pos, err)
				return res, nil
			}
			return res, fmt.Errorf("segment %020d: %w", st.baseOffset, err)
		}
		res.offsets, res.times = res.state.add(pos, &h, int64(len(batch)), indexIntervalBytes, res.offsets, res.times)
	}
}

var errOffsetsOutOfOrder = errors.New("batch offsets out of order")

func checkScannedBatch(batch []byte, h *record.Header, st indexState, validateFrom int64) error {
	// Compared relative to the segment base: a base offset read from disk
	// can be near math.MaxInt64, where h.LastOffset() overflows negative
	// and would also skip the CRC check below. Both operands are at least 0
	// (nextOffset >= baseOffset >= 0, and ParseHeader rejects a negative
	// delta), so neither side can overflow.
	if h.BaseOffset < st.nextOffset || h.BaseOffset-st.baseOffset > math.MaxInt32-int64(h.LastOffsetDelta) {
		return fmt.Errorf("%w: batch %d..%d after offset %d", errOffsetsOutOfOrder, h.BaseOffset, h.LastOffset(), st.nextOffset)
	}
	if h.NextOffset() > validateFrom {
		if _, err := record.ValidateBatch(batch); err != nil {
			return err
		}
	}
	return nil
}

// isDataError tells bad bytes on disk (truncate them) from failing I/O
// (stop: the disk is not answering and nothing can be concluded).
func isDataError(err error) bool {
	return errors.Is(err, errTornBatch) || errors.Is(err, errOffsetsOutOfOrder) ||
		errors.Is(err, record.ErrTruncated) || errors.Is(err, record.ErrCorrupt) ||
		errors.Is(err, record.ErrCRCMismatch) || errors.Is(err, record.ErrUnsupportedMagic) ||
		errors.Is(err, record.ErrUnknownCodec)
}

// emptyIndexState is the state of a segment before its first batch.
func emptyIndexState(baseOffset int64) indexState {
	return indexState{
		baseOffset:           baseOffset,
		nextOffset:           baseOffset,
		maxTimestamp:         -1,
		offsetOfMaxTimestamp: -1,
		lastTimeIndexTs:      math.MinInt64,
	}
}

// rebuildSealedIndexes rebuilds a sealed segment's indexes from its .log
// file when the index files are missing or fail validation. Its opens
// close idle files and try again when out of descriptors (sheddingFS): a
// log's load reaches it when the time index is lost, and at start-up
// under a low limit failing there failed the whole log. (An index read
// that found no descriptor is not a reason to rebuild: shortOfDescriptors.) It
// runs without the cache's lock (a load holds Log.mu, which comes first).
func rebuildSealedIndexes(s *segment, size int64) (*sealedIndexes, error) {
	fs := sheddingFS{FS: s.file.fs, cache: s.file.cache}
	f, err := fs.Open(s.path(logSuffix))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	res, err := scanSegment(f, emptyIndexState(s.baseOffset), 0, size, math.MaxInt64, s.indexIntervalBytes, nil, nil)
	if err != nil {
		return nil, err
	}
	res.times = res.state.appendTimeEntry(res.times)
	idx := &sealedIndexes{offsets: offsetIndex{buf: res.offsets}, times: timeIndex{buf: res.times}}
	// Best effort: the next load finds valid files. A failure here only
	// means the next load rebuilds again.
	_ = writeIndexFile(fs, s.path(indexSuffix), idx.offsets.buf, nil, true)
	_ = writeIndexFile(fs, s.path(timeIndexSuffix), idx.times.buf, nil, true)
	return idx, nil
}
