package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"

	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/vfs"
)

// The Fetch response is framed by hand so that record bytes go from the
// segment file to the socket (sendfile(2)) without passing through a
// response buffer: everything but the records is encoded into one small
// buffer, and each partition's records are a log.Slice written in between.
//
// Layout of a FetchResponse v4–12 frame, as the message JSON defines it
// (flexible v12: compact arrays, strings and bytes, and tag sections):
//
//	size int32 | correlation_id int32 | [v12] header tags
//	throttle_time_ms int32 | [v7+] error_code int16 | [v7+] session_id int32
//	topics: [topic string, partitions: [
//	    partition_index int32, error_code int16, high_watermark int64,
//	    last_stable_offset int64, [v5+] log_start_offset int64,
//	    aborted_transactions nullable [producer_id int64, first_offset int64, [v12] tags],
//	    [v11+] preferred_read_replica int32, records nullable bytes, [v12] tags],
//	  [v12] tags]
//	[v12] tags

// FetchMinVersion and FetchMaxVersion are the Fetch versions this encoder
// writes: v4 is the first with last_stable_offset and aborted transactions
// (what every current client sends), v13 addresses topics by id.
const (
	FetchMinVersion = 4
	FetchMaxVersion = 12
)

// fetchFlexibleVersion is the first flexible Fetch version.
const fetchFlexibleVersion = 12

// FetchAbortedTransaction is one aborted transaction in a partition's range.
type FetchAbortedTransaction struct {
	ProducerID  int64
	FirstOffset int64
}

// FetchPartition is one partition of a Fetch response.
type FetchPartition struct {
	Partition int32
	ErrorCode int16
	// HighWatermark bounds what a consumer may read (only committed data
	// is served); a follower also takes its own high watermark from it,
	// which is how the HW reaches the followers at all.
	HighWatermark int64
	// LastStableOffset equals HighWatermark while transactions do not
	// exist; it is sent anyway because read_committed clients stop at it.
	LastStableOffset int64
	// LogStartOffset (v5+, KIP-107) tells a consumer that DeleteRecords or
	// retention moved the start, and lets a follower move its own start to
	// match instead of keeping records the leader has deleted.
	LogStartOffset int64
	// AbortedTransactions is null (nil) for read_uncommitted fetches and a
	// list, possibly empty, for read_committed ones, as Kafka answers.
	AbortedTransactions []FetchAbortedTransaction
	// PreferredReadReplica (v11+, KIP-392 fetch from follower) is always -1
	// today: every read is served by the leader, so a rack-aware consumer
	// is never redirected to a replica that may lag.
	PreferredReadReplica int32
	// Records are the partition's batches, sent from the segment file;
	// nil sends empty (not null) records, as Kafka does. The response
	// owns the slice from EncodeFetchResponse on and releases it.
	Records *log.Slice
}

// FetchTopic is one topic of a Fetch response.
type FetchTopic struct {
	Topic      string
	Partitions []FetchPartition
}

// FetchResponse is a whole Fetch response, header included.
type FetchResponse struct {
	Version        int16
	CorrelationID  int32
	ThrottleMillis int32
	// ErrorCode and SessionID (v7+) belong to fetch sessions (KIP-227):
	// the top-level code reports a session the broker no longer has, and
	// session id 0 tells the client that no session was kept, so it sends
	// full fetch requests next time.
	ErrorCode int16
	SessionID int32
	Topics    []FetchTopic
}

// FetchFrame is an encoded Fetch response: a Response whose WriteTo sends
// the records with sendfile(2) when it writes to a *net.TCPConn and the
// segment file is an operating-system file, and copies them otherwise (TLS,
// in-memory files, tests).
type FetchFrame struct {
	head []byte // every byte that is not records, size prefix first
	// splits are in ascending order of at, because encoding walks the
	// partitions in response order; both write paths rely on it to emit
	// head and records alternately in one pass.
	splits []fetchSplit
	slices []*log.Slice // every slice handed over, released by Release
	size   int64        // the whole frame, size prefix included
	once   sync.Once    // Release runs once
}

// fetchSplit places one partition's records after head[:at].
type fetchSplit struct {
	at      int
	records *log.Slice
}

// ErrFetchTooLarge: the response would not fit the int32 size prefix. The
// handler caps responses (fetch.max.bytes) far below it.
var ErrFetchTooLarge = errors.New("fetch response larger than a frame can be")

// EncodeFetchResponse frames r. It takes ownership of every Records slice
// in r, also on error (they are released then).
func EncodeFetchResponse(r *FetchResponse) (*FetchFrame, error) {
	// Take the slices before any check, so every return path (the version
	// error too) releases them: an unreleased slice keeps its segment file
	// open after retention deleted it, and the disk space never comes back.
	f := &FetchFrame{}
	for ti := range r.Topics {
		for pi := range r.Topics[ti].Partitions {
			if s := r.Topics[ti].Partitions[pi].Records; s != nil {
				f.slices = append(f.slices, s)
			}
		}
	}
	if r.Version < FetchMinVersion || r.Version > FetchMaxVersion {
		f.Release()
		return nil, fmt.Errorf("fetch response v%d: only v%d-%d are framed by hand", r.Version, FetchMinVersion, FetchMaxVersion)
	}
	e := fetchEncoder{flexible: r.Version >= fetchFlexibleVersion, buf: make([]byte, 0, fetchHeadSizeHint(r))}
	e.buf = append(e.buf, 0, 0, 0, 0) // size, set below
	e.int32(r.CorrelationID)
	e.tags() // response header v1 when flexible
	e.int32(r.ThrottleMillis)
	if r.Version >= 7 {
		e.int16(r.ErrorCode)
		e.int32(r.SessionID)
	}
	e.arrayLen(len(r.Topics))
	var recordBytes int64
	for ti := range r.Topics {
		t := &r.Topics[ti]
		e.string(t.Topic)
		e.arrayLen(len(t.Partitions))
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			e.partitionHead(r.Version, p)
			var size int64
			if p.Records != nil {
				size = p.Records.Size
			}
			e.bytesLen(size)
			if size > 0 {
				f.splits = append(f.splits, fetchSplit{at: len(e.buf), records: p.Records})
				recordBytes += size
			}
			e.tags()
		}
		e.tags()
	}
	e.tags()
	f.head, f.size = e.buf, int64(len(e.buf))+recordBytes
	// The size prefix counts the bytes after itself. Checking the total
	// here also covers every partition's int32 records length below it.
	if f.size-4 > math.MaxInt32 {
		f.Release()
		return nil, fmt.Errorf("%w: %d bytes", ErrFetchTooLarge, f.size)
	}
	binary.BigEndian.PutUint32(f.head, uint32(f.size-4))
	return f, nil
}

// fetchHeadSizeHint guesses the head's size so it is allocated once.
// A partition's head is about 45 bytes at v12 (ids, offsets, lengths and
// tags); 64 leaves room for a few aborted transactions. A low guess costs
// one reallocation, never correctness.
func fetchHeadSizeHint(r *FetchResponse) int {
	n := 32
	for ti := range r.Topics {
		n += 8 + len(r.Topics[ti].Topic) + 64*len(r.Topics[ti].Partitions)
	}
	return n
}

// Size is the frame's length on the wire, size prefix included.
func (f *FetchFrame) Size() int64 { return f.size }

// Release releases every record slice. It may be called more than once.
func (f *FetchFrame) Release() {
	f.once.Do(func() {
		for _, s := range f.slices {
			s.Release()
		}
		f.slices, f.splits = nil, nil
	})
}

// WriteTo writes the whole frame. An error leaves a partial frame on w:
// the caller must close the connection.
func (f *FetchFrame) WriteTo(w io.Writer) (int64, error) {
	// sendfile only helps on a plain TCP socket: a TLS connection has to
	// encrypt in user space, so its bytes must pass through memory anyway,
	// and a frame with no OS-backed records has nothing to send from.
	if conn, ok := w.(*net.TCPConn); ok && sendfileSupported && f.anyOSFile() {
		return f.writeSendfile(conn)
	}
	return f.writeCopy(w)
}

func (f *FetchFrame) anyOSFile() bool {
	for _, s := range f.splits {
		if _, ok := s.records.File().(vfs.OSFile); ok {
			return true
		}
	}
	return false
}

// writeSendfile writes the head with write(2) and the records with
// sendfile(2), corked so the pieces leave in full segments.
func (f *FetchFrame) writeSendfile(conn *net.TCPConn) (written int64, err error) {
	// A failed cork costs only extra small packets, so it does not fail the
	// response. Uncorking is what flushes the last partial segment: left
	// corked, the tail of the response would wait in the kernel for up to
	// 200 ms, and a long-polling consumer would see it as latency.
	if err := setCork(conn, true); err == nil {
		defer func() {
			if uncorkErr := setCork(conn, false); err == nil && uncorkErr != nil {
				err = fmt.Errorf("fetch response: uncork: %w", uncorkErr)
			}
		}()
	}
	var scratch []byte // for records of a file that is not an OS file
	defer func() { fetchPutBuffer(scratch) }()
	at := 0
	for _, split := range f.splits {
		n, err := conn.Write(f.head[at:split.at])
		written += int64(n)
		if err != nil {
			return written, fmt.Errorf("fetch response: %w", err)
		}
		at = split.at
		s := split.records
		var sent int64
		if osf, ok := s.File().(vfs.OSFile); ok {
			sent, err = sendFile(conn, osf.OSFile(), s.Position, s.Size)
		} else {
			if scratch == nil {
				scratch = fetchGetBuffer()
			}
			sent, err = fetchCopyRecords(conn, s, scratch)
		}
		written += sent
		if err != nil {
			return written, fmt.Errorf("fetch response: records at %d of %s: %w", s.Position, s.File().Name(), err)
		}
	}
	n, err := conn.Write(f.head[at:])
	written += int64(n)
	if err != nil {
		return written, fmt.Errorf("fetch response: %w", err)
	}
	return written, nil
}

// writeCopy writes the frame through one pooled buffer: head bytes are
// appended to it and record bytes read into it, so a response with many
// small partitions costs few writes.
func (f *FetchFrame) writeCopy(w io.Writer) (int64, error) {
	buf := fetchGetBuffer()
	defer func() { fetchPutBuffer(buf) }()
	c := fetchCopier{w: w, buf: buf[:0]}
	at := 0
	for _, split := range f.splits {
		c.append(f.head[at:split.at])
		at = split.at
		if err := c.records(split.records); err != nil {
			return c.written, err
		}
	}
	c.append(f.head[at:])
	c.flush()
	if c.err != nil {
		return c.written, fmt.Errorf("fetch response: %w", c.err)
	}
	return c.written, nil
}

// fetchCopier is a write buffer that records can be read into directly.
type fetchCopier struct {
	w       io.Writer
	buf     []byte // len: bytes waiting; cap: the buffer
	written int64
	err     error
}

func (c *fetchCopier) flush() {
	if c.err != nil || len(c.buf) == 0 {
		return
	}
	n, err := c.w.Write(c.buf)
	c.written += int64(n)
	c.err = err
	c.buf = c.buf[:0]
}

func (c *fetchCopier) append(p []byte) {
	for len(p) > 0 && c.err == nil {
		if len(c.buf) == cap(c.buf) {
			c.flush()
			continue
		}
		n := copy(c.buf[len(c.buf):cap(c.buf)], p)
		c.buf, p = c.buf[:len(c.buf)+n], p[n:]
	}
}

// records reads a slice's bytes into the buffer, flushing as it fills.
func (c *fetchCopier) records(s *log.Slice) error {
	pos, end := s.Position, s.Position+s.Size
	for pos < end && c.err == nil {
		if len(c.buf) == cap(c.buf) {
			c.flush()
			continue
		}
		free := c.buf[len(c.buf):cap(c.buf)]
		free = free[:min(int64(len(free)), end-pos)]
		n, err := s.File().ReadAt(free, pos)
		c.buf, pos = c.buf[:len(c.buf)+n], pos+int64(n)
		if n < len(free) {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // the segment shrank under the reader
			}
			return fmt.Errorf("fetch response: records at %d of %s: %w", pos, s.File().Name(), err)
		}
	}
	if c.err != nil {
		return fmt.Errorf("fetch response: %w", c.err)
	}
	return nil
}

// fetchCopyRecords copies one slice to w through buf.
func fetchCopyRecords(w io.Writer, s *log.Slice, buf []byte) (int64, error) {
	c := fetchCopier{w: w, buf: buf[:0]}
	err := c.records(s)
	c.flush()
	if err == nil && c.err != nil {
		err = c.err
	}
	return c.written, err
}

// fetchCopyBufferSize is the copy path's buffer: large enough that a write
// moves a useful amount, small enough to pool one per writing connection.
const fetchCopyBufferSize = 64 << 10

var fetchBuffers = sync.Pool{New: func() any { b := make([]byte, fetchCopyBufferSize); return &b }}

func fetchGetBuffer() []byte { return *fetchBuffers.Get().(*[]byte) }

// fetchPutBuffer returns b to the pool. A buffer of another capacity did
// not come from it, and putting it back would let the pool hand out a
// buffer shorter than the copy loops assume.
func fetchPutBuffer(b []byte) {
	if cap(b) == fetchCopyBufferSize {
		b = b[:cap(b)]
		fetchBuffers.Put(&b)
	}
}

// fetchEncoder appends Fetch response fields, compact when flexible.
type fetchEncoder struct {
	buf      []byte
	flexible bool
}

func (e *fetchEncoder) int16(v int16) { e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(v)) }
func (e *fetchEncoder) int32(v int32) { e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(v)) }
func (e *fetchEncoder) int64(v int64) { e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(v)) }

// tags writes an empty tag section; nothing when not flexible.
func (e *fetchEncoder) tags() {
	if e.flexible {
		e.buf = append(e.buf, 0)
	}
}

func (e *fetchEncoder) arrayLen(n int) {
	if e.flexible {
		e.buf = binary.AppendUvarint(e.buf, uint64(n)+1)
		return
	}
	e.int32(int32(n))
}

func (e *fetchEncoder) nullableArrayLen(n int, null bool) {
	switch {
	case null && e.flexible:
		e.buf = append(e.buf, 0)
	case null:
		e.int32(-1)
	default:
		e.arrayLen(n)
	}
}

// string writes a topic name; request decoding bounded it to an int16
// length already.
func (e *fetchEncoder) string(s string) {
	if e.flexible {
		e.buf = binary.AppendUvarint(e.buf, uint64(len(s))+1)
	} else {
		e.int16(int16(len(s)))
	}
	e.buf = append(e.buf, s...)
}

// bytesLen writes the length of non-null bytes that follow. The int32
// cast is safe: EncodeFetchResponse has checked that the whole frame fits
// an int32.
func (e *fetchEncoder) bytesLen(n int64) {
	if e.flexible {
		e.buf = binary.AppendUvarint(e.buf, uint64(n)+1)
		return
	}
	e.int32(int32(n))
}

// partitionHead writes a partition's fields before its records.
func (e *fetchEncoder) partitionHead(version int16, p *FetchPartition) {
	e.int32(p.Partition)
	e.int16(p.ErrorCode)
	e.int64(p.HighWatermark)
	e.int64(p.LastStableOffset)
	if version >= 5 {
		e.int64(p.LogStartOffset)
	}
	e.nullableArrayLen(len(p.AbortedTransactions), p.AbortedTransactions == nil)
	for _, a := range p.AbortedTransactions {
		e.int64(a.ProducerID)
		e.int64(a.FirstOffset)
		e.tags()
	}
	if version >= 11 {
		e.int32(p.PreferredReadReplica)
	}
}
