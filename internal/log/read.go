package log

import (
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// NoMaxOffset as ReadOptions.MaxOffset reads up to the log end offset.
const NoMaxOffset int64 = -1

// ReadOptions bound a read.
type ReadOptions struct {
	// MaxBytes is the most bytes returned; the range may end inside a batch
	// after whole ones, as Kafka's does (clients drop a trailing partial
	// batch), but is empty when not even the first batch fits.
	MaxBytes int
	// MaxOffset is an exclusive bound, such as the high watermark: no batch
	// at or past it is returned. NoMaxOffset means the log end offset.
	MaxOffset int64
	// MinOneBatch returns the first batch whole even when it is larger than
	// MaxBytes, so a consumer is never stuck behind a large batch (KIP-74).
	MinOneBatch bool
	// UpperOffset asks for Slice.UpperOffset (an offset index lookup).
	UpperOffset bool
}

// Slice is a byte range of one segment file: whole batches from the one
// holding the requested offset, as they are on disk. It holds the file open
// until Release, even if retention or truncation deletes the segment.
type Slice struct {
	ref      fileRef
	Position int64 // in the segment file
	Size     int64
	// UpperOffset, when ReadOptions.UpperOffset asked for it, is an offset
	// above every record in the slice (whole or cut batches): the base
	// offset of the first indexed batch at or past the slice's end, else
	// the segment's end. A read_committed fetch lists the aborted
	// transactions below it, as Kafka bounds them by the fetched range.
	UpperOffset int64
}

// File is the segment file the slice reads from, for sendfile(2) when it is
// a vfs.OSFile.
func (s *Slice) File() vfs.File { return s.ref.file }

// AppendTo appends the slice's bytes to dst.
func (s *Slice) AppendTo(dst []byte) ([]byte, error) {
	if s.Size == 0 {
		return dst, nil
	}
	n := len(dst)
	dst = append(dst, make([]byte, s.Size)...)
	read, err := s.ref.file.ReadAt(dst[n:], s.Position)
	if int64(read) < s.Size {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // truncated under the reader
		}
		return dst[:n+read], fmt.Errorf("read %s at %d: %w", s.ref.sf.path, s.Position, err)
	}
	return dst, nil
}

// WriteTo copies the slice to w.
func (s *Slice) WriteTo(w io.Writer) (int64, error) {
	if s.Size == 0 {
		return 0, nil
	}
	return io.Copy(w, io.NewSectionReader(s.ref.file, s.Position, s.Size))
}

// Release lets the segment file go. Call it exactly once per Read.
func (s *Slice) Release() {
	s.ref.release()
	s.ref = fileRef{}
}

// Read returns the batches from the one holding offset, bounded by opts. An
// offset at the bound (the log end offset or opts.MaxOffset) gives an empty
// slice; one below the log start offset or past the log end offset gives
// ErrOffsetOutOfRange.
func (l *Log) Read(offset int64, opts ReadOptions) (Slice, error) {
	for {
		slice, retry, err := l.readOnce(offset, opts)
		if !retry {
			return slice, err
		}
		// The segment was deleted, or made active by a truncation,
		// between choosing and opening it.
	}
}

// segmentView is a segment's state captured under the log's lock.
type segmentView struct {
	seg        *segment
	size       int64
	nextOffset int64
	ref        fileRef
	startPos   int64 // index floor for the offset looked up
}

func (l *Log) readOnce(offset int64, opts ReadOptions) (Slice, bool, error) {
	l.mu.Lock()
	maxOffset := l.logEndOffset
	if opts.MaxOffset >= 0 && opts.MaxOffset < maxOffset {
		maxOffset = opts.MaxOffset
	}
	if err := l.checkOffsetLocked(offset); err != nil {
		l.mu.Unlock()
		return Slice{}, false, err
	}
	if offset >= maxOffset {
		l.mu.Unlock()
		return Slice{}, false, nil
	}
	v, err := l.viewUnlocking(offset)
	if err != nil {
		return Slice{}, errors.Is(err, errSegmentGone), err
	}
	defer func() {
		if v.ref.sf != nil {
			v.ref.release()
		}
	}()
	slice, err := readRange(&v, offset, maxOffset, opts)
	if err == nil {
		if opts.UpperOffset {
			slice.UpperOffset = l.upperOffset(&v, slice.Position+slice.Size)
		}
		v.ref = fileRef{} // handed to the slice
	}
	return slice, false, err
}

// upperOffset bounds the offsets of a slice of v ending at position: the
// first index entry at or past it (a batch starting there or later has a
// larger base offset than any batch that starts before), else the
// segment's end as v captured it (a slice never reaches past v.size). A
// sealed segment's index is immutable; the active one's is the writer's,
// read under the log's lock.
func (l *Log) upperOffset(v *segmentView, position int64) int64 {
	if v.ref.indexes != nil {
		return indexCeiling(&v.ref.indexes.offsets, v.seg.baseOffset, position, v.nextOffset)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return indexCeiling(&v.seg.offsets, v.seg.baseOffset, position, v.nextOffset)
}

func indexCeiling(x *offsetIndex, baseOffset, position, end int64) int64 {
	i := sort.Search(x.len(), func(i int) bool {
		_, pos := x.entry(i)
		return int64(pos) >= position
	})
	if i == x.len() {
		return end
	}
	rel, _ := x.entry(i)
	return min(baseOffset+int64(rel), end)
}

func (l *Log) checkOffsetLocked(offset int64) error {
	if l.closed {
		return fmt.Errorf("log %s: %w", l.dir, ErrClosed)
	}
	if offset < l.logStartOffset || offset > l.logEndOffset {
		return fmt.Errorf("log %s: offset %d not in [%d, %d]: %w", l.dir, offset, l.logStartOffset, l.logEndOffset, ErrOffsetOutOfRange)
	}
	return nil
}

var errSegmentGone = errors.New("segment deleted or unsealed while opening it")

// viewUnlocking finds the segment holding offset, takes a file reference and
// looks up the index, releasing the log's lock (it is held on entry and
// released on return) before any file is opened. Functions named
// ...Unlocking take the lock held and return without it; ...Locked ones
// keep it.
func (l *Log) viewUnlocking(offset int64) (segmentView, error) {
	i := sort.Search(len(l.segments), func(i int) bool { return l.segments[i].baseOffset > offset }) - 1
	i = max(i, 0)
	for i < len(l.segments)-1 && offset >= l.segments[i].nextOffset {
		i++ // past this segment's last batch (a gap): the next one
	}
	return l.segmentViewUnlocking(l.segments[i], offset)
}

// segmentViewUnlocking is viewUnlocking for a given segment. Releases the lock.
func (l *Log) segmentViewUnlocking(s *segment, offset int64) (segmentView, error) {
	v := segmentView{seg: s, size: s.size, nextOffset: s.nextOffset}
	if !s.sealed {
		// The active segment is pinned: taking a reference opens nothing.
		ref, err := s.file.acquire()
		v.ref, v.startPos = ref, s.offsets.floor(s.relOffset(offset))
		l.mu.Unlock()
		return v, err
	}
	l.mu.Unlock()
	ref, err := acquireSealed(s)
	if err != nil {
		return v, err
	}
	v.ref, v.startPos = ref, ref.indexes.offsets.floor(s.relOffset(offset))
	return v, nil
}

// acquireSealed takes a reference to a segment chosen as sealed under the
// log's lock, now released. Retention may have deleted it since, or a
// truncation made it active again (its indexes are the log's then, and its
// size may have shrunk below the one captured): either way the caller must
// look again under the lock. Any other failure to open it (EIO, no
// descriptor left) is the read's: looking again would open it again, for
// ever.
func acquireSealed(s *segment) (fileRef, error) {
	ref, err := s.file.acquire()
	if errors.Is(err, ErrOffsetOutOfRange) { // acquire's word for a removed file
		return ref, fmt.Errorf("%w: %w", errSegmentGone, err)
	}
	if err != nil {
		return ref, err
	}
	if ref.indexes == nil {
		ref.release()
		return fileRef{}, fmt.Errorf("%w: segment %d became active", errSegmentGone, s.baseOffset)
	}
	return ref, nil
}

// readRange finds the batch holding offset and the end of the range.
func readRange(v *segmentView, offset, maxOffset int64, opts ReadOptions) (Slice, error) {
	start, first, err := findBatch(v, v.startPos, func(h *record.Header) bool { return h.LastOffset() >= offset })
	if err != nil {
		return Slice{}, err
	}
	end := v.size
	if maxOffset < v.nextOffset {
		if end, _, err = findBatch(v, start, func(h *record.Header) bool { return h.BaseOffset >= maxOffset }); err != nil {
			return Slice{}, err
		}
	}
	size := min(end-start, int64(max(opts.MaxBytes, 0)))
	if first != nil && int64(first.Size()) > size {
		// The first batch does not fit. Without MinOneBatch the answer is
		// nothing, as Kafka's: a range holding only part of one batch makes
		// the Java consumer fail ("failed to make progress"). A partial
		// batch after whole ones is fine; clients drop it.
		size = 0
		if opts.MinOneBatch {
			size = min(int64(first.Size()), end-start)
		}
	}
	return Slice{ref: v.ref, Position: start, Size: size}, nil
}

// findBatch reads batch headers from position until match, returning the
// matching batch's position and header (nil header: none matched before the
// end of the captured size, and the position is that end).
func findBatch(v *segmentView, position int64, match func(*record.Header) bool) (int64, *record.Header, error) {
	var buf [record.HeaderSize]byte
	for position < v.size {
		if _, err := v.ref.file.ReadAt(buf[:], position); err != nil {
			return 0, nil, fmt.Errorf("read batch header at %d of %s: %w", position, v.ref.sf.path, err)
		}
		h, err := record.ParseHeader(buf[:])
		if err != nil {
			return 0, nil, fmt.Errorf("batch header at %d of %s: %w", position, v.ref.sf.path, err)
		}
		if match(&h) {
			return position, &h, nil
		}
		position += int64(h.Size())
	}
	return v.size, nil, nil
}

// TimestampOffset is a record's offset and timestamp, from a lookup by time.
type TimestampOffset struct {
	Offset    int64
	Timestamp int64
}

// maxRecordsBytes bounds decompression when a lookup by timestamp decodes a
// batch: far above any batch a broker accepts, far below memory trouble.
const maxRecordsBytes = 256 << 20

// OffsetForTimestamp finds the first record at or after the log start offset
// whose timestamp is at least ts, as ListOffsets does. ok is false when no
// record is that new.
func (l *Log) OffsetForTimestamp(ts int64) (result TimestampOffset, ok bool, err error) {
	l.mu.Lock()
	startOffset := l.logStartOffset
	// A segment's largest timestamp may belong to a record below the log
	// start (DeleteRecords moved it inside the segment), so a segment that
	// promises a match may hold none: then the lookup goes on after it.
	for after := int64(-1); ; {
		if l.closed {
			l.mu.Unlock()
			return result, false, fmt.Errorf("log %s: %w", l.dir, ErrClosed)
		}
		var target *segment
		for _, s := range l.segments {
			if s.baseOffset > after && s.nextOffset > startOffset && s.maxTimestamp >= ts {
				target = s
				break
			}
		}
		if target == nil {
			l.mu.Unlock()
			return result, false, nil
		}
		v, err := l.timeViewUnlocking(target, ts)
		if err != nil {
			return result, false, err
		}
		result, ok, err = findRecordByTime(&v, startOffset, ts)
		v.ref.release()
		if err != nil || ok {
			return result, ok, err
		}
		after = target.baseOffset
		l.mu.Lock()
	}
}

// timeViewUnlocking is viewUnlocking for a lookup by time: the start position is
// the offset index floor of the time index floor. Releases the lock.
func (l *Log) timeViewUnlocking(s *segment, ts int64) (segmentView, error) {
	v := segmentView{seg: s, size: s.size, nextOffset: s.nextOffset}
	if !s.sealed {
		ref, err := s.file.acquire()
		rel, _ := s.times.floor(ts)
		v.ref, v.startPos = ref, s.offsets.floor(rel)
		l.mu.Unlock()
		return v, err
	}
	l.mu.Unlock()
	ref, err := acquireSealed(s)
	if err != nil {
		return v, err
	}
	rel, _ := ref.indexes.times.floor(ts)
	v.ref, v.startPos = ref, ref.indexes.offsets.floor(rel)
	return v, nil
}

func findRecordByTime(v *segmentView, startOffset, ts int64) (TimestampOffset, bool, error) {
	for pos := v.startPos; ; {
		var h *record.Header
		var err error
		pos, h, err = findBatch(v, pos, func(h *record.Header) bool {
			// An empty batch (compaction keeps one for its offsets) holds
			// no record to find, whatever its timestamp says.
			return h.MaxTimestamp >= ts && h.LastOffset() >= startOffset && h.RecordCount > 0
		})
		if err != nil || h == nil {
			return TimestampOffset{}, false, err
		}
		if h.TimestampType() == record.LogAppendTime {
			return TimestampOffset{Offset: max(h.BaseOffset, startOffset), Timestamp: h.MaxTimestamp}, true, nil
		}
		found, ok, err := firstRecordAtOrAfter(v, pos, h, startOffset, ts)
		if err != nil || ok {
			return found, ok, err
		}
		// Only records below the log start were that new: look further.
		pos += int64(h.Size())
	}
}

// firstRecordAtOrAfter decodes one batch to find the exact record.
func firstRecordAtOrAfter(v *segmentView, pos int64, h *record.Header, startOffset, ts int64) (TimestampOffset, bool, error) {
	batch := make([]byte, h.Size())
	if _, err := v.ref.file.ReadAt(batch, pos); err != nil {
		return TimestampOffset{}, false, fmt.Errorf("read batch at %d of %s: %w", pos, v.ref.sf.path, err)
	}
	var found TimestampOffset
	errFound := errors.New("found")
	err := record.Records(batch, maxRecordsBytes, func(r *record.Record) error {
		offset, recordTs := h.BaseOffset+int64(r.OffsetDelta), h.FirstTimestamp+r.TimestampDelta
		if offset >= startOffset && recordTs >= ts {
			found = TimestampOffset{Offset: offset, Timestamp: recordTs}
			return errFound
		}
		return nil
	})
	if errors.Is(err, errFound) {
		return found, true, nil
	}
	if err != nil {
		return TimestampOffset{}, false, fmt.Errorf("decode batch at %d of %s: %w", pos, v.ref.sf.path, err)
	}
	if h.BaseOffset < startOffset {
		// The new enough records lie below the log start.
		return TimestampOffset{}, false, nil
	}
	// The header's max timestamp promised a record; trust the header.
	return TimestampOffset{Offset: max(h.BaseOffset, startOffset), Timestamp: h.MaxTimestamp}, true, nil
}

// MaxTimestamp returns the first record with the largest timestamp at or
// after the log start offset (ListOffsets' MAX_TIMESTAMP, KIP-734); ok is
// false for an empty log.
func (l *Log) MaxTimestamp() (result TimestampOffset, ok bool, err error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return result, false, fmt.Errorf("log %s: %w", l.dir, ErrClosed)
	}
	startOffset := l.logStartOffset
	// partial is the first segment when the log start lies inside it: its
	// largest timestamp may belong to a record below the log start, so the
	// largest of what remains is found by a scan from the log start.
	var best, partial *segment
	for _, s := range l.segments {
		switch {
		case s.nextOffset <= startOffset:
		case s.baseOffset < startOffset:
			partial = s
		case s.maxTimestamp >= 0 && (best == nil || s.maxTimestamp > best.maxTimestamp):
			best = s
		}
	}
	var partialMaxTs int64
	if partial != nil {
		partialMaxTs = partial.maxTimestamp
	}
	if best != nil {
		maxTs := best.maxTimestamp
		v, err := l.timeViewUnlocking(best, maxTs)
		if err != nil {
			return result, false, err
		}
		result, ok, err = findRecordByTime(&v, startOffset, maxTs)
		v.ref.release()
		if err != nil || partial == nil || ok && partialMaxTs < result.Timestamp {
			return result, ok, err
		}
		l.mu.Lock()
	}
	if partial == nil {
		l.mu.Unlock()
		return result, ok, nil
	}
	v, err := l.segmentViewUnlocking(partial, startOffset)
	if err != nil {
		if errors.Is(err, errSegmentGone) {
			return result, ok, nil // retention deleted it meanwhile
		}
		return result, false, err
	}
	defer v.ref.release()
	maxTs, found, err := maxTimestampFrom(&v, startOffset)
	if err != nil || !found || ok && result.Timestamp > maxTs {
		return result, ok, err
	}
	// On a tie the first segment's record comes first.
	return findRecordByTime(&v, startOffset, maxTs)
}

// maxTimestampFrom returns the largest timestamp of the records at or after
// startOffset in a segment, decoding only the batch that straddles it.
func maxTimestampFrom(v *segmentView, startOffset int64) (maxTs int64, found bool, err error) {
	pos := v.startPos
	var decodeErr error
	_, _, err = findBatch(v, pos, func(h *record.Header) bool {
		batchPos := pos
		pos += int64(h.Size())
		switch {
		case h.LastOffset() < startOffset || found && h.MaxTimestamp <= maxTs:
		case h.BaseOffset >= startOffset || h.TimestampType() == record.LogAppendTime:
			maxTs, found = h.MaxTimestamp, true
		default:
			ts, ok, err := maxRecordTimestampFrom(v, batchPos, h, startOffset)
			if err != nil {
				decodeErr = err
				return true
			}
			if ok && (!found || ts > maxTs) {
				maxTs, found = ts, true
			}
		}
		return false
	})
	if err == nil {
		err = decodeErr
	}
	return maxTs, found, err
}

// maxRecordTimestampFrom decodes one batch for the largest timestamp of its
// records at or after startOffset.
func maxRecordTimestampFrom(v *segmentView, pos int64, h *record.Header, startOffset int64) (int64, bool, error) {
	batch := make([]byte, h.Size())
	if _, err := v.ref.file.ReadAt(batch, pos); err != nil {
		return 0, false, fmt.Errorf("read batch at %d of %s: %w", pos, v.ref.sf.path, err)
	}
	var maxTs int64
	found := false
	err := record.Records(batch, maxRecordsBytes, func(r *record.Record) error {
		if ts := h.FirstTimestamp + r.TimestampDelta; h.BaseOffset+int64(r.OffsetDelta) >= startOffset && (!found || ts > maxTs) {
			maxTs, found = ts, true
		}
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("decode batch at %d of %s: %w", pos, v.ref.sf.path, err)
	}
	return maxTs, found, nil
}
