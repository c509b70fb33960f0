package log

import (
	"encoding/binary"
	"fmt"

	"github.com/sluicelog/sluice/internal/vfs"
)

// journalReadChunk is how much of a journal file a scan reads at a time.
// A start reads each file up to three times (its end, its fences, its
// records), and a file may be configured far larger than the default
// 8 MiB: read whole, each pass held a file's size in memory.
const journalReadChunk = 1 << 20

// journalScanner reads the valid records of one generation from a
// journal file in order, through a buffer of journalReadChunk bytes that
// grows only for a record larger than that (a record never runs past its
// file, which bounds it). It stops where scanJournal's rules say a file's
// records end: a length running past the file, a CRC mismatch, another
// generation, an unknown kind.
type journalScanner struct {
	f    vfs.File
	size int64
	gen  uint64
	off  int64 // where the next record starts in the file
	buf  []byte
	at   int64 // the file offset of buf[0]
}

func newJournalScanner(f vfs.File, gen uint64) (*journalScanner, error) {
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", f.Name(), err)
	}
	return &journalScanner{f: f, size: size, gen: gen, off: journalHeaderBytes}, nil
}

// next returns the next valid record, ok false at the end of the file's
// records. The entry's payload is valid until the following call.
func (s *journalScanner) next() (e journalEntry, ok bool, err error) {
	if s.size-s.off < 4 {
		return journalEntry{}, false, nil
	}
	b, err := s.window(4)
	if err != nil {
		return journalEntry{}, false, err
	}
	length := int64(binary.BigEndian.Uint32(b))
	if length < journalRecordOverhead-4 || length > s.size-s.off-4 {
		return journalEntry{}, false, nil
	}
	if b, err = s.window(4 + length); err != nil {
		return journalEntry{}, false, err
	}
	e, n, ok := decodeJournalRecord(b, s.gen)
	if !ok {
		return journalEntry{}, false, nil
	}
	s.off += n
	return e, true, nil
}

// window returns the file's n bytes from s.off (n <= s.size-s.off),
// reading the next chunk when the buffer does not hold them.
func (s *journalScanner) window(n int64) ([]byte, error) {
	if s.off >= s.at && s.off+n <= s.at+int64(len(s.buf)) {
		return s.buf[s.off-s.at : s.off-s.at+n], nil
	}
	want := min(max(n, journalReadChunk), s.size-s.off)
	if int64(cap(s.buf)) < want {
		s.buf = make([]byte, want)
	}
	s.buf = s.buf[:want]
	if r, err := s.f.ReadAt(s.buf, s.off); int64(r) < want {
		s.buf = s.buf[:0]
		return nil, fmt.Errorf("journal %s: read at %d: %w", s.f.Name(), s.off, err)
	}
	s.at = s.off
	return s.buf[:n], nil
}

// scanJournalFile calls fn, if set, for each valid record of generation
// gen in f, and returns where they end; fn's error stops it. An entry's
// payload is valid only during its call.
func scanJournalFile(f vfs.File, gen uint64, fn func(journalEntry) error) (int64, error) {
	s, err := newJournalScanner(f, gen)
	if err != nil {
		return 0, err
	}
	for {
		e, ok, err := s.next()
		if err != nil || !ok {
			return s.off, err
		}
		if fn != nil {
			if err := fn(e); err != nil {
				return s.off, err
			}
		}
	}
}
