package log

// The write-ahead journal of a log directory (docs/proposals.md, section
// 1; opt-in with log.flush.journal). With fsync before every ack, a
// produce spread over many partitions makes many segment files durable
// at once; a syncfs of the directory does that file by file, and so does
// ext4 for parallel fdatasyncs, each with its own journal commit. The
// journal instead appends a copy of each small round, after its segment
// write, to one preallocated file, and one fdatasync of that file makes
// every queued round durable (group commit, as a log's own rounds). The
// segment files are made durable later, together, by a checkpoint's
// syncfs; until then a crash is repaired by replaying the journal onto
// the logs' recovered ends.
//
// Files. <dir>/0.wal and <dir>/1.wal, FileBytes each, written in full
// (zeros) and fsynced when created, so that overwriting them changes no
// file-system metadata and an fdatasync writes only the data. One is
// active, the other spare (or being checkpointed). Each starts with a
// header:
//
//	magic "SLJ1" | generation uint64 | CRC-32C of the 12 bytes before
//
// and holds records from byte journalHeaderBytes on:
//
//	length     uint32  bytes after this field
//	crc        uint32  CRC-32C (Castagnoli) of every byte after this field
//	generation uint64  the file's generation when the record was written
//	kind       uint8   journalAppend or journalFence
//	nameLen    uint16
//	name       []byte  the log's directory name (<topic>-<partition>)
//	offset     int64   append: base offset of the first batch; fence: from
//	payload    []byte  append: the batches as written to the segment
//
// A scan of a file ends at the first record whose length runs past the
// file, whose CRC fails or whose generation is not the file's: a torn
// write, zeros, or a record of the file's earlier use. Files are replayed
// in the order of their header generations.
//
// Fences. Replay only appends at a log's end, but a truncation moves the
// end back, and a record journaled before it would bring back batches the
// truncation dropped. A log truncating to from first journals a fence
// (Fence(name, from)) and waits for it: replay drops, from every record of
// that log before the fence, the batches at offsets >= from (from < 0:
// every batch, for a full truncation or a deletion).
//
// Checkpoints. When the active file has no room for the next records, the
// spare becomes active (generation + 1) and the old one is checkpointed
// in the background: one syncfs of the directory's file system (every
// segment write of its records happened before the record was queued, so
// before the syncfs began), then Checkpointed with the end each log
// reached in it, which moves the logs' recovery points; then it is the
// spare. Checkpoint forces the same, so that an idle journal does not
// keep a long replay for a restart.
//
// Errors. A failed write or fdatasync of the journal fails it for good:
// every Wait covering the failed records returns the error, and Append
// refuses from then on (the logs fall back to their own syncs; a log that
// got the error is failed as by a failed fsync). A failed checkpoint
// syncfs fails the journal too, and its retired file is never reused.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"sort"
	"sync"

	"github.com/sluicelog/sluice/internal/vfs"
)

// The journal's on-disk format, drawn above; it must not change.
const (
	journalHeaderBytes = 16
	journalAppend      = 1
	journalFence       = 2
	// DefaultJournalFileBytes is each journal file's size.
	DefaultJournalFileBytes = 8 << 20

	// journalMagic opens every valid header.
	journalMagic = "SLJ1"
	// journalRecordOverhead is a record's bytes besides its name and
	// payload: length, crc, generation, kind, nameLen and offset.
	journalRecordOverhead = 4 + 4 + 8 + 1 + 2 + 8
	// minJournalFileBytes keeps room in a file for a record of a long
	// log name and a small payload; smaller is a configuration mistake.
	minJournalFileBytes = 512
	// journalZeroChunk bounds the buffer that fills a new file with zeros.
	journalZeroChunk = 1 << 20
)

var journalCRC = crc32.MakeTable(crc32.Castagnoli)

// ErrJournalFull is Wait's answer for records that did not fit in the
// active file while the spare was still being checkpointed, and for a
// later record of the same log waited for first: the caller makes its
// rounds durable another way (its own fsync). Not sticky.
var ErrJournalFull = errors.New("journal full")

// errJournalClosed answers waits for records that Close dropped.
var errJournalClosed = errors.New("journal closed")

// JournalOptions configure OpenJournal.
type JournalOptions struct {
	FS        vfs.FS
	Dir       string // <log dir>/journal, created if absent
	FileBytes int64  // size of each journal file; 0: DefaultJournalFileBytes
	// Syncer makes the file system durable for checkpoints (syncfs). The
	// journal does not close it.
	Syncer vfs.FileSystemSyncer
	Logger *slog.Logger
	// Checkpointed is called, after a checkpoint's syncfs, with the end
	// offset each log reached in the retired file (by name) and the
	// newest ticket the file holds. The manager moves those logs'
	// recovery points and writes them out; a log that journaled a fence
	// under a later ticket (a truncation, or a log of the name deleted
	// and created again) ignores its end, which names offsets since
	// rewritten. An error keeps the file from being reused (and is
	// logged); a later Checkpoint retries it, without a new syncfs.
	Checkpointed func(ends map[string]int64, last uint64) error
}

// Journal is a log directory's write-ahead journal. Safe for concurrent
// use.
//
// Group commit mirrors a log's (append.go), with one role instead of two:
// Append encodes a record and queues it under mu; a Wait that finds
// records queued and no round being written becomes the writer: it takes
// them all, places them (planLocked: the active file, or the spare once
// the active one is full), drops mu for one WritevAt and one fdatasync
// per file touched, then publishes the round's last ticket as durable.
// Appends arriving meanwhile queue for the next round, which the next
// waiter writes. A round that switched files hands the retired one to a
// checkpoint goroutine once its own write is synced, so that the syncfs
// begins after every write of the retired file's records.
type Journal struct {
	opts   JournalOptions
	logger *slog.Logger
	files  [2]vfs.File // 0.wal and 1.wal; fixed from OpenJournal to Close

	mu   sync.Mutex
	cond sync.Cond // broadcast when a round or a checkpoint ends
	// active indexes files: the file appended to. gen is its generation
	// and pos where its next record goes; headerWritten tells whether
	// its header is written (or placed in the round being written).
	active        int
	gen           uint64
	pos           int64
	headerWritten bool
	// ends holds, per log, its end offset after its last record in the
	// active file: what Checkpointed gets once the file is retired.
	ends map[string]int64
	// placed is the newest ticket placed in the active file.
	placed uint64
	// spareReady: the other file may become active (checkpointed, or
	// cleared by Reset or never used).
	spareReady bool
	pending    []*journalRecord // queued, not yet taken by a writer
	lastTicket uint64           // the newest ticket handed out
	durable    uint64           // every ticket up to it was written and synced, or refused as full
	// full holds, per log and kind, the newest ticket refused with
	// ErrJournalFull that no Wait has reported yet. Per log, not per
	// ticket: a log's syncer waits only for its newest round, and a
	// refusal of an earlier one must reach that wait (a later round
	// written in the spare does not make the refused one durable); and
	// tickets never waited for must not pile up.
	full          map[journalFullKey]uint64
	writing       bool // a writer is in its write and sync
	checkpointing bool // a checkpoint goroutine runs
	rotateWanted  bool // Checkpoint ran while a round was being written
	// unconfirmed is a retired file whose syncfs succeeded and whose
	// Checkpointed failed: not reused until Checkpoint retries it.
	unconfirmed *journalRetired
	err         error // sticky: a failed write, sync or checkpoint syncfs
	closed      bool
	stats       JournalStats
}

// JournalStats count what a journal did, for metrics and benchmarks.
type JournalStats struct {
	Syncs       int64 // fdatasyncs of journal files
	Records     int64 // records written (appends and fences)
	Full        int64 // records refused with ErrJournalFull
	Checkpoints int64 // retired files checkpointed and made spare
}

// Stats returns the running totals.
func (j *Journal) Stats() JournalStats {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.stats
}

// journalRecord is one queued record, encoded; its generation and CRC are
// filled in by the writer, once it knows the file.
type journalRecord struct {
	ticket uint64
	kind   byte
	name   string
	end    int64 // append: the log's end after it; fence: from
	buf    []byte
}

// journalFullKey names whose refusals full holds: a log's appends, or
// its fences, which wait apart (a fence's Wait must not take the report
// the log's syncer needs).
type journalFullKey struct {
	name string
	kind byte
}

// journalRetired is a file taken out of use and the ends its logs reached
// in it.
type journalRetired struct {
	file int
	ends map[string]int64
	last uint64 // the newest ticket placed in the file
}

// journalWrite is one WritevAt of a round: records for one file from off,
// preceded by the file's header when it is the file's first write.
type journalWrite struct {
	file    vfs.File
	off     int64
	gen     uint64
	header  bool
	records []*journalRecord
}

// journalRound is what one writer writes: tickets up to last, in one or
// two writes, and maybe a file to checkpoint once they are synced.
type journalRound struct {
	last   uint64
	writes []journalWrite
	retire *journalRetired
}

// journalEntry is a valid record found by a scan. payload aliases the
// scan's buffer.
type journalEntry struct {
	kind    byte
	name    string
	offset  int64
	payload []byte
}

// OpenJournal opens (creating if absent) the journal in opts.Dir. It
// does not replay it: the manager calls Replay once its logs are open,
// then Reset, before the first Append.
func OpenJournal(opts JournalOptions) (*Journal, error) {
	if opts.FileBytes == 0 {
		opts.FileBytes = DefaultJournalFileBytes
	}
	if opts.FileBytes < minJournalFileBytes {
		return nil, fmt.Errorf("journal %s: file size %d is below the minimum %d", opts.Dir, opts.FileBytes, minJournalFileBytes)
	}
	if opts.Syncer == nil {
		return nil, fmt.Errorf("journal %s: checkpoints need a file-system syncer", opts.Dir)
	}
	j := &Journal{opts: opts, logger: opts.Logger, ends: map[string]int64{}, full: map[journalFullKey]uint64{}}
	if j.logger == nil {
		j.logger = slog.Default()
	}
	j.cond.L = &j.mu
	if err := opts.FS.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("journal %s: %w", opts.Dir, err)
	}
	created := false
	for i := range j.files {
		f, made, err := openJournalFile(opts.FS, j.filePath(i), opts.FileBytes)
		if err != nil {
			_ = j.closeFiles()
			return nil, err
		}
		j.files[i], created = f, created || made
	}
	if created {
		if err := opts.FS.SyncDir(opts.Dir); err != nil {
			_ = j.closeFiles()
			return nil, fmt.Errorf("journal %s: sync directory: %w", opts.Dir, err)
		}
	}
	if err := j.loadState(); err != nil {
		_ = j.closeFiles()
		return nil, err
	}
	return j, nil
}

func (j *Journal) filePath(i int) string {
	return filepath.Join(j.opts.Dir, fmt.Sprintf("%d.wal", i))
}

// openJournalFile opens a journal file, first filling it with zeros up to
// size and syncing it if it is shorter (new, or its creation was cut
// short by a crash), so that later writes allocate nothing. made reports
// that it did.
func openJournalFile(fsys vfs.FS, path string, size int64) (vfs.File, bool, error) {
	f, err := fsys.OpenReadWrite(path)
	if err != nil {
		return nil, false, fmt.Errorf("journal %s: %w", path, err)
	}
	have, err := f.Size()
	if err == nil && have < size {
		err = writeJournalZeros(f, have, size)
	}
	if err != nil {
		_ = f.Close()
		return nil, false, fmt.Errorf("journal %s: %w", path, err)
	}
	return f, have < size, nil
}

func writeJournalZeros(f vfs.File, from, to int64) error {
	zeros := make([]byte, min(to-from, journalZeroChunk))
	for off := from; off < to; off += int64(len(zeros)) {
		n := min(to-off, int64(len(zeros)))
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return err
		}
	}
	return f.Sync()
}

// loadState makes the file with the newer valid header active and finds
// its end by a scan. With no valid header the journal is new: generation
// 1 in 0.wal, whose header goes out with its first records. Otherwise the
// other file may hold records not yet checkpointed, so it is not a spare
// until Reset clears it.
func (j *Journal) loadState() error {
	var gens [2]uint64
	var valid [2]bool
	for i, f := range j.files {
		g, ok, err := readJournalHeader(f)
		if err != nil {
			return err
		}
		gens[i], valid[i] = g, ok
	}
	j.active, j.gen, j.pos = 0, 1, journalHeaderBytes
	if !valid[0] && !valid[1] {
		j.spareReady = true
		return nil
	}
	if !valid[0] || (valid[1] && gens[1] > gens[0]) {
		j.active = 1
	}
	j.gen, j.headerWritten = gens[j.active], true
	pos, err := scanJournalFile(j.files[j.active], j.gen, nil)
	if err != nil {
		return err
	}
	j.pos = pos
	return nil
}

func journalHeader(gen uint64) []byte {
	b := make([]byte, journalHeaderBytes)
	copy(b, journalMagic)
	binary.BigEndian.PutUint64(b[4:], gen)
	binary.BigEndian.PutUint32(b[12:], crc32.Checksum(b[:12], journalCRC))
	return b
}

// readJournalHeader returns the file's generation, ok false when its
// header is not valid (zeros, torn, or cleared by Reset).
func readJournalHeader(f vfs.File) (uint64, bool, error) {
	b := make([]byte, journalHeaderBytes)
	if n, err := f.ReadAt(b, 0); n < len(b) {
		if err == nil || errors.Is(err, io.EOF) {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("journal %s: read header: %w", f.Name(), err)
	}
	if string(b[:4]) != journalMagic || binary.BigEndian.Uint32(b[12:]) != crc32.Checksum(b[:12], journalCRC) {
		return 0, false, nil
	}
	return binary.BigEndian.Uint64(b[4:]), true, nil
}

// decodeJournalRecord decodes the record at the start of b, ok false when
// there is none: a length running past b, a CRC mismatch, another
// generation, an unknown kind.
func decodeJournalRecord(b []byte, gen uint64) (journalEntry, int64, bool) {
	if len(b) < 4 {
		return journalEntry{}, 0, false
	}
	length := int64(binary.BigEndian.Uint32(b))
	if length < journalRecordOverhead-4 || length > int64(len(b))-4 {
		return journalEntry{}, 0, false
	}
	rec := b[4 : 4+length]
	if crc32.Checksum(rec[4:], journalCRC) != binary.BigEndian.Uint32(rec) || binary.BigEndian.Uint64(rec[4:]) != gen {
		return journalEntry{}, 0, false
	}
	nameLen := int64(binary.BigEndian.Uint16(rec[13:]))
	if 15+nameLen+8 > length {
		return journalEntry{}, 0, false
	}
	e := journalEntry{kind: rec[12], name: string(rec[15 : 15+nameLen])}
	e.offset = int64(binary.BigEndian.Uint64(rec[15+nameLen:]))
	e.payload = rec[23+nameLen:]
	if e.kind != journalAppend && (e.kind != journalFence || len(e.payload) != 0) {
		return journalEntry{}, 0, false
	}
	return e, 4 + length, true
}

// encodeJournalRecord lays out a record of size bytes; its generation and
// CRC are left for sealJournalRecord.
func encodeJournalRecord(kind byte, name string, offset int64, batches [][]byte, size int) []byte {
	buf := make([]byte, size)
	binary.BigEndian.PutUint32(buf, uint32(size-4))
	buf[16] = kind
	binary.BigEndian.PutUint16(buf[17:], uint16(len(name)))
	n := 19 + copy(buf[19:], name)
	binary.BigEndian.PutUint64(buf[n:], uint64(offset))
	n += 8
	for _, b := range batches {
		n += copy(buf[n:], b)
	}
	return buf
}

func sealJournalRecord(buf []byte, gen uint64) {
	binary.BigEndian.PutUint64(buf[8:], gen)
	binary.BigEndian.PutUint32(buf[4:], crc32.Checksum(buf[8:], journalCRC))
}

// Replay calls fn, in journal order, for every append record that is
// still valid: name and base as journaled, batches as the payload (valid
// only during the call: the files are read a chunk at a time), and
// limit the offset from which a later fence drops this record's batches
// (math.MaxInt64: none; a record that a fence drops whole is not passed).
// It stops at fn's first error.
func (j *Journal) Replay(fn func(name string, base int64, batches []byte, limit int64) error) error {
	order, err := j.replayOrder()
	if err != nil {
		return err
	}
	fences, err := j.collectFences(order)
	if err != nil {
		return err
	}
	var seq int64 // the record's place in the journal, counted as collectFences does
	for _, i := range order {
		_, err := scanJournalFile(j.files[i.file], i.gen, func(e journalEntry) error {
			seq++
			if e.kind != journalAppend {
				return nil
			}
			limit := fences.limit(e.name, seq)
			if limit < 0 || e.offset >= limit {
				return nil
			}
			return fn(e.name, e.offset, e.payload, limit)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// journalFileGen is a file with a valid header, for replay.
type journalFileGen struct {
	file int
	gen  uint64
}

// replayOrder lists the files with a valid header, oldest generation
// first.
func (j *Journal) replayOrder() ([]journalFileGen, error) {
	var order []journalFileGen
	for i, f := range j.files {
		gen, ok, err := readJournalHeader(f)
		if err != nil {
			return nil, err
		}
		if ok {
			order = append(order, journalFileGen{file: i, gen: gen})
		}
	}
	sort.Slice(order, func(a, b int) bool { return order[a].gen < order[b].gen })
	return order, nil
}

// journalFences holds each log's fences in journal order: seq the fence
// record's place, from its offset, and minFrom the smallest from of it
// and every later fence of the log.
type journalFences map[string][]journalFencePoint

type journalFencePoint struct {
	seq, from, minFrom int64
}

// limit is the offset from which the fences after the record at seq drop
// a record of name.
func (f journalFences) limit(name string, seq int64) int64 {
	points := f[name]
	i := sort.Search(len(points), func(i int) bool { return points[i].seq > seq })
	if i == len(points) {
		return math.MaxInt64
	}
	return points[i].minFrom
}

func (j *Journal) collectFences(order []journalFileGen) (journalFences, error) {
	fences := journalFences{}
	var seq int64
	for _, i := range order {
		_, err := scanJournalFile(j.files[i.file], i.gen, func(e journalEntry) error {
			seq++
			if e.kind == journalFence {
				fences[e.name] = append(fences[e.name], journalFencePoint{seq: seq, from: e.offset})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for _, points := range fences {
		low := int64(math.MaxInt64)
		for k := len(points) - 1; k >= 0; k-- {
			low = min(low, points[k].from)
			points[k].minFrom = low
		}
	}
	return fences, nil
}

// Reset forgets every record (the logs have made what Replay gave them
// durable): the other file's header is cleared, then the active file
// gets a new generation, both durably. In that order: a crash between
// must not leave the older file valid without the newer one, whose
// fences a replay of the older one's records needs.
func (j *Journal) Reset() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.refusalLocked(); err != nil {
		return err
	}
	if j.writing || j.checkpointing || len(j.pending) > 0 {
		return fmt.Errorf("journal %s: reset while in use", j.opts.Dir)
	}
	gen := j.gen + 1
	active, spare := j.files[j.active], j.files[1-j.active]
	err := writeJournalHeaderSynced(spare, make([]byte, journalHeaderBytes))
	if err == nil {
		err = writeJournalHeaderSynced(active, journalHeader(gen))
	}
	if err != nil {
		j.failLocked(err)
		return err
	}
	j.gen, j.pos, j.headerWritten, j.spareReady = gen, journalHeaderBytes, true, true
	j.ends, j.unconfirmed = map[string]int64{}, nil
	return nil
}

func writeJournalHeaderSynced(f vfs.File, header []byte) error {
	if _, err := f.WriteAt(header, 0); err != nil {
		return fmt.Errorf("journal %s: write header: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("journal %s: sync: %w", f.Name(), err)
	}
	return nil
}

// Append queues a copy of a round's batches for log name, base its first
// offset and end the offset after its last, and returns a ticket for
// Wait. ok is false when the record can never fit in a file, or the
// journal failed or is closed: the caller syncs its round another way.
func (j *Journal) Append(name string, base, end int64, batches [][]byte) (ticket uint64, ok bool) {
	ticket, err := j.queue(journalAppend, name, base, end, batches)
	return ticket, err == nil
}

// queue encodes a record (outside the lock: it copies the payload) and
// queues it for the next round.
func (j *Journal) queue(kind byte, name string, offset, end int64, batches [][]byte) (uint64, error) {
	size := journalRecordOverhead + len(name)
	for _, b := range batches {
		size += len(b)
	}
	if len(name) > math.MaxUint16 || int64(size) > j.opts.FileBytes-journalHeaderBytes {
		return 0, fmt.Errorf("journal %s: a record of %d bytes for %q does not fit in a file", j.opts.Dir, size, name)
	}
	buf := encodeJournalRecord(kind, name, offset, batches, size)
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.refusalLocked(); err != nil {
		return 0, err
	}
	j.lastTicket++
	j.pending = append(j.pending, &journalRecord{ticket: j.lastTicket, kind: kind, name: name, end: end, buf: buf})
	return j.lastTicket, nil
}

// LastTicket is the newest ticket handed out: every file retired later
// than a log created now holds only records queued after it, or that
// log's own.
func (j *Journal) LastTicket() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.lastTicket
}

// refusalLocked is why the journal takes no more records, if it does not.
func (j *Journal) refusalLocked() error {
	if j.err != nil {
		return j.err
	}
	if j.closed {
		return errJournalClosed
	}
	return nil
}

// Wait returns once the record of ticket, an append of log name, is
// durable in the journal, writing and syncing whatever is queued if no
// one else is (group commit). ErrJournalFull: that record, or an earlier
// append of the log not yet reported, was not written (see there).
func (j *Journal) Wait(name string, ticket uint64) error {
	return j.wait(journalFullKey{name: name, kind: journalAppend}, ticket)
}

func (j *Journal) wait(key journalFullKey, ticket uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if ticket == 0 || ticket > j.lastTicket {
		return fmt.Errorf("journal %s: unknown ticket %d", j.opts.Dir, ticket)
	}
	for {
		if done, err := j.resultLocked(key, ticket); done {
			return err
		}
		if !j.writing && len(j.pending) > 0 {
			j.writeRoundLocked()
			continue
		}
		j.cond.Wait()
	}
}

// resultLocked tells whether ticket is settled, and how.
func (j *Journal) resultLocked(key journalFullKey, ticket uint64) (bool, error) {
	if refused, ok := j.full[key]; ok && refused <= ticket {
		delete(j.full, key)
		return true, ErrJournalFull
	}
	if ticket <= j.durable {
		return true, nil
	}
	if err := j.refusalLocked(); err != nil {
		return true, err
	}
	return false, nil
}

// writeRoundLocked writes and syncs every queued record, with mu dropped
// for the I/O, and publishes the outcome.
func (j *Journal) writeRoundLocked() {
	round := j.planLocked()
	j.writing = true
	j.mu.Unlock()
	var err error
	for _, w := range round.writes {
		if err = w.write(); err != nil {
			break
		}
	}
	j.mu.Lock()
	j.writing = false
	if err != nil {
		j.failLocked(err)
	} else {
		j.durable = round.last
		j.stats.Syncs += int64(len(round.writes))
		for _, w := range round.writes {
			j.stats.Records += int64(len(w.records))
		}
		if round.retire != nil && !j.closed {
			j.startCheckpointLocked(round.retire)
		}
		if j.rotateWanted {
			j.rotateWanted = false
			j.retireIdleLocked()
		}
	}
	j.cond.Broadcast()
}

// planLocked takes the queued records and places them: in the active
// file while they fit, then in the spare, which becomes active, if it is
// ready. Records left over are refused with ErrJournalFull, all of them
// from the first that did not fit, so that a log's records in the journal
// never skip one of its rounds.
func (j *Journal) planLocked() journalRound {
	records := j.pending
	j.pending = nil
	round := journalRound{last: j.lastTicket}
	var w journalWrite
	for i, rec := range records {
		if j.pos+int64(len(rec.buf)) > j.opts.FileBytes {
			if !j.spareReady {
				for _, r := range records[i:] {
					key := journalFullKey{name: r.name, kind: r.kind}
					j.full[key] = max(j.full[key], r.ticket)
				}
				j.stats.Full += int64(len(records) - i)
				break
			}
			round.writes = appendJournalWrite(round.writes, w)
			w = journalWrite{}
			round.retire = j.switchFileLocked()
		}
		if len(w.records) == 0 {
			w = journalWrite{file: j.files[j.active], off: j.pos, gen: j.gen, header: !j.headerWritten}
			j.headerWritten = true
		}
		w.records = append(w.records, rec)
		j.pos += int64(len(rec.buf))
		j.placed = rec.ticket
		j.noteEndLocked(rec)
	}
	round.writes = appendJournalWrite(round.writes, w)
	return round
}

func appendJournalWrite(writes []journalWrite, w journalWrite) []journalWrite {
	if len(w.records) == 0 {
		return writes
	}
	return append(writes, w)
}

// noteEndLocked records where rec leaves its log, for Checkpointed. A
// fence leaves nothing to checkpoint for the log until its next record:
// the truncation may end the log below from, and the offsets from there
// are rewritten by rounds that may come after the checkpoint's syncfs.
func (j *Journal) noteEndLocked(rec *journalRecord) {
	if rec.kind == journalAppend {
		j.ends[rec.name] = rec.end
	} else {
		delete(j.ends, rec.name)
	}
}

// switchFileLocked makes the spare active under the next generation and
// returns the file it retires.
func (j *Journal) switchFileLocked() *journalRetired {
	retired := &journalRetired{file: j.active, ends: j.ends, last: j.placed}
	j.active = 1 - j.active
	j.gen++
	j.pos, j.headerWritten, j.spareReady = journalHeaderBytes, false, false
	j.ends = map[string]int64{}
	return retired
}

// write writes w's records in one WritevAt, after the file's header when
// this is the file's first write under its generation, and syncs them.
func (w *journalWrite) write() error {
	bufs := make([][]byte, 0, len(w.records)+1)
	off := w.off
	if w.header {
		bufs, off = append(bufs, journalHeader(w.gen)), 0
	}
	var total int64
	for _, r := range w.records {
		sealJournalRecord(r.buf, w.gen)
		bufs = append(bufs, r.buf)
	}
	for _, b := range bufs {
		total += int64(len(b))
	}
	n, err := w.file.WritevAt(bufs, off)
	if err == nil && n != total {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("journal %s: write at %d: %w", w.file.Name(), off, err)
	}
	if err := w.file.Sync(); err != nil {
		return fmt.Errorf("journal %s: sync: %w", w.file.Name(), err)
	}
	return nil
}

// failLocked makes err sticky: queued records are dropped, and their
// waiters and every later Append get it.
func (j *Journal) failLocked(err error) {
	if j.err == nil {
		j.err = err
		j.logger.Error("journal failed; its logs sync on their own from now on", "dir", j.opts.Dir, "err", err)
	}
	j.pending = nil
	j.cond.Broadcast()
}

// startCheckpointLocked checkpoints a retired file in the background.
func (j *Journal) startCheckpointLocked(r *journalRetired) {
	j.checkpointing = true
	go j.checkpoint(r)
}

// checkpoint makes every segment write of the retired file's records
// durable by one syncfs, then has the logs' recovery points moved past
// them. A failed syncfs fails the journal: the records may be the only
// durable copy, so the file is never reused.
func (j *Journal) checkpoint(r *journalRetired) {
	if err := j.opts.Syncer.SyncFS(); err != nil {
		j.mu.Lock()
		defer j.mu.Unlock()
		j.checkpointing = false
		j.failLocked(fmt.Errorf("journal %s: checkpoint syncfs: %w", j.opts.Dir, err))
		return
	}
	j.confirm(r)
}

// confirm calls Checkpointed for a retired file whose syncfs succeeded;
// once it returns nil, the file is the spare.
func (j *Journal) confirm(r *journalRetired) {
	var err error
	if j.opts.Checkpointed != nil {
		err = j.opts.Checkpointed(r.ends, r.last)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.checkpointing = false
	if err != nil {
		j.logger.Warn("journal checkpoint not recorded; its file stays out of use until the next checkpoint", "dir", j.opts.Dir, "file", r.file, "err", err)
		j.unconfirmed = r
	} else {
		j.spareReady = true
		j.stats.Checkpoints++
	}
	j.cond.Broadcast()
}

// Fence journals a fence for log name at from (< 0: every offset) and
// returns its ticket once it is durable.
//
// A fence refused as full waits for the spare and tries again: a
// truncation cannot fall back to a sync of its own. If the spare's
// Checkpointed failed, that wait lasts until a Checkpoint retries it.
func (j *Journal) Fence(name string, from int64) (uint64, error) {
	for {
		ticket, err := j.queue(journalFence, name, from, from, nil)
		if err == nil {
			err = j.wait(journalFullKey{name: name, kind: journalFence}, ticket)
		}
		if !errors.Is(err, ErrJournalFull) {
			if err != nil {
				return 0, fmt.Errorf("journal %s: fence for %s at %d: %w", j.opts.Dir, name, from, err)
			}
			return ticket, nil
		}
		j.mu.Lock()
		for !j.spareReady && j.refusalLocked() == nil {
			j.cond.Wait()
		}
		j.mu.Unlock()
	}
}

// Checkpoint retires the active file if it holds records and the spare
// is ready, and checkpoints it in the background; it returns at once.
// A retired file whose Checkpointed failed is retried first, instead.
func (j *Journal) Checkpoint() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.refusalLocked() != nil || j.checkpointing {
		return
	}
	if r := j.unconfirmed; r != nil {
		j.unconfirmed, j.checkpointing = nil, true
		go j.confirm(r)
		return
	}
	if j.writing {
		// The round's records may be in the active file: it is retired
		// once they are synced.
		j.rotateWanted = true
		return
	}
	j.retireIdleLocked()
}

// retireIdleLocked retires the active file, with no round being written,
// if it holds records and the spare is ready.
func (j *Journal) retireIdleLocked() {
	if j.pos == journalHeaderBytes || !j.spareReady || j.refusalLocked() != nil {
		return
	}
	j.startCheckpointLocked(j.switchFileLocked())
}

// Close waits for a running checkpoint and closes the files. Records
// queued and not waited for are dropped.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	j.pending = nil
	j.cond.Broadcast()
	for j.writing || j.checkpointing {
		j.cond.Wait()
	}
	j.mu.Unlock()
	return j.closeFiles()
}

func (j *Journal) closeFiles() error {
	var first error
	for i, f := range j.files {
		if f == nil {
			continue
		}
		if err := f.Close(); err != nil && first == nil {
			first = fmt.Errorf("journal %s: %w", f.Name(), err)
		}
		j.files[i] = nil
	}
	return first
}
